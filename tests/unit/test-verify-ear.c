/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the EAR verifier (src/verify-ear.c), both forms: upstream
 * Veraison's claim sets (tests/data/ear) signed here with upstream's test
 * key (skey.json, as `arc create` would) and with generated P-256/P-384
 * keys, as JWTs and, converted to CBOR, as COSE_Sign1; the IETF draft's
 * JSON example likewise.  Each negative case is properly signed and
 * changed in one place only, and asserts its own error code.
 */
#include "config.h"

#include "claims.h"
#include "ear-tokens.h"
#include "policy.h"
#include "verify-ear.h"

#include <json-c/json.h>
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

#define IAT_VERAISON 1666091373  /* ear-claims.json, ear-claims-tv-ok.json */
#define IAT_PARSEC 1666529184    /* ear-claims-key-attestation-*.json, the draft's */
#define NONCE "0123456789abcdef" /* 16 bytes */
#define NONCE_B64 "MDEyMzQ1Njc4OWFiY2RlZg"

static EVP_PKEY *upstream, *upstream_pub, *p256, *p384, *other;
static const char *const anchors[] = { "veraison-test", "p384-test", "third" };

static int
setup (void **state)
{
	size_t n;
	char *s = et_read_data ("skey.json", &n);
	if (!s)
		return -1;
	upstream = et_jwk_parse (s, n);
	free (s);
	s = et_read_data ("pkey.json", &n);
	if (!s)
		return -1;
	upstream_pub = et_jwk_parse (s, n);
	free (s);
	p256 = et_keygen ("P-256");
	p384 = et_keygen ("P-384");
	other = et_keygen ("P-256");
	return upstream && upstream_pub && p256 && p384 && other ? 0 : -1;
}

static int
teardown (void **state)
{
	EVP_PKEY_free (upstream);
	EVP_PKEY_free (upstream_pub);
	EVP_PKEY_free (p256);
	EVP_PKEY_free (p384);
	EVP_PKEY_free (other);
	return 0;
}

/* ---------------------------------------------------------------- tokens */

/* The claims of @file, changed by @edit ("name=JSON" sets a top-level
 * member, "-name" removes one, "sub.NAME=JSON" and "sub-NAME" do the same in
 * the first submodule; NULL-terminated), as JSON text. */
static char *
claims (const char *file, const char *const *edit)
{
	size_t n;
	char *text = et_read_data (file, &n), *out;
	json_object *root, *subs = NULL, *sub = NULL;

	if (!text)
		fail_msg ("tests/data/ear/%s: missing (P11W_SRCDIR?)", file);
	root = json_tokener_parse (text);
	assert_non_null (root);
	free (text);
	if (json_object_object_get_ex (root, "submods", &subs)) {
		json_object_object_foreach (subs, k, v) {
			(void)k;
			sub = v;
			break;
		}
	}
	for (; edit && *edit; edit++) {
		const char *e = *edit, *eq = strchr (e, '=');
		json_object *target = root;
		char name[128];
		if (!strncmp (e, "sub.", 4) || !strncmp (e, "sub-", 4)) {
			assert_non_null (sub);
			target = sub;
			e += 3;
			if (*e == '.')
				e++;
		}
		if (*e == '-') {
			json_object_object_del (target, e + 1);
			continue;
		}
		assert_non_null (eq);
		snprintf (name, sizeof name, "%.*s", (int)(eq - e), e);
		json_object_object_add (target, name, json_tokener_parse (eq + 1));
	}
	out = strdup (json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN));
	assert_non_null (out);
	json_object_put (root);
	return out;
}

