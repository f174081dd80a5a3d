/* bench/bare_echo.c — being written in this change. */
typedef int mq_placeholder_bare_echo;
int main(void) { return 0; }
