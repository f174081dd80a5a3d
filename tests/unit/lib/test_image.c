/*
 * test_image.c — cmocka tests for lib/mq_image.c: content sniffing of
 * JPEG, PNG and WebP uploads, the whole-file trailer check and the limits.
 *
 * Samples: a real 1x1 RGBA PNG (made with zlib, its CRCs computed by zlib),
 * four real 1x1 WebP files (lossy, lossless, VP8X with alpha, animated) as
 * browsers use them for feature detection, and files built here: PNGs with
 * any IHDR (CRC computed by this file's own table-driven CRC-32, checked
 * against the real PNG), structurally complete JPEGs (SOI, APP0, DQT, SOFn,
 * DHT, SOS, entropy data with stuffing and a restart marker, EOI) and WebP
 * headers of each kind.
 *
 * Robustness: every prefix of every sample, and thousands of seeded random
 * mutations of them, are probed from heap copies of exactly that many bytes,
 * so ASan reports any read past the end; the results must be monotonic in
 * the prefix length (mq_image.h) and sane.
 *
 * Invariant: no network, no files, deterministic (fixed PRNG seed).
 * Read next: lib/mq_image.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mq_image.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

typedef struct {
  uint8_t b[2048];
  size_t n;
} file_t;

static void put(file_t *f, const void *p, size_t n) {
  if (!n) return;
  assert_true(f->n + n <= sizeof f->b);
  memcpy(f->b + f->n, p, n);
  f->n += n;
}
static void put8(file_t *f, uint32_t v) {
  uint8_t b = (uint8_t)v;
  put(f, &b, 1);
}
static void put16be(file_t *f, uint32_t v) {
  put8(f, v >> 8);
  put8(f, v);
}
static void put32be(file_t *f, uint32_t v) {
  put16be(f, v >> 16);
  put16be(f, v);
}
static void put16le(file_t *f, uint32_t v) {
  put8(f, v);
  put8(f, v >> 8);
}
static void put24le(file_t *f, uint32_t v) {
  put16le(f, v);
  put8(f, v >> 16);
}
static void put32le(file_t *f, uint32_t v) {
  put16le(f, v);
  put16le(f, v >> 16);
}

/* Table-driven CRC-32 (ISO 3309), independent of the bitwise one in mq_image.c. */
static uint32_t crc32_tab(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static mq_error_t fresh_error(void) {
  mq_error_t e;
  memset(&e, 0, sizeof e);
  return e;
}

/* Probes exactly `len` bytes from a heap copy (so ASan sees any over-read). */
static mq_image_status_t probe_exact(const uint8_t *p, size_t len, mq_image_info_t *info) {
  uint8_t *copy = len ? malloc(len) : NULL;
  if (len) {
    assert_non_null(copy);
    memcpy(copy, p, len);
  }
  mq_image_status_t st = mq_image_probe(copy, len, info);
  (void)mq_image_check_complete(copy, len, MQ_IMAGE_JPEG);
  (void)mq_image_check_complete(copy, len, MQ_IMAGE_PNG);
  (void)mq_image_check_complete(copy, len, MQ_IMAGE_WEBP);
  free(copy);
  return st;
}

static void expect_done(const uint8_t *p, size_t len, mq_image_type_t type, uint32_t w, uint32_t h) {
  mq_image_info_t info;
  mq_image_status_t st = probe_exact(p, len, &info);
  if (st != MQ_IMAGE_DONE) fail_msg("status %d, expected DONE", (int)st);
  assert_int_equal(info.type, type);
  assert_int_equal(info.width, w);
  assert_int_equal(info.height, h);
}

static void expect_status(const uint8_t *p, size_t len, mq_image_status_t want) {
  mq_image_info_t info = {MQ_IMAGE_PNG, 7, 7};
  mq_image_status_t st = probe_exact(p, len, &info);
  if (st != want) fail_msg("status %d, expected %d (len %zu)", (int)st, (int)want, len);
  if (st != MQ_IMAGE_DONE) {
    assert_int_equal(info.type, MQ_IMAGE_UNKNOWN);
    assert_int_equal(info.width, 0);
    assert_int_equal(info.height, 0);
  }
}

/* ---- samples ------------------------------------------------------------------------------------ */

/* A real 1x1 RGBA PNG (70 bytes; `file`: "PNG image data, 1 x 1, 8-bit/color RGBA"). */
static const uint8_t PNG_1X1[] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
                                  0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
                                  0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
                                  0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xd0, 0x00, 0x00, 0x04, 0x81, 0x01, 0x80, 0x2c, 0x55,
                                  0xce, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* Real 1x1 WebP files (the ones browsers' feature detection decodes). */
static const uint8_t WEBP_LOSSY[] = {0x52, 0x49, 0x46, 0x46, 0x22, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42,
                                     0x50, 0x56, 0x50, 0x38, 0x20, 0x16, 0x00, 0x00, 0x00, 0x30, 0x01,
                                     0x00, 0x9d, 0x01, 0x2a, 0x01, 0x00, 0x01, 0x00, 0x0e, 0xc0, 0xfe,
                                     0x25, 0xa4, 0x00, 0x03, 0x70, 0x00, 0x00, 0x00, 0x00};
static const uint8_t WEBP_LOSSLESS[] = {0x52, 0x49, 0x46, 0x46, 0x1a, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50,
                                        0x56, 0x50, 0x38, 0x4c, 0x0d, 0x00, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x00,
                                        0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00};
static const uint8_t WEBP_ALPHA[] = {0x52, 0x49, 0x46, 0x46, 0x4a, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50,
                                     0x38, 0x58, 0x0a, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x41, 0x4c, 0x50, 0x48, 0x0c, 0x00, 0x00, 0x00, 0x11, 0x07, 0x10, 0x11,
                                     0xfd, 0x0f, 0x44, 0x44, 0xff, 0x03, 0x00, 0x00, 0x56, 0x50, 0x38, 0x20, 0x18, 0x00,
                                     0x00, 0x00, 0x14, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
                                     0xfe, 0x00, 0x00, 0x0d, 0xc0, 0x00, 0xfe, 0xe6, 0xb5, 0x00, 0x00, 0x00};
static const uint8_t WEBP_ANIMATED[] = {
    0x52, 0x49, 0x46, 0x46, 0x52, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x58, 0x0a, 0x00,
    0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0x4e, 0x49, 0x4d, 0x06, 0x00,
    0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x41, 0x4e, 0x4d, 0x46, 0x26, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x56, 0x50, 0x38, 0x4c,
    0x0d, 0x00, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x00, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00};

/* PNG: signature, IHDR, one IDAT (content irrelevant to the probe, CRC right), IEND. */
static void png_chunk(file_t *f, const char *type, const uint8_t *data, uint32_t n) {
  put32be(f, n);
  size_t start = f->n;
  put(f, type, 4);
  if (n) put(f, data, n);
  put32be(f, crc32_tab(f->b + start, 4 + n));
}
static file_t png_build(uint32_t w, uint32_t h, uint8_t depth, uint8_t colour, uint8_t interlace) {
  file_t f = {.n = 0};
  put(&f, "\x89PNG\r\n\x1a\n", 8);
  uint8_t ihdr[13] = {(uint8_t)(w >> 24),
                      (uint8_t)(w >> 16),
                      (uint8_t)(w >> 8),
                      (uint8_t)w,
                      (uint8_t)(h >> 24),
                      (uint8_t)(h >> 16),
                      (uint8_t)(h >> 8),
                      (uint8_t)h,
                      depth,
                      colour,
                      0,
                      0,
                      interlace};
  png_chunk(&f, "IHDR", ihdr, 13);
  png_chunk(&f, "IDAT", (const uint8_t *)"\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);
  png_chunk(&f, "IEND", NULL, 0);
  return f;
}

/* JPEG: SOI, APP0 JFIF, DQT, SOF `sof` (3 components), DHT, SOS, entropy data, EOI. */
static void jpeg_head(file_t *f) {
  put(f, "\xFF\xD8", 2);
  put(f, "\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 18);
  put(f, "\xFF\xDB\x00\x43\x00", 5);
  for (int i = 0; i < 64; i++) put8(f, 1);
}
static void jpeg_sof(file_t *f, uint8_t sof, uint32_t w, uint32_t h) {
  put8(f, 0xFF);
  put8(f, sof);
  put16be(f, 8 + 3 * 3);
  put8(f, 8);
  put16be(f, h);
  put16be(f, w);
  put(f, "\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
}
static void jpeg_tail(file_t *f) {
  put(f, "\xFF\xC4\x00\x14\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 22);
  put(f, "\xFF\xDA\x00\x0C\x03\x01\x00\x02\x11\x03\x11\x00\x3F\x00", 14);
  put(f, "\x12\x34\xFF\x00\x56\xFF\xD0\x78\x9A", 9); /* entropy data: a stuffed FF00 and RST0 */
  put(f, "\xFF\xD9", 2);
}
static file_t jpeg_build(uint8_t sof, uint32_t w, uint32_t h) {
  file_t f = {.n = 0};
  jpeg_head(&f);
  jpeg_sof(&f, sof, w, h);
  jpeg_tail(&f);
  return f;
}

/* WebP: RIFF header + first chunk (+ its payload), RIFF size right. */
static void riff_finish(file_t *f) {
  uint32_t size = (uint32_t)f->n - 8;
  f->b[4] = (uint8_t)size;
  f->b[5] = (uint8_t)(size >> 8);
  f->b[6] = (uint8_t)(size >> 16);
  f->b[7] = (uint8_t)(size >> 24);
}
static file_t webp_vp8(uint32_t w14, uint32_t h14) { /* raw 16-bit fields: 2 scale bits + 14 bits */
  file_t f = {.n = 0};
  put(&f, "RIFF\0\0\0\0WEBPVP8 ", 16);
  put32le(&f, 18);
  put24le(&f, 0x10 | (9u << 5)); /* key frame, profile 0, shown, first partition 9 bytes */
  put(&f, "\x9D\x01\x2A", 3);
  put16le(&f, w14);
  put16le(&f, h14);
  put(&f, "\x00\x01\x02\x03\x04\x05\x06\x07", 8);
  riff_finish(&f);
  return f;
}
static file_t webp_vp8l(uint32_t w, uint32_t h) {
  file_t f = {.n = 0};
  put(&f, "RIFF\0\0\0\0WEBPVP8L", 16);
  put32le(&f, 6);
  put8(&f, 0x2F);
  put32le(&f, (w - 1) | (h - 1) << 14 | 1u << 28);
  put8(&f, 0);
  riff_finish(&f);
  return f;
}
static file_t webp_vp8x(uint32_t w, uint32_t h) {
  file_t f = {.n = 0};
  put(&f, "RIFF\0\0\0\0WEBPVP8X", 16);
  put32le(&f, 10);
  put32le(&f, 0x10); /* flags: alpha */
  put24le(&f, w - 1);
  put24le(&f, h - 1);
  file_t l = webp_vp8l(1, 1);
  put(&f, l.b + 12, l.n - 12); /* a VP8L image chunk */
  riff_finish(&f);
  return f;
}

/* ---- PNG -------------------------------------------------------------------------------------- */

static void test_png_real(void **state) {
  (void)state;
  /* The test's CRC agrees with zlib's on the real file's IHDR. */
  assert_int_equal(crc32_tab(PNG_1X1 + 12, 17), 0x1f15c489u);
  expect_done(PNG_1X1, sizeof PNG_1X1, MQ_IMAGE_PNG, 1, 1);
  assert_true(mq_image_check_complete(PNG_1X1, sizeof PNG_1X1, MQ_IMAGE_PNG));
  /* The probe needs 33 bytes: signature + IHDR including its CRC. */
  expect_status(PNG_1X1, 32, MQ_IMAGE_NEED_MORE);
  expect_done(PNG_1X1, 33, MQ_IMAGE_PNG, 1, 1);
  /* The built 1x1 RGBA file has the same IHDR bytes. */
  file_t f = png_build(1, 1, 8, 6, 0);
  assert_memory_equal(f.b, PNG_1X1, 33);
}

static void test_png_dimensions(void **state) {
  (void)state;
  file_t f = png_build(640, 480, 8, 2, 0);
  expect_done(f.b, f.n, MQ_IMAGE_PNG, 640, 480);
  assert_true(mq_image_check_complete(f.b, f.n, MQ_IMAGE_PNG));
  f = png_build(0x7FFFFFFFu, 3, 1, 0, 1); /* the PNG maximum, interlaced */
  expect_done(f.b, f.n, MQ_IMAGE_PNG, 0x7FFFFFFFu, 3);
  f = png_build(1, 0x7FFFFFFFu, 16, 6, 0);
  expect_done(f.b, f.n, MQ_IMAGE_PNG, 1, 0x7FFFFFFFu);
  /* 0 and >= 2^31 are not PNG dimensions. */
  f = png_build(0, 10, 8, 2, 0);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = png_build(10, 0, 8, 2, 0);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = png_build(0x80000000u, 10, 8, 2, 0);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = png_build(10, 0xFFFFFFFFu, 8, 2, 0);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
}

static void test_png_ihdr_fields(void **state) {
  (void)state;
  /* Every valid bit depth / colour type pair, and some invalid ones. */
  static const struct {
    uint8_t depth, colour;
    bool ok;
  } pairs[] = {{1, 0, true},  {2, 0, true},  {4, 0, true},  {8, 0, true},  {16, 0, true}, {8, 2, true},
               {16, 2, true}, {1, 3, true},  {2, 3, true},  {4, 3, true},  {8, 3, true},  {8, 4, true},
               {16, 4, true}, {8, 6, true},  {16, 6, true}, {3, 0, false}, {4, 2, false}, {16, 3, false},
               {1, 4, false}, {4, 6, false}, {8, 1, false}, {8, 5, false}, {8, 7, false}, {0, 0, false}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    file_t f = png_build(5, 6, pairs[i].depth, pairs[i].colour, 0);
    expect_status(f.b, f.n, pairs[i].ok ? MQ_IMAGE_DONE : MQ_IMAGE_INVALID);
  }
  file_t f = png_build(5, 6, 8, 2, 2); /* interlace method 2 */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  /* Compression or filter method != 0 (CRC recomputed so only the field is wrong). */
  for (int field = 10; field <= 11; field++) {
    f = png_build(5, 6, 8, 2, 0);
    f.b[16 + field] = 1;
    uint32_t crc = crc32_tab(f.b + 12, 17);
    f.b[29] = (uint8_t)(crc >> 24), f.b[30] = (uint8_t)(crc >> 16), f.b[31] = (uint8_t)(crc >> 8);
    f.b[32] = (uint8_t)crc;
    expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  }
  /* A wrong CRC. */
  f = png_build(5, 6, 8, 2, 0);
  f.b[32] ^= 1;
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  /* IHDR not the first chunk, or with the wrong length. */
  f = png_build(5, 6, 8, 2, 0);
  memcpy(f.b + 12, "IHDr", 4);
  expect_status(f.b, 16, MQ_IMAGE_INVALID);
  f = png_build(5, 6, 8, 2, 0);
  f.b[11] = 14;
  expect_status(f.b, 12, MQ_IMAGE_INVALID);
  /* A damaged signature (e.g. a text-mode transfer turned \r\n into \n). */
  static const uint8_t mangled[] = {0x89, 'P', 'N', 'G', '\n', 0x1a, '\n', 0, 0, 0, 13};
  expect_status(mangled, sizeof mangled, MQ_IMAGE_INVALID);
}

/* ---- JPEG -------------------------------------------------------------------------------------- */

static void test_jpeg(void **state) {
  (void)state;
  file_t f = jpeg_build(0xC0, 1920, 1080);
  expect_done(f.b, f.n, MQ_IMAGE_JPEG, 1920, 1080);
  assert_true(mq_image_check_complete(f.b, f.n, MQ_IMAGE_JPEG));
  /* Every SOFn except C4 (DHT), C8 (JPG) and CC (DAC) carries the size. */
  for (uint32_t m = 0xC0; m <= 0xCF; m++) {
    f = jpeg_build((uint8_t)m, 65535, 1);
    if (m == 0xC4 || m == 0xC8 || m == 0xCC) {
      /* Taken as an ordinary segment: the walk then reaches DHT, then SOS before any SOF. */
      expect_status(f.b, f.n, MQ_IMAGE_INVALID);
    } else {
      expect_done(f.b, f.n, MQ_IMAGE_JPEG, 65535, 1);
    }
  }
  /* The probe stops at SOF: it never needs the rest. */
  f = jpeg_build(0xC2, 33, 44);
  size_t sof_at = 2 + 18 + 69;
  expect_status(f.b, sof_at + 9, MQ_IMAGE_NEED_MORE);
  expect_done(f.b, sof_at + 10, MQ_IMAGE_JPEG, 33, 44);
}

static void test_jpeg_markers(void **state) {
  (void)state;
  /* Fill bytes before markers, standalone TEM and RST markers, a COM segment and
   * an empty-bodied (length 2) APP segment before the SOF. */
  file_t f = {.n = 0};
  jpeg_head(&f);
  put(&f, "\xFF\xFF\xFF\x01", 4);         /* fill, fill, TEM */
  put(&f, "\xFF\xD3\xFF\xD7", 4);         /* RST3, RST7 */
  put(&f, "\xFF\xFE\x00\x05hi!", 7);      /* COM */
  put(&f, "\xFF\xFF\xFF\xEF\x00\x02", 6); /* fill bytes, APP15 with an empty body */
  put(&f, "\xFF\xFF", 2);                 /* fill bytes before the SOF's own 0xFF */
  jpeg_sof(&f, 0xC1, 300, 200);
  jpeg_tail(&f);
  expect_done(f.b, f.n, MQ_IMAGE_JPEG, 300, 200);

  /* A DHT, DAC and JPG segment whose body looks like a SOF body is skipped. */
  f = (file_t){.n = 0};
  jpeg_head(&f);
  put(&f, "\xFF\xCC\x00\x11\x08\x00\x10\x00\x10\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 19);
  put(&f, "\xFF\xC8\x00\x11\x08\x00\x10\x00\x10\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 19);
  jpeg_sof(&f, 0xC0, 7, 9);
  expect_done(f.b, f.n, MQ_IMAGE_JPEG, 7, 9);

  /* Refusals. */
  static const struct {
    const char *bytes;
    size_t n;
  } bad[] = {
      {"\xFF\xD8\xFF\xDA\x00\x08", 6},                          /* SOS before SOF */
      {"\xFF\xD8\xFF\xD9", 4},                                  /* EOI before SOF */
      {"\xFF\xD8\xFF\xD8", 4},                                  /* SOI twice */
      {"\xFF\xD8\xFF\x00", 4},                                  /* stuffed byte as a marker */
      {"\xFF\xD8\x00", 3},                                      /* no marker where one must be */
      {"\xFF\xD8\xFF\xE0\x00\x01", 6},                          /* segment length 1 */
      {"\xFF\xD8\xFF\xE0\x00\x02\x41", 7},                      /* garbage after an empty segment */
      {"\xFF\xD9", 2},                                          /* not SOI */
      {"\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x00\x00\x10\x01", 12}, /* height 0 (DNL) */
      {"\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x10\x00\x00\x01", 12}, /* width 0 */
      {"\xFF\xD8\xFF\xC0\x00\x08\x08\x00\x10\x00\x10\x00", 12}, /* no components */
      {"\xFF\xD8\xFF\xC0\x00\x0C\x08\x00\x10\x00\x10\x01", 12}, /* Lf != 8 + 3*Nf */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mq_image_info_t info;
    mq_image_status_t st = probe_exact((const uint8_t *)bad[i].bytes, bad[i].n, &info);
    if (st != MQ_IMAGE_INVALID) fail_msg("bad JPEG %zu: status %d", i, (int)st);
  }
  /* A minimal valid header: the grey 1-component SOF0, 16x16. */
  expect_done((const uint8_t *)"\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x10\x00\x10\x01", 12, MQ_IMAGE_JPEG, 16, 16);
  /* A segment length pointing past the end asks for more bytes. */
  expect_status((const uint8_t *)"\xFF\xD8\xFF\xE1\xFF\xF0" "Exif", 10, MQ_IMAGE_NEED_MORE);
}

/* ---- WebP ------------------------------------------------------------------------------------------ */

static void test_webp_real(void **state) {
  (void)state;
  expect_done(WEBP_LOSSY, sizeof WEBP_LOSSY, MQ_IMAGE_WEBP, 1, 1);
  expect_done(WEBP_LOSSLESS, sizeof WEBP_LOSSLESS, MQ_IMAGE_WEBP, 1, 1);
  expect_done(WEBP_ALPHA, sizeof WEBP_ALPHA, MQ_IMAGE_WEBP, 1, 1);
  expect_done(WEBP_ANIMATED, sizeof WEBP_ANIMATED, MQ_IMAGE_WEBP, 1, 1);
  assert_true(mq_image_check_complete(WEBP_LOSSY, sizeof WEBP_LOSSY, MQ_IMAGE_WEBP));
  assert_true(mq_image_check_complete(WEBP_LOSSLESS, sizeof WEBP_LOSSLESS, MQ_IMAGE_WEBP));
  assert_true(mq_image_check_complete(WEBP_ALPHA, sizeof WEBP_ALPHA, MQ_IMAGE_WEBP));
  assert_true(mq_image_check_complete(WEBP_ANIMATED, sizeof WEBP_ANIMATED, MQ_IMAGE_WEBP));
}

static void test_webp_built(void **state) {
  (void)state;
  /* VP8: 14-bit dimensions; the top two bits are scaling, not size. */
  file_t f = webp_vp8(1024, 768);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 1024, 768);
  assert_true(mq_image_check_complete(f.b, f.n, MQ_IMAGE_WEBP));
  f = webp_vp8(0xC000 | 16383, 0x4000 | 5);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 16383, 5);
  f = webp_vp8(0xC000, 5); /* width 0 once the scale bits are dropped */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8(10, 10);
  f.b[20] |= 1; /* an inter frame */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8(10, 10);
  f.b[20] &= (uint8_t)~0x10; /* not shown */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8(10, 10);
  f.b[20] |= 4 << 1; /* profile 4 */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8(10, 10);
  f.b[25] = 0x2B; /* start code */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8(10, 10);
  f.b[22] = 0xFF; /* first partition larger than the chunk */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);

  /* VP8L: 14-bit width-1 and height-1. */
  f = webp_vp8l(16384, 16384);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 16384, 16384);
  f = webp_vp8l(3, 4000);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 3, 4000);
  assert_true(mq_image_check_complete(f.b, f.n, MQ_IMAGE_WEBP));
  f = webp_vp8l(3, 4);
  f.b[24] |= 0x20; /* version 1 */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8l(3, 4);
  f.b[20] = 0x2E; /* signature */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);

  /* VP8X: 24-bit canvas width-1 and height-1, product < 2^32. */
  f = webp_vp8x(10000, 400);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 10000, 400);
  assert_true(mq_image_check_complete(f.b, f.n, MQ_IMAGE_WEBP));
  f = webp_vp8x(1u << 24, 255);
  expect_done(f.b, f.n, MQ_IMAGE_WEBP, 1u << 24, 255);
  f = webp_vp8x(1u << 24, 256); /* exactly 2^32 pixels */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8x(1u << 24, 1u << 24);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8x(10, 10);
  f.b[16] = 11; /* VP8X chunk size must be 10 */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);

  /* Container errors. */
  f = webp_vp8l(3, 4);
  memcpy(f.b + 12, "VP9 ", 4);
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  f = webp_vp8l(3, 4);
  f.b[16] = 200; /* chunk larger than the RIFF payload */
  expect_status(f.b, f.n, MQ_IMAGE_INVALID);
  expect_status((const uint8_t *)"RIFF\x0B\x00\x00\x00WEBP", 12, MQ_IMAGE_INVALID); /* RIFF size < 12 */
  expect_status((const uint8_t *)"RIFF\x24\x00\x00\x00WAVEfmt ", 16, MQ_IMAGE_INVALID);
  expect_status((const uint8_t *)"RIFF\x24\x00\x00\x00" "AVI LIST", 16, MQ_IMAGE_INVALID);
}

