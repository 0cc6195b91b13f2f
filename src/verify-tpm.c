/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "verify-tpm.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#define TPM_GENERATED_VALUE 0xff544347u
#define TPM_ST_ATTEST_QUOTE 0x8018u

static void
set_err (char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start (ap, fmt);
	vsnprintf (err, errlen, fmt, ap);
	va_end (ap);
}

const char *
verify_tpm_strerror (int rv)
{
	switch (rv) {
	case VERIFY_TPM_OK: return "ok";
	case VERIFY_TPM_ERR_ARGS: return "invalid arguments";
	case VERIFY_TPM_ERR_ATTEST_SIZE: return "attestation size out of range";
	case VERIFY_TPM_ERR_SIG_SIZE: return "signature size out of range";
	case VERIFY_TPM_ERR_PCR_COUNT: return "too many PCRs";
	case VERIFY_TPM_ERR_ATTEST_PARSE: return "attestation does not parse";
	case VERIFY_TPM_ERR_ATTEST_TRAILING: return "trailing bytes after the attestation";
	case VERIFY_TPM_ERR_MAGIC: return "attestation magic is not TPM_GENERATED_VALUE";
	case VERIFY_TPM_ERR_TYPE: return "attestation is not a quote";
	case VERIFY_TPM_ERR_SIG_PARSE: return "signature does not parse";
	case VERIFY_TPM_ERR_SIG_TRAILING: return "trailing bytes after the signature";
	case VERIFY_TPM_ERR_SIG_SCHEME: return "signature scheme not supported for the AK";
	case VERIFY_TPM_ERR_HASH_NOT_ALLOWED: return "signature hash not allowed";
	case VERIFY_TPM_ERR_SIGNATURE: return "signature does not verify under the AK";
	case VERIFY_TPM_ERR_NONCE: return "nonce mismatch";
	case VERIFY_TPM_ERR_PCR_BANK: return "bad PCR bank";
	case VERIFY_TPM_ERR_PCR_VALUE: return "bad PCR value";
	case VERIFY_TPM_ERR_PCR_SELECTION: return "PCR selection does not match the PCRs presented";
	case VERIFY_TPM_ERR_PCR_DIGEST: return "PCR digest mismatch";
	case VERIFY_TPM_ERR_CLOCK_UNSAFE: return "TPM clock not safe";
	case VERIFY_TPM_ERR_NO_MEMORY: return "out of memory";
	case VERIFY_TPM_ERR_CLAIMS: return "claim refused";
	case VERIFY_TPM_ERR_CRYPTO: return "cryptographic library failure";
	}
	return "unknown error";
}

/* The hashes a bank or a signature may use; SHA-1 is here for banks of old
 * TPMs, and a signature with it only passes if the caller allows it. */
static const struct {
	uint16_t alg;
	const char *name; /* as in tpm.pcr.NAME.N */
	size_t len;
} hashes[] = {
	{ VERIFY_TPM_ALG_SHA1, "sha1", 20 },
	{ VERIFY_TPM_ALG_SHA256, "sha256", 32 },
	{ VERIFY_TPM_ALG_SHA384, "sha384", 48 },
	{ VERIFY_TPM_ALG_SHA512, "sha512", 64 },
};

static int
hash_index (uint16_t alg)
{
	for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		if (hashes[i].alg == alg)
			return (int)i;
	}
	return -1;
}

/* The digests, fetched once: OpenSSL 3's implicit fetch (EVP_sha256 ())
 * looks the algorithm up under a lock at every use, which cost more than
 * the rest of an appraisal but the RSA verification. */
static EVP_MD *fetched[4];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void
fetch_mds (void)
{
	static const char *const names[4] = { "SHA1", "SHA256", "SHA384", "SHA512" };
	for (int i = 0; i < 4; i++)
		fetched[i] = EVP_MD_fetch (NULL, names[i], NULL);
}

static const EVP_MD *
hash_md (uint16_t alg)
{
	const EVP_MD *md = NULL;
	int i = -1;
	switch (alg) {
	case VERIFY_TPM_ALG_SHA1: i = 0; md = EVP_sha1 (); break;
	case VERIFY_TPM_ALG_SHA256: i = 1; md = EVP_sha256 (); break;
	case VERIFY_TPM_ALG_SHA384: i = 2; md = EVP_sha384 (); break;
	case VERIFY_TPM_ALG_SHA512: i = 3; md = EVP_sha512 (); break;
	}
	if (i < 0)
		return NULL;
	pthread_once (&fetch_once, fetch_mds);
	return fetched[i] ? fetched[i] : md;
}

