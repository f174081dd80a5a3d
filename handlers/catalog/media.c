/*
 * media.c — marquee.catalog.v1.MediaService: the images of an organization
 * (catalog issue, item 6), and `GET /media/{id}` on the side HTTP port.
 *
 * Who may call what (proto/marquee/catalog/v1/media.proto): uploads,
 * deletions and covers need owner or manager of the organization,
 * ListImages any member, GetImage is public. For an image or event id the
 * document is loaded first to learn its organization, then mq_org_require
 * decides; an outsider gets the answer an unknown id gets (NOT_FOUND).
 *
 * An upload is a client stream, handled message by message (the transport
 * never runs two callbacks of one call at once):
 *
 *   first chunk: authorize, check the metadata (and the event), new image id
 *   every chunk: append → while the type is unknown, mq_image_probe the whole
 *                prefix (INVALID: refused at once; DONE: limits checked
 *                against the declared total_size) → once known, every full
 *                GridFS chunk is written (the first write is preceded by the
 *                media_pending record)
 *   end:         exactly total_size bytes? the file ends properly? last
 *                chunk → files document with ImageUploaded (the commit) →
 *                attach to the event → drop the pending record
 *
 * Nothing is left behind by a failed upload: a refusal on a message or at
 * the end discards the chunks written so far before the status is sent; a
 * stream that ends otherwise (client cancel, deadline, shutdown) is
 * discarded by the probe thread within MARQUEE_HEALTH_INTERVAL_MS (the call's
 * release hook runs on a transport thread and must not block, so it only
 * queues the id); a process that dies mid-upload leaves a pending record
 * that media_sweep discards after PENDING_GRACE_MS. An attach to the event
 * that fails after the commit deletes the image again (with ImageDeleted).
 *
 * Events are changed through store/catalog/events_store.h exactly as the
 * events service does it: read, change image_ids / cover_image_id, save
 * with the version read and EventUpdated (retried once on ABORTED).
 * Read next: store/catalog/media_store.h.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/catalog/catalog.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_image.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/catalog/v1/media.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/catalog/media_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define CHUNK_DATA_MAX (256 * 1024) /* per UploadImageChunk */
#define SIDE_MAX 10000              /* pixels, width and height */
#define EVENT_IMAGES_MAX 20         /* as handlers/catalog/events.c allows in image_ids */
#define ALT_TEXT_MAX 300
#define FILENAME_MAX_BYTES 255
#define UPLOAD_MAX_MS (10 * 60 * 1000)    /* an upload's whole life */
#define PENDING_GRACE_MS (60 * 60 * 1000) /* a pending upload older than this is abandoned */
#define SWEEP_EVERY_MS 60000              /* how often the probe thread looks for them */
#define PAGE_DEFAULT 20
#define PAGE_MAX 100
#define TOPIC "marquee.events"
#define CACHE_CONTROL "public, max-age=31536000, immutable"

typedef Marquee__Catalog__V1__Event event_pb;

/* ---- helpers ------------------------------------------------------------------- */

static Marquee__Catalog__V1__Image *image_to_pb(mq_call_t *call, const mq_image_t *m) {
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Image *p = mq_arena_alloc(a, sizeof *p);
  marquee__catalog__v1__image__init(p);
  p->image_id = (char *)m->id;
  p->organization_id = (char *)m->organization_id;
  p->event_id = (char *)(m->event_id ? m->event_id : "");
  p->mime_type = (char *)m->mime_type;
  p->width = m->width;
  p->height = m->height;
  p->size_bytes = m->size_bytes;
  p->sha256 = (char *)m->sha256;
  p->alt_text = (char *)(m->alt_text ? m->alt_text : "");
  p->created_at = mq_pb_timestamp(a, m->created_ms);
  p->url = mq_arena_sprintf(a, "/media/%s", m->id);
  return p;
}

static void media_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *image_id) {
  const mq_principal_t *who = mq_call_principal(call);
  mq_event_init(ev, TOPIC, type, image_id, who ? who->subject : "system", mq_call_trace_id(call),
                mq_call_request_id(call));
}

static bool finished(const event_pb *e) {
  return e->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_CANCELLED ||
         e->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_COMPLETED;
}

enum { ATTACH, COVER, DETACH };