static unsigned char *
jwt (const char *payload, EVP_PKEY *key, size_t *len)
{
	const char *alg = EVP_PKEY_get_bits (key) > 256 ? "ES384" : "ES256";
	char header[64], *t;
	snprintf (header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	t = et_jws (header, (const unsigned char *)payload, strlen (payload), alg, key, NULL, 0);
	assert_non_null (t);
	*len = strlen (t);
	return (unsigned char *)t;
}

static unsigned char *
cose (const char *payload_json, EVP_PKEY *key, bool cwt, size_t *len)
{
	size_t clen;
	unsigned char *c = et_json_to_cbor (payload_json, &clen), *t;
	assert_non_null (c);
	t = et_cose (key, EVP_PKEY_get_bits (key) > 256 ? -35 : -7, NULL, 0, c, clen, cwt, len);
	assert_non_null (t);
	free (c);
	return t;
}

struct run {
	struct verify_ear_input in;
	struct cose_key keys[3];
	struct claim_set *cs;
	size_t key_index;
	bool nonce_matched;
	char err[512];
	int rv;
};

static void
defaults (struct run *r, const unsigned char *token, size_t len, int64_t iat)
{
	memset (r, 0, sizeof *r);
	r->keys[0] = (struct cose_key){ upstream_pub, NULL, 0 };
	r->keys[1] = (struct cose_key){ p384, NULL, 0 };
	r->keys[2] = (struct cose_key){ p256, NULL, 0 };
	r->in.token = token;
	r->in.len = len;
	r->in.keys = r->keys;
	r->in.n_keys = 3;
	r->in.anchor_names = anchors;
	r->in.now = iat + 60;
	r->in.skew = 30;
	r->in.profile = VERIFY_EAR_PROFILE_VERAISON;
	r->key_index = 99;
}

static int
go (struct run *r)
{
	strcpy (r->err, "unset");
	r->cs = claim_set_new ();
	assert_non_null (r->cs);
	r->rv = verify_ear (&r->in, r->cs, &r->key_index, &r->nonce_matched, r->err, sizeof r->err);
	assert_true (r->err[0] && strcmp (r->err, "unset") != 0);
	if (r->rv != VERIFY_EAR_OK) {
		assert_int_equal (claim_set_count (r->cs), 0);
		assert_false (r->nonce_matched);
	}
	return r->rv;
}

static void
done (struct run *r)
{
	claim_set_free (r->cs);
	r->cs = NULL;
}

/* Verify @token as the default run (plus @nonce) expects @want. */
static void
expect_token (unsigned char *token, size_t len, int64_t iat, const char *nonce, int want)
{
	struct run r;
	defaults (&r, token, len, iat);
	if (nonce) {
		r.in.nonce = (const unsigned char *)nonce;
		r.in.nonce_len = strlen (nonce);
	}
	if (go (&r) != want)
		fail_msg ("got %d (%s: %s), want %d (%s)", r.rv, verify_ear_strerror (r.rv), r.err, want,
		          verify_ear_strerror (want));
	done (&r);
	free (token);
}

/* The claims of @file with @edit, in both forms, signed by upstream's key:
 * each must give @want (@want_cose for the COSE form). */
static void
expect_both (const char *file, const char *const *edit, int64_t iat, const char *nonce, int want,
             int want_cose)
{
	char *c = claims (file, edit);
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	expect_token (t, len, iat, nonce, want);
	t = cose (c, upstream, false, &len);
	expect_token (t, len, iat, nonce, want_cose);
	free (c);
}

#define EDIT(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *
str_claim (const struct claim_set *cs, const char *name)
{
	const struct claim *c = claim_set_find (cs, name);
	if (!c)
		fail_msg ("no claim %s", name);
	assert_int_equal (c->v.type, CLAIM_STRING);
	return (const char *)c->v.data;
}

static int64_t
int_claim (const struct claim_set *cs, const char *name)
{
	const struct claim *c = claim_set_find (cs, name);
	if (!c)
		fail_msg ("no claim %s", name);
	assert_int_equal (c->v.type, CLAIM_INT);
	return c->v.i;
}

/* ---------------------------------------------------------------- positive */

static void
check_veraison_claims (const struct claim_set *cs, const char *anchor)
{
	assert_string_equal (str_claim (cs, "ear.profile"), VERIFY_EAR_PROFILE_VERAISON);
	assert_int_equal (int_claim (cs, "ear.iat"), IAT_VERAISON);
	assert_string_equal (str_claim (cs, "ear.verifier-id.developer"), "Acme Inc.");
	assert_string_equal (str_claim (cs, "ear.verifier-id.build"), "rrtrap-v1.0.0");
	assert_string_equal (str_claim (cs, "ear.submod.test.status"), "affirming");
	assert_string_equal (str_claim (cs, "ear.status"), "affirming");
	assert_string_equal (str_claim (cs, "ear.policy-id"),
	                     "https://veraison.example/policy/1/60a0068d");
	assert_string_equal (str_claim (cs, "ear.submod.test.policy-id"),
	                     "https://veraison.example/policy/1/60a0068d");
	assert_string_equal (str_claim (cs, "evidence.format"), "ear");
	assert_string_equal (str_claim (cs, "evidence.anchor"), anchor);
}

static void
test_jwt_upstream (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;

	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (r.err, "ok");
	assert_int_equal (r.key_index, 0);
	assert_false (r.nonce_matched);
	check_veraison_claims (r.cs, "veraison-test");
	/* profile, iat, 2 verifier-id, 2 x (status, policy-id), 2 evidence */
	assert_int_equal (claim_set_count (r.cs), 10);
	assert_null (claim_set_find (r.cs, "ear.tv.hardware"));
	done (&r);
	free (t);
	free (c);
}

static void
test_cose_upstream (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t = cose (c, upstream, false, &len);
	struct run r;

	assert_int_equal (t[0], 0xd2);
	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_int_equal (r.key_index, 0);
	check_veraison_claims (r.cs, "veraison-test");
	assert_int_equal (claim_set_count (r.cs), 10);
	done (&r);
	free (t);
	/* Inside a CWT tag (61): first byte 0xd8. */
	t = cose (c, upstream, true, &len);
	assert_int_equal (t[0], 0xd8);
	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	check_veraison_claims (r.cs, "veraison-test");
	done (&r);
	free (t);
	free (c);
}

static void
check_tv (const struct claim_set *cs)
{
	static const char *const names[] = { "instance-identity", "configuration", "file-system",
		                             "hardware", "runtime-opaque", "storage-opaque",
		                             "sourced-data" };
	char n[128];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf (n, sizeof n, "ear.tv.%s", names[i]);
		assert_int_equal (int_claim (cs, n), 2);
		snprintf (n, sizeof n, "ear.submod.test.tv.%s", names[i]);
		assert_int_equal (int_claim (cs, n), 2);
	}
	assert_int_equal (int_claim (cs, "ear.tv.executables"), 3);
}

