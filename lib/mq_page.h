/*
 * mq_page.h — page tokens (AIP-158) shared by every List method: opaque to
 * clients, and bound to the query that made them.
 *
 * A token is base64url("1" + 16 hex digits + ":" + cursor): a version, the
 * fingerprint of the request that produced it, and the method's own cursor
 * (e.g. "<sort key ms>.<id>"; the method parses it). The fingerprint is a
 * 64-bit FNV-1a hash of the request message's type name and its serialized
 * form with page_size and page_token cleared: every
 * filter counts, the page size may change between pages (AIP-158 allows
 * it). A token sent with other filters is refused with INVALID_ARGUMENT
 * naming the token field, and a string that is not a token of this method
 * likewise — never a silent restart from the first page.
 *
 * Not a secret: a forged cursor can only move within what the same filters
 * already allow, since every filter is applied again to every page.
 * Ownership: results are allocated in the arena given. No failure besides
 * the documented refusals.
 */
#ifndef MQ_PAGE_H
#define MQ_PAGE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

/* The fingerprint of `req` without its paging fields. */
uint64_t mq_page_fingerprint(const ProtobufCMessage *req);

/* The next_page_token for `cursor` after a page of `req`. */
char *mq_page_token_make(mq_arena_t *a, const ProtobufCMessage *req, const char *cursor);

/* Reads `token` (from field `field`) sent with `req`: *cursor is NULL for
 * an empty token (the first page), else the method's cursor (in `a`).
 * INVALID_ARGUMENT naming `field` when it is not a token or was made for
 * other filters. */
mq_code_t mq_page_token_read(mq_arena_t *a, const ProtobufCMessage *req, const char *field, const char *token,
                             const char **cursor, mq_error_t *err);

/* The cursor most lists use: "<sort key ms>.<uuid>" of the page's last
 * item. make: the token for it; read: *has false for the first page, else
 * the key and the id (in `a`); INVALID_ARGUMENT naming `field` otherwise. */
char *mq_page_token_make_key(mq_arena_t *a, const ProtobufCMessage *req, int64_t ms, const char *id);
mq_code_t mq_page_token_read_key(mq_arena_t *a, const ProtobufCMessage *req, const char *field, const char *token,
                                 bool *has, int64_t *ms, const char **id, mq_error_t *err);

#endif
