/*
 * mq_ticket_render.c — QR PNG (libqrencode + libpng) and the PDF ticket
 * (libharu), see mq_ticket_render.h.
 *
 * libpng reports errors by longjmp: the only setjmp is in write_png(), whose
 * locals are all set before it and never changed after, and every buffer it
 * touches lives in the caller's png_job_t, so nothing is lost or leaked when
 * it jumps. libharu is created with an error handler that only records the
 * first error and returns (libharu then returns an error status from the
 * failing call): no longjmp, and the document is always freed by
 * HPDF_Free, which releases everything libharu allocated for it.
 */
#include "lib/mq_ticket_render.h"

#include <hpdf.h>
#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QR PNG ----------------------------------------------------------------------------------- */

typedef struct {
  const QRcode *qr;
  unsigned scale;
  uint32_t side;   /* pixels */
  uint8_t *row;    /* (side + 7) / 8 bytes */
  uint8_t *buf;    /* the PNG so far */
  size_t len, cap; /* of buf */
  char why[128];   /* libpng's message on failure */
} png_job_t;

static void png_write_cb(png_structp png, png_bytep data, size_t n) {
  png_job_t *j = png_get_io_ptr(png);
  if (n > j->cap - j->len) {
    size_t cap = j->cap ? j->cap : 4096;
    while (n > cap - j->len) cap *= 2;
    uint8_t *nb = realloc(j->buf, cap);
    if (!nb) png_error(png, "out of memory");
    j->buf = nb;
    j->cap = cap;
  }
  memcpy(j->buf + j->len, data, n);
  j->len += n;
}

static void png_flush_cb(png_structp png) {
  (void)png;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
  png_job_t *j = png_get_error_ptr(png);
  snprintf(j->why, sizeof j->why, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Fills j->row with pixel row y (1 = white). */
static void qr_row(const png_job_t *j, uint32_t y) {
  size_t row_bytes = (j->side + 7) / 8;
  memset(j->row, 0xFF, row_bytes);
  uint32_t width = (uint32_t)j->qr->width;
  uint32_t my = y / j->scale;
  if (my < MQ_QR_QUIET_ZONE || my >= MQ_QR_QUIET_ZONE + width) return;
  my -= MQ_QR_QUIET_ZONE;
  for (uint32_t x = 0; x < j->side; x++) {
    uint32_t mx = x / j->scale;
    if (mx < MQ_QR_QUIET_ZONE || mx >= MQ_QR_QUIET_ZONE + width) continue;
    if (j->qr->data[my * width + (mx - MQ_QR_QUIET_ZONE)] & 1) j->row[x / 8] &= (uint8_t) ~(0x80u >> (x % 8));
  }
}

/* The PNG into j->buf. false with j->why set on failure (j->buf may then
 * hold a partial image; the caller frees it). */
static bool write_png(png_job_t *j) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, j, png_error_cb, png_warning_cb);
  if (!png) {
    snprintf(j->why, sizeof j->why, "cannot create the PNG writer");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    snprintf(j->why, sizeof j->why, "cannot create the PNG header");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, j, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, j->side, j->side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < j->side; y++) {
    if (y % j->scale == 0) qr_row(j, y); /* rows repeat `scale` times */
    png_write_row(png, j->row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return true;
}

mq_code_t mq_render_qr_png(const char *text, unsigned scale, uint8_t **png, size_t *len, mq_error_t *err) {
  *png = NULL;
  *len = 0;
  size_t n = text ? strnlen(text, MQ_QR_TEXT_MAX + 1) : 0;
  if (n == 0 || n > MQ_QR_TEXT_MAX)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "text", "must be 1 to %d bytes", MQ_QR_TEXT_MAX);
  if (scale == 0) scale = MQ_QR_SCALE_DEFAULT;
  if (scale > MQ_QR_SCALE_MAX)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "scale", "must be 0 (default) or 1 to %d", MQ_QR_SCALE_MAX);

  QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
  if (!qr) return mq_error_set(err, MQ_INTERNAL, NULL, "QR encoding failed");
  png_job_t j = {.qr = qr, .scale = scale};
  j.side = ((uint32_t)qr->width + 2 * MQ_QR_QUIET_ZONE) * scale;
  j.row = malloc((j.side + 7) / 8);
  bool ok = j.row && write_png(&j);
  if (!j.row) snprintf(j.why, sizeof j.why, "out of memory");
  free(j.row);
  QRcode_free(qr);
  if (!ok) {
    free(j.buf);
    return mq_error_set(err, MQ_INTERNAL, NULL, "QR image encoding failed: %s", j.why);
  }
  *png = j.buf;
  *len = j.len;
  return MQ_OK;
}

