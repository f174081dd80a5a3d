/*
 * mq_file.h — configuration files: reading one whole into memory
 * (NUL-terminated; at most `max` bytes, a larger file is refused, not cut),
 * and walking a text table row by row (the tax table, the exchange rates):
 * '#' starts a comment, fields are separated by spaces or tabs, blank rows
 * are skipped, and every row keeps its line number for error messages.
 */
#ifndef MQ_FILE_H
#define MQ_FILE_H

#include <stddef.h>

#include "core/mq_error.h"

/* *out (malloc'ed, caller frees) and *len; INVALID_ARGUMENT naming `what`
 * when the file cannot be read or is larger than max. */
mq_code_t mq_file_read(const char *path, size_t max, const char *what, char **out, size_t *len, mq_error_t *err);

#define MQ_ROW_MAX 256  /* bytes of one row */
#define MQ_ROW_FIELDS 8 /* fields kept (nf counts them all) */

typedef struct mq_rows {
  const char *p;
  int line; /* of the row just read */
  char buf[MQ_ROW_MAX];
  char *f[MQ_ROW_FIELDS];
  int nf;
} mq_rows_t;

void mq_rows_init(mq_rows_t *r, const char *text);
/* The next row with fields into r->f / r->nf: 1; at the end: 0; a row
 * longer than MQ_ROW_MAX bytes: -1 (r->line names it). */
int mq_rows_next(mq_rows_t *r);

#endif
