/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

bool
util_hex_decode (const char *in, size_t in_len, unsigned char *out, size_t max, size_t *len)
{
	if (in_len == 0 || in_len % 2 || in_len / 2 > max)
		return false;
	for (size_t i = 0; i < in_len / 2; i++) {
		int hi = util_hex_digit ((unsigned char)in[2 * i]);
		int lo = util_hex_digit ((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = in_len / 2;
	return true;
}

char *
util_read_file (const char *path, size_t max, unsigned int flags, const char *why, size_t *len,
                bool *missing, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t have = 0;
	int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (missing)
		*missing = false;
	if (fd < 0) {
		if (missing && errno == ENOENT)
			*missing = true;
		snprintf (err, errlen, "%s: cannot open: %s", path, strerror (errno));
		return NULL;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		snprintf (err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((flags & UTIL_FILE_OWNED) && st.st_uid != geteuid () && st.st_uid != 0) {
		snprintf (err, errlen, "%s: owned by uid %lu, not by this account (uid %lu) or root; "
		          "%s: refusing a file others control", path, (unsigned long)st.st_uid,
		          (unsigned long)geteuid (), why);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf (err, errlen, "%s: writable by %s (mode %03o); %s: chmod go-w", path,
		          st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st.st_mode & 0777),
		          why);
		goto out;
	}
	if ((flags & UTIL_FILE_PRIVATE) && (st.st_mode & 077)) {
		snprintf (err, errlen, "%s: open to %s (mode %03o); %s: chmod go=", path,
		          st.st_mode & 007 ? "others" : "its group", (unsigned)(st.st_mode & 0777), why);
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		snprintf (err, errlen, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	/* One byte more than fstat said: a file that grows while it is read
	 * is not the file that was checked. */
	buf = malloc ((size_t)st.st_size + 1);
	if (!buf) {
		snprintf (err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read (fd, buf + have, (size_t)st.st_size + 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf (err, errlen, "%s: read error: %s", path, strerror (errno));
			goto fail;
		}
		if (r == 0)
			break;
		have += (size_t)r;
		if (have > (size_t)st.st_size)
			break;
	}
	if (have != (size_t)st.st_size) {
		snprintf (err, errlen, "%s: changed while it was read", path);
		goto fail;
	}
	buf[have] = '\0';
	if ((flags & UTIL_FILE_TEXT) && strlen (buf) != have) {
		snprintf (err, errlen, "%s: contains a NUL byte", path);
		goto fail;
	}
	if (len)
		*len = have;
	goto out;
fail:
	if (flags & UTIL_FILE_PRIVATE)
		explicit_bzero (buf, have);
	free (buf);
	buf = NULL;
out:
	close (fd);
	return buf;
}

size_t
util_utf8_seq (const unsigned char *s, size_t n)
{
	size_t k;
	uint32_t cp, min;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		k = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		k = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		k = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. */
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

size_t
util_utf8_invalid_at (const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = util_utf8_seq (s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

bool
util_utf8_valid (const unsigned char *s, size_t n)
{
	return util_utf8_invalid_at (s, n) == n;
}
