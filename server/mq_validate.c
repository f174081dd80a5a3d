/* server/mq_validate.c — being written in this change. */
typedef int mq_placeholder_mq_validate;
