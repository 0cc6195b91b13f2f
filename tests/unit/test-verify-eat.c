/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the EAT verifier (src/verify-eat.c): tokens built here
 * with libcbor and signed with OpenSSL keys, from one good claims set
 * with one claim changed per negative case, so that each fails only the
 * check it targets.  Also times the appraisal of an ES256 token.
 */
#include "config.h"

#include "claims.h"
#include "cose.h"
#include "cose-build.h"
#include "verify-eat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define NOW INT64_C(1750000000)
#define PROFILE "tag:p11-warden.example,2025:eat-test"

static const unsigned char nonce[16] = "0123456789abcdef";
static const unsigned char ueid[17] = { 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static struct {
	EVP_PKEY *signer, *other;
} keys;

static int
keys_setup (void **state)
{
	(void)state;
	keys.signer = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	keys.other = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	return keys.signer && keys.other ? 0 : -1;
}

static int
keys_teardown (void **state)
{
	(void)state;
	EVP_PKEY_free (keys.signer);
	EVP_PKEY_free (keys.other);
	return 0;
}

/* ---------------------------------------------------------------- claims sets */

#define CLAIMS_CAP 64

struct claims {
	cbor_item_t *k[CLAIMS_CAP], *v[CLAIMS_CAP];
	size_t n;
};

static cbor_item_t *
cint (int64_t v)
{
	return v < 0 ? cbor_build_negint64 ((uint64_t)(-1 - v)) : cbor_build_uint64 ((uint64_t)v);
}

static cbor_item_t *
cbytes (const void *p, size_t n)
{
	return cbor_build_bytestring (p, n);
}

/* [a, b] */
static cbor_item_t *
pair (cbor_item_t *a, cbor_item_t *b)
{
	cbor_item_t *arr = cbor_new_definite_array (2);
	assert_true (cbor_array_push (arr, cbor_move (a)));
	assert_true (cbor_array_push (arr, cbor_move (b)));
	return arr;
}

static cbor_item_t *
one (cbor_item_t *a)
{
	cbor_item_t *arr = cbor_new_definite_array (1);
	assert_true (cbor_array_push (arr, cbor_move (a)));
	return arr;
}

/* Append a key/value (both owned by @c). */
static void
cl_raw (struct claims *c, cbor_item_t *k, cbor_item_t *v)
{
	assert_true (c->n < CLAIMS_CAP);
	c->k[c->n] = k;
	c->v[c->n] = v;
	c->n++;
}

static void
cl_del (struct claims *c, int64_t key)
{
	for (size_t i = 0; i < c->n; i++) {
		int64_t k;
		if (cose_cbor_get_int (c->k[i], &k) && k == key) {
			cbor_decref (&c->k[i]);
			cbor_decref (&c->v[i]);
			memmove (&c->k[i], &c->k[i + 1], (c->n - i - 1) * sizeof c->k[0]);
			memmove (&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof c->v[0]);
			c->n--;
			return;
		}
	}
}

/* Replace (or add) claim @key. */
static void
cl_set (struct claims *c, int64_t key, cbor_item_t *v)
{
	cl_del (c, key);
	cl_raw (c, cint (key), v);
}

static void
cl_free (struct claims *c)
{
	for (size_t i = 0; i < c->n; i++) {
		cbor_decref (&c->k[i]);
		cbor_decref (&c->v[i]);
	}
	c->n = 0;
}

static cbor_item_t *
cl_map (const struct claims *c)
{
	cbor_item_t *m = cbor_new_definite_map (c->n);
	for (size_t i = 0; i < c->n; i++)
		assert_true (cbor_map_add (m, (struct cbor_pair){ c->k[i], c->v[i] }));
	return m;
}

/* A submodule claims map: dbgstat 2, swname, measres. */
static cbor_item_t *
gpu_claims (void)
{
	struct claims s = { 0 };
	cbor_item_t *m;
	cl_set (&s, 263, cint (2));
	cl_set (&s, 270, cbor_build_string ("vbios"));
	cl_set (&s, 274, one (pair (cbor_build_string ("rim"), one (pair (cbor_build_string ("v"), cint (1))))));
	m = cl_map (&s);
	cl_free (&s);
	return m;
}

static cbor_item_t *
submods (cbor_item_t *gpu)
{
	static const unsigned char digest[32] = { 0xaa };
	cbor_item_t *m = cbor_new_definite_map (2);
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("gpu0")),
	                                                  cbor_move (gpu) }));
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("tpm")),
	                                                  cbor_move (pair (cint (-16),
	                                                                   cbytes (digest, sizeof digest))) }));
	return m;
}