/* The signature as OpenSSL verifies it: scheme, hash, and the bytes
 * (RSA: the signature; ECDSA: DER). */
struct sig {
	uint16_t scheme;
	uint16_t hash;
	unsigned char *der;          /* owned; ECDSA from r/s only */
	const unsigned char *bytes;
	size_t len;
};

/* r and s -> a DER ECDSA-Sig-Value, which is what EVP verifies. */
static int
ecdsa_der (const TPMS_SIGNATURE_ECDSA *e, struct sig *s, char *err, size_t errlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *ss = NULL;
	int n, rv = VERIFY_TPM_ERR_NO_MEMORY;

	if (e->signatureR.size == 0 || e->signatureS.size == 0) {
		set_err (err, errlen, "ECDSA signature with an empty r or s");
		return VERIFY_TPM_ERR_SIG_PARSE;
	}
	r = BN_bin2bn (e->signatureR.buffer, e->signatureR.size, NULL);
	ss = BN_bin2bn (e->signatureS.buffer, e->signatureS.size, NULL);
	es = ECDSA_SIG_new ();
	if (!r || !ss || !es)
		goto out;
	ECDSA_SIG_set0 (es, r, ss); /* es owns r and s from here */
	r = ss = NULL;
	s->der = NULL;
	n = i2d_ECDSA_SIG (es, &s->der);
	if (n <= 0)
		goto out;
	s->bytes = s->der;
	s->len = (size_t)n;
	rv = VERIFY_TPM_OK;
out:
	if (rv != VERIFY_TPM_OK)
		set_err (err, errlen, "%s", verify_tpm_strerror (rv));
	BN_free (r);
	BN_free (ss);
	ECDSA_SIG_free (es);
	return rv;
}

static int
parse_signature (const struct verify_tpm_input *in, TPMT_SIGNATURE *ts, struct sig *s, char *err,
                 size_t errlen)
{
	size_t off = 0;
	TSS2_RC trc;

	if (!in->sig_marshalled) {
		s->scheme = in->raw_scheme;
		s->hash = in->raw_hash;
		s->bytes = in->sig;
		s->len = in->sig_len;
		return VERIFY_TPM_OK;
	}
	memset (ts, 0, sizeof *ts);
	trc = Tss2_MU_TPMT_SIGNATURE_Unmarshal (in->sig, in->sig_len, &off, ts);
	if (trc != TSS2_RC_SUCCESS) {
		set_err (err, errlen, "TPMT_SIGNATURE does not unmarshal (0x%x)", (unsigned)trc);
		return VERIFY_TPM_ERR_SIG_PARSE;
	}
	if (off != in->sig_len) {
		set_err (err, errlen, "%zu bytes after the TPMT_SIGNATURE", in->sig_len - off);
		return VERIFY_TPM_ERR_SIG_TRAILING;
	}
	s->scheme = ts->sigAlg;
	switch (ts->sigAlg) {
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		/* rsassa and rsapss share one layout */
		s->hash = ts->signature.rsassa.hash;
		s->bytes = ts->signature.rsassa.sig.buffer;
		s->len = ts->signature.rsassa.sig.size;
		return VERIFY_TPM_OK;
	case TPM2_ALG_ECDSA:
		s->hash = ts->signature.ecdsa.hash;
		return ecdsa_der (&ts->signature.ecdsa, s, err, errlen);
	}
	set_err (err, errlen, "signature scheme 0x%04x not supported", (unsigned)ts->sigAlg);
	return VERIFY_TPM_ERR_SIG_SCHEME;
}

