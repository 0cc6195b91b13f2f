/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared across the module. */
#ifndef P11W_UTIL_H
#define P11W_UTIL_H

#include "pkcs11.h"

#include <stddef.h>

/* Copy @src into the blank-padded, unterminated PKCS#11 text field @dst of
 * @len bytes (CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO), truncating. */
void util_pad (CK_UTF8CHAR *dst, size_t len, const char *src);

/* The value of a hexadecimal digit (either case), or -1. */
int util_hex_digit (int c);

#endif /* P11W_UTIL_H */
