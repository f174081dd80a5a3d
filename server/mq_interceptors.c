/*
 * mq_interceptors.c — the chain described in mq_interceptors.h. Runs on the
 * completion-queue thread before dispatch, so nothing here may block: the
 * token verifier is CPU-only and the access log is buffered (mq_log.c).
 */
#include "server/mq_interceptors.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "server/mq_call_internal.h"

bool mq_md_valid_request_id(const char *v, size_t n) {
  if (!v || n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') return false;
  }
  return true;
}

static bool is_lhex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return false;
  return true;
}

bool mq_md_parse_traceparent(const char *v, size_t n, char out[33]) {
  /* 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 */
  if (!v || n != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (!is_lhex(v, 2) || !is_lhex(v + 3, 32) || !is_lhex(v + 36, 16) || !is_lhex(v + 53, 2)) return false;
  if (v[0] == 'f' && v[1] == 'f') return false; /* version ff is invalid */
  bool zero = true;
  for (int i = 0; i < 32; i++) zero &= v[3 + i] == '0';
  if (zero) return false;
  bool zero_parent = true;
  for (int i = 0; i < 16; i++) zero_parent &= v[36 + i] == '0';
  if (zero_parent) return false; /* W3C: an all-zero parent id is invalid */
  memcpy(out, v + 3, 32);
  out[32] = '\0';
  return true;
}

bool mq_md_parse_bearer(const char *v, size_t n, const char **tok, size_t *tok_len) {
  if (!v || n < 8 || strncasecmp(v, "bearer ", 7) != 0) return false;
  const char *t = v + 7;
  size_t tl = n - 7;
  if (tl == 0 || tl > 8192) return false;
  for (size_t i = 0; i < tl; i++)
    if (t[i] == ' ' || (unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e) return false;
  *tok = t;
  *tok_len = tl;
  return true;
}

mq_code_t mq_policy_check(mq_policy_t policy, const mq_principal_t *who, mq_error_t *err) {
  switch (policy) {
    case MQ_POLICY_PUBLIC:
      return MQ_OK;
    case MQ_POLICY_AUTHENTICATED:
    case MQ_POLICY_RESOURCE:
    case MQ_POLICY_ORGANIZER:
    case MQ_POLICY_ADMIN:
      if (!who)
        return mq_error_set(err, MQ_UNAUTHENTICATED, NULL,
                            "this method requires a signed-in user: send 'authorization: Bearer <access token>'");
      if (policy == MQ_POLICY_ORGANIZER && !(who->roles & (MQ_ROLE_ORGANIZER | MQ_ROLE_ADMIN)))
        return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this method requires the organizer role");
      if (policy == MQ_POLICY_ADMIN && !(who->roles & MQ_ROLE_ADMIN))
        return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this method requires the admin role");
      return MQ_OK;
    default:
      return mq_error_set(err, MQ_INTERNAL, NULL, "method has no access policy");
  }
}

/* Metadata lookup without copying: points into the call's metadata array. */
static const char *md_find(const mq_call_t *c, const char *key, size_t *len) {
  size_t kl = strlen(key);
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_slice *k = &c->md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == kl && memcmp(GRPC_SLICE_START_PTR(*k), key, kl) == 0) {
      *len = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
      return (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
    }
  }
  return NULL;
}

mq_code_t mq_interceptors_before(mq_call_t *c, mq_error_t *err) {
  /* 1. metrics */
  mq_metrics_call_start(mq_call_stats(c));

  /* 3. ids (before the deadline check so that even refusals carry them) */
  size_t n = 0;
  const char *v = md_find(c, "x-request-id", &n);
  if (v && mq_md_valid_request_id(v, n)) {
    memcpy(c->request_id, v, n);
    c->request_id[n] = '\0';
  } else {
    mq_random_hex(c->request_id, 32);
  }
  v = md_find(c, "traceparent", &n);
  if (!v || !mq_md_parse_traceparent(v, n, c->trace_id)) mq_random_hex(c->trace_id, 32);

  /* 2. deadline */
  if (c->deadline_ms != INT64_MAX && c->deadline_ms <= mq_now_ms())
    return mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "the call's deadline had passed when it arrived");

  /* 4. auth */
  v = md_find(c, "authorization", &n);
  if (v) {
    const char *tok;
    size_t tl;
    if (!mq_md_parse_bearer(v, n, &tok, &tl))
      return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "the authorization metadata must be 'Bearer <token>'");
    const mq_auth_verifier_t *ver = mq_server_verifier(c->srv);
    if (!ver->verify)
      return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "this server accepts no tokens (no keys configured)");
    mq_code_t rc = ver->verify(ver->self, tok, tl, &c->principal, err);
    if (rc != MQ_OK) return rc;
    c->has_principal = true;
  }

  /* 5. policy */
  const mq_method_binding_t *b = mq_call_binding(c);
  return mq_policy_check(b->policy, mq_call_principal(c), err);
}

int mq_access_log_level(mq_code_t code, grpc_status_code status) {
  switch (status) {
    case GRPC_STATUS_OK:
    case GRPC_STATUS_CANCELLED:
    case GRPC_STATUS_NOT_FOUND:
    case GRPC_STATUS_ALREADY_EXISTS:
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_OUT_OF_RANGE:
      return MQ_LOG_INFO;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: /* sold out is business; a rate limit is a signal */
      return code == MQ_RATE_LIMITED ? MQ_LOG_WARN : MQ_LOG_INFO;
    case GRPC_STATUS_INTERNAL:
    case GRPC_STATUS_UNKNOWN:
    case GRPC_STATUS_DATA_LOSS:
      return MQ_LOG_ERROR;
    default:
      return MQ_LOG_WARN;
  }
}

void mq_interceptors_after(mq_call_t *c, grpc_status_code status, int64_t duration_us) {
  mq_metrics_call_end(mq_call_stats(c), (int)status, duration_us);
  const char *mode = mq_server_config(c->srv)->access_log;
  if (mode[0] == 'o' || (mode[0] == 'e' && status == GRPC_STATUS_OK)) return;
  mq_logline_t l;
  mq_log_begin(&l, (mq_log_level_t)mq_access_log_level(c->final_code, status), "rpc");
  if (l.skip) return;
  mq_log_str(&l, "method", mq_call_method(c));
  mq_log_str(&l, "code", mq_grpc_status_name(status)); /* what the client got, by its gRPC name */
  if (status != GRPC_STATUS_OK && c->final_code != MQ_OK && mq_code_to_grpc(c->final_code) == status)
    mq_log_str(&l, "reason", mq_code_name(c->final_code)); /* ErrorInfo's reason (RATE_LIMITED, ...) */
  mq_log_int(&l, "grpc_status", status);
  mq_log_int(&l, "duration_us", duration_us);
  mq_log_str(&l, "request_id", c->request_id);
  mq_log_str(&l, "trace_id", c->trace_id);
  if (c->has_principal) mq_log_str(&l, "subject", c->principal.subject);
  mq_log_peer(&l, "peer", mq_call_peer(c));
  if (status != GRPC_STATUS_OK && c->status_text[0]) mq_log_str(&l, "error", c->status_text);
  mq_log_end(&l);
}
