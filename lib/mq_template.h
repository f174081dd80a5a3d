/*
 * mq_template.h — message templates: a file per message and locale, with a
 * subject line and a text and an HTML section; {{name}} placeholders.
 *
 *   subject: Confirm your e-mail address, {{name}}
 *   --- text
 *   Hello {{name}}, ...
 *   --- html
 *   <p>Hello {{name}}, ...</p>
 *
 * Invariants:
 *   1. In the HTML section every value is HTML-escaped (& < > " '), so a
 *      value can never become markup: an event title "<script>" arrives
 *      inert. The subject and text sections take values as they are (they
 *      are not markup; the mail builder refuses line breaks in a subject).
 *   2. A placeholder without a value, an unclosed "{{", or a file without
 *      its three sections is an error naming it, never a message sent with
 *      a hole: a test renders every template with its documented variables.
 */
#ifndef MQ_TEMPLATE_H
#define MQ_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

typedef struct mq_tvar {
  const char *name, *value;
} mq_tvar_t;

typedef struct mq_template {
  const char *subject, *text, *html; /* the sections, in the arena */
} mq_template_t;

/* Splits a template file into its sections (INVALID_ARGUMENT, field
 * "template", when one is missing or out of order). */
mq_code_t mq_template_parse(const char *file, mq_arena_t *a, mq_template_t *out, mq_error_t *err);

/* Replaces every {{name}} of `section` with its value from vars[n]
 * (HTML-escaped when `html`); the result in `a`. INVALID_ARGUMENT, field
 * "template", naming the placeholder that has no value. */
mq_code_t mq_template_render(const char *section, const mq_tvar_t *vars, size_t n, bool html, mq_arena_t *a, char **out,
                             mq_error_t *err);

#endif
