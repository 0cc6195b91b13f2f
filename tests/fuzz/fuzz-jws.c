/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the JWS compact verifier (jws_verify) and the strict
 * JSON reader (jws_json_parse).
 *
 * Input: flags u8, then the rest.  Flags bit 0: the rest is {header_len
 * u8, header JSON, payload}, made into a token here and signed with a
 * P-256 key generated at start (ES256; P-384 and ES384 with bit 1), so
 * that mutations of the header reach the checks after the signature.
 * Otherwise the rest is a token, checked under the same keys.  Bit 2: the
 * rest is also given to jws_json_parse.  Bit 3: the keys carry kids.
 */
#include "config.h"

#include "ear-tokens.h"
#include "jws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static EVP_PKEY *k256, *k384;

static bool
init (void)
{
	if (k256 && k384)
		return true;
	k256 = et_keygen ("P-256");
	k384 = et_keygen ("P-384");
	return k256 && k384;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct cose_key keys[2];
	struct jws_result r;
	char err[256], *header = NULL, *token = NULL;
	const char *tok;
	size_t len;
	int flags, rv;

	if (size < 1 || size > JWS_MAX_SIZE + 16 || !init ())
		return 0;
	flags = data[0];
	data++;
	size--;
	keys[0] = (struct cose_key){ k256, flags & 8 ? (const unsigned char *)"k256" : NULL,
		                     flags & 8 ? 4 : 0 };
	keys[1] = (struct cose_key){ k384, flags & 8 ? (const unsigned char *)"k384" : NULL,
		                     flags & 8 ? 4 : 0 };

	if (flags & 4) {
		json_object *o = jws_json_parse (data, size, err, sizeof err);
		if (!o && !err[0])
			abort ();
		json_object_put (o);
	}
	if (flags & 1) {
		size_t hlen;
		if (size < 1)
			return 0;
		hlen = data[0];
		if (hlen > size - 1)
			return 0;
		header = malloc (hlen + 1);
		if (!header)
			return 0;
		memcpy (header, data + 1, hlen);
		header[hlen] = '\0';
		/* A header holding NUL would be cut here: that is a test of
		 * nothing, and et_jws takes a C string. */
		if (strlen (header) != hlen) {
			free (header);
			return 0;
		}
		token = et_jws (header, data + 1 + hlen, size - 1 - hlen, flags & 2 ? "ES384" : "ES256",
		                flags & 2 ? k384 : k256, NULL, 0);
		free (header);
		if (!token)
			return 0;
		tok = token;
		len = strlen (token);
	} else {
		tok = (const char *)data;
		len = size;
	}
	rv = jws_verify (tok, len, keys, 2, &r, err, sizeof err);
	if (rv == JWS_OK) {
		if (!r.payload || r.payload_len == 0 || r.payload[r.payload_len] != '\0' ||
		    r.key_index > 1 || (r.alg != JWS_ALG_ES256 && r.alg != JWS_ALG_ES384) ||
		    (r.kid && strlen (r.kid) != r.kid_len))
			abort ();
	} else if (!err[0] || rv > 0 || rv < JWS_ERR_CRYPTO || r.payload || r.kid) {
		abort ();
	}
	jws_result_clear (&r);
	free (token);
	return 0;
}
