/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: COSE_Sign1 messages built with libcbor (not with the code
 * under test) and signed with OpenSSL, with knobs to break each part.
 * Included by test-cose.c and test-verify-eat.c; functions are static
 * inline so that a test using only some of them does not warn.
 */
#ifndef P11W_TEST_COSE_BUILD_H
#define P11W_TEST_COSE_BUILD_H

#include "cose.h"

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum build_tag { TAG_18 = 0, TAG_NONE, TAG_CWT, TAG_OTHER, TAG_CWT_ONLY };

struct build {
	EVP_PKEY *key;
	int64_t alg;               /* in the header */
	int64_t sign_alg;          /* how to sign; 0: alg */
	const unsigned char *kid;
	size_t kid_len;
	bool kid_protected;
	bool alg_unprotected;      /* alg only in the unprotected header */
	bool alg_both;             /* alg in both headers */
	bool no_alg;
	int64_t crit;              /* a crit label, 0: no crit */
	bool crit_empty;
	bool bare_map;             /* protected header as a map, not a bstr */
	const unsigned char *payload;
	size_t payload_len;
	bool nil_payload;
	const unsigned char *aad;
	size_t aad_len;
	enum build_tag tag;
	bool corrupt;              /* flip a bit of the signature */
};

static inline const EVP_MD *
build_md (int64_t alg)
{
	switch (alg) {
	case COSE_ALG_ES256:
	case COSE_ALG_PS256: return EVP_sha256 ();
	case COSE_ALG_ES384:
	case COSE_ALG_PS384: return EVP_sha384 ();
	case COSE_ALG_ES512:
	case COSE_ALG_PS512: return EVP_sha512 ();
	}
	return NULL;
}

/* Sign @tbs as COSE alg @alg does; NULL on failure. */
static inline unsigned char *
build_sign (EVP_PKEY *key, int64_t alg, const unsigned char *tbs, size_t tbs_len, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL, *raw = NULL;
	size_t len = 0;
	bool ec = alg == COSE_ALG_ES256 || alg == COSE_ALG_ES384 || alg == COSE_ALG_ES512;

	if (!ctx || EVP_DigestSignInit (ctx, &pctx, alg == COSE_ALG_EDDSA ? NULL : build_md (alg), NULL,
	                                key) != 1)
		goto out;
	if (alg == COSE_ALG_PS256 || alg == COSE_ALG_PS384 || alg == COSE_ALG_PS512) {
		if (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md (pctx, build_md (alg)) != 1)
			goto out;
	}
	if (EVP_DigestSign (ctx, NULL, &len, tbs, tbs_len) != 1)
		goto out;
	sig = malloc (len);
	if (!sig || EVP_DigestSign (ctx, sig, &len, tbs, tbs_len) != 1)
		goto out;
	if (ec) {
		size_t half = alg == COSE_ALG_ES256 ? 32 : alg == COSE_ALG_ES384 ? 48 : 66;
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG (NULL, &p, (long)len);
		raw = es ? malloc (2 * half) : NULL;
		if (!raw || BN_bn2binpad (ECDSA_SIG_get0_r (es), raw, (int)half) != (int)half ||
		    BN_bn2binpad (ECDSA_SIG_get0_s (es), raw + half, (int)half) != (int)half) {
			free (raw);
			raw = NULL;
		}
		ECDSA_SIG_free (es);
		free (sig);
		sig = raw;
		len = 2 * half;
	}
	*sig_len = len;
out:
	EVP_MD_CTX_free (ctx);
	return sig;
}

static inline unsigned char *
build_serialize (cbor_item_t *item, size_t *len)
{
	unsigned char *buf = NULL;
	size_t cap = 0;
	*len = cbor_serialize_alloc (item, &buf, &cap);
	return buf;
}

