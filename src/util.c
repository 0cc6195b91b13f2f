/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "util.h"

#include <string.h>

void
util_pad (CK_UTF8CHAR *dst, size_t len, const char *src)
{
	size_t n = strlen (src);
	memset (dst, ' ', len);
	memcpy (dst, src, n < len ? n : len);
}

int
util_hex_digit (int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
