/*
 * mq_image.h — what an uploaded image really is: JPEG, PNG or WebP, and its
 * width and height, read from the bytes (never from the file name or the
 * client's Content-Type), plus the size/dimension limits the catalog service
 * enforces on media uploads.
 *
 * Contract:
 *   - mq_image_probe() looks at a PREFIX of the file. Uploads arrive as a
 *     stream of chunks: call it again with the longer prefix after every
 *     chunk until it stops answering MQ_IMAGE_NEED_MORE. It is stateless
 *     (every call starts from byte 0) and monotonic: once a prefix gives
 *     DONE or INVALID, every longer prefix of the same bytes gives the same
 *     answer (and the same info). NEED_MORE is only answered while some
 *     continuation of the bytes could still be a valid image, so garbage is
 *     refused after its first wrong byte.
 *   - How many bytes the probe needs: PNG 33 (signature + IHDR with CRC),
 *     WebP 30, JPEG everything up to and including the first bytes of its
 *     SOFn segment (after APPn/EXIF/ICC segments: usually < 64 KiB, in
 *     theory the whole file). A caller that has the whole upload and still
 *     gets NEED_MORE has a truncated file: refuse it.
 *   - mq_image_check_complete() checks the WHOLE file's trailer (not
 *     truncated); mq_image_check_limits() applies the service's limits;
 *     mq_image_validate() does all three for a whole file in memory.
 *   - Never reads outside buf[0..len); no allocation, no global state,
 *     thread-safe. Only headers are parsed: this is a gate, not a decoder
 *     (a file that passes may still fail to decode; image processing must
 *     run with its own limits).
 *
 * What is checked per format:
 *   JPEG  FF D8, then marker segments (fill bytes 0xFF skipped, standalone
 *         markers TEM/RST0..7 have no length, every other segment length >= 2)
 *         up to the first SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC):
 *         Lf = 8 + 3*Nf with Nf >= 1, height (Y) and width (X) > 0. Y = 0
 *         (height defined later by DNL) is refused. SOS, EOI or a second SOI
 *         before any SOF, or a non-0xFF byte where a marker must be, is
 *         INVALID.
 *   PNG   the 8-byte signature, then IHDR as the first chunk with length 13
 *         and a correct CRC, width and height 1..2^31-1, a valid bit
 *         depth/colour type pair, compression 0, filter 0, interlace 0 or 1.
 *   WebP  "RIFF" size "WEBP" (size >= 12), then the first chunk, which must
 *         fit in the RIFF size:
 *         "VP8 " (key frame, version <= 3, shown, start code 9D 01 2A, 14-bit
 *         width and height > 0), "VP8L" (signature 0x2F, 14-bit width-1 and
 *         height-1, version 0) or "VP8X" (chunk size 10, 24-bit canvas
 *         width-1 and height-1, width*height < 2^32). Animated WebP (VP8X
 *         with ANIM) is accepted as an image; its canvas size is reported.
 *
 * Ownership: buffers are borrowed for the duration of the call.
 * Read next: tests/unit/lib/test_image.c (hand-built files of every kind, every
 * prefix and random mutations under ASan).
 */
#ifndef MQ_IMAGE_H
#define MQ_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

typedef enum mq_image_type { MQ_IMAGE_UNKNOWN = 0, MQ_IMAGE_JPEG, MQ_IMAGE_PNG, MQ_IMAGE_WEBP } mq_image_type_t;

typedef struct mq_image_info {
  mq_image_type_t type;
  uint32_t width, height; /* pixels, both > 0 when DONE */
} mq_image_info_t;

typedef enum mq_image_status {
  MQ_IMAGE_DONE = 0,  /* type and dimensions known: *info filled */
  MQ_IMAGE_NEED_MORE, /* a valid image could still start with these bytes: call again with more */
  MQ_IMAGE_INVALID    /* not a JPEG/PNG/WebP we accept, whatever follows */
} mq_image_status_t;

/* Probes buf[0..len) (buf may be NULL when len == 0). On DONE fills *info;
 * otherwise *info is {MQ_IMAGE_UNKNOWN, 0, 0}. info may be NULL. */
mq_image_status_t mq_image_probe(const void *buf, size_t len, mq_image_info_t *info);

/* "image/jpeg", "image/png", "image/webp"; "application/octet-stream" for
 * MQ_IMAGE_UNKNOWN or any other value. */
const char *mq_image_mime(mq_image_type_t type);

/* True if the whole file buf[0..len) of `type` is not truncated: JPEG starts
 * with FF D8 and ends with EOI (FF D9); PNG starts with the signature and ends
 * with the 12-byte IEND chunk (length 0, "IEND", CRC AE 42 60 82); WebP
 * starts with "RIFF" and its size field equals len - 8. Checks the trailer
 * only, not the data in between. False for MQ_IMAGE_UNKNOWN. */
bool mq_image_check_complete(const void *buf, size_t len, mq_image_type_t type);

typedef struct mq_image_limits {
  uint64_t max_bytes;  /* file size; 0 = no limit */
  uint32_t max_width;  /* 0 = no limit */
  uint32_t max_height; /* 0 = no limit */
  uint64_t max_pixels; /* width * height (decompression bombs); 0 = no limit */
} mq_image_limits_t;

/* Applies `lim` (NULL = no limits) to a probed image of `size` bytes (pass
 * the bytes received so far while streaming, the total at the end). Refuses
 * with MQ_INVALID_ARGUMENT naming `field`: "must be at most N bytes", "must
 * be at most W pixels wide", "... high", "must have at most P pixels".
 * info == NULL or info->type == MQ_IMAGE_UNKNOWN → MQ_INTERNAL (caller bug:
 * probe first). */
mq_code_t mq_image_check_limits(mq_error_t *err, const char *field, const mq_image_info_t *info, uint64_t size,
                                const mq_image_limits_t *lim);

/* The whole-file gate for an upload held in memory: probe (NEED_MORE on the
 * whole file means truncated), limits, then mq_image_check_complete. Refusals
 * are MQ_INVALID_ARGUMENT naming `field`: "must be a JPEG, PNG or WebP image",
 * "is truncated", or a limit message. On MQ_OK fills *info (may be NULL). */
mq_code_t mq_image_validate(mq_error_t *err, const char *field, const void *buf, size_t len,
                            const mq_image_limits_t *lim, mq_image_info_t *info);

#endif
