/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the EAT verifier (verify_eat).
 *
 * Input: flags u8, then
 * - flags bit 0 set: the rest is the claims payload, wrapped here in a
 *   tag-18 COSE_Sign1 signed ES256 by a P-256 key generated at start, so
 *   that mutations of the claims get past the signature;
 * - bit 0 clear: the rest is the token itself.
 * The challenge is "0123456789abcdef" unless bit 1 is set (no nonce
 * expected); bit 2 requires the profile "tag:p11-warden.example,2025:fuzz";
 * bit 3 sets max_iat_age to an hour.  now is 1750000000, skew 60 s.
 */
#include "config.h"

#include "claims.h"
#include "cose.h"
#include "fuzz-sign.h"
#include "verify-eat.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static EVP_PKEY *signer;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	static const unsigned char prot[] = { 0xa1, 0x01, 0x26 }; /* {1: -7} */
	static const char *const anchors[] = { "fuzz-anchor" };
	struct verify_eat_input in;
	struct cose_key key;
	struct claim_set *set;
	unsigned char *tok = NULL;
	size_t len, idx = 7;
	bool matched = true;
	char err[256];
	int f, rv;

	if (size < 1 || size > COSE_MAX_SIZE + 16)
		return 0;
	if (!signer && !(signer = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256")))
		return 0;
	f = data[0];
	data++;
	size--;
	if (f & 1) {
		tok = fz_sign1 (signer, -7, prot, sizeof prot, data, size, &len);
		if (!tok)
			return 0;
	}
	key = (struct cose_key){ signer, NULL, 0 };
	memset (&in, 0, sizeof in);
	in.token = tok ? tok : data;
	in.len = tok ? len : size;
	in.keys = &key;
	in.n_keys = 1;
	in.anchor_names = anchors;
	if (!(f & 2)) {
		in.nonce = (const unsigned char *)"0123456789abcdef";
		in.nonce_len = 16;
	}
	if (f & 4)
		in.profile = "tag:p11-warden.example,2025:fuzz";
	if (f & 8)
		in.max_iat_age = 3600;
	in.now = 1750000000;
	in.skew = 60;

	set = claim_set_new ();
	if (!set) {
		free (tok);
		return 0;
	}
	memset (err, 0, sizeof err);
	rv = verify_eat (&in, set, &idx, &matched, err, sizeof err);
	if (!err[0] || rv > 0 || rv < VERIFY_EAT_ERR_CRYPTO)
		abort ();
	if (rv == VERIFY_EAT_OK) {
		const struct claim *c = claim_set_find (set, "evidence.format");
		if (!c || c->v.len != 3 || idx != 0 || matched != !(f & 2) || !claim_set_find (set, "eat.iat"))
			abort ();
	} else if (claim_set_count (set) != 0 || matched || idx != 0) {
		abort ();
	}
	claim_set_free (set);
	free (tok);
	return 0;
}
