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
