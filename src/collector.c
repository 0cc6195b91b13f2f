/* SPDX-License-Identifier: Apache-2.0 */
/* Dispatch and the parts every collector kind shares. */
#include "config.h"

#include "collector-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct collector {
	char name[COLLECTOR_NAME_MAX + 1];
	const struct collector_ops *ops;
	void *impl;
};

void
collector_set_err (char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start (ap, fmt);
	vsnprintf (err, errlen, fmt, ap);
	va_end (ap);
}

void
collector_hex (char *dst, const unsigned char *src, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 0x0f];
	}
	dst[2 * len] = '\0';
}

const char *
collector_strerror (int rv)
{
	switch (rv) {
	case COLLECTOR_OK: return "ok";
	case COLLECTOR_ERR_ARGS: return "invalid arguments";
	case COLLECTOR_ERR_NO_MEMORY: return "out of memory";
	case COLLECTOR_ERR_TCTI: return "TPM unavailable";
	case COLLECTOR_ERR_AK_MISSING: return "attestation key missing";
	case COLLECTOR_ERR_AK_UNSUITABLE: return "not a usable attestation key";
	case COLLECTOR_ERR_TPM: return "TPM command failed";
	case COLLECTOR_ERR_PCR_UNSTABLE: return "PCRs changed during the quote";
	case COLLECTOR_ERR_PROGRAM: return "collector program unusable";
	case COLLECTOR_ERR_SPAWN: return "cannot start the collector program";
	case COLLECTOR_ERR_TIMEOUT: return "collector timed out";
	case COLLECTOR_ERR_EXIT: return "collector program failed";
	case COLLECTOR_ERR_TOO_LARGE: return "evidence too large";
	case COLLECTOR_ERR_MALFORMED: return "malformed collector output";
	case COLLECTOR_ERR_IO: return "I/O error";
	case COLLECTOR_ERR_ENCODE: return "cannot encode the evidence";
	}
	return "unknown error";
}

int
collector_check_name (const char *name, char *err, size_t errlen)
{
	size_t n;

	if (!name || !*name) {
		collector_set_err (err, errlen, "collector name missing");
		return COLLECTOR_ERR_ARGS;
	}
	n = strnlen (name, COLLECTOR_NAME_MAX + 1);
	if (n > COLLECTOR_NAME_MAX) {
		collector_set_err (err, errlen, "collector name longer than %d characters",
		                   COLLECTOR_NAME_MAX);
		return COLLECTOR_ERR_ARGS;
	}
	for (size_t i = 0; i < n; i++) {
		if (name[i] <= ' ' || name[i] > '~') {
			collector_set_err (err, errlen, "collector name has a space or a "
			                   "non-printable character");
			return COLLECTOR_ERR_ARGS;
		}
	}
	return COLLECTOR_OK;
}

struct collector *
collector_wrap (const char *name, const struct collector_ops *ops, void *impl, char *err,
                size_t errlen)
{
	struct collector *c;

	if (collector_check_name (name, err, errlen) != COLLECTOR_OK) {
		ops->free (impl);
		return NULL;
	}
	c = calloc (1, sizeof *c);
	if (!c) {
		collector_set_err (err, errlen, "out of memory");
		ops->free (impl);
		return NULL;
	}
	memcpy (c->name, name, strlen (name) + 1);
	c->ops = ops;
	c->impl = impl;
	collector_set_err (err, errlen, "%s", "");
	return c;
}

void
collected_clear (struct collected *c)
{
	if (!c)
		return;
	free (c->data);
	memset (c, 0, sizeof *c);
}

int
collector_run (struct collector *c, const unsigned char *nonce, size_t nonce_len,
               struct collected *out, char *err, size_t errlen)
{
	int rv;

	if (out)
		memset (out, 0, sizeof *out);
	if (!c || !out || !nonce || nonce_len == 0 || nonce_len > COLLECTOR_NONCE_MAX) {
		collector_set_err (err, errlen, "collector_run: %s",
		                   !c || !out ? "no collector or no output" :
		                   "nonce must be 1 to 64 bytes");
		return COLLECTOR_ERR_ARGS;
	}
	collector_set_err (err, errlen, "%s", "");
	rv = c->ops->run (c->impl, nonce, nonce_len, out, err, errlen);
	if (rv != COLLECTOR_OK) {
		/* The kinds leave @out empty on failure; make sure. */
		collected_clear (out);
		if (err && errlen > 0 && err[0] == '\0')
			collector_set_err (err, errlen, "%s", collector_strerror (rv));
		return rv;
	}
	if (!out->data || out->len == 0 || out->format[0] == '\0') {
		collected_clear (out);
		collector_set_err (err, errlen, "collector %s returned no evidence", c->name);
		return COLLECTOR_ERR_MALFORMED;
	}
	return COLLECTOR_OK;
}

const char *
collector_name (const struct collector *c)
{
	return c ? c->name : NULL;
}

const char *
collector_kind (const struct collector *c)
{
	return c ? c->ops->kind : NULL;
}

void
collector_free (struct collector *c)
{
	if (!c)
		return;
	c->ops->free (c->impl);
	free (c);
}
