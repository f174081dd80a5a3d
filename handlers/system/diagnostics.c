/*
 * diagnostics.c — marquee.system.v1.DiagnosticsService: one method of every
 * call kind, an authenticated and an admin method, and a MongoDB write that
 * carries a domain event through the outbox. The platform's integration
 * tests and the local stack use it; it is served only with
 * MARQUEE_DIAGNOSTICS=1.
 *
 * Limits: messages <= 4096 bytes, delay <= 60 s, repeat <= 10000, notes
 * 1..1000 bytes; EchoCollect keeps at most 64 KiB.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/mq_app.h"
#include "handlers/system/system.h"
#include "lib/mq_validate.h"
#include "marquee/system/v1/system.mq-server.h"
#include "store/mq_bson.h"
#include "store/system/notes_store.h"

#define MAX_MESSAGE 4096
#define MAX_COLLECT (64 * 1024)

static mq_code_t check_echo(const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  mq_code_t rc = mq_check_text(err, "message", req->message, 0, MAX_MESSAGE, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  if (req->delay_ms > 60000) return mq_error_set(err, MQ_INVALID_ARGUMENT, "delay_ms", "must be at most 60000");
  if (req->repeat > 10000) return mq_error_set(err, MQ_INVALID_ARGUMENT, "repeat", "must be at most 10000");
  return MQ_OK;
}

static mq_code_t diag_echo(mq_call_t *call, const Marquee__System__V1__EchoRequest *req,
                           Marquee__System__V1__EchoResponse *resp, mq_error_t *err) {
  mq_code_t rc = check_echo(req, err);
  if (rc != MQ_OK) return rc;
  if (req->delay_ms && !mq_call_sleep(call, req->delay_ms))
    return mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "the deadline expired during the requested delay");
  resp->message = req->message;
  resp->sequence = 1;
  return MQ_OK;
}

static mq_code_t diag_echo_stream(mq_call_t *call, const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  mq_code_t rc = check_echo(req, err);
  if (rc != MQ_OK) return rc;
  uint32_t n = req->repeat ? req->repeat : 1;
  for (uint32_t i = 0; i < n; i++) {
    if (req->delay_ms && !mq_call_sleep(call, req->delay_ms)) return mq_error_set(err, MQ_CANCELLED, NULL, NULL);
    Marquee__System__V1__EchoResponse m = MARQUEE__SYSTEM__V1__ECHO_RESPONSE__INIT;
    m.message = req->message;
    m.sequence = i + 1;
    rc = marquee__system__v1__diagnostics_service__echo_stream__send(call, &m, err);
    if (rc != MQ_OK) return rc;
  }
  return MQ_OK;
}

typedef struct {
  char *buf;
  size_t len;
  uint32_t count;
} collect_t;

static void collect_release(void *state, mq_code_t final_code) {
  (void)final_code;
  collect_t *c = state;
  free(c->buf);
  free(c);
}

static mq_code_t diag_collect_msg(mq_call_t *call, const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  mq_code_t rc = mq_check_text(err, "message", req->message, 0, MAX_MESSAGE, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  collect_t *c = mq_call_state(call);
  if (!c) {
    c = mq_xcalloc(1, sizeof *c);
    mq_call_set_state(call, c, collect_release);
  }
  size_t n = strlen(req->message);
  if (c->len + n > MAX_COLLECT)
    return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, "message", "the stream may carry at most %d bytes in total",
                        MAX_COLLECT);
  char *nb = mq_xrealloc(c->buf, c->len + n + 1);
  memcpy(nb + c->len, req->message, n);
  c->len += n;
  nb[c->len] = '\0';
  c->buf = nb;
  c->count++;
  return MQ_OK;
}

static mq_code_t diag_collect_end(mq_call_t *call, Marquee__System__V1__EchoCollectResponse *resp, mq_error_t *err) {
  (void)err;
  collect_t *c = mq_call_state(call);
  resp->joined = c ? mq_arena_strdup(mq_call_arena(call), c->buf ? c->buf : "") : (char *)"";
  resp->count = c ? c->count : 0;
  return MQ_OK;
}

static mq_code_t diag_chat_msg(mq_call_t *call, const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  mq_code_t rc = check_echo(req, err);
  if (rc != MQ_OK) return rc;
  uintptr_t seq = (uintptr_t)mq_call_state(call) + 1;
  mq_call_set_state(call, (void *)seq, NULL);
  Marquee__System__V1__EchoResponse m = MARQUEE__SYSTEM__V1__ECHO_RESPONSE__INIT;
  m.message = req->message;
  m.sequence = (uint32_t)seq;
  return marquee__system__v1__diagnostics_service__echo_chat__send(call, &m, err);
}

static mq_code_t diag_chat_end(mq_call_t *call, mq_error_t *err) {
  (void)call, (void)err;
  return MQ_OK;
}

static mq_code_t diag_who_am_i(mq_call_t *call, const Marquee__System__V1__WhoAmIRequest *req,
                               Marquee__System__V1__WhoAmIResponse *resp, mq_error_t *err) {
  (void)req, (void)err;
  const mq_principal_t *p = mq_call_principal(call);
  mq_arena_t *a = mq_call_arena(call);
  resp->subject = mq_arena_strdup(a, p->subject);
  resp->roles = mq_arena_alloc(a, 3 * sizeof(char *));
  static const struct {
    uint32_t bit;
    const char *name;
  } roles[] = {{MQ_ROLE_ATTENDEE, "attendee"}, {MQ_ROLE_ORGANIZER, "organizer"}, {MQ_ROLE_ADMIN, "admin"}};
  for (size_t i = 0; i < 3; i++)
    if (p->roles & roles[i].bit) resp->roles[resp->n_roles++] = (char *)roles[i].name;
  resp->token_expires_at = mq_pb_timestamp(a, p->expires_at * 1000);
  return MQ_OK;
}

static mq_code_t diag_admin_ping(mq_call_t *call, const Marquee__System__V1__PingRequest *req,
                                 Marquee__System__V1__PingResponse *resp, mq_error_t *err) {
  (void)call;
  if (req->payload.len > MAX_MESSAGE)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "payload", "must be at most 4096 bytes");
  resp->payload = req->payload;
  return MQ_OK;
}

static void note_to_pb(mq_call_t *call, const mq_note_t *n, Marquee__System__V1__Note *resp) {
  resp->note_id = (char *)n->id;
  resp->author = (char *)n->author;
  resp->text = (char *)n->text;
  resp->created_at = mq_pb_timestamp(mq_call_arena(call), n->created_ms);
}

static mq_code_t diag_record_note(mq_call_t *call, const Marquee__System__V1__RecordNoteRequest *req,
                                  Marquee__System__V1__Note *resp, mq_error_t *err) {
  mq_code_t rc = mq_check_text(err, "text", req->text, 1, 1000, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  const mq_principal_t *p = mq_call_principal(call);
  mq_note_t note = {id, mq_arena_strdup(a, p->subject), req->text, mq_now_unix_ms()};

  mq_event_t ev;
  Marquee__Events__V1__NoteRecorded payload = MARQUEE__EVENTS__V1__NOTE_RECORDED__INIT;
  payload.note_id = id;
  payload.author = (char *)note.author;
  payload.text_length = (uint32_t)strlen(req->text);
  mq_event_init(&ev, "marquee.system", "system.NoteRecorded", id, p->subject, mq_call_trace_id(call),
                mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  ev.env.note_recorded = &payload;

  rc = mq_notes_insert(app->store, &note, &ev, 1, err);
  if (rc != MQ_OK) return rc;
  note_to_pb(call, &note, resp);
  return MQ_OK;
}

static mq_code_t diag_get_note(mq_call_t *call, const Marquee__System__V1__GetNoteRequest *req,
                               Marquee__System__V1__Note *resp, mq_error_t *err) {
  mq_code_t rc = mq_check_uuid(err, "note_id", req->note_id);
  if (rc != MQ_OK) return rc;
  mq_app_t *app = mq_call_app(call);
  mq_note_t note;
  rc = mq_notes_get(app->store, req->note_id, mq_call_arena(call), &note, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "note_id", "no note with this id");
  if (rc != MQ_OK) return rc;
  note_to_pb(call, &note, resp);
  return MQ_OK;
}

static const marquee__system__v1__diagnostics_service_handlers_t handlers = {
    .echo = {diag_echo, MQ_POLICY_PUBLIC, 0},
    .echo_stream = {diag_echo_stream, MQ_POLICY_PUBLIC, 0},
    .echo_collect = {diag_collect_msg, diag_collect_end, MQ_POLICY_PUBLIC, 0},
    .echo_chat = {diag_chat_msg, diag_chat_end, MQ_POLICY_PUBLIC, 0},
    .who_am_i = {diag_who_am_i, MQ_POLICY_AUTHENTICATED, MQ_RUN_INLINE},
    .admin_ping = {diag_admin_ping, MQ_POLICY_ADMIN, MQ_RUN_INLINE},
    .record_note = {diag_record_note, MQ_POLICY_AUTHENTICATED, 0},
    .get_note = {diag_get_note, MQ_POLICY_AUTHENTICATED, 0},
};

int diagnostics_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__system__v1__diagnostics_service__mq_register(srv, &handlers);
}