static void
cl_base (struct claims *c)
{
	static const unsigned char oemid[3] = { 0x00, 0x1b, 0x21 }, hwmodel[4] = { 'm', 'o', 'd', '1' };
	static const unsigned char meas[32] = { 0x11 }, rid[2] = { 0x0a, 0x0b };
	cbor_item_t *results;

	memset (c, 0, sizeof *c);
	cl_set (c, 1, cbor_build_string ("attester"));
	cl_set (c, 6, cint (NOW - 10));
	cl_set (c, 4, cint (NOW + 600));
	cl_set (c, 5, cint (NOW - 60));
	cl_set (c, 10, cbytes (nonce, sizeof nonce));
	cl_set (c, 265, cbor_build_string (PROFILE));
	cl_set (c, 256, cbytes (ueid, sizeof ueid));
	cl_set (c, 258, cbytes (oemid, sizeof oemid));
	cl_set (c, 259, cbytes (hwmodel, sizeof hwmodel));
	cl_set (c, 260, pair (cbor_build_string ("1.0"), cint (1)));
	cl_set (c, 261, cint (3600));
	cl_set (c, 262, cbor_build_bool (true));
	cl_set (c, 263, cint (3));
	cl_set (c, 267, cint (5));
	cl_set (c, 270, cbor_build_string ("firmware"));
	cl_set (c, 271, one (cbor_build_string ("2.1.0")));
	cl_set (c, 273, one (pair (cint (1), cbytes (meas, sizeof meas))));
	results = cbor_new_definite_array (2);
	assert_true (cbor_array_push (results, cbor_move (pair (cbor_build_string ("boot"), cint (1)))));
	assert_true (cbor_array_push (results, cbor_move (pair (cbytes (rid, sizeof rid), cint (2)))));
	cl_set (c, 274, one (pair (cbor_build_string ("fw"), results)));
	cl_set (c, 266, submods (gpu_claims ()));
	/* Ignored: a private text claim, an unknown integer claim. */
	cl_raw (c, cbor_build_string ("x-vendor"), cint (7));
	cl_set (c, 99999, cbor_build_string ("unknown"));
}

/* ---------------------------------------------------------------- tokens */

struct tok {
	unsigned char *bytes;
	size_t len;
};

static struct tok
token_payload (const unsigned char *p, size_t n, EVP_PKEY *key, const unsigned char *kid,
               enum build_tag tag)
{
	struct build b;
	struct tok t;
	memset (&b, 0, sizeof b);
	b.key = key;
	b.alg = COSE_ALG_ES256;
	b.payload = p;
	b.payload_len = n;
	b.kid = kid;
	b.kid_len = kid ? strlen ((const char *)kid) : 0;
	b.tag = tag;
	t.bytes = build_sign1 (&b, &t.len);
	assert_non_null (t.bytes);
	return t;
}

static struct tok
token (const struct claims *c)
{
	cbor_item_t *m = cl_map (c);
	size_t n;
	unsigned char *p = build_serialize (m, &n);
	struct tok t;
	assert_non_null (p);
	t = token_payload (p, n, keys.signer, NULL, TAG_18);
	cbor_decref (&m);
	free (p);
	return t;
}

static const char *const anchors[] = { "other-ca", "vendor-ca" };

static void
input_defaults (struct verify_eat_input *in, const struct tok *t, struct cose_key *ks)
{
	ks[0] = (struct cose_key){ keys.other, NULL, 0 };
	ks[1] = (struct cose_key){ keys.signer, NULL, 0 };
	memset (in, 0, sizeof *in);
	in->token = t->bytes;
	in->len = t->len;
	in->keys = ks;
	in->n_keys = 2;
	in->anchor_names = anchors;
	in->nonce = nonce;
	in->nonce_len = sizeof nonce;
	in->now = NOW;
	in->skew = 30;
	in->profile = PROFILE;
}

