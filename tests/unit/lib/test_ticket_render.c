/*
 * test_ticket_render.c — cmocka tests for lib/mq_ticket_render.c: the QR
 * PNG and the printable PDF ticket.
 *
 * Covers: QR PNG for a real ticket code and for 1- and 1000-byte texts at
 * scales 1, 8 (also via 0 = default) and 32: the PNG signature, IHDR width
 * and height == (modules + 8) * scale with modules taken from libqrencode
 * for the same text, 1-bit greyscale; decoding it back with libpng's
 * png_image API: (0,0) is white, the finder pattern's corner at
 * (4*scale, 4*scale) is black, and every module's centre pixel matches
 * libqrencode's matrix while the whole quiet zone is white. Refusals: NULL
 * or empty text, 1001 bytes, scale 33 → INVALID_ARGUMENT naming the field,
 * output NULL/0.
 * PDF: a complete ticket starts with "%PDF-", ends with "%%EOF" (optionally
 * followed by a newline), is over 1 KiB, embeds a font named DejaVu, and
 * its decompressed content streams (zlib) place every text line — start and
 * end, the width computed from the embedded font's /W widths — and the image
 * inside the page margins. Also: a 1000-'W' title and 1000-char words in
 * every field (wrapped and cut, still inside the margins), non-Latin names
 * ("Zoë Ångström", "Дмитрий", "Ελένη", Armenian, an emoji, a CJK name that
 * DejaVu lacks), invalid UTF-8 and control characters, every optional field
 * NULL or "", a code of the maximum length; refusals: NULL ticket, NULL or
 * empty code, over-long code → INVALID_ARGUMENT "code"; a missing font file
 * or a file that is not a font → INTERNAL naming the path (no leak: LSan /
 * valgrind); several threads rendering at once.
 *
 * Invariant: needs fonts-dejavu-core at MQ_TICKET_FONT_DEFAULT. Read next:
 * lib/mq_ticket_render.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <png.h>
#include <pthread.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/mq_ticket_render.h"

#define CODE                                                                                              \
  "MQT1.k1.AQARIjNEVWZ3iJmqu8zd7v8PHi08S1ppeIeWpbTD0uHwwP_uABI0Sryd7wEjRWeJq23OxxKqNWRraHG7PtcXAy7DTSEu_" \
  "PpmI6r81mJVwd5mq5ECHCZTn_DPRNKrWYUFIOHtZbHGOL55hf1sbIJ2oAQ"

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- QR PNG ------------------------------------------------------------------------------------ */

/* Renders `text` at `scale` and checks it against libqrencode's own matrix. */
static void check_qr(const char *text, unsigned scale) {
  unsigned eff = scale ? scale : MQ_QR_SCALE_DEFAULT;
  uint8_t *png = NULL;
  size_t len = 0;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_render_qr_png(text, scale, &png, &len, &err);
  if (rc != MQ_OK) fail_msg("render: %s %s", mq_code_name(rc), err.message);
  assert_non_null(png);
  assert_true(len > 33);

  QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
  assert_non_null(qr);
  uint32_t modules = (uint32_t)qr->width, side = (modules + 8) * eff;
  assert_int_equal(modules, 17 + 4 * (uint32_t)qr->version);

  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  assert_memory_equal(png, sig, 8);
  assert_memory_equal(png + 12, "IHDR", 4);
  assert_int_equal(be32(png + 16), side); /* width */
  assert_int_equal(be32(png + 20), side); /* height */
  assert_int_equal(png[24], 1);           /* bit depth */
  assert_int_equal(png[25], 0);           /* greyscale */
  assert_int_equal(png[28], 0);           /* not interlaced */

  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  assert_true(png_image_begin_read_from_memory(&img, png, len));
  assert_int_equal(img.width, side);
  assert_int_equal(img.height, side);
  img.format = PNG_FORMAT_GRAY;
  uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
  assert_non_null(px);
  assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
  png_image_free(&img);

  assert_int_equal(px[0], 255);                              /* quiet zone */
  assert_int_equal(px[(size_t)4 * eff * side + 4 * eff], 0); /* finder pattern corner */
  for (uint32_t my = 0; my < modules + 8; my++)
    for (uint32_t mx = 0; mx < modules + 8; mx++) {
      bool quiet = mx < 4 || my < 4 || mx >= modules + 4 || my >= modules + 4;
      bool dark = !quiet && (qr->data[(my - 4) * modules + (mx - 4)] & 1);
      /* the module's centre and its two corners */
      uint32_t ys[3] = {my * eff + eff / 2, my * eff, my * eff + eff - 1};
      uint32_t xs[3] = {mx * eff + eff / 2, mx * eff, mx * eff + eff - 1};
      for (int k = 0; k < 3; k++) {
        uint8_t v = px[(size_t)ys[k] * side + xs[k]];
        if (v != (dark ? 0 : 255))
          fail_msg("module (%u,%u) pixel %u: %u, want %s", mx, my, k, v, dark ? "black" : "white");
      }
    }
  free(px);
  QRcode_free(qr);
  free(png);
}

