/* handlers/reflection.c — being written in this change. */
typedef int mq_placeholder_reflection;