/* ---- text ------------------------------------------------------------------------------------ */

/* Valid UTF-8 copy of the NUL-terminated s (NULL = ""), of at most its first
 * MQ_TICKET_PDF_FIELD_MAX bytes (cut before a character that would cross
 * that limit): invalid sequences → U+FFFD, C0/C1 controls and DEL → ' '. Caller frees. */
static char *clean_utf8(const char *s) {
  size_t n = s ? strnlen(s, MQ_TICKET_PDF_FIELD_MAX) : 0;
  while (n == MQ_TICKET_PDF_FIELD_MAX && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* cut between chars */
  char *out = malloc(3 * n + 1); /* one byte in, at most 3 out (U+FFFD) */
  if (!out) return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t need = c < 0x80                   ? 1
                  : (c >= 0xC2 && c <= 0xDF) ? 2
                  : (c >= 0xE0 && c <= 0xEF) ? 3
                  : (c >= 0xF0 && c <= 0xF4) ? 4
                                             : 0;
    bool ok = need > 0 && i + need <= n;
    uint32_t cp = need == 1 ? c : need == 2 ? (c & 0x1F) : need == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < need; k++) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    /* overlong, surrogate or beyond U+10FFFF */
    if (ok && ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
               (need == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      out[o++] = ' ';
      i += need;
    } else {
      memcpy(out + o, p + i, need);
      o += need;
      i += need;
    }
  }
  out[o] = '\0';
  return out;
}

/* ---- PDF ------------------------------------------------------------------------------------- */

#define PAGE_MARGIN 48.0f
#define QR_SIZE 200.0f
#define QR_PDF_SCALE 8
#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */

typedef struct {
  bool failed;
  HPDF_STATUS error_no, detail_no; /* the first error */
} hpdf_status_t;

static void HPDF_STDCALL hpdf_on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data) {
  hpdf_status_t *st = user_data;
  if (!st->failed) {
    st->error_no = error_no;
    st->detail_no = detail_no;
  }
  st->failed = true;
}

typedef struct {
  HPDF_Doc doc;
  HPDF_Page page;
  HPDF_Font font;
  hpdf_status_t *st;
  bool oom;
} pdf_t;

static void show(pdf_t *d, float x, float y, float size, float gray, const char *text) {
  HPDF_Page_SetGrayFill(d->page, gray);
  HPDF_Page_BeginText(d->page);
  HPDF_Page_SetFontAndSize(d->page, d->font, size);
  HPDF_Page_TextOut(d->page, x, y, text);
  HPDF_Page_EndText(d->page);
}

/* Bytes of p[0..n) that fit in `width`, never splitting a UTF-8 sequence.
 * word_wrap: break only after a space (0 if the first word does not fit). */
static size_t fit(const pdf_t *d, const char *p, size_t n, float width, float size, bool word_wrap) {
  HPDF_REAL real = 0;
  size_t k = HPDF_Font_MeasureText(d->font, (const HPDF_BYTE *)p, (HPDF_UINT)n, width, size, 0, 0,
                                   word_wrap ? HPDF_TRUE : HPDF_FALSE, &real);
  if (k > n) k = n;
  while (k > 0 && k < n && ((unsigned char)p[k] & 0xC0) == 0x80) k--;
  return k;
}

static size_t utf8_char_len(const char *p) {
  size_t k = 1;
  while (((unsigned char)p[k] & 0xC0) == 0x80) k++;
  return k;
}

/* Draws `text` at (x, *y) wrapped to `width`, at most max_lines lines of
 * `leading` points each (the last one cut with an ellipsis if more text
 * remains), and moves *y down past what it drew. Empty text draws nothing. */
