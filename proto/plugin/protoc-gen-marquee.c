/*
 * protoc-gen-marquee: Marquee's protoc plugin (DESIGN.md §3).
 *
 * protoc-c generates messages and a ProtobufCServiceDescriptor, but its method
 * descriptors carry no streaming flags. This plugin reads the real
 * MethodDescriptorProto from protoc and emits, for every .proto file that
 * declares services, next to protoc-c's <base>.pb-c.{h,c}:
 *
 *   <base>.mq.{h,c}         method/service descriptors with each method's kind
 *                           (unary, server-, client-, bidi-streaming); shared by
 *                           server and client (links against mq_core only)
 *   <base>.mq-server.{h,c}  a typed handler table per service (one row per
 *                           method: function(s) + access policy + flags), typed
 *                           stream send helpers, thunks and a register function
 *   <base>.mq-client.{h,c}  typed client stubs over clients/mq_client.h
 *
 * Naming follows protoc-c: package "marquee.system.v1", service
 * "SystemService" -> prefix "marquee__system__v1__system_service"; message
 * C types "Marquee__System__V1__PingRequest". Request/response types must be
 * top-level messages (nested ones are refused with a clear error).
 *
 * Input: CodeGeneratorRequest on stdin. Output: CodeGeneratorResponse on
 * stdout. Memory: everything is freed before exit; on error the response's
 * `error` field says why and protoc prints it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

/* ---- growable string buffer ------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *np = realloc(b->p, ncap);
    if (!np) abort();
    b->p = np;
    b->cap = ncap;
  }
}

/* ---- protoc-c naming --------------------------------------------------- */

/* "foo_bar" -> "FooBar" (protoc-c ToCamel). Caller frees. */
static char *to_camel(const char *s, size_t n) {
  char *r = calloc(n + 1, 1);
  size_t j = 0;
  bool up = true;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '_') {
      up = true;
    } else if (up) {
      r[j++] = (char)toupper((unsigned char)s[i]);
      up = false;
    } else {
      r[j++] = s[i];
    }
  }
  return r;
}

/* "GetServerInfo" -> "get_server_info"; "WhoAmI" -> "who_am_i". Caller frees. */
static char *camel_to_lower(const char *s, size_t n) {
  char *r = calloc(2 * n + 1, 1);
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isupper(c)) {
      if (i > 0 && !isupper((unsigned char)s[i - 1]) && s[i - 1] != '_') r[j++] = '_';
      r[j++] = (char)tolower(c);
    } else {
      r[j++] = (char)c;
    }
  }
  return r;
}

static char *upper_of(const char *s) {
  char *r = strdup(s);
  for (char *p = r; *p; p++) *p = (char)toupper((unsigned char)*p);
  return r;
}

/* Join the dot-separated pieces of `full` (leading dot allowed) with "__",
 * each piece through `fn`. Caller frees. */
static char *mangle(const char *full, char *(*fn)(const char *, size_t)) {
  sbuf_t b = {0};
  const char *p = full;
  if (*p == '.') p++;
  sb_printf(&b, "%s", "");
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    char *piece = fn(p, n);
    sb_printf(&b, "%s%s", b.len ? "__" : "", piece);
    free(piece);
    p += n;
    if (*p == '.') p++;
  }
  return b.p;
}

/* ---- model ------------------------------------------------------------- */

enum kind { UNARY, SERVER_STREAMING, CLIENT_STREAMING, BIDI_STREAMING };
static const char *kind_enum[] = {"MQ_KIND_UNARY", "MQ_KIND_SERVER_STREAMING", "MQ_KIND_CLIENT_STREAMING",
                                  "MQ_KIND_BIDI_STREAMING"};

typedef struct {
  const char *name;     /* "GetServerInfo" */
  char *field;          /* "get_server_info" */
  char *in_c, *out_c;   /* C types */
  char *in_lc, *out_lc; /* lower names (descriptor symbol prefix) */
  enum kind kind;
} method_t;

typedef struct {
  const char *pkg;
  const char *name;
  char *full;  /* "marquee.system.v1.SystemService" */
  char *lower; /* "marquee__system__v1__system_service" */
  size_t n;
  method_t *m;
} service_t;

static char *type_c(const char *t) {
  return mangle(t, to_camel);
}
static char *type_lower(const char *t) {
  return mangle(t, camel_to_lower);
}

