/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the configuration parser (conf_parse). */
#include "config.h"

#include "conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct conf c;
	char err[1024];
	char *text;

	if (size > CONF_MAX_SIZE)
		return 0; /* conf_load refuses larger files before parsing */
	text = malloc (size + 1);
	if (!text)
		return 0;
	memcpy (text, data, size);
	text[size] = '\0';
	if (conf_parse ("fuzz.conf", text, &c, err, sizeof err)) {
		/* A configuration that loads is complete. */
		for (size_t i = 0; i < c.n_slots; i++) {
			if (!c.slots[i].module || !c.slots[i].token.uri || !c.slots[i].pin_file)
				abort ();
		}
	} else if (err[0] == '\0') {
		abort (); /* every refusal says why */
	}
	conf_free (&c);
	free (text);
	return 0;
}
