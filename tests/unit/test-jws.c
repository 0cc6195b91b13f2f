/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the JWS compact verifier and the strict JSON reader
 * (src/jws.c): tokens signed here with generated P-256/P-384 keys and with
 * upstream Veraison's test key (tests/data/ear/skey.json), so that each
 * negative case is otherwise well made and fails only the check it
 * targets.
 */
#include "config.h"

#include "ear-tokens.h"
#include "jws.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define H256 "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define H384 "{\"alg\":\"ES384\"}"
#define PAYLOAD "{\"hello\":\"world\"}"

static EVP_PKEY *p256, *p256b, *p384, *rsa;

static int
setup (void **state)
{
	p256 = et_keygen ("P-256");
	p256b = et_keygen ("P-256");
	p384 = et_keygen ("P-384");
	rsa = et_keygen ("RSA");
	return p256 && p256b && p384 && rsa ? 0 : -1;
}

static int
teardown (void **state)
{
	EVP_PKEY_free (p256);
	EVP_PKEY_free (p256b);
	EVP_PKEY_free (p384);
	EVP_PKEY_free (rsa);
	return 0;
}

static char *
make (const char *header, const char *alg, EVP_PKEY *key)
{
	char *t = et_jws (header, (const unsigned char *)PAYLOAD, strlen (PAYLOAD), alg, key, NULL, 0);
	assert_non_null (t);
	return t;
}

/* Verify @token (@len bytes) under @keys; expect @want; the message is
 * always set. */
static int
run_len (const char *token, size_t len, const struct cose_key *keys, size_t n, int want)
{
	struct jws_result r;
	char err[256] = "unset";
	int rv = jws_verify (token, len, keys, n, &r, err, sizeof err);
	if (rv != want)
		fail_msg ("got %d (%s: %s), want %d (%s)", rv, jws_strerror (rv), err, want,
		          jws_strerror (want));
	assert_true (err[0] != '\0' && strcmp (err, "unset") != 0);
	if (rv == JWS_OK) {
		assert_non_null (r.payload);
		assert_int_equal (r.payload[r.payload_len], '\0');
	} else {
		assert_null (r.payload);
		assert_null (r.kid);
	}
	jws_result_clear (&r);
	return rv;
}

static void
expect (const char *token, EVP_PKEY *key, int want)
{
	struct cose_key k = { key, NULL, 0 };
	run_len (token, strlen (token), &k, 1, want);
}

/* ---------------------------------------------------------------- positive */

static void
test_es256_es384 (void **state)
{
	struct cose_key keys[2] = { { p384, NULL, 0 }, { p256, NULL, 0 } };
	struct jws_result r;
	char err[256];
	char *t = make (H256, "ES256", p256), *u = make (H384, "ES384", p384);

	assert_int_equal (jws_verify (t, strlen (t), keys, 2, &r, err, sizeof err), JWS_OK);
	assert_int_equal (r.alg, JWS_ALG_ES256);
	assert_int_equal (r.key_index, 1);
	assert_int_equal (r.payload_len, strlen (PAYLOAD));
	assert_memory_equal (r.payload, PAYLOAD, strlen (PAYLOAD));
	assert_null (r.kid);
	assert_string_equal (err, "ok");
	jws_result_clear (&r);

	assert_int_equal (jws_verify (u, strlen (u), keys, 2, &r, err, sizeof err), JWS_OK);
	assert_int_equal (r.alg, JWS_ALG_ES384);
	assert_int_equal (r.key_index, 0);
	jws_result_clear (&r);
	free (t);
	free (u);
}

/* Veraison's own test key, as `arc create` would sign. */
static void
test_upstream_key (void **state)
{
	size_t sl, pl;
	char *skey = et_read_data ("skey.json", &sl), *pkey = et_read_data ("pkey.json", &pl);
	EVP_PKEY *priv, *pub;
	char *t;

	assert_non_null (skey);
	assert_non_null (pkey);
	priv = et_jwk_parse (skey, sl);
	pub = et_jwk_parse (pkey, pl);
	assert_non_null (priv);
	assert_non_null (pub);
	t = make (H256, "ES256", priv);
	expect (t, pub, JWS_OK);
	expect (t, p256, JWS_ERR_SIGNATURE);
	free (t);
	EVP_PKEY_free (priv);
	EVP_PKEY_free (pub);
	free (skey);
	free (pkey);
}

