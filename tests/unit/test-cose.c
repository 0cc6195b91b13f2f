/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the COSE_Sign1 verifier and the bounded CBOR loader
 * (src/cose.c): the public go-cose vectors in tests/data/cose, and
 * messages built here with libcbor and signed with OpenSSL keys, one knob
 * broken per negative case so that each fails only the check it targets.
 */
#include "config.h"

#include "cose.h"
#include "cose-build.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const unsigned char payload[] = "This is the content.";

/* ---------------------------------------------------------------- vectors */

static unsigned char *
unhex (const char *s, size_t *len)
{
	size_t n = strlen (s);
	unsigned char *out;
	assert_int_equal (n % 2, 0);
	out = malloc (n / 2 + 1);
	assert_non_null (out);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		assert_int_equal (sscanf (s + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	*len = n / 2;
	return out;
}

static unsigned char *
b64url (const char *s, size_t *len)
{
	size_t n = strlen (s), o = 0;
	unsigned int acc = 0, bits = 0;
	unsigned char *out = malloc (n + 1);
	assert_non_null (out);
	for (size_t i = 0; i < n; i++) {
		const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr (tab, s[i]);
		assert_non_null (p);
		acc = acc << 6 | (unsigned int)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*len = o;
	return out;
}

/* A public JWK (EC or RSA) as an EVP_PKEY. */
static EVP_PKEY *
jwk_key (json_object *jwk)
{
	json_object *o;
	const char *kty;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new ();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	unsigned char *a, *b, pub[1 + 2 * 66];
	size_t alen, blen;
	BIGNUM *n = NULL, *e = NULL;

	assert_true (json_object_object_get_ex (jwk, "kty", &o));
	kty = json_object_get_string (o);
	if (!strcmp (kty, "EC")) {
		const char *crv;
		assert_true (json_object_object_get_ex (jwk, "crv", &o));
		crv = json_object_get_string (o);
		assert_true (json_object_object_get_ex (jwk, "x", &o));
		a = b64url (json_object_get_string (o), &alen);
		assert_true (json_object_object_get_ex (jwk, "y", &o));
		b = b64url (json_object_get_string (o), &blen);
		assert_int_equal (alen, blen);
		pub[0] = 0x04;
		memcpy (pub + 1, a, alen);
		memcpy (pub + 1 + alen, b, blen);
		assert_int_equal (OSSL_PARAM_BLD_push_utf8_string (bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0), 1);
		assert_int_equal (OSSL_PARAM_BLD_push_octet_string (bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
		                                                    1 + alen + blen),
		                  1);
		ctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
	} else {
		assert_string_equal (kty, "RSA");
		assert_true (json_object_object_get_ex (jwk, "n", &o));
		a = b64url (json_object_get_string (o), &alen);
		assert_true (json_object_object_get_ex (jwk, "e", &o));
		b = b64url (json_object_get_string (o), &blen);
		n = BN_bin2bn (a, (int)alen, NULL);
		e = BN_bin2bn (b, (int)blen, NULL);
		assert_int_equal (OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
		assert_int_equal (OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
		ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL);
	}
	params = OSSL_PARAM_BLD_to_param (bld);
	assert_non_null (params);
	assert_non_null (ctx);
	assert_int_equal (EVP_PKEY_fromdata_init (ctx), 1);
	assert_int_equal (EVP_PKEY_fromdata (ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free (ctx);
	OSSL_PARAM_free (params);
	OSSL_PARAM_BLD_free (bld);
	BN_free (n);
	BN_free (e);
	free (a);
	free (b);
	return pkey;
}

struct vector {
	EVP_PKEY *key;
	int64_t alg;
	unsigned char *msg, *aad;
	size_t len, aad_len;
	bool should_verify;
};

static void
vector_load (const char *name, struct vector *v)
{
	char path[4096];
	const char *src = getenv ("P11W_SRCDIR");
	json_object *root, *o, *ver, *t;

	memset (v, 0, sizeof *v);
	snprintf (path, sizeof path, "%s/tests/data/cose/%s", src ? src : ".", name);
	root = json_object_from_file (path);
	if (!root)
		fail_msg ("%s: missing or not JSON", path);
	assert_true (json_object_object_get_ex (root, "key", &o));
	v->key = jwk_key (o);
	assert_true (json_object_object_get_ex (root, "alg", &o));
	assert_true (cose_alg_from_name (json_object_get_string (o), &v->alg));
	assert_true (json_object_object_get_ex (root, "sign1::verify", &ver));
	assert_true (json_object_object_get_ex (ver, "taggedCOSESign1", &t));
	assert_true (json_object_object_get_ex (t, "cborHex", &o));
	v->msg = unhex (json_object_get_string (o), &v->len);
	if (json_object_object_get_ex (ver, "external", &o))
		v->aad = unhex (json_object_get_string (o), &v->aad_len);
	assert_true (json_object_object_get_ex (ver, "shouldVerify", &o));
	v->should_verify = json_object_get_boolean (o);
	json_object_put (root);
}

static void
vector_free (struct vector *v)
{
	EVP_PKEY_free (v->key);
	free (v->msg);
	free (v->aad);
}

static int
vector_verify (const struct vector *v, const unsigned char *aad, size_t aad_len,
               struct cose_sign1 *out)
{
	struct cose_key key = { v->key, NULL, 0 };
	char err[256];
	int rv = cose_sign1_verify (v->msg, v->len, 0, &key, 1, aad, aad_len, &v->alg, 1, out, err,
	                            sizeof err);
	assert_true (err[0] != '\0');
	return rv;
}

static void
test_vectors_positive (void **state)
{
	static const char *const names[] = {
		"sign1-verify-0000.json", "sign1-verify-0001.json", "sign1-verify-0002.json",
		"sign1-verify-0003.json", "sign1-verify-0004.json", "sign1-verify-0005.json",
		"sign1-verify-0006.json",
	};
	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct vector v;
		struct cose_sign1 out;
		vector_load (names[i], &v);
		assert_true (v.should_verify);
		assert_int_equal (vector_verify (&v, v.aad, v.aad_len, &out), COSE_OK);
		assert_int_equal (out.alg, v.alg);
		assert_int_equal (out.payload_len, sizeof payload - 1);
		assert_memory_equal (out.payload, payload, sizeof payload - 1);
		assert_int_equal (out.key_index, 0);
		cose_sign1_clear (&out);
		/* The AAD is signed: without it (or with it where there was
		 * none) the signature fails. */
		if (v.aad_len)
			assert_int_equal (vector_verify (&v, NULL, 0, &out), COSE_ERR_SIGNATURE);
		else
			assert_int_equal (vector_verify (&v, (const unsigned char *)"x", 1, &out),
			                  COSE_ERR_SIGNATURE);
		/* Only the message's alg may be allowed. */
		{
			struct cose_key key = { v.key, NULL, 0 };
			int64_t other = v.alg == COSE_ALG_ES256 ? COSE_ALG_ES384 : COSE_ALG_ES256;
			char err[128];
			assert_int_equal (cose_sign1_verify (v.msg, v.len, 0, &key, 1, v.aad, v.aad_len, &other,
			                                     1, &out, err, sizeof err),
			                  COSE_ERR_ALG_NOT_ALLOWED);
		}
		vector_free (&v);
	}
}

static void
test_vectors_negative (void **state)
{
	static const struct {
		const char *name;
		int rv;
	} cases[] = {
		{ "sign1-verify-negative-0000.json", COSE_ERR_PROTECTED }, /* bare map */
		{ "sign1-verify-negative-0001.json", COSE_ERR_PROTECTED }, /* bstr of a non-map */
		{ "sign1-verify-negative-0002.json", COSE_ERR_HEADER },    /* alg twice */
		{ "sign1-verify-negative-0003.json", COSE_ERR_HEADER },    /* kid twice */
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct vector v;
		struct cose_sign1 out;
		vector_load (cases[i].name, &v);
		assert_false (v.should_verify);
		assert_int_equal (vector_verify (&v, v.aad, v.aad_len, &out), cases[i].rv);
		assert_null (out.payload);
		vector_free (&v);
	}
}

/* ---------------------------------------------------------------- built */

static struct {
	EVP_PKEY *p256, *p256b, *p384, *p521, *ed25519, *ed448, *rsa, *rsa1024;
} keys;

static int
keys_setup (void **state)
{
	(void)state;
	keys.p256 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	keys.p256b = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	keys.p384 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384");
	keys.p521 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-521");
	keys.ed25519 = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
	keys.ed448 = EVP_PKEY_Q_keygen (NULL, NULL, "ED448");
	keys.rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)2048);
	keys.rsa1024 = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)1024);
	return keys.p256 && keys.p256b && keys.p384 && keys.p521 && keys.ed25519 && keys.ed448 &&
	               keys.rsa && keys.rsa1024
	           ? 0
	           : -1;
}

static int
keys_teardown (void **state)
{
	(void)state;
	EVP_PKEY_free (keys.p256);
	EVP_PKEY_free (keys.p256b);
	EVP_PKEY_free (keys.p384);
	EVP_PKEY_free (keys.p521);
	EVP_PKEY_free (keys.ed25519);
	EVP_PKEY_free (keys.ed448);
	EVP_PKEY_free (keys.rsa);
	EVP_PKEY_free (keys.rsa1024);
	return 0;
}

static struct build
defaults (EVP_PKEY *key, int64_t alg)
{
	struct build b;
	memset (&b, 0, sizeof b);
	b.key = key;
	b.alg = alg;
	b.payload = payload;
	b.payload_len = sizeof payload - 1;
	return b;
}

/* Build @b, verify it against @k (n keys) with @flags; check rv. */
static void
expect_keys (const struct build *b, unsigned int flags, const struct cose_key *k, size_t n,
             const int64_t *algs, size_t n_algs, int want, struct cose_sign1 *keep)
{
	struct cose_sign1 out;
	char err[256];
	size_t len;
	unsigned char *msg = build_sign1 (b, &len);
	int rv;

	assert_non_null (msg);
	memset (err, 0, sizeof err);
	rv = cose_sign1_verify (msg, len, flags, k, n, b->aad, b->aad_len, algs, n_algs, &out, err,
	                        sizeof err);
	if (rv != want)
		fail_msg ("expected %d (%s), got %d: %s", want, cose_strerror (want), rv, err);
	assert_true (err[0] != '\0');
	if (rv == COSE_OK) {
		assert_int_equal (out.payload_len, b->payload_len);
		assert_memory_equal (out.payload, b->payload, b->payload_len);
		assert_int_equal (out.alg, b->alg);
	} else {
		assert_null (out.payload);
		assert_null (out.kid);
	}
	if (keep)
		*keep = out;
	else
		cose_sign1_clear (&out);
	free (msg);
}

static void
expect (const struct build *b, unsigned int flags, int want)
{
	struct cose_key k = { b->key, NULL, 0 };
	expect_keys (b, flags, &k, 1, NULL, 0, want, NULL);
}

static void
test_algs (void **state)
{
	const struct {
		EVP_PKEY **key;
		int64_t alg;
	} cases[] = {
		{ &keys.p256, COSE_ALG_ES256 },  { &keys.p384, COSE_ALG_ES384 },
		{ &keys.p521, COSE_ALG_ES512 },  { &keys.ed25519, COSE_ALG_EDDSA },
		{ &keys.ed448, COSE_ALG_EDDSA }, { &keys.rsa, COSE_ALG_PS256 },
		{ &keys.rsa, COSE_ALG_PS384 },   { &keys.rsa, COSE_ALG_PS512 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct build b = defaults (*cases[i].key, cases[i].alg);
		expect (&b, 0, COSE_OK);
		b.corrupt = true;
		expect (&b, 0, COSE_ERR_SIGNATURE);
		b.corrupt = false;
		b.aad = (const unsigned char *)"aad";
		b.aad_len = 3;
		expect (&b, 0, COSE_OK);
	}
	/* An empty payload is a payload. */
	{
		struct build b = defaults (keys.p256, COSE_ALG_ES256);
		b.payload_len = 0;
		expect (&b, 0, COSE_OK);
	}
}

static void
test_names (void **state)
{
	int64_t alg = 0;
	(void)state;
	assert_string_equal (cose_alg_name (COSE_ALG_ES256), "ES256");
	assert_string_equal (cose_alg_name (COSE_ALG_PS512), "PS512");
	assert_string_equal (cose_alg_name (COSE_ALG_EDDSA), "EdDSA");
	assert_null (cose_alg_name (-257));
	assert_true (cose_alg_from_name ("ES384", &alg));
	assert_int_equal (alg, COSE_ALG_ES384);
	assert_false (cose_alg_from_name ("RS256", &alg));
	assert_false (cose_alg_from_name ("es256", &alg));
	assert_false (cose_alg_from_name (NULL, &alg));
	assert_string_equal (cose_strerror (COSE_ERR_CRIT), "critical header parameter not understood");
	assert_string_equal (cose_strerror (12345), "unknown error");
}

static void
test_keys (void **state)
{
	static const unsigned char kid_a[] = "a", kid_b[] = "b";
	struct build b = defaults (keys.p256b, COSE_ALG_ES256);
	struct cose_key ks[3];
	struct cose_sign1 out;
	(void)state;

	/* The first key that verifies wins; its index is reported. */
	ks[0] = (struct cose_key){ keys.p256, NULL, 0 };
	ks[1] = (struct cose_key){ keys.p256b, NULL, 0 };
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_OK, &out);
	assert_int_equal (out.key_index, 1);
	assert_null (out.kid);
	cose_sign1_clear (&out);

	/* Wrong key. */
	expect_keys (&b, 0, ks, 1, NULL, 0, COSE_ERR_SIGNATURE, NULL);

	/* kid selects: keys with another kid are not tried. */
	b.kid = kid_b;
	b.kid_len = 1;
	ks[0] = (struct cose_key){ keys.p256, kid_a, 1 };
	ks[1] = (struct cose_key){ keys.p256b, kid_b, 1 };
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_OK, &out);
	assert_int_equal (out.key_index, 1);
	assert_int_equal (out.kid_len, 1);
	assert_memory_equal (out.kid, "b", 1);
	cose_sign1_clear (&out);
	/* Protected kid: the same. */
	b.kid_protected = true;
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_OK, NULL);
	b.kid_protected = false;

	/* Wrong kid: no key. */
	expect_keys (&b, 0, ks, 1, NULL, 0, COSE_ERR_NO_KEY, NULL);
	/* A kid'd message still uses a key without a kid. */
	ks[2] = (struct cose_key){ keys.p256b, NULL, 0 };
	expect_keys (&b, 0, &ks[2], 1, NULL, 0, COSE_OK, NULL);
	/* The key the kid names is of another type than alg. */
	ks[1] = (struct cose_key){ keys.p384, kid_b, 1 };
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_ERR_KEY_MISMATCH, NULL);
	/* A kid'd key with the right kid but the wrong key. */
	ks[1] = (struct cose_key){ keys.p256, kid_b, 1 };
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_ERR_SIGNATURE, NULL);
	/* No kid in the message: every key is tried, kid or not. */
	b.kid = NULL;
	b.kid_len = 0;
	ks[1] = (struct cose_key){ keys.p256b, kid_b, 1 };
	expect_keys (&b, 0, ks, 2, NULL, 0, COSE_OK, NULL);

	/* kid longer than COSE_KID_MAX, or not a bstr. */
	{
		unsigned char big[COSE_KID_MAX + 1];
		memset (big, 'k', sizeof big);
		b.kid = big;
		b.kid_len = sizeof big;
		expect (&b, 0, COSE_ERR_HEADER);
		b.kid = NULL;
		b.kid_len = 0;
	}
	/* No keys at all. */
	expect_keys (&b, 0, NULL, 0, NULL, 0, COSE_ERR_NO_KEY, NULL);
}

