/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the claim registry and sets (src/claims.c) and of the
 * policy engine (src/policy.c): loading, every refusal, evaluation. */
#include "config.h"

#include "claims.h"
#include "policy.h"

#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/p11w-policy-XXXXXX";

/* PCR 16 after one extend of SHA-256("p11-warden") from zero, as in
 * conf/policies/tpm-pcr16.json. */
#define PCR16 "372637762caa3f15dc79ddaf57ed34d19229252f541ecc2af7f70d9b1ead639c"
#define PCR16_UPPER "372637762CAA3F15DC79DDAF57ED34D19229252F541ECC2AF7F70D9B1EAD639C"
#define OTHER32 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define NOW ((time_t)1800000000)

#define DOC(rule) "{\"version\": 1, \"rule\": " rule "}"
#define TPM(claims) "{\"format\": \"tpm2-quote\", \"anchors\": [\"ak-prod\"], \"claims\": [" claims "]}"
#define EAR(claims) "{\"format\": \"ear\", \"anchors\": [\"veraison-prod\"], \"claims\": [" claims "]}"
#define EAT(claims) "{\"format\": \"eat\", \"anchors\": [\"eat-prod\"], \"claims\": [" claims "]}"
#define PCR_OK "{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \"" PCR16 "\"}"

static struct policy *
parse (const char *text, char *err, size_t errlen)
{
	return policy_parse ("test.json", text, strlen (text), err, errlen);
}

static struct policy *
parse_ok (const char *text)
{
	char err[1024];
	struct policy *p = parse (text, err, sizeof err);
	if (!p)
		fail_msg ("refused: %s\n%s", err, text);
	return p;
}

/* TEXT is refused, naming test.json, PATH (followed by ": ") and NEEDLE. */
static void
expect_reject_len (const char *text, size_t len, const char *path, const char *needle)
{
	char err[1024], want[300];
	struct policy *p = policy_parse ("test.json", text, len, err, sizeof err);
	if (p) {
		policy_free (p);
		fail_msg ("accepted: %.300s", text);
	}
	if (strncmp (err, "test.json", 9) != 0)
		fail_msg ("error '%s' does not name the file", err);
	if (path) {
		snprintf (want, sizeof want, " %s: ", path);
		if (!strstr (err, want))
			fail_msg ("error '%s' does not name path '%s'", err, path);
	}
	if (!strstr (err, needle))
		fail_msg ("error '%s' does not say '%s'", err, needle);
}

static void
expect_reject (const char *text, const char *path, const char *needle)
{
	expect_reject_len (text, strlen (text), path, needle);
}

static int
setup (void **state)
{
	assert_non_null (mkdtemp (dir));
	return 0;
}

static int
teardown (void **state)
{
	char cmd[600];
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system (cmd) == 0 ? 0 : -1;
}

static void
hex_to_bytes (const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned int b;
		assert_int_equal (sscanf (hex + 2 * i, "%2x", &b), 1);
		out[i] = (unsigned char)b;
	}
}

static void
add_bytes_hex (struct claim_set *cs, const char *name, const char *hex)
{
	unsigned char buf[256];
	size_t n = strlen (hex) / 2;
	assert_true (n <= sizeof buf);
	hex_to_bytes (hex, buf, n);
	assert_int_equal (claim_set_add_bytes (cs, name, buf, n), CLAIMS_OK);
}

static void
add_str (struct claim_set *cs, const char *name, const char *s)
{
	assert_int_equal (claim_set_add_string (cs, name, s, strlen (s)), CLAIMS_OK);
}

/* What the TPM quote verifier would produce. */
static struct claim_set *
tpm_claims (const char *pcr16, bool safe)
{
	struct claim_set *cs = claim_set_new ();
	assert_non_null (cs);
	if (pcr16)
		add_bytes_hex (cs, "tpm.pcr.sha256.16", pcr16);
	assert_int_equal (claim_set_add_bool (cs, "tpm.clock.safe", safe), CLAIMS_OK);
	assert_int_equal (claim_set_add_int (cs, "tpm.firmware-version", 0x2020031200120003LL), CLAIMS_OK);
	assert_int_equal (claim_set_add_int (cs, "tpm.clock.reset-count", 9), CLAIMS_OK);
	add_str (cs, "evidence.format", "tpm2-quote");
	add_str (cs, "evidence.anchor", "ak-prod");
	return cs;
}

/* What the EAR verifier would produce. */
static struct claim_set *
ear_claims (const char *status, int64_t hardware, int64_t executables)
{
	struct claim_set *cs = claim_set_new ();
	assert_non_null (cs);
	add_str (cs, "ear.profile", "tag:github.com,2023:veraison/ear");
	add_str (cs, "ear.status", status);
	assert_int_equal (claim_set_add_int (cs, "ear.tv.hardware", hardware), CLAIMS_OK);
	assert_int_equal (claim_set_add_int (cs, "ear.tv.executables", executables), CLAIMS_OK);
	add_str (cs, "ear.verifier-id.developer", "Acme Inc.");
	add_str (cs, "evidence.format", "ear");
	add_str (cs, "evidence.anchor", "veraison-prod");
	return cs;
}

static struct evidence_claims
evidence (const char *format, const char *anchor, time_t at, const struct claim_set *cs)
{
	struct evidence_claims e = { format, anchor, at, true, cs };
	return e;
}

static struct policy *
load_example (const char *name)
{
	const char *src = getenv ("P11W_SRCDIR");
	char path[1024], err[1024];
	struct policy *p;
	snprintf (path, sizeof path, "%s/conf/policies/%s", src ? src : ".", name);
	p = policy_load_file (path, err, sizeof err);
	if (!p)
		fail_msg ("%s", err);
	return p;
}

/* ---------------------------------------------------------------- claims */

