/*
 * reflection.h — gRPC server reflection (grpc.reflection.v1alpha and
 * grpc.reflection.v1 ServerReflection/ServerReflectionInfo) served from the
 * descriptor set embedded at build time (DESIGN.md §3), so grpcurl and other
 * stock tools list, describe and call Marquee's services with no .proto files.
 *
 * mq_reflection_init parses the embedded FileDescriptorSet once and builds a
 * read-only index: fully qualified symbol → file (messages, enums and enum
 * values, fields, oneofs, extensions — nested ones included — services, and
 * methods as "pkg.Service.Method"), file name → file, and (extendee, number) →
 * file. Each file's serialized bytes are slices of the embedded set (never
 * re-packed), and each file's transitive dependency closure (the file itself
 * first, each file once) is computed at init, so answering a request
 * allocates nothing but the list of services.
 *
 * Process-wide state: the generated handler tables carry no user pointer and
 * mq_call_app() belongs to the application, so mq_reflection_register stores
 * the index and the server in two file-static pointers, written before
 * mq_server_start and only read afterwards. One reflection instance and one
 * server per process; a later registration replaces the earlier one. The
 * instance must outlive the server.
 *
 * Read next: server/mq_app.c (registration), tests/unit/handlers/test_reflection.c.
 */
#ifndef MQ_REFLECTION_H
#define MQ_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"
#include "core/mq_service.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "handlers/mq_call.h"

typedef struct mq_reflection mq_reflection_t;

/* Parses the embedded descriptor set (mq_descriptor_set) and builds the
 * index. On success *out is a new instance owned by the caller (free with
 * mq_reflection_free). On failure returns INTERNAL (the set is unparseable or
 * names an import it does not contain), fills `err`, and sets *out = NULL. */
mq_code_t mq_reflection_init(mq_reflection_t **out, mq_error_t *err);

/* As mq_reflection_init, from any serialized FileDescriptorSet. `set` is
 * borrowed and must outlive the instance (files are served as slices of it). */
mq_code_t mq_reflection_init_from(const uint8_t *set, size_t len, mq_reflection_t **out, mq_error_t *err);

/* Frees the index. NULL is a no-op. The server using it must be destroyed. */
void mq_reflection_free(mq_reflection_t *r);

/* Registers grpc.reflection.v1alpha.ServerReflection and
 * grpc.reflection.v1.ServerReflection (both MQ_POLICY_PUBLIC) on `srv`, and
 * remembers `srv` (for list_services) and `r` in file-static pointers (see
 * above). Must precede mq_server_start. Returns 0, or -1 (logged by the
 * server) if either service cannot be added. */
int mq_reflection_register(mq_server_t *srv, mq_reflection_t *r);

/* ---- internal: exposed for tests/unit/handlers/test_reflection.c ------------------- */

/* The index of the file defining fully qualified `symbol` (no leading dot),
 * or -1. */
int mq_reflection_find_symbol(const mq_reflection_t *r, const char *symbol);
/* The index of the file named `filename` ("marquee/system/v1/system.proto"),
 * or -1. */
int mq_reflection_find_file(const mq_reflection_t *r, const char *filename);
/* The index of the file declaring extension `number` of message `extendee`
 * (fully qualified, no leading dot), or -1. */
int mq_reflection_find_extension(const mq_reflection_t *r, const char *extendee, int32_t number);
/* Number of files in the set; the name of file `i` (borrowed from `r`). */
size_t mq_reflection_file_count(const mq_reflection_t *r);
const char *mq_reflection_file_name(const mq_reflection_t *r, int i);
/* File `i` and its transitive dependencies, `i` first, each once: sets
 * *files to an array of file indexes owned by `r` and returns its length
 * (0 for an out-of-range `i`). */
size_t mq_reflection_file_closure(const mq_reflection_t *r, int i, const int **files);

/* The message descriptors used to build responses. v1alpha and v1 messages
 * are wire- and layout-identical, so one implementation fills the v1alpha C
 * structs and the descriptors say which package's messages they are. */
typedef struct mq_reflection_descs {
  const ProtobufCMessageDescriptor *response, *file_descriptor_response, *extension_number_response,
      *list_service_response, *service_response, *error_response;
} mq_reflection_descs_t;

extern const mq_reflection_descs_t mq_reflection_v1alpha_descs;
extern const mq_reflection_descs_t mq_reflection_v1_descs;

/* Fills `resp` (already initialized by the caller or not: it is
 * re-initialized with d->response) with the one answer to `req`, using the
 * services `svcs[0..n_svcs)` for list_services. Anything allocated comes from
 * `scratch` or is borrowed from `r` and `req`: `resp` is valid while all
 * three are. Unknown symbols, files and extensions, and unsupported request
 * kinds, become an error_response (NOT_FOUND, UNIMPLEMENTED…), never a call
 * error. */
void mq_reflection_answer(const mq_reflection_t *r, const mq_reflection_descs_t *d,
                          const mq_service_desc_t *const *svcs, unsigned n_svcs,
                          const Grpc__Reflection__V1alpha__ServerReflectionRequest *req,
                          Grpc__Reflection__V1alpha__ServerReflectionResponse *resp, mq_arena_t *scratch);

#endif
