/*
 * mq_ticket_render.h — what a ticket looks like: the QR image of its signed
 * code (mq_ticket_code.h) as a PNG, and a printable one-page PDF ticket;
 * and, with the same layout rules, a one-page receipt or credit note.
 *
 * QR (mq_render_qr_png):
 *   - libqrencode, the whole text in 8-bit byte mode, error correction level
 *     M (15 %), the smallest version that fits; text is 1..MQ_QR_TEXT_MAX
 *     bytes (NUL-terminated, so no NUL inside) else INVALID_ARGUMENT "text".
 *   - Image: a 4-module white quiet zone on every side and `scale` pixels per
 *     module (1..MQ_QR_SCALE_MAX; 0 means MQ_QR_SCALE_DEFAULT; anything else
 *     is INVALID_ARGUMENT "scale"), so it is square with side
 *     (modules + 8) * scale pixels, modules = 17 + 4 * version.
 *   - PNG: 1-bit greyscale (0 = black, 1 = white), not interlaced, written
 *     to memory by libpng (errors trapped with setjmp inside this module).
 *     The largest image is (177 + 8) * 32 = 5920 pixels square, written
 *     from one 740-byte row buffer; the PNG itself is a few KiB.
 *
 * PDF (mq_render_ticket_pdf):
 *   - One A4 portrait page: organiser, event title (up to 3 lines), date/time
 *     text, venue (up to 3 lines), then attendee, ticket type, ticket id and
 *     booking id beside a 200 pt QR of `code`, the code text in small print,
 *     and a footer. Every text is wrapped to its column at spaces (or inside a
 *     word that is wider than the column) and cut with "…" when it needs more
 *     lines than its slot, so nothing overflows the page.
 *   - Text is UTF-8 in any script DejaVu Sans covers (Latin, Greek, Cyrillic,
 *     Armenian, Georgian, …), drawn left to right without shaping (so Arabic
 *     and Hebrew are not laid out correctly, and CJK has no glyphs: empty
 *     boxes). Invalid UTF-8 becomes U+FFFD, control characters become spaces,
 *     each field is cut at MQ_TICKET_PDF_FIELD_MAX bytes before layout.
 *   - Every field but `code` may be NULL or "" (its line is then omitted; an
 *     empty title prints as "Ticket"). `code` is required: INVALID_ARGUMENT
 *     "code" when NULL, empty or longer than MQ_QR_TEXT_MAX.
 *   - The font is the TrueType file at `font_path` (NULL =
 *     MQ_TICKET_FONT_DEFAULT, Debian package fonts-dejavu-core), loaded per
 *     call with libharu's UTF-8 encoder and embedded (only the outlines of
 *     the glyphs used; with Flate compression a ticket is about 90-100 KiB).
 *     If it cannot be loaded: INTERNAL naming the path. Any other libharu
 *     failure is INTERNAL with libharu's error number; the document is freed
 *     on every path.
 *
 * Output buffers are malloc'd; the caller frees them. On error *out is NULL
 * and *len 0. Thread-safety: no shared state — each call has its own libharu
 * document and libqrencode/libpng objects, so calls may run concurrently.
 * Cost (measured, one x86-64 core): about 13 ms per PDF, mostly the TTF,
 * under 1 ms per PNG: render off the gRPC completion-queue threads.
 *
 * Read next: tests/unit/lib/test_ticket_render.c.
 */
#ifndef MQ_TICKET_RENDER_H
#define MQ_TICKET_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

#define MQ_QR_TEXT_MAX 1000
#define MQ_QR_SCALE_MAX 32
#define MQ_QR_SCALE_DEFAULT 8
#define MQ_QR_QUIET_ZONE 4 /* modules of white on each side */

#define MQ_TICKET_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define MQ_TICKET_PDF_FIELD_MAX 2048 /* bytes of each text field that are laid out */

/* PNG of the QR code of `text` into *png / *len (malloc'd). */
mq_code_t mq_render_qr_png(const char *text, unsigned scale, uint8_t **png, size_t *len, mq_error_t *err);

typedef struct {
  const char *event_title;      /* "Rust Meetup: Async in Practice" */
  const char *starts_at_text;   /* already formatted for the event's time zone and locale */
  const char *venue_text;       /* "Kulturhaus, Hauptstr. 1, Berlin" */
  const char *attendee_name;    /* "Zoë Ångström" */
  const char *ticket_type_name; /* "Early bird" */
  const char *ticket_id;        /* UUID text */
  const char *booking_id;       /* UUID text */
  const char *code;             /* required: the signed ticket code, the QR's content */
  const char *organizer_name;   /* "Rust Berlin e.V." */
} mq_ticket_pdf_t;

/* The printable ticket into *pdf / *len (malloc'd). font_path NULL = default. */
/* A one-page A4 receipt or credit note: a title and number, the date, the
 * seller and buyer blocks (lines separated by '\n'), what it is about, a
 * table of lines (description, then the amount at the right edge), the
 * totals (the last one larger), and a footer. Every text is formatted by
 * the caller (amounts included) and laid out as the ticket's are (wrapped,
 * cut with "…", the same font rules); more than MQ_RECEIPT_ROWS_MAX lines
 * are cut with a last "…" row. INVALID_ARGUMENT "number" without one. */
#define MQ_RECEIPT_ROWS_MAX 24
typedef struct {
  const char *label, *value;
} mq_doc_row_t;
typedef struct {
  const char *title;  /* "Receipt" */
  const char *number; /* "R-2026-000042" */
  const char *date_text;
  const char *from_text, *to_text, *about_text;
  const mq_doc_row_t *lines;
  size_t n_lines;
  const mq_doc_row_t *totals;
  size_t n_totals;
  const char *footer;
} mq_receipt_pdf_t;
mq_code_t mq_render_receipt_pdf(const mq_receipt_pdf_t *r, const char *font_path, uint8_t **pdf, size_t *len,
                                mq_error_t *err);

mq_code_t mq_render_ticket_pdf(const mq_ticket_pdf_t *t, const char *font_path, uint8_t **pdf, size_t *len,
                               mq_error_t *err);

#endif