static void
test_registry (void **state)
{
	struct claim_info info;

	assert_int_equal (claims_name_type ("tpm.pcr.sha256.0"), CLAIM_BYTES);
	assert_int_equal (claims_name_type ("tpm.pcr.sha1.23"), CLAIM_BYTES);
	assert_int_equal (claims_name_type ("tpm.pcr.sha512.16"), CLAIM_BYTES);
	assert_int_equal (claims_name_type ("tpm.pcr.sha256.24"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("tpm.pcr.sha256.07"), CLAIM_UNKNOWN); /* one name per PCR */
	assert_int_equal (claims_name_type ("tpm.pcr.sha256."), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("tpm.pcr.sm3.1"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("tpm.pcr.sha256.-1"), CLAIM_UNKNOWN);
	assert_true (claims_lookup_name ("tpm.pcr.sha384.7", &info));
	assert_int_equal (info.fixed_len, 48);
	assert_true (claims_lookup_name ("tpm.ak", &info));
	assert_int_equal (info.fixed_len, 32);
	assert_int_equal (claims_name_type ("tpm.firmware-version"), CLAIM_INT);
	assert_int_equal (claims_name_type ("tpm.clock.reset-count"), CLAIM_INT);
	assert_int_equal (claims_name_type ("tpm.clock.restart-count"), CLAIM_INT);
	assert_int_equal (claims_name_type ("tpm.clock.safe"), CLAIM_BOOL);
	assert_int_equal (claims_name_type ("tpm.clock"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("eat.profile"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("eat.ueid"), CLAIM_BYTES);
	assert_int_equal (claims_name_type ("eat.dbgstat"), CLAIM_INT);
	assert_int_equal (claims_name_type ("eat.measres.fw.boot-1"), CLAIM_INT);
	assert_int_equal (claims_name_type ("eat.measres.a.b.c"), CLAIM_INT);
	assert_int_equal (claims_name_type ("eat.measres.fw"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("eat.measres.fw."), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("eat.submod.gpu0.swversion"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("eat.submod.gpu0.submod.vbios.measres.x.y"), CLAIM_INT);
	assert_int_equal (claims_name_type ("eat.submod.a.b.dbgstat"), CLAIM_INT); /* "a.b" */
	/* Read as submodule "a" with measres.s.profile (an integer) or as
	 * submodule "a.measres.s" with profile (a string): unknown. */
	assert_int_equal (claims_name_type ("eat.submod.a.measres.s.profile"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("eat.submod.gpu0.status"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("ear.status"), CLAIM_STRING);
	assert_true (claims_lookup_name ("ear.status", &info));
	assert_non_null (info.values);
	assert_int_equal (claims_name_type ("ear.tv.sourced-data"), CLAIM_INT);
	assert_int_equal (claims_name_type ("ear.tv.bogus"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("ear.verifier-id.build"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("ear.policy-id"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("ear.submod.cpu.tv.hardware"), CLAIM_INT);
	assert_int_equal (claims_name_type ("ear.submod.cpu.submod.x.status"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("ear.measres.a.b"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("evidence.format"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("evidence.anchor"), CLAIM_STRING);
	assert_int_equal (claims_name_type ("evidence.time"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type (""), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("tpm.ak "), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type ("TPM.ak"), CLAIM_UNKNOWN);
	assert_int_equal (claims_name_type (NULL), CLAIM_UNKNOWN);
	{
		/* Longest names, and one byte more. */
		char name[CLAIM_NAME_MAX + 2];
		memset (name, 'a', sizeof name);
		memcpy (name, "eat.submod.", 11);
		memcpy (name + CLAIM_NAME_MAX - 8, ".dbgstat", 9);
		assert_int_equal (strlen (name), CLAIM_NAME_MAX);
		assert_int_equal (claims_name_type (name), CLAIM_INT);
		memset (name, 'a', sizeof name);
		memcpy (name, "eat.submod.", 11);
		memcpy (name + CLAIM_NAME_MAX - 7, ".dbgstat", 9);
		assert_int_equal (claims_name_type (name), CLAIM_UNKNOWN);
	}
	{
		/* Many dots: the memo keeps this fast (it would be exponential). */
		char name[CLAIM_NAME_MAX + 1];
		size_t o = (size_t)snprintf (name, sizeof name, "eat");
		while (o + 9 + 8 < CLAIM_NAME_MAX)
			o += (size_t)snprintf (name + o, sizeof name - o, ".submod.a");
		snprintf (name + o, sizeof name - o, ".profile");
		assert_int_equal (claims_name_type (name), CLAIM_STRING);
	}
}

static void
test_claim_set (void **state)
{
	struct claim_set *cs = claim_set_new ();
	unsigned char d32[32] = { 1 }, big[CLAIM_VALUE_MAX + 1];
	char longname[CLAIM_NAME_MAX + 2];
	const struct claim *c;

	assert_non_null (cs);
	assert_int_equal (claim_set_add_bytes (cs, "tpm.pcr.sha256.16", d32, 32), CLAIMS_OK);
	assert_int_equal (claim_set_add_bytes (cs, "tpm.pcr.sha256.16", d32, 32), CLAIMS_DUPLICATE);
	assert_int_equal (claim_set_add_bytes (cs, "tpm.pcr.sha256.7", d32, 20), CLAIMS_BAD_VALUE);
	assert_int_equal (claim_set_add_int (cs, "tpm.pcr.sha256.7", 1), CLAIMS_WRONG_TYPE);
	assert_int_equal (claim_set_add_string (cs, "tpm.ak", "x", 1), CLAIMS_WRONG_TYPE);
	assert_int_equal (claim_set_add_int (cs, "tpm.nope", 1), CLAIMS_UNKNOWN_NAME);
	assert_int_equal (claim_set_add_int (cs, "", 1), CLAIMS_BAD_NAME);
	memset (longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal (claim_set_add_int (cs, longname, 1), CLAIMS_BAD_NAME);
	assert_int_equal (claim_set_add_string (cs, "ear.status", "affirmed", 8), CLAIMS_BAD_VALUE);
	assert_int_equal (claim_set_add_string (cs, "ear.status", "warning", 7), CLAIMS_OK);
	assert_int_equal (claim_set_add_string (cs, "eat.swname", "a\0b", 3), CLAIMS_BAD_VALUE);
	memset (big, 'x', sizeof big);
	assert_int_equal (claim_set_add_string (cs, "eat.swname", (char *)big, CLAIM_VALUE_MAX + 1),
	                  CLAIMS_BAD_VALUE);
	assert_int_equal (claim_set_add_string (cs, "eat.swname", (char *)big, CLAIM_VALUE_MAX),
	                  CLAIMS_OK);
	assert_int_equal (claim_set_add_bytes (cs, "eat.ueid", big, 0), CLAIMS_OK);
	assert_int_equal (claim_set_add_int (cs, "eat.dbgstat", -5), CLAIMS_OK);
	assert_int_equal (claim_set_count (cs), 5);
	/* Name order, whatever the order of adding. */
	assert_string_equal (claim_set_at (cs, 0)->name, "ear.status");
	assert_string_equal (claim_set_at (cs, 4)->name, "tpm.pcr.sha256.16");
	assert_null (claim_set_at (cs, 5));
	c = claim_set_find (cs, "eat.dbgstat");
	assert_non_null (c);
	assert_int_equal (c->v.i, -5);
	c = claim_set_find (cs, "eat.swname");
	assert_int_equal (c->v.len, CLAIM_VALUE_MAX);
	assert_int_equal (c->v.data[CLAIM_VALUE_MAX], '\0');
	assert_null (claim_set_find (cs, "eat.profile"));
	assert_null (claim_set_find (NULL, "eat.profile"));
	assert_non_null (claims_strerror (CLAIMS_DUPLICATE));
	claim_set_free (cs);
	claim_set_free (NULL);
}

static void
test_claim_set_cap (void **state)
{
	struct claim_set *cs = claim_set_new ();
	char name[64];
	size_t n = 0;
	/* Distinct registered names: measurement results. */
	for (int s = 0; n < CLAIMS_MAX; s++) {
		for (int r = 0; r < 100 && n < CLAIMS_MAX; r++, n++) {
			snprintf (name, sizeof name, "eat.measres.s%d.r%d", s, r);
			assert_int_equal (claim_set_add_int (cs, name, r), CLAIMS_OK);
		}
	}
	assert_int_equal (claim_set_count (cs), CLAIMS_MAX);
	assert_int_equal (claim_set_add_int (cs, "eat.dbgstat", 1), CLAIMS_TOO_MANY);
	assert_non_null (claim_set_find (cs, "eat.measres.s7.r42"));
	claim_set_free (cs);
}

static void
test_value_format (void **state)
{
	unsigned char d[48];
	struct claim_value v = { .type = CLAIM_BYTES, .data = d, .len = sizeof d };
	char out[300];
	memset (d, 0xab, sizeof d);
	claim_value_format (&v, 64, out, sizeof out);
	/* 32 bytes shown, then the length. */
	assert_int_equal (strspn (out, "ab"), 64);
	assert_non_null (strstr (out, "...(48 bytes)"));
	v.type = CLAIM_STRING;
	v.data = (unsigned char *)"a\"b\n";
	v.len = 4;
	claim_value_format (&v, 64, out, sizeof out);
	assert_string_equal (out, "\"a\\\"b\\x0a\"");
	v.type = CLAIM_INT;
	v.i = INT64_MIN;
	claim_value_format (&v, 64, out, sizeof out);
	assert_string_equal (out, "-9223372036854775808");
	claim_value_format (&v, 64, out, 4);
	assert_int_equal (strlen (out), 3);
}

/* ---------------------------------------------------------------- loading */

static void
test_examples (void **state)
{
	struct policy *p = load_example ("tpm-pcr16.json");
	assert_int_equal (policy_max_age (p), 300);
	assert_true (policy_nonce_required (p));
	assert_true (policy_gates (p, POLICY_OP_DECRYPT));
	assert_true (policy_gates (p, POLICY_OP_DIGEST_KEY));
	assert_false (policy_gates (p, POLICY_OP_SIGN));
	assert_false (policy_gates (p, POLICY_OP_ENCRYPT));
	assert_non_null (strstr (policy_name (p), "tpm-pcr16.json"));
	policy_free (p);

	p = load_example ("ear-affirming.json");
	assert_int_equal (policy_max_age (p), 300);
	policy_free (p);

	p = load_example ("tpm-and-ear.json");
	assert_int_equal (policy_max_age (p), 120);
	assert_true (policy_gates (p, POLICY_OP_SIGN));
	assert_false (policy_gates (p, POLICY_OP_ENCRYPT));
	assert_true (policy_gates (p, (enum policy_op)99)); /* unknown: gated */
	policy_free (p);
	assert_true (policy_gates (NULL, POLICY_OP_ENCRYPT));
}

static void
test_defaults (void **state)
{
	struct policy *p = parse_ok (DOC (TPM ("")));
	assert_int_equal (policy_max_age (p), POLICY_DEFAULT_MAX_AGE);
	assert_true (policy_nonce_required (p));
	for (int op = 0; op < POLICY_OP_COUNT; op++)
		assert_int_equal (policy_gates (p, (enum policy_op)op),
		                  op != POLICY_OP_ENCRYPT && op != POLICY_OP_SIGN);
	policy_free (p);

	p = parse_ok ("{\"version\": 1, \"max-age\": 86400, \"nonce\": \"optional\", "
	              "\"gated-operations\": [\"sign\", \"encrypt\", \"digest-key\", \"read-secret\", "
	              "\"raw-sign\", \"wrap\", \"derive\", \"unwrap\", \"decrypt\"], \"rule\": " TPM ("") "}");
	assert_int_equal (policy_max_age (p), 86400);
	assert_false (policy_nonce_required (p));
	assert_true (policy_gates (p, POLICY_OP_ENCRYPT));
	assert_true (policy_gates (p, POLICY_OP_SIGN));
	assert_string_equal (policy_op_name (POLICY_OP_RAW_SIGN), "raw-sign");
	policy_free (p);

	/* Edges that load: int64 extremes, escapes, every type. */
	p = parse_ok (DOC (EAT ("{\"claim\": \"eat.bootcount\", \"gte\": -9223372036854775808},"
	                        "{\"claim\": \"eat.bootcount\", \"lte\": 9223372036854775807},"
	                        "{\"claim\": \"eat.swname\", \"equals\": \"caf\\u00e9 \\ud83d\\ude00\"},"
	                        "{\"claim\": \"eat.ueid\", \"in\": [\"01aB\", \"02\"]},"
	                        "{\"claim\": \"eat.submod.gpu-0.measres.fw.r1\", \"equals\": 1},"
	                        "{\"claim\": \"evidence.anchor\", \"present\": true}")));
	policy_free (p);
	/* Keys written with escapes are the same keys. */
	p = parse_ok ("{\"\\u0076ersion\": 1, \"rule\": " TPM ("") "}");
	policy_free (p);
}

static void
test_digest (void **state)
{
	const char *text = DOC (TPM (PCR_OK));
	unsigned char want[32];
	unsigned int n = 0;
	struct policy *p = parse_ok (text);
	assert_int_equal (EVP_Digest (text, strlen (text), want, &n, EVP_sha256 (), NULL), 1);
	assert_memory_equal (policy_digest (p), want, 32);
	policy_free (p);
	/* One more space: another digest. */
	p = parse_ok (DOC (TPM (PCR_OK)) " ");
	assert_memory_not_equal (policy_digest (p), want, 32);
	policy_free (p);
}

static void
test_reject_document (void **state)
{
	static char big[POLICY_MAX_SIZE + 2];
	static const char nul[] = "{\"version\": 1,\0 \"rule\": {}}";

	expect_reject ("", "$", "unexpected end of the document");
	expect_reject ("   ", "$", "unexpected end");
	expect_reject ("[1]", "$", "a policy is a JSON object");
	expect_reject ("\"x\"", "$", "a policy is a JSON object");
	expect_reject ("{\"version\": 1,}", "$", "a comma before '}'");
	expect_reject ("{\"version\": 1, \"gated-operations\": [\"decrypt\",]}", "$.gated-operations[1]",
	               "expected a value");
	expect_reject ("{'version': 1}", "$", "double quotes");
	expect_reject ("{\"version\": 01}", "$.version", "leading zero");
	expect_reject ("{\"version\": 1.0}", "$.version", "integers");
	expect_reject ("{\"version\": 1e0}", "$.version", "integers");
	expect_reject ("{\"max-age\": Infinity}", "$.max-age", "unexpected character");
	expect_reject ("{\"max-age\": NaN}", "$.max-age", "unexpected character");
	expect_reject ("{\"max-age\": tru}", "$.max-age", "unexpected word");
	expect_reject ("{\"version\": 1} {}", "$", "text after the end");
	expect_reject ("{\"version\": 1} x", "$", "text after the end");
	expect_reject ("/* c */ {}", "$", "a policy is a JSON object");
	expect_reject ("{\"version\" 1}", "$.version", "expected ':'");
	expect_reject ("{\"version\": 1 \"rule\": 2}", "$.version", "expected ',' or '}'");
	expect_reject ("{\"a\": [1 2]}", "$.a[0]", "expected ',' or ']'");
	expect_reject ("{\"a\": \"x", "$.a", "unterminated string");
	expect_reject ("{\"a\": \"x\ty\"}", "$.a", "control character");
	expect_reject ("{\"a\": \"\\q\"}", "$.a", "invalid escape");
	expect_reject ("{\"a\": \"\\u12g4\"}", "$.a", "invalid \\u escape");
	expect_reject ("{\"a\": \"\\ud800\"}", "$.a", "unpaired UTF-16 surrogate");
	expect_reject ("{\"a\": \"\\udc00\\ud800\"}", "$.a", "unpaired UTF-16 surrogate");
	expect_reject ("{\"a\": \"x\\u0000y\"}", "$.a", "NUL");
	/* json-c would cut this key at the NUL and read "version". */
	expect_reject ("{\"version\\u0000x\": 2, \"version\": 1}", "$", "NUL");
	expect_reject ("\xef\xbb\xbf{}", NULL, "byte-order mark");
	expect_reject ("{\"a\": \"\xc3\x28\"}", NULL, "test.json:1:8: not valid UTF-8");
	expect_reject ("{\"a\": \"\xed\xa0\x80\"}", NULL, "not valid UTF-8"); /* encoded surrogate */
	expect_reject ("{\"a\": \"\xc0\xaf\"}", NULL, "not valid UTF-8");     /* overlong */
	expect_reject_len (nul, sizeof nul - 1, NULL, "test.json:1:15: contains a NUL byte");
	memset (big, ' ', sizeof big);
	memcpy (big, DOC (TPM ("")), strlen (DOC (TPM (""))));
	expect_reject_len (big, POLICY_MAX_SIZE + 1, NULL, "larger than 65536 bytes");
	{
		/* Exactly the cap loads. */
		char err[512];
		struct policy *p = policy_parse ("test.json", big, POLICY_MAX_SIZE, err, sizeof err);
		if (!p)
			fail_msg ("%s", err);
		policy_free (p);
	}
	/* Line and column of a syntax error. */
	expect_reject ("{\n  \"version\": 1,\n  \"rule\": [,]\n}", "$.rule[0]", "test.json:3:12: ");
	assert_null (policy_parse ("test.json", NULL, 0, NULL, 0));
	/* No room for a message: refused all the same. */
	assert_null (policy_parse ("test.json", "{}", 2, NULL, 0));
	assert_null (policy_parse ("test.json", "{", 1, NULL, 0));
	{
		char tiny[8];
		assert_null (policy_parse ("test.json", "{\"version\": 2}", 14, tiny, sizeof tiny));
		assert_string_equal (tiny, "test.js");
	}
}

static void
test_reject_duplicates_and_limits (void **state)
{
	char *text;
	size_t o;

	expect_reject ("{\"version\": 1, \"version\": 1, \"rule\": " TPM ("") "}", "$.version",
	               "duplicate key");
	expect_reject ("{\"version\": 1, \"\\u0076ersion\": 1}", "$.version", "duplicate key");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.clock.safe\", \"equals\": true, \"equals\": false}")),
	               "$.rule.claims[0].equals", "duplicate key");
	expect_reject (DOC ("{\"format\": \"ear\", \"anchors\": [\"a\"], \"claims\": [], \"claims\": []}"),
	               "$.rule.claims", "duplicate key");
	/* Keys of sibling objects may repeat; those of a parent and its child too. */
	{
		struct policy *p = parse_ok (DOC ("{\"allOf\": [" TPM ("") ", {\"allOf\": [" TPM ("") "]}]}"));
		policy_free (p);
	}
	expect_reject ("{\"version\": 9223372036854775808}", "$.version", "out of range");
	expect_reject ("{\"version\": -9223372036854775809}", "$.version", "out of range");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.firmware-version\", \"gte\": 99999999999999999999}")),
	               "$.rule.claims[0].gte", "integer out of range");

	/* Depth: 16 nested arrays and objects load (as far as the scanner
	 * goes), 17 do not. */
	expect_reject ("{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
	               "$.a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]", "nested deeper than 16");
	expect_reject ("{\"a\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}", "$.a", "unknown key");
	expect_reject (DOC ("{\"anyOf\": [{\"anyOf\": [{\"anyOf\": [{\"anyOf\": [{\"anyOf\": [{\"anyOf\": "
	                    "[{\"anyOf\": [{\"anyOf\": [" TPM ("") "]}]}]}]}]}]}]}]}"),
	               "$.rule.anyOf[0].anyOf[0].anyOf[0].anyOf[0].anyOf[0].anyOf[0].anyOf[0].anyOf",
	               "nested deeper than 16");
	/* A null is a value of the wrong type, never "not given". */
	expect_reject ("{\"version\": 1, \"max-age\": null, \"rule\": " TPM ("") "}", "$.max-age",
	               "not null");
	expect_reject ("{\"version\": null, \"rule\": " TPM ("") "}", "$.version", "not null");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"a\"], \"claims\": null}"),
	               "$.rule.claims", "not null");
	expect_reject (DOC ("{\"anyOf\": null}"), "$.rule.anyOf", "not null");
	expect_reject (DOC (TPM ("{\"claim\": null, \"equals\": true}")), "$.rule.claims[0].claim",
	               "not null");

	/* 65 members in one object. */
	text = malloc (4096);
	o = (size_t)sprintf (text, "{");
	for (int i = 0; i < 65; i++)
		o += (size_t)sprintf (text + o, "%s\"k%d\": 1", i ? ", " : "", i);
	sprintf (text + o, "}");
	expect_reject (text, "$.k64", "more than 64 members");
	free (text);

	/* 65 rules: an anyOf of 64 evidence rules. */
	text = malloc (65536);
	o = (size_t)sprintf (text, "{\"version\": 1, \"rule\": {\"anyOf\": [");
	for (int i = 0; i < 64; i++)
		o += (size_t)sprintf (text + o, "%s" TPM (""), i ? ", " : "");
	sprintf (text + o, "]}}");
	expect_reject (text, "$.rule.anyOf[63]", "more than 64 rules");
	/* 63 load. */
	o = (size_t)sprintf (text, "{\"version\": 1, \"rule\": {\"anyOf\": [");
	for (int i = 0; i < 63; i++)
		o += (size_t)sprintf (text + o, "%s" TPM (""), i ? ", " : "");
	sprintf (text + o, "]}}");
	policy_free (parse_ok (text));

	/* 257 predicates. */
	o = (size_t)sprintf (text, "{\"version\": 1, \"rule\": " "{\"format\": \"tpm2-quote\", "
	                     "\"anchors\": [\"ak-prod\"], \"claims\": [");
	for (int i = 0; i < 257; i++)
		o += (size_t)sprintf (text + o, "%s{\"claim\": \"tpm.clock.safe\", \"present\": true}",
		                      i ? ", " : "");
	sprintf (text + o, "]}}");
	expect_reject (text, "$.rule.claims[256]", "more than 256 predicates");
	free (text);
}

static void
test_reject_schema (void **state)
{
	/* The document. */
	expect_reject ("{\"version\": 1, \"colour\": 1, \"rule\": " TPM ("") "}", "$.colour",
	               "unknown key in a policy");
	expect_reject ("{\"rule\": " TPM ("") "}", "$", "'version' is required");
	expect_reject ("{\"version\": 2, \"rule\": " TPM ("") "}", "$.version", "version 1");
	expect_reject ("{\"version\": \"1\", \"rule\": " TPM ("") "}", "$.version", "not a string");
	expect_reject ("{\"version\": 1}", "$", "'rule' is required");
	expect_reject ("{\"version\": 1, \"max-age\": 0, \"rule\": " TPM ("") "}", "$.max-age",
	               "from 1 to 86400 seconds, not 0");
	expect_reject ("{\"version\": 1, \"max-age\": 86401, \"rule\": " TPM ("") "}", "$.max-age",
	               "not 86401");
	expect_reject ("{\"version\": 1, \"max-age\": -1, \"rule\": " TPM ("") "}", "$.max-age", "not -1");
	expect_reject ("{\"version\": 1, \"max-age\": \"300\", \"rule\": " TPM ("") "}", "$.max-age",
	               "integer number of seconds, not a string");
	expect_reject ("{\"version\": 1, \"nonce\": \"maybe\", \"rule\": " TPM ("") "}", "$.nonce",
	               "not \"maybe\"");
	expect_reject ("{\"version\": 1, \"nonce\": false, \"rule\": " TPM ("") "}", "$.nonce",
	               "not a boolean");
	expect_reject ("{\"version\": 1, \"gated-operations\": [\"decrypt\"], \"rule\": " TPM ("") "}",
	               "$.gated-operations", "'unwrap' is missing");
	expect_reject ("{\"version\": 1, \"gated-operations\": [], \"rule\": " TPM ("") "}",
	               "$.gated-operations", "'decrypt' is missing");
	expect_reject ("{\"version\": 1, \"gated-operations\": [\"decrypt\", \"fly\"], "
	               "\"rule\": " TPM ("") "}", "$.gated-operations[1]", "unknown operation \"fly\"");
	expect_reject ("{\"version\": 1, \"gated-operations\": [\"decrypt\", \"decrypt\"], \"rule\": "
	               TPM ("") "}", "$.gated-operations[1]", "'decrypt' is listed twice");
	expect_reject ("{\"version\": 1, \"gated-operations\": \"decrypt\", \"rule\": " TPM ("") "}",
	               "$.gated-operations", "an array of operation names");
	expect_reject ("{\"version\": 1, \"gated-operations\": [1], \"rule\": " TPM ("") "}",
	               "$.gated-operations[0]", "not an integer");

	/* Rules. */
	expect_reject (DOC ("[]"), "$.rule", "a rule is an object");
	expect_reject (DOC ("{\"anyOf\": []}"), "$.rule.anyOf", "'anyOf' is empty");
	expect_reject (DOC ("{\"allOf\": []}"), "$.rule.allOf", "'allOf' is empty");
	expect_reject (DOC ("{\"allOf\": {}}"), "$.rule.allOf", "an array of rules, not an object");
	expect_reject (DOC ("{\"anyOf\": [" TPM ("") "], \"format\": \"ear\"}"), "$.rule",
	               "has both 'anyOf' and 'format'");
	expect_reject (DOC ("{\"anyOf\": [" TPM ("") "], \"allOf\": [" TPM ("") "]}"), "$.rule",
	               "has both 'anyOf' and 'allOf'");
	expect_reject (DOC ("{\"anyOf\": [" TPM ("") "], \"anchors\": [\"x\"]}"), "$.rule.anchors",
	               "unknown key in an anyOf rule");
	expect_reject (DOC ("{\"anchors\": [\"x\"], \"claims\": []}"), "$.rule",
	               "needs 'anyOf', 'allOf' or 'format'");
	expect_reject (DOC ("{\"anyof\": []}"), "$.rule.anyof", "unknown key in a rule");
	expect_reject (DOC ("{\"allOf\": [" TPM ("") ", 7]}"), "$.rule.allOf[1]", "not an integer");
	expect_reject (DOC ("{\"format\": \"tdx\", \"anchors\": [\"a\"], \"claims\": []}"), "$.rule.format",
	               "unknown evidence format \"tdx\"");
	expect_reject (DOC ("{\"format\": 1, \"anchors\": [\"a\"], \"claims\": []}"), "$.rule.format",
	               "not an integer");
	expect_reject (DOC ("{\"format\": \"eat\", \"claims\": []}"), "$.rule", "'anchors' is required");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [], \"claims\": []}"), "$.rule.anchors",
	               "'anchors' is empty");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": \"a\", \"claims\": []}"), "$.rule.anchors",
	               "an array of anchor names");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"ak prod\"], \"claims\": []}"),
	               "$.rule.anchors[0]", "invalid anchor name \"ak prod\"");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"\"], \"claims\": []}"),
	               "$.rule.anchors[0]", "invalid anchor name");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"a\", \"b\", \"a\"], \"claims\": []}"),
	               "$.rule.anchors[2]", "anchor 'a' is listed twice");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [null], \"claims\": []}"),
	               "$.rule.anchors[0]", "not null");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"a\"]}"), "$.rule", "'claims' is required");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"a\"], \"claims\": {}}"), "$.rule.claims",
	               "an array of predicates");
	expect_reject (DOC ("{\"format\": \"eat\", \"anchors\": [\"a\"], \"claims\": [], \"nonce\": 1}"),
	               "$.rule.nonce", "unknown key in a rule");

	/* Predicates. */
	expect_reject (DOC (TPM ("\"tpm.ak\"")), "$.rule.claims[0]", "a predicate is an object");
	expect_reject (DOC (TPM ("{\"equals\": true}")), "$.rule.claims[0]", "'claim' is required");
	expect_reject (DOC (TPM ("{\"claim\": 7, \"equals\": true}")), "$.rule.claims[0].claim",
	               "a claim name is a string");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.24\", \"equals\": \"00\"}")),
	               "$.rule.claims[0].claim", "unknown claim \"tpm.pcr.sha256.24\"");
	expect_reject (DOC (EAT ("{\"claim\": \"eat.submod.a.measres.s.profile\", \"present\": true}")),
	               "$.rule.claims[0].claim", "unknown claim");
	expect_reject (DOC (TPM ("{\"claim\": \"ear.status\", \"equals\": \"affirming\"}")),
	               "$.rule.claims[0].claim", "a rule of format tpm2-quote can name only tpm.* and "
	               "evidence.* claims, not \"ear.status\"");
	expect_reject (DOC (EAR ("{\"claim\": \"eat.profile\", \"equals\": \"x\"}")),
	               "$.rule.claims[0].claim", "a rule of format ear can name only ear.*");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.clock.safe\"}")), "$.rule.claims[0]", "no operator");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.firmware-version\", \"gte\": 1, \"lte\": 9}")),
	               "$.rule.claims[0]", "more than one operator ('gte' and 'lte')");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.clock.safe\", \"eq\": true}")), "$.rule.claims[0].eq",
	               "unknown key in a predicate");
	/* Types. */
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": 16}")),
	               "$.rule.claims[0].equals", "holds bytes, written as a hex string; this is an integer");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.ak\", \"equals\": \"affirmed\"}")),
	               "$.rule.claims[0].equals", "not a hex string: character 4");
	expect_reject (DOC (EAR ("{\"claim\": \"ear.status\", \"equals\": \"0a0b\"}")),
	               "$.rule.claims[0].equals", "ear.status is one of none, affirming, warning, "
	               "contraindicated; \"0a0b\" is not");
	expect_reject (DOC (EAR ("{\"claim\": \"ear.status\", \"equals\": \"affirmed\"}")),
	               "$.rule.claims[0].equals", "\"affirmed\" is not");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \"" PCR16 "0\"}")),
	               "$.rule.claims[0].equals", "odd length 65");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \"0x" PCR16 "\"}")),
	               "$.rule.claims[0].equals", "not a hex string: character 2");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \"\"}")),
	               "$.rule.claims[0].equals", "empty hex string");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": "
	                         "\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"}")),
	               "$.rule.claims[0].equals", "tpm.pcr.sha256.16 is 32 bytes (64 hex digits); this "
	               "value is 20 bytes");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.firmware-version\", \"equals\": \"7\"}")),
	               "$.rule.claims[0].equals", "integer claim; this is a string");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.clock.safe\", \"equals\": 1}")),
	               "$.rule.claims[0].equals", "boolean claim; this is an integer");
	expect_reject (DOC (EAT ("{\"claim\": \"eat.swname\", \"equals\": 5}")),
	               "$.rule.claims[0].equals", "string claim; this is an integer");
	expect_reject (DOC (EAT ("{\"claim\": \"eat.swname\", \"equals\": null}")),
	               "$.rule.claims[0].equals", "this is null");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"in\": []}")),
	               "$.rule.claims[0].in", "at least one value");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"in\": \"" PCR16 "\"}")),
	               "$.rule.claims[0].in", "'in' takes an array");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"in\": [\"" PCR16 "\", 1]}")),
	               "$.rule.claims[0].in[1]", "this is an integer");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"in\": [\"" PCR16 "\", \""
	                         PCR16_UPPER "\"]}")),
	               "$.rule.claims[0].in[1]", "repeats value [0] (hex compares regardless of case)");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.ak\", \"gte\": 1}")), "$.rule.claims[0].gte",
	               "'gte' compares integers; tpm.ak is bytes");
	expect_reject (DOC (EAR ("{\"claim\": \"ear.status\", \"lte\": 1}")), "$.rule.claims[0].lte",
	               "'lte' compares integers; ear.status is string");
	expect_reject (DOC (EAR ("{\"claim\": \"ear.tv.hardware\", \"gte\": \"2\"}")),
	               "$.rule.claims[0].gte", "'gte' takes an integer, not a string");
	expect_reject (DOC (EAR ("{\"claim\": \"ear.tv.hardware\", \"gte\": true}")),
	               "$.rule.claims[0].gte", "not a boolean");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.ak\", \"present\": false}")),
	               "$.rule.claims[0].present", "only true");
	expect_reject (DOC (TPM ("{\"claim\": \"tpm.ak\", \"present\": 1}")),
	               "$.rule.claims[0].present", "'present' takes true, not an integer");
	/* A failure deep in a tree names its whole path. */
	expect_reject (DOC ("{\"anyOf\": [" TPM (PCR_OK) ", {\"allOf\": [" EAR ("") ", "
	                    TPM (PCR_OK ", {\"claim\": \"tpm.clock.safe\", \"equals\": \"yes\"}") "]}]}"),
	               "$.rule.anyOf[1].allOf[1].claims[1].equals", "boolean claim; this is a string");
}