static void test_qr_png(void **state) {
  (void)state;
  check_qr(CODE, 8);
  check_qr(CODE, 0); /* default 8 */
  check_qr(CODE, 1);
  check_qr(CODE, 32);
  check_qr("x", 3);
  char big[MQ_QR_TEXT_MAX + 1];
  for (size_t i = 0; i < MQ_QR_TEXT_MAX; i++) big[i] = (char)('!' + i % 90);
  big[MQ_QR_TEXT_MAX] = '\0';
  check_qr(big, 2);
  check_qr("Zoë Ångström — Дмитрий", 4); /* UTF-8 bytes in byte mode */
}

static void expect_qr_refused(const char *text, unsigned scale, const char *field) {
  uint8_t *png = (uint8_t *)0x1;
  size_t len = 99;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_render_qr_png(text, scale, &png, &len, &err), MQ_INVALID_ARGUMENT);
  assert_null(png);
  assert_int_equal(len, 0);
  assert_string_equal(err.field, field);
}

static void test_qr_refused(void **state) {
  (void)state;
  expect_qr_refused(NULL, 8, "text");
  expect_qr_refused("", 8, "text");
  char big[MQ_QR_TEXT_MAX + 2];
  memset(big, 'a', MQ_QR_TEXT_MAX + 1);
  big[MQ_QR_TEXT_MAX + 1] = '\0';
  expect_qr_refused(big, 8, "text");
  expect_qr_refused(CODE, MQ_QR_SCALE_MAX + 1, "scale");
  expect_qr_refused(CODE, 1000000, "scale");
}

/* ---- PDF --------------------------------------------------------------------------------------- */

static bool contains(const uint8_t *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(hay + i, needle, k) == 0) return true;
  return false;
}

/* Glyph widths (1/1000 em) by CID from the font's /W array (libharu writes
 * no object streams, so the font dictionaries are plain text). */
static float *cid_widths(const uint8_t *pdf, size_t n) {
  float *w = malloc(65536 * sizeof *w);
  assert_non_null(w);
  for (size_t c = 0; c < 65536; c++) w[c] = 1000; /* the PDF default /DW */
  char *text = malloc(n + 1);
  assert_non_null(text);
  memcpy(text, pdf, n);
  for (size_t i = 0; i < n; i++)
    if (!text[i]) text[i] = ' ';
  text[n] = '\0';
  const char *p = strstr(text, "/W [");
  assert_non_null(p);
  p += 4;
  /* entries: c [w1 w2 ...] | c_first c_last w */
  for (;;) {
    while (*p == ' ' || *p == '\n' || *p == '\r') p++;
    if (*p == ']') break;
    char *e;
    long c = strtol(p, &e, 10);
    assert_true(e != p && c >= 0 && c < 65536);
    p = e;
    while (*p == ' ' || *p == '\n' || *p == '\r') p++;
    if (*p == '[') {
      p++;
      for (;; c++) {
        while (*p == ' ' || *p == '\n' || *p == '\r') p++;
        if (*p == ']') break;
        float v = strtof(p, &e);
        assert_true(e != p);
        if (c < 65536) w[c] = v;
        p = e;
      }
      p++;
    } else {
      long last = strtol(p, &e, 10);
      assert_true(e != p);
      float v = strtof(e, (char **)&p);
      for (long k = c; k <= last && k < 65536; k++) w[k] = v;
    }
  }
  free(text);
  return w;
}

#define RIGHT_EDGE (595.276f - 48) /* A4 width minus the margin */

/* Inflates every "stream ... endstream" and checks that each text line
 * ("x y Td" then "<cids> Tj", its width from the font's /W array at the size
 * set by "/F1 size Tf") and the image ("w 0 0 h x y cm") lie inside the page
 * margins of A4 (595 x 842 pt). Returns the number of text lines seen. */