/* Verify @in; check the code, and that a failure leaves @out empty. */
static int
run (const struct verify_eat_input *in, int want, struct claim_set **keep)
{
	struct claim_set *set = claim_set_new ();
	char err[256];
	size_t idx = 99;
	bool matched = true;
	int rv;

	assert_non_null (set);
	memset (err, 0, sizeof err);
	rv = verify_eat (in, set, &idx, &matched, err, sizeof err);
	if (rv != want)
		fail_msg ("expected %d (%s), got %d: %s", want, verify_eat_strerror (want), rv, err);
	assert_true (err[0] != '\0');
	if (rv != VERIFY_EAT_OK) {
		assert_int_equal (claim_set_count (set), 0);
		assert_false (matched);
		assert_int_equal (idx, 0);
	} else {
		assert_int_equal (matched, in->nonce != NULL);
	}
	if (keep)
		*keep = set;
	else
		claim_set_free (set);
	return rv;
}

/* Build a token from @c, verify with the defaults, expect @want. */
static void
expect_claims (const struct claims *c, int want)
{
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct tok t = token (c);
	input_defaults (&in, &t, ks);
	run (&in, want, NULL);
	free (t.bytes);
}

/* The base claims with claim @key set to @v (NULL: removed). */
static void
expect_with (int64_t key, cbor_item_t *v, int want)
{
	struct claims c;
	cl_base (&c);
	if (v)
		cl_set (&c, key, v);
	else
		cl_del (&c, key);
	expect_claims (&c, want);
	cl_free (&c);
}

/* ---------------------------------------------------------------- positive */

static void
assert_int_claim (const struct claim_set *s, const char *name, int64_t v)
{
	const struct claim *c = claim_set_find (s, name);
	if (!c)
		fail_msg ("claim %s missing", name);
	assert_int_equal (c->v.type, CLAIM_INT);
	assert_true (c->v.i == v);
}

static void
assert_str_claim (const struct claim_set *s, const char *name, const char *v)
{
	const struct claim *c = claim_set_find (s, name);
	if (!c)
		fail_msg ("claim %s missing", name);
	assert_int_equal (c->v.type, CLAIM_STRING);
	assert_string_equal ((const char *)c->v.data, v);
}

static void
test_ok (void **state)
{
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct claim_set *set;
	struct claims c;
	struct tok t;
	const struct claim *cl;
	size_t idx = 9;
	bool matched = false;
	char err[128];
	(void)state;

	cl_base (&c);
	t = token (&c);
	input_defaults (&in, &t, ks);
	run (&in, VERIFY_EAT_OK, &set);
	assert_int_claim (set, "eat.iat", NOW - 10);
	assert_str_claim (set, "eat.profile", PROFILE);
	cl = claim_set_find (set, "eat.ueid");
	assert_non_null (cl);
	assert_int_equal (cl->v.len, sizeof ueid);
	assert_memory_equal (cl->v.data, ueid, sizeof ueid);
	assert_non_null (claim_set_find (set, "eat.oemid"));
	assert_non_null (claim_set_find (set, "eat.hwmodel"));
	assert_str_claim (set, "eat.hwversion", "1.0");
	assert_int_claim (set, "eat.uptime", 3600);
	cl = claim_set_find (set, "eat.oemboot");
	assert_non_null (cl);
	assert_true (cl->v.b);
	assert_int_claim (set, "eat.dbgstat", 3);
	assert_int_claim (set, "eat.bootcount", 5);
	assert_str_claim (set, "eat.swname", "firmware");
	assert_str_claim (set, "eat.swversion", "2.1.0");
	assert_int_claim (set, "eat.measres.fw.boot", 1);
	assert_int_claim (set, "eat.measres.fw.0a0b", 2);
	assert_int_claim (set, "eat.submod.gpu0.dbgstat", 2);
	assert_str_claim (set, "eat.submod.gpu0.swname", "vbios");
	assert_int_claim (set, "eat.submod.gpu0.measres.rim.v", 1);
	assert_str_claim (set, "evidence.format", "eat");
	assert_str_claim (set, "evidence.anchor", "vendor-ca");
	/* Exactly those: the detached-digest submodule, the private and
	 * unknown claims and the time claims but iat add nothing. */
	assert_int_equal (claim_set_count (set), 19);
	claim_set_free (set);

	/* key_index and nonce_matched. */
	set = claim_set_new ();
	assert_int_equal (verify_eat (&in, set, &idx, &matched, err, sizeof err), VERIFY_EAT_OK);
	assert_int_equal (idx, 1);
	assert_true (matched);
	claim_set_free (set);

	/* No nonce expected: not checked, not matched; no profile
	 * expected: any. */
	in.nonce = NULL;
	in.nonce_len = 0;
	in.profile = NULL;
	run (&in, VERIFY_EAT_OK, NULL);
	/* A claim already in the set: refused. */
	set = claim_set_new ();
	assert_int_equal (claim_set_add_string (set, "evidence.format", "eat", 3), CLAIMS_OK);
	assert_int_equal (verify_eat (&in, set, NULL, NULL, err, sizeof err), VERIFY_EAT_ERR_CLAIMS);
	claim_set_free (set);
	free (t.bytes);
	cl_free (&c);
}

