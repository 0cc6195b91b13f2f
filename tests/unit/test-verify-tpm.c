/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the TPM 2.0 quote verifier (src/verify-tpm.c): the Azure
 * vTPM sample (set B of shared/testdata/tpm, a real TPM's quote), and
 * quotes built and signed here, so that each negative case is properly
 * signed and fails only the check it targets.
 */
#include "config.h"

#include "claims.h"
#include "verify-tpm.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>

#include <cmocka.h>

#define NONCE "challenge"
#define FW_VERSION 0x2020031200120003LL

static const uint16_t allow_sha256[] = { VERIFY_TPM_ALG_SHA256 };

/* ---------------------------------------------------------------- files */

/* The shared test data: $P11W_SHARED, else $P11W_SRCDIR/../shared.  A
 * missing directory fails the test: CI has it, and a verifier tested only
 * against itself proves little. */
static void
shared_path (const char *rel, char *out, size_t outlen)
{
	const char *shared = getenv ("P11W_SHARED");
	const char *src = getenv ("P11W_SRCDIR");
	if (shared && *shared)
		snprintf (out, outlen, "%s/testdata/tpm/%s", shared, rel);
	else
		snprintf (out, outlen, "%s/../shared/testdata/tpm/%s", src ? src : ".", rel);
}

static unsigned char *
read_file (const char *rel, size_t *len)
{
	char path[4096];
	unsigned char *buf;
	FILE *f;
	long n;

	shared_path (rel, path, sizeof path);
	f = fopen (path, "rb");
	if (!f)
		fail_msg ("%s: missing (set P11W_SHARED to the shared directory)", path);
	assert_int_equal (fseek (f, 0, SEEK_END), 0);
	n = ftell (f);
	assert_true (n >= 0);
	assert_int_equal (fseek (f, 0, SEEK_SET), 0);
	buf = malloc ((size_t)n + 1);
	assert_non_null (buf);
	assert_int_equal (fread (buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose (f);
	*len = (size_t)n;
	return buf;
}

static EVP_PKEY *
read_pem (const char *rel)
{
	size_t len;
	unsigned char *text = read_file (rel, &len);
	BIO *bio = BIO_new_mem_buf (text, (int)len);
	EVP_PKEY *k;
	assert_non_null (bio);
	k = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
	assert_non_null (k);
	BIO_free (bio);
	free (text);
	return k;
}

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

/* ---------------------------------------------------------------- set B */

struct azure {
	unsigned char *msg, *sig;
	size_t msg_len, sig_len;
	unsigned char *pcr[24];
	struct verify_tpm_pcr pcrs[24];
	EVP_PKEY *ak, *ak_2023;
	struct verify_tpm_input in;
};

static int
azure_setup (void **state)
{
	struct azure *az = calloc (1, sizeof *az);
	size_t len;
	char *text = (char *)read_file ("tpm-quote-v1.json", &len);
	json_object *root = json_tokener_parse (text), *v, *pcrs;

	assert_non_null (az);
	assert_non_null (root);
	assert_true (json_object_object_get_ex (root, "message", &v));
	az->msg = unhex (json_object_get_string (v), &az->msg_len);
	assert_true (json_object_object_get_ex (root, "signature", &v));
	az->sig = unhex (json_object_get_string (v), &az->sig_len);
	assert_true (json_object_object_get_ex (root, "pcrs", &pcrs));
	assert_int_equal (json_object_array_length (pcrs), 24);
	for (size_t i = 0; i < 24; i++) {
		size_t l;
		az->pcr[i] = unhex (json_object_get_string (json_object_array_get_idx (pcrs, i)), &l);
		assert_int_equal (l, 32);
		az->pcrs[i] = (struct verify_tpm_pcr){ VERIFY_TPM_ALG_SHA256, (unsigned)i, az->pcr[i], 32 };
	}
	json_object_put (root);
	free (text);
	az->ak = read_pem ("ak.pem");
	az->ak_2023 = read_pem ("ak-2023.pem");
	*state = az;
	return 0;
}

static int
azure_teardown (void **state)
{
	struct azure *az = *state;
	if (!az)
		return 0; /* the setup failed, and said why */
	for (size_t i = 0; i < 24; i++)
		free (az->pcr[i]);
	free (az->msg);
	free (az->sig);
	EVP_PKEY_free (az->ak);
	EVP_PKEY_free (az->ak_2023);
	free (az);
	return 0;
}

/* A fresh input for set B: every test starts from one that verifies. */
static struct verify_tpm_input *
azure_input (void **state)
{
	struct azure *az = *state;
	az->in = (struct verify_tpm_input){
		.attest = az->msg,
		.attest_len = az->msg_len,
		.sig = az->sig,
		.sig_len = az->sig_len,
		.sig_marshalled = false,
		.raw_scheme = VERIFY_TPM_ALG_RSASSA,
		.raw_hash = VERIFY_TPM_ALG_SHA256,
		.ak = az->ak,
		.anchor = "azure-ak",
		.nonce = (const unsigned char *)NONCE,
		.nonce_len = strlen (NONCE),
		.pcrs = az->pcrs,
		.n_pcrs = 24,
		.allowed_hashes = allow_sha256,
		.n_allowed_hashes = 1,
	};
	return &az->in;
}

/* Run @in and expect @want; the claim set is freed either way, and a
 * failure leaves it empty. */
static void
expect (const struct verify_tpm_input *in, int want)
{
	char err[512];
	struct claim_set *set = claim_set_new ();
	int rv;
	assert_non_null (set);
	rv = verify_tpm_quote (in, set, err, sizeof err);
	if (rv != want)
		fail_msg ("got %d (%s: %s), want %d (%s)", rv, verify_tpm_strerror (rv), err, want,
		          verify_tpm_strerror (want));
	if (rv != VERIFY_TPM_OK)
		assert_int_equal (claim_set_count (set), 0);
	assert_true (err[0] != '\0');
	claim_set_free (set);
}

static void
test_azure_ok (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	struct claim_set *set = claim_set_new ();
	const struct claim *c;
	unsigned char *spki = NULL, h[32];
	char err[512], name[64];
	int n;

	assert_int_equal (verify_tpm_quote (in, set, err, sizeof err), VERIFY_TPM_OK);
	assert_int_equal (claim_set_count (set), 24 + 7);
	for (unsigned i = 0; i < 24; i++) {
		snprintf (name, sizeof name, "tpm.pcr.sha256.%u", i);
		c = claim_set_find (set, name);
		assert_non_null (c);
		assert_int_equal (c->v.len, 32);
		assert_memory_equal (c->v.data, az->pcr[i], 32);
	}
	c = claim_set_find (set, "tpm.firmware-version");
	assert_non_null (c);
	assert_true (c->v.i == FW_VERSION);
	c = claim_set_find (set, "tpm.clock.safe");
	assert_non_null (c);
	assert_true (c->v.b);
	assert_non_null (claim_set_find (set, "tpm.clock.reset-count"));
	assert_non_null (claim_set_find (set, "tpm.clock.restart-count"));
	c = claim_set_find (set, "evidence.format");
	assert_non_null (c);
	assert_string_equal ((const char *)c->v.data, "tpm2-quote");
	c = claim_set_find (set, "evidence.anchor");
	assert_non_null (c);
	assert_string_equal ((const char *)c->v.data, "azure-ak");
	n = i2d_PUBKEY (az->ak, &spki);
	assert_true (n > 0);
	assert_int_equal (EVP_Digest (spki, (size_t)n, h, NULL, EVP_sha256 (), NULL), 1);
	OPENSSL_free (spki);
	c = claim_set_find (set, "tpm.ak");
	assert_non_null (c);
	assert_memory_equal (c->v.data, h, 32);
	claim_set_free (set);

	/* The PCRs in another order give the same result: the digest follows
	 * the selection, not the caller's array. */
	{
		struct verify_tpm_pcr rev[24];
		for (size_t i = 0; i < 24; i++)
			rev[i] = az->pcrs[23 - i];
		in->pcrs = rev;
		expect (in, VERIFY_TPM_OK);
	}
}

static void
test_azure_wrong_ak (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	in->ak = az->ak_2023; /* set A's AK: the other VM */
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
}

static void
test_azure_bad_signature (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	unsigned char sig[1024];
	memcpy (sig, az->sig, az->sig_len);
	sig[az->sig_len / 2] ^= 0x01;
	in->sig = sig;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	in->sig_len = az->sig_len - 1;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	/* The raw bytes read as a TPMT_SIGNATURE: 0x3e.. is no scheme. */
	in->sig = az->sig;
	in->sig_len = az->sig_len;
	in->sig_marshalled = true;
	expect (in, VERIFY_TPM_ERR_SIG_PARSE);
	/* The raw signature claimed as PSS, or ECDSA under an RSA key. */
	in->sig_marshalled = false;
	in->raw_scheme = VERIFY_TPM_ALG_RSAPSS;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	in->raw_scheme = VERIFY_TPM_ALG_ECDSA;
	expect (in, VERIFY_TPM_ERR_SIG_SCHEME);
}

static void
test_azure_nonce (void **state)
{
	struct verify_tpm_input *in = azure_input (state);
	in->nonce = (const unsigned char *)"challengf";
	expect (in, VERIFY_TPM_ERR_NONCE);
	in->nonce = (const unsigned char *)"challenge!";
	in->nonce_len = 10;
	expect (in, VERIFY_TPM_ERR_NONCE);
	in->nonce_len = 8; /* a prefix of the right one */
	expect (in, VERIFY_TPM_ERR_NONCE);
	in->nonce_len = 0;
	expect (in, VERIFY_TPM_ERR_ARGS);
	in->nonce_len = VERIFY_TPM_NONCE_MAX + 1;
	expect (in, VERIFY_TPM_ERR_ARGS);
}

static void
test_azure_structure (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	unsigned char msg[VERIFY_TPM_ATTEST_MAX + 1];

	memcpy (msg, az->msg, az->msg_len);
	in->attest = msg;
	in->attest_len = az->msg_len - 1;
	expect (in, VERIFY_TPM_ERR_ATTEST_PARSE);
	in->attest_len = 10;
	expect (in, VERIFY_TPM_ERR_ATTEST_PARSE);
	msg[az->msg_len] = 0;
	in->attest_len = az->msg_len + 1;
	expect (in, VERIFY_TPM_ERR_ATTEST_TRAILING);
	in->attest_len = az->msg_len;
	msg[3] ^= 0x01;
	expect (in, VERIFY_TPM_ERR_MAGIC);
	/* Wrong type: see test_built_fields, where it is signed. */
}

static void
test_azure_pcrs (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	struct verify_tpm_pcr p[25];
	unsigned char changed[32], sha1[20] = { 0 };

	memcpy (p, az->pcrs, sizeof az->pcrs);
	in->pcrs = p;
	memcpy (changed, az->pcr[7], 32);
	changed[0] ^= 0x80;
	p[7].digest = changed;
	expect (in, VERIFY_TPM_ERR_PCR_DIGEST);
	p[7].digest = az->pcr[7];

	in->n_pcrs = 23; /* PCR 23 missing */
	expect (in, VERIFY_TPM_ERR_PCR_SELECTION);

	p[24] = (struct verify_tpm_pcr){ VERIFY_TPM_ALG_SHA1, 0, sha1, 20 };
	in->n_pcrs = 25; /* sha1:0 was not quoted */
	expect (in, VERIFY_TPM_ERR_PCR_SELECTION);

	p[24] = p[3]; /* sha256:3 twice */
	expect (in, VERIFY_TPM_ERR_PCR_VALUE);

	p[24] = (struct verify_tpm_pcr){ VERIFY_TPM_ALG_SHA256, 24, az->pcr[0], 32 };
	expect (in, VERIFY_TPM_ERR_PCR_VALUE);

	p[24] = (struct verify_tpm_pcr){ 0x0012 /* SM3 */, 0, az->pcr[0], 32 };
	expect (in, VERIFY_TPM_ERR_PCR_BANK);

	in->n_pcrs = 24;
	p[5].len = 20; /* wrong length for the bank */
	expect (in, VERIFY_TPM_ERR_PCR_VALUE);
}

static void
test_azure_limits (void **state)
{
	struct azure *az = *state;
	struct verify_tpm_input *in = azure_input (state);
	static unsigned char big[VERIFY_TPM_ATTEST_MAX + 1];
	static const uint16_t allow_384[] = { VERIFY_TPM_ALG_SHA384, VERIFY_TPM_ALG_SHA512 };
	struct verify_tpm_pcr many[VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX + 1];

	memcpy (big, az->msg, az->msg_len);
	in->attest = big;
	in->attest_len = sizeof big;
	expect (in, VERIFY_TPM_ERR_ATTEST_SIZE);
	in->attest_len = 0;
	expect (in, VERIFY_TPM_ERR_ATTEST_SIZE);
	in = azure_input (state);
	in->sig = big;
	in->sig_len = VERIFY_TPM_SIG_MAX + 1;
	expect (in, VERIFY_TPM_ERR_SIG_SIZE);
	in->sig_len = 0;
	expect (in, VERIFY_TPM_ERR_SIG_SIZE);
	in = azure_input (state);
	for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
		many[i] = az->pcrs[i % 24];
	in->pcrs = many;
	in->n_pcrs = sizeof many / sizeof many[0];
	expect (in, VERIFY_TPM_ERR_PCR_COUNT);

	in = azure_input (state);
	in->allowed_hashes = allow_384;
	in->n_allowed_hashes = 2;
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);
	in->n_allowed_hashes = 0;
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);

	in = azure_input (state);
	in->ak = NULL;
	expect (in, VERIFY_TPM_ERR_ARGS);
	assert_int_equal (verify_tpm_quote (NULL, NULL, NULL, 0), VERIFY_TPM_ERR_ARGS);
}

/* ---------------------------------------------------------------- built quotes */

struct keys {
	EVP_PKEY *rsa, *ec, *ec384;
};

static struct keys keys;

static int
keys_setup (void **state)
{
	(void)state;
	keys.rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)2048);
	keys.ec = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	keys.ec384 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384");
	return keys.rsa && keys.ec && keys.ec384 ? 0 : -1;
}

