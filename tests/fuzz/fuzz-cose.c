/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the bounded CBOR loader and the COSE_Sign1 verifier
 * (src/cose.c).
 *
 * Input: flags u8, then
 * - flags bit 0 clear: the rest is the message, verified against three
 *   keys generated at start (P-256 with kid "k1", Ed25519, RSA-2048), with
 *   COSE_ALLOW_UNTAGGED if bit 1 is set and COSE_ALLOW_CWT_TAG if bit 2 is,
 *   the AAD "aad" if bit 3 is;
 * - bit 0 set: prot_len u8, the protected header bytes, then the payload;
 *   they are wrapped in a tag-18 message signed here by the key bits 4-5
 *   pick (P-256 ES256, Ed25519, RSA PS256), so that mutations of the
 *   header reach the checks after the signature.
 * The rest is also fed to cose_cbor_load().
 */
#include "config.h"

#include "cose.h"
#include "fuzz-sign.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static EVP_PKEY *p256, *ed25519, *rsa;

static bool
init (void)
{
	if (p256 && ed25519 && rsa)
		return true;
	p256 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	ed25519 = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
	rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)2048);
	return p256 && ed25519 && rsa;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	static const int algs[] = { -7, -8, -37, -7 };
	struct cose_key keys[3];
	struct cose_sign1 out;
	const unsigned char *msg;
	unsigned char *signed_msg = NULL;
	size_t len;
	unsigned int flags = 0;
	char err[256];
	cbor_item_t *item;
	int f, rv;

	if (size < 1 || size > COSE_MAX_SIZE + 16 || !init ())
		return 0;
	f = data[0];
	data++;
	size--;

	/* The loader alone: NULL or one item, whose bytes were all read. */
	item = cose_cbor_load (data, size, err, sizeof err);
	if (!err[0])
		abort ();
	if (item)
		cbor_decref (&item);

	keys[0] = (struct cose_key){ p256, (const unsigned char *)"k1", 2 };
	keys[1] = (struct cose_key){ ed25519, NULL, 0 };
	keys[2] = (struct cose_key){ rsa, NULL, 0 };
	if (f & 1) {
		size_t plen;
		int alg = algs[(f >> 4) & 3];
		EVP_PKEY *k = alg == -7 ? p256 : alg == -8 ? ed25519 : rsa;
		if (size < 1)
			return 0;
		plen = data[0];
		if (plen > size - 1)
			return 0;
		signed_msg = fz_sign1 (k, alg, data + 1, plen, data + 1 + plen, size - 1 - plen, &len);
		if (!signed_msg)
			return 0;
		msg = signed_msg;
	} else {
		msg = data;
		len = size;
		if (f & 2)
			flags |= COSE_ALLOW_UNTAGGED;
		if (f & 4)
			flags |= COSE_ALLOW_CWT_TAG;
	}
	memset (err, 0, sizeof err);
	rv = cose_sign1_verify (msg, len, flags, keys, 3, (f & 8) ? (const unsigned char *)"aad" : NULL,
	                        (f & 8) ? 3 : 0, NULL, 0, &out, err, sizeof err);
	if (!err[0] || rv > 0 || rv < COSE_ERR_CRYPTO)
		abort ();
	if (rv == COSE_OK) {
		if (!out.payload || out.key_index >= 3 || !cose_alg_name (out.alg) ||
		    (out.kid && out.kid_len > COSE_KID_MAX))
			abort ();
	} else if (out.payload || out.kid || out.payload_len) {
		abort ();
	}
	cose_sign1_clear (&out);
	free (signed_msg);
	return 0;
}