/* Is `type_name` (".pkg.Msg") a top-level message of some file in the request? */
static bool is_top_level(const Google__Protobuf__Compiler__CodeGeneratorRequest *req, const char *type_name) {
  for (size_t i = 0; i < req->n_proto_file; i++) {
    const Google__Protobuf__FileDescriptorProto *f = req->proto_file[i];
    const char *pkg = f->package ? f->package : "";
    size_t pl = strlen(pkg);
    const char *t = type_name + 1;
    if (pl) {
      if (strncmp(t, pkg, pl) != 0 || t[pl] != '.') continue;
      t += pl + 1;
    }
    for (size_t j = 0; j < f->n_message_type; j++)
      if (strcmp(f->message_type[j]->name, t) == 0) return true;
  }
  return false;
}

static void free_service(service_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->m[i].field);
    free(s->m[i].in_c);
    free(s->m[i].out_c);
    free(s->m[i].in_lc);
    free(s->m[i].out_lc);
  }
  free(s->m);
  free(s->full);
  free(s->lower);
}

/* ---- emitters ---------------------------------------------------------- */

static void emit_shared(sbuf_t *h, sbuf_t *c, const char *base, const char *guard, service_t *svcs, size_t ns,
                        const char *src) {
  sb_printf(h,
            "/* Generated by protoc-gen-marquee from %s. Do not edit.\n"
            " * Method descriptors with their call kinds; shared by server and client. */\n"
            "#ifndef %s_MQ_H\n#define %s_MQ_H\n\n#include \"core/mq_service.h\"\n#include \"%s.pb-c.h\"\n\n",
            src, guard, guard, base);
  sb_printf(c, "/* Generated by protoc-gen-marquee from %s. Do not edit. */\n#include \"%s.mq.h\"\n\n", src, base);
  for (size_t s = 0; s < ns; s++) {
    service_t *sv = &svcs[s];
    char *up = upper_of(sv->lower);
    sb_printf(h, "/* %s */\nextern const mq_service_desc_t %s__mq_desc;\nenum {\n", sv->full, sv->lower);
    for (size_t i = 0; i < sv->n; i++) {
      char *mu = upper_of(sv->m[i].field);
      sb_printf(h, "  %s__MQ_%s = %zu,\n", up, mu, i);
      free(mu);
    }
    sb_printf(h, "  %s__MQ_N_METHODS = %zu\n};\n\n", up, sv->n);
    free(up);

    sb_printf(c, "static const mq_method_desc_t %s__mq_methods[%zu] = {\n", sv->lower, sv->n);
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      sb_printf(c, "  {\"/%s/%s\", \"%s\", %s, &%s__descriptor, &%s__descriptor, %zu, &%s__mq_desc},\n", sv->full,
                m->name, m->name, kind_enum[m->kind], m->in_lc, m->out_lc, i, sv->lower);
    }
    sb_printf(c, "};\nconst mq_service_desc_t %s__mq_desc = {\"%s\", %zu, %s__mq_methods};\n\n", sv->lower, sv->full,
              sv->n, sv->lower);
  }
  sb_printf(h, "#endif\n");
}