static void
test_variants (void **state)
{
	static const unsigned char oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d }; /* 1.2.840.113549 */
	static const unsigned char other_nonce[16] = "fedcba9876543210";
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct claim_set *set;
	struct claims c;
	struct tok t;
	cbor_item_t *arr;
	(void)state;

	/* An OID profile, compared in dotted form. */
	cl_base (&c);
	cl_set (&c, 265, cbytes (oid, sizeof oid));
	t = token (&c);
	input_defaults (&in, &t, ks);
	in.profile = "1.2.840.113549";
	run (&in, VERIFY_EAT_OK, &set);
	assert_str_claim (set, "eat.profile", "1.2.840.113549");
	claim_set_free (set);
	free (t.bytes);
	cl_free (&c);

	/* An eat_nonce array holding the challenge. */
	arr = cbor_new_definite_array (2);
	assert_true (cbor_array_push (arr, cbor_move (cbytes (other_nonce, sizeof other_nonce))));
	assert_true (cbor_array_push (arr, cbor_move (cbytes (nonce, sizeof nonce))));
	expect_with (10, arr, VERIFY_EAT_OK);
	/* A float iat, a token without exp and nbf. */
	expect_with (6, cbor_build_float8 ((double)NOW - 0.5), VERIFY_EAT_OK);
	cl_base (&c);
	cl_del (&c, 4);
	cl_del (&c, 5);
	expect_claims (&c, VERIFY_EAT_OK);
	cl_free (&c);
	/* Times within the skew. */
	expect_with (4, cint (NOW - 20), VERIFY_EAT_OK);
	expect_with (5, cint (NOW + 20), VERIFY_EAT_OK);
	expect_with (6, cint (NOW + 20), VERIFY_EAT_OK);
	/* oemid as a PEN. */
	expect_with (258, cint (4242), VERIFY_EAT_OK);

	/* The CWT tag around tag 18. */
	{
		cbor_item_t *m;
		unsigned char *p;
		size_t n;
		cl_base (&c);
		m = cl_map (&c);
		p = build_serialize (m, &n);
		t = token_payload (p, n, keys.signer, NULL, TAG_CWT);
		input_defaults (&in, &t, ks);
		run (&in, VERIFY_EAT_OK, NULL);
		free (t.bytes);
		/* Untagged: refused (an EAT is a tagged COSE_Sign1 here). */
		t = token_payload (p, n, keys.signer, NULL, TAG_NONE);
		input_defaults (&in, &t, ks);
		run (&in, VERIFY_EAT_ERR_COSE, NULL);
		free (t.bytes);
		/* A kid that names no key. */
		t = token_payload (p, n, keys.signer, (const unsigned char *)"k2", TAG_18);
		input_defaults (&in, &t, ks);
		ks[0].kid = (const unsigned char *)"k1";
		ks[0].kid_len = 2;
		ks[1].kid = (const unsigned char *)"k1";
		ks[1].kid_len = 2;
		run (&in, VERIFY_EAT_ERR_NO_KEY, NULL);
		ks[1].kid = (const unsigned char *)"k2";
		run (&in, VERIFY_EAT_OK, NULL);
		free (t.bytes);
		cbor_decref (&m);
		free (p);
		cl_free (&c);
	}
}