static int
keys_teardown (void **state)
{
	(void)state;
	EVP_PKEY_free (keys.rsa);
	EVP_PKEY_free (keys.ec);
	EVP_PKEY_free (keys.ec384);
	return 0;
}

struct bank {
	uint16_t alg;
	uint8_t size;  /* sizeofSelect */
	uint32_t mask; /* bit i = PCR i */
};

/* What a built quote holds; quote_defaults gives one that verifies. */
struct spec {
	uint32_t magic;
	uint16_t type;
	const char *extra;
	size_t extra_len;
	uint8_t safe;
	uint64_t firmware;
	struct bank banks[8];
	uint32_t n_banks;
	uint16_t digest_hash; /* for pcrDigest */
	bool corrupt_digest;
	/* the signature */
	EVP_PKEY *key;
	uint16_t scheme, hash;
	bool trailing_sig;
};

struct built {
	unsigned char attest[4096], sig[4096];
	size_t attest_len, sig_len;
	unsigned char values[8][24][64];
	struct verify_tpm_pcr pcrs[8 * 32];
	size_t n_pcrs;
	struct verify_tpm_input in;
};

static size_t
hash_len (uint16_t alg)
{
	switch (alg) {
	case VERIFY_TPM_ALG_SHA1: return 20;
	case VERIFY_TPM_ALG_SHA256: return 32;
	case VERIFY_TPM_ALG_SHA384: return 48;
	case VERIFY_TPM_ALG_SHA512: return 64;
	}
	return 32;
}

