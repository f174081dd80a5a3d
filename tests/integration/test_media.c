/*
 * test_media.c — marquee.catalog.v1.MediaService and GET /media/{id} end to
 * end on the real stack (marquee-server, marquee-audit, FerretDB, Kafka).
 *
 * Uploads a real 1x1 PNG, a real 1x1 WebP and two built JPEGs (one of
 * ~700 KB, so three GridFS chunks, with its SOF behind 120 KB of comment
 * segments) in many client-stream chunks, and reads them back byte for byte
 * over HTTP (ETag, Cache-Control, 304 on If-None-Match, 404, 400) and through
 * libmongoc's own GridFS bucket API. Every refusal — not an image (found on
 * the first chunk, before the rest is sent), too large, too many pixels,
 * more or fewer bytes than declared, truncated, bad metadata — is
 * INVALID_ARGUMENT and leaves the media collections exactly as they were,
 * also when chunks had been written already; a client that cancels
 * mid-stream leaves nothing once the probe thread has run; a server killed
 * mid-upload leaves a pending record that the next server's sweep completes.
 * Then attach to an event, cover, delete (references removed, also from a
 * cancelled event), who may call what, pagination, and ImageUploaded /
 * ImageDeleted in the audit log. Members are made through
 * OrganizationService as real users would (as test_venues.c does).
 */
#include <curl/curl.h>
#include <mongoc/mongoc.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/media.mq-client.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define PASSWORD "correct horse battery staple"
#define MAX_BYTES (1024 * 1024) /* MARQUEE_MEDIA_MAX_BYTES of the test server */

static mq_test_proc_t srv, audit;
static mq_client_t *cl;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_ARGON2_MEMORY_KIB=1024", "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_SIGNUP_ADDRESS_LIMIT=1000", "MARQUEE_MEDIA_MAX_BYTES=1048576", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return cl ? 0 : -1;
}

/* ---- people and organizations (as in test_venues.c) ------------------------------ */

static struct {
  bool ready;
  char org_a[64], org_b[64];
  char *alice, *bob, *carol, *dave, *erin;
} w;

static int teardown(void **state) {
  (void)state;
  free(w.alice);
  free(w.bob);
  free(w.carol);
  free(w.dave);
  free(w.erin);
  mq_client_destroy(cl);
  curl_global_cleanup();
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return a == 0 && s == 0 ? 0 : -1;
}

/* Signs a user up; returns its access token (caller frees) (fixtures.h). */
static char *new_user(const char *tag, char *uid, size_t n, char *email, size_t en) {
  return mq_fx_user(cl, tag, PASSWORD, uid, n, email, en);
}

/* Creates an organization as `organizer` (a token with the organizer role). */
static void new_org(const char *organizer, const char *tag, char *oid, size_t n) {
  char out[40];
  mq_fx_org(cl, organizer, tag, out);
  snprintf(oid, n, "%s", out);
}

/* Invites `email` as `tok`, then accepts as `invitee` (fixtures.h). */
static void add_member(const char *tok, const char *org, const char *email, Marquee__Identity__V1__MemberRole role,
                       const char *invitee) {
  mq_fx_add_member(cl, srv.db, tok, org, email, role, invitee);
}

/* org A: alice owner, bob manager, carol check-in staff; org B: dave;
 * erin is signed in and a member of nothing. */
static void world(void) {
  if (w.ready) return;
  char uid[64], mail[96], bob_mail[96], carol_mail[96];
  char *t = new_user("alice", uid, sizeof uid, mail, sizeof mail);
  assert_non_null(t);
  free(t);
  w.alice = mq_test_token(uid, MQ_ROLE_ORGANIZER);
  w.bob = new_user("bob", uid, sizeof uid, bob_mail, sizeof bob_mail);
  w.carol = new_user("carol", uid, sizeof uid, carol_mail, sizeof carol_mail);
  t = new_user("dave", uid, sizeof uid, mail, sizeof mail);
  assert_non_null(t);
  free(t);
  w.dave = mq_test_token(uid, MQ_ROLE_ORGANIZER);
  w.erin = new_user("erin", uid, sizeof uid, mail, sizeof mail);
  assert_non_null(w.bob);
  assert_non_null(w.carol);
  assert_non_null(w.erin);
  new_org(w.alice, "media-a", w.org_a, sizeof w.org_a);
  new_org(w.dave, "media-b", w.org_b, sizeof w.org_b);
  add_member(w.alice, w.org_a, bob_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, w.bob);
  add_member(w.alice, w.org_a, carol_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF, w.carol);
  w.ready = true;
}

/* ---- sample files ----------------------------------------------------------------- */

/* A real 1x1 RGBA PNG (tests/unit/lib/test_image.c). */
static const uint8_t PNG_1X1[] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
                                  0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
                                  0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
                                  0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xd0, 0x00, 0x00, 0x04, 0x81, 0x01, 0x80, 0x2c, 0x55,
                                  0xce, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
/* A real 1x1 lossy WebP (tests/unit/lib/test_image.c). */
static const uint8_t WEBP_LOSSY[] = {0x52, 0x49, 0x46, 0x46, 0x22, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42,
                                     0x50, 0x56, 0x50, 0x38, 0x20, 0x16, 0x00, 0x00, 0x00, 0x30, 0x01,
                                     0x00, 0x9d, 0x01, 0x2a, 0x01, 0x00, 0x01, 0x00, 0x0e, 0xc0, 0xfe,
                                     0x25, 0xa4, 0x00, 0x03, 0x70, 0x00, 0x00, 0x00, 0x00};

typedef struct {
  uint8_t *b;
  size_t n, cap;
} buf_t;

static void put(buf_t *f, const void *p, size_t n) {
  if (f->n + n > f->cap) {
    f->cap = (f->n + n) * 2;
    f->b = realloc(f->b, f->cap);
    assert_non_null(f->b);
  }
  memcpy(f->b + f->n, p, n);
  f->n += n;
}
static void put8(buf_t *f, unsigned v) {
  uint8_t b = (uint8_t)v;
  put(f, &b, 1);
}
static void put16be(buf_t *f, unsigned v) {
  put8(f, v >> 8);
  put8(f, v);
}
static void put32be(buf_t *f, uint32_t v) {
  put16be(f, v >> 16);
  put16be(f, v & 0xFFFF);
}

/* A structurally complete baseline JPEG of exactly `total` bytes, w x h:
 * SOI, APP0, `comments` bytes of COM segments before the SOF (as EXIF would
 * be), DQT, SOF0, DHT, SOS, entropy-coded filler (no 0xFF), EOI. */