static void
test_kid (void **state)
{
	struct cose_key keys[3] = {
		{ p256b, (const unsigned char *)"other", 5 },
		{ p256, (const unsigned char *)"veraison-1", 10 },
		{ p256b, NULL, 0 },
	};
	struct jws_result r;
	char err[256];
	char *t = make ("{\"alg\":\"ES256\",\"kid\":\"veraison-1\"}", "ES256", p256);
	char *u = make ("{\"alg\":\"ES256\",\"kid\":\"nobody\"}", "ES256", p256);
	char *v = make ("{\"alg\":\"ES256\",\"kid\":\"other\"}", "ES256", p256);
	char *w = make ("{\"alg\":\"ES256\"}", "ES256", p256);

	assert_int_equal (jws_verify (t, strlen (t), keys, 3, &r, err, sizeof err), JWS_OK);
	assert_int_equal (r.key_index, 1);
	assert_string_equal (r.kid, "veraison-1");
	assert_int_equal (r.kid_len, 10);
	jws_result_clear (&r);
	/* An unknown kid reaches only the key without a kid, which is not
	 * the signer. */
	run_len (u, strlen (u), keys, 3, JWS_ERR_SIGNATURE);
	run_len (u, strlen (u), keys, 2, JWS_ERR_NO_KEY);
	/* The signer's key is pinned under another kid: not used. */
	run_len (v, strlen (v), keys, 3, JWS_ERR_SIGNATURE);
	/* No kid in the token: every key is tried. */
	assert_int_equal (jws_verify (w, strlen (w), keys, 3, &r, err, sizeof err), JWS_OK);
	assert_int_equal (r.key_index, 1);
	jws_result_clear (&r);
	free (t);
	free (u);
	free (v);
	free (w);
}

static void
test_crit_empty (void **state)
{
	char *t = make ("{\"alg\":\"ES256\",\"crit\":[]}", "ES256", p256);
	expect (t, p256, JWS_OK);
	free (t);
}

/* ---------------------------------------------------------------- algs */

static void
test_alg_none (void **state)
{
	char *t = make ("{\"alg\":\"none\"}", "none", NULL);
	assert_int_equal (t[strlen (t) - 1], '.'); /* unsigned: empty signature */
	expect (t, p256, JWS_ERR_ALG_NONE);
	free (t);
	/* Spelled otherwise, it is still no alg this code knows. */
	t = make ("{\"alg\":\"None\"}", "none", NULL);
	expect (t, p256, JWS_ERR_ALG_UNSUPPORTED);
	free (t);
}

/* The classic confusion: HMAC keyed with the verifier's public key. */
static void
test_alg_hmac (void **state)
{
	unsigned char *spki = NULL;
	int n = i2d_PUBKEY (p256, &spki);
	char *t;
	assert_true (n > 0);
	t = et_jws ("{\"alg\":\"HS256\"}", (const unsigned char *)PAYLOAD, strlen (PAYLOAD), "HS256",
	            NULL, spki, (size_t)n);
	assert_non_null (t);
	expect (t, p256, JWS_ERR_ALG_HMAC);
	free (t);
	t = make ("{\"alg\":\"HS512\"}", "none", NULL);
	expect (t, p256, JWS_ERR_ALG_HMAC);
	free (t);
	OPENSSL_free (spki);
}

static void
test_alg_rsa (void **state)
{
	char *t = make ("{\"alg\":\"RS256\"}", "RS256", rsa);
	expect (t, rsa, JWS_ERR_ALG_RSA);
	expect (t, p256, JWS_ERR_ALG_RSA);
	free (t);
	t = make ("{\"alg\":\"PS256\"}", "PS256", rsa);
	expect (t, rsa, JWS_ERR_ALG_RSA);
	free (t);
}

