/* clients/mq_client.c — being written in this change. */
typedef int mq_placeholder_mq_client;
