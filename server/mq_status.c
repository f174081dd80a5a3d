/*
 * mq_status.c — builds a refusal's google.rpc.Status with its typed details
 * (see mq_status.h for what goes in, by the error).
 */
#include "server/mq_status.h"

#include <stdio.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define TYPE_PREFIX "type.googleapis.com/"

static Google__Protobuf__Any *any_of(mq_arena_t *a, const ProtobufCMessage *m) {
  Google__Protobuf__Any *any = mq_arena_alloc(a, sizeof *any);
  google__protobuf__any__init(any);
  any->type_url = mq_arena_sprintf(a, TYPE_PREFIX "%s", m->descriptor->name);
  any->value.len = protobuf_c_message_get_packed_size(m);
  any->value.data = mq_arena_alloc(a, any->value.len ? any->value.len : 1);
  protobuf_c_message_pack(m, any->value.data);
  return any;
}

static Google__Rpc__ErrorInfo__MetadataEntry *entry(mq_arena_t *a, const char *key, const char *value) {
  Google__Rpc__ErrorInfo__MetadataEntry *e = mq_arena_alloc(a, sizeof *e);
  google__rpc__error_info__metadata_entry__init(e);
  e->key = (char *)key;
  e->value = mq_arena_strdup(a, value);
  return e;
}

static ProtobufCMessage *error_info(mq_arena_t *a, const mq_error_t *err, const char *method) {
  Google__Rpc__ErrorInfo *info = mq_arena_alloc(a, sizeof *info);
  google__rpc__error_info__init(info);
  info->reason = (char *)mq_code_name(err->code);
  info->domain = (char *)MQ_STATUS_DOMAIN;
  info->metadata = mq_arena_alloc(a, 3 * sizeof *info->metadata);
  if (err->field[0]) info->metadata[info->n_metadata++] = entry(a, "field", err->field);
  if (err->retry_after_ms > 0) {
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)err->retry_after_ms);
    info->metadata[info->n_metadata++] = entry(a, "retry_after_ms", ms);
  }
  if (method && method[0]) info->metadata[info->n_metadata++] = entry(a, "method", method);
  return &info->base;
}

static ProtobufCMessage *bad_request(mq_arena_t *a, const mq_error_t *err) {
  Google__Rpc__BadRequest *br = mq_arena_alloc(a, sizeof *br);
  google__rpc__bad_request__init(br);
  unsigned n = err->n_violations <= MQ_ERROR_VIOLATIONS_MAX ? err->n_violations : 0;
  br->field_violations = mq_arena_alloc(a, (n ? n : 1) * sizeof *br->field_violations);
  for (unsigned i = 0; i < n; i++) {
    Google__Rpc__BadRequest__FieldViolation *v = mq_arena_alloc(a, sizeof *v);
    google__rpc__bad_request__field_violation__init(v);
    v->field = (char *)err->violations[i].field;
    v->description = (char *)err->violations[i].description;
    br->field_violations[br->n_field_violations++] = v;
  }
  return &br->base;
}

static ProtobufCMessage *retry_info(mq_arena_t *a, int64_t ms) {
  Google__Protobuf__Duration *d = mq_arena_alloc(a, sizeof *d);
  google__protobuf__duration__init(d);
  d->seconds = ms / 1000;
  d->nanos = (int32_t)(ms % 1000) * 1000000;
  Google__Rpc__RetryInfo *ri = mq_arena_alloc(a, sizeof *ri);
  google__rpc__retry_info__init(ri);
  ri->retry_delay = d;
  return &ri->base;
}

static ProtobufCMessage *precondition(mq_arena_t *a, const mq_error_t *err, const char *method) {
  Google__Rpc__PreconditionFailure__Violation *v = mq_arena_alloc(a, sizeof *v);
  google__rpc__precondition_failure__violation__init(v);
  v->type = (char *)(!strcmp(err->field, "version") ? "VERSION" : "STATE");
  v->subject = (char *)(err->field[0] ? err->field : method ? method : "");
  v->description = (char *)(err->message[0] ? err->message : mq_code_message(err->code));
  Google__Rpc__PreconditionFailure *pf = mq_arena_alloc(a, sizeof *pf);
  google__rpc__precondition_failure__init(pf);
  pf->violations = mq_arena_alloc(a, sizeof *pf->violations);
  pf->violations[pf->n_violations++] = v;
  return &pf->base;
}

size_t mq_status_details_pack(mq_arena_t *a, const mq_error_t *err, grpc_status_code status, const char *message,
                              const char *method, uint8_t **out) {
  Google__Rpc__Status st;
  google__rpc__status__init(&st);
  st.code = (int32_t)status;
  st.message = (char *)(message ? message : "");
  Google__Protobuf__Any *details[4];
  st.details = details;
  details[st.n_details++] = any_of(a, error_info(a, err, method));
  if (status == GRPC_STATUS_INVALID_ARGUMENT && mq_code_is_violation(err->code) && err->n_violations > 0 &&
      err->n_violations <= MQ_ERROR_VIOLATIONS_MAX)
    details[st.n_details++] = any_of(a, bad_request(a, err));
  if (err->retry_after_ms > 0) details[st.n_details++] = any_of(a, retry_info(a, err->retry_after_ms));
  if (status == GRPC_STATUS_FAILED_PRECONDITION || status == GRPC_STATUS_ABORTED)
    details[st.n_details++] = any_of(a, precondition(a, err, method));
  size_t len = google__rpc__status__get_packed_size(&st);
  *out = mq_arena_alloc(a, len ? len : 1);
  google__rpc__status__pack(&st, *out);
  return len;
}
