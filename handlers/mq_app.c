/* handlers/mq_app.c — being written in this change. */
typedef int mq_placeholder_mq_app;