/* ---- other content ------------------------------------------------------------------------------- */

static void test_rejects_other_formats(void **state) {
  (void)state;
  static const char *const others[] = {
      "GIF89a\x01\x00\x01\x00\x80\x00\x00",
      "GIF87a\x01\x00\x01\x00",
      "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj",
      "hello, world: this is plain text",
      "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
      "<!DOCTYPE html><html>",
      "BM\x3A\x00\x00\x00\x00\x00\x00\x00\x36\x00",
      "II*\x00\x08\x00\x00\x00",
      "MM\x00*\x00\x00\x00\x08",
      "\x00\x00\x00\x1C"
      "ftypheic",
      "\x00\x00\x00\x20"
      "ftypavif",
      "PK\x03\x04\x14\x00",
      "\x7F"
      "ELF\x02\x01\x01",
      "\xEF\xBB\xBF\xFF\xD8\xFF\xE0", /* a BOM in front of a JPEG */
      "\x89PNX\r\n\x1a\n",
      "\x89PNG\r\n\x1a\r",
      "RIFX\x10\x00\x00\x00WEBP",
      "\xFF\xD7\xFF\xE0",
  };
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    size_t n = strlen(others[i]);
    if (i >= 9 && i <= 10) n = 12; /* the ftyp headers start with NUL bytes */
    mq_image_info_t info;
    mq_image_status_t st = probe_exact((const uint8_t *)others[i], n, &info);
    if (st != MQ_IMAGE_INVALID) fail_msg("sample %zu: status %d, expected INVALID", i, (int)st);
  }
  /* The file name is never consulted: a PNG is a PNG, whatever it is called. */
  expect_done(PNG_1X1, sizeof PNG_1X1, MQ_IMAGE_PNG, 1, 1);
}

