/*
 * mq_file.h — reading a whole (configuration) file into memory: the tax
 * table, the exchange rates. NUL-terminated; at most `max` bytes (a larger
 * file is refused, not cut).
 */
#ifndef MQ_FILE_H
#define MQ_FILE_H

#include <stddef.h>

#include "core/mq_error.h"

/* *out (malloc'ed, caller frees) and *len; INVALID_ARGUMENT naming `what`
 * when the file cannot be read or is larger than max. */
mq_code_t mq_file_read(const char *path, size_t max, const char *what, char **out, size_t *len, mq_error_t *err);

#endif