/* ---------------------------------------------------------------- negative */

static void
test_signature (void **state)
{
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct claims c;
	struct tok t;
	int64_t es384 = COSE_ALG_ES384;
	(void)state;

	cl_base (&c);
	t = token (&c);
	input_defaults (&in, &t, ks);
	/* The only pinned key is another one: the wrong anchor. */
	in.n_keys = 1;
	run (&in, VERIFY_EAT_ERR_SIGNATURE, NULL);
	in.n_keys = 2;
	/* A flipped signature bit. */
	t.bytes[t.len - 5] ^= 0x10;
	run (&in, VERIFY_EAT_ERR_SIGNATURE, NULL);
	t.bytes[t.len - 5] ^= 0x10;
	/* A flipped payload bit. */
	t.bytes[40] ^= 0x01;
	run (&in, VERIFY_EAT_ERR_SIGNATURE, NULL);
	t.bytes[40] ^= 0x01;
	/* ES256 not allowed. */
	in.algs = &es384;
	in.n_algs = 1;
	run (&in, VERIFY_EAT_ERR_ALG, NULL);
	in.algs = NULL;
	in.n_algs = 0;
	/* Truncated: not a COSE message. */
	in.len = 3;
	run (&in, VERIFY_EAT_ERR_COSE, NULL);
	in.len = 0;
	run (&in, VERIFY_EAT_ERR_SIZE, NULL);
	in.len = COSE_MAX_SIZE + 1;
	run (&in, VERIFY_EAT_ERR_SIZE, NULL);
	in.len = t.len;
	/* Arguments. */
	in.nonce_len = 4;
	run (&in, VERIFY_EAT_ERR_ARGS, NULL);
	in.nonce_len = sizeof nonce;
	in.anchor_names = NULL;
	run (&in, VERIFY_EAT_ERR_ARGS, NULL);
	in.anchor_names = anchors;
	in.now = -1;
	run (&in, VERIFY_EAT_ERR_ARGS, NULL);
	in.now = NOW;
	run (&in, VERIFY_EAT_OK, NULL);
	free (t.bytes);
	cl_free (&c);
}

static void
test_payload (void **state)
{
	static const unsigned char not_map[] = { 0x83, 0x01, 0x02, 0x03 };
	static const unsigned char not_cbor[] = { 0xa1, 0x06 };
	static const unsigned char indef[] = { 0xbf, 0x06, 0x01, 0xff };
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct tok t;
	(void)state;

	t = token_payload (not_map, sizeof not_map, keys.signer, NULL, TAG_18);
	input_defaults (&in, &t, ks);
	run (&in, VERIFY_EAT_ERR_PAYLOAD, NULL);
	free (t.bytes);
	t = token_payload (not_cbor, sizeof not_cbor, keys.signer, NULL, TAG_18);
	input_defaults (&in, &t, ks);
	run (&in, VERIFY_EAT_ERR_PAYLOAD, NULL);
	free (t.bytes);
	t = token_payload (indef, sizeof indef, keys.signer, NULL, TAG_18);
	input_defaults (&in, &t, ks);
	run (&in, VERIFY_EAT_ERR_PAYLOAD, NULL);
	free (t.bytes);
}