static void test_need_more_vs_invalid(void **state) {
  (void)state;
  expect_status(NULL, 0, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"\xFF", 1, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"\xFF\xD8\xFF", 3, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"\x89PN", 3, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"\x89PX", 3, MQ_IMAGE_INVALID); /* wrong from the third byte */
  expect_status((const uint8_t *)"RIF", 3, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"RIFF\x20\x00\x00\x00WE", 10, MQ_IMAGE_NEED_MORE);
  expect_status((const uint8_t *)"RIFF\x20\x00\x00\x00WA", 10, MQ_IMAGE_INVALID);
  expect_status((const uint8_t *)"G", 1, MQ_IMAGE_INVALID);
  /* A non-NULL info is always written, a NULL one is allowed. */
  assert_int_equal(mq_image_probe(PNG_1X1, sizeof PNG_1X1, NULL), MQ_IMAGE_DONE);
  assert_int_equal(mq_image_probe(NULL, 5, NULL), MQ_IMAGE_INVALID);
}

/* ---- whole file -------------------------------------------------------------------------------------- */

static void test_check_complete(void **state) {
  (void)state;
  file_t j = jpeg_build(0xC0, 8, 8), p = png_build(8, 8, 8, 2, 0), w = webp_vp8l(8, 8);
  assert_true(mq_image_check_complete(j.b, j.n, MQ_IMAGE_JPEG));
  assert_true(mq_image_check_complete(p.b, p.n, MQ_IMAGE_PNG));
  assert_true(mq_image_check_complete(w.b, w.n, MQ_IMAGE_WEBP));
  /* Truncated anywhere: the trailer is gone. */
  for (size_t cut = 1; cut < 12; cut++) {
    assert_false(mq_image_check_complete(j.b, j.n - cut, MQ_IMAGE_JPEG));
    assert_false(mq_image_check_complete(p.b, p.n - cut, MQ_IMAGE_PNG));
    assert_false(mq_image_check_complete(w.b, w.n - cut, MQ_IMAGE_WEBP));
  }
  /* Trailing bytes after the end. */
  j.b[j.n] = 0, p.b[p.n] = 0, w.b[w.n] = 0;
  assert_false(mq_image_check_complete(j.b, j.n + 1, MQ_IMAGE_JPEG));
  assert_false(mq_image_check_complete(p.b, p.n + 1, MQ_IMAGE_PNG));
  assert_false(mq_image_check_complete(w.b, w.n + 1, MQ_IMAGE_WEBP));
  /* The wrong type, an unknown type, tiny and NULL buffers. */
  assert_false(mq_image_check_complete(j.b, j.n, MQ_IMAGE_PNG));
  assert_false(mq_image_check_complete(p.b, p.n, MQ_IMAGE_WEBP));
  assert_false(mq_image_check_complete(w.b, w.n, MQ_IMAGE_JPEG));
  assert_false(mq_image_check_complete(j.b, j.n, MQ_IMAGE_UNKNOWN));
  assert_false(mq_image_check_complete("\xFF\xD9", 2, MQ_IMAGE_JPEG));
  assert_false(mq_image_check_complete("\xFF\xD8\xD9", 3, MQ_IMAGE_JPEG));
  assert_false(mq_image_check_complete(NULL, 0, MQ_IMAGE_JPEG));
  /* A truncated JPEG still probes fine (the SOF is early): only the trailer tells. */
  expect_done(j.b, j.n - 1, MQ_IMAGE_JPEG, 8, 8);
}

