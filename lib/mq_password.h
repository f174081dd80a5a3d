/*
 * mq_password.h — password hashing (Argon2id, libargon2) and the password
 * policy (DESIGN.md §7).
 *
 * What it does: mq_password_hash() turns a password into a self-describing
 * PHC string ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>") that is the
 * only thing ever stored; mq_password_verify() checks a password against such
 * a string and says when it was made with other parameters than today's, so
 * sign-in can re-hash it; mq_password_dummy_verify() spends the same time on
 * an unknown account; mq_password_check_policy() decides which new passwords
 * are acceptable.
 *
 * Invariants:
 *   - The password is never logged, copied, or put in an error message: it is
 *     read in place and handed only to libargon2 (which wipes its own work
 *     memory). This module makes no copy of it, so there is nothing to wipe.
 *   - The salt is 16 bytes from getrandom(2); the hash is 32 bytes; the
 *     algorithm is Argon2id, version 0x13 (19). Constant-time comparison is
 *     libargon2's (argon2id_verify).
 *   - Hashing and verifying BLOCK for tens of milliseconds and allocate
 *     m_cost KiB each: call them from a worker thread (mq_pool.h), never from
 *     a completion-queue thread (DESIGN.md §3).
 *   - The current parameters are process-wide state guarded by a mutex; every
 *     function is thread-safe.
 *
 * Ownership: strings are borrowed for the duration of the call; `out` is the
 * caller's buffer. Nothing is allocated that outlives a call (apart from the
 * cached dummy hash, a static buffer).
 *
 * Read next: mq_password.c (the breached-password list and the PHC parser),
 * tests/unit/lib/test_password.c, mq_error.h.
 */
#ifndef MQ_PASSWORD_H
#define MQ_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

/* ---- Parameters ---------------------------------------------------------------
 * Defaults: OWASP Password Storage Cheat Sheet, Argon2id, the first of its
 * equivalent minimum configurations: m=19456 KiB (19 MiB), t=2, p=1. Why
 * these and not more: a sign-in costs one hash on a worker thread and the
 * server is sized for many sign-ins per second per core; OWASP's
 * configurations all give the same attacker cost, and this one uses the least
 * memory per concurrent sign-in (19 MiB x pool threads). p=1 keeps a hash on
 * one core so the pool, not libargon2, decides concurrency. Measured here
 * (Debian 12 libargon2 0~20171227, AMD EPYC, 2 cores): one hash or verify
 * takes 19-24 ms (median of 10; ~35 ms in an ASan build). Raise m or t
 * later with mq_password_set_params(): existing hashes keep verifying (their
 * parameters are in the string) and are upgraded at the next sign-in through
 * needs_rehash. */
#define MQ_PASSWORD_T_COST 2u
#define MQ_PASSWORD_M_COST_KIB 19456u
#define MQ_PASSWORD_PARALLELISM 1u

/* Bounds accepted by mq_password_set_params() and in stored hashes. A stored
 * hash outside them is treated as malformed (MQ_INTERNAL) rather than run:
 * a corrupted row must not make one verify allocate gigabytes. The upper
 * memory bound admits RFC 9106's first recommendation (2 GiB). Lower values
 * than the defaults are allowed for tests only. */
#define MQ_PASSWORD_T_COST_MAX 32u
#define MQ_PASSWORD_M_COST_KIB_MAX 2097152u /* 2 GiB */
#define MQ_PASSWORD_PARALLELISM_MAX 16u

#define MQ_PASSWORD_SALT_LEN 16u
#define MQ_PASSWORD_HASH_LEN 32u
/* Size of the buffer mq_password_hash() needs, NUL included. At the defaults
 * the string is 97 bytes; at the bounds above it is at most 101. */
#define MQ_PASSWORD_HASH_MAX 128u

/* Set the parameters new hashes use (and that needs_rehash compares with).
 * Valid: 1 <= t_cost <= MQ_PASSWORD_T_COST_MAX, 1 <= parallelism <=
 * MQ_PASSWORD_PARALLELISM_MAX, 8 * parallelism <= m_cost_kib <=
 * MQ_PASSWORD_M_COST_KIB_MAX (libargon2's minimum is 8 KiB per lane).
 * Returns MQ_OK, or MQ_INVALID_ARGUMENT with the parameters unchanged.
 * Call once at start-up (config) or in tests; safe at any time. */
mq_code_t mq_password_set_params(uint32_t t_cost, uint32_t m_cost_kib, uint32_t parallelism);
/* The current parameters; any pointer may be NULL. */
void mq_password_get_params(uint32_t *t_cost, uint32_t *m_cost_kib, uint32_t *parallelism);

