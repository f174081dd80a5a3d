/* server/mq_relay.c — being written in this change. */
typedef int mq_placeholder_mq_relay;
