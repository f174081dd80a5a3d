/* store/mq_outbox.c — being written in this change. */
typedef int mq_placeholder_mq_outbox;