/* Changes event `event_id` for image `image_id`: ATTACH appends it to
 * image_ids, COVER makes it the cover (image_id "" removes the cover),
 * DETACH removes it from both. Read, change, save with the version read and
 * EventUpdated; once more if another change came first (ABORTED). An event
 * of another organization than `org_id` is NOT_FOUND "event_id" (DETACH:
 * nothing to do, as for a deleted event). *version gets the version after. */
static mq_code_t edit_event(mq_call_t *call, const char *event_id, const char *org_id, const char *image_id, int op,
                            int64_t *version, mq_error_t *err) {
  static const char *const f_images[] = {"image_ids"}, *const f_cover[] = {"cover_image_id"},
                           *const f_both[] = {"image_ids", "cover_image_id"};
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  for (int attempt = 0;; attempt++) {
    event_pb *e;
    mq_code_t rc = mq_events_get(app->store, event_id, a, &e, err);
    if (rc == MQ_OK && strcmp(e->organization_id, org_id)) rc = MQ_NOT_FOUND;
    if (rc == MQ_NOT_FOUND)
      return op == DETACH ? MQ_OK : mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event in this organization");
    if (rc != MQ_OK) return rc;
    if (op != DETACH && finished(e))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "a cancelled or completed event cannot change");
    *version = e->version;
    size_t at = e->n_image_ids;
    for (size_t i = 0; i < e->n_image_ids; i++)
      if (!strcmp(e->image_ids[i], image_id)) at = i;
    bool listed = at < e->n_image_ids, is_cover = e->cover_image_id && !strcmp(e->cover_image_id, image_id);
    const char *const *fields = f_images;
    size_t n_fields = 1;
    if (op == ATTACH) {
      if (listed) return MQ_OK;
      if (e->n_image_ids >= EVENT_IMAGES_MAX)
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event has %d images already",
                            EVENT_IMAGES_MAX);
      char **ids = mq_arena_alloc(a, (e->n_image_ids + 1) * sizeof *ids);
      for (size_t i = 0; i < e->n_image_ids; i++) ids[i] = e->image_ids[i];
      ids[e->n_image_ids] = (char *)image_id;
      e->image_ids = ids;
      e->n_image_ids++;
    } else if (op == COVER) {
      if (is_cover || (!image_id[0] && !(e->cover_image_id && e->cover_image_id[0]))) return MQ_OK;
      e->cover_image_id = (char *)image_id;
      fields = f_cover;
    } else {
      if (!listed && !is_cover) return MQ_OK;
      if (listed) {
        for (size_t i = at; i + 1 < e->n_image_ids; i++) e->image_ids[i] = e->image_ids[i + 1];
        e->n_image_ids--;
      }
      if (is_cover) e->cover_image_id = (char *)"";
      fields = listed && is_cover ? f_both : is_cover ? f_cover : f_images;
      n_fields = listed && is_cover ? 2 : 1;
    }
    e->updated_at = mq_pb_timestamp(a, mq_now_unix_ms());
    int64_t expected = e->version;
    Marquee__Events__V1__EventUpdated pl = MARQUEE__EVENTS__V1__EVENT_UPDATED__INIT;
    pl.event_id = e->event_id;
    pl.organization_id = e->organization_id;
    pl.version = expected + 1;
    pl.fields = (char **)fields;
    pl.n_fields = n_fields;
    mq_event_t ev;
    media_event(&ev, call, "catalog.EventUpdated", e->event_id);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_UPDATED;
    ev.env.event_updated = &pl;
    rc = mq_events_save(app->store, e, expected, &ev, 1, err);
    if (rc == MQ_ABORTED && attempt == 0) continue;
    if (rc != MQ_OK) return rc;
    *version = e->version;
    mq_app_event_changed(app, event_id);
    return MQ_OK;
  }
}

/* Loads the image and checks the caller's role in its organization; a
 * non-member gets what an unknown image gets. */
static mq_code_t load_authorized(mq_call_t *call, const char *image_id, int weakest, mq_image_t *out, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "image_id", image_id);
  if (rc == MQ_OK) rc = mq_media_get(app->store, image_id, mq_call_arena(call), out, err);
  if (rc == MQ_OK) rc = mq_org_require(call, out->organization_id, weakest, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "image_id", "no such image");
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "image_id", "changing images needs the manager role or stronger");
  return rc;
}

