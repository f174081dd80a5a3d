/*
 * mq_template.c — see mq_template.h. Two passes per render: measure, then
 * write; values are looked up by exact name.
 */
#include "lib/mq_template.h"

#include <string.h>

mq_code_t mq_template_parse(const char *file, mq_arena_t *a, mq_template_t *out, mq_error_t *err) {
  static const char subj[] = "subject: ", text[] = "\n--- text\n", html[] = "\n--- html\n";
  const char *t = file ? strstr(file, text) : NULL, *h = t ? strstr(t + 1, html) : NULL;
  if (!file || strncmp(file, subj, sizeof subj - 1) || !t || !h || memchr(file, '\n', (size_t)(t - file)))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "template",
                        "must be \"subject: …\", then \"--- text\" and \"--- html\" sections");
  size_t sl = (size_t)(t - file) - (sizeof subj - 1);
  char *s = mq_arena_alloc(a, sl + 1);
  memcpy(s, file + sizeof subj - 1, sl);
  s[sl] = '\0';
  const char *tb = t + sizeof text - 1;
  size_t tl = (size_t)(h - tb) + 1; /* keep the text's last line break */
  char *tx = mq_arena_alloc(a, tl + 1);
  memcpy(tx, tb, tl);
  tx[tl] = '\0';
  out->subject = s;
  out->text = tx;
  out->html = mq_arena_strdup(a, h + sizeof html - 1);
  return MQ_OK;
}

static const char *lookup(const mq_tvar_t *vars, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(vars[i].name) == len && !memcmp(vars[i].name, name, len)) return vars[i].value ? vars[i].value : "";
  return NULL;
}

/* Writes v (escaped when html) at out (if not NULL); returns its length. */
static size_t put_value(char *out, const char *v, bool html) {
  size_t n = 0;
  for (; *v; v++) {
    const char *rep = NULL;
    if (html) switch (*v) {
        case '&':
          rep = "&amp;";
          break;
        case '<':
          rep = "&lt;";
          break;
        case '>':
          rep = "&gt;";
          break;
        case '"':
          rep = "&quot;";
          break;
        case '\'':
          rep = "&#39;";
          break;
        default:
          break;
      }
    size_t k = rep ? strlen(rep) : 1;
    if (out) memcpy(out + n, rep ? rep : v, k);
    n += k;
  }
  return n;
}

/* One pass: the rendered length, written to out when not NULL. */
static mq_code_t pass(const char *s, const mq_tvar_t *vars, size_t nv, bool html, char *out, size_t *len,
                      mq_error_t *err) {
  size_t n = 0;
  while (*s) {
    const char *open = strstr(s, "{{");
    size_t lit = open ? (size_t)(open - s) : strlen(s);
    if (out) memcpy(out + n, s, lit);
    n += lit;
    if (!open) break;
    const char *close = strstr(open + 2, "}}");
    if (!close) return mq_error_set(err, MQ_INVALID_ARGUMENT, "template", "a \"{{\" is not closed");
    const char *name = open + 2;
    size_t nl = (size_t)(close - name);
    const char *v = lookup(vars, nv, name, nl);
    if (!v)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "template", "{{%.*s}} has no value", (int)(nl > 60 ? 60 : nl),
                          name);
    n += put_value(out ? out + n : NULL, v, html);
    s = close + 2;
  }
  *len = n;
  return MQ_OK;
}

mq_code_t mq_template_render(const char *section, const mq_tvar_t *vars, size_t n, bool html, mq_arena_t *a, char **out,
                             mq_error_t *err) {
  size_t len = 0;
  mq_code_t rc = pass(section, vars, n, html, NULL, &len, err);
  if (rc != MQ_OK) return rc;
  char *buf = mq_arena_alloc(a, len + 1);
  pass(section, vars, n, html, buf, &len, err);
  buf[len] = '\0';
  *out = buf;
  return MQ_OK;
}
