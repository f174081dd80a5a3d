/*
 * mq_image.c — the header sniffers declared in mq_image.h.
 *
 * Invariants: every read of buf[i] is preceded by a check that i < len, done
 * through NEED(n) ("need n bytes in all"), which answers MQ_IMAGE_NEED_MORE
 * otherwise. Each sniffer is a deterministic walk that reads bytes in order
 * and returns as soon as it can decide, which is what makes the probe
 * monotonic in the prefix length (mq_image.h). Offsets are size_t and only
 * ever grow by values already bounded (a JPEG segment length is <= 65535),
 * so they cannot wrap.
 *
 * Sources: ITU T.81 (JPEG) B.1.1 and Table B.1; PNG (ISO/IEC 15948) §5 and
 * §11.2.2; WebP container spec (RIFF, VP8/VP8L/VP8X chunks) and RFC 6386
 * §9.1 (VP8 key frame header), with the same checks as libwebp's
 * VP8GetInfo/VP8LGetInfo.
 */
#include "lib/mq_image.h"

#include <string.h>

#define NEED(n)                              \
  do {                                       \
    if (len < (size_t)(n)) return NEED_MORE; \
  } while (0)

enum { DONE = MQ_IMAGE_DONE, NEED_MORE = MQ_IMAGE_NEED_MORE, INVALID = MQ_IMAGE_INVALID };

static uint32_t be16(const uint8_t *p) {
  return (uint32_t)p[0] << 8 | p[1];
}
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le16(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t le24(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}
static uint32_t le32(const uint8_t *p) {
  return le24(p) | (uint32_t)p[3] << 24;
}

/* Compares buf[off..off+n) with sig byte by byte, as far as len allows:
 * INVALID at the first difference, NEED_MORE if the bytes run out first. */
static int match(const uint8_t *buf, size_t len, size_t off, const char *sig, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (off + i >= len) return NEED_MORE;
    if (buf[off + i] != (uint8_t)sig[i]) return INVALID;
  }
  return DONE;
}

static int done(mq_image_info_t *info, mq_image_type_t type, uint32_t w, uint32_t h) {
  info->type = type;
  info->width = w;
  info->height = h;
  return DONE;
}

/* ---- JPEG ------------------------------------------------------------------------------------ */