/* ---- uploads --------------------------------------------------------------------- */

typedef struct upload {
  mq_store_t *store;
  char id[37];
  const char *org, *event_id, *filename, *alt_text; /* in the call's arena */
  int64_t total, received, started_ms;
  uint8_t *buf; /* bytes not written yet; everything from byte 0 while the type is unknown */
  size_t len, cap;
  uint32_t next_n; /* the next GridFS chunk number */
  bool probed, pending, committed, discarded;
  mq_image_info_t info;
  uint8_t head[12], tail[12]; /* first and last bytes, for the end-of-file check */
  size_t head_len, tail_len;
  EVP_MD_CTX *sha;
} upload_t;

/* Uploads that ended without a word from us (cancelled, deadline, shutdown):
 * their ids wait here for the probe thread (media_sweep). Fixed size, no
 * allocation: when full, the pending record still gets them swept later. */
#define ABANDONED_MAX 256
static pthread_mutex_t g_abandoned_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_abandoned[ABANDONED_MAX][37];
static size_t g_n_abandoned;

static void upload_release(void *state, mq_code_t final_code) {
  (void)final_code; /* `committed` says it better: a commit may precede a failed reply */
  upload_t *u = state;
  if (u->pending && !u->committed && !u->discarded) {
    pthread_mutex_lock(&g_abandoned_mu);
    if (g_n_abandoned < ABANDONED_MAX) snprintf(g_abandoned[g_n_abandoned++], 37, "%s", u->id);
    pthread_mutex_unlock(&g_abandoned_mu);
  }
  EVP_MD_CTX_free(u->sha);
  free(u->buf);
  free(u);
}

/* Every refusal after the first write goes through here: the chunks go
 * before the status does. If the store fails now, release queues the id. */
static mq_code_t upload_fail(upload_t *u, mq_code_t rc) {
  if (u && u->pending && !u->discarded && !u->committed) {
    mq_error_t ignored;
    if (mq_media_discard(u->store, u->id, &ignored) == MQ_OK) u->discarded = true;
  }
  return rc;
}

static mq_code_t upload_begin(mq_call_t *call, const Marquee__Catalog__V1__UploadImageMetadata *md, upload_t **out,
                              mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  if (!md) return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata", "the first chunk carries the metadata");
  mq_code_t rc = mq_org_require(call, md->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) {
    if (!strcmp(err->field, "organization_id")) mq_error_rename_field(err, "metadata.organization_id");
    return rc;
  }
  const unsigned line = MQ_TEXT_SINGLE_LINE;
  const char *event_id = md->event_id && md->event_id[0] ? md->event_id : NULL;
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_text(err, "metadata.filename", md->filename, 0, FILENAME_MAX_BYTES, line);
  mq_check_text(err, "metadata.alt_text", md->alt_text, 0, ALT_TEXT_MAX, line);
  if (md->total_size <= 0)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata.total_size", "is required: the size of the file in bytes");
  else if (md->total_size > app->cfg->media_max_bytes)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata.total_size", "must be at most %lld bytes",
                 (long long)app->cfg->media_max_bytes);
  if (event_id) mq_check_uuid(err, "metadata.event_id", event_id);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  if (event_id) {
    event_pb *e;
    rc = mq_events_get(app->store, event_id, a, &e, err);
    if (rc == MQ_OK && strcmp(e->organization_id, md->organization_id)) rc = MQ_NOT_FOUND;
    if (rc == MQ_NOT_FOUND)
      return mq_error_set(err, MQ_NOT_FOUND, "metadata.event_id", "no such event in this organization");
    if (rc != MQ_OK) return rc;
    if (finished(e))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "metadata.event_id",
                          "a cancelled or completed event cannot change");
    if (e->n_image_ids >= EVENT_IMAGES_MAX)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "metadata.event_id", "the event has %d images already",
                          EVENT_IMAGES_MAX);
  }
  upload_t *u = mq_xcalloc(1, sizeof *u);
  u->store = app->store;
  mq_uuid_v4(u->id);
  u->org = mq_arena_strdup(a, md->organization_id);
  u->event_id = event_id ? mq_arena_strdup(a, event_id) : NULL;
  u->filename = mq_arena_strdup(a, md->filename ? md->filename : "");
  u->alt_text = mq_arena_strdup(a, md->alt_text ? md->alt_text : "");
  u->total = md->total_size;
  u->started_ms = mq_now_unix_ms();
  mq_call_set_state(call, u, upload_release); /* from here the call frees u */
  u->sha = EVP_MD_CTX_new();
  if (!u->sha || EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the upload's SHA-256 digest (OpenSSL)");
  *out = u;
  return MQ_OK;
}