static void
test_load_file (void **state)
{
	char path[600], err[1024];
	FILE *f;
	struct policy *p;

	snprintf (path, sizeof path, "%s/p.json", dir);
	f = fopen (path, "w");
	assert_non_null (f);
	fputs (DOC (TPM (PCR_OK)), f);
	fclose (f);
	assert_int_equal (chmod (path, 0644), 0);
	p = policy_load_file (path, err, sizeof err);
	if (!p)
		fail_msg ("%s", err);
	assert_string_equal (policy_name (p), path);
	policy_free (p);

	assert_int_equal (chmod (path, 0664), 0);
	assert_null (policy_load_file (path, err, sizeof err));
	assert_non_null (strstr (err, path));
	assert_non_null (strstr (err, "writable by its group"));
	assert_int_equal (chmod (path, 0646), 0);
	assert_null (policy_load_file (path, err, sizeof err));
	assert_non_null (strstr (err, "writable by others"));
	assert_int_equal (chmod (path, 0600), 0);

	assert_null (policy_load_file (dir, err, sizeof err));
	assert_non_null (strstr (err, "not a regular file"));

	snprintf (path, sizeof path, "%s/missing.json", dir);
	assert_null (policy_load_file (path, err, sizeof err));
	assert_non_null (strstr (err, "cannot open"));

	snprintf (path, sizeof path, "%s/big.json", dir);
	f = fopen (path, "w");
	assert_non_null (f);
	fputs (DOC (TPM ("")), f);
	for (int i = 0; i < POLICY_MAX_SIZE; i++)
		fputc (' ', f);
	fclose (f);
	assert_null (policy_load_file (path, err, sizeof err));
	assert_non_null (strstr (err, "larger than"));

	/* Errors in a file's document name the file. */
	snprintf (path, sizeof path, "%s/bad.json", dir);
	f = fopen (path, "w");
	assert_non_null (f);
	fputs ("{\"version\": 1, \"rule\": " TPM ("{\"claim\": \"tpm.nope\", \"present\": true}") "}", f);
	fclose (f);
	assert_null (policy_load_file (path, err, sizeof err));
	assert_non_null (strstr (err, path));
	assert_non_null (strstr (err, "$.rule.claims[0].claim: unknown claim \"tpm.nope\""));
}