static bool jpeg_is_sof(uint8_t m) {
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

static int probe_jpeg(const uint8_t *buf, size_t len, mq_image_info_t *info) {
  int rc = match(buf, len, 0, "\xFF\xD8", 2);
  if (rc != DONE) return rc;
  size_t pos = 2;
  for (;;) {
    NEED(pos + 1);
    if (buf[pos] != 0xFF) return INVALID;        /* garbage where a marker must be */
    while (pos < len && buf[pos] == 0xFF) pos++; /* the marker's 0xFF and any fill bytes */
    NEED(pos + 1);
    uint8_t m = buf[pos++];
    if (m == 0x00) return INVALID;                           /* stuffed byte: only inside entropy data */
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;     /* TEM, RSTn: no length */
    if (m == 0xD8 || m == 0xD9 || m == 0xDA) return INVALID; /* SOI again, EOI or SOS before any SOF */
    NEED(pos + 2);
    uint32_t seglen = be16(buf + pos);
    if (seglen < 2) return INVALID;
    if (jpeg_is_sof(m)) {
      /* Lf(2) P(1) Y(2) X(2) Nf(1), then Nf * 3 bytes of components. */
      NEED(pos + 8);
      uint32_t h = be16(buf + pos + 3), w = be16(buf + pos + 5), nf = buf[pos + 7];
      if (nf == 0 || seglen != 8 + 3 * nf || w == 0 || h == 0) return INVALID;
      return done(info, MQ_IMAGE_JPEG, w, h);
    }
    pos += seglen;
  }
}

/* ---- PNG ----------------------------------------------------------------------------------- */

static const char PNG_SIG[] = "\x89PNG\r\n\x1a\n";

static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

static bool png_depth_ok(uint8_t depth, uint8_t colour) {
  switch (colour) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

static int probe_png(const uint8_t *buf, size_t len, mq_image_info_t *info) {
  int rc = match(buf, len, 0, PNG_SIG, 8);
  if (rc != DONE) return rc;
  rc = match(buf, len, 8,
             "\x00\x00\x00\x0D"
             "IHDR",
             8);
  if (rc != DONE) return rc;
  NEED(33); /* 8 signature + 8 chunk header + 13 data + 4 CRC */
  const uint8_t *d = buf + 16;
  uint32_t w = be32(d), h = be32(d + 4);
  if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu) return INVALID;
  if (!png_depth_ok(d[8], d[9]) || d[10] != 0 || d[11] != 0 || d[12] > 1) return INVALID;
  if (crc32_png(buf + 12, 17) != be32(buf + 29)) return INVALID;
  return done(info, MQ_IMAGE_PNG, w, h);
}

/* ---- WebP ---------------------------------------------------------------------------------- */

static int probe_webp(const uint8_t *buf, size_t len, mq_image_info_t *info) {
  int rc = match(buf, len, 0, "RIFF", 4);
  if (rc != DONE) return rc;
  NEED(8);
  uint32_t riff = le32(buf + 4);
  if (riff < 12) return INVALID; /* "WEBP" + one chunk header */
  rc = match(buf, len, 8, "WEBP", 4);
  if (rc != DONE) return rc;
  NEED(16);
  bool vp8 = memcmp(buf + 12, "VP8 ", 4) == 0, vp8l = memcmp(buf + 12, "VP8L", 4) == 0,
       vp8x = memcmp(buf + 12, "VP8X", 4) == 0;
  if (!vp8 && !vp8l && !vp8x) return INVALID;
  NEED(20);
  uint32_t csize = le32(buf + 16);
  if (csize > riff - 12) return INVALID; /* the chunk must fit in the RIFF payload */
  const uint8_t *d = buf + 20;
  if (vp8) {
    if (csize < 10) return INVALID;
    NEED(30); /* frame tag (3) + start code (3) + width (2) + height (2) */
    uint32_t bits = le24(d);
    bool key_frame = !(bits & 1), shown = (bits >> 4) & 1;
    if (!key_frame || ((bits >> 1) & 7) > 3 || !shown || (bits >> 5) >= csize) return INVALID;
    if (d[3] != 0x9D || d[4] != 0x01 || d[5] != 0x2A) return INVALID;
    uint32_t w = le16(d + 6) & 0x3FFF, h = le16(d + 8) & 0x3FFF;
    if (w == 0 || h == 0) return INVALID;
    return done(info, MQ_IMAGE_WEBP, w, h);
  }
  if (vp8l) {
    if (csize < 5) return INVALID;
    NEED(25); /* signature (1) + 32 bits */
    if (d[0] != 0x2F) return INVALID;
    uint32_t bits = le32(d + 1);
    if (bits >> 29) return INVALID; /* version must be 0 */
    return done(info, MQ_IMAGE_WEBP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (csize != 10) return INVALID;
  NEED(30); /* flags (1) + reserved (3) + width-1 (3) + height-1 (3) */
  uint64_t w = (uint64_t)le24(d + 4) + 1, h = (uint64_t)le24(d + 7) + 1;
  if (w * h >= (1ull << 32)) return INVALID;
  return done(info, MQ_IMAGE_WEBP, (uint32_t)w, (uint32_t)h);
}

/* ---- API ------------------------------------------------------------------------------------ */

mq_image_status_t mq_image_probe(const void *buf, size_t len, mq_image_info_t *info) {
  mq_image_info_t scratch;
  if (!info) info = &scratch;
  memset(info, 0, sizeof *info);
  if (len == 0) return MQ_IMAGE_NEED_MORE;
  if (!buf) return MQ_IMAGE_INVALID;
  const uint8_t *b = buf;
  int rc;
  switch (b[0]) {
    case 0xFF:
      rc = probe_jpeg(b, len, info);
      break;
    case 0x89:
      rc = probe_png(b, len, info);
      break;
    case 'R':
      rc = probe_webp(b, len, info);
      break;
    default:
      rc = INVALID;
      break;
  }
  if (rc != DONE) memset(info, 0, sizeof *info);
  return (mq_image_status_t)rc;
}

const char *mq_image_mime(mq_image_type_t type) {
  switch (type) {
    case MQ_IMAGE_JPEG:
      return "image/jpeg";
    case MQ_IMAGE_PNG:
      return "image/png";
    case MQ_IMAGE_WEBP:
      return "image/webp";
    default:
      return "application/octet-stream";
  }
}

bool mq_image_check_complete(const void *buf, size_t len, mq_image_type_t type) {
  const uint8_t *b = buf;
  if (!b) return false;
  switch (type) {
    case MQ_IMAGE_JPEG:
      return len >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[len - 2] == 0xFF && b[len - 1] == 0xD9;
    case MQ_IMAGE_PNG:
      return len >= 8 + 25 + 12 && memcmp(b, PNG_SIG, 8) == 0 &&
             memcmp(b + len - 12,
                    "\x00\x00\x00\x00"
                    "IEND"
                    "\xAE\x42\x60\x82",
                    12) == 0;
    case MQ_IMAGE_WEBP:
      return len >= 20 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0 &&
             (uint64_t)le32(b + 4) + 8 == (uint64_t)len;
    default:
      return false;
  }
}

mq_code_t mq_image_check_limits(mq_error_t *err, const char *field, const mq_image_info_t *info, uint64_t size,
                                const mq_image_limits_t *lim) {
  if (!info || info->type == MQ_IMAGE_UNKNOWN)
    return mq_error_set(err, MQ_INTERNAL, field, "image limits checked before the image was probed");
  if (!lim) return MQ_OK;
  if (lim->max_bytes && size > lim->max_bytes)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at most %llu bytes",
                        (unsigned long long)lim->max_bytes);
  if (lim->max_width && info->width > lim->max_width)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at most %u pixels wide (this image is %u)",
                        (unsigned)lim->max_width, (unsigned)info->width);
  if (lim->max_height && info->height > lim->max_height)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at most %u pixels high (this image is %u)",
                        (unsigned)lim->max_height, (unsigned)info->height);
  if (lim->max_pixels && (uint64_t)info->width * info->height > lim->max_pixels)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must have at most %llu pixels (width x height)",
                        (unsigned long long)lim->max_pixels);
  return MQ_OK;
}

mq_code_t mq_image_validate(mq_error_t *err, const char *field, const void *buf, size_t len,
                            const mq_image_limits_t *lim, mq_image_info_t *info) {
  mq_image_info_t got;
  mq_image_status_t st = mq_image_probe(buf, len, &got);
  if (st == MQ_IMAGE_INVALID) return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be a JPEG, PNG or WebP image");
  if (st == MQ_IMAGE_NEED_MORE) {
    if (len == 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is required");
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is truncated (the image header is incomplete)");
  }
  mq_code_t rc = mq_image_check_limits(err, field, &got, len, lim);
  if (rc != MQ_OK) return rc;
  if (!mq_image_check_complete(buf, len, got.type))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is truncated (the %s file does not end properly)",
                        mq_image_mime(got.type));
  if (info) *info = got;
  return MQ_OK;
}