static void
test_alg_key_mismatch (void **state)
{
	struct build b;
	struct cose_key k;
	(void)state;

	/* ES256 message, P-384 key: no key fits the alg. */
	b = defaults (keys.p256, COSE_ALG_ES256);
	k = (struct cose_key){ keys.p384, NULL, 0 };
	expect_keys (&b, 0, &k, 1, NULL, 0, COSE_ERR_NO_KEY, NULL);
	/* EdDSA message checked with an EC key, PS256 with Ed25519. */
	b = defaults (keys.ed25519, COSE_ALG_EDDSA);
	k = (struct cose_key){ keys.p256, NULL, 0 };
	expect_keys (&b, 0, &k, 1, NULL, 0, COSE_ERR_NO_KEY, NULL);
	b = defaults (keys.rsa, COSE_ALG_PS256);
	k = (struct cose_key){ keys.ed25519, NULL, 0 };
	expect_keys (&b, 0, &k, 1, NULL, 0, COSE_ERR_NO_KEY, NULL);
	/* RSA under 2048 bits does not fit PS256. */
	b = defaults (keys.rsa1024, COSE_ALG_PS256);
	expect (&b, 0, COSE_ERR_NO_KEY);
	/* ES384 in the header, signed as ES256 (64 bytes): wrong length. */
	b = defaults (keys.p384, COSE_ALG_ES384);
	b.sign_alg = COSE_ALG_ES256;
	{
		/* Sign with a P-256 key but verify with the P-384 one. */
		struct build c = b;
		c.key = keys.p256;
		k = (struct cose_key){ keys.p384, NULL, 0 };
		expect_keys (&c, 0, &k, 1, NULL, 0, COSE_ERR_SIG_LENGTH, NULL);
	}
	/* Ed448 signature (114 bytes) under an Ed25519 key. */
	b = defaults (keys.ed448, COSE_ALG_EDDSA);
	k = (struct cose_key){ keys.ed25519, NULL, 0 };
	expect_keys (&b, 0, &k, 1, NULL, 0, COSE_ERR_SIG_LENGTH, NULL);
}