static void test_mime(void **state) {
  (void)state;
  assert_string_equal(mq_image_mime(MQ_IMAGE_JPEG), "image/jpeg");
  assert_string_equal(mq_image_mime(MQ_IMAGE_PNG), "image/png");
  assert_string_equal(mq_image_mime(MQ_IMAGE_WEBP), "image/webp");
  assert_string_equal(mq_image_mime(MQ_IMAGE_UNKNOWN), "application/octet-stream");
  assert_string_equal(mq_image_mime((mq_image_type_t)42), "application/octet-stream");
}

static void test_limits(void **state) {
  (void)state;
  const mq_image_limits_t lim = {.max_bytes = 1000, .max_width = 4000, .max_height = 3000, .max_pixels = 8000000};
  mq_image_info_t ok = {MQ_IMAGE_JPEG, 4000, 2000};
  mq_error_t e = fresh_error();
  assert_int_equal(mq_image_check_limits(&e, "media.content", &ok, 1000, &lim), MQ_OK);
  assert_int_equal(mq_image_check_limits(&e, "media.content", &ok, 1u << 30, NULL), MQ_OK);
  assert_int_equal(e.code, MQ_OK);

  static const struct {
    uint32_t w, h;
    uint64_t size;
    const char *needle;
  } bad[] = {
      {10, 10, 1001, "at most 1000 bytes"},
      {4001, 10, 10, "at most 4000 pixels wide"},
      {10, 3001, 10, "at most 3000 pixels high"},
      {4000, 2001, 10, "at most 8000000 pixels"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mq_image_info_t info = {MQ_IMAGE_PNG, bad[i].w, bad[i].h};
    e = fresh_error();
    assert_int_equal(mq_image_check_limits(&e, "media.content", &info, bad[i].size, &lim), MQ_INVALID_ARGUMENT);
    assert_string_equal(e.field, "media.content");
    if (!strstr(e.message, bad[i].needle)) fail_msg("message \"%s\" lacks \"%s\"", e.message, bad[i].needle);
  }
  /* A decompression bomb: a tiny PNG that claims 2^31-1 x 2^31-1 pixels. */
  file_t f = png_build(0x7FFFFFFFu, 0x7FFFFFFFu, 1, 0, 0);
  const mq_image_limits_t pixels_only = {.max_pixels = 50000000};
  e = fresh_error();
  assert_int_equal(mq_image_validate(&e, "image", f.b, f.n, &pixels_only, NULL), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(e.message, "at most 50000000 pixels"));
  /* Caller bugs. */
  e = fresh_error();
  mq_image_info_t unknown = {MQ_IMAGE_UNKNOWN, 1, 1};
  assert_int_equal(mq_image_check_limits(&e, "image", &unknown, 1, &lim), MQ_INTERNAL);
  assert_int_equal(mq_image_check_limits(NULL, "image", NULL, 1, &lim), MQ_INTERNAL);
}

static void test_validate(void **state) {
  (void)state;
  const mq_image_limits_t lim = {.max_bytes = 4096, .max_width = 8000, .max_height = 8000};
  mq_image_info_t info = {MQ_IMAGE_UNKNOWN, 0, 0};
  mq_error_t e = fresh_error();
  file_t f = jpeg_build(0xC0, 800, 600);
  assert_int_equal(mq_image_validate(&e, "image", f.b, f.n, &lim, &info), MQ_OK);
  assert_int_equal(info.type, MQ_IMAGE_JPEG);
  assert_int_equal(info.width, 800);
  assert_int_equal(info.height, 600);
  assert_int_equal(mq_image_validate(&e, "image", PNG_1X1, sizeof PNG_1X1, &lim, &info), MQ_OK);
  assert_int_equal(info.type, MQ_IMAGE_PNG);
  assert_int_equal(mq_image_validate(&e, "image", WEBP_ALPHA, sizeof WEBP_ALPHA, &lim, &info), MQ_OK);
  assert_int_equal(info.type, MQ_IMAGE_WEBP);

  static const struct {
    const uint8_t *p;
    size_t n;
    const char *needle;
  } bad[] = {
      {(const uint8_t *)"GIF89a\x01\x00\x01\x00", 10, "must be a JPEG, PNG or WebP image"},
      {(const uint8_t *)"", 0, "is required"},
      {PNG_1X1, 20, "is truncated (the image header"},
      {PNG_1X1, sizeof PNG_1X1 - 1, "is truncated (the image/png file"},
      {WEBP_LOSSY, sizeof WEBP_LOSSY - 2, "is truncated (the image/webp file"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    e = fresh_error();
    info = (mq_image_info_t){MQ_IMAGE_JPEG, 9, 9};
    assert_int_equal(mq_image_validate(&e, "image", bad[i].p, bad[i].n, &lim, &info), MQ_INVALID_ARGUMENT);
    assert_string_equal(e.field, "image");
    if (!strstr(e.message, bad[i].needle)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.message, bad[i].needle);
    assert_int_equal(info.width, 9); /* untouched on refusal */
  }
  e = fresh_error();
  f = jpeg_build(0xC0, 9000, 10);
  assert_int_equal(mq_image_validate(&e, "image", f.b, f.n, &lim, NULL), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(e.message, "at most 8000 pixels wide"));
  f.n -= 2; /* and truncated: EOI missing */
  const mq_image_limits_t none = {0};
  assert_int_equal(mq_image_validate(&e, "image", f.b, f.n, &none, NULL), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(e.message, "image/jpeg"));
}

/* ---- robustness: every prefix, random mutations -------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 32);
}

/* Probes every prefix of p[0..n) from exact-size heap copies and checks that the
 * answers are sane and monotonic. Returns the answer for the whole buffer. */
static mq_image_status_t check_prefixes(const uint8_t *p, size_t n) {
  mq_image_status_t first_final = MQ_IMAGE_NEED_MORE;
  mq_image_info_t final_info = {MQ_IMAGE_UNKNOWN, 0, 0};
  for (size_t k = 0; k <= n; k++) {
    mq_image_info_t info;
    mq_image_status_t st = probe_exact(p, k, &info);
    assert_true(st == MQ_IMAGE_DONE || st == MQ_IMAGE_NEED_MORE || st == MQ_IMAGE_INVALID);
    if (st == MQ_IMAGE_DONE) {
      assert_true(info.width > 0 && info.height > 0);
      switch (info.type) {
        case MQ_IMAGE_JPEG:
          assert_true(p[0] == 0xFF && info.width <= 65535 && info.height <= 65535);
          break;
        case MQ_IMAGE_PNG:
          assert_true(p[0] == 0x89 && info.width <= 0x7FFFFFFFu && info.height <= 0x7FFFFFFFu);
          break;
        case MQ_IMAGE_WEBP:
          assert_true(p[0] == 'R' && info.width <= (1u << 24) && info.height <= (1u << 24));
          assert_true((uint64_t)info.width * info.height < (1ull << 32));
          break;
        default:
          fail_msg("DONE with type %d", (int)info.type);
      }
    } else {
      assert_int_equal(info.type, MQ_IMAGE_UNKNOWN);
    }
    if (first_final != MQ_IMAGE_NEED_MORE) {
      if (st != first_final) fail_msg("prefix %zu: status %d after %d", k, (int)st, (int)first_final);
      assert_memory_equal(&info, &final_info, sizeof info);
    } else if (st != MQ_IMAGE_NEED_MORE) {
      first_final = st;
      final_info = info;
    }
    if (k == n) return st;
  }
  return first_final;
}

typedef struct {
  const uint8_t *p;
  size_t n;
} sample_t;

static size_t samples(sample_t *out, file_t *store) {
  size_t n = 0;
  store[0] = png_build(300, 200, 8, 6, 1);
  store[1] = jpeg_build(0xC0, 640, 480);
  store[2] = jpeg_build(0xC2, 1, 65535);
  store[3] = webp_vp8(4000, 3000);
  store[4] = webp_vp8l(99, 77);
  store[5] = webp_vp8x(12345, 678);
  for (int i = 0; i < 6; i++) out[n++] = (sample_t){store[i].b, store[i].n};
  out[n++] = (sample_t){PNG_1X1, sizeof PNG_1X1};
  out[n++] = (sample_t){WEBP_LOSSY, sizeof WEBP_LOSSY};
  out[n++] = (sample_t){WEBP_LOSSLESS, sizeof WEBP_LOSSLESS};
  out[n++] = (sample_t){WEBP_ALPHA, sizeof WEBP_ALPHA};
  out[n++] = (sample_t){WEBP_ANIMATED, sizeof WEBP_ANIMATED};
  return n;
}

static void test_every_prefix(void **state) {
  (void)state;
  static file_t store[6];
  sample_t s[16];
  size_t n = samples(s, store);
  for (size_t i = 0; i < n; i++) {
    if (check_prefixes(s[i].p, s[i].n) != MQ_IMAGE_DONE) fail_msg("sample %zu not DONE", i);
    /* Every proper prefix of a complete file fails the trailer check. */
    mq_image_info_t info;
    (void)mq_image_probe(s[i].p, s[i].n, &info);
    for (size_t k = 0; k < s[i].n; k++) assert_false(mq_image_check_complete(s[i].p, k, info.type));
  }
}

static void test_random_mutations(void **state) {
  (void)state;
  static file_t store[6];
  sample_t s[16];
  size_t n = samples(s, store);
  size_t counts[3] = {0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    for (int round = 0; round < 600; round++) {
      uint8_t m[sizeof store[0].b];
      size_t len = s[i].n;
      memcpy(m, s[i].p, len);
      int edits = 1 + (int)(rnd() % 4);
      for (int e = 0; e < edits; e++) {
        size_t at = rnd() % len;
        switch (rnd() % 4) {
          case 0:
            m[at] ^= (uint8_t)(1u << (rnd() % 8));
            break; /* flip a bit */
          case 1:
            m[at] = (uint8_t)rnd();
            break; /* random byte */
          case 2:
            m[at] = (rnd() & 1) ? 0xFF : 0x00;
            break; /* extremes */
          default: /* cut or extend with noise */
            if (rnd() & 1) {
              len = at + 1;
            } else {
              size_t extra = rnd() % 64;
              for (size_t x = 0; x < extra && len < sizeof m; x++) m[len++] = (uint8_t)rnd();
            }
        }
      }
      counts[check_prefixes(m, len)]++;
    }
  }
  /* Pure noise behind each magic number, to drive the walks deeper. */
  static const char *const magic[] = {"\xFF\xD8", "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
                                      "RIFF\xF0\x00\x00\x00WEBPVP8"};
  for (int round = 0; round < 900; round++) {
    uint8_t m[96];
    const char *mg = magic[round % 3];
    size_t ml = round % 3 == 0 ? 2 : round % 3 == 1 ? 16 : 15;
    memcpy(m, mg, ml);
    for (size_t x = ml; x < sizeof m; x++) m[x] = (uint8_t)rnd();
    if (round % 3 == 2 && (round & 4)) m[15] = (round & 8) ? 'L' : 'X';
    counts[check_prefixes(m, sizeof m)]++;
  }
  /* The mutations must exercise all three outcomes. */
  print_message("mutations: %zu DONE, %zu NEED_MORE, %zu INVALID\n", counts[MQ_IMAGE_DONE], counts[MQ_IMAGE_NEED_MORE],
                counts[MQ_IMAGE_INVALID]);
  assert_true(counts[MQ_IMAGE_DONE] > 100);
  assert_true(counts[MQ_IMAGE_NEED_MORE] > 10);
  assert_true(counts[MQ_IMAGE_INVALID] > 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_png_real),
      cmocka_unit_test(test_png_dimensions),
      cmocka_unit_test(test_png_ihdr_fields),
      cmocka_unit_test(test_jpeg),
      cmocka_unit_test(test_jpeg_markers),
      cmocka_unit_test(test_webp_real),
      cmocka_unit_test(test_webp_built),
      cmocka_unit_test(test_rejects_other_formats),
      cmocka_unit_test(test_need_more_vs_invalid),
      cmocka_unit_test(test_check_complete),
      cmocka_unit_test(test_mime),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_validate),
      cmocka_unit_test(test_every_prefix),
      cmocka_unit_test(test_random_mutations),
  };
  return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
