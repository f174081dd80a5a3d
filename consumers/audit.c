/* consumers/audit.c — being written in this change. */
typedef int mq_placeholder_audit;
int main(void) { return 0; }
