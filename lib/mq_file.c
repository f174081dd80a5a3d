/*
 * mq_file.c — see mq_file.h.
 */
#include "lib/mq_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"

mq_code_t mq_file_read(const char *path, size_t max, const char *what, char **out, size_t *len, mq_error_t *err) {
  *out = NULL;
  if (len) *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return mq_error_set(err, MQ_INVALID_ARGUMENT, what, "cannot read %s: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = mq_xmalloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n > max) {
      fclose(f);
      free(buf);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, what, "%s is larger than %zu bytes", path, max);
    }
    if (n + 1 == cap) buf = mq_xrealloc(buf, cap *= 2);
  }
  bool failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, what, "cannot read %s", path);
  }
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return MQ_OK;
}

void mq_rows_init(mq_rows_t *r, const char *text) {
  memset(r, 0, sizeof *r);
  r->p = text ? text : "";
}

int mq_rows_next(mq_rows_t *r) {
  while (*r->p) {
    const char *nl = strchr(r->p, '\n');
    size_t len = nl ? (size_t)(nl - r->p) : strlen(r->p);
    r->line++;
    if (len >= sizeof r->buf) return -1;
    memcpy(r->buf, r->p, len);
    r->buf[len] = '\0';
    r->p = nl ? nl + 1 : r->p + len;
    char *hash = strchr(r->buf, '#');
    if (hash) *hash = '\0';
    r->nf = 0;
    for (char *save = NULL, *tok = strtok_r(r->buf, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
      if (r->nf < MQ_ROW_FIELDS) r->f[r->nf] = tok;
      r->nf++;
    }
    if (r->nf) return 1;
  }
  return 0;
}