/* Writes the buffered bytes as GridFS chunks: whole chunks only, or
 * everything when `last`. The pending record goes first. */
static mq_code_t upload_flush(upload_t *u, bool last, mq_error_t *err) {
  size_t off = 0;
  mq_code_t rc = MQ_OK;
  while (rc == MQ_OK && (u->len - off >= MQ_MEDIA_CHUNK_SIZE || (last && u->len > off))) {
    size_t n = u->len - off < MQ_MEDIA_CHUNK_SIZE ? u->len - off : MQ_MEDIA_CHUNK_SIZE;
    if (!u->pending) {
      rc = mq_media_pending_begin(u->store, u->id, u->org, mq_now_unix_ms(), err);
      if (rc != MQ_OK) break;
      u->pending = true;
    }
    rc = mq_media_put_chunk(u->store, u->id, u->next_n, u->buf + off, n, err);
    if (rc == MQ_OK) {
      u->next_n++;
      off += n;
    }
  }
  memmove(u->buf, u->buf + off, u->len - off);
  u->len -= off;
  return rc;
}

static void upload_append(upload_t *u, const uint8_t *p, size_t n) {
  if (u->len + n > u->cap) {
    size_t cap = u->cap ? u->cap * 2 : 64 * 1024;
    while (cap < u->len + n) cap *= 2;
    uint8_t *nb = mq_xrealloc(u->buf, cap);
    u->buf = nb;
    u->cap = cap;
  }
  memcpy(u->buf + u->len, p, n);
  u->len += n;
  for (size_t i = 0; i < n && u->head_len < sizeof u->head; i++) u->head[u->head_len++] = p[i];
  if (n >= sizeof u->tail) {
    memcpy(u->tail, p + n - sizeof u->tail, sizeof u->tail);
    u->tail_len = sizeof u->tail;
  } else {
    size_t keep = u->tail_len + n > sizeof u->tail ? sizeof u->tail - n : u->tail_len;
    memmove(u->tail, u->tail + u->tail_len - keep, keep);
    memcpy(u->tail + keep, p, n);
    u->tail_len = keep + n;
  }
  EVP_DigestUpdate(u->sha, p, n);
  u->received += (int64_t)n;
}

/* mq_image_check_complete's rules (mq_image.h) from the first and last bytes
 * and the size, since the file is not in memory as a whole. The probe has
 * already checked how the file starts. */
static bool ends_properly(const upload_t *u) {
  const uint8_t *t = u->tail + u->tail_len;
  switch (u->info.type) {
    case MQ_IMAGE_JPEG:
      return u->total >= 4 && u->tail_len >= 2 && t[-2] == 0xFF && t[-1] == 0xD9;
    case MQ_IMAGE_PNG:
      return u->total >= 8 + 25 + 12 && u->tail_len == 12 &&
             memcmp(u->tail,
                    "\x00\x00\x00\x00"
                    "IEND"
                    "\xAE\x42\x60\x82",
                    12) == 0;
    case MQ_IMAGE_WEBP: {
      uint64_t riff = u->head_len >= 8 ? (uint64_t)u->head[4] | (uint64_t)u->head[5] << 8 | (uint64_t)u->head[6] << 16 |
                                             (uint64_t)u->head[7] << 24
                                       : 0;
      return u->total >= 20 && riff + 8 == (uint64_t)u->total;
    }
    default:
      return false;
  }
}