static void emit_server(sbuf_t *h, sbuf_t *c, const char *base, const char *guard, service_t *svcs, size_t ns,
                        const char *src) {
  sb_printf(
      h,
      "/* Generated by protoc-gen-marquee from %s. Do not edit.\n"
      " * Typed handler tables: one row per method (handler, access policy, flags).\n"
      " * Fill every row; mq_server refuses to start with a missing handler or policy. */\n"
      "#ifndef %s_MQ_SERVER_H\n#define %s_MQ_SERVER_H\n\n#include \"handlers/mq_call.h\"\n#include \"%s.mq.h\"\n\n",
      src, guard, guard, base);
  sb_printf(c, "/* Generated by protoc-gen-marquee from %s. Do not edit. */\n#include \"%s.mq-server.h\"\n\n", src,
            base);
  for (size_t s = 0; s < ns; s++) {
    service_t *sv = &svcs[s];
    sb_printf(h, "typedef struct %s_handlers {\n", sv->lower);
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      switch (m->kind) {
        case UNARY:
          sb_printf(h,
                    "  struct { mq_code_t (*fn)(mq_call_t *call, const %s *req, %s *resp, mq_error_t *err);"
                    " mq_policy_t policy; unsigned flags; } %s;\n",
                    m->in_c, m->out_c, m->field);
          break;
        case SERVER_STREAMING:
          sb_printf(h,
                    "  struct { mq_code_t (*fn)(mq_call_t *call, const %s *req, mq_error_t *err);"
                    " mq_policy_t policy; unsigned flags; } %s;\n",
                    m->in_c, m->field);
          break;
        case CLIENT_STREAMING:
          sb_printf(h,
                    "  struct { mq_code_t (*on_msg)(mq_call_t *call, const %s *req, mq_error_t *err);"
                    " mq_code_t (*on_end)(mq_call_t *call, %s *resp, mq_error_t *err);"
                    " mq_policy_t policy; unsigned flags; } %s;\n",
                    m->in_c, m->out_c, m->field);
          break;
        case BIDI_STREAMING:
          sb_printf(h,
                    "  struct { mq_code_t (*on_msg)(mq_call_t *call, const %s *req, mq_error_t *err);"
                    " mq_code_t (*on_end)(mq_call_t *call, mq_error_t *err);"
                    " mq_policy_t policy; unsigned flags; } %s;\n",
                    m->in_c, m->field);
          break;
      }
    }
    sb_printf(h, "} %s_handlers_t;\n\n", sv->lower);
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      if (m->kind == SERVER_STREAMING || m->kind == BIDI_STREAMING) {
        sb_printf(h,
                  "/* Queue one %s on the %s stream (see mq_call_send). */\n"
                  "static inline mq_code_t %s__%s__send(mq_call_t *call, const %s *msg, mq_error_t *err) {\n"
                  "  return mq_call_send(call, &msg->base, err);\n}\n",
                  m->out_c, m->name, sv->lower, m->field, m->out_c);
      }
    }
    sb_printf(h,
              "\n/* Registers every method of %s with `srv`. `h` must outlive the server.\n"
              " * Returns 0, or -1 after logging which row is incomplete. */\n"
              "int %s__mq_register(mq_server_t *srv, const %s_handlers_t *h);\n\n",
              sv->full, sv->lower, sv->lower);

    /* thunks */
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      const char *pre = sv->lower;
      switch (m->kind) {
        case UNARY:
          sb_printf(c,
                    "static mq_code_t %s__%s__unary(const void *impl, mq_call_t *call, const ProtobufCMessage *req,"
                    " ProtobufCMessage *resp, mq_error_t *err) {\n"
                    "  return ((const %s_handlers_t *)impl)->%s.fn(call, (const %s *)req, (%s *)resp, err);\n}\n",
                    pre, m->field, pre, m->field, m->in_c, m->out_c);
          break;
        case SERVER_STREAMING:
          sb_printf(c,
                    "static mq_code_t %s__%s__start(const void *impl, mq_call_t *call, const ProtobufCMessage *req,"
                    " mq_error_t *err) {\n"
                    "  return ((const %s_handlers_t *)impl)->%s.fn(call, (const %s *)req, err);\n}\n",
                    pre, m->field, pre, m->field, m->in_c);
          break;
        case CLIENT_STREAMING:
        case BIDI_STREAMING:
          sb_printf(c,
                    "static mq_code_t %s__%s__on_msg(const void *impl, mq_call_t *call, const ProtobufCMessage *req,"
                    " mq_error_t *err) {\n"
                    "  return ((const %s_handlers_t *)impl)->%s.on_msg(call, (const %s *)req, err);\n}\n",
                    pre, m->field, pre, m->field, m->in_c);
          if (m->kind == CLIENT_STREAMING)
            sb_printf(c,
                      "static mq_code_t %s__%s__on_end(const void *impl, mq_call_t *call, ProtobufCMessage *resp,"
                      " mq_error_t *err) {\n"
                      "  return ((const %s_handlers_t *)impl)->%s.on_end(call, (%s *)resp, err);\n}\n",
                      pre, m->field, pre, m->field, m->out_c);
          else
            sb_printf(c,
                      "static mq_code_t %s__%s__on_end(const void *impl, mq_call_t *call, ProtobufCMessage *resp,"
                      " mq_error_t *err) {\n  (void)resp;\n"
                      "  return ((const %s_handlers_t *)impl)->%s.on_end(call, err);\n}\n",
                      pre, m->field, pre, m->field);
          break;
      }
    }
    sb_printf(c,
              "\nint %s__mq_register(mq_server_t *srv, const %s_handlers_t *h) {\n"
              "  const mq_method_binding_t rows[%zu] = {\n",
              sv->lower, sv->lower, sv->n);
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      const char *pre = sv->lower;
      sb_printf(c, "    {&%s__mq_desc.methods[%zu], h, ", pre, i);
      switch (m->kind) {
        case UNARY:
          sb_printf(c, "%s__%s__unary, NULL, NULL, NULL, h->%s.fn != NULL, ", pre, m->field, m->field);
          break;
        case SERVER_STREAMING:
          sb_printf(c, "NULL, %s__%s__start, NULL, NULL, h->%s.fn != NULL, ", pre, m->field, m->field);
          break;
        default:
          sb_printf(c, "NULL, NULL, %s__%s__on_msg, %s__%s__on_end, h->%s.on_msg != NULL && h->%s.on_end != NULL, ",
                    pre, m->field, pre, m->field, m->field, m->field);
      }
      sb_printf(c, "h->%s.policy, h->%s.flags},\n", m->field, m->field);
    }
    sb_printf(c, "  };\n  return mq_server_add_service(srv, &%s__mq_desc, rows, %zu);\n}\n\n", sv->lower, sv->n);
  }
  sb_printf(h, "#endif\n");
}