static void draw_wrapped(pdf_t *d, const char *text, float x, float *y, float width, float size, float leading,
                         int max_lines, float gray) {
  char *s = clean_utf8(text);
  if (!s) {
    d->oom = true;
    return;
  }
  size_t total = strlen(s);
  char *line = malloc(total + sizeof ELLIPSIS);
  if (!line) {
    d->oom = true;
    free(s);
    return;
  }
  const char *p = s;
  for (int l = 0; l < max_lines; l++) {
    while (*p == ' ') p++;
    size_t rest = strlen(p);
    if (rest == 0) break;
    size_t k = fit(d, p, rest, width, size, true);
    if (k == 0) k = fit(d, p, rest, width, size, false); /* a word wider than the column */
    if (k == 0) k = utf8_char_len(p);                    /* not even one char: draw one anyway */
    if (k < rest && l == max_lines - 1) {
      /* the last line: as much as fits before the ellipsis */
      float ew =
          (float)HPDF_Font_TextWidth(d->font, (const HPDF_BYTE *)ELLIPSIS, sizeof ELLIPSIS - 1).width * size / 1000;
      k = fit(d, p, rest, width - ew, size, true);
      if (k == 0) k = fit(d, p, rest, width - ew, size, false);
      memcpy(line, p, k);
      while (k > 0 && line[k - 1] == ' ') k--;
      memcpy(line + k, ELLIPSIS, sizeof ELLIPSIS);
    } else {
      memcpy(line, p, k);
      line[k] = '\0';
    }
    show(d, x, *y, size, gray, line);
    *y -= leading;
    p += k;
  }
  free(line);
  free(s);
}

static bool empty(const char *s) {
  return !s || !s[0];
}

/* Label in small grey capitals above its value; returns nothing, moves *y. */
static void labelled(pdf_t *d, const char *label, const char *value, float x, float *y, float width, float size,
                     int max_lines) {
  if (empty(value)) return;
  show(d, x, *y, 8, 0.45f, label);
  *y -= size + 4;
  draw_wrapped(d, value, x, y, width, size, size * 1.25f, max_lines, 0);
  *y -= 8;
}

static void rule(pdf_t *d, float x0, float x1, float y) {
  HPDF_Page_SetGrayStroke(d->page, 0.75f);
  HPDF_Page_SetLineWidth(d->page, 0.8f);
  HPDF_Page_MoveTo(d->page, x0, y);
  HPDF_Page_LineTo(d->page, x1, y);
  HPDF_Page_Stroke(d->page);
}

static mq_code_t hpdf_failed(const hpdf_status_t *st, mq_error_t *err, const char *what) {
  return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: %s (libharu error 0x%04X, detail %u)", what,
                      (unsigned)st->error_no, (unsigned)st->detail_no);
}

static mq_code_t lay_out(pdf_t *d, const mq_ticket_pdf_t *t, const char *font_path, const uint8_t *qr, size_t qr_len,
                         mq_error_t *err) {
  HPDF_Doc doc = d->doc;
  if (HPDF_SetCompressionMode(doc, HPDF_COMP_ALL) != HPDF_OK || HPDF_UseUTFEncodings(doc) != HPDF_OK)
    return hpdf_failed(d->st, err, "setup");
  HPDF_SetInfoAttr(doc, HPDF_INFO_CREATOR, "Marquee");
  const char *name = HPDF_LoadTTFontFromFile(doc, font_path, HPDF_TRUE);
  if (!name)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot load the ticket font %s (libharu error 0x%04X, detail %u)",
                        font_path, (unsigned)d->st->error_no, (unsigned)d->st->detail_no);
  d->font = HPDF_GetFont(doc, name, "UTF-8");
  if (!d->font) return hpdf_failed(d->st, err, "font");
  d->page = HPDF_AddPage(doc);
  if (!d->page || HPDF_Page_SetSize(d->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT) != HPDF_OK)
    return hpdf_failed(d->st, err, "page");
  HPDF_Image img = HPDF_LoadPngImageFromMem(doc, qr, (HPDF_UINT)qr_len);
  if (!img) return hpdf_failed(d->st, err, "QR image");

  float page_w = HPDF_Page_GetWidth(d->page), page_h = HPDF_Page_GetHeight(d->page);
  float x = PAGE_MARGIN, w = page_w - 2 * PAGE_MARGIN, y = page_h - PAGE_MARGIN - 10;

  /* header: organiser, title, when, where */
  draw_wrapped(d, t->organizer_name, x, &y, w, 10, 14, 1, 0.4f);
  y -= 14;
  draw_wrapped(d, empty(t->event_title) ? "Ticket" : t->event_title, x, &y, w, 22, 27, 3, 0);
  y -= 4;
  draw_wrapped(d, t->starts_at_text, x, &y, w, 13, 17, 2, 0.15f);
  draw_wrapped(d, t->venue_text, x, &y, w, 11, 14, 3, 0.3f);
  y += 4;
  rule(d, x, x + w, y);
  y -= 26;

  /* body: the holder's details on the left, the QR on the right */
  float top = y, col_w = w - QR_SIZE - 24;
  labelled(d, "ATTENDEE", t->attendee_name, x, &y, col_w, 15, 2);
  labelled(d, "TICKET TYPE", t->ticket_type_name, x, &y, col_w, 13, 2);
  labelled(d, "TICKET ID", t->ticket_id, x, &y, col_w, 9, 2);
  labelled(d, "BOOKING ID", t->booking_id, x, &y, col_w, 9, 2);
  float qr_y = top + 10 - QR_SIZE;
  if (HPDF_Page_DrawImage(d->page, img, x + w - QR_SIZE, qr_y, QR_SIZE, QR_SIZE) != HPDF_OK)
    return hpdf_failed(d->st, err, "QR image");
  y = (y < qr_y ? y : qr_y) - 16;

  /* the code in small print, then the footer */
  draw_wrapped(d, t->code, x, &y, w, 6.5f, 8.5f, 3, 0.45f);
  y -= 6;
  rule(d, x, x + w, y);
  y -= 18;
  draw_wrapped(d,
               "Show this QR code at the entrance, printed or on your phone. It admits one person once: keep it "
               "private, anyone holding a copy can use it.",
               x, &y, w, 9, 12, 3, 0.3f);

  if (d->oom) return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: out of memory");
  if (d->st->failed) return hpdf_failed(d->st, err, "layout");
  return MQ_OK;
}