/* ---- Hashing ------------------------------------------------------------------
 * Hash `password` (NUL-terminated UTF-8 bytes, hashed exactly as given: no
 * trimming, no Unicode normalization) with the current parameters and a
 * fresh random salt; write the PHC string to out[out_len].
 * Returns MQ_OK; MQ_INVALID_ARGUMENT (field "password") if the password is
 * longer than MQ_PASSWORD_MAX_BYTES (check the policy first);
 * MQ_UNAVAILABLE if memory could not be allocated (retry later); MQ_INTERNAL
 * for caller bugs (NULL password or out, out_len < MQ_PASSWORD_HASH_MAX) and
 * getrandom/libargon2 failures. On failure out is "" when out_len > 0. */
mq_code_t mq_password_hash(const char *password, char *out, size_t out_len, mq_error_t *err);

/* Check `password` against a stored PHC string made by mq_password_hash().
 * Returns MQ_OK if it matches; MQ_UNAUTHENTICATED ("wrong password", nothing
 * more) if it does not, and also, without hashing, for a password longer than
 * MQ_PASSWORD_MAX_BYTES (no such password can have been stored);
 * MQ_INTERNAL if `encoded` is NULL or not an Argon2id v=19 PHC string within
 * the bounds above (a bug or corruption in the store, not the client's
 * fault); MQ_UNAVAILABLE if memory could not be allocated.
 * needs_rehash (may be NULL) is set to false first, and to true on MQ_OK when
 * the string's m, t, p, salt or hash length differ from the current ones:
 * the caller should then store mq_password_hash(password). */
mq_code_t mq_password_verify(const char *password, const char *encoded, bool *needs_rehash, mq_error_t *err);

/* For sign-in with an unknown account: run one verification at the current
 * parameters against a dummy hash (made once per parameter set from a random
 * secret, under a mutex) and discard the result, so "no such user" takes as
 * long as "wrong password" and user names cannot be enumerated by timing.
 * `password` may be NULL (treated as ""). Over-long passwords return at once,
 * exactly as mq_password_verify() does for them. */
void mq_password_dummy_verify(const char *password);

/* ---- Policy -------------------------------------------------------------------
 * Rules for a NEW password (sign-up, change, reset), after NIST SP 800-63B
 * §5.1.1.2 (length over composition rules, block known-bad passwords, no
 * character-class requirements). Checked in this order; the first failure
 * wins. Every refusal is MQ_INVALID_ARGUMENT with err->field = `field` and a
 * message that never quotes the password, the e-mail or the name:
 *   1. set: NULL or "" → "is required";
 *   2. at most MQ_PASSWORD_MAX_BYTES bytes, then valid UTF-8 (mq_utf8_valid),
 *      then MQ_PASSWORD_MIN_CHARS..MQ_PASSWORD_MAX_CHARS code points (spaces
 *      and every other character count; nothing is trimmed);
 *   3. not one character repeated ("aaaaaaaaaa", "AaAaAaAaAa");
 *   4. not one run of consecutive characters covering the whole password,
 *      ascending or descending by one code point; digits wrap 9→0 and
 *      letters z→a (keyboard order), so "1234567890", "0987654321",
 *      "abcdefghij", "ZYXWVUTSRQ" are refused;
 *   5. not in the built-in list of ~100 of the most common breached
 *      passwords of 10+ characters (SecLists' "10 million passwords" top
 *      10,000 and similar lists), compared case-insensitively (ASCII);
 *   6. not containing the e-mail's local part (before the last '@'; the
 *      whole string if there is none) if it has >= 4 characters;
 *   7. not containing the display name (ASCII whitespace trimmed) if it has
 *      >= 4 characters.
 * Rules 3-7 fold ASCII letters only: non-ASCII letters compare exactly.
 * email and display_name may be NULL or "" (rule skipped); they are not
 * validated here. Passwords are not Unicode-normalized (a client should send
 * NFC). Rules 1-2 are the ones mq_password_hash() relies on. */
#define MQ_PASSWORD_MIN_CHARS 10u
#define MQ_PASSWORD_MAX_CHARS 128u
#define MQ_PASSWORD_MAX_BYTES 512u /* 128 code points x 4 bytes */
#define MQ_PASSWORD_CONTEXT_MIN_CHARS 4u

mq_code_t mq_password_check_policy(mq_error_t *err, const char *field, const char *password, const char *email,
                                   const char *display_name);

#endif