static buf_t jpeg_make(size_t total, uint32_t width, uint32_t height, size_t comments) {
  buf_t f = {0};
  put(&f, "\xFF\xD8", 2);
  put(&f, "\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 18);
  while (comments > 4) {
    size_t seg = comments - 4 > 65000 ? 65000 : comments - 4;
    put(&f, "\xFF\xFE", 2);
    put16be(&f, (unsigned)seg + 2);
    for (size_t i = 0; i < seg; i++) put8(&f, 'a' + i % 26);
    comments -= seg + 4;
  }
  put(&f, "\xFF\xDB\x00\x43\x00", 5);
  for (int i = 0; i < 64; i++) put8(&f, 1);
  put(&f, "\xFF\xC0", 2);
  put16be(&f, 17);
  put8(&f, 8);
  put16be(&f, height);
  put16be(&f, width);
  put8(&f, 3);
  put(&f, "\x01\x11\x00\x02\x11\x00\x03\x11\x00", 9);
  put(&f, "\xFF\xC4\x00\x14\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 22);
  put(&f, "\xFF\xDA\x00\x0C\x03\x01\x00\x02\x11\x03\x11\x00\x3F\x00", 14);
  assert_true(total > f.n + 2);
  uint32_t x = 12345;
  while (f.n < total - 2) {
    x = x * 1103515245u + 12345u;
    put8(&f, (x >> 16) % 0xFF); /* never 0xFF */
  }
  put(&f, "\xFF\xD9", 2);
  return f;
}

/* A PNG whose IHDR says w x h (correct CRC), then IEND. */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}
static buf_t png_make(uint32_t width, uint32_t height, bool with_iend) {
  buf_t f = {0};
  put(&f, "\x89PNG\r\n\x1a\n", 8);
  put32be(&f, 13);
  size_t start = f.n;
  put(&f, "IHDR", 4);
  put32be(&f, width);
  put32be(&f, height);
  put(&f, "\x08\x06\x00\x00\x00", 5);
  put32be(&f, crc32_png(f.b + start, 17));
  put(&f, PNG_1X1 + 33, sizeof PNG_1X1 - 33 - 12); /* the IDAT of the 1x1 file */
  if (with_iend) put(&f, PNG_1X1 + sizeof PNG_1X1 - 12, 12);
  return f;
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
  for (unsigned i = 0; i < len; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- calls ------------------------------------------------------------------------ */

typedef struct {
  const char *tok, *org, *event_id, *alt_text;
  int64_t declared; /* 0: the real length */
  size_t chunk;     /* bytes per message */
} up_t;

/* Streams data[0..len) in chunks; the first carries the metadata. A send
 * refused because the server ended the call returns the server's status. */
static mq_code_t upload_with(const up_t *u, const void *data, size_t len, Marquee__Catalog__V1__Image **out,
                             mq_error_t *err) {
  if (out) *out = NULL;
  mq_call_opts_t o = {.bearer_token = u->tok, .deadline_ms = 30000};
  mq_client_stream_t *st = NULL;
  mq_code_t rc = marquee__catalog__v1__media_service__upload_image__open(cl, &o, &st, err);
  if (rc != MQ_OK) return rc;
  Marquee__Catalog__V1__UploadImageMetadata md = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_METADATA__INIT;
  md.organization_id = (char *)u->org;
  md.event_id = (char *)(u->event_id ? u->event_id : "");
  md.filename = (char *)"photo.gif"; /* the name is never believed */
  md.total_size = u->declared ? u->declared : (int64_t)len;
  md.alt_text = (char *)(u->alt_text ? u->alt_text : "");
  size_t chunk = u->chunk ? u->chunk : 64 * 1024;
  size_t off = 0;
  do {
    Marquee__Catalog__V1__UploadImageChunk c = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
    if (off == 0) c.metadata = &md;
    size_t n = len - off < chunk ? len - off : chunk;
    c.data.data = (uint8_t *)data + off;
    c.data.len = n;
    rc = marquee__catalog__v1__media_service__upload_image__send(st, &c, err);
    off += n;
  } while (rc == MQ_OK && off < len);
  Marquee__Catalog__V1__Image *img = NULL;
  if (rc == MQ_OK) rc = mq_client_stream_close_send(st, err);
  /* a send after the server ended the call fails; recv tells how it ended */
  if (rc == MQ_OK || rc == MQ_FAILED_PRECONDITION)
    rc = marquee__catalog__v1__media_service__upload_image__recv(st, &img, err);
  if (rc == MQ_OK && !img) rc = MQ_INTERNAL;
  if (rc == MQ_OK) {
    mq_error_t end;
    assert_int_equal(mq_client_stream_finish(st, &end), MQ_OK);
  }
  mq_client_stream_free(st);
  if (out)
    *out = img;
  else if (img)
    marquee__catalog__v1__image__free_unpacked(img, NULL);
  return rc;
}

static mq_code_t upload(const char *tok, const char *org, const void *data, size_t len, size_t chunk,
                        Marquee__Catalog__V1__Image **out, mq_error_t *err) {
  up_t u = {.tok = tok, .org = org, .chunk = chunk};
  return upload_with(&u, data, len, out, err);
}

static mq_code_t get_image(const char *tok, const char *id, Marquee__Catalog__V1__Image **out, mq_error_t *err) {
  Marquee__Catalog__V1__GetImageRequest q = MARQUEE__CATALOG__V1__GET_IMAGE_REQUEST__INIT;
  q.image_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Image *r = NULL;
  mq_code_t rc = marquee__catalog__v1__media_service__get_image__call(cl, &q, &r, &o, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__image__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t del_image(const char *tok, const char *id, mq_error_t *err) {
  Marquee__Catalog__V1__DeleteImageRequest q = MARQUEE__CATALOG__V1__DELETE_IMAGE_REQUEST__INIT;
  q.image_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__DeleteImageResponse *r = NULL;
  mq_code_t rc = marquee__catalog__v1__media_service__delete_image__call(cl, &q, &r, &o, err);
  if (r) marquee__catalog__v1__delete_image_response__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t list_images(const char *tok, const char *org, const char *event_id, uint32_t size,
                             const char *page_token, Marquee__Catalog__V1__ListImagesResponse **out, mq_error_t *err) {
  Marquee__Catalog__V1__ListImagesRequest q = MARQUEE__CATALOG__V1__LIST_IMAGES_REQUEST__INIT;
  q.organization_id = (char *)org;
  q.event_id = (char *)(event_id ? event_id : "");
  q.page_size = size;
  q.page_token = (char *)(page_token ? page_token : "");
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__ListImagesResponse *r = NULL;
  mq_code_t rc = marquee__catalog__v1__media_service__list_images__call(cl, &q, &r, &o, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__list_images_response__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t set_cover(const char *tok, const char *event_id, const char *image_id, int64_t *version,
                           mq_error_t *err) {
  Marquee__Catalog__V1__SetCoverImageRequest q = MARQUEE__CATALOG__V1__SET_COVER_IMAGE_REQUEST__INIT;
  q.event_id = (char *)event_id;
  q.image_id = (char *)image_id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__SetCoverImageResponse *r = NULL;
  mq_code_t rc = marquee__catalog__v1__media_service__set_cover_image__call(cl, &q, &r, &o, err);
  if (r) {
    assert_string_equal(r->cover_image_id, image_id);
    if (version) *version = r->event_version;
    marquee__catalog__v1__set_cover_image_response__free_unpacked(r, NULL);
  }
  return rc;
}

/* A draft event of `org` made by `tok`; its id into id[37]. */
static void new_event(const char *tok, const char *org, const char *title, char id[37]) {
  Marquee__Catalog__V1__Event e = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, end = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  s.seconds = time(NULL) + 30 * 86400;
  end.seconds = s.seconds + 3600;
  e.organization_id = (char *)org;
  e.title = (char *)title;
  e.online_url = (char *)"https://stream.example.com/live/1";
  e.starts_at = &s;
  e.ends_at = &end;
  e.time_zone = (char *)"Europe/Paris";
  e.currency = (char *)"EUR";
  Marquee__Catalog__V1__CreateEventRequest q = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  q.event = &e;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Event *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__create_event__call(cl, &q, &r, &o, &err), MQ_OK);
  snprintf(id, 37, "%s", r->event_id);
  marquee__catalog__v1__event__free_unpacked(r, NULL);
}

static Marquee__Catalog__V1__Event *get_event(const char *tok, const char *id) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Event *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(cl, &q, &r, &o, &err), MQ_OK);
  return r;
}

static void cancel_event(const char *tok, const char *id) {
  Marquee__Catalog__V1__CancelEventRequest q = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  q.reason = (char *)"Rained out";
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Event *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(cl, &q, &r, &o, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(r, NULL);
}

/* ---- HTTP ------------------------------------------------------------------------- */

typedef struct {
  long status;
  buf_t body;
  char headers[4096];
  size_t hlen;
} http_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  put(&((http_t *)arg)->body, p, size * n);
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg) {
  http_t *h = arg;
  size_t k = size * n;
  if (h->hlen + k < sizeof h->headers) {
    memcpy(h->headers + h->hlen, p, k);
    h->hlen += k;
    h->headers[h->hlen] = '\0';
  }
  return k;
}

/* GET (or HEAD) http://<side port><path>, optionally with If-None-Match. */
static http_t http(const char *method, const char *path, const char *if_none_match) {
  http_t h = {0};
  char url[256], inm[128];
  snprintf(url, sizeof url, "http://%s%s", srv.http, path);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  struct curl_slist *hdrs = NULL;
  if (if_none_match) {
    snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match);
    hdrs = curl_slist_append(hdrs, inm);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return h;
}

/* The value of header `name` ("" if absent), into out[n]. */
static const char *header(const http_t *h, const char *name, char *out, size_t n) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *p = h->headers; *p;) {
    const char *eol = strstr(p, "\r\n");
    if (!eol) break;
    if (!strncasecmp(p, name, nl) && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      snprintf(out, n, "%.*s", (int)(eol - v), v);
    }
    p = eol + 2;
  }
  return out;
}

/* ---- store inspection ------------------------------------------------------------------ */

/* Everything a media upload may leave: files, chunks, pending records. */
static int64_t stored(void) {
  return mq_test_count(NULL, srv.db, "media.files", "{}") + mq_test_count(NULL, srv.db, "media.chunks", "{}") +
         mq_test_count(NULL, srv.db, "media_pending", "{}");
}

static int64_t chunks_of(const char *db, const char *id) {
  char f[128];
  snprintf(f, sizeof f, "{\"files_id\": \"%s\"}", id);
  return mq_test_count(NULL, db, "media.chunks", f);
}

/* The bytes of file `id` read through libmongoc's GridFS bucket API. */
static buf_t gridfs_read(const char *id) {
  buf_t out = {0};
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  assert_non_null(c);
  mongoc_database_t *db = mongoc_client_get_database(c, srv.db);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&opts, "bucketName", "media");
  bson_error_t e;
  mongoc_gridfs_bucket_t *b = mongoc_gridfs_bucket_new(db, &opts, NULL, &e);
  assert_non_null(b);
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)id;
  v.value.v_utf8.len = (uint32_t)strlen(id);
  mongoc_stream_t *s = mongoc_gridfs_bucket_open_download_stream(b, &v, &e);
  assert_non_null(s);
  char tmp[65536];
  ssize_t r;
  while ((r = mongoc_stream_read(s, tmp, sizeof tmp, 1, 0)) > 0) put(&out, tmp, (size_t)r);
  mongoc_stream_destroy(s);
  mongoc_gridfs_bucket_destroy(b);
  bson_destroy(&opts);
  mongoc_database_destroy(db);
  mongoc_client_destroy(c);
  return out;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Uploads `data` in `chunk`-byte messages, checks the Image, then reads it
 * back over HTTP (200 with the headers, 304, HEAD) and through GridFS. */
static void roundtrip(const void *data, size_t len, size_t chunk, const char *mime, uint32_t width, uint32_t height,
                      char id_out[37]) {
  Marquee__Catalog__V1__Image *img = NULL;
  mq_error_t err;
  up_t u = {.tok = w.alice, .org = w.org_a, .chunk = chunk, .alt_text = "The stage from row 3"};
  assert_int_equal(upload_with(&u, data, len, &img, &err), MQ_OK);
  char sha[65], path[128], etag[80], v[256];
  sha256_hex(data, len, sha);
  assert_string_equal(img->mime_type, mime);
  assert_int_equal(img->width, width);
  assert_int_equal(img->height, height);
  assert_int_equal(img->size_bytes, (int64_t)len);
  assert_string_equal(img->sha256, sha);
  assert_string_equal(img->organization_id, w.org_a);
  assert_string_equal(img->event_id, "");
  assert_string_equal(img->alt_text, "The stage from row 3");
  assert_non_null(img->created_at);
  snprintf(path, sizeof path, "/media/%s", img->image_id);
  assert_string_equal(img->url, path);
  snprintf(id_out, 37, "%s", img->image_id);
  marquee__catalog__v1__image__free_unpacked(img, NULL);

  /* GetImage is public */
  assert_int_equal(get_image(NULL, id_out, &img, &err), MQ_OK);
  assert_string_equal(img->sha256, sha);
  assert_int_equal(img->size_bytes, (int64_t)len);
  marquee__catalog__v1__image__free_unpacked(img, NULL);

  http_t h = http("GET", path, NULL);
  assert_int_equal(h.status, 200);
  assert_int_equal(h.body.n, len);
  assert_memory_equal(h.body.b, data, len);
  assert_string_equal(header(&h, "Content-Type", v, sizeof v), mime);
  snprintf(etag, sizeof etag, "\"%s\"", sha);
  assert_string_equal(header(&h, "ETag", v, sizeof v), etag);
  assert_string_equal(header(&h, "Cache-Control", v, sizeof v), "public, max-age=31536000, immutable");
  assert_string_equal(header(&h, "X-Content-Type-Options", v, sizeof v), "nosniff");
  free(h.body.b);

  h = http("GET", path, etag); /* the browser's revalidation */
  assert_int_equal(h.status, 304);
  assert_int_equal(h.body.n, 0);
  assert_string_equal(header(&h, "ETag", v, sizeof v), etag);
  free(h.body.b);
  char list[200];
  snprintf(list, sizeof list, "\"0000\", W/%s", etag);
  h = http("GET", path, list);
  assert_int_equal(h.status, 304);
  free(h.body.b);
  h = http("GET", path, "\"not-it\"");
  assert_int_equal(h.status, 200);
  assert_int_equal(h.body.n, len);
  free(h.body.b);
  h = http("HEAD", path, NULL);
  assert_int_equal(h.status, 200);
  char cl_want[32];
  snprintf(cl_want, sizeof cl_want, "%zu", len);
  assert_string_equal(header(&h, "Content-Length", v, sizeof v), cl_want);
  free(h.body.b);

  buf_t g = gridfs_read(id_out); /* any GridFS driver reads it */
  assert_int_equal(g.n, len);
  assert_memory_equal(g.b, data, len);
  free(g.b);
}

static void test_upload_and_serve(void **state) {
  (void)state;
  world();
  char id[37];
  roundtrip(PNG_1X1, sizeof PNG_1X1, 7, "image/png", 1, 1, id); /* 10 messages */
  roundtrip(WEBP_LOSSY, sizeof WEBP_LOSSY, 20, "image/webp", 1, 1, id);
  buf_t j = jpeg_make(700 * 1000, 640, 480, 0); /* three GridFS chunks */
  roundtrip(j.b, j.n, 100 * 1000, "image/jpeg", 640, 480, id);
  assert_int_equal(chunks_of(srv.db, id), 3);
  free(j.b);
  j = jpeg_make(150 * 1000, 1920, 1080, 120 * 1000); /* SOF behind 120 KB: probed over several messages */
  roundtrip(j.b, j.n, 50 * 1000, "image/jpeg", 1920, 1080, id);
  free(j.b);

  /* unknown and malformed ids */
  http_t h = http("GET", "/media/00000000-0000-4000-8000-00000000abcd", NULL);
  assert_int_equal(h.status, 404);
  free(h.body.b);
  h = http("GET", "/media/not-an-id", NULL);
  assert_int_equal(h.status, 400);
  free(h.body.b);
  h = http("GET", "/media/", NULL);
  assert_int_equal(h.status, 400);
  free(h.body.b);
  mq_error_t err;
  assert_int_equal(get_image(NULL, "00000000-0000-4000-8000-00000000abcd", NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(get_image(NULL, "nope", NULL, &err), MQ_INVALID_ARGUMENT);
}

/* The refusal, its field, and nothing left in the media collections. */
static void refused(const up_t *u, const void *data, size_t len, const char *field, const char *msg_part) {
  int64_t before = stored();
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = upload_with(u, data, len, NULL, &err);
  if (rc != MQ_INVALID_ARGUMENT) fail_msg("want INVALID_ARGUMENT, got %s: %s", mq_code_name(rc), err.message);
  assert_string_equal(err.field, field);
  if (msg_part && !strstr(err.message, msg_part)) fail_msg("message '%s' lacks '%s'", err.message, msg_part);
  assert_int_equal(stored(), before);
}

static void test_bad_input_leaves_nothing(void **state) {
  (void)state;
  world();
  up_t u = {.tok = w.alice, .org = w.org_a, .chunk = 1000};
  const char pdf[] = "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
  refused(&u, pdf, sizeof pdf - 1, "data", "JPEG, PNG or WebP");
  const char txt[] = "Dear organizer, here is my photo.\n";
  refused(&u, txt, sizeof txt - 1, "data", "JPEG, PNG or WebP");
  /* a PNG name is not a PNG; GIF is not accepted */
  refused(&u, "GIF89a\x01\x00\x01\x00\x80\x00\x00", 13, "data", "JPEG, PNG or WebP");

  /* garbage is refused on its first chunk: the server answers while the
   * client has sent 1 KB of a declared 500 KB and not half-closed */
  int64_t before = stored();
  mq_call_opts_t o = {.bearer_token = w.alice, .deadline_ms = 10000};
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__media_service__upload_image__open(cl, &o, &st, &err), MQ_OK);
  Marquee__Catalog__V1__UploadImageMetadata md = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_METADATA__INIT;
  md.organization_id = w.org_a;
  md.total_size = 500 * 1000;
  Marquee__Catalog__V1__UploadImageChunk c = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
  c.metadata = &md;
  static uint8_t zeros[1000];
  c.data.data = zeros;
  c.data.len = sizeof zeros;
  assert_int_equal(marquee__catalog__v1__media_service__upload_image__send(st, &c, &err), MQ_OK);
  Marquee__Catalog__V1__Image *img = NULL;
  assert_int_equal(marquee__catalog__v1__media_service__upload_image__recv(st, &img, &err), MQ_INVALID_ARGUMENT);
  assert_null(img);
  assert_string_equal(err.field, "data");
  mq_client_stream_free(st);
  assert_int_equal(stored(), before);

  /* too large: declared over MARQUEE_MEDIA_MAX_BYTES (1 MiB here), refused on the first chunk */
  buf_t big = jpeg_make(MAX_BYTES + 1000, 800, 600, 0);
  refused(&u, big.b, big.n, "metadata.total_size", "at most 1048576 bytes");
  free(big.b);
  /* more bytes than declared, after two GridFS chunks were written */
  buf_t j = jpeg_make(900 * 1000, 800, 600, 0);
  up_t under = {.tok = w.alice, .org = w.org_a, .chunk = 100 * 1000, .declared = 800 * 1000};
  refused(&under, j.b, j.n, "data", "more than metadata.total_size");
  /* a stream that ends early: 600 KB of a declared 900 KB (two chunks written) */
  up_t early = {.tok = w.alice, .org = w.org_a, .chunk = 100 * 1000, .declared = (int64_t)j.n};
  refused(&early, j.b, 600 * 1000, "metadata.total_size", "the stream ended before total_size bytes");
  /* the same with the header not even complete */
  refused(&early, j.b, 10, "metadata.total_size", "the stream ended before total_size bytes");
  /* all bytes declared arrived, but the file is cut short (no EOI) */
  up_t cut = {.tok = w.alice, .org = w.org_a, .chunk = 100 * 1000};
  refused(&cut, j.b, 600 * 1000, "data", "truncated");
  free(j.b);
  buf_t p = png_make(1, 1, false); /* no IEND */
  refused(&u, p.b, p.n, "data", "truncated");
  free(p.b);
  /* the header is cut short */
  refused(&u, PNG_1X1, 20, "data", "truncated");

  /* dimensions: a side over 10000, or over MARQUEE_MEDIA_MAX_PIXELS (40 MP) */
  p = png_make(20000, 10, true);
  refused(&u, p.b, p.n, "data", "wide");
  free(p.b);
  p = png_make(10, 12000, true);
  refused(&u, p.b, p.n, "data", "high");
  free(p.b);
  p = png_make(8000, 8000, true);
  refused(&u, p.b, p.n, "data", "pixels");
  free(p.b);

  /* a chunk over 256 KiB */
  j = jpeg_make(300 * 1000, 64, 64, 0);
  up_t fat = {.tok = w.alice, .org = w.org_a, .chunk = 256 * 1024 + 1};
  refused(&fat, j.b, j.n, "data", "at most 262144 bytes");
  free(j.b);

  /* metadata */
  char alt[302];
  memset(alt, 'a', 301);
  alt[301] = '\0';
  up_t long_alt = {.tok = w.alice, .org = w.org_a, .alt_text = alt};
  refused(&long_alt, PNG_1X1, sizeof PNG_1X1, "metadata.alt_text", NULL);
  up_t zero = {.tok = w.alice, .org = w.org_a, .declared = -1};
  refused(&zero, PNG_1X1, sizeof PNG_1X1, "metadata.total_size", NULL);
  up_t three = {.tok = w.alice, .org = w.org_a, .alt_text = alt, .declared = -1, .event_id = "not-an-id"};
  mq_error_t e3;
  memset(&e3, 0, sizeof e3);
  assert_int_equal(upload_with(&three, PNG_1X1, sizeof PNG_1X1, NULL, &e3), MQ_INVALID_ARGUMENT);
  assert_int_equal(e3.n_violations, 3); /* every bad metadata field in one answer */
  assert_string_equal(e3.violations[0].field, "metadata.alt_text");
  assert_string_equal(e3.violations[1].field, "metadata.total_size");
  assert_string_equal(e3.violations[2].field, "metadata.event_id");

  /* no metadata on the first chunk; metadata on a later one; no chunk at all */
  before = stored();
  for (int k = 0; k < 3; k++) {
    assert_int_equal(marquee__catalog__v1__media_service__upload_image__open(cl, &o, &st, &err), MQ_OK);
    Marquee__Catalog__V1__UploadImageChunk m = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
    md.total_size = sizeof PNG_1X1;
    m.data.data = (uint8_t *)PNG_1X1;
    m.data.len = 10;
    if (k == 1) {
      m.metadata = &md;
      assert_int_equal(marquee__catalog__v1__media_service__upload_image__send(st, &m, &err), MQ_OK);
    }
    if (k < 2) (void)marquee__catalog__v1__media_service__upload_image__send(st, &m, &err);
    assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
    assert_int_equal(marquee__catalog__v1__media_service__upload_image__recv(st, &img, &err), MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, "metadata");
    mq_client_stream_free(st);
  }
  assert_int_equal(stored(), before);
}

/* A client that goes away mid-stream: its chunks are gone once the probe
 * thread ran (MARQUEE_HEALTH_INTERVAL_MS; the harness sets it short). */
static void test_cancelled_upload_leaves_nothing(void **state) {
  (void)state;
  world();
  int64_t before = stored();
  buf_t j = jpeg_make(900 * 1000, 800, 600, 0);
  mq_call_opts_t o = {.bearer_token = w.alice, .deadline_ms = 30000};
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__media_service__upload_image__open(cl, &o, &st, &err), MQ_OK);
  Marquee__Catalog__V1__UploadImageMetadata md = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_METADATA__INIT;
  md.organization_id = w.org_a;
  md.total_size = (int64_t)j.n;
  for (size_t off = 0; off < 600 * 1000; off += 100 * 1000) {
    Marquee__Catalog__V1__UploadImageChunk c = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
    if (off == 0) c.metadata = &md;
    c.data.data = j.b + off;
    c.data.len = 100 * 1000;
    assert_int_equal(marquee__catalog__v1__media_service__upload_image__send(st, &c, &err), MQ_OK);
  }
  /* the server wrote two chunks and the pending record meanwhile */
  int64_t until = mq_test_now_ms() + 20000;
  while (stored() < before + 3 && mq_test_now_ms() < until) mq_test_sleep_ms(50);
  assert_int_equal(stored(), before + 3);
  mq_client_stream_cancel(st);
  Marquee__Catalog__V1__Image *img = NULL;
  assert_int_equal(marquee__catalog__v1__media_service__upload_image__recv(st, &img, &err), MQ_CANCELLED);
  mq_client_stream_free(st);
  free(j.b);
  until = mq_test_now_ms() + 20000;
  while (stored() != before && mq_test_now_ms() < until) mq_test_sleep_ms(100);
  assert_int_equal(stored(), before);
}

static bool has_id(char **ids, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(ids[i], id)) return true;
  return false;
}

static void test_event_attach_cover_delete(void **state) {
  (void)state;
  world();
  char ev[37], other_ev[37], img1[37], img2[37], path[80];
  new_event(w.alice, w.org_a, "Gallery night", ev);
  new_event(w.dave, w.org_b, "Elsewhere", other_ev);
  Marquee__Catalog__V1__Event *e = get_event(w.alice, ev);
  int64_t v0 = e->version;
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  /* uploaded for the event: appended to its image_ids */
  Marquee__Catalog__V1__Image *img = NULL;
  mq_error_t err;
  up_t u = {.tok = w.bob, .org = w.org_a, .event_id = ev, .chunk = 16};
  assert_int_equal(upload_with(&u, PNG_1X1, sizeof PNG_1X1, &img, &err), MQ_OK);
  assert_string_equal(img->event_id, ev);
  snprintf(img1, sizeof img1, "%s", img->image_id);
  marquee__catalog__v1__image__free_unpacked(img, NULL);
  e = get_event(w.alice, ev);
  assert_int_equal(e->n_image_ids, 1);
  assert_string_equal(e->image_ids[0], img1);
  assert_int_equal(e->version, v0 + 1);
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  /* a second image, then the cover */
  assert_int_equal(upload(w.alice, w.org_a, WEBP_LOSSY, sizeof WEBP_LOSSY, 0, &img, &err), MQ_OK);
  snprintf(img2, sizeof img2, "%s", img->image_id);
  marquee__catalog__v1__image__free_unpacked(img, NULL);
  int64_t version = 0;
  assert_int_equal(set_cover(w.alice, ev, img2, &version, &err), MQ_OK);
  assert_int_equal(version, v0 + 2);
  e = get_event(w.alice, ev);
  assert_string_equal(e->cover_image_id, img2);
  assert_int_equal(e->version, v0 + 2);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(set_cover(w.alice, ev, img2, &version, &err), MQ_OK); /* already: no change */
  assert_int_equal(version, v0 + 2);

  /* listing by event: only what was uploaded for it */
  Marquee__Catalog__V1__ListImagesResponse *page = NULL;
  assert_int_equal(list_images(w.alice, w.org_a, ev, 10, NULL, &page, &err), MQ_OK);
  assert_int_equal(page->n_images, 1);
  assert_string_equal(page->images[0]->image_id, img1);
  marquee__catalog__v1__list_images_response__free_unpacked(page, NULL);

  /* refusals around events */
  up_t foreign = {.tok = w.alice, .org = w.org_a, .event_id = other_ev};
  assert_int_equal(upload_with(&foreign, PNG_1X1, sizeof PNG_1X1, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "metadata.event_id");
  Marquee__Catalog__V1__Image *bimg = NULL;
  assert_int_equal(upload(w.dave, w.org_b, PNG_1X1, sizeof PNG_1X1, 0, &bimg, &err), MQ_OK);
  assert_int_equal(set_cover(w.alice, ev, bimg->image_id, NULL, &err), MQ_NOT_FOUND); /* another org's image */
  assert_string_equal(err.field, "image_id");
  assert_int_equal(set_cover(w.alice, ev, "00000000-0000-4000-8000-00000000abcd", NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "image_id");

  /* deleting removes the references (image_ids, cover) and the bytes */
  assert_int_equal(del_image(w.alice, img1, &err), MQ_OK);
  e = get_event(w.alice, ev);
  assert_int_equal(e->n_image_ids, 0);
  assert_string_equal(e->cover_image_id, img2);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(del_image(w.bob, img2, &err), MQ_OK);
  e = get_event(w.alice, ev);
  assert_string_equal(e->cover_image_id, "");
  assert_int_equal(e->version, v0 + 4);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(get_image(NULL, img1, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(del_image(w.alice, img1, &err), MQ_NOT_FOUND);
  snprintf(path, sizeof path, "/media/%s", img2);
  http_t h = http("GET", path, NULL);
  assert_int_equal(h.status, 404);
  free(h.body.b);
  assert_int_equal(chunks_of(srv.db, img1) + chunks_of(srv.db, img2), 0);
  char f[128];
  snprintf(f, sizeof f, "{\"_id\": {\"$in\": [\"%s\", \"%s\"]}}", img1, img2);
  assert_int_equal(mq_test_count(NULL, srv.db, "media_pending", f), 0);

  /* clearing the cover; a cancelled event cannot take images or covers, but
   * deleting its cover image still removes the reference */
  char ev3[37], img3[37];
  new_event(w.alice, w.org_a, "Rainy day", ev3);
  assert_int_equal(upload(w.alice, w.org_a, PNG_1X1, sizeof PNG_1X1, 0, &img, &err), MQ_OK);
  snprintf(img3, sizeof img3, "%s", img->image_id);
  marquee__catalog__v1__image__free_unpacked(img, NULL);
  assert_int_equal(set_cover(w.alice, ev3, img3, NULL, &err), MQ_OK);
  assert_int_equal(set_cover(w.alice, ev3, "", NULL, &err), MQ_OK);
  e = get_event(w.alice, ev3);
  assert_string_equal(e->cover_image_id, "");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(set_cover(w.alice, ev3, img3, NULL, &err), MQ_OK);
  cancel_event(w.alice, ev3);
  up_t late = {.tok = w.alice, .org = w.org_a, .event_id = ev3};
  assert_int_equal(upload_with(&late, PNG_1X1, sizeof PNG_1X1, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "metadata.event_id");
  assert_int_equal(set_cover(w.alice, ev3, "", NULL, &err), MQ_FAILED_PRECONDITION);
  assert_int_equal(del_image(w.alice, img3, &err), MQ_OK);
  e = get_event(w.alice, ev3);
  assert_string_equal(e->cover_image_id, "");
  assert_false(has_id(e->image_ids, e->n_image_ids, img3));
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(del_image(w.dave, bimg->image_id, &err), MQ_OK);
  marquee__catalog__v1__image__free_unpacked(bimg, NULL);
}

static void test_who_may_do_what(void **state) {
  (void)state;
  world();
  char ev[37], id[37];
  new_event(w.alice, w.org_a, "Members only", ev);
  Marquee__Catalog__V1__Image *img = NULL;
  mq_error_t err;
  assert_int_equal(upload(w.bob, w.org_a, PNG_1X1, sizeof PNG_1X1, 0, &img, &err), MQ_OK); /* manager */
  snprintf(id, sizeof id, "%s", img->image_id);
  marquee__catalog__v1__image__free_unpacked(img, NULL);
  int64_t before = stored();

  /* check-in staff list but do not change */
  assert_int_equal(upload(w.carol, w.org_a, PNG_1X1, sizeof PNG_1X1, 0, NULL, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(list_images(w.carol, w.org_a, NULL, 10, NULL, NULL, &err), MQ_OK);
  assert_int_equal(del_image(w.carol, id, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(set_cover(w.carol, ev, id, NULL, &err), MQ_PERMISSION_DENIED);

  /* another organization's owner and a signed-in stranger learn nothing */
  const char *outsiders[] = {w.dave, w.erin};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(upload(outsiders[k], w.org_a, PNG_1X1, sizeof PNG_1X1, 0, NULL, &err), MQ_NOT_FOUND);
    assert_string_equal(err.field, "metadata.organization_id");
    assert_int_equal(list_images(outsiders[k], w.org_a, NULL, 10, NULL, NULL, &err), MQ_NOT_FOUND);
    assert_int_equal(del_image(outsiders[k], id, &err), MQ_NOT_FOUND);
    assert_string_equal(err.field, "image_id");
    assert_int_equal(set_cover(outsiders[k], ev, id, NULL, &err), MQ_NOT_FOUND);
    assert_string_equal(err.field, "event_id");
  }
  /* no token: GetImage only */
  assert_int_equal(get_image(NULL, id, NULL, &err), MQ_OK);
  assert_int_equal(upload(NULL, w.org_a, PNG_1X1, sizeof PNG_1X1, 0, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(list_images(NULL, w.org_a, NULL, 10, NULL, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(del_image(NULL, id, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(set_cover(NULL, ev, id, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(stored(), before);

  /* a platform admin passes as an owner */
  char *admin = mq_test_token("00000000-0000-4000-8000-000000000009", MQ_ROLE_ADMIN);
  assert_int_equal(set_cover(admin, ev, id, NULL, &err), MQ_OK);
  assert_int_equal(del_image(admin, id, &err), MQ_OK);
  free(admin);
}

static void test_list_pagination(void **state) {
  (void)state;
  world();
  char org[64], ids[5][37];
  new_org(w.alice, "media-pages", org, sizeof org);
  mq_error_t err;
  for (int i = 0; i < 5; i++) {
    Marquee__Catalog__V1__Image *img = NULL;
    assert_int_equal(upload(w.alice, org, PNG_1X1, sizeof PNG_1X1, 0, &img, &err), MQ_OK);
    snprintf(ids[i], 37, "%s", img->image_id);
    marquee__catalog__v1__image__free_unpacked(img, NULL);
  }
  char token[160] = "", seen[5][37];
  int n = 0, pages = 0;
  do {
    Marquee__Catalog__V1__ListImagesResponse *page = NULL;
    assert_int_equal(list_images(w.alice, org, NULL, 2, token, &page, &err), MQ_OK);
    for (size_t k = 0; k < page->n_images; k++) {
      assert_true(n < 5);
      snprintf(seen[n++], 37, "%s", page->images[k]->image_id);
    }
    snprintf(token, sizeof token, "%s", page->next_page_token);
    marquee__catalog__v1__list_images_response__free_unpacked(page, NULL);
    pages++;
  } while (token[0]);
  assert_int_equal(n, 5);
  assert_int_equal(pages, 3);
  for (int i = 0; i < 5; i++) { /* newest first: the reverse of the uploads */
    int found = 0;
    for (int k = 0; k < 5; k++) found += !strcmp(seen[k], ids[i]);
    assert_int_equal(found, 1);
  }
  assert_string_equal(seen[0], ids[4]);
  assert_string_equal(seen[4], ids[0]);
  assert_int_equal(list_images(w.alice, org, NULL, 2, "garbage", NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  assert_int_equal(list_images(w.alice, org, "nope", 2, NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "event_id");
}

/* Waits until the audit log holds an event of `type` for image `id`;
 * returns its envelope (caller frees) or NULL. */
static Marquee__Events__V1__Envelope *audited(const char *id, const char *type) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"%s\"}", id, type);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) < 1 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  void *data = NULL;
  size_t len = 0;
  if (!mq_test_find_binary(srv.db, "audit_log", filter, "envelope", &data, &len)) return NULL;
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  free(data);
  return ev;
}

static void test_events_reach_the_audit_log(void **state) {
  (void)state;
  world();
  char ev_id[37], sha[65];
  new_event(w.alice, w.org_a, "Audited", ev_id);
  Marquee__Catalog__V1__Image *img = NULL;
  mq_error_t err;
  up_t u = {.tok = w.alice, .org = w.org_a, .event_id = ev_id};
  assert_int_equal(upload_with(&u, WEBP_LOSSY, sizeof WEBP_LOSSY, &img, &err), MQ_OK);
  /* deleted at once: the ImageUploaded still in the outbox must not be lost */
  assert_int_equal(del_image(w.alice, img->image_id, &err), MQ_OK);
  Marquee__Events__V1__Envelope *ev = audited(img->image_id, "catalog.ImageUploaded");
  assert_non_null(ev);
  assert_int_equal(ev->payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_IMAGE_UPLOADED);
  assert_string_equal(ev->image_uploaded->image_id, img->image_id);
  assert_string_equal(ev->image_uploaded->organization_id, w.org_a);
  assert_string_equal(ev->image_uploaded->event_id, ev_id);
  assert_string_equal(ev->image_uploaded->mime_type, "image/webp");
  assert_int_equal(ev->image_uploaded->size_bytes, sizeof WEBP_LOSSY);
  sha256_hex(WEBP_LOSSY, sizeof WEBP_LOSSY, sha);
  assert_string_equal(ev->image_uploaded->sha256, sha);
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
  ev = audited(img->image_id, "catalog.ImageDeleted");
  assert_non_null(ev);
  assert_int_equal(ev->payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_IMAGE_DELETED);
  assert_string_equal(ev->image_deleted->image_id, img->image_id);
  assert_string_equal(ev->image_deleted->event_id, ev_id);
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
  /* the event's own changes: attach and detach */
  char f[200];
  snprintf(f, sizeof f, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.EventUpdated\"}", ev_id);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", f) < 2 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", f), 2);
  /* one ImageUploaded in the log (the audit log is keyed by event id); the
   * journal drained */
  snprintf(f, sizeof f, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.ImageUploaded\"}", img->image_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", f), 1);
  until = mq_test_now_ms() + 30000;
  while (mq_test_count(NULL, srv.db, "outbox", "{}") > 0 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "outbox", "{}"), 0);
  marquee__catalog__v1__image__free_unpacked(img, NULL);
}

/* A server killed mid-upload leaves its chunks and pending record; once the
 * record is older than the grace period (backdated here), the next server's
 * sweep discards them. A committed image whose record was left behind keeps
 * its chunks; a fresh pending record is not touched. */
static void test_sweep_after_a_crash(void **state) {
  (void)state;
  world();
  char db[64];
  mq_test_new_db(db);
  mq_test_proc_t s1, s2;
  const char *env[] = {"MARQUEE_MEDIA_MAX_BYTES=1048576", NULL};
  assert_int_equal(mq_test_server_start(&s1, db, env), 0);
  mq_client_t *c1 = mq_test_client(&s1);
  char *owner = mq_test_token("00000000-0000-4000-8000-0000000000c1", MQ_ROLE_ORGANIZER);
  Marquee__Identity__V1__CreateOrganizationRequest q = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "crash-%d", (int)getpid());
  q.name = (char *)"Crash";
  q.slug = slug;
  Marquee__Identity__V1__Organization *org = NULL;
  mq_call_opts_t o = {.bearer_token = owner, .deadline_ms = 30000};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(c1, &q, &org, &o, &err),
                   MQ_OK);
  /* a committed image, then an upload cut by SIGKILL */
  buf_t j = jpeg_make(700 * 1000, 320, 200, 0);
  mq_client_stream_t *st = NULL;
  for (int k = 0; k < 2; k++) {
    assert_int_equal(marquee__catalog__v1__media_service__upload_image__open(c1, &o, &st, &err), MQ_OK);
    Marquee__Catalog__V1__UploadImageMetadata md = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_METADATA__INIT;
    md.organization_id = org->organization_id;
    md.total_size = (int64_t)j.n;
    size_t upto = k == 0 ? j.n : 600 * 1000;
    for (size_t off = 0; off < upto; off += 100 * 1000) {
      Marquee__Catalog__V1__UploadImageChunk c = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
      if (off == 0) c.metadata = &md;
      c.data.data = j.b + off;
      c.data.len = j.n - off < 100 * 1000 ? j.n - off : 100 * 1000;
      assert_int_equal(marquee__catalog__v1__media_service__upload_image__send(st, &c, &err), MQ_OK);
    }
    if (k == 0) {
      assert_int_equal(mq_client_stream_finish(st, &err), MQ_OK);
      mq_client_stream_free(st);
    }
  }
  int64_t until = mq_test_now_ms() + 20000;
  while (mq_test_count(NULL, db, "media_pending", "{}") < 1 && mq_test_now_ms() < until) mq_test_sleep_ms(50);
  while (mq_test_count(NULL, db, "media.chunks", "{}") < 5 && mq_test_now_ms() < until) mq_test_sleep_ms(50);
  assert_int_equal(mq_test_proc_stop(&s1, SIGKILL, 5000), 128 + SIGKILL);
  mq_client_stream_free(st);
  mq_client_destroy(c1);
  assert_int_equal(mq_test_count(NULL, db, "media.files", "{}"), 1);
  assert_int_equal(mq_test_count(NULL, db, "media.chunks", "{}"), 5); /* 3 + 2 orphans */
  assert_int_equal(mq_test_count(NULL, db, "media_pending", "{}"), 1);
  /* backdate the orphan; leave a stale record on the committed file; add a fresh one */
  assert_int_equal(
      mq_test_update(db, "media_pending", "{}", "{\"$set\": {\"at\": {\"$date\": \"2020-01-01T00:00:00Z\"}}}"), 1);
  mongoc_client_t *mc = mongoc_client_new(mq_test_mongo_uri());
  mongoc_collection_t *pend = mongoc_client_get_collection(mc, db, "media_pending");
  mongoc_collection_t *files = mongoc_client_get_collection(mc, db, "media.files");
  bson_t none = BSON_INITIALIZER, doc;
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(files, &none, NULL, NULL);
  const bson_t *fd;
  assert_true(mongoc_cursor_next(cur, &fd));
  bson_iter_t it;
  assert_true(bson_iter_init_find(&it, fd, "_id"));
  char committed[37];
  snprintf(committed, sizeof committed, "%s", bson_iter_utf8(&it, NULL));
  mongoc_cursor_destroy(cur);
  bson_init(&doc);
  BSON_APPEND_UTF8(&doc, "_id", committed);
  BSON_APPEND_UTF8(&doc, "organization_id", org->organization_id);
  BSON_APPEND_DATE_TIME(&doc, "at", 1000);
  assert_true(mongoc_collection_insert_one(pend, &doc, NULL, NULL, NULL));
  bson_destroy(&doc);
  bson_init(&doc);
  BSON_APPEND_UTF8(&doc, "_id", "00000000-0000-4000-8000-00000000f4e5");
  BSON_APPEND_UTF8(&doc, "organization_id", org->organization_id);
  BSON_APPEND_DATE_TIME(&doc, "at", (int64_t)time(NULL) * 1000);
  assert_true(mongoc_collection_insert_one(pend, &doc, NULL, NULL, NULL));
  bson_destroy(&doc);
  mongoc_collection_destroy(pend);
  mongoc_collection_destroy(files);
  mongoc_client_destroy(mc);

  assert_int_equal(mq_test_server_start(&s2, db, env), 0); /* sweeps at start-up */
  until = mq_test_now_ms() + 20000;
  while (mq_test_count(NULL, db, "media_pending", "{}") > 1 && mq_test_now_ms() < until) mq_test_sleep_ms(100);
  assert_int_equal(mq_test_count(NULL, db, "media_pending", "{}"), 1); /* only the fresh one */
  assert_int_equal(mq_test_count(NULL, db, "media_pending", "{\"_id\": \"00000000-0000-4000-8000-00000000f4e5\"}"), 1);
  assert_int_equal(mq_test_count(NULL, db, "media.chunks", "{}"), 3);
  assert_int_equal(chunks_of(db, committed), 3);
  assert_int_equal(mq_test_count(NULL, db, "media.files", "{}"), 1);
  assert_int_equal(mq_test_proc_stop(&s2, SIGTERM, 20000), 0);
  marquee__identity__v1__organization__free_unpacked(org, NULL);
  free(owner);
  free(j.b);
  mq_test_drop_db(NULL, db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_upload_and_serve),
      cmocka_unit_test(test_bad_input_leaves_nothing),
      cmocka_unit_test(test_cancelled_upload_leaves_nothing),
      cmocka_unit_test(test_event_attach_cover_delete),
      cmocka_unit_test(test_who_may_do_what),
      cmocka_unit_test(test_list_pagination),
      cmocka_unit_test(test_events_reach_the_audit_log),
      cmocka_unit_test(test_sweep_after_a_crash),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