static void emit_client(sbuf_t *h, sbuf_t *c, const char *base, const char *guard, service_t *svcs, size_t ns,
                        const char *src) {
  sb_printf(
      h,
      "/* Generated by protoc-gen-marquee from %s. Do not edit.\n"
      " * Typed client stubs over clients/mq_client.h: <service>__<method>__call for\n"
      " * unary methods (protoc-c owns <service>__<method>), __open/__send/__recv for\n"
      " * streams. Unary responses are heap\n"
      " * allocated: free with <type>__free_unpacked(resp, NULL). */\n"
      "#ifndef %s_MQ_CLIENT_H\n#define %s_MQ_CLIENT_H\n\n#include \"clients/mq_client.h\"\n#include \"%s.mq.h\"\n\n",
      src, guard, guard, base);
  sb_printf(c, "/* Generated by protoc-gen-marquee from %s. Do not edit. */\n#include \"%s.mq-client.h\"\n\n", src,
            base);
  for (size_t s = 0; s < ns; s++) {
    service_t *sv = &svcs[s];
    for (size_t i = 0; i < sv->n; i++) {
      method_t *m = &sv->m[i];
      const char *pre = sv->lower;
      if (m->kind == UNARY) {
        sb_printf(h,
                  "mq_code_t %s__%s__call(mq_client_t *cl, const %s *req, %s **resp, const mq_call_opts_t *opts,"
                  " mq_error_t *err);\n",
                  pre, m->field, m->in_c, m->out_c);
        sb_printf(c,
                  "mq_code_t %s__%s__call(mq_client_t *cl, const %s *req, %s **resp, const mq_call_opts_t *opts,"
                  " mq_error_t *err) {\n"
                  "  return mq_client_unary(cl, &%s__mq_desc.methods[%zu], &req->base, (ProtobufCMessage **)resp,"
                  " opts, err);\n}\n",
                  pre, m->field, m->in_c, m->out_c, pre, i);
      } else {
        sb_printf(h,
                  "mq_code_t %s__%s__open(mq_client_t *cl, const mq_call_opts_t *opts, mq_client_stream_t **out,"
                  " mq_error_t *err);\n",
                  pre, m->field);
        sb_printf(c,
                  "mq_code_t %s__%s__open(mq_client_t *cl, const mq_call_opts_t *opts, mq_client_stream_t **out,"
                  " mq_error_t *err) {\n"
                  "  return mq_client_stream_open(cl, &%s__mq_desc.methods[%zu], opts, out, err);\n}\n",
                  pre, m->field, pre, i);
        sb_printf(h,
                  "static inline mq_code_t %s__%s__send(mq_client_stream_t *st, const %s *msg, mq_error_t *err) {\n"
                  "  return mq_client_stream_send(st, &msg->base, err);\n}\n",
                  pre, m->field, m->in_c);
        sb_printf(h,
                  "static inline mq_code_t %s__%s__recv(mq_client_stream_t *st, %s **msg, mq_error_t *err) {\n"
                  "  return mq_client_stream_recv(st, (ProtobufCMessage **)msg, err);\n}\n",
                  pre, m->field, m->out_c);
      }
    }
    sb_printf(h, "\n");
  }
  sb_printf(h, "#endif\n");
}

/* ---- main -------------------------------------------------------------- */

static Google__Protobuf__Compiler__CodeGeneratorResponse__File *new_file(const char *name, sbuf_t *b) {
  Google__Protobuf__Compiler__CodeGeneratorResponse__File *f = malloc(sizeof *f);
  google__protobuf__compiler__code_generator_response__file__init(f);
  f->name = strdup(name);
  f->content = b->p ? b->p : strdup("");
  return f;
}