/* ---------------------------------------------------------------- evaluation */

static void
test_eval_pass (void **state)
{
	struct policy *p = load_example ("tpm-pcr16.json");
	struct claim_set *cs = tpm_claims (PCR16, true);
	struct evidence_claims ev = evidence ("tpm2-quote", "ak-prod", NOW - 10, cs);
	struct policy_result r;

	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_true (r.pass);
	assert_int_equal (r.expires, NOW - 10 + 300);
	assert_string_equal (r.reason, "pass");
	/* The edge of max-age still counts. */
	ev.verified_at = NOW - 300;
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_int_equal (r.expires, NOW);
	ev.verified_at = NOW;
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	/* No evidence, or no policy: fail. */
	assert_false (policy_evaluate (p, NULL, 0, NOW, &r));
	assert_false (r.pass);
	assert_string_equal (r.reason, "$.rule: no tpm2-quote evidence");
	assert_string_equal (r.path, "$.rule");
	assert_false (policy_evaluate (NULL, &ev, 1, NOW, &r));
	assert_false (policy_evaluate (p, NULL, 1, NOW, &r));
	assert_false (policy_evaluate (p, &ev, 1, NOW, NULL));
	claim_set_free (cs);
	policy_free (p);
}

static void
test_eval_ear_example (void **state)
{
	struct policy *p = load_example ("ear-affirming.json");
	struct claim_set *ok = ear_claims ("affirming", 2, 31);
	struct claim_set *warn = ear_claims ("warning", 2, 2);
	struct claim_set *hw = ear_claims ("affirming", 32, 2);
	struct claim_set *exe = ear_claims ("affirming", 2, 1);
	struct evidence_claims ev = evidence ("ear", "veraison-prod", NOW, ok);
	struct policy_result r;

	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	ev.claims = warn;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule.claims[1]: ear.status is \"warning\", policy wants "
	                     "\"affirming\" (ear evidence from anchor \"veraison-prod\")");
	ev.claims = hw;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[3]");
	assert_non_null (strstr (r.reason, "ear.tv.hardware is 32, policy wants <= 31"));
	ev.claims = exe;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[4]");
	assert_non_null (strstr (r.reason, "ear.tv.executables is 1, policy wants >= 2"));
	claim_set_free (ok);
	claim_set_free (warn);
	claim_set_free (hw);
	claim_set_free (exe);
	policy_free (p);
}

