/*
 * test_required_fields.c — the protos say which request fields are
 * required, and the server agrees.
 *
 * Convention (docs/ARCHITECTURE.md, API conventions): a field a call cannot
 * do without carries a trailing comment that starts with "required". This
 * test reads the descriptor set the server embeds (with its comments), calls
 * every unary method of every marquee.* service with an empty request (zero
 * bytes: every field at its default) as an administrator of no
 * organization, and checks both directions it can observe:
 *   1. every field the server names in a BadRequest violation (top level or
 *      nested, "event.title", "items[0].quantity") is marked required where
 *      it is declared;
 *   2. a method that accepts the empty request has no required field.
 * A handler validating in stages (authorization on organization_id first)
 * reports only its first stage; the fields past it are not observed here.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mq_ids.h"
#include "core/mq_principal.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "harness.h"

extern const unsigned char mq_descriptor_set[];
extern const size_t mq_descriptor_set_len;

typedef Google__Protobuf__FileDescriptorProto file_t;
typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__FieldDescriptorProto field_t;

static Google__Protobuf__FileDescriptorSet *set;

typedef struct {
  const file_t *file;
  const msg_t *msg;
  size_t index; /* top-level message index in its file */
} msg_ref_t;

/* A top-level message by its full name ".pkg.Name". */
static bool find_message(const char *full, msg_ref_t *out) {
  for (size_t f = 0; f < set->n_file; f++) {
    const file_t *fd = set->file[f];
    size_t pl = strlen(fd->package);
    if (full[0] != '.' || strncmp(full + 1, fd->package, pl) || full[1 + pl] != '.') continue;
    for (size_t m = 0; m < fd->n_message_type; m++)
      if (!strcmp(full + 2 + pl, fd->message_type[m]->name)) {
        *out = (msg_ref_t){fd, fd->message_type[m], m};
        return true;
      }
  }
  return false;
}

/* The trailing comment of field `fi` of top-level message `m` ("" if none). */
static const char *field_comment(const msg_ref_t *m, size_t fi) {
  const Google__Protobuf__SourceCodeInfo *si = m->file->source_code_info;
  for (size_t i = 0; si && i < si->n_location; i++) {
    const Google__Protobuf__SourceCodeInfo__Location *l = si->location[i];
    if (l->n_path == 4 && l->path[0] == 4 && (size_t)l->path[1] == m->index && l->path[2] == 2 &&
        (size_t)l->path[3] == fi)
      return l->trailing_comments ? l->trailing_comments : "";
  }
  return "";
}

static bool comment_says_required(const char *c) {
  while (*c == ' ') c++;
  return !strncmp(c, "required", 8);
}

/* Follows a violation path ("event.ticket_types[0].name") from message `m`
 * to the field it names; its declaration's comment decides. *found false if
 * the path does not name a field (e.g. "update_mask" paths are fields too,
 * so this is rare: a handler naming something else). */
static bool path_required(msg_ref_t m, const char *path, bool *found, char *where, size_t where_len) {
  char seg[96];
  *found = false;
  while (*path) {
    size_t n = strcspn(path, ".[");
    if (n == 0 || n >= sizeof seg) return false;
    memcpy(seg, path, n);
    seg[n] = '\0';
    path += n;
    if (*path == '[') path += strcspn(path, "]") + (path[strcspn(path, "]")] ? 1 : 0);
    if (*path == '.') path++;
    const field_t *fd = NULL;
    size_t fi = 0;
    for (; fi < m.msg->n_field; fi++)
      if (!strcmp(m.msg->field[fi]->name, seg)) {
        fd = m.msg->field[fi];
        break;
      }
    if (!fd) return false;
    if (!*path) {
      *found = true;
      snprintf(where, where_len, "%s.%s", m.msg->name, seg);
      return comment_says_required(field_comment(&m, fi));
    }
    if (!fd->type_name || !find_message(fd->type_name, &m)) return false;
  }
  return false;
}

static void test_required_fields_match_the_server(void **state) {
  (void)state;
  set = google__protobuf__file_descriptor_set__unpack(NULL, mq_descriptor_set_len, mq_descriptor_set);
  assert_non_null(set);
  mq_test_proc_t srv;
  assert_int_equal(mq_test_server_start(&srv, NULL, NULL), 0);
  mq_client_t *cl = mq_test_client(&srv);
  char sub[37];
  mq_uuid_v4(sub);
  char *tok = mq_test_token(sub, MQ_ROLE_ADMIN | MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  int methods = 0, violations = 0, problems = 0;
  for (size_t f = 0; f < set->n_file; f++) {
    const file_t *fd = set->file[f];
    if (strncmp(fd->package, "marquee.", 8)) continue;
    for (size_t s = 0; s < fd->n_service; s++) {
      const Google__Protobuf__ServiceDescriptorProto *sv = fd->service[s];
      for (size_t k = 0; k < sv->n_method; k++) {
        const Google__Protobuf__MethodDescriptorProto *md = sv->method[k];
        if (md->client_streaming || md->server_streaming) continue;
        msg_ref_t req;
        assert_true(find_message(md->input_type, &req));
        char path[256];
        snprintf(path, sizeof path, "/%s.%s/%s", fd->package, sv->name, md->name);
        mq_call_opts_t o = {.bearer_token = tok, .deadline_ms = 10000};
        mq_error_t err;
        mq_error_clear(&err);
        void *resp = NULL;
        size_t resp_len = 0;
        mq_code_t rc = mq_client_unary_raw(cl, path, "", 0, &resp, &resp_len, &o, &err);
        free(resp);
        methods++;
        if (rc == MQ_OK) {
          for (size_t fi = 0; fi < req.msg->n_field; fi++)
            if (comment_says_required(field_comment(&req, fi))) {
              fprintf(stderr, "%s: accepts an empty request, yet %s.%s is marked required\n", path, req.msg->name,
                      req.msg->field[fi]->name);
              problems++;
            }
          continue;
        }
        for (unsigned v = 0; v < err.n_violations && v < MQ_ERROR_VIOLATIONS_MAX; v++) {
          bool found;
          char where[200] = "";
          violations++;
          bool marked = path_required(req, err.violations[v].field, &found, where, sizeof where);
          if (!found) {
            fprintf(stderr, "%s: the violation names \"%s\", which is not a field of %s\n", path,
                    err.violations[v].field, req.msg->name);
            problems++;
          } else if (!marked) {
            fprintf(stderr, "%s: an empty request is refused on \"%s\" (%s), but %s is not marked required\n", path,
                    err.violations[v].field, err.violations[v].description, where);
            problems++;
          }
        }
      }
    }
  }
  fprintf(stderr, "%d unary methods called with an empty request, %d violations checked, %d problems\n", methods,
          violations, problems);
  assert_true(methods >= 60);    /* the services are really there */
  assert_true(violations >= 40); /* and refuse empty requests field by field */
  assert_int_equal(problems, 0);
  free(tok);
  mq_client_destroy(cl);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, srv.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_required_fields_match_the_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