static void
test_alg_header (void **state)
{
	struct build b = defaults (keys.p256, COSE_ALG_ES256);
	int64_t only384 = COSE_ALG_ES384;
	struct cose_key k = { keys.p256, NULL, 0 };
	(void)state;

	/* Unknown algorithms: RS256 (not supported), a made-up one. */
	b.alg = -257;
	b.sign_alg = COSE_ALG_ES256;
	expect (&b, 0, COSE_ERR_ALG_UNKNOWN);
	b.alg = 42;
	expect (&b, 0, COSE_ERR_ALG_UNKNOWN);
	b = defaults (keys.p256, COSE_ALG_ES256);
	/* Not in the caller's allow-list. */
	expect_keys (&b, 0, &k, 1, &only384, 1, COSE_ERR_ALG_NOT_ALLOWED, NULL);
	/* alg only in the unprotected header: not signed, so missing. */
	b.alg_unprotected = true;
	expect (&b, 0, COSE_ERR_ALG_MISSING);
	b.alg_unprotected = false;
	/* No alg at all (empty protected header). */
	b.no_alg = true;
	expect (&b, 0, COSE_ERR_ALG_MISSING);
	b.no_alg = false;
	/* alg in both buckets. */
	b.alg_both = true;
	expect (&b, 0, COSE_ERR_HEADER);
}