static const EVP_MD *
md_of (uint16_t alg)
{
	switch (alg) {
	case VERIFY_TPM_ALG_SHA1: return EVP_sha1 ();
	case VERIFY_TPM_ALG_SHA384: return EVP_sha384 ();
	case VERIFY_TPM_ALG_SHA512: return EVP_sha512 ();
	}
	return EVP_sha256 ();
}

static struct spec
quote_defaults (EVP_PKEY *key, uint16_t scheme)
{
	struct spec s = {
		.magic = 0xff544347,
		.type = 0x8018,
		.extra = NONCE,
		.extra_len = strlen (NONCE),
		.safe = 1,
		.firmware = 0x0001000200030004ULL,
		.banks = { { VERIFY_TPM_ALG_SHA256, 3, (1u << 0) | (1u << 7) | (1u << 16) } },
		.n_banks = 1,
		.digest_hash = VERIFY_TPM_ALG_SHA256,
		.key = key,
		.scheme = scheme,
		.hash = VERIFY_TPM_ALG_SHA256,
	};
	return s;
}

static void
sign (const struct spec *sp, struct built *b)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char raw[1024];
	size_t raw_len = sizeof raw, off = 0;
	TPMT_SIGNATURE ts;

	assert_non_null (ctx);
	assert_int_equal (EVP_DigestSignInit (ctx, &pctx, md_of (sp->hash), NULL, sp->key), 1);
	if (sp->scheme == VERIFY_TPM_ALG_RSAPSS) {
		assert_int_equal (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING), 1);
		/* the salt length of many real TPMs: the maximum */
		assert_int_equal (EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_MAX), 1);
	}
	assert_int_equal (EVP_DigestSign (ctx, raw, &raw_len, b->attest, b->attest_len), 1);
	EVP_MD_CTX_free (ctx);

	memset (&ts, 0, sizeof ts);
	ts.sigAlg = sp->scheme;
	if (sp->scheme == VERIFY_TPM_ALG_ECDSA) {
		const unsigned char *p = raw;
		ECDSA_SIG *es = d2i_ECDSA_SIG (NULL, &p, (long)raw_len);
		int n = EVP_PKEY_get_bits (sp->key) == 384 ? 48 : 32;
		assert_non_null (es);
		ts.signature.ecdsa.hash = sp->hash;
		ts.signature.ecdsa.signatureR.size = (UINT16)n;
		ts.signature.ecdsa.signatureS.size = (UINT16)n;
		assert_int_equal (BN_bn2binpad (ECDSA_SIG_get0_r (es), ts.signature.ecdsa.signatureR.buffer, n), n);
		assert_int_equal (BN_bn2binpad (ECDSA_SIG_get0_s (es), ts.signature.ecdsa.signatureS.buffer, n), n);
		ECDSA_SIG_free (es);
	} else {
		ts.signature.rsassa.hash = sp->hash;
		ts.signature.rsassa.sig.size = (UINT16)raw_len;
		memcpy (ts.signature.rsassa.sig.buffer, raw, raw_len);
	}
	assert_int_equal (Tss2_MU_TPMT_SIGNATURE_Marshal (&ts, b->sig, sizeof b->sig, &off), TSS2_RC_SUCCESS);
	if (sp->trailing_sig)
		b->sig[off++] = 0;
	b->sig_len = off;
}