static void
test_keys_refused (void **state)
{
	struct claims c;
	(void)state;

	/* Duplicate claim key. */
	cl_base (&c);
	cl_raw (&c, cint (6), cint (NOW));
	expect_claims (&c, VERIFY_EAT_ERR_DUPLICATE);
	cl_free (&c);
	/* A text key naming a checked claim. */
	cl_base (&c);
	cl_raw (&c, cbor_build_string ("exp"), cint (NOW - 1000));
	expect_claims (&c, VERIFY_EAT_ERR_CLAIM_KEY);
	cl_free (&c);
	/* A bstr key. */
	cl_base (&c);
	cl_raw (&c, cbytes ("k", 1), cint (1));
	expect_claims (&c, VERIFY_EAT_ERR_CLAIM_KEY);
	cl_free (&c);
	/* Early-draft keys. */
	expect_with (11, cbytes (ueid, sizeof ueid), VERIFY_EAT_ERR_EARLY_DRAFT);
	expect_with (16, cint (1), VERIFY_EAT_ERR_EARLY_DRAFT);
	/* Too many entries. */
	cl_base (&c);
	for (int i = 0; c.n < CLAIMS_CAP; i++)
		cl_set (&c, 100000 + i, cint (i));
	expect_claims (&c, VERIFY_EAT_OK);
	cl_free (&c);
	{
		/* A map of 257 entries, built directly. */
		cbor_item_t *m;
		unsigned char *p;
		size_t n;
		struct verify_eat_input in;
		struct cose_key ks[2];
		struct tok t;
		cl_base (&c);
		m = cl_map (&c);
		cl_free (&c);
		/* cl_map made the map with room for the base claims only. */
		cbor_decref (&m);
		m = cbor_new_definite_map (VERIFY_EAT_MAP_MAX + 1);
		assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cint (6)), cbor_move (cint (NOW)) }));
		for (int i = 0; i < VERIFY_EAT_MAP_MAX; i++)
			assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cint (100000 + i)),
			                                                  cbor_move (cint (0)) }));
		p = build_serialize (m, &n);
		t = token_payload (p, n, keys.signer, NULL, TAG_18);
		input_defaults (&in, &t, ks);
		in.nonce = NULL;
		in.profile = NULL;
		run (&in, VERIFY_EAT_ERR_LIMIT, NULL);
		free (t.bytes);
		free (p);
		cbor_decref (&m);
	}
}

