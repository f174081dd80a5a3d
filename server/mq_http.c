/* server/mq_http.c — being written in this change. */
typedef int mq_placeholder_mq_http;
