/*
 * mq_pbjson.h — any protobuf-c message as JSON, in proto3's canonical JSON
 * mapping, walked from its descriptor: what webhook bodies carry, so a
 * receiving system needs no .proto file and no protobuf library.
 *
 * The mapping (protobuf's "JSON Mapping"): field names in lowerCamelCase;
 * fields at their default (0, "", false, empty list, absent message,
 * unset oneof) left out; 64-bit integers as decimal strings; enums by their
 * value name (the number if the name is unknown); bytes as standard base64;
 * google.protobuf.Timestamp as RFC 3339 UTC ("2026-12-05T10:00:00.5Z");
 * google.protobuf.Duration as "1.5s"; NaN and infinities as strings.
 *
 * Invariants:
 *   1. The output is valid JSON and valid UTF-8 whatever the message holds:
 *      a string that is not UTF-8 has each bad byte replaced by U+FFFD, and
 *      every control character is escaped.
 *   2. A field whose type is marquee.events.v1.SealedSecret is never written
 *      (sealed link tokens stay with the notifier).
 *   3. Pure: no I/O, no global state; the result is malloc'ed.
 */
#ifndef MQ_PBJSON_H
#define MQ_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdio.h>

/* The message as one JSON object, NUL-terminated (length in *len when len is
 * not NULL). Caller frees. */
char *mq_pbjson(const ProtobufCMessage *m, size_t *len);

/* Appends `s` to `out` as a JSON string literal (quotes included), with the
 * escaping of invariant 1. */
void mq_pbjson_string(FILE *out, const char *s, size_t n);

#endif