static void
test_eval_operators (void **state)
{
	struct policy *p = parse_ok (DOC (TPM (
		"{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \"" PCR16 "\"},"
		"{\"claim\": \"tpm.pcr.sha256.7\", \"in\": [\"" OTHER32 "\", \"" PCR16 "\"]},"
		"{\"claim\": \"tpm.firmware-version\", \"gte\": 10},"
		"{\"claim\": \"tpm.clock.reset-count\", \"lte\": 100},"
		"{\"claim\": \"tpm.ak\", \"present\": true}")));
	unsigned char pcr[32], ak[32] = { 0 };
	struct policy_result r;
	struct claim_set *cs;
	struct evidence_claims ev;

	hex_to_bytes (PCR16, pcr, 32);
#define BUILD(p16, p7, fw, reset, with_ak) \
	do { \
		cs = claim_set_new (); \
		add_bytes_hex (cs, "tpm.pcr.sha256.16", p16); \
		add_bytes_hex (cs, "tpm.pcr.sha256.7", p7); \
		assert_int_equal (claim_set_add_int (cs, "tpm.firmware-version", fw), CLAIMS_OK); \
		assert_int_equal (claim_set_add_int (cs, "tpm.clock.reset-count", reset), CLAIMS_OK); \
		if (with_ak) \
			assert_int_equal (claim_set_add_bytes (cs, "tpm.ak", ak, 32), CLAIMS_OK); \
		ev = evidence ("tpm2-quote", "ak-prod", NOW, cs); \
	} while (0)

	BUILD (PCR16, PCR16, 10, 100, true);
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	claim_set_free (cs);

	BUILD (OTHER32, PCR16, 10, 100, true);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[0]");
	assert_string_equal (r.reason, "$.rule.claims[0]: tpm.pcr.sha256.16 is " OTHER32
	                     ", policy wants " PCR16 " (tpm2-quote evidence from anchor \"ak-prod\")");
	claim_set_free (cs);

	BUILD (PCR16, "00000000000000000000000000000000000000000000000000000000000000ff", 10, 100, true);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[1]");
	assert_non_null (strstr (r.reason, "tpm.pcr.sha256.7 is 00000000000000000000000000000000000000"
	                                   "000000000000000000000000ff, policy wants one of [" OTHER32
	                                   ", " PCR16 "]"));
	claim_set_free (cs);

	/* Integers compare as integers: 9 < 10 (as text "9" > "10"). */
	BUILD (PCR16, PCR16, 9, 100, true);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[2]");
	assert_non_null (strstr (r.reason, "tpm.firmware-version is 9, policy wants >= 10"));
	claim_set_free (cs);
	BUILD (PCR16, PCR16, 100, 100, true);
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	claim_set_free (cs);
	BUILD (PCR16, PCR16, INT64_MIN, 100, true);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	claim_set_free (cs);

	BUILD (PCR16, PCR16, 10, 101, true);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[3]");
	assert_non_null (strstr (r.reason, "tpm.clock.reset-count is 101, policy wants <= 100"));
	claim_set_free (cs);
	BUILD (PCR16, PCR16, 10, -5, true);
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	claim_set_free (cs);

	BUILD (PCR16, PCR16, 10, 100, false);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[4]");
	assert_non_null (strstr (r.reason, "tpm.ak is absent, policy wants it present"));
	claim_set_free (cs);

	/* First failing predicate in document order: 0 holds, 2, 3, 4 fail. */
	BUILD (PCR16, PCR16, 1, 1000, false);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[2]");
	claim_set_free (cs);
	/* An absent claim fails every operator. */
	cs = claim_set_new ();
	ev = evidence ("tpm2-quote", "ak-prod", NOW, cs);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule.claims[0]: tpm.pcr.sha256.16 is absent, policy wants "
	                     PCR16 " (tpm2-quote evidence from anchor \"ak-prod\")");
	claim_set_free (cs);