/* ES384 under a P-384 key, both forms, with the full vector. */
static void
test_es384_vector (void **state)
{
	char *c = claims ("ear-claims-tv-ok.json", NULL);
	size_t len;
	unsigned char *t = jwt (c, p384, &len);
	struct run r;

	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_int_equal (r.key_index, 1);
	assert_string_equal (str_claim (r.cs, "evidence.anchor"), "p384-test");
	check_tv (r.cs);
	done (&r);
	free (t);
	t = cose (c, p384, false, &len);
	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_int_equal (r.key_index, 1);
	check_tv (r.cs);
	done (&r);
	free (t);
	free (c);
}

static void
test_nonce (void **state)
{
	char *c = claims ("ear-claims.json", EDIT ("eat_nonce=\"" NONCE_B64 "\""));
	size_t len;
	unsigned char *t = jwt (c, p256, &len);
	struct run r;

	defaults (&r, t, len, IAT_VERAISON);
	r.in.nonce = (const unsigned char *)NONCE;
	r.in.nonce_len = 16;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_true (r.nonce_matched);
	assert_int_equal (r.key_index, 2);
	done (&r);
	/* Not asked for: accepted, and not matched. */
	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_false (r.nonce_matched);
	done (&r);
	free (t);
	/* CBOR: a byte string. */
	t = cose (c, p256, false, &len);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.nonce = (const unsigned char *)NONCE;
	r.in.nonce_len = 16;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_true (r.nonce_matched);
	done (&r);
	free (t);
	free (c);
}

/* The draft's JSON example (profile #03, underscore names, a list of
 * policy ids), and the same claims as #04. */
static void
test_ietf_profile (void **state)
{
	char *c = claims ("diag/ear-json-1.diag", NULL);
	char *c4 = claims ("diag/ear-json-1.diag",
	                   EDIT ("eat_profile=\"" VERIFY_EAR_PROFILE_IETF_04 "\""));
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;

	defaults (&r, t, len, IAT_PARSEC);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_03;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (str_claim (r.cs, "ear.status"), "contraindicated");
	assert_string_equal (str_claim (r.cs, "ear.submod.PSA.status"), "contraindicated");
	assert_int_equal (int_claim (r.cs, "ear.tv.executables"), 96);
	assert_int_equal (int_claim (r.cs, "ear.submod.PSA.tv.hardware"), 2);
	assert_string_equal (str_claim (r.cs, "ear.policy-id"),
	                     "https://veraison.example/policy/1/60a0068d");
	assert_string_equal (str_claim (r.cs, "ear.verifier-id.build"), "vts 0.0.1");
	done (&r);
	/* The Veraison profile's names are not this profile's. */
	defaults (&r, t, len, IAT_PARSEC);
	assert_int_equal (go (&r), VERIFY_EAR_ERR_PROFILE);
	done (&r);
	free (t);
	t = cose (c4, upstream, false, &len);
	defaults (&r, t, len, IAT_PARSEC);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_04;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (str_claim (r.cs, "ear.profile"), VERIFY_EAR_PROFILE_IETF_04);
	assert_string_equal (str_claim (r.cs, "ear.status"), "contraindicated");
	done (&r);
	free (t);
	free (c);
	free (c4);
}

/* Several policy ids: the claim is left out, so a policy naming it fails
 * closed, while the rest of the result stands. */
static void
test_ietf_policy_ids (void **state)
{
	char *c = claims ("diag/ear-json-1.diag",
	                  EDIT ("sub.ear_appraisal_policy_ids=[\"p://a\",\"p://b\"]"));
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;

	defaults (&r, t, len, IAT_PARSEC);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_03;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_null (claim_set_find (r.cs, "ear.policy-id"));
	assert_null (claim_set_find (r.cs, "ear.submod.PSA.policy-id"));
	done (&r);
	free (t);
	free (c);
	/* An empty list, or a bare string where this profile wants a list. */
	c = claims ("diag/ear-json-1.diag", EDIT ("sub.ear_appraisal_policy_ids=[]"));
	t = jwt (c, upstream, &len);
	defaults (&r, t, len, IAT_PARSEC);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_03;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_POLICY_ID);
	done (&r);
	free (t);
	free (c);
	c = claims ("diag/ear-json-1.diag", EDIT ("sub.ear_appraisal_policy_ids=\"p://a\""));
	t = cose (c, upstream, false, &len);
	defaults (&r, t, len, IAT_PARSEC);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_03;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_POLICY_ID);
	done (&r);
	free (t);
	free (c);
}