static void
test_crit (void **state)
{
	static const unsigned char kid[] = "k";
	struct build b = defaults (keys.p256, COSE_ALG_ES256);
	(void)state;

	/* crit naming alg: understood and present. */
	b.crit = 1;
	expect (&b, 0, COSE_OK);
	/* crit naming an unknown label. */
	b.crit = 99;
	expect (&b, 0, COSE_ERR_CRIT);
	b.crit = -70000;
	expect (&b, 0, COSE_ERR_CRIT);
	/* crit naming content type (not processed here). */
	b.crit = 3;
	expect (&b, 0, COSE_ERR_CRIT);
	/* crit naming kid, which is only in the unprotected header. */
	b.crit = 4;
	b.kid = kid;
	b.kid_len = 1;
	expect (&b, 0, COSE_ERR_HEADER);
	b.kid_protected = true;
	expect (&b, 0, COSE_OK);
	/* An empty crit array. */
	b.crit = 0;
	b.crit_empty = true;
	expect (&b, 0, COSE_ERR_HEADER);
}

static void
test_structure (void **state)
{
	struct build b = defaults (keys.p256, COSE_ALG_ES256);
	struct cose_key k = { keys.p256, NULL, 0 };
	struct cose_sign1 out;
	(void)state;

	/* Protected header as a bare map. */
	b.bare_map = true;
	expect (&b, 0, COSE_ERR_PROTECTED);
	b.bare_map = false;
	/* Detached payload. */
	b.nil_payload = true;
	expect (&b, 0, COSE_ERR_DETACHED);
	b.nil_payload = false;
	/* Tags. */
	b.tag = TAG_OTHER;
	expect (&b, COSE_ALLOW_CWT_TAG | COSE_ALLOW_UNTAGGED, COSE_ERR_TAG);
	b.tag = TAG_NONE;
	expect (&b, 0, COSE_ERR_TAG);
	expect (&b, COSE_ALLOW_UNTAGGED, COSE_OK);
	b.tag = TAG_CWT;
	expect (&b, 0, COSE_ERR_TAG);
	expect_keys (&b, COSE_ALLOW_CWT_TAG, &k, 1, NULL, 0, COSE_OK, &out);
	assert_true (out.had_cwt_tag);
	cose_sign1_clear (&out);
	/* 61 straight around the array: refused even when untagged is fine. */
	b.tag = TAG_CWT_ONLY;
	expect (&b, COSE_ALLOW_CWT_TAG | COSE_ALLOW_UNTAGGED, COSE_ERR_TAG);
}