static void
test_alg_other (void **state)
{
	EVP_PKEY *p521 = et_keygen ("P-521");
	char *t;
	assert_non_null (p521);
	t = make ("{\"alg\":\"ES512\"}", "ES512", p521);
	expect (t, p521, JWS_ERR_ALG_UNSUPPORTED);
	free (t);
	t = make ("{\"alg\":\"EdDSA\"}", "none", NULL);
	expect (t, p256, JWS_ERR_ALG_UNSUPPORTED);
	free (t);
	t = make ("{\"typ\":\"JWT\"}", "ES256", p256);
	expect (t, p256, JWS_ERR_ALG_MISSING);
	free (t);
	t = make ("{\"alg\":256}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER);
	free (t);
	EVP_PKEY_free (p521);
}

/* ES256 signed with a P-256 key, but only a P-384 key is pinned: the alg
 * does not fit it.  And an ES256 header over a P-384 signature. */
static void
test_alg_key_mismatch (void **state)
{
	char *t = make (H256, "ES256", p256), *u = make (H256, "ES256", p384);
	char *v = make (H384, "ES384", p256);
	expect (t, p384, JWS_ERR_KEY_MISMATCH);
	expect (t, rsa, JWS_ERR_KEY_MISMATCH);
	expect (u, p384, JWS_ERR_SIG_LENGTH);
	expect (v, p256, JWS_ERR_SIG_LENGTH);
	free (t);
	free (u);
	free (v);
}

/* ---------------------------------------------------------------- header */

static void
test_header (void **state)
{
	char big[JWS_HEADER_MAX + 64];
	char *t;

	t = make ("{\"alg\":\"ES256\",\"crit\":[\"exp\"]}", "ES256", p256);
	expect (t, p256, JWS_ERR_CRIT);
	free (t);
	t = make ("{\"alg\":\"ES256\",\"crit\":\"exp\"}", "ES256", p256);
	expect (t, p256, JWS_ERR_CRIT);
	free (t);
	t = make ("{\"alg\":\"ES256\",\"b64\":false}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER);
	free (t);
	t = make ("{\"alg\":\"ES256\",\"kid\":7}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER);
	free (t);
	t = make ("{\"alg\":\"ES256\",\"kid\":\"\"}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER);
	free (t);
	/* Two algs: json-c would keep the second, another parser the first. */
	t = make ("{\"alg\":\"none\",\"alg\":\"ES256\"}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
	t = make ("{\"alg\":\"ES256\",\"\\u0061lg\":\"none\"}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
	t = make ("[\"ES256\"]", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
	t = make ("{'alg':'ES256'}", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
	t = make ("{\"alg\":\"ES256\"} x", "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
	memset (big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy (big, "{\"alg\":\"ES256\"", 14);
	big[sizeof big - 2] = '}';
	t = make (big, "ES256", p256);
	expect (t, p256, JWS_ERR_HEADER_JSON);
	free (t);
}

/* ---------------------------------------------------------------- encoding */

static void
test_signature_bytes (void **state)
{
	char *t = make (H256, "ES256", p256), *u;
	size_t n = strlen (t);
	struct cose_key k = { p256, NULL, 0 };
	char *dot = strrchr (t, '.');

	expect (t, p256, JWS_OK);
	expect (t, p256b, JWS_ERR_SIGNATURE);
	/* One bit of the signature. */
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	expect (t, p256, JWS_ERR_SIGNATURE);
	free (t);
	/* One character of the payload. */
	t = make (H256, "ES256", p256);
	dot = strchr (t, '.');
	dot[3] = dot[3] == 'e' ? 'f' : 'e';
	expect (t, p256, JWS_ERR_SIGNATURE);
	free (t);
	/* Truncated: one character short is not base64url, two are a 63-byte
	 * signature. */
	t = make (H256, "ES256", p256);
	n = strlen (t);
	run_len (t, n - 1, &k, 1, JWS_ERR_BASE64);
	run_len (t, n - 2, &k, 1, JWS_ERR_SIG_LENGTH);
	/* Cut inside the payload: fewer than three parts. */
	run_len (t, (size_t)(strchr (t, '.') - t) + 4, &k, 1, JWS_ERR_FORMAT);
	/* Trailing bytes: a newline, a dot and a fourth part. */
	u = malloc (n + 8);
	assert_non_null (u);
	sprintf (u, "%s\n", t);
	expect (u, p256, JWS_ERR_BASE64);
	sprintf (u, "%s.", t);
	expect (u, p256, JWS_ERR_FORMAT);
	sprintf (u, "%s.AAAA", t);
	expect (u, p256, JWS_ERR_FORMAT);
	/* Padding. */
	sprintf (u, "%s==", t);
	expect (u, p256, JWS_ERR_BASE64);
	free (u);
	free (t);
}

static void
test_base64_parts (void **state)
{
	char *t = make (H256, "ES256", p256), *u = strdup (t);
	char *d1 = strchr (u, '.');
	assert_non_null (u);

	/* The standard alphabet's '+' and '/' are not base64url. */
	u[1] = '+';
	expect (u, p256, JWS_ERR_BASE64);
	strcpy (u, t);
	d1[1] = '/';
	expect (u, p256, JWS_ERR_BASE64);
	strcpy (u, t);
	strrchr (u, '.')[1] = '*';
	expect (u, p256, JWS_ERR_BASE64);
	free (u);
	free (t);

	/* Empty parts. */
	expect (".e30.AAAA", p256, JWS_ERR_FORMAT);
	t = make (H256, "ES256", p256);
	u = malloc (strlen (t) + 1);
	assert_non_null (u);
	sprintf (u, "%.*s.", (int)(strchr (t, '.') - t), t);
	strcat (u, strrchr (t, '.'));
	expect (u, p256, JWS_ERR_FORMAT); /* header..signature */
	sprintf (u, "%.*s", (int)(strrchr (t, '.') - t + 1), t);
	expect (u, p256, JWS_ERR_SIG_LENGTH); /* header.payload. */
	free (u);
	free (t);
	expect ("abc", p256, JWS_ERR_FORMAT);
	expect ("a.b", p256, JWS_ERR_FORMAT);
	expect ("...", p256, JWS_ERR_FORMAT);
}

static void
test_sizes (void **state)
{
	struct cose_key k = { p256, NULL, 0 };
	struct jws_result r;
	char err[64];
	char *big = malloc (JWS_MAX_SIZE + 2), *t;

	assert_non_null (big);
	memset (big, 'A', JWS_MAX_SIZE + 1);
	big[JWS_MAX_SIZE + 1] = '\0';
	run_len (big, JWS_MAX_SIZE + 1, &k, 1, JWS_ERR_SIZE);
	run_len ("", 0, &k, 1, JWS_ERR_SIZE);
	free (big);
	/* A signature far longer than any ES384 one is not decoded. */
	t = make (H256, "ES256", p256);
	big = malloc (strlen (t) + 300);
	assert_non_null (big);
	sprintf (big, "%s", t);
	memset (big + strlen (t), 'A', 200);
	big[strlen (t) + 200] = '\0';
	expect (big, p256, JWS_ERR_SIG_LENGTH);
	free (big);
	/* Arguments. */
	assert_int_equal (jws_verify (NULL, 3, &k, 1, &r, err, sizeof err), JWS_ERR_ARGS);
	assert_int_equal (jws_verify (t, strlen (t), &k, 1, NULL, err, sizeof err), JWS_ERR_ARGS);
	assert_int_equal (jws_verify (t, strlen (t), NULL, 1, &r, err, sizeof err), JWS_ERR_ARGS);
	/* No keys at all: nothing for any kid. */
	assert_int_equal (jws_verify (t, strlen (t), NULL, 0, &r, err, sizeof err), JWS_ERR_NO_KEY);
	/* err may be NULL. */
	assert_int_equal (jws_verify (t, strlen (t), &k, 1, &r, NULL, 0), JWS_OK);
	jws_result_clear (&r);
	free (t);
}

/* ---------------------------------------------------------------- helpers */

static void
test_base64url (void **state)
{
	unsigned char out[16];
	size_t n;

	assert_true (jws_base64url_decode ("", 0, out, &n));
	assert_int_equal (n, 0);
	assert_true (jws_base64url_decode ("AQID", 4, out, &n));
	assert_int_equal (n, 3);
	assert_memory_equal (out, "\1\2\3", 3);
	assert_true (jws_base64url_decode ("-_8", 3, out, &n));
	assert_int_equal (n, 2);
	assert_int_equal (out[0], 0xfb);
	assert_int_equal (out[1], 0xff);
	assert_false (jws_base64url_decode ("A", 1, out, &n));      /* length 1 mod 4 */
	assert_false (jws_base64url_decode ("AB", 2, out, &n));     /* spare bits set */
	assert_true (jws_base64url_decode ("AA", 2, out, &n));
	assert_false (jws_base64url_decode ("AQ==", 4, out, &n));   /* padding */
	assert_false (jws_base64url_decode ("A+/A", 4, out, &n));
	assert_false (jws_base64url_decode ("AQ I", 4, out, &n));
	assert_false (jws_base64url_decode ("AQ\0I", 4, out, &n));
}

static void
json_refused (const char *text)
{
	char err[128];
	json_object *o = jws_json_parse ((const unsigned char *)text, strlen (text), err, sizeof err);
	if (o) {
		json_object_put (o);
		fail_msg ("accepted: %s", text);
	}
	assert_non_null (strstr (err, "JSON"));
}

static void
test_json_strict (void **state)
{
	char err[128], deep[80];
	json_object *o;
	const char *ok = "{\"a\":[1,-2,3.5e2,true,null,\"\\u00e9\\ud83d\\ude00\"],\"b\":{\"a\":1}}";

	o = jws_json_parse ((const unsigned char *)ok, strlen (ok), err, sizeof err);
	assert_non_null (o);
	json_object_put (o);
	o = jws_json_parse ((const unsigned char *)"9223372036854775807", 19, err, sizeof err);
	assert_non_null (o);
	assert_int_equal (json_object_get_int64 (o), INT64_MAX);
	json_object_put (o);

	json_refused ("{\"a\":1,\"a\":2}");
	json_refused ("{\"a\":1,\"\\u0061\":2}");
	json_refused ("{\"a\\u0000b\":1,\"a\":2}");
	json_refused ("\"x\\u0000\"");
	json_refused ("9223372036854775808");
	json_refused ("-9223372036854775809");
	json_refused ("01");
	json_refused ("{\"a\":1,}");
	json_refused ("[1,]");
	json_refused ("{\"a\":1} {}");
	json_refused ("\xef\xbb\xbf{}");
	json_refused ("{\"a\":\"\xff\"}");
	json_refused ("{\"a\":\"\xc0\x80\"}");
	json_refused ("\"\\ud800\"");
	json_refused ("NaN");
	json_refused ("{\"a\":1");
	json_refused ("\"tab\there\"");
	memset (deep, '[', JWS_JSON_MAX_DEPTH + 1);
	deep[JWS_JSON_MAX_DEPTH + 1] = '\0';
	json_refused (deep);
	/* The cap itself is fine. */
	memset (deep, '[', JWS_JSON_MAX_DEPTH);
	memset (deep + JWS_JSON_MAX_DEPTH, ']', JWS_JSON_MAX_DEPTH);
	deep[2 * JWS_JSON_MAX_DEPTH] = '\0';
	o = jws_json_parse ((const unsigned char *)deep, strlen (deep), err, sizeof err);
	assert_non_null (o);
	json_object_put (o);
	assert_null (jws_json_parse ((const unsigned char *)"", 0, err, sizeof err));
}

static void
test_json_members (void **state)
{
	char *text = malloc (16 * (JWS_JSON_MAX_MEMBERS + 2));
	size_t o = 0;
	json_object *obj;
	char err[128];

	assert_non_null (text);
	text[o++] = '{';
	for (int i = 0; i < JWS_JSON_MAX_MEMBERS; i++)
		o += (size_t)sprintf (text + o, "%s\"m%d\":1", i ? "," : "", i);
	text[o++] = '}';
	obj = jws_json_parse ((unsigned char *)text, o, err, sizeof err);
	assert_non_null (obj);
	json_object_put (obj);
	o--;
	o += (size_t)sprintf (text + o, ",\"one-more\":1}");
	assert_null (jws_json_parse ((unsigned char *)text, o, err, sizeof err));
	free (text);
}

static void
test_strerror (void **state)
{
	for (int rv = 0; rv >= JWS_ERR_CRYPTO; rv--)
		assert_string_not_equal (jws_strerror (rv), "unknown error");
	assert_string_equal (jws_strerror (-999), "unknown error");
	assert_string_equal (jws_alg_name (JWS_ALG_ES384), "ES384");
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_es256_es384),
		cmocka_unit_test (test_upstream_key),
		cmocka_unit_test (test_kid),
		cmocka_unit_test (test_crit_empty),
		cmocka_unit_test (test_alg_none),
		cmocka_unit_test (test_alg_hmac),
		cmocka_unit_test (test_alg_rsa),
		cmocka_unit_test (test_alg_other),
		cmocka_unit_test (test_alg_key_mismatch),
		cmocka_unit_test (test_header),
		cmocka_unit_test (test_signature_bytes),
		cmocka_unit_test (test_base64_parts),
		cmocka_unit_test (test_sizes),
		cmocka_unit_test (test_base64url),
		cmocka_unit_test (test_json_strict),
		cmocka_unit_test (test_json_members),
		cmocka_unit_test (test_strerror),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