static void
test_time (void **state)
{
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct claims c;
	struct tok t;
	(void)state;

	expect_with (4, cint (NOW - 31), VERIFY_EAT_ERR_EXPIRED);
	expect_with (5, cint (NOW + 31), VERIFY_EAT_ERR_NOT_YET_VALID);
	expect_with (6, cint (NOW + 31), VERIFY_EAT_ERR_IAT_FUTURE);
	expect_with (6, NULL, VERIFY_EAT_ERR_IAT_MISSING);
	expect_with (6, cbor_build_string ("yesterday"), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (6, cint (-5), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (4, cbor_build_float8 (1.0 / 0.0), VERIFY_EAT_ERR_CLAIM_TYPE);
	/* A float nbf rounds up: 30.5 s ahead with 30 s of skew fails. */
	expect_with (5, cbor_build_float8 ((double)NOW + 30.5), VERIFY_EAT_ERR_NOT_YET_VALID);

	/* max_iat_age: 10 s old passes 60 s, fails 5 s (+ 30 s skew fails
	 * only beyond 35 s). */
	cl_base (&c);
	cl_set (&c, 6, cint (NOW - 100));
	t = token (&c);
	input_defaults (&in, &t, ks);
	run (&in, VERIFY_EAT_OK, NULL);
	in.max_iat_age = 60;
	run (&in, VERIFY_EAT_ERR_IAT_STALE, NULL);
	in.max_iat_age = 70;
	run (&in, VERIFY_EAT_OK, NULL);
	free (t.bytes);
	cl_free (&c);

	/* A submodule's own exp is honoured. */
	{
		struct claims s = { 0 };
		cl_set (&s, 4, cint (NOW - 100));
		cl_base (&c);
		cl_set (&c, 266, submods (cl_map (&s)));
		expect_claims (&c, VERIFY_EAT_ERR_EXPIRED);
		cl_free (&c);
		cl_free (&s);
	}
}

static void
test_nonce_profile (void **state)
{
	static const unsigned char wrong[16] = "0123456789abcdeX";
	cbor_item_t *arr;
	(void)state;

	expect_with (10, cbytes (wrong, sizeof wrong), VERIFY_EAT_ERR_NONCE);
	expect_with (10, cbytes (nonce, 15), VERIFY_EAT_ERR_NONCE);
	expect_with (10, NULL, VERIFY_EAT_ERR_NONCE_MISSING);
	expect_with (10, cbytes (nonce, 7), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (10, one (cbytes (nonce, sizeof nonce)), VERIFY_EAT_ERR_CLAIM_TYPE);
	arr = cbor_new_definite_array (2);
	assert_true (cbor_array_push (arr, cbor_move (cbytes (wrong, sizeof wrong))));
	assert_true (cbor_array_push (arr, cbor_move (cbytes (wrong, 8))));
	expect_with (10, arr, VERIFY_EAT_ERR_NONCE);

	expect_with (265, cbor_build_string ("tag:example.com,2025:other"), VERIFY_EAT_ERR_PROFILE);
	expect_with (265, NULL, VERIFY_EAT_ERR_PROFILE);
	expect_with (265, cint (5), VERIFY_EAT_ERR_CLAIM_TYPE);
	/* An OID with a non-minimal arc. */
	expect_with (265, cbytes ("\x2a\x80\x01", 3), VERIFY_EAT_ERR_CLAIM_TYPE);
}

static void
test_claim_values (void **state)
{
	static const unsigned char bad_type[17] = { 0x04 }, bad_len[9] = { 0x01 };
	(void)state;

	expect_with (263, cint (5), VERIFY_EAT_ERR_DBGSTAT);
	expect_with (263, cbor_build_string ("off"), VERIFY_EAT_ERR_DBGSTAT);
	expect_with (263, cint (-1), VERIFY_EAT_ERR_DBGSTAT);
	expect_with (256, cbytes (bad_type, sizeof bad_type), VERIFY_EAT_ERR_UEID);
	expect_with (256, cbytes (bad_len, sizeof bad_len), VERIFY_EAT_ERR_UEID);
	expect_with (256, cbytes (ueid, 6), VERIFY_EAT_ERR_UEID);
	expect_with (256, cint (1), VERIFY_EAT_ERR_UEID);
	expect_with (270, cbytes ("fw", 2), VERIFY_EAT_ERR_CLAIM_TYPE);
	/* Bad UTF-8 is refused by libcbor itself; a NUL by the verifier. */
	expect_with (270, cbor_build_string ("bad\xc3"), VERIFY_EAT_ERR_PAYLOAD);
	expect_with (270, cbor_build_stringn ("a\0b", 3), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (271, cbor_build_string ("2.1.0"), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (262, cint (1), VERIFY_EAT_ERR_CLAIM_TYPE);
	/* A float where a bool goes: libcbor 0.8's own cbor_is_bool()
	 * would abort on it (fuzz find). */
	expect_with (262, cbor_build_float4 (1.0f), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (262, cbor_new_null (), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (267, cint (-3), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (1, cint (1), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (258, cbytes ("ab", 2), VERIFY_EAT_ERR_CLAIM_TYPE);
	expect_with (273, one (cint (1)), VERIFY_EAT_ERR_CLAIM_TYPE);
}

static void
test_measres (void **state)
{
	(void)state;
	expect_with (274, one (pair (cbor_build_string ("fw"), one (pair (cbor_build_string ("x"), cint (5))))),
	             VERIFY_EAT_ERR_MEASRES);
	expect_with (274, one (pair (cbor_build_string ("fw"), one (pair (cbor_build_string ("x"), cint (0))))),
	             VERIFY_EAT_ERR_MEASRES);
	expect_with (274, one (pair (cbor_build_string ("fw"), cbor_new_definite_array (0))),
	             VERIFY_EAT_ERR_MEASRES);
	expect_with (274, cbor_new_definite_array (0), VERIFY_EAT_ERR_MEASRES);
	expect_with (274, one (cbor_build_string ("fw")), VERIFY_EAT_ERR_MEASRES);
	/* A system name that cannot be part of a claim name. */
	expect_with (274, one (pair (cbor_build_string ("f w"), one (pair (cbor_build_string ("x"), cint (1))))),
	             VERIFY_EAT_ERR_NAME);
	/* The same result twice: the claim set refuses the duplicate. */
	{
		cbor_item_t *r = cbor_new_definite_array (2);
		assert_true (cbor_array_push (r, cbor_move (pair (cbor_build_string ("x"), cint (1)))));
		assert_true (cbor_array_push (r, cbor_move (pair (cbor_build_string ("x"), cint (2)))));
		expect_with (274, one (pair (cbor_build_string ("fw"), r)), VERIFY_EAT_ERR_CLAIMS);
	}
}

static void
test_submods (void **state)
{
	static const unsigned char nested[] = { 0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40 };
	cbor_item_t *m, *inner;
	(void)state;

	expect_with (266, cint (1), VERIFY_EAT_ERR_SUBMOD);
	/* A nested token. */
	m = cbor_new_definite_map (1);
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("inner")),
	                                                  cbor_move (cbytes (nested, sizeof nested)) }));
	expect_with (266, m, VERIFY_EAT_ERR_NESTED_TOKEN);
	/* A name that cannot be part of a claim name. */
	m = cbor_new_definite_map (1);
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("gpu/0")),
	                                                  cbor_move (gpu_claims ()) }));
	expect_with (266, m, VERIFY_EAT_ERR_NAME);
	/* The same submodule name twice. */
	m = cbor_new_definite_map (2);
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("a")),
	                                                  cbor_move (gpu_claims ()) }));
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("a")),
	                                                  cbor_move (gpu_claims ()) }));
	expect_with (266, m, VERIFY_EAT_ERR_DUPLICATE);
	/* Same rules inside: bad dbgstat, early-draft key. */
	{
		struct claims s = { 0 };
		cl_set (&s, 263, cint (9));
		expect_with (266, submods (cl_map (&s)), VERIFY_EAT_ERR_DBGSTAT);
		cl_free (&s);
		cl_set (&s, 16, cint (1));
		expect_with (266, submods (cl_map (&s)), VERIFY_EAT_ERR_EARLY_DRAFT);
		cl_free (&s);
	}
	/* Too deep: submods VERIFY_EAT_SUBMOD_DEPTH + 1 levels down. */
	inner = gpu_claims ();
	for (int i = 0; i < VERIFY_EAT_SUBMOD_DEPTH; i++) {
		cbor_item_t *outer = cbor_new_definite_map (1), *sm = cbor_new_definite_map (1);
		assert_true (cbor_map_add (sm, (struct cbor_pair){ cbor_move (cbor_build_string ("s")),
		                                                   cbor_move (inner) }));
		assert_true (cbor_map_add (outer, (struct cbor_pair){ cbor_move (cint (266)), cbor_move (sm) }));
		inner = outer;
	}
	expect_with (266, submods (inner), VERIFY_EAT_ERR_SUBMOD);
	/* A bad detached digest. */
	m = cbor_new_definite_map (1);
	assert_true (cbor_map_add (m, (struct cbor_pair){ cbor_move (cbor_build_string ("d")),
	                                                  cbor_move (one (cint (1))) }));
	expect_with (266, m, VERIFY_EAT_ERR_SUBMOD);
}