static int
verify_signature (const struct verify_tpm_input *in, const struct sig *s, char *err, size_t errlen)
{
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	bool allowed = false, rsa, ec;
	int rv = VERIFY_TPM_ERR_CRYPTO, ok;

	for (size_t i = 0; i < in->n_allowed_hashes; i++) {
		if (in->allowed_hashes[i] == s->hash)
			allowed = true;
	}
	md = hash_md (s->hash);
	if (!allowed || !md) {
		set_err (err, errlen, "signature hash 0x%04x not allowed", (unsigned)s->hash);
		return VERIFY_TPM_ERR_HASH_NOT_ALLOWED;
	}
	/* The scheme must fit the pinned key: an RSA AK never vouches for an
	 * ECDSA signature and the reverse. */
	rsa = EVP_PKEY_is_a (in->ak, "RSA");
	ec = EVP_PKEY_is_a (in->ak, "EC");
	if (!((rsa && (s->scheme == TPM2_ALG_RSASSA || s->scheme == TPM2_ALG_RSAPSS)) ||
	      (ec && s->scheme == TPM2_ALG_ECDSA))) {
		set_err (err, errlen, "signature scheme 0x%04x does not fit the AK (%s)",
		         (unsigned)s->scheme, EVP_PKEY_get0_type_name (in->ak));
		return VERIFY_TPM_ERR_SIG_SCHEME;
	}
	ctx = EVP_MD_CTX_new ();
	if (!ctx) {
		rv = VERIFY_TPM_ERR_NO_MEMORY;
		goto out;
	}
	if (EVP_DigestVerifyInit (ctx, &pctx, md, NULL, in->ak) != 1)
		goto out;
	if (s->scheme == TPM2_ALG_RSASSA && EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	/* PSS: the MGF1 hash defaults to the signature's; the salt length
	 * varies between TPMs (hash length on swtpm, the maximum on many
	 * chips), and AUTO reads it from the signature. */
	if (s->scheme == TPM2_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_AUTO) != 1))
		goto out;
	ok = EVP_DigestVerify (ctx, s->bytes, s->len, in->attest, in->attest_len);
	if (ok != 1) {
		rv = VERIFY_TPM_ERR_SIGNATURE;
		goto out;
	}
	rv = VERIFY_TPM_OK;
out:
	if (rv != VERIFY_TPM_OK)
		set_err (err, errlen, "%s", verify_tpm_strerror (rv));
	/* A bad signature leaves OpenSSL errors queued; they are not news. */
	ERR_clear_error ();
	EVP_MD_CTX_free (ctx);
	return rv;
}

/* Find the presented value for bank @alg, PCR @idx, or NULL. */
static const struct verify_tpm_pcr *
find_pcr (const struct verify_tpm_input *in, uint16_t alg, unsigned int idx)
{
	for (size_t i = 0; i < in->n_pcrs; i++) {
		if (in->pcrs[i].bank == alg && in->pcrs[i].index == idx)
			return &in->pcrs[i];
	}
	return NULL;
}

static bool
selected (const TPMS_PCR_SELECTION *sel, unsigned int idx)
{
	return idx / 8 < sel->sizeofSelect && (sel->pcrSelect[idx / 8] >> (idx % 8)) & 1;
}

/*
 * The selection and the presented values must match one to one: a value
 * the quote does not cover is unsigned and must not become a claim, and a
 * selected PCR without a value would leave pcrDigest uncheckable.
 */
static int
check_selection (const struct verify_tpm_input *in, const TPML_PCR_SELECTION *list, char *err,
                 size_t errlen)
{
	size_t n_selected = 0;

	if (list->count > VERIFY_TPM_BANKS_MAX) {
		set_err (err, errlen, "%u banks selected (at most %d)", (unsigned)list->count,
		         VERIFY_TPM_BANKS_MAX);
		return VERIFY_TPM_ERR_PCR_COUNT;
	}
	for (uint32_t b = 0; b < list->count; b++) {
		const TPMS_PCR_SELECTION *sel = &list->pcrSelections[b];
		int h = hash_index (sel->hash);
		if (h < 0) {
			set_err (err, errlen, "PCR bank 0x%04x not supported", (unsigned)sel->hash);
			return VERIFY_TPM_ERR_PCR_BANK;
		}
		for (uint32_t c = 0; c < b; c++) {
			if (list->pcrSelections[c].hash == sel->hash) {
				set_err (err, errlen, "PCR bank %s selected twice", hashes[h].name);
				return VERIFY_TPM_ERR_PCR_BANK;
			}
		}
		for (unsigned int i = VERIFY_TPM_PCRS_MAX; i < 8u * sel->sizeofSelect; i++) {
			if (selected (sel, i)) {
				set_err (err, errlen, "PCR %s:%u selected (at most %d per bank)", hashes[h].name,
				         i, VERIFY_TPM_PCRS_MAX);
				return VERIFY_TPM_ERR_PCR_COUNT;
			}
		}
		for (unsigned int i = 0; i < VERIFY_TPM_PCRS_MAX; i++) {
			if (!selected (sel, i))
				continue;
			n_selected++;
			if (!find_pcr (in, sel->hash, i)) {
				set_err (err, errlen, "PCR %s:%u is quoted but not presented", hashes[h].name, i);
				return VERIFY_TPM_ERR_PCR_SELECTION;
			}
		}
	}
	/* Every selected PCR has a value; values are distinct (checked by the
	 * caller), so equal counts mean nothing extra was presented. */
	if (n_selected != in->n_pcrs) {
		for (size_t i = 0; i < in->n_pcrs; i++) {
			bool covered = false;
			for (uint32_t b = 0; b < list->count; b++) {
				if (list->pcrSelections[b].hash == in->pcrs[i].bank &&
				    selected (&list->pcrSelections[b], in->pcrs[i].index))
					covered = true;
			}
			if (!covered) {
				set_err (err, errlen, "PCR 0x%04x:%u is presented but not quoted",
				         (unsigned)in->pcrs[i].bank, in->pcrs[i].index);
				break;
			}
		}
		return VERIFY_TPM_ERR_PCR_SELECTION;
	}
	return VERIFY_TPM_OK;
}