/* Two submodules: no top-level appraisal claims. */
static void
test_two_submods (void **state)
{
	char *c = claims ("ear-claims.json",
	                  EDIT ("submods={\"cpu\":{\"ear.status\":\"affirming\"},"
	                        "\"gpu.0\":{\"ear.status\":\"warning\",\"ear.trustworthiness-vector\":"
	                        "{\"hardware\":32}}}"));
	size_t len;
	unsigned char *t = cose (c, upstream, false, &len);
	struct run r;

	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (str_claim (r.cs, "ear.submod.cpu.status"), "affirming");
	assert_string_equal (str_claim (r.cs, "ear.submod.gpu.0.status"), "warning");
	assert_int_equal (int_claim (r.cs, "ear.submod.gpu.0.tv.hardware"), 32);
	assert_null (claim_set_find (r.cs, "ear.status"));
	assert_null (claim_set_find (r.cs, "ear.tv.hardware"));
	done (&r);
	free (t);
	free (c);
}

/* Extension members (ear.raw-evidence, ear.veraison.*) are ignored. */
static void
test_extensions_ignored (void **state)
{
	char *c = claims ("ear-claims-key-attestation-ok.json", NULL);
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;

	defaults (&r, t, len, IAT_PARSEC);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (str_claim (r.cs, "ear.submod.PARSEC_TPM.status"), "affirming");
	assert_string_equal (str_claim (r.cs, "ear.policy-id"), "policy://parsec/60a0068d");
	done (&r);
	free (t);
	free (c);
}

/* Status as a tier number in JSON, and as a name in CBOR: the same claim. */
static void
test_status_forms (void **state)
{
	char *c = claims ("ear-claims.json", EDIT ("sub.ear.status=32"));
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;

	defaults (&r, t, len, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	assert_string_equal (str_claim (r.cs, "ear.status"), "warning");
	done (&r);
	free (t);
	free (c);
	/* et_json_to_cbor turns status names into tiers; a name that is no
	 * tier stays a text string, and is refused as such. */
	c = claims ("ear-claims.json", EDIT ("sub.ear.status=\"affirmed\""));
	t = cose (c, upstream, false, &len);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_STATUS);
	free (c);
}

/* ---------------------------------------------------------------- policy */

static bool
policy_passes (const char *file, const char *const *edit, char *reason, size_t rlen)
{
	static const char doc[] =
		"{\"version\": 1, \"nonce\": \"optional\", \"rule\": {\"format\": \"ear\", "
		"\"anchors\": [\"veraison-test\"], \"claims\": ["
		"{\"claim\": \"ear.status\", \"equals\": \"affirming\"}]}}";
	char perr[512], *c = claims (file, edit);
	struct policy *p = policy_parse ("t.json", doc, strlen (doc), perr, sizeof perr);
	struct policy_result res;
	struct evidence_claims ev;
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;
	bool pass;

	if (!p)
		fail_msg ("%s", perr);
	defaults (&r, t, len, IAT_PARSEC);
	r.in.now = IAT_PARSEC + 10;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	ev = (struct evidence_claims){ "ear", "veraison-test", (time_t)r.in.now, r.nonce_matched, r.cs };
	pass = policy_evaluate (p, &ev, 1, (time_t)r.in.now, &res);
	snprintf (reason, rlen, "%s", res.reason);
	done (&r);
	policy_free (p);
	free (t);
	free (c);
	return pass;
}

static void
test_policy_status (void **state)
{
	char reason[POLICY_REASON_MAX];

	assert_true (policy_passes ("ear-claims-key-attestation-ok.json", NULL, reason, sizeof reason));
	assert_false (policy_passes ("ear-claims-key-attestation-ko.json", NULL, reason, sizeof reason));
	assert_non_null (strstr (reason, "contraindicated"));
	assert_false (policy_passes ("ear-claims-key-attestation-ok.json",
	                             EDIT ("sub.ear.status=\"warning\""), reason, sizeof reason));
	assert_non_null (strstr (reason, "warning"));
	assert_false (policy_passes ("ear-claims-key-attestation-ok.json",
	                             EDIT ("sub.ear.status=\"none\""), reason, sizeof reason));
}

/* ---------------------------------------------------------------- negative: signature */

static void
test_neg_signature (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t;
	struct run r;

	/* A flipped signature bit, both forms. */
	t = jwt (c, upstream, &len);
	t[len - 3] = t[len - 3] == 'A' ? 'B' : 'A';
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_SIGNATURE));
	t = cose (c, upstream, false, &len);
	t[len - 1] ^= 1;
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_COSE (COSE_ERR_SIGNATURE));

	/* Signed by a key nobody pinned (wrong anchor). */
	t = jwt (c, other, &len);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_SIGNATURE));
	t = cose (c, other, false, &len);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_COSE (COSE_ERR_SIGNATURE));

	/* ES256 when only a P-384 key is pinned. */
	t = jwt (c, p256, &len);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.keys = &r.keys[1];
	r.in.n_keys = 1;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_JWS (JWS_ERR_KEY_MISMATCH));
	done (&r);
	free (t);
	t = cose (c, p256, false, &len);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.keys = &r.keys[1];
	r.in.n_keys = 1;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_COSE (COSE_ERR_NO_KEY));
	done (&r);
	free (t);
	free (c);
}

