/*
 * mq_page.c — page tokens bound to their query (see mq_page.h).
 */
#include "lib/mq_page.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "lib/mq_validate.h"

#define MAX_TOKEN 512 /* characters of base64url accepted */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static bool is_paging_field(const char *name) {
  return !strcmp(name, "page_size") || !strcmp(name, "page_token");
}

uint64_t mq_page_fingerprint(const ProtobufCMessage *req) {
  const ProtobufCMessageDescriptor *d = req->descriptor;
  uint64_t h = fnv1a(1469598103934665603ull, d->name, strlen(d->name));
  /* a shallow copy with the paging fields at their defaults */
  mq_arena_t a;
  mq_arena_init(&a);
  ProtobufCMessage *copy = mq_arena_alloc(&a, d->sizeof_message);
  memcpy(copy, req, d->sizeof_message);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!is_paging_field(f->name) || f->label == PROTOBUF_C_LABEL_REPEATED) continue;
    void *member = (char *)copy + f->offset;
    switch (f->type) {
      case PROTOBUF_C_TYPE_STRING:
        *(const char **)member = "";
        break;
      case PROTOBUF_C_TYPE_MESSAGE:
        *(void **)member = NULL;
        break;
      case PROTOBUF_C_TYPE_UINT32:
      case PROTOBUF_C_TYPE_INT32:
        *(int32_t *)member = 0;
        break;
      default:
        break;
    }
  }
  size_t len = protobuf_c_message_get_packed_size(copy);
  uint8_t *buf = mq_arena_alloc(&a, len ? len : 1);
  protobuf_c_message_pack(copy, buf);
  h = fnv1a(h, buf, len);
  mq_arena_release(&a);
  return h;
}

char *mq_page_token_make(mq_arena_t *a, const ProtobufCMessage *req, const char *cursor) {
  char *raw = mq_arena_sprintf(a, "1%016llx:%s", (unsigned long long)mq_page_fingerprint(req), cursor);
  size_t n = strlen(raw);
  char *out = mq_arena_alloc(a, (n + 2) / 3 * 4 + 1);
  mq_base64url_encode((const unsigned char *)raw, n, out);
  return out;
}

mq_code_t mq_page_token_read(mq_arena_t *a, const ProtobufCMessage *req, const char *field, const char *token,
                             const char **cursor, mq_error_t *err) {
  *cursor = NULL;
  if (!token || !token[0]) return MQ_OK;
  size_t n = strlen(token);
  unsigned char *raw = n <= MAX_TOKEN ? mq_arena_alloc(a, n) : NULL;
  long got = raw ? mq_base64url_decode(token, n, raw, n) : -1;
  char hex[17];
  if (got < 19 || raw[0] != '1' || raw[17] != ':')
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is not a page token this method returned");
  memcpy(hex, raw + 1, 16);
  hex[16] = '\0';
  char want[17];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)mq_page_fingerprint(req));
  if (strcmp(hex, want))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field,
                        "was made for other filters: send the same filters as the first page, or no token to start "
                        "again");
  *cursor = mq_arena_strndup(a, (const char *)raw + 18, (size_t)got - 18);
  return MQ_OK;
}

char *mq_page_token_make_key(mq_arena_t *a, const ProtobufCMessage *req, int64_t ms, const char *id) {
  return mq_page_token_make(a, req, mq_arena_sprintf(a, "%lld.%s", (long long)ms, id));
}

mq_code_t mq_page_token_read_key(mq_arena_t *a, const ProtobufCMessage *req, const char *field, const char *token,
                                 bool *has, int64_t *ms, const char **id, mq_error_t *err) {
  const char *cursor;
  *has = false;
  mq_code_t rc = mq_page_token_read(a, req, field, token, &cursor, err);
  if (rc != MQ_OK || !cursor) return rc;
  return mq_check_page_token(err, field, cursor, has, ms, id);
}