/* Raw bytes against one key; returns rv. */
static int
verify_raw (const unsigned char *msg, size_t len)
{
	struct cose_key k = { keys.p256, NULL, 0 };
	struct cose_sign1 out;
	char err[256];
	int rv = cose_sign1_verify (msg, len, COSE_ALLOW_UNTAGGED, &k, 1, NULL, 0, NULL, 0, &out, err,
	                            sizeof err);
	assert_true (err[0] != '\0');
	assert_null (out.payload);
	return rv;
}

static void
test_cbor_limits (void **state)
{
	struct build b = defaults (keys.p256, COSE_ALG_ES256);
	unsigned char *msg, *big;
	size_t len;
	(void)state;

	msg = build_sign1 (&b, &len);
	assert_non_null (msg);
	/* Cut inside the signature's bytes: its declared length is more
	 * than the input holds. */
	assert_int_equal (verify_raw (msg, len - 1), COSE_ERR_CBOR_LIMIT);
	/* Cut after the tag: the item is missing. */
	assert_int_equal (verify_raw (msg, 1), COSE_ERR_CBOR);
	/* Cut inside a head (a 2-byte bstr head, inside an array that the
	 * byte left could hold). */
	{
		static const unsigned char cut[] = { 0xd2, 0x81, 0x58 };
		assert_int_equal (verify_raw (cut, sizeof cut), COSE_ERR_CBOR);
	}
	/* Trailing bytes. */
	big = malloc (len + 1);
	assert_non_null (big);
	memcpy (big, msg, len);
	big[len] = 0x00;
	assert_int_equal (verify_raw (big, len + 1), COSE_ERR_CBOR);
	free (big);
	/* Empty and oversized. */
	assert_int_equal (verify_raw (msg, 0), COSE_ERR_SIZE);
	big = calloc (1, COSE_MAX_SIZE + 1);
	assert_non_null (big);
	assert_int_equal (verify_raw (big, COSE_MAX_SIZE + 1), COSE_ERR_SIZE);
	free (big);
	free (msg);

	/* Indefinite-length array, map, bstr. */
	{
		static const unsigned char a[] = { 0xd2, 0x9f, 0xff };
		static const unsigned char m[] = { 0xd2, 0x84, 0x40, 0xbf, 0xff, 0x40, 0x40 };
		static const unsigned char s[] = { 0xd2, 0x84, 0x5f, 0xff, 0xa0, 0x40, 0x40 };
		assert_int_equal (verify_raw (a, sizeof a), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (m, sizeof m), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (s, sizeof s), COSE_ERR_CBOR_LIMIT);
	}
	/* Absurd declared lengths: an array of 2^64-1 items, a map of 2^32
	 * pairs, a bstr of 2^63 bytes, an array of 5 items in 4 bytes. */
	{
		static const unsigned char a[] = { 0xd2, 0x9b, 0xff, 0xff, 0xff, 0xff,
			                           0xff, 0xff, 0xff, 0xff, 0x00 };
		static const unsigned char m[] = { 0xd2, 0xba, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 };
		static const unsigned char s[] = { 0xd2, 0x84, 0x5b, 0x80, 0x00, 0x00, 0x00,
			                           0x00, 0x00, 0x00, 0x00, 0x00 };
		static const unsigned char n[] = { 0x85, 0x00, 0x00, 0x00, 0x00 };
		/* Two siblings whose lengths fit alone but not together. */
		static const unsigned char sib[] = { 0x82, 0x83, 0x00, 0x00, 0x00 };
		assert_int_equal (verify_raw (a, sizeof a), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (m, sizeof m), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (s, sizeof s), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (n, sizeof n), COSE_ERR_CBOR_LIMIT);
		assert_int_equal (verify_raw (sib, sizeof sib), COSE_ERR_CBOR_LIMIT);
	}
	/* Too deep: 17 nested arrays; 16 are fine for the loader. */
	{
		unsigned char deep[40];
		char err[128];
		cbor_item_t *it;
		memset (deep, 0x81, sizeof deep);
		deep[COSE_CBOR_MAX_DEPTH + 1] = 0x00;
		assert_int_equal (verify_raw (deep, COSE_CBOR_MAX_DEPTH + 2), COSE_ERR_CBOR_LIMIT);
		deep[COSE_CBOR_MAX_DEPTH] = 0x00;
		it = cose_cbor_load (deep, COSE_CBOR_MAX_DEPTH + 1, err, sizeof err);
		assert_non_null (it);
		cbor_decref (&it);
		/* Tags count as nesting too. */
		memset (deep, 0xc1, sizeof deep);
		deep[COSE_CBOR_MAX_DEPTH + 1] = 0x00;
		assert_int_equal (cose_cbor_check (deep, COSE_CBOR_MAX_DEPTH + 2, err, sizeof err),
		                  COSE_ERR_CBOR_LIMIT);
	}
	/* Not well-formed: a reserved head, a stray break. */
	{
		static const unsigned char r[] = { 0xd2, 0x1c };
		static const unsigned char brk[] = { 0xd2, 0xff };
		assert_int_equal (verify_raw (r, sizeof r), COSE_ERR_CBOR);
		assert_int_equal (verify_raw (brk, sizeof brk), COSE_ERR_CBOR);
	}
	/* Structure: not an array of 4, payload of the wrong type,
	 * unprotected header not a map. */
	{
		static const unsigned char three[] = { 0xd2, 0x83, 0x40, 0xa0, 0x40 };
		static const unsigned char pint[] = { 0xd2, 0x84, 0x40, 0xa0, 0x01, 0x40 };
		static const unsigned char uarr[] = { 0xd2, 0x84, 0x40, 0x80, 0x40, 0x40 };
		static const unsigned char pnum[] = { 0xd2, 0x84, 0x01, 0xa0, 0x40, 0x40 };
		/* protected = bstr holding an array */
		static const unsigned char parr[] = { 0xd2, 0x84, 0x41, 0x80, 0xa0, 0x40, 0x40 };
		/* protected = bstr holding trailing garbage after a map */
		static const unsigned char ptrail[] = { 0xd2, 0x84, 0x42, 0xa0, 0x00, 0xa0, 0x40, 0x40 };
		/* unprotected label of the wrong type (a bstr) */
		static const unsigned char ulabel[] = { 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26,
			                                0xa1, 0x40, 0x00, 0x40, 0x40 };
		/* A float where the payload goes: libcbor 0.8's own
		 * cbor_is_null() would abort on it (fuzz find). */
		static const unsigned char pfloat[] = { 0xd2, 0x84, 0x40, 0xa0, 0xf9, 0x3c, 0x00, 0x40 };
		assert_int_equal (verify_raw (pfloat, sizeof pfloat), COSE_ERR_STRUCTURE);
		assert_int_equal (verify_raw (three, sizeof three), COSE_ERR_STRUCTURE);
		assert_int_equal (verify_raw (pint, sizeof pint), COSE_ERR_STRUCTURE);
		assert_int_equal (verify_raw (uarr, sizeof uarr), COSE_ERR_STRUCTURE);
		assert_int_equal (verify_raw (pnum, sizeof pnum), COSE_ERR_PROTECTED);
		assert_int_equal (verify_raw (parr, sizeof parr), COSE_ERR_PROTECTED);
		assert_int_equal (verify_raw (ptrail, sizeof ptrail), COSE_ERR_PROTECTED);
		assert_int_equal (verify_raw (ulabel, sizeof ulabel), COSE_ERR_HEADER);
	}
}