static mq_code_t upload_msg(mq_call_t *call, const Marquee__Catalog__V1__UploadImageChunk *req, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  upload_t *u = mq_call_state(call);
  mq_code_t rc;
  if (!u) {
    if ((rc = upload_begin(call, req->metadata, &u, err)) != MQ_OK) return rc;
  } else if (req->metadata) {
    return upload_fail(u, mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata", "only the first chunk carries it"));
  }
  if (mq_now_unix_ms() - u->started_ms > UPLOAD_MAX_MS)
    return upload_fail(u, mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "an upload may take at most %d minutes",
                                       UPLOAD_MAX_MS / 60000));
  size_t n = req->data.len;
  if (n > CHUNK_DATA_MAX)
    return upload_fail(
        u, mq_error_set(err, MQ_INVALID_ARGUMENT, "data", "a chunk carries at most %d bytes", CHUNK_DATA_MAX));
  if ((int64_t)n > u->total - u->received)
    return upload_fail(
        u, mq_error_set(err, MQ_INVALID_ARGUMENT, "data",
                        "the stream carries more than metadata.total_size (%lld) bytes", (long long)u->total));
  if (n == 0) return MQ_OK;
  upload_append(u, req->data.data, n);
  if (!u->probed) {
    mq_image_status_t st = mq_image_probe(u->buf, u->len, &u->info);
    if (st == MQ_IMAGE_INVALID)
      return upload_fail(u, mq_error_set(err, MQ_INVALID_ARGUMENT, "data", "must be a JPEG, PNG or WebP image"));
    if (st == MQ_IMAGE_DONE) {
      mq_image_limits_t lim = {(uint64_t)app->cfg->media_max_bytes, SIDE_MAX, SIDE_MAX,
                               (uint64_t)app->cfg->media_max_pixels};
      if ((rc = mq_image_check_limits(err, "data", &u->info, (uint64_t)u->total, &lim)) != MQ_OK)
        return upload_fail(u, rc);
      u->probed = true;
    }
  }
  if (u->probed && (rc = upload_flush(u, false, err)) != MQ_OK) return upload_fail(u, rc);
  return MQ_OK;
}

static mq_code_t upload_end(mq_call_t *call, Marquee__Catalog__V1__Image *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  upload_t *u = mq_call_state(call);
  if (!u)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata",
                        "the stream carried no chunk (the first one carries the metadata)");
  if (mq_now_unix_ms() - u->started_ms > UPLOAD_MAX_MS)
    return upload_fail(u, mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "an upload may take at most %d minutes",
                                       UPLOAD_MAX_MS / 60000));
  if (u->received < u->total)
    return upload_fail(u, mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata.total_size",
                                       "the stream ended before total_size bytes (%lld of %lld arrived)",
                                       (long long)u->received, (long long)u->total));
  if (!u->probed)
    return upload_fail(u,
                       mq_error_set(err, MQ_INVALID_ARGUMENT, "data", "is truncated (the image header is incomplete)"));
  if (!ends_properly(u))
    return upload_fail(
        u, mq_error_set(err, MQ_INVALID_ARGUMENT, "data", "is truncated (the %s file does not end properly)",
                        mq_image_mime(u->info.type)));
  mq_code_t rc = upload_flush(u, true, err);
  if (rc != MQ_OK) return upload_fail(u, rc);

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_DigestFinal_ex(u->sha, md, &md_len) != 1 || md_len != 32)
    return upload_fail(u, mq_error_set(err, MQ_INTERNAL, NULL, "cannot finish the image's SHA-256 digest (OpenSSL)"));
  char *hex = mq_arena_alloc(a, 65);
  for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  const mq_principal_t *who = mq_call_principal(call);
  const char *tracked[1] = {u->event_id};
  mq_image_t img = {.id = u->id,
                    .organization_id = u->org,
                    .event_id = u->event_id ? u->event_id : "",
                    .filename = u->filename,
                    .mime_type = mq_image_mime(u->info.type),
                    .sha256 = hex,
                    .alt_text = u->alt_text,
                    .created_by = who ? mq_arena_strdup(a, who->subject) : "",
                    .width = u->info.width,
                    .height = u->info.height,
                    .size_bytes = u->total,
                    .chunk_size = MQ_MEDIA_CHUNK_SIZE,
                    .created_ms = mq_now_unix_ms(),
                    .event_ids = tracked,
                    .n_event_ids = u->event_id ? 1 : 0};
  Marquee__Events__V1__ImageUploaded pl = MARQUEE__EVENTS__V1__IMAGE_UPLOADED__INIT;
  pl.event_id = (char *)img.event_id;
  pl.organization_id = (char *)img.organization_id;
  pl.image_id = u->id;
  pl.mime_type = (char *)img.mime_type;
  pl.size_bytes = img.size_bytes;
  pl.sha256 = hex;
  mq_event_t ev;
  media_event(&ev, call, "catalog.ImageUploaded", u->id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_IMAGE_UPLOADED;
  ev.env.image_uploaded = &pl;
  if ((rc = mq_media_commit(app->store, &img, &ev, err)) != MQ_OK) return upload_fail(u, rc);
  u->committed = true;
  if (u->event_id) {
    int64_t version;
    rc = edit_event(call, u->event_id, u->org, u->id, ATTACH, &version, err);
    if (rc != MQ_OK) { /* the upload fails as a whole: the image goes again, visibly */
      if (!strcmp(err->field, "event_id")) mq_error_rename_field(err, "metadata.event_id");
      Marquee__Events__V1__ImageDeleted dl = MARQUEE__EVENTS__V1__IMAGE_DELETED__INIT;
      dl.event_id = (char *)img.event_id;
      dl.organization_id = (char *)img.organization_id;
      dl.image_id = u->id;
      mq_event_t dev;
      media_event(&dev, call, "catalog.ImageDeleted", u->id);
      dev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_IMAGE_DELETED;
      dev.env.image_deleted = &dl;
      mq_error_t derr;
      if (mq_media_delete(app->store, &img, img.created_by, &dev, &derr) != MQ_OK)
        mq_log(MQ_LOG_WARN, "media.undo_failed", "image %s stays unattached: %s", u->id, derr.message);
      return rc;
    }
  }
  mq_error_t ignored; /* a record left behind is dropped by the sweep (the files document exists) */
  if (mq_media_pending_end(app->store, u->id, &ignored) != MQ_OK)
    mq_log(MQ_LOG_WARN, "media.pending_left", "pending record of image %s left for the sweep", u->id);
  *resp = *image_to_pb(call, &img);
  return MQ_OK;
}