/* Build, sign, and fill b->in (nonce "challenge", SHA-256 allowed). */
static struct verify_tpm_input *
build (const struct spec *sp, struct built *b)
{
	TPMS_ATTEST *a = calloc (1, sizeof *a);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	unsigned int mdlen = 0;
	size_t off = 0;

	assert_non_null (a);
	assert_non_null (ctx);
	memset (b, 0, sizeof *b);
	a->magic = sp->magic;
	a->type = sp->type;
	a->qualifiedSigner.size = 34;
	a->qualifiedSigner.name[1] = 0x0b;
	a->extraData.size = (UINT16)sp->extra_len;
	memcpy (a->extraData.buffer, sp->extra, sp->extra_len);
	a->clockInfo.clock = 123456;
	a->clockInfo.resetCount = 7;
	a->clockInfo.restartCount = 3;
	a->clockInfo.safe = sp->safe;
	a->firmwareVersion = sp->firmware;
	a->attested.quote.pcrSelect.count = sp->n_banks;
	assert_int_equal (EVP_DigestInit_ex (ctx, md_of (sp->digest_hash), NULL), 1);
	for (uint32_t k = 0; k < sp->n_banks; k++) {
		TPMS_PCR_SELECTION *sel = &a->attested.quote.pcrSelect.pcrSelections[k];
		sel->hash = sp->banks[k].alg;
		sel->sizeofSelect = sp->banks[k].size;
		for (unsigned j = 0; j < sel->sizeofSelect; j++)
			sel->pcrSelect[j] = (BYTE)(sp->banks[k].mask >> (8 * j));
		for (unsigned i = 0; i < 24; i++) {
			size_t len = hash_len (sp->banks[k].alg);
			if (!(sp->banks[k].mask >> i & 1))
				continue;
			memset (b->values[k][i], (int)(k * 32 + i + 1), len);
			b->pcrs[b->n_pcrs++] = (struct verify_tpm_pcr){ sp->banks[k].alg, i, b->values[k][i], len };
			assert_int_equal (EVP_DigestUpdate (ctx, b->values[k][i], len), 1);
		}
	}
	assert_int_equal (EVP_DigestFinal_ex (ctx, a->attested.quote.pcrDigest.buffer, &mdlen), 1);
	a->attested.quote.pcrDigest.size = (UINT16)mdlen;
	if (sp->corrupt_digest)
		a->attested.quote.pcrDigest.buffer[0] ^= 1;
	EVP_MD_CTX_free (ctx);
	assert_int_equal (Tss2_MU_TPMS_ATTEST_Marshal (a, b->attest, sizeof b->attest, &off), TSS2_RC_SUCCESS);
	b->attest_len = off;
	free (a);
	sign (sp, b);
	b->in = (struct verify_tpm_input){
		.attest = b->attest,
		.attest_len = b->attest_len,
		.sig = b->sig,
		.sig_len = b->sig_len,
		.sig_marshalled = true,
		.ak = sp->key,
		.anchor = "test-ak",
		.nonce = (const unsigned char *)NONCE,
		.nonce_len = strlen (NONCE),
		.pcrs = b->pcrs,
		.n_pcrs = b->n_pcrs,
		.allowed_hashes = allow_sha256,
		.n_allowed_hashes = 1,
	};
	return &b->in;
}

