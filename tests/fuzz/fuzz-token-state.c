/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the token state file parser (token_state_parse). */
#include "config.h"

#include "token-state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct token_state st;
	char *text;

	if (size > 8192)
		return 0; /* read_state refuses larger files */
	text = malloc (size + 1);
	if (!text)
		return 0;
	memcpy (text, data, size);
	text[size] = '\0';
	if (token_state_parse (text, &st)) {
		/* A state that parses has an SO PIN hash, NUL-terminated fields. */
		if (!st.so_pin[0] || strlen (st.so_pin) >= PIN_HASH_MAX ||
		    strlen (st.user_pin) >= PIN_HASH_MAX)
			abort ();
		(void)pin_verify ((CK_UTF8CHAR_PTR) "1234", 4, st.so_pin);
	}
	free (text);
	return 0;
}
