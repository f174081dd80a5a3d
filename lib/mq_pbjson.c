/*
 * mq_pbjson.c — see mq_pbjson.h.
 */
#include "lib/mq_pbjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_xmalloc.h"

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t k;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    k = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF)
    k = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4)
    k = 4, min = 0x10000;
  else
    return 0;
  if (n < k) return 0;
  unsigned cp = c & (0x7F >> k);
  for (size_t i = 1; i < k; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return k;
}

void mq_pbjson_string(FILE *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', out);
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c == '"' || c == '\\') {
      fputc('\\', out);
      fputc((int)c, out);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      static const char *const named[] = {
          ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};
      if (c < sizeof named / sizeof *named && named[c])
        fputs(named[c], out);
      else
        fprintf(out, "\\u%04x", c);
      i++;
    } else {
      size_t k = utf8_len(p + i, n - i);
      if (k == 0) {
        fputs("\xEF\xBF\xBD", out); /* U+FFFD for a byte that is not UTF-8 */
        i++;
      } else {
        fwrite(p + i, 1, k, out);
        i += k;
      }
    }
  }
  fputc('"', out);
}

static void put_name(FILE *out, const char *snake) {
  fputc('"', out);
  bool up = false;
  for (const char *c = snake; *c; c++) {
    if (*c == '_') {
      up = true;
      continue;
    }
    fputc(up && *c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c, out);
    up = false;
  }
  fputs("\":", out);
}

static void put_base64(FILE *out, const uint8_t *p, size_t n) {
  static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  fputc('"', out);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    fputc(T[v >> 18 & 63], out);
    fputc(T[v >> 12 & 63], out);
    fputc(i + 1 < n ? T[v >> 6 & 63] : '=', out);
    fputc(i + 2 < n ? T[v & 63] : '=', out);
  }
  fputc('"', out);
}

static void put_double(FILE *out, double d) {
  if (isnan(d))
    fputs("\"NaN\"", out);
  else if (isinf(d))
    fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
  else
    fprintf(out, "%.17g", d);
}

/* The fraction of a second as protobuf writes it: none, 3, 6 or 9 digits. */
static void put_nanos(FILE *out, int32_t nanos) {
  if (nanos <= 0 || nanos >= 1000000000) return;
  if (nanos % 1000000 == 0)
    fprintf(out, ".%03d", nanos / 1000000);
  else if (nanos % 1000 == 0)
    fprintf(out, ".%06d", nanos / 1000);
  else
    fprintf(out, ".%09d", nanos);
}

static void put_message(FILE *out, const ProtobufCMessage *m);

static bool well_known(FILE *out, const ProtobufCMessage *m) {
  const char *name = m->descriptor->name;
  if (!strcmp(name, "google.protobuf.Timestamp")) {
    const int64_t *secs = (const int64_t *)((const char *)m + m->descriptor->fields[0].offset);
    const int32_t *nanos = (const int32_t *)((const char *)m + m->descriptor->fields[1].offset);
    time_t t = (time_t)*secs;
    struct tm tm;
    char buf[40];
    if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm)) {
      fputs("null", out);
      return true;
    }
    fprintf(out, "\"%s", buf);
    put_nanos(out, *nanos);
    fputs("Z\"", out);
    return true;
  }
  if (!strcmp(name, "google.protobuf.Duration")) {
    const int64_t *secs = (const int64_t *)((const char *)m + m->descriptor->fields[0].offset);
    const int32_t *nanos = (const int32_t *)((const char *)m + m->descriptor->fields[1].offset);
    bool neg = *secs < 0 || *nanos < 0;
    fprintf(out, "\"%s%" PRId64, neg && *secs == 0 ? "-" : "", *secs);
    put_nanos(out, *nanos < 0 ? -*nanos : *nanos);
    fputs("s\"", out);
    return true;
  }
  return false;
}

/* One value of field f at p (an element of a repeated field, or the field). */
static void put_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      fprintf(out, "%" PRId32, *(const int32_t *)p);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      fprintf(out, "%" PRIu32, *(const uint32_t *)p);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      fprintf(out, "\"%" PRId64 "\"", *(const int64_t *)p);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      fprintf(out, "\"%" PRIu64 "\"", *(const uint64_t *)p);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      put_double(out, (double)*(const float *)p);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      put_double(out, *(const double *)p);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
      break;
    case PROTOBUF_C_TYPE_ENUM: {
      int v = *(const int *)p;
      const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
      if (ev)
        fprintf(out, "\"%s\"", ev->name);
      else
        fprintf(out, "%d", v);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      mq_pbjson_string(out, s ? s : "", s ? strlen(s) : 0);
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = p;
      put_base64(out, b->data, b->len);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
      if (!sub)
        fputs("null", out);
      else if (!well_known(out, sub))
        put_message(out, sub);
      break;
    }
  }
}

/* Is the (singular) value at p its type's default? */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
      return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
      return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
      return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(ProtobufCMessage *const *)p == NULL;
    default: /* 32-bit integers and enums */
      return *(const uint32_t *)p == 0;
  }
}

static size_t value_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(void *);
    default:
      return 4;
  }
}

static bool secret_type(const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE &&
         !strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, "marquee.events.v1.SealedSecret");
}

static void put_message(FILE *out, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  bool first = true;
  fputc('{', out);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (secret_type(f)) continue;
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      if (n == 0) continue;
      if (!first) fputc(',', out);
      first = false;
      put_name(out, f->name);
      fputc('[', out);
      const char *arr = *(char *const *)p;
      for (size_t k = 0; k < n; k++) {
        if (k) fputc(',', out);
        put_value(out, f, arr + k * value_size(f));
      }
      fputc(']', out);
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
      if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue; /* explicit presence */
    } else if (is_default(f, p)) {
      continue;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *)p) continue;
    if (!first) fputc(',', out);
    first = false;
    put_name(out, f->name);
    put_value(out, f, p);
  }
  fputc('}', out);
}

char *mq_pbjson(const ProtobufCMessage *m, size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *out = mq_xmemstream(&buf, &n);
  if (!well_known(out, m)) put_message(out, m);
  fclose(out);
  if (len) *len = n;
  return buf;
}