static mq_code_t save(pdf_t *d, uint8_t **out, size_t *len, mq_error_t *err) {
  if (HPDF_SaveToStream(d->doc) != HPDF_OK || d->st->failed) return hpdf_failed(d->st, err, "save");
  HPDF_UINT32 size = HPDF_GetStreamSize(d->doc);
  if (size == 0 || HPDF_ResetStream(d->doc) != HPDF_OK) return hpdf_failed(d->st, err, "save");
  uint8_t *buf = malloc(size);
  if (!buf) return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: out of memory");
  HPDF_UINT32 got = size;
  if (HPDF_ReadFromStream(d->doc, buf, &got) != HPDF_OK || got != size) {
    free(buf);
    return hpdf_failed(d->st, err, "read back");
  }
  *out = buf;
  *len = size;
  return MQ_OK;
}

mq_code_t mq_render_ticket_pdf(const mq_ticket_pdf_t *t, const char *font_path, uint8_t **pdf, size_t *len,
                               mq_error_t *err) {
  *pdf = NULL;
  *len = 0;
  if (!t || empty(t->code)) return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "a ticket code is required");
  if (strnlen(t->code, MQ_QR_TEXT_MAX + 1) > MQ_QR_TEXT_MAX)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "must be at most %d bytes", MQ_QR_TEXT_MAX);
  uint8_t *qr = NULL;
  size_t qr_len = 0;
  mq_code_t rc = mq_render_qr_png(t->code, QR_PDF_SCALE, &qr, &qr_len, err);
  if (rc != MQ_OK) return rc;

  hpdf_status_t st = {0};
  pdf_t d = {.st = &st};
  d.doc = HPDF_New(hpdf_on_error, &st);
  if (!d.doc) {
    free(qr);
    return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: cannot create a document");
  }
  rc = lay_out(&d, t, font_path ? font_path : MQ_TICKET_FONT_DEFAULT, qr, qr_len, err);
  if (rc == MQ_OK) rc = save(&d, pdf, len, err);
  HPDF_Free(d.doc);
  free(qr);
  return rc;
}

/* ---- receipts ---- */

/* Each '\n'-separated line of `block` at x, moving *y down. */
static void draw_block(pdf_t *d, const char *block, float x, float *y, float width, float size) {
  if (empty(block)) return;
  char line[512];
  for (const char *p = block; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n >= sizeof line) n = sizeof line - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    draw_wrapped(d, line, x, y, width, size, size * 1.3f, 2, 0);
    p = nl ? nl + 1 : p + strlen(p);
  }
}

static void show_right(pdf_t *d, float right, float y, float size, const char *text) {
  char *s = clean_utf8(text);
  if (!s) {
    d->oom = true;
    return;
  }
  float w = (float)HPDF_Font_TextWidth(d->font, (const HPDF_BYTE *)s, (HPDF_UINT)strlen(s)).width * size / 1000;
  show(d, right - w, y, size, 0, s);
  free(s);
}