static void
test_neg_algs (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	const unsigned char *p = (const unsigned char *)c;
	EVP_PKEY *rsa = et_keygen ("RSA"), *p521 = et_keygen ("P-521");
	unsigned char *spki = NULL, *t;
	int n = i2d_PUBKEY (upstream_pub, &spki);
	size_t len, clen;
	unsigned char *cb;

	assert_non_null (rsa);
	assert_non_null (p521);
	assert_true (n > 0);
	t = (unsigned char *)et_jws ("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, strlen (c), "none", NULL,
	                             NULL, 0);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_ALG_NONE));
	t = (unsigned char *)et_jws ("{\"alg\":\"HS256\"}", p, strlen (c), "HS256", NULL, spki,
	                             (size_t)n);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_ALG_HMAC));
	t = (unsigned char *)et_jws ("{\"alg\":\"RS256\"}", p, strlen (c), "RS256", rsa, NULL, 0);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_ALG_RSA));
	t = (unsigned char *)et_jws ("{\"alg\":\"ES256\",\"crit\":[\"exp\"]}", p, strlen (c), "ES256",
	                             upstream, NULL, 0);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_CRIT));
	/* COSE: ES512 is a COSE alg, but not one an EAR may use here. */
	cb = et_json_to_cbor (c, &clen);
	assert_non_null (cb);
	t = et_cose (p521, -36, NULL, 0, cb, clen, false, &len);
	assert_non_null (t);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_COSE (COSE_ERR_ALG_NOT_ALLOWED));
	free (cb);
	OPENSSL_free (spki);
	EVP_PKEY_free (rsa);
	EVP_PKEY_free (p521);
	free (c);
}

/* ---------------------------------------------------------------- negative: encoding */

static void
test_neg_encoding (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t, *u;
	struct run r;

	/* base64url: the standard alphabet's '+' in the payload. */
	t = jwt (c, upstream, &len);
	((unsigned char *)strchr ((char *)t, '.'))[2] = '+';
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_BASE64));
	/* A fourth part. */
	t = jwt (c, upstream, &len);
	u = malloc (len + 6);
	assert_non_null (u);
	memcpy (u, t, len);
	memcpy (u + len, ".AAAA", 5);
	expect_token (u, len + 5, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_FORMAT));
	/* Truncated, and a trailing newline. */
	u = malloc (len + 1);
	assert_non_null (u);
	memcpy (u, t, len);
	u[len] = '\n';
	expect_token (u, len + 1, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_BASE64));
	expect_token (t, len - 2, IAT_VERAISON, NULL, VERIFY_EAR_ERR_JWS (JWS_ERR_SIG_LENGTH));
	/* COSE: truncated, and a trailing byte. */
	t = cose (c, upstream, false, &len);
	u = malloc (len + 1);
	assert_non_null (u);
	memcpy (u, t, len);
	u[len] = 0;
	expect_token (u, len + 1, IAT_VERAISON, NULL, VERIFY_EAR_ERR_COSE (COSE_ERR_CBOR));
	expect_token (t, len - 1, IAT_VERAISON, NULL, VERIFY_EAR_ERR_COSE (COSE_ERR_CBOR_LIMIT));
	/* Oversized, and empty. */
	u = calloc (1, VERIFY_EAR_MAX_SIZE + 1);
	assert_non_null (u);
	memcpy (u, "eyJ", 3);
	defaults (&r, u, VERIFY_EAR_MAX_SIZE + 1, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_ERR_SIZE);
	done (&r);
	defaults (&r, u, 0, IAT_VERAISON);
	assert_int_equal (go (&r), VERIFY_EAR_ERR_SIZE);
	done (&r);
	free (u);
	free (c);
}

/* ---------------------------------------------------------------- negative: claims */

static void
test_neg_nonce (void **state)
{
	/* A nonce is expected; the token carries another, none, or garbage. */
	expect_both ("ear-claims.json", EDIT ("eat_nonce=\"" NONCE_B64 "\""), IAT_VERAISON,
	             "fedcba9876543210", VERIFY_EAR_ERR_NONCE, VERIFY_EAR_ERR_NONCE);
	expect_both ("ear-claims.json", NULL, IAT_VERAISON, NONCE, VERIFY_EAR_ERR_NONCE_MISSING,
	             VERIFY_EAR_ERR_NONCE_MISSING);
	/* Too short to be a nonce (RFC 9711: 8..64 bytes). */
	expect_both ("ear-claims.json", EDIT ("eat_nonce=\"AQID\""), IAT_VERAISON, NONCE,
	             VERIFY_EAR_ERR_NONCE, VERIFY_EAR_ERR_NONCE);
	/* Not base64url (and so not converted to a bstr for CBOR either). */
	expect_both ("ear-claims.json", EDIT ("eat_nonce=\"MDEyMzQ1Njc4OWFiY2RlZg==\""),
	             IAT_VERAISON, NONCE, VERIFY_EAR_ERR_NONCE, VERIFY_EAR_ERR_NONCE);
	expect_both ("ear-claims.json", EDIT ("eat_nonce=[\"" NONCE_B64 "\"]"), IAT_VERAISON, NONCE,
	             VERIFY_EAR_ERR_NONCE, VERIFY_EAR_ERR_NONCE);
}