/* ---- the other methods --------------------------------------------------------------- */

static mq_code_t image_get(mq_call_t *call, const Marquee__Catalog__V1__GetImageRequest *req,
                           Marquee__Catalog__V1__Image *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_image_t m;
  mq_code_t rc = mq_check_uuid(err, "image_id", req->image_id);
  if (rc == MQ_OK) rc = mq_media_get(app->store, req->image_id, mq_call_arena(call), &m, err);
  if (rc == MQ_OK) *resp = *image_to_pb(call, &m);
  return rc;
}

static mq_code_t image_list(mq_call_t *call, const Marquee__Catalog__V1__ListImagesRequest *req,
                            Marquee__Catalog__V1__ListImagesResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_CHECKIN, NULL, err);
  if (rc != MQ_OK) return rc;
  uint32_t limit = PAGE_DEFAULT;
  mq_media_query_t q = {.organization_id = req->organization_id};
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_page_size(err, "page_size", req->page_size, PAGE_DEFAULT, PAGE_MAX, &limit);
  if (req->event_id && req->event_id[0] && mq_check_uuid(err, "event_id", req->event_id) == MQ_OK)
    q.event_id = req->event_id;
  /* page tokens (lib/mq_page.h): the cursor is "<upload ms>.<image id>" of the page's last image */
  mq_page_token_read_key(a, &req->base, "page_token", req->page_token, &q.has_cursor, &q.after_ms, &q.after_id, err);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  q.limit = limit + 1; /* one more: a next page? */
  mq_image_t *ms = mq_arena_alloc(a, q.limit * sizeof *ms);
  size_t n = 0;
  if ((rc = mq_media_list(app->store, &q, a, ms, &n, err)) != MQ_OK) return rc;
  bool more = n > limit;
  if (more) n = limit;
  resp->images = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->images);
  for (size_t k = 0; k < n; k++) resp->images[resp->n_images++] = image_to_pb(call, &ms[k]);
  resp->next_page_token = more ? mq_page_token_make_key(a, &req->base, ms[n - 1].created_ms, ms[n - 1].id) : (char *)"";
  return MQ_OK;
}