static struct built bb;

static void
test_built_schemes (void **state)
{
	static const uint16_t allow_all[] = { VERIFY_TPM_ALG_SHA256, VERIFY_TPM_ALG_SHA384 };
	struct spec sp;
	struct verify_tpm_input *in;
	(void)state;

	sp = quote_defaults (keys.rsa, VERIFY_TPM_ALG_RSASSA);
	expect (build (&sp, &bb), VERIFY_TPM_OK);
	sp = quote_defaults (keys.rsa, VERIFY_TPM_ALG_RSAPSS);
	expect (build (&sp, &bb), VERIFY_TPM_OK);
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	expect (build (&sp, &bb), VERIFY_TPM_OK);

	/* SHA-384 signature and pcrDigest: passes only when allowed. */
	sp = quote_defaults (keys.ec384, VERIFY_TPM_ALG_ECDSA);
	sp.hash = sp.digest_hash = VERIFY_TPM_ALG_SHA384;
	in = build (&sp, &bb);
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);
	in->allowed_hashes = allow_all;
	in->n_allowed_hashes = 2;
	expect (in, VERIFY_TPM_OK);
	sp = quote_defaults (keys.rsa, VERIFY_TPM_ALG_RSAPSS);
	sp.hash = sp.digest_hash = VERIFY_TPM_ALG_SHA384;
	in = build (&sp, &bb);
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);
	in->allowed_hashes = allow_all;
	in->n_allowed_hashes = 2;
	expect (in, VERIFY_TPM_OK);

	/* pcrDigest under another hash than the signature's. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.digest_hash = VERIFY_TPM_ALG_SHA384;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_PCR_DIGEST);
}

static void
test_built_signature (void **state)
{
	struct spec sp;
	struct verify_tpm_input *in;
	(void)state;

	/* An ECDSA signature against an RSA AK, and the reverse. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	in = build (&sp, &bb);
	in->ak = keys.rsa;
	expect (in, VERIFY_TPM_ERR_SIG_SCHEME);
	sp = quote_defaults (keys.rsa, VERIFY_TPM_ALG_RSAPSS);
	in = build (&sp, &bb);
	in->ak = keys.ec;
	expect (in, VERIFY_TPM_ERR_SIG_SCHEME);
	/* Another EC key. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	in = build (&sp, &bb);
	in->ak = keys.ec384;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	/* A flipped bit of s. */
	in = build (&sp, &bb);
	bb.sig[bb.sig_len - 1] ^= 1;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	/* A signature of other bytes: the attestation changed after signing. */
	in = build (&sp, &bb);
	bb.attest[bb.attest_len - 1] ^= 1;
	expect (in, VERIFY_TPM_ERR_SIGNATURE);
	/* A byte after the TPMT_SIGNATURE, a truncated one, an unknown scheme. */
	sp.trailing_sig = true;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_SIG_TRAILING);
	sp.trailing_sig = false;
	in = build (&sp, &bb);
	in->sig_len -= 1;
	expect (in, VERIFY_TPM_ERR_SIG_PARSE);
	bb.sig[1] = 0x1a; /* ECSCHNORR */
	in->sig_len += 1;
	expect (in, VERIFY_TPM_ERR_SIG_SCHEME);
}