static void
test_neg_time (void **state)
{
	struct run r;
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);

	/* Issued in the future, beyond the skew. */
	defaults (&r, t, len, IAT_VERAISON);
	r.in.now = IAT_VERAISON - 31;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_IAT_FUTURE);
	done (&r);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.now = IAT_VERAISON - 30; /* within it */
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	done (&r);
	/* Stale: older than max-age plus skew. */
	defaults (&r, t, len, IAT_VERAISON);
	r.in.max_age = 300;
	r.in.now = IAT_VERAISON + 331;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_IAT_STALE);
	done (&r);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.max_age = 300;
	r.in.now = IAT_VERAISON + 330;
	assert_int_equal (go (&r), VERIFY_EAR_OK);
	done (&r);
	free (t);
	free (c);

	expect_both ("ear-claims.json", EDIT ("-iat"), IAT_VERAISON, NULL, VERIFY_EAR_ERR_IAT_MISSING,
	             VERIFY_EAR_ERR_IAT_MISSING);
	expect_both ("ear-claims.json", EDIT ("iat=\"1666091373\""), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_CLAIM_TYPE, VERIFY_EAR_ERR_CLAIM_TYPE);
	expect_both ("ear-claims.json", EDIT ("iat=1666091373.5"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_CLAIM_TYPE, VERIFY_EAR_ERR_CLAIM_TYPE);
	/* Expired: exp is the first second it is not valid, less the skew. */
	expect_both ("ear-claims.json", EDIT ("exp=1666091403"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_EXPIRED, VERIFY_EAR_ERR_EXPIRED);
	expect_both ("ear-claims.json", EDIT ("exp=1666091404"), IAT_VERAISON, NULL, VERIFY_EAR_OK,
	             VERIFY_EAR_OK);
	expect_both ("ear-claims.json", EDIT ("exp=-9223372036854775808"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_EXPIRED, VERIFY_EAR_ERR_EXPIRED);
	expect_both ("ear-claims.json", EDIT ("nbf=1666091464"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_NOT_YET_VALID, VERIFY_EAR_ERR_NOT_YET_VALID);
	expect_both ("ear-claims.json", EDIT ("iat=9223372036854775807"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_IAT_FUTURE, VERIFY_EAR_ERR_IAT_FUTURE);
}

static void
test_neg_profile (void **state)
{
	struct run r;
	char *c = claims ("ear-claims.json", NULL);
	size_t len;
	unsigned char *t = jwt (c, upstream, &len);

	defaults (&r, t, len, IAT_VERAISON);
	r.in.profile = VERIFY_EAR_PROFILE_IETF_04;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_PROFILE);
	done (&r);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.profile = "tag:example.com,2024:other";
	assert_int_equal (go (&r), VERIFY_EAR_ERR_ARGS);
	done (&r);
	free (t);
	free (c);
	expect_both ("ear-claims.json", EDIT ("eat_profile=\"tag:github.com,2023:veraison/ear \""),
	             IAT_VERAISON, NULL, VERIFY_EAR_ERR_PROFILE, VERIFY_EAR_ERR_PROFILE);
	expect_both ("ear-claims.json", EDIT ("-eat_profile"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_PROFILE_MISSING, VERIFY_EAR_ERR_PROFILE_MISSING);
	expect_both ("ear-claims.json", EDIT ("eat_profile=7"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_CLAIM_TYPE, VERIFY_EAR_ERR_CLAIM_TYPE);
}

static void
test_neg_status (void **state)
{
	expect_both ("ear-claims.json", EDIT ("sub.ear.status=\"affirmed\""), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_STATUS, VERIFY_EAR_ERR_STATUS);
	expect_both ("ear-claims.json", EDIT ("sub.ear.status=3"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_STATUS, VERIFY_EAR_ERR_STATUS);
	expect_both ("ear-claims.json", EDIT ("sub.ear.status=true"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_STATUS, VERIFY_EAR_ERR_STATUS);
	expect_both ("ear-claims.json", EDIT ("sub-ear.status"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_STATUS_MISSING, VERIFY_EAR_ERR_STATUS_MISSING);
}

static void
test_neg_tv (void **state)
{
	expect_both ("ear-claims-tv-ok.json",
	             EDIT ("sub.ear.trustworthiness-vector={\"hardware\":128}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_TV_VALUE, VERIFY_EAR_ERR_TV_VALUE);
	expect_both ("ear-claims-tv-ok.json",
	             EDIT ("sub.ear.trustworthiness-vector={\"hardware\":-129}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_TV_VALUE, VERIFY_EAR_ERR_TV_VALUE);
	expect_both ("ear-claims-tv-ok.json",
	             EDIT ("sub.ear.trustworthiness-vector={\"hardware\":\"2\"}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_TV_VALUE, VERIFY_EAR_ERR_TV_VALUE);
	expect_both ("ear-claims-tv-ok.json",
	             EDIT ("sub.ear.trustworthiness-vector={\"firmware\":2}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_TV, VERIFY_EAR_ERR_TV);
	expect_both ("ear-claims-tv-ok.json", EDIT ("sub.ear.trustworthiness-vector=[2]"),
	             IAT_VERAISON, NULL, VERIFY_EAR_ERR_TV, VERIFY_EAR_ERR_TV);
	/* The range ends are fine. */
	expect_both ("ear-claims-tv-ok.json",
	             EDIT ("sub.ear.trustworthiness-vector={\"hardware\":127,\"executables\":-128}"),
	             IAT_VERAISON, NULL, VERIFY_EAR_OK, VERIFY_EAR_OK);
}

static void
test_neg_submods (void **state)
{
	char big[64 * 40 + 64];
	size_t o = 0;

	expect_both ("ear-claims.json", EDIT ("-submods"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_SUBMODS_MISSING, VERIFY_EAR_ERR_SUBMODS_MISSING);
	expect_both ("ear-claims.json", EDIT ("submods={}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_SUBMODS_MISSING, VERIFY_EAR_ERR_SUBMODS_MISSING);
	expect_both ("ear-claims.json", EDIT ("submods=[]"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_CLAIM_TYPE, VERIFY_EAR_ERR_CLAIM_TYPE);
	expect_both ("ear-claims.json", EDIT ("submods={\"a\":\"affirming\"}"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_SUBMOD, VERIFY_EAR_ERR_SUBMOD);
	/* The draft's second example: "CCA Platform" cannot be part of a
	 * claim name. */
	expect_both ("diag/ear-json-2.diag", EDIT ("eat_profile=\"" VERIFY_EAR_PROFILE_VERAISON "\""),
	             1666529300, NULL, VERIFY_EAR_ERR_SUBMOD_NAME, VERIFY_EAR_ERR_SUBMOD_NAME);
	expect_both ("ear-claims.json",
	             EDIT ("submods={\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":"
	                   "{\"ear.status\":\"affirming\"}}"),
	             IAT_VERAISON, NULL, VERIFY_EAR_ERR_SUBMOD_NAME, VERIFY_EAR_ERR_SUBMOD_NAME);
	expect_both ("ear-claims.json", EDIT ("submods={\"\":{\"ear.status\":\"affirming\"}}"),
	             IAT_VERAISON, NULL, VERIFY_EAR_ERR_SUBMOD_NAME, VERIFY_EAR_ERR_SUBMOD_NAME);
	/* One more than the cap. */
	o += (size_t)sprintf (big + o, "submods={");
	for (int i = 0; i <= VERIFY_EAR_SUBMODS_MAX; i++)
		o += (size_t)sprintf (big + o, "%s\"s%d\":{\"ear.status\":2}", i ? "," : "", i);
	sprintf (big + o, "}");
	expect_both ("ear-claims.json", EDIT (big), IAT_VERAISON, NULL, VERIFY_EAR_ERR_SUBMODS_COUNT,
	             VERIFY_EAR_ERR_SUBMODS_COUNT);
}

static void
test_neg_other_claims (void **state)
{
	expect_both ("ear-claims.json", EDIT ("-ear.verifier-id"), IAT_VERAISON, NULL,
	             VERIFY_EAR_ERR_VERIFIER_ID, VERIFY_EAR_ERR_VERIFIER_ID);
	expect_both ("ear-claims.json", EDIT ("ear.verifier-id={\"build\":\"x\"}"), IAT_VERAISON,
	             NULL, VERIFY_EAR_ERR_VERIFIER_ID, VERIFY_EAR_ERR_VERIFIER_ID);
	expect_both ("ear-claims.json", EDIT ("sub.ear.appraisal-policy-id=[\"x\"]"), IAT_VERAISON,
	             NULL, VERIFY_EAR_ERR_POLICY_ID, VERIFY_EAR_ERR_POLICY_ID);
}

/* What the claims are, rather than what they say. */
static void
test_neg_payload (void **state)
{
	static const char dup[] = "{\"eat_profile\":\"" VERIFY_EAR_PROFILE_VERAISON "\",\"iat\":"
	                          "1666091373,\"iat\":1,\"ear.verifier-id\":{\"developer\":\"a\","
	                          "\"build\":\"b\"},\"submods\":{\"t\":{\"ear.status\":\"affirming\"}}}";
	/* The same in CBOR, with iat (6) twice. */
	static const unsigned char cbor_dup[] = {
		0xa5, 0x19, 0x01, 0x09, 0x78, 0x20, 't', 'a', 'g', ':', 'g', 'i', 't', 'h', 'u', 'b', '.',
		'c', 'o', 'm', ',', '2', '0', '2', '3', ':', 'v', 'e', 'r', 'a', 'i', 's', 'o', 'n', '/',
		'e', 'a', 'r', 0x06, 0x1a, 0x63, 0x4e, 0x89, 0x6d, 0x06, 0x01, 0x19, 0x03, 0xec, 0xa2, 0x00,
		0x61, 'a', 0x01, 0x61, 'b', 0x19, 0x01, 0x0a, 0xa1, 0x61, 't', 0xa1, 0x19, 0x03, 0xe8, 0x02,
	};
	size_t len;
	unsigned char *t;

	t = (unsigned char *)et_jws ("{\"alg\":\"ES256\"}", (const unsigned char *)dup, strlen (dup),
	                             "ES256", upstream, NULL, 0);
	assert_non_null (t);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
	t = et_cose (upstream, -7, NULL, 0, cbor_dup, sizeof cbor_dup, false, &len);
	assert_non_null (t);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
	/* Without the duplicate the CBOR is fine: the test above is honest. */
	{
		unsigned char fixed[sizeof cbor_dup];
		memcpy (fixed, cbor_dup, sizeof fixed);
		fixed[0] = 0xa4;
		memmove (fixed + 44, fixed + 46, sizeof fixed - 46);
		t = et_cose (upstream, -7, NULL, 0, fixed, sizeof fixed - 2, false, &len);
		assert_non_null (t);
		expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_OK);
	}
	t = (unsigned char *)et_jws ("{\"alg\":\"ES256\"}", (const unsigned char *)"[1]", 3, "ES256",
	                             upstream, NULL, 0);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
	t = (unsigned char *)et_jws ("{\"alg\":\"ES256\"}", (const unsigned char *)"{\"a\":", 5, "ES256",
	                             upstream, NULL, 0);
	expect_token (t, strlen ((char *)t), IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
	t = et_cose (upstream, -7, NULL, 0, (const unsigned char *)"\x83\x01\x02\x03", 4, false, &len);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
	t = et_cose (upstream, -7, NULL, 0, (const unsigned char *)"\xa1\x01", 2, false, &len);
	expect_token (t, len, IAT_VERAISON, NULL, VERIFY_EAR_ERR_PAYLOAD);
}

static void
test_neg_args (void **state)
{
	char *c = claims ("ear-claims.json", NULL);
	size_t len, ki = 7;
	unsigned char *t = jwt (c, upstream, &len);
	struct run r;
	bool m = true;
	char err[64];

	defaults (&r, t, len, IAT_VERAISON);
	r.in.nonce = (const unsigned char *)"short";
	r.in.nonce_len = 5;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_ARGS);
	done (&r);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.anchor_names = NULL;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_ARGS);
	done (&r);
	defaults (&r, t, len, IAT_VERAISON);
	r.in.n_keys = 0;
	assert_int_equal (go (&r), VERIFY_EAR_ERR_ARGS);
	done (&r);
	assert_int_equal (verify_ear (NULL, NULL, &ki, &m, err, sizeof err), VERIFY_EAR_ERR_ARGS);
	assert_false (m);
	assert_int_equal (ki, 7);
	/* A claim already in the set: refused, and nothing else added. */
	defaults (&r, t, len, IAT_VERAISON);
	r.cs = claim_set_new ();
	assert_non_null (r.cs);
	assert_int_equal (claim_set_add_string (r.cs, "ear.profile", "x", 1), CLAIMS_OK);
	assert_int_equal (verify_ear (&r.in, r.cs, NULL, NULL, err, sizeof err), VERIFY_EAR_ERR_CLAIMS);
	assert_int_equal (claim_set_count (r.cs), 1);
	claim_set_free (r.cs);
	/* Out-parameters and the message are optional. */
	r.cs = claim_set_new ();
	assert_non_null (r.cs);
	assert_int_equal (verify_ear (&r.in, r.cs, NULL, NULL, NULL, 0), VERIFY_EAR_OK);
	claim_set_free (r.cs);
	free (t);
	free (c);
}

static void
test_strerror (void **state)
{
	for (int rv = 0; rv >= VERIFY_EAR_ERR_CRYPTO; rv--)
		assert_string_not_equal (verify_ear_strerror (rv), "unknown error");
	assert_string_equal (verify_ear_strerror (VERIFY_EAR_ERR_JWS (JWS_ERR_ALG_NONE)),
	                     jws_strerror (JWS_ERR_ALG_NONE));
	assert_string_equal (verify_ear_strerror (VERIFY_EAR_ERR_COSE (COSE_ERR_SIGNATURE)),
	                     cose_strerror (COSE_ERR_SIGNATURE));
	assert_string_equal (verify_ear_strerror (-50), "unknown error");
	assert_string_equal (verify_ear_strerror (1), "unknown error");
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_jwt_upstream),
		cmocka_unit_test (test_cose_upstream),
		cmocka_unit_test (test_es384_vector),
		cmocka_unit_test (test_nonce),
		cmocka_unit_test (test_ietf_profile),
		cmocka_unit_test (test_ietf_policy_ids),
		cmocka_unit_test (test_two_submods),
		cmocka_unit_test (test_extensions_ignored),
		cmocka_unit_test (test_status_forms),
		cmocka_unit_test (test_policy_status),
		cmocka_unit_test (test_neg_signature),
		cmocka_unit_test (test_neg_algs),
		cmocka_unit_test (test_neg_encoding),
		cmocka_unit_test (test_neg_nonce),
		cmocka_unit_test (test_neg_time),
		cmocka_unit_test (test_neg_profile),
		cmocka_unit_test (test_neg_status),
		cmocka_unit_test (test_neg_tv),
		cmocka_unit_test (test_neg_submods),
		cmocka_unit_test (test_neg_other_claims),
		cmocka_unit_test (test_neg_payload),
		cmocka_unit_test (test_neg_args),
		cmocka_unit_test (test_strerror),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