static mq_code_t image_delete(mq_call_t *call, const Marquee__Catalog__V1__DeleteImageRequest *req,
                              Marquee__Catalog__V1__DeleteImageResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_image_t m;
  mq_code_t rc = load_authorized(call, req->image_id, MQ_ORG_MANAGER, &m, err);
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < m.n_event_ids; i++) { /* references first: a failure leaves the image whole */
    int64_t version;
    if ((rc = edit_event(call, m.event_ids[i], m.organization_id, m.id, DETACH, &version, err)) != MQ_OK) return rc;
  }
  Marquee__Events__V1__ImageDeleted pl = MARQUEE__EVENTS__V1__IMAGE_DELETED__INIT;
  pl.event_id = (char *)m.event_id;
  pl.organization_id = (char *)m.organization_id;
  pl.image_id = (char *)m.id;
  mq_event_t ev;
  media_event(&ev, call, "catalog.ImageDeleted", m.id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_IMAGE_DELETED;
  ev.env.image_deleted = &pl;
  rc = mq_media_delete(app->store, &m, mq_call_principal(call)->subject, &ev, err);
  return rc;
}

static mq_code_t image_set_cover(mq_call_t *call, const Marquee__Catalog__V1__SetCoverImageRequest *req,
                                 Marquee__Catalog__V1__SetCoverImageResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "event_id", req->event_id);
  if (rc != MQ_OK) return rc;
  event_pb *e;
  rc = mq_events_get(app->store, req->event_id, a, &e, err);
  if (rc == MQ_OK) rc = mq_org_require(call, e->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "event_id", "changing events needs the manager role or stronger");
  if (rc != MQ_OK) return rc;
  if (finished(e))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "a cancelled or completed event cannot change");
  const char *image_id = req->image_id ? req->image_id : "";
  if (image_id[0]) {
    if ((rc = mq_check_uuid(err, "image_id", image_id)) != MQ_OK) return rc;
    mq_image_t m;
    rc = mq_media_get(app->store, image_id, a, &m, err);
    if (rc == MQ_OK && strcmp(m.organization_id, e->organization_id)) rc = MQ_NOT_FOUND;
    if (rc == MQ_NOT_FOUND)
      return mq_error_set(err, MQ_NOT_FOUND, "image_id", "no such image in the event's organization");
    /* tracked before the event refers to it, so that DeleteImage finds it */
    if (rc == MQ_OK) rc = mq_media_track_event(app->store, image_id, e->event_id, err);
    if (rc != MQ_OK) return rc;
  }
  int64_t version = e->version;
  if ((rc = edit_event(call, e->event_id, e->organization_id, image_id, COVER, &version, err)) != MQ_OK) return rc;
  resp->event_id = e->event_id;
  resp->cover_image_id = (char *)image_id;
  resp->event_version = version;
  return MQ_OK;
}

static const marquee__catalog__v1__media_service_handlers_t handlers = {
    .upload_image = {upload_msg, upload_end, MQ_POLICY_RESOURCE, 0},
    .get_image = {image_get, MQ_POLICY_PUBLIC, 0},
    .list_images = {image_list, MQ_POLICY_RESOURCE, 0},
    .delete_image = {image_delete, MQ_POLICY_RESOURCE, 0},
    .set_cover_image = {image_set_cover, MQ_POLICY_RESOURCE, 0},
};

int media_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__catalog__v1__media_service__mq_register(srv, &handlers);
}

/* ---- the probe thread's part ------------------------------------------------------------ */

void media_sweep(mq_app_t *app) {
  static int64_t last_ms; /* the probe thread is the only caller */
  char ids[ABANDONED_MAX][37];
  pthread_mutex_lock(&g_abandoned_mu);
  size_t n = g_n_abandoned;
  memcpy(ids, g_abandoned, n * sizeof ids[0]);
  g_n_abandoned = 0;
  pthread_mutex_unlock(&g_abandoned_mu);
  for (size_t i = 0; i < n; i++) {
    mq_error_t err;
    if (mq_media_discard(app->store, ids[i], &err) != MQ_OK) /* the pending record stays: swept later */
      mq_log(MQ_LOG_WARN, "media.discard_failed", "upload %s: %s", ids[i], err.message);
  }
  int64_t now = mq_now_unix_ms();
  if (now - last_ms >= SWEEP_EVERY_MS) {
    last_ms = now;
    mq_media_sweep(app->store, now - PENDING_GRACE_MS);
  }
}