static void
test_loader (void **state)
{
	char err[128];
	cbor_item_t *it;
	unsigned char *many;
	(void)state;

	/* Trailing bytes are refused by the loader itself. */
	{
		static const unsigned char two[] = { 0x01, 0x02 };
		assert_null (cose_cbor_load (two, sizeof two, err, sizeof err));
		assert_non_null (strstr (err, "trailing"));
		it = cose_cbor_load (two, 1, err, sizeof err);
		assert_non_null (it);
		assert_true (cbor_isa_uint (it));
		cbor_decref (&it);
	}
	/* More items than COSE_CBOR_MAX_ITEMS, though each is one byte. */
	many = malloc (3 + COSE_CBOR_MAX_ITEMS);
	assert_non_null (many);
	many[0] = 0x99;
	many[1] = (unsigned char)(COSE_CBOR_MAX_ITEMS >> 8);
	many[2] = (unsigned char)(COSE_CBOR_MAX_ITEMS & 0xff);
	memset (many + 3, 0, COSE_CBOR_MAX_ITEMS);
	assert_int_equal (cose_cbor_check (many, 3 + COSE_CBOR_MAX_ITEMS, err, sizeof err),
	                  COSE_ERR_CBOR_LIMIT);
	/* One fewer is fine. */
	many[1] = (unsigned char)((COSE_CBOR_MAX_ITEMS - 1) >> 8);
	many[2] = (unsigned char)((COSE_CBOR_MAX_ITEMS - 1) & 0xff);
	assert_int_equal (cose_cbor_check (many, 3 + COSE_CBOR_MAX_ITEMS - 1, err, sizeof err), COSE_OK);
	free (many);
	/* Integers. */
	{
		static const unsigned char neg[] = { 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		static const unsigned char toobig[] = { 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0 };
		int64_t v;
		it = cose_cbor_load (neg, sizeof neg, err, sizeof err);
		assert_non_null (it);
		assert_true (cose_cbor_get_int (it, &v));
		assert_true (v == INT64_MIN);
		cbor_decref (&it);
		it = cose_cbor_load (toobig, sizeof toobig, err, sizeof err);
		assert_non_null (it);
		assert_false (cose_cbor_get_int (it, &v));
		cbor_decref (&it);
	}
}

static void
test_raw_to_der (void **state)
{
	unsigned char sig[132], der[160];
	(void)state;
	memset (sig, 0x7f, sizeof sig);
	assert_true (cose_ecdsa_raw_to_der (sig, 32, der, sizeof der) > 64);
	assert_true (cose_ecdsa_raw_to_der (sig, 66, der, sizeof der) > 132);
	/* Too small an output buffer, a zero or oversized half. */
	assert_int_equal (cose_ecdsa_raw_to_der (sig, 32, der, 10), 0);
	assert_int_equal (cose_ecdsa_raw_to_der (sig, 0, der, sizeof der), 0);
	assert_int_equal (cose_ecdsa_raw_to_der (sig, 67, der, sizeof der), 0);
	assert_int_equal (cose_ecdsa_raw_to_der (NULL, 32, der, sizeof der), 0);
}

static void
test_args (void **state)
{
	struct build b = defaults (keys.p256, COSE_ALG_ES256);
	struct cose_key k = { keys.p256, NULL, 0 }, nokey = { NULL, NULL, 0 };
	struct cose_sign1 out;
	unsigned char *msg;
	size_t len;
	char err[64];
	(void)state;

	msg = build_sign1 (&b, &len);
	assert_non_null (msg);
	assert_int_equal (cose_sign1_verify (NULL, len, 0, &k, 1, NULL, 0, NULL, 0, &out, err, sizeof err),
	                  COSE_ERR_ARGS);
	assert_int_equal (cose_sign1_verify (msg, len, 0, &k, 1, NULL, 0, NULL, 0, NULL, err, sizeof err),
	                  COSE_ERR_ARGS);
	assert_int_equal (cose_sign1_verify (msg, len, 0, &nokey, 1, NULL, 0, NULL, 0, &out, err,
	                                     sizeof err),
	                  COSE_ERR_ARGS);
	assert_int_equal (cose_sign1_verify (msg, len, 0x80, &k, 1, NULL, 0, NULL, 0, &out, err, sizeof err),
	                  COSE_ERR_ARGS);
	assert_int_equal (cose_sign1_verify (msg, len, 0, &k, 1, NULL, 3, NULL, 0, &out, err, sizeof err),
	                  COSE_ERR_ARGS);
	/* A short err buffer still ends in NUL; a NULL one is fine. */
	assert_int_equal (cose_sign1_verify (msg, len - 1, 0, &k, 1, NULL, 0, NULL, 0, &out, err, 4),
	                  COSE_ERR_CBOR_LIMIT);
	assert_int_equal (strlen (err), 3);
	assert_int_equal (cose_sign1_verify (msg, len, 0, &k, 1, NULL, 0, NULL, 0, &out, NULL, 0), COSE_OK);
	cose_sign1_clear (&out);
	cose_sign1_clear (NULL);
	free (msg);
}

int
main (void)
{
	const struct CMUnitTest vectors[] = {
		cmocka_unit_test (test_vectors_positive),
		cmocka_unit_test (test_vectors_negative),
	};
	const struct CMUnitTest built[] = {
		cmocka_unit_test (test_names),
		cmocka_unit_test (test_algs),
		cmocka_unit_test (test_keys),
		cmocka_unit_test (test_alg_key_mismatch),
		cmocka_unit_test (test_alg_header),
		cmocka_unit_test (test_crit),
		cmocka_unit_test (test_structure),
		cmocka_unit_test (test_cbor_limits),
		cmocka_unit_test (test_loader),
		cmocka_unit_test (test_raw_to_der),
		cmocka_unit_test (test_args),
	};
	int rv = cmocka_run_group_tests_name ("go-cose-vectors", vectors, NULL, NULL);
	rv |= cmocka_run_group_tests_name ("built", built, keys_setup, keys_teardown);
	return rv;
}
