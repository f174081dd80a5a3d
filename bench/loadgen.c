/* bench/loadgen.c — being written in this change. */
typedef int mq_placeholder_loadgen;
int main(void) { return 0; }
