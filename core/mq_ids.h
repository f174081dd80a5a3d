/*
 * mq_ids.h — identifiers: random hex (request/trace ids, token ids) and
 * UUIDv4 text (event ids, record ids). Request ids use a fast per-thread
 * generator seeded from the kernel; UUIDs come straight from getrandom(2)
 * because they key decision records and must not collide across processes.
 */
#ifndef MQ_IDS_H
#define MQ_IDS_H

#include <stddef.h>

/* `hex_chars` random lower-case hex digits + NUL into out[hex_chars + 1]. */
void mq_random_hex(char *out, size_t hex_chars);
/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" + NUL into out[37]. */
void mq_uuid_v4(char out[37]);

/* Unpadded base64url of in[0..n) into out (room for 4*ceil(n/3)+1 bytes),
 * NUL-terminated; returns the characters written. */
size_t mq_base64url_encode(const unsigned char *in, size_t n, char *out);
/* Padded standard base64 (RFC 4648 §4: + and /), e.g. for MIME; out has room
 * for 4*ceil(n/3)+1 bytes. */
size_t mq_base64_encode(const unsigned char *in, size_t n, char *out);

/* Decodes unpadded base64url of in[0..n) into out[0..cap); returns the bytes
 * written, or -1 on a bad character, non-canonical trailing bits or overflow. */
long mq_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);
#endif