static void
test_built_fields (void **state)
{
	struct spec sp;
	struct verify_tpm_input *in;
	(void)state;

	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.safe = 0;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_CLOCK_UNSAFE);
	sp.safe = 2;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_CLOCK_UNSAFE);

	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.magic = 0xff544348;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_MAGIC);

	/* A properly signed certify attestation: same key, wrong statement. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.type = 0x8017;
	{
		/* attested.quote is not what certify marshals: build by hand */
		TPMS_ATTEST *a = calloc (1, sizeof *a);
		size_t off = 0;
		assert_non_null (a);
		a->magic = 0xff544347;
		a->type = 0x8017;
		a->extraData.size = 9;
		memcpy (a->extraData.buffer, NONCE, 9);
		a->clockInfo.safe = 1;
		a->attested.certify.name.size = 2;
		a->attested.certify.qualifiedName.size = 2;
		memset (&bb, 0, sizeof bb);
		assert_int_equal (Tss2_MU_TPMS_ATTEST_Marshal (a, bb.attest, sizeof bb.attest, &off),
		                  TSS2_RC_SUCCESS);
		free (a);
		bb.attest_len = off;
		sign (&sp, &bb);
		bb.in = (struct verify_tpm_input){ .attest = bb.attest, .attest_len = bb.attest_len,
			                           .sig = bb.sig, .sig_len = bb.sig_len,
			                           .sig_marshalled = true, .ak = keys.ec,
			                           .anchor = "test-ak", .nonce = (const unsigned char *)NONCE,
			                           .nonce_len = 9, .allowed_hashes = allow_sha256,
			                           .n_allowed_hashes = 1 };
		expect (&bb.in, VERIFY_TPM_ERR_TYPE);
	}

	/* extraData variants, each signed. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.extra = "";
	sp.extra_len = 0;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_NONCE);
	sp.extra = NONCE "\0";
	sp.extra_len = 10; /* the nonce and a NUL */
	expect (build (&sp, &bb), VERIFY_TPM_ERR_NONCE);
	sp.extra = "challeng";
	sp.extra_len = 8;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_NONCE);
	sp.extra = "CHALLENGE";
	sp.extra_len = 9;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_NONCE);
	{
		/* a 32-byte nonce, as FORMATS.md recommends */
		static const char n32[] = "0123456789abcdef0123456789abcdef";
		sp.extra = n32;
		sp.extra_len = 32;
		in = build (&sp, &bb);
		in->nonce = (const unsigned char *)n32;
		in->nonce_len = 32;
		expect (in, VERIFY_TPM_OK);
	}

	/* Firmware version beyond int64: verified, the claim left out. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.firmware = 0x8000000000000001ULL;
	in = build (&sp, &bb);
	{
		struct claim_set *set = claim_set_new ();
		char err[256];
		assert_int_equal (verify_tpm_quote (in, set, err, sizeof err), VERIFY_TPM_OK);
		assert_null (claim_set_find (set, "tpm.firmware-version"));
		assert_non_null (claim_set_find (set, "tpm.clock.reset-count"));
		/* Verifying into a set that already holds the claims fails. */
		assert_int_equal (verify_tpm_quote (in, set, err, sizeof err), VERIFY_TPM_ERR_CLAIMS);
		claim_set_free (set);
	}
}