/* Presented values: a known bank, an index in range, the bank's length,
 * each PCR at most once. */
static int
check_presented (const struct verify_tpm_input *in, char *err, size_t errlen)
{
	for (size_t i = 0; i < in->n_pcrs; i++) {
		const struct verify_tpm_pcr *p = &in->pcrs[i];
		int h = hash_index (p->bank);
		if (h < 0) {
			set_err (err, errlen, "presented PCR bank 0x%04x not supported", (unsigned)p->bank);
			return VERIFY_TPM_ERR_PCR_BANK;
		}
		if (p->index >= VERIFY_TPM_PCRS_MAX || !p->digest || p->len != hashes[h].len) {
			set_err (err, errlen, "presented PCR %s:%u: bad index or length %zu", hashes[h].name,
			         p->index, p->len);
			return VERIFY_TPM_ERR_PCR_VALUE;
		}
		for (size_t j = 0; j < i; j++) {
			if (in->pcrs[j].bank == p->bank && in->pcrs[j].index == p->index) {
				set_err (err, errlen, "PCR %s:%u presented twice", hashes[h].name, p->index);
				return VERIFY_TPM_ERR_PCR_VALUE;
			}
		}
	}
	return VERIFY_TPM_OK;
}

/* pcrDigest = H(values, banks in selection order, ascending index), H the
 * signature's hash. */
static int
check_pcr_digest (const struct verify_tpm_input *in, const TPMS_QUOTE_INFO *q, uint16_t hash,
                  char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	int rv = VERIFY_TPM_ERR_CRYPTO;

	if (!ctx) {
		rv = VERIFY_TPM_ERR_NO_MEMORY;
		goto out;
	}
	if (EVP_DigestInit_ex (ctx, hash_md (hash), NULL) != 1)
		goto out;
	for (uint32_t b = 0; b < q->pcrSelect.count; b++) {
		const TPMS_PCR_SELECTION *sel = &q->pcrSelect.pcrSelections[b];
		for (unsigned int i = 0; i < VERIFY_TPM_PCRS_MAX; i++) {
			const struct verify_tpm_pcr *p;
			if (!selected (sel, i))
				continue;
			p = find_pcr (in, sel->hash, i);
			if (EVP_DigestUpdate (ctx, p->digest, p->len) != 1)
				goto out;
		}
	}
	if (EVP_DigestFinal_ex (ctx, md, &mdlen) != 1)
		goto out;
	if (q->pcrDigest.size != mdlen || CRYPTO_memcmp (q->pcrDigest.buffer, md, mdlen) != 0) {
		rv = VERIFY_TPM_ERR_PCR_DIGEST;
		goto out;
	}
	rv = VERIFY_TPM_OK;
out:
	if (rv != VERIFY_TPM_OK)
		set_err (err, errlen, "%s", verify_tpm_strerror (rv));
	EVP_MD_CTX_free (ctx);
	return rv;
}