static int check_placement(const uint8_t *pdf, size_t n) {
  float *widths = cid_widths(pdf, n);
  int lines = 0;
  float x = 0, y = 0, size = 0;
  for (size_t i = 0; i + 7 < n; i++) {
    if (memcmp(pdf + i, "stream", 6) != 0 || (i > 0 && pdf[i - 1] == 'd')) continue;
    size_t start = i + 6;
    if (start < n && pdf[start] == '\r') start++;
    if (start < n && pdf[start] == '\n') start++;
    size_t end = start;
    while (end + 9 <= n && memcmp(pdf + end, "endstream", 9) != 0) end++;
    uLongf cap = 1 << 22;
    uint8_t *raw = malloc(cap + 1);
    assert_non_null(raw);
    if (uncompress(raw, &cap, pdf + start, end - start) == Z_OK) {
      raw[cap] = '\0';
      /* content streams are text: one operator per line */
      if (strstr((char *)raw, " Tj") || strstr((char *)raw, " Do")) {
        char *save = NULL;
        for (char *tok = strtok_r((char *)raw, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
          float a, b, c, d, f;
          int used = 0;
          if (sscanf(tok, "/F1 %f Tf%n", &f, &used) == 1 && used > 0) {
            size = f;
          } else if (sscanf(tok, "%f %f Td%n", &x, &y, &used) == 2 && used > 0) {
            lines++;
            if (x < 47.9f || x > RIGHT_EDGE || y < 47.9f || y > 794)
              fail_msg("text at (%.1f, %.1f) is outside the margins", x, y);
          } else if (tok[0] == '<' && strstr(tok, "> Tj")) {
            float em = 0;
            for (const char *h = tok + 1; *h != '>'; h += 4) {
              unsigned cid = 0;
              assert_int_equal(sscanf(h, "%4x", &cid), 1);
              em += widths[cid & 0xFFFF];
            }
            float right = x + em * size / 1000;
            if (right > RIGHT_EDGE + 0.01f)
              fail_msg("text at (%.1f, %.1f) ends at %.1f, past the margin at %.1f", x, y, right, RIGHT_EDGE);
          } else if (sscanf(tok, "%f %f %f %f %f %f cm%n", &a, &b, &c, &d, &x, &y, &used) == 6 && used > 0) {
            if (x < 47.9f || x + a > RIGHT_EDGE + 0.01f || y < 47.9f || y + d > 794)
              fail_msg("image at (%.1f, %.1f) size %.1f is outside the margins", x, y, a);
          }
        }
      }
    }
    free(raw);
    i = end;
  }
  free(widths);
  return lines;
}

static void render_ok(const mq_ticket_pdf_t *t, uint8_t **pdf, size_t *len) {
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_render_ticket_pdf(t, NULL, pdf, len, &err);
  if (rc != MQ_OK) fail_msg("render: %s %s", mq_code_name(rc), err.message);
  assert_non_null(*pdf);
  assert_true(*len > 1024);
  assert_memory_equal(*pdf, "%PDF-", 5);
  size_t n = *len;
  while (n > 0 && ((*pdf)[n - 1] == '\n' || (*pdf)[n - 1] == '\r')) n--;
  assert_true(n >= 5);
  assert_memory_equal(*pdf + n - 5, "%%EOF", 5);
  assert_true(contains(*pdf, *len, "DejaVu"));
  assert_true(contains(*pdf, *len, "/FontFile2")); /* the TrueType program is embedded */
}

static const mq_ticket_pdf_t full = {
    .event_title = "Rust Meetup: Async in Practice",
    .starts_at_text = "Saturday 14 March 2026, 19:00 (doors 18:30)",
    .venue_text = "Kulturhaus Mitte, Hauptstraße 1, 10115 Berlin",
    .attendee_name = "Zoë Ångström",
    .ticket_type_name = "Early bird",
    .ticket_id = "00112233-4455-6677-8899-aabbccddeeff",
    .booking_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    .code = CODE,
    .organizer_name = "Rust Berlin e.V.",
};

static void test_pdf_full(void **state) {
  (void)state;
  uint8_t *pdf = NULL;
  size_t len = 0;
  render_ok(&full, &pdf, &len);
  int lines = check_placement(pdf, len);
  assert_true(lines >= 10);        /* organiser, title, date, venue, 4 labels + 4 values, code, footer */
  if (getenv("MQ_TEST_PDF_OUT")) { /* for looking at it */
    FILE *f = fopen(getenv("MQ_TEST_PDF_OUT"), "wb");
    if (f) {
      fwrite(pdf, 1, len, f);
      fclose(f);
    }
  }
  free(pdf);
}

static void test_pdf_long_and_non_latin(void **state) {
  (void)state;
  char *ws = malloc(1001), *word = malloc(1001), *words = malloc(3001);
  memset(ws, 'W', 1000);
  ws[1000] = '\0';
  for (int i = 0; i < 1000; i++) word[i] = (char)('a' + i % 26);
  word[1000] = '\0';
  words[0] = '\0';
  for (int i = 0; i < 200; i++) strcat(words, "Дмитрий "); /* 15 bytes each */

  mq_ticket_pdf_t t = full;
  t.event_title = ws;
  uint8_t *pdf = NULL;
  size_t len = 0;
  render_ok(&t, &pdf, &len);
  check_placement(pdf, len);
  free(pdf);

  /* over-long everything: one long word or many words in every field */
  mq_ticket_pdf_t all = {words, word, words, word, words, word, words, CODE, word};
  render_ok(&all, &pdf, &len);
  int lines = check_placement(pdf, len);
  assert_true(lines <= 40); /* cut, not run down the page */
  free(pdf);

  static const char *names[] = {
      "Zoë Ångström",
      "Дмитрий Шостакович",
      "Ελένη Παπαδοπούλου",
      "Արամ Խաչատրյան",
      "Søren Kierkegaard 🎟️",
      "山田太郎", /* not in DejaVu Sans: drawn as empty boxes, but drawn */
      "bad \xff\xfe utf-8 \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 end",
      "tab\tnew\nline\r\x7f\xc2\x85 end",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    t = full;
    t.attendee_name = names[i];
    t.event_title = names[(i + 1) % (sizeof names / sizeof names[0])];
    t.venue_text = names[(i + 2) % (sizeof names / sizeof names[0])];
    render_ok(&t, &pdf, &len);
    check_placement(pdf, len);
    free(pdf);
  }
  free(ws);
  free(word);
  free(words);
}

static void test_pdf_minimal(void **state) {
  (void)state;
  mq_ticket_pdf_t t = {.code = CODE};
  uint8_t *pdf = NULL;
  size_t len = 0;
  render_ok(&t, &pdf, &len);
  check_placement(pdf, len);
  free(pdf);
  mq_ticket_pdf_t blanks = {"", "", "", "", "", "", "", CODE, ""};
  render_ok(&blanks, &pdf, &len);
  free(pdf);

  char code[MQ_QR_TEXT_MAX + 1]; /* the largest code the QR takes */
  memset(code, 'Q', MQ_QR_TEXT_MAX);
  code[MQ_QR_TEXT_MAX] = '\0';
  t.code = code;
  render_ok(&t, &pdf, &len);
  check_placement(pdf, len);
  free(pdf);
}

static void expect_pdf_refused(const mq_ticket_pdf_t *t, const char *font, mq_code_t want, const char *field,
                               const char *why) {
  uint8_t *pdf = (uint8_t *)0x1;
  size_t len = 99;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_render_ticket_pdf(t, font, &pdf, &len, &err), want);
  assert_null(pdf);
  assert_int_equal(len, 0);
  assert_int_equal(err.code, want);
  assert_string_equal(err.field, field);
  if (!strstr(err.message, why)) fail_msg("message '%s' does not say '%s'", err.message, why);
}

