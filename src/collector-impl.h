/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the collector kinds share (collector.c): the opaque struct
 * collector is a name and a kind's operations over its private state.
 * Private to src/collect-*.c.
 */
#ifndef P11W_COLLECTOR_IMPL_H
#define P11W_COLLECTOR_IMPL_H

#include "collector.h"

#include <stddef.h>

struct collector_ops {
	const char *kind;
	/* @out is empty and @err holds "" on entry; on failure the kind
	 * writes a message into @err and leaves @out empty. */
	int (*run) (void *impl, const unsigned char *nonce, size_t nonce_len, struct collected *out,
	            char *err, size_t errlen);
	void (*free) (void *impl);
};

/* Check @name and wrap @impl; on failure @impl is freed through @ops and
 * NULL returned with a message in @err. */
struct collector *collector_wrap (const char *name, const struct collector_ops *ops, void *impl,
                                  char *err, size_t errlen);

/* A name is 1..COLLECTOR_NAME_MAX printable ASCII characters, no spaces:
 * it goes into log lines. */
int collector_check_name (const char *name, char *err, size_t errlen);

void collector_set_err (char *err, size_t errlen, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

/* Lower-case hex of @len bytes into @dst (2 * @len + 1 bytes). */
void collector_hex (char *dst, const unsigned char *src, size_t len);

#endif /* P11W_COLLECTOR_IMPL_H */
