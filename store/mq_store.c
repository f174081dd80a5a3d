/* store/mq_store.c — being written in this change. */
typedef int mq_placeholder_mq_store;