/* CPU time of one appraisal of the base ES256 token. */
static void
test_bench (void **state)
{
	struct verify_eat_input in;
	struct cose_key ks[2];
	struct claims c;
	struct tok t;
	clock_t t0;
	double us;
	const int n = 2000;
	(void)state;

	cl_base (&c);
	t = token (&c);
	input_defaults (&in, &t, ks);
	/* The signer first, as a policy with one pinned key would have it. */
	ks[0] = ks[1];
	in.n_keys = 1;
	in.anchor_names = &anchors[1];
	t0 = clock ();
	for (int i = 0; i < n; i++) {
		struct claim_set *set = claim_set_new ();
		char err[64];
		assert_int_equal (verify_eat (&in, set, NULL, NULL, err, sizeof err), VERIFY_EAT_OK);
		claim_set_free (set);
	}
	us = (double)(clock () - t0) / CLOCKS_PER_SEC * 1e6 / n;
	print_message ("verify_eat (ES256, %zu-byte token, 19 claims): %.1f us CPU per call\n", t.len, us);
	free (t.bytes);
	cl_free (&c);
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_ok),
		cmocka_unit_test (test_variants),
		cmocka_unit_test (test_signature),
		cmocka_unit_test (test_payload),
		cmocka_unit_test (test_keys_refused),
		cmocka_unit_test (test_time),
		cmocka_unit_test (test_nonce_profile),
		cmocka_unit_test (test_claim_values),
		cmocka_unit_test (test_measres),
		cmocka_unit_test (test_submods),
		cmocka_unit_test (test_bench),
	};
	return cmocka_run_group_tests_name ("verify-eat", tests, keys_setup, keys_teardown);
}