static void test_pdf_refused(void **state) {
  (void)state;
  expect_pdf_refused(NULL, NULL, MQ_INVALID_ARGUMENT, "code", "required");
  mq_ticket_pdf_t t = full;
  t.code = NULL;
  expect_pdf_refused(&t, NULL, MQ_INVALID_ARGUMENT, "code", "required");
  t.code = "";
  expect_pdf_refused(&t, NULL, MQ_INVALID_ARGUMENT, "code", "required");
  char big[MQ_QR_TEXT_MAX + 2];
  memset(big, 'a', MQ_QR_TEXT_MAX + 1);
  big[MQ_QR_TEXT_MAX + 1] = '\0';
  t.code = big;
  expect_pdf_refused(&t, NULL, MQ_INVALID_ARGUMENT, "code", "1000");

  /* fonts that cannot be loaded: INTERNAL naming the path, nothing leaked */
  expect_pdf_refused(&full, "/nonexistent/NoSuchFont.ttf", MQ_INTERNAL, "", "/nonexistent/NoSuchFont.ttf");
  expect_pdf_refused(&full, "/etc/hostname", MQ_INTERNAL, "", "/etc/hostname"); /* not a font */
  expect_pdf_refused(&full, "/tmp", MQ_INTERNAL, "", "/tmp");                   /* a directory */
  expect_pdf_refused(&full, "", MQ_INTERNAL, "", "font");

  /* an explicit path works too (the bold face) */
  uint8_t *pdf = NULL;
  size_t len = 0;
  mq_error_t err;
  assert_int_equal(
      mq_render_ticket_pdf(&full, "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", &pdf, &len, &err), MQ_OK);
  assert_true(contains(pdf, len, "DejaVuSans-Bold"));
  free(pdf);
}

static void *render_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    uint8_t *out = NULL;
    size_t len = 0;
    if (mq_render_ticket_pdf(&full, NULL, &out, &len, NULL) != MQ_OK || len < 1024) return (void *)1;
    free(out);
    if (mq_render_qr_png(CODE, 4, &out, &len, NULL) != MQ_OK) return (void *)1;
    free(out);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t t[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, render_worker, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *r = (void *)1;
    pthread_join(t[i], &r);
    assert_null(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qr_png),      cmocka_unit_test(test_qr_refused),
      cmocka_unit_test(test_pdf_full),    cmocka_unit_test(test_pdf_long_and_non_latin),
      cmocka_unit_test(test_pdf_minimal), cmocka_unit_test(test_pdf_refused),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
