/* clients/cli.c — being written in this change. */
typedef int mq_placeholder_cli;
int main(void) { return 0; }
