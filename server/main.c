/* server/main.c — being written in this change. */
typedef int mq_placeholder_main;
int main(void) { return 0; }
