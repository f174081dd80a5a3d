/* store/mq_bson.c — being written in this change. */
typedef int mq_placeholder_mq_bson;