static int
add_claims (const struct verify_tpm_input *in, const TPMS_ATTEST *a, struct claim_set *out,
            char *err, size_t errlen)
{
	const TPML_PCR_SELECTION *list = &a->attested.quote.pcrSelect;
	unsigned char *spki = NULL, akhash[32];
	char name[CLAIM_NAME_MAX + 1];
	enum claims_err cr = CLAIMS_OK;
	int n, rv = VERIFY_TPM_ERR_CLAIMS;

	for (uint32_t b = 0; b < list->count && cr == CLAIMS_OK; b++) {
		const TPMS_PCR_SELECTION *sel = &list->pcrSelections[b];
		for (unsigned int i = 0; i < VERIFY_TPM_PCRS_MAX && cr == CLAIMS_OK; i++) {
			const struct verify_tpm_pcr *p;
			if (!selected (sel, i))
				continue;
			p = find_pcr (in, sel->hash, i);
			snprintf (name, sizeof name, "tpm.pcr.%s.%u", hashes[hash_index (sel->hash)].name, i);
			cr = claim_set_add_bytes (out, name, p->digest, p->len);
		}
	}
	/* The claim is an int64; a firmware version with the top bit set is
	 * left out rather than made negative, so a policy naming it fails
	 * closed. */
	if (cr == CLAIMS_OK && a->firmwareVersion <= INT64_MAX)
		cr = claim_set_add_int (out, "tpm.firmware-version", (int64_t)a->firmwareVersion);
	if (cr == CLAIMS_OK)
		cr = claim_set_add_int (out, "tpm.clock.reset-count", a->clockInfo.resetCount);
	if (cr == CLAIMS_OK)
		cr = claim_set_add_int (out, "tpm.clock.restart-count", a->clockInfo.restartCount);
	if (cr == CLAIMS_OK)
		cr = claim_set_add_bool (out, "tpm.clock.safe", a->clockInfo.safe == 1);
	if (cr == CLAIMS_OK && in->ak_fingerprint) {
		cr = claim_set_add_bytes (out, "tpm.ak", in->ak_fingerprint, sizeof akhash);
	} else if (cr == CLAIMS_OK) {
		n = i2d_PUBKEY (in->ak, &spki);
		if (n <= 0 || EVP_Digest (spki, (size_t)n, akhash, NULL, hash_md (VERIFY_TPM_ALG_SHA256),
		                          NULL) != 1) {
			rv = VERIFY_TPM_ERR_CRYPTO;
			goto out;
		}
		cr = claim_set_add_bytes (out, "tpm.ak", akhash, sizeof akhash);
	}
	if (cr == CLAIMS_OK)
		cr = claim_set_add_string (out, "evidence.format", "tpm2-quote", strlen ("tpm2-quote"));
	if (cr == CLAIMS_OK)
		cr = claim_set_add_string (out, "evidence.anchor", in->anchor, strlen (in->anchor));
	if (cr != CLAIMS_OK) {
		set_err (err, errlen, "claim refused: %s", claims_strerror (cr));
		rv = cr == CLAIMS_NO_MEMORY ? VERIFY_TPM_ERR_NO_MEMORY : VERIFY_TPM_ERR_CLAIMS;
		goto out;
	}
	rv = VERIFY_TPM_OK;
out:
	if (rv == VERIFY_TPM_ERR_CRYPTO)
		set_err (err, errlen, "cannot encode the AK");
	OPENSSL_free (spki);
	return rv;
}

