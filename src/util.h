/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared across the module. */
#ifndef P11W_UTIL_H
#define P11W_UTIL_H

#include "pkcs11.h"

#include <stdbool.h>
#include <stddef.h>

/* Copy @src into the blank-padded, unterminated PKCS#11 text field @dst of
 * @len bytes (CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO), truncating. */
void util_pad (CK_UTF8CHAR *dst, size_t len, const char *src);

/* The value of a hexadecimal digit (either case), or -1. */
int util_hex_digit (int c);

/* Decode @in_len hex digits (either case) into at most @max bytes of @out;
 * false for an odd or empty length, a non-digit, or too many bytes. */
bool util_hex_decode (const char *in, size_t in_len, unsigned char *out, size_t max,
                      size_t *len);

/* UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF; NUL is valid).  The length of the valid sequence at @s (at
 * most @n bytes), or 0; where the first invalid sequence starts, or @n;
 * whether all of it is valid. */
size_t util_utf8_seq (const unsigned char *s, size_t n);
size_t util_utf8_invalid_at (const unsigned char *s, size_t n);
bool util_utf8_valid (const unsigned char *s, size_t n);

#define UTIL_FILE_OWNED 0x1u   /* owned by this account or root */
#define UTIL_FILE_TEXT 0x2u    /* no NUL byte inside */
#define UTIL_FILE_PRIVATE 0x4u /* neither group nor others have any access
                                * (mode & 077 == 0): a private key */

/*
 * Read a file that decides something (configuration, policy, trust
 * anchor) through one descriptor, so that the checks and the content are
 * of the same file: a regular file, of at most @max bytes, that neither
 * group nor others can write (and with UTIL_FILE_OWNED, owned by this
 * account or root; with UTIL_FILE_PRIVATE, not readable by them either,
 * and a copy read in vain is wiped).  @why ("the configuration decides
 * which keys are gated") ends the messages about permissions.  Returns a malloc'd,
 * NUL-terminated copy and its length in @len, or NULL with "PATH: why" in
 * @err; @missing (may be NULL) tells a file that does not exist.
 */
char *util_read_file (const char *path, size_t max, unsigned int flags, const char *why,
                      size_t *len, bool *missing, char *err, size_t errlen);

#endif /* P11W_UTIL_H */