static void
test_built_pcrs (void **state)
{
	struct spec sp;
	struct verify_tpm_input *in;
	struct claim_set *set;
	char err[256];
	(void)state;

	/* Two banks: the digest covers both in selection order. */
	sp = quote_defaults (keys.rsa, VERIFY_TPM_ALG_RSASSA);
	sp.banks[0] = (struct bank){ VERIFY_TPM_ALG_SHA1, 3, 0x00ffffff };
	sp.banks[1] = (struct bank){ VERIFY_TPM_ALG_SHA256, 3, 0x00800001 };
	sp.n_banks = 2;
	in = build (&sp, &bb);
	assert_int_equal (in->n_pcrs, 26);
	set = claim_set_new ();
	assert_int_equal (verify_tpm_quote (in, set, err, sizeof err), VERIFY_TPM_OK);
	assert_non_null (claim_set_find (set, "tpm.pcr.sha1.23"));
	assert_non_null (claim_set_find (set, "tpm.pcr.sha256.23"));
	assert_null (claim_set_find (set, "tpm.pcr.sha256.22"));
	claim_set_free (set);
	/* Same values, banks swapped in the caller's array: still fine. */
	{
		struct verify_tpm_pcr swapped[26];
		for (size_t i = 0; i < 26; i++)
			swapped[i] = bb.pcrs[(i + 24) % 26];
		in->pcrs = swapped;
		expect (in, VERIFY_TPM_OK);
	}
	/* Banks swapped in the selection: a different digest. */
	sp.banks[0] = (struct bank){ VERIFY_TPM_ALG_SHA256, 3, 0x00800001 };
	sp.banks[1] = (struct bank){ VERIFY_TPM_ALG_SHA1, 3, 0x00ffffff };
	in = build (&sp, &bb);
	expect (in, VERIFY_TPM_OK);
	sp.corrupt_digest = true;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_PCR_DIGEST);
	sp.corrupt_digest = false;

	/* An empty selection with no values presented verifies (the quote
	 * then says nothing about PCRs); one value presented does not. */
	sp.n_banks = 0;
	in = build (&sp, &bb);
	expect (in, VERIFY_TPM_OK);

	/* The same bank twice. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.banks[1] = (struct bank){ VERIFY_TPM_ALG_SHA256, 3, 0x2 };
	sp.n_banks = 2;
	expect (build (&sp, &bb), VERIFY_TPM_ERR_PCR_BANK);
	/* An unknown bank (SM3_256). */
	sp.banks[1] = (struct bank){ 0x0012, 3, 0x2 };
	in = build (&sp, &bb);
	in->n_pcrs = 3;
	expect (in, VERIFY_TPM_ERR_PCR_BANK);
	/* Five banks. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.banks[1] = (struct bank){ VERIFY_TPM_ALG_SHA1, 3, 0x1 };
	sp.banks[2] = (struct bank){ VERIFY_TPM_ALG_SHA384, 3, 0x1 };
	sp.banks[3] = (struct bank){ VERIFY_TPM_ALG_SHA512, 3, 0x1 };
	sp.banks[4] = (struct bank){ 0x0012, 3, 0x1 };
	sp.n_banks = 5;
	in = build (&sp, &bb);
	in->n_pcrs = 6;
	expect (in, VERIFY_TPM_ERR_PCR_COUNT);
	/* PCR 24 selected (sizeofSelect 4). */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	sp.banks[0] = (struct bank){ VERIFY_TPM_ALG_SHA256, 4, 0x01000001 };
	expect (build (&sp, &bb), VERIFY_TPM_ERR_PCR_COUNT);
	/* sizeofSelect 4 with nothing above 23 is fine. */
	sp.banks[0] = (struct bank){ VERIFY_TPM_ALG_SHA256, 4, 0x00000001 };
	expect (build (&sp, &bb), VERIFY_TPM_OK);
	/* A missing and an extra value. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	in = build (&sp, &bb);
	in->n_pcrs = 2;
	expect (in, VERIFY_TPM_ERR_PCR_SELECTION);
	bb.pcrs[3] = (struct verify_tpm_pcr){ VERIFY_TPM_ALG_SHA256, 1, bb.values[0][0], 32 };
	in->n_pcrs = 4;
	expect (in, VERIFY_TPM_ERR_PCR_SELECTION);
}

static void
test_built_raw (void **state)
{
	struct spec sp;
	struct verify_tpm_input *in;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	static unsigned char der[128];
	size_t der_len = sizeof der;
	(void)state;

	/* tpm2_quote -f plain for ECDSA: a DER signature. */
	sp = quote_defaults (keys.ec, VERIFY_TPM_ALG_ECDSA);
	in = build (&sp, &bb);
	assert_non_null (ctx);
	assert_int_equal (EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, keys.ec), 1);
	assert_int_equal (EVP_DigestSign (ctx, der, &der_len, bb.attest, bb.attest_len), 1);
	EVP_MD_CTX_free (ctx);
	in->sig = der;
	in->sig_len = der_len;
	in->sig_marshalled = false;
	in->raw_scheme = VERIFY_TPM_ALG_ECDSA;
	in->raw_hash = VERIFY_TPM_ALG_SHA256;
	expect (in, VERIFY_TPM_OK);
	in->raw_hash = VERIFY_TPM_ALG_SHA1;
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);
	in->raw_hash = 0x0099;
	expect (in, VERIFY_TPM_ERR_HASH_NOT_ALLOWED);
}

int
main (void)
{
	const struct CMUnitTest azure[] = {
		cmocka_unit_test (test_azure_ok),
		cmocka_unit_test (test_azure_wrong_ak),
		cmocka_unit_test (test_azure_bad_signature),
		cmocka_unit_test (test_azure_nonce),
		cmocka_unit_test (test_azure_structure),
		cmocka_unit_test (test_azure_pcrs),
		cmocka_unit_test (test_azure_limits),
	};
	const struct CMUnitTest built[] = {
		cmocka_unit_test (test_built_schemes),
		cmocka_unit_test (test_built_signature),
		cmocka_unit_test (test_built_fields),
		cmocka_unit_test (test_built_pcrs),
		cmocka_unit_test (test_built_raw),
	};
	int rv = cmocka_run_group_tests_name ("azure-vtpm", azure, azure_setup, azure_teardown);
	rv |= cmocka_run_group_tests_name ("built", built, keys_setup, keys_teardown);
	return rv;
}