/* The COSE_Sign1 @b describes, serialized; NULL on failure. */
static inline unsigned char *
build_sign1 (const struct build *b, size_t *out_len)
{
	cbor_item_t *prot = cbor_new_definite_map (4), *unprot = cbor_new_definite_map (4);
	cbor_item_t *tbs_arr, *arr, *top;
	unsigned char *prot_bytes = NULL, *tbs = NULL, *sig = NULL, *out = NULL;
	size_t prot_len = 0, tbs_len, sig_len = 0;
	static const unsigned char empty[1];

	if (!b->no_alg) {
		cbor_item_t *target = b->alg_unprotected ? unprot : prot;
		cbor_map_add (target, (struct cbor_pair){ cbor_move (cbor_build_uint8 (1)),
		                                          cbor_move (b->alg < 0 ? cbor_build_negint64 (
		                                                                      (uint64_t)(-1 - b->alg))
		                                                                : cbor_build_uint64 (
		                                                                      (uint64_t)b->alg)) });
		if (b->alg_both)
			cbor_map_add (unprot, (struct cbor_pair){ cbor_move (cbor_build_uint8 (1)),
			                                          cbor_move (cbor_build_negint8 (6)) });
	}
	if (b->crit || b->crit_empty) {
		cbor_item_t *c = cbor_new_definite_array (1);
		if (!b->crit_empty)
			cbor_array_push (c, cbor_move (b->crit < 0 ? cbor_build_negint64 ((uint64_t)(-1 - b->crit))
			                                           : cbor_build_uint64 ((uint64_t)b->crit)));
		cbor_map_add (prot, (struct cbor_pair){ cbor_move (cbor_build_uint8 (2)), cbor_move (c) });
	}
	if (b->kid)
		cbor_map_add (b->kid_protected ? prot : unprot,
		              (struct cbor_pair){ cbor_move (cbor_build_uint8 (4)),
		                                  cbor_move (cbor_build_bytestring (b->kid, b->kid_len)) });
	if (cbor_map_size (prot) > 0)
		prot_bytes = build_serialize (prot, &prot_len);

	tbs_arr = cbor_new_definite_array (4);
	cbor_array_push (tbs_arr, cbor_move (cbor_build_string ("Signature1")));
	cbor_array_push (tbs_arr, cbor_move (cbor_build_bytestring (prot_len ? prot_bytes : empty, prot_len)));
	cbor_array_push (tbs_arr, cbor_move (cbor_build_bytestring (b->aad_len ? b->aad : empty, b->aad_len)));
	cbor_array_push (tbs_arr, cbor_move (cbor_build_bytestring (b->payload_len ? b->payload : empty,
	                                                            b->payload_len)));
	tbs = build_serialize (tbs_arr, &tbs_len);
	cbor_decref (&tbs_arr);
	if (!tbs)
		goto out;
	sig = build_sign (b->key, b->sign_alg ? b->sign_alg : b->alg, tbs, tbs_len, &sig_len);
	if (!sig)
		goto out;
	if (b->corrupt)
		sig[sig_len / 2] ^= 0x01;

	arr = cbor_new_definite_array (4);
	if (b->bare_map)
		cbor_array_push (arr, prot);
	else
		cbor_array_push (arr, cbor_move (cbor_build_bytestring (prot_len ? prot_bytes : empty, prot_len)));
	cbor_array_push (arr, unprot);
	if (b->nil_payload)
		cbor_array_push (arr, cbor_move (cbor_new_null ()));
	else
		cbor_array_push (arr, cbor_move (cbor_build_bytestring (b->payload_len ? b->payload : empty,
		                                                        b->payload_len)));
	cbor_array_push (arr, cbor_move (cbor_build_bytestring (sig, sig_len)));
	switch (b->tag) {
	case TAG_18: top = cbor_build_tag (18, cbor_move (arr)); break;
	case TAG_NONE: top = arr; break;
	case TAG_CWT: top = cbor_build_tag (61, cbor_move (cbor_build_tag (18, cbor_move (arr)))); break;
	case TAG_CWT_ONLY: top = cbor_build_tag (61, cbor_move (arr)); break;
	default: top = cbor_build_tag (98, cbor_move (arr)); break;
	}
	out = build_serialize (top, out_len);
	cbor_decref (&top);
out:
	cbor_decref (&prot);
	cbor_decref (&unprot);
	free (prot_bytes);
	free (tbs);
	free (sig);
	return out;
}

#endif /* P11W_TEST_COSE_BUILD_H */