#undef BUILD
	(void)pcr;
	policy_free (p);
}

static void
test_eval_hex_case (void **state)
{
	struct policy *p = parse_ok (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"equals\": \""
	                                       PCR16_UPPER "\"}")));
	struct claim_set *cs = tpm_claims (PCR16, true);
	struct evidence_claims ev = evidence ("tpm2-quote", "ak-prod", NOW, cs);
	struct policy_result r;
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	policy_free (p);
	p = parse_ok (DOC (TPM ("{\"claim\": \"tpm.pcr.sha256.16\", \"in\": [\"" OTHER32 "\", "
	                        "\"372637762CAA3F15dc79ddaf57ed34d19229252f541ecc2af7f70d9b1ead639C\"]}")));
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	policy_free (p);
	claim_set_free (cs);
}

static void
test_eval_format_anchor_time (void **state)
{
	struct policy *p = load_example ("tpm-pcr16.json");
	struct claim_set *tpm = tpm_claims (PCR16, true), *ear = ear_claims ("affirming", 2, 2);
	struct evidence_claims ev;
	struct policy_result r;

	/* Wrong format. */
	ev = evidence ("ear", "veraison-prod", NOW, ear);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule: no tpm2-quote evidence");

	/* Wrong anchor. */
	ev = evidence ("tpm2-quote", "ak-test", NOW, tpm);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule: tpm2-quote evidence verified by anchor \"ak-test\"; this "
	                     "rule accepts 'ak-prod'");
	ev.anchor = NULL;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_non_null (strstr (r.reason, "verified by anchor (none)"));

	/* Stale, and from the future. */
	ev = evidence ("tpm2-quote", "ak-prod", NOW - 301, tpm);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_non_null (strstr (r.reason, "$.rule: tpm2-quote evidence from anchor \"ak-prod\" is stale"));
	assert_non_null (strstr (r.reason, "max-age 300 s"));
	ev.verified_at = NOW + 1;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_non_null (strstr (r.reason, "verified in the future"));
	/* Extremes of time do not overflow into a pass. */
	ev.verified_at = (time_t)INT64_MIN;
	assert_false (policy_evaluate (p, &ev, 1, (time_t)INT64_MAX, &r));
	assert_non_null (strstr (r.reason, "stale"));
	ev.verified_at = (time_t)INT64_MAX;
	assert_true (policy_evaluate (p, &ev, 1, (time_t)INT64_MAX, &r));
	assert_int_equal (r.expires, (time_t)INT64_MAX);

	/* The nonce: required by this policy. */
	ev = evidence ("tpm2-quote", "ak-prod", NOW, tpm);
	ev.nonce_matched = false;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_non_null (strstr (r.reason, "no fresh nonce"));
	policy_free (p);
	p = parse_ok ("{\"version\": 1, \"nonce\": \"optional\", \"rule\": " TPM (PCR_OK) "}");
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	policy_free (p);

	/* A claim set that contradicts its wrapper counts for nothing. */
	p = load_example ("tpm-pcr16.json");
	{
		struct claim_set *odd = claim_set_new ();
		add_bytes_hex (odd, "tpm.pcr.sha256.16", PCR16);
		assert_int_equal (claim_set_add_bool (odd, "tpm.clock.safe", true), CLAIMS_OK);
		add_str (odd, "evidence.anchor", "ak-other");
		ev = evidence ("tpm2-quote", "ak-prod", NOW, odd);
		assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
		assert_non_null (strstr (r.reason, "says otherwise"));
		claim_set_free (odd);
	}

	/* Several pieces: a bad one first does not hide a good one, and the
	 * freshest good one sets the expiry. */
	{
		struct claim_set *bad = tpm_claims (OTHER32, true);
		struct evidence_claims evs[4] = {
			evidence ("tpm2-quote", "ak-test", NOW, tpm),
			evidence ("tpm2-quote", "ak-prod", NOW, bad),
			evidence ("tpm2-quote", "ak-prod", NOW - 100, tpm),
			evidence ("tpm2-quote", "ak-prod", NOW - 50, tpm),
		};
		assert_true (policy_evaluate (p, evs, 4, NOW, &r));
		assert_int_equal (r.expires, NOW - 50 + 300);
		/* Without the good ones: the predicate failure of the first that
		 * got that far, rather than the anchor of the first. */
		assert_false (policy_evaluate (p, evs, 2, NOW, &r));
		assert_string_equal (r.path, "$.rule.claims[0]");
		claim_set_free (bad);
	}
	claim_set_free (tpm);
	claim_set_free (ear);
	policy_free (p);
}