/* ---- GET /media/{id} ----------------------------------------------------------------------- */

typedef struct {
  mq_store_t *store;
  char id[37];
  uint64_t size;
  uint32_t chunk_size;
  uint32_t n; /* the chunk held in `data` */
  uint8_t *data;
  size_t len;
} media_stream_t;

static long media_read(void *arg, uint64_t pos, char *buf, size_t max) {
  media_stream_t *m = arg;
  if (pos >= m->size) return -1;
  uint32_t n = (uint32_t)(pos / m->chunk_size);
  if (!m->data || m->n != n) {
    free(m->data);
    m->data = NULL;
    void *data;
    size_t len;
    mq_error_t err;
    if (mq_media_read_chunk(m->store, m->id, n, &data, &len, &err) != MQ_OK) return -1;
    uint64_t want = m->size - (uint64_t)n * m->chunk_size;
    if (want > m->chunk_size) want = m->chunk_size;
    if (len != want) { /* damaged or being deleted: abort rather than send wrong bytes */
      free(data);
      return -1;
    }
    m->data = data;
    m->len = len;
    m->n = n;
  }
  size_t off = (size_t)(pos - (uint64_t)n * m->chunk_size), k = m->len - off < max ? m->len - off : max;
  memcpy(buf, m->data + off, k);
  return (long)k;
}

static void media_stream_free(void *arg) {
  media_stream_t *m = arg;
  free(m->data);
  free(m);
}

/* True if the If-None-Match header lists `etag` (weak or strong) or is "*". */
static bool etag_listed(const char *header, const char *etag) {
  size_t el = strlen(etag);
  for (const char *p = header; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!strncmp(p, "W/", 2)) p += 2;
    const char *end = p;
    while (*end && *end != ',') end++;
    const char *last = end;
    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
    if ((last - p == 1 && *p == '*') || ((size_t)(last - p) == el && !strncmp(p, etag, el))) return true;
    p = end;
  }
  return false;
}

static void text_reply(mq_http_response_t *r, int status, const char *body) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  r->body = mq_xstrdup(body);
  r->body_len = strlen(body);
}

static void media_http_get(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  (void)method;
  mq_app_t *app = arg;
  const char *id = path + strlen("/media/");
  if (mq_check_uuid(NULL, NULL, id) != MQ_OK) {
    text_reply(r, 400, "not an image id\n");
    return;
  }
  mq_arena_t a;
  mq_arena_init(&a);
  mq_image_t m;
  mq_error_t err;
  mq_code_t rc = mq_media_get(app->store, id, &a, &m, &err);
  if (rc == MQ_NOT_FOUND) {
    text_reply(r, 404, "no such image\n");
  } else if (rc != MQ_OK || m.chunk_size <= 0 || m.size_bytes <= 0) {
    text_reply(r, 503, "try again later\n");
  } else {
    static const mq_image_type_t types[] = {MQ_IMAGE_JPEG, MQ_IMAGE_PNG, MQ_IMAGE_WEBP};
    r->content_type = "application/octet-stream";
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
      if (!strcmp(m.mime_type, mq_image_mime(types[i]))) r->content_type = mq_image_mime(types[i]); /* static */
    snprintf(r->etag, sizeof r->etag, "\"%s\"", m.sha256);
    r->cache_control = CACHE_CONTROL;
    const char *inm = mq_http_request_header(r, "If-None-Match");
    if (inm && etag_listed(inm, r->etag)) {
      r->status = 304;
      r->body = mq_xstrdup("");
      r->body_len = 0;
    } else {
      media_stream_t *s = mq_xcalloc(1, sizeof *s);
      s->store = app->store;
      snprintf(s->id, sizeof s->id, "%s", m.id);
      s->size = (uint64_t)m.size_bytes;
      s->chunk_size = (uint32_t)m.chunk_size;
      r->status = 200;
      r->stream_size = s->size;
      r->stream_read = media_read;
      r->stream_free = media_stream_free;
      r->stream_arg = s;
    }
  }
  mq_arena_release(&a);
}

void media_http_register(mq_app_t *app, mq_http_t *http) {
  mq_http_route(http, "/media/", media_http_get, app);
}
