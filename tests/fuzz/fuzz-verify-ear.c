/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the EAR verifier (verify_ear), both forms.
 *
 * Input: flags u8, then the rest.  Flags bit 0: the rest is a payload,
 * signed here with a key generated at start, as a COSE_Sign1 (bit 1; the
 * payload is then CBOR) or a JWT (the payload is JSON), with P-384/ES384
 * if bit 2, else P-256/ES256, so that mutations reach the claim parsing.
 * Otherwise the rest is a token, checked under the same keys.  Bit 3: a
 * nonce is expected (the 16 bytes "fuzz-nonce-00001", base64url
 * ZnV6ei1ub25jZS0wMDAwMQ).  Bits 4-5: the profile (Veraison, IETF #03,
 * #04).  Bit 6: max-age 300 s.  The time is 1666529184 + 60 (the latest
 * iat of upstream's sample claims).
 */
#include "config.h"

#include "claims.h"
#include "ear-tokens.h"
#include "verify-ear.h"

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
	static const char *const profiles[] = { VERIFY_EAR_PROFILE_VERAISON, VERIFY_EAR_PROFILE_IETF_03,
		                                VERIFY_EAR_PROFILE_IETF_04, VERIFY_EAR_PROFILE_VERAISON };
	static const char *const anchors[] = { "p256", "p384" };
	static const unsigned char nonce[] = "fuzz-nonce-00001";
	struct verify_ear_input in;
	struct cose_key keys[2];
	struct claim_set *set;
	unsigned char *token = NULL;
	size_t key_index = 99;
	bool matched = true;
	char err[256];
	int flags, rv;

	if (size < 1 || size > VERIFY_EAR_MAX_SIZE || !init ())
		return 0;
	flags = data[0];
	data++;
	size--;
	keys[0] = (struct cose_key){ k256, NULL, 0 };
	keys[1] = (struct cose_key){ k384, NULL, 0 };
	memset (&in, 0, sizeof in);
	if (flags & 1) {
		EVP_PKEY *k = flags & 4 ? k384 : k256;
		size_t len = 0;
		if (size == 0)
			return 0;
		if (flags & 2) {
			token = et_cose (k, flags & 4 ? COSE_ALG_ES384 : COSE_ALG_ES256, NULL, 0, data, size,
			                 false, &len);
		} else {
			token = (unsigned char *)et_jws (flags & 4 ? "{\"alg\":\"ES384\"}" : "{\"alg\":\"ES256\"}",
			                                 data, size, flags & 4 ? "ES384" : "ES256", k, NULL, 0);
			len = token ? strlen ((char *)token) : 0;
		}
		if (!token)
			return 0;
		in.token = token;
		in.len = len;
	} else {
		if (size == 0)
			return 0;
		in.token = data;
		in.len = size;
	}
	in.keys = keys;
	in.n_keys = 2;
	in.anchor_names = anchors;
	if (flags & 8) {
		in.nonce = nonce;
		in.nonce_len = sizeof nonce - 1;
	}
	in.now = 1666529184 + 60;
	in.skew = 60;
	in.max_age = flags & 64 ? 300 : 0;
	in.profile = profiles[(flags >> 4) & 3];

	set = claim_set_new ();
	if (!set) {
		free (token);
		return 0;
	}
	rv = verify_ear (&in, set, &key_index, &matched, err, sizeof err);
	if (rv == VERIFY_EAR_OK) {
		const struct claim *f = claim_set_find (set, "evidence.format");
		const struct claim *a = claim_set_find (set, "evidence.anchor");
		if (!f || !a || key_index > 1 || matched != !!(flags & 8) ||
		    strcmp ((char *)a->v.data, anchors[key_index]) != 0 ||
		    !claim_set_find (set, "ear.profile") || !claim_set_find (set, "ear.iat"))
			abort ();
	} else if (claim_set_count (set) != 0 || !err[0] || matched || key_index != 99 || rv > 0 ||
	           !strcmp (verify_ear_strerror (rv), "unknown error")) {
		/* "unknown error" would mean a code outside the documented ones. */
		abort ();
	}
	claim_set_free (set);
	free (token);
	return 0;
}