static void
test_eval_all_of (void **state)
{
	struct policy *p = load_example ("tpm-and-ear.json");
	struct claim_set *tpm = tpm_claims (PCR16, true), *ear = ear_claims ("affirming", 2, 3);
	struct evidence_claims evs[2] = {
		evidence ("tpm2-quote", "ak-prod", NOW - 30, tpm),
		evidence ("ear", "veraison-prod", NOW - 10, ear),
	};
	struct policy_result r;

	assert_true (policy_evaluate (p, evs, 2, NOW, &r));
	assert_int_equal (r.expires, NOW - 30 + 120); /* the older evidence decides */
	assert_false (policy_evaluate (p, evs, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule.allOf[1]: no ear evidence");
	assert_false (policy_evaluate (p, evs + 1, 1, NOW, &r));
	assert_string_equal (r.reason, "$.rule.allOf[0]: no tpm2-quote evidence");
	/* max-age 120 here: the TPM quote at NOW - 130 is stale. */
	evs[0].verified_at = NOW - 130;
	assert_false (policy_evaluate (p, evs, 2, NOW, &r));
	assert_string_equal (r.path, "$.rule.allOf[0]");
	assert_non_null (strstr (r.reason, "stale"));
	claim_set_free (tpm);
	claim_set_free (ear);
	policy_free (p);
}

static void
test_eval_any_of (void **state)
{
	struct policy *p = parse_ok ("{\"version\": 1, \"rule\": {\"anyOf\": ["
	                             TPM (PCR_OK) ", "
	                             EAR ("{\"claim\": \"ear.status\", \"equals\": \"affirming\"}")
	                             "]}}");
	struct claim_set *tpm_bad = tpm_claims (OTHER32, true), *tpm = tpm_claims (PCR16, true);
	struct claim_set *ear = ear_claims ("affirming", 2, 2), *ear_bad = ear_claims ("warning", 2, 2);
	struct evidence_claims evs[2];
	struct policy_result r, r2;

	/* The second alternative holds. */
	evs[0] = evidence ("tpm2-quote", "ak-prod", NOW, tpm_bad);
	evs[1] = evidence ("ear", "veraison-prod", NOW - 20, ear);
	assert_true (policy_evaluate (p, evs, 2, NOW, &r));
	assert_int_equal (r.expires, NOW - 20 + 300);
	assert_true (policy_evaluate (p, evs + 1, 1, NOW, &r));
	/* Both hold: the one that lasts longer. */
	evs[0].claims = tpm;
	evs[0].verified_at = NOW - 5;
	assert_true (policy_evaluate (p, evs, 2, NOW, &r));
	assert_int_equal (r.expires, NOW - 5 + 300);
	/* Neither: the failure of the first, in document order. */
	evs[0].claims = tpm_bad;
	evs[1].claims = ear_bad;
	assert_false (policy_evaluate (p, evs, 2, NOW, &r));
	assert_string_equal (r.path, "$.rule.anyOf[0].claims[0]");
	/* Deterministic. */
	assert_false (policy_evaluate (p, evs, 2, NOW, &r2));
	assert_memory_equal (&r, &r2, sizeof r);
	policy_free (p);

	/* allOf [anyOf [A (fails), B (holds)], C (fails)]: C is the first
	 * failure; A's does not count, since its anyOf held. */
	p = parse_ok ("{\"version\": 1, \"rule\": {\"allOf\": [{\"anyOf\": ["
	              TPM (PCR_OK) ", "
	              EAR ("{\"claim\": \"ear.status\", \"equals\": \"affirming\"}") "]}, "
	              EAR ("{\"claim\": \"ear.tv.hardware\", \"gte\": 3}") "]}}");
	evs[0].claims = tpm_bad;
	evs[1].claims = ear;
	assert_false (policy_evaluate (p, evs, 2, NOW, &r));
	assert_string_equal (r.path, "$.rule.allOf[1].claims[0]");
	assert_non_null (strstr (r.reason, "ear.tv.hardware is 2, policy wants >= 3"));
	policy_free (p);

	claim_set_free (tpm);
	claim_set_free (tpm_bad);
	claim_set_free (ear);
	claim_set_free (ear_bad);
}

static void
test_eval_value_shown_at_most_64 (void **state)
{
	char want[300], have[300], text[1024];
	struct policy *p;
	struct claim_set *cs = claim_set_new ();
	struct evidence_claims ev;
	struct policy_result r;
	unsigned char d[64];

	memset (want, 'w', 200);
	want[200] = '\0';
	memset (have, 'h', 200);
	have[200] = '\0';
	snprintf (text, sizeof text, DOC (EAT ("{\"claim\": \"eat.swname\", \"equals\": \"%s\"}")), want);
	p = parse_ok (text);
	add_str (cs, "eat.swname", have);
	ev = evidence ("eat", "eat-prod", NOW, cs);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	{
		/* 64 of each shown, not 65. */
		char run[80];
		memset (run, 'h', 64);
		run[64] = '\0';
		assert_non_null (strstr (r.reason, run));
		run[64] = 'h';
		run[65] = '\0';
		assert_null (strstr (r.reason, run));
		memset (run, 'w', 65);
		assert_null (strstr (r.reason, run));
		run[64] = '\0';
		assert_non_null (strstr (r.reason, run));
		assert_non_null (strstr (r.reason, "\"..."));
	}
	policy_free (p);
	claim_set_free (cs);

	/* A SHA-512 PCR shows 32 of its 64 bytes, then its length. */
	p = parse_ok (DOC (TPM ("{\"claim\": \"tpm.pcr.sha512.0\", \"present\": true}, "
	                        "{\"claim\": \"tpm.pcr.sha512.0\", \"equals\": \"" OTHER32 OTHER32 "\"}")));
	cs = claim_set_new ();
	memset (d, 0xcd, sizeof d);
	assert_int_equal (claim_set_add_bytes (cs, "tpm.pcr.sha512.0", d, 64), CLAIMS_OK);
	ev = evidence ("tpm2-quote", "ak-prod", NOW, cs);
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_string_equal (r.path, "$.rule.claims[1]");
	assert_non_null (strstr (r.reason, "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	                                   "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd...(64 bytes)"));
	assert_non_null (strstr (r.reason, OTHER32 "...(64 bytes)"));
	policy_free (p);
	claim_set_free (cs);
}

static void
test_eval_in_list_shown (void **state)
{
	struct policy *p = parse_ok (DOC (EAR ("{\"claim\": \"ear.tv.hardware\", \"in\": [2, 3, 4, 5, 6]}")));
	struct claim_set *cs = ear_claims ("affirming", 97, 2);
	struct evidence_claims ev = evidence ("ear", "veraison-prod", NOW, cs);
	struct policy_result r;
	assert_false (policy_evaluate (p, &ev, 1, NOW, &r));
	assert_non_null (strstr (r.reason, "ear.tv.hardware is 97, policy wants one of "
	                                   "[2, 3, 4, and 2 more]"));
	policy_free (p);
	claim_set_free (cs);
}

static void
test_eval_evidence_claims (void **state)
{
	/* evidence.* claims may be named in any format's rule. */
	struct policy *p = parse_ok (DOC (EAT ("{\"claim\": \"evidence.anchor\", \"equals\": \"eat-prod\"},"
	                                       "{\"claim\": \"eat.submod.gpu0.dbgstat\", \"gte\": 1}")));
	struct claim_set *cs = claim_set_new ();
	struct evidence_claims ev = evidence ("eat", "eat-prod", NOW, cs);
	struct policy_result r;
	add_str (cs, "evidence.anchor", "eat-prod");
	assert_int_equal (claim_set_add_int (cs, "eat.submod.gpu0.dbgstat", 2), CLAIMS_OK);
	assert_true (policy_evaluate (p, &ev, 1, NOW, &r));
	policy_free (p);
	claim_set_free (cs);
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_registry),
		cmocka_unit_test (test_claim_set),
		cmocka_unit_test (test_claim_set_cap),
		cmocka_unit_test (test_value_format),
		cmocka_unit_test (test_examples),
		cmocka_unit_test (test_defaults),
		cmocka_unit_test (test_digest),
		cmocka_unit_test (test_reject_document),
		cmocka_unit_test (test_reject_duplicates_and_limits),
		cmocka_unit_test (test_reject_schema),
		cmocka_unit_test (test_load_file),
		cmocka_unit_test (test_eval_pass),
		cmocka_unit_test (test_eval_ear_example),
		cmocka_unit_test (test_eval_operators),
		cmocka_unit_test (test_eval_hex_case),
		cmocka_unit_test (test_eval_format_anchor_time),
		cmocka_unit_test (test_eval_all_of),
		cmocka_unit_test (test_eval_any_of),
		cmocka_unit_test (test_eval_value_shown_at_most_64),
		cmocka_unit_test (test_eval_in_list_shown),
		cmocka_unit_test (test_eval_evidence_claims),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