static mq_code_t lay_out_receipt(pdf_t *d, const mq_receipt_pdf_t *r, const char *font_path, mq_error_t *err) {
  HPDF_Doc doc = d->doc;
  if (HPDF_SetCompressionMode(doc, HPDF_COMP_ALL) != HPDF_OK || HPDF_UseUTFEncodings(doc) != HPDF_OK)
    return hpdf_failed(d->st, err, "setup");
  HPDF_SetInfoAttr(doc, HPDF_INFO_CREATOR, "Marquee");
  const char *name = HPDF_LoadTTFontFromFile(doc, font_path, HPDF_TRUE);
  if (!name)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot load the font %s (libharu error 0x%04X, detail %u)", font_path,
                        (unsigned)d->st->error_no, (unsigned)d->st->detail_no);
  d->font = HPDF_GetFont(doc, name, "UTF-8");
  if (!d->font) return hpdf_failed(d->st, err, "font");
  d->page = HPDF_AddPage(doc);
  if (!d->page || HPDF_Page_SetSize(d->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT) != HPDF_OK)
    return hpdf_failed(d->st, err, "page");
  float page_w = HPDF_Page_GetWidth(d->page), page_h = HPDF_Page_GetHeight(d->page);
  float x = PAGE_MARGIN, w = page_w - 2 * PAGE_MARGIN, y = page_h - PAGE_MARGIN - 10;
  draw_wrapped(d, empty(r->title) ? "Receipt" : r->title, x, &y, w, 22, 27, 1, 0);
  draw_wrapped(d, r->number, x, &y, w, 12, 16, 1, 0.15f);
  draw_wrapped(d, r->date_text, x, &y, w, 10, 14, 1, 0.3f);
  y -= 10;
  float top = y, half = w / 2 - 12;
  if (!empty(r->from_text)) {
    show(d, x, y, 8, 0.45f, "FROM");
    y -= 14;
    draw_block(d, r->from_text, x, &y, half, 10);
  }
  float left_y = y;
  y = top;
  if (!empty(r->to_text)) {
    show(d, x + w / 2, y, 8, 0.45f, "TO");
    y -= 14;
    draw_block(d, r->to_text, x + w / 2, &y, half, 10);
  }
  y = (y < left_y ? y : left_y) - 8;
  if (!empty(r->about_text)) {
    show(d, x, y, 8, 0.45f, "FOR");
    y -= 14;
    draw_block(d, r->about_text, x, &y, w, 11);
  }
  y -= 4;
  rule(d, x, x + w, y);
  y -= 18;
  size_t n = r->n_lines > MQ_RECEIPT_ROWS_MAX ? MQ_RECEIPT_ROWS_MAX : r->n_lines;
  for (size_t i = 0; i < n; i++) {
    float ly = y;
    draw_wrapped(d, r->lines[i].label, x, &ly, w - 140, 10, 13, 2, 0);
    show_right(d, x + w, y, 10, r->lines[i].value ? r->lines[i].value : "");
    y = ly - 2;
  }
  if (r->n_lines > n) {
    show(d, x, y, 10, 0.3f, ELLIPSIS);
    y -= 15;
  }
  y -= 2;
  rule(d, x + w / 2, x + w, y);
  y -= 18;
  for (size_t i = 0; i < r->n_totals; i++) {
    bool last = i + 1 == r->n_totals;
    float size = last ? 13 : 10;
    show(d, x + w / 2, y, size, last ? 0 : 0.25f, r->totals[i].label ? r->totals[i].label : "");
    show_right(d, x + w, y, size, r->totals[i].value ? r->totals[i].value : "");
    y -= size + 6;
  }
  y -= 14;
  rule(d, x, x + w, y);
  y -= 18;
  draw_wrapped(d, r->footer, x, &y, w, 8.5f, 11, 4, 0.35f);
  if (d->oom) return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: out of memory");
  if (d->st->failed) return hpdf_failed(d->st, err, "layout");
  return MQ_OK;
}

mq_code_t mq_render_receipt_pdf(const mq_receipt_pdf_t *r, const char *font_path, uint8_t **pdf, size_t *len,
                                mq_error_t *err) {
  *pdf = NULL;
  *len = 0;
  if (!r || empty(r->number)) return mq_error_set(err, MQ_INVALID_ARGUMENT, "number", "a document number is required");
  hpdf_status_t st = {0};
  pdf_t d = {.st = &st};
  d.doc = HPDF_New(hpdf_on_error, &st);
  if (!d.doc) return mq_error_set(err, MQ_INTERNAL, NULL, "PDF rendering failed: cannot create a document");
  mq_code_t rc = lay_out_receipt(&d, r, font_path ? font_path : MQ_TICKET_FONT_DEFAULT, err);
  if (rc == MQ_OK) rc = save(&d, pdf, len, err);
  HPDF_Free(d.doc);
  return rc;
}
