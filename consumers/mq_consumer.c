/* consumers/mq_consumer.c — being written in this change. */
typedef int mq_placeholder_mq_consumer;