int main(void) {
  size_t cap = 1 << 16, len = 0;
  uint8_t *in = malloc(cap);
  size_t n;
  while ((n = fread(in + len, 1, cap - len, stdin)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *nin = realloc(in, cap *= 2);
      if (!nin) abort();
      in = nin;
    }
  }
  Google__Protobuf__Compiler__CodeGeneratorRequest *req =
      google__protobuf__compiler__code_generator_request__unpack(NULL, len, in);
  free(in);
  if (!req) {
    fprintf(stderr, "protoc-gen-marquee: cannot parse CodeGeneratorRequest\n");
    return 1;
  }

  Google__Protobuf__Compiler__CodeGeneratorResponse resp = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
  resp.has_supported_features = 1;
  resp.supported_features = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
  Google__Protobuf__Compiler__CodeGeneratorResponse__File **files = NULL;
  size_t nfiles = 0;
  char errbuf[512] = "";

  for (size_t g = 0; g < req->n_file_to_generate && !errbuf[0]; g++) {
    const Google__Protobuf__FileDescriptorProto *fd = NULL;
    for (size_t i = 0; i < req->n_proto_file; i++)
      if (strcmp(req->proto_file[i]->name, req->file_to_generate[g]) == 0) fd = req->proto_file[i];
    if (!fd) continue; /* files without services still get (empty) outputs: fixed build graph */

    service_t *svcs = calloc(fd->n_service ? fd->n_service : 1, sizeof *svcs);
    for (size_t s = 0; s < fd->n_service; s++) {
      const Google__Protobuf__ServiceDescriptorProto *sd = fd->service[s];
      service_t *sv = &svcs[s];
      sv->pkg = fd->package ? fd->package : "";
      sv->name = sd->name;
      sbuf_t full = {0};
      sb_printf(&full, "%s%s%s", sv->pkg, sv->pkg[0] ? "." : "", sd->name);
      sv->full = full.p;
      sv->lower = type_lower(sv->full);
      sv->n = sd->n_method;
      sv->m = calloc(sd->n_method ? sd->n_method : 1, sizeof *sv->m);
      for (size_t i = 0; i < sd->n_method; i++) {
        const Google__Protobuf__MethodDescriptorProto *md = sd->method[i];
        method_t *m = &sv->m[i];
        m->name = md->name;
        m->field = camel_to_lower(md->name, strlen(md->name));
        bool cs = md->has_client_streaming && md->client_streaming;
        bool ss = md->has_server_streaming && md->server_streaming;
        m->kind = cs ? (ss ? BIDI_STREAMING : CLIENT_STREAMING) : (ss ? SERVER_STREAMING : UNARY);
        if (!is_top_level(req, md->input_type) || !is_top_level(req, md->output_type)) {
          snprintf(errbuf, sizeof errbuf, "%s: %s.%s: request and response must be top-level messages", fd->name,
                   sd->name, md->name);
        }
        m->in_c = type_c(md->input_type);
        m->out_c = type_c(md->output_type);
        m->in_lc = type_lower(md->input_type);
        m->out_lc = type_lower(md->output_type);
      }
    }

    if (!errbuf[0]) {
      char *base = strdup(fd->name);
      char *dot = strrchr(base, '.');
      if (dot && strcmp(dot, ".proto") == 0) *dot = '\0';
      char *guard = upper_of(base);
      for (char *p = guard; *p; p++)
        if (!isalnum((unsigned char)*p)) *p = '_';
      sbuf_t b[6] = {{0}};
      emit_shared(&b[0], &b[1], base, guard, svcs, fd->n_service, fd->name);
      emit_server(&b[2], &b[3], base, guard, svcs, fd->n_service, fd->name);
      emit_client(&b[4], &b[5], base, guard, svcs, fd->n_service, fd->name);
      static const char *suffix[6] = {".mq.h", ".mq.c", ".mq-server.h", ".mq-server.c", ".mq-client.h", ".mq-client.c"};
      Google__Protobuf__Compiler__CodeGeneratorResponse__File **nf = realloc(files, (nfiles + 6) * sizeof *files);
      if (!nf) abort();
      files = nf;
      for (int k = 0; k < 6; k++) {
        sbuf_t name = {0};
        sb_printf(&name, "%s%s", base, suffix[k]);
        files[nfiles++] = new_file(name.p, &b[k]);
        free(name.p);
      }
      free(base);
      free(guard);
    }
    for (size_t s = 0; s < fd->n_service; s++) free_service(&svcs[s]);
    free(svcs);
  }

  if (errbuf[0]) resp.error = errbuf;
  resp.n_file = nfiles;
  resp.file = files;
  size_t outlen = google__protobuf__compiler__code_generator_response__get_packed_size(&resp);
  uint8_t *out = malloc(outlen ? outlen : 1);
  google__protobuf__compiler__code_generator_response__pack(&resp, out);
  int rc = fwrite(out, 1, outlen, stdout) == outlen ? 0 : 1;
  free(out);
  for (size_t i = 0; i < nfiles; i++) {
    free(files[i]->name);
    free(files[i]->content);
    free(files[i]);
  }
  free(files);
  google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
  return rc;
}