int
verify_tpm_quote (const struct verify_tpm_input *in, struct claim_set *out, char *err,
                  size_t errlen)
{
	/* TPMS_ATTEST and TPMT_SIGNATURE are several KiB each (their unions
	 * are sized for the largest member), so they live on the heap. */
	TPMS_ATTEST *a = NULL;
	TPMT_SIGNATURE *ts = NULL;
	struct sig s = { 0 };
	size_t off = 0;
	TSS2_RC trc;
	int rv;

	set_err (err, errlen, "ok");
	if (!in || !out || !in->attest || !in->sig || !in->ak || !in->anchor || !in->nonce ||
	    (in->n_pcrs && !in->pcrs) || (in->n_allowed_hashes && !in->allowed_hashes)) {
		set_err (err, errlen, "missing input");
		return VERIFY_TPM_ERR_ARGS;
	}
	/* A quote without a nonce could be a replay: never accept one. */
	if (in->nonce_len == 0 || in->nonce_len > VERIFY_TPM_NONCE_MAX) {
		set_err (err, errlen, "expected nonce of %zu bytes (1..%d)", in->nonce_len,
		         VERIFY_TPM_NONCE_MAX);
		return VERIFY_TPM_ERR_ARGS;
	}
	if (in->attest_len == 0 || in->attest_len > VERIFY_TPM_ATTEST_MAX) {
		set_err (err, errlen, "attestation of %zu bytes (1..%d)", in->attest_len,
		         VERIFY_TPM_ATTEST_MAX);
		return VERIFY_TPM_ERR_ATTEST_SIZE;
	}
	if (in->sig_len == 0 || in->sig_len > VERIFY_TPM_SIG_MAX) {
		set_err (err, errlen, "signature of %zu bytes (1..%d)", in->sig_len, VERIFY_TPM_SIG_MAX);
		return VERIFY_TPM_ERR_SIG_SIZE;
	}
	if (in->n_pcrs > (size_t)VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX) {
		set_err (err, errlen, "%zu PCR values presented (at most %d)", in->n_pcrs,
		         VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX);
		return VERIFY_TPM_ERR_PCR_COUNT;
	}
	rv = check_presented (in, err, errlen);
	if (rv != VERIFY_TPM_OK)
		return rv;

	a = calloc (1, sizeof *a);
	ts = calloc (1, sizeof *ts);
	if (!a || !ts) {
		rv = VERIFY_TPM_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", verify_tpm_strerror (rv));
		goto out;
	}
	trc = Tss2_MU_TPMS_ATTEST_Unmarshal (in->attest, in->attest_len, &off, a);
	if (trc != TSS2_RC_SUCCESS) {
		rv = VERIFY_TPM_ERR_ATTEST_PARSE;
		set_err (err, errlen, "TPMS_ATTEST does not unmarshal (0x%x)", (unsigned)trc);
		goto out;
	}
	if (off != in->attest_len) {
		rv = VERIFY_TPM_ERR_ATTEST_TRAILING;
		set_err (err, errlen, "%zu bytes after the TPMS_ATTEST", in->attest_len - off);
		goto out;
	}
	/* tss2-mu checks neither: magic proves the TPM built the structure
	 * (it refuses to sign external data starting with it), type that it
	 * is a quote and attested.quote is the union member that was read. */
	if (a->magic != TPM_GENERATED_VALUE) {
		rv = VERIFY_TPM_ERR_MAGIC;
		set_err (err, errlen, "magic 0x%08x", (unsigned)a->magic);
		goto out;
	}
	if (a->type != TPM_ST_ATTEST_QUOTE) {
		rv = VERIFY_TPM_ERR_TYPE;
		set_err (err, errlen, "attestation type 0x%04x, not a quote", (unsigned)a->type);
		goto out;
	}

	/* Nothing below the signature check is trusted before it passes. */
	rv = parse_signature (in, ts, &s, err, errlen);
	if (rv != VERIFY_TPM_OK)
		goto out;
	rv = verify_signature (in, &s, err, errlen);
	if (rv != VERIFY_TPM_OK)
		goto out;

	if (a->extraData.size != in->nonce_len ||
	    CRYPTO_memcmp (a->extraData.buffer, in->nonce, in->nonce_len) != 0) {
		rv = VERIFY_TPM_ERR_NONCE;
		set_err (err, errlen, "extraData (%u bytes) is not the expected nonce (%zu bytes)",
		         (unsigned)a->extraData.size, in->nonce_len);
		goto out;
	}
	rv = check_selection (in, &a->attested.quote.pcrSelect, err, errlen);
	if (rv != VERIFY_TPM_OK)
		goto out;
	rv = check_pcr_digest (in, &a->attested.quote, s.hash, err, errlen);
	if (rv != VERIFY_TPM_OK)
		goto out;
	/* safe = 0: the clock may have gone back since the last report, so
	 * resetCount/restartCount cannot be trusted to order quotes. */
	if (a->clockInfo.safe != 1) {
		rv = VERIFY_TPM_ERR_CLOCK_UNSAFE;
		set_err (err, errlen, "clockInfo.safe = %u", (unsigned)a->clockInfo.safe);
		goto out;
	}
	rv = add_claims (in, a, out, err, errlen);
out:
	OPENSSL_free (s.der);
	free (a);
	free (ts);
	return rv;
}
