/* server/mq_health.c — being written in this change. */
typedef int mq_placeholder_mq_health;
