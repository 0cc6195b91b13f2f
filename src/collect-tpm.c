/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TPM 2.0 quote collector (collector.h): one ESAPI connection per run
 * (TCTI loader, Esys_Initialize), the persistent AK looked up and checked,
 * Esys_Quote of the configured selection with the nonce as qualifyingData,
 * then Esys_PCR_Read of the same selection, and everything closed again on
 * every path.  Nothing transient is loaded: the AK is persistent and the
 * quote is authorised with a password (empty auth), not a session, so
 * there is nothing to flush, which matters without a resource manager
 * (swtpm, /dev/tpm0).
 *
 * A connection per run costs a dlopen of the TCTI and a socket or device
 * open, and buys recovery from a TPM or simulator that restarted between
 * runs.  Runs of one collector are serialised: one TPM, and a simulator
 * socket serves one client at a time anyway.
 *
 * The PCRs are read after the quote, so an extend in between makes the
 * values disagree with the quote's pcrDigest, which the verifier refuses.
 * The run recomputes the digest and, on a mismatch, quotes and reads once
 * more before giving up (COLLECTOR_ERR_PCR_UNSTABLE).
 */
#include "config.h"

#include "collector-impl.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define TCTI_CONF_MAX 512
#define PCR_SPEC_MAX 256
#define BANKS_MAX 4
#define PCRS_PER_BANK 24
#define QUOTE_TRIES 2

static const struct {
	TPMI_ALG_HASH alg;
	const char *name;
	size_t len;
} banks_known[] = {
	{ TPM2_ALG_SHA1, "sha1", 20 },
	{ TPM2_ALG_SHA256, "sha256", 32 },
	{ TPM2_ALG_SHA384, "sha384", 48 },
	{ TPM2_ALG_SHA512, "sha512", 64 },
};

static int
bank_index (TPMI_ALG_HASH alg)
{
	for (size_t i = 0; i < sizeof banks_known / sizeof banks_known[0]; i++) {
		if (banks_known[i].alg == alg)
			return (int)i;
	}
	return -1;
}

static const EVP_MD *
bank_md (TPMI_ALG_HASH alg)
{
	switch (alg) {
	case TPM2_ALG_SHA1: return EVP_sha1 ();
	case TPM2_ALG_SHA256: return EVP_sha256 ();
	case TPM2_ALG_SHA384: return EVP_sha384 ();
	case TPM2_ALG_SHA512: return EVP_sha512 ();
	}
	return NULL;
}

struct bank_sel {
	TPMI_ALG_HASH alg;
	uint32_t mask;               /* bit n = PCR n */
};

struct tpm_collector {
	pthread_mutex_t lock;        /* one run at a time: one TPM */
	char *tcti;                  /* NULL: tctildr's default */
	uint32_t ak_handle;
	struct bank_sel banks[BANKS_MAX];
	size_t n_banks;
	TPML_PCR_SELECTION sel;
};

static void
tpm_free (void *impl)
{
	struct tpm_collector *t = impl;
	if (!t)
		return;
	pthread_mutex_destroy (&t->lock);
	free (t->tcti);
	free (t);
}

/* "sha256:0,1,16+sha1:7": banks joined by '+', each once, each with one or
 * more distinct PCRs 0..23 in any order. */
static int
parse_pcrs (const char *spec, struct bank_sel *banks, size_t *n_banks, char *err, size_t errlen)
{
	char buf[PCR_SPEC_MAX + 1];
	char *save = NULL, *part;
	size_t n = 0;

	if (!spec || !*spec) {
		collector_set_err (err, errlen, "PCR selection missing");
		return COLLECTOR_ERR_ARGS;
	}
	if (strnlen (spec, PCR_SPEC_MAX + 1) > PCR_SPEC_MAX) {
		collector_set_err (err, errlen, "PCR selection longer than %d characters",
		                   PCR_SPEC_MAX);
		return COLLECTOR_ERR_ARGS;
	}
	memcpy (buf, spec, strlen (spec) + 1);
	/* strtok_r would merge "++" and skip a leading '+': walk by hand. */
	for (part = buf; part; part = save) {
		char *colon, *p;
		int bi = -1;
		uint32_t mask = 0;

		save = strchr (part, '+');
		if (save)
			*save++ = '\0';
		colon = strchr (part, ':');
		if (!colon) {
			collector_set_err (err, errlen, "PCR selection '%s': expected BANK:N[,N...]",
			                   part);
			return COLLECTOR_ERR_ARGS;
		}
		*colon = '\0';
		for (size_t i = 0; i < sizeof banks_known / sizeof banks_known[0]; i++) {
			if (strcmp (part, banks_known[i].name) == 0)
				bi = (int)i;
		}
		if (bi < 0) {
			collector_set_err (err, errlen, "PCR bank '%s' unknown (sha1, sha256, sha384, "
			                   "sha512)", part);
			return COLLECTOR_ERR_ARGS;
		}
		for (size_t i = 0; i < n; i++) {
			if (banks[i].alg == banks_known[bi].alg) {
				collector_set_err (err, errlen, "PCR bank %s selected twice", part);
				return COLLECTOR_ERR_ARGS;
			}
		}
		if (n == BANKS_MAX) {
			collector_set_err (err, errlen, "more than %d PCR banks", BANKS_MAX);
			return COLLECTOR_ERR_ARGS;
		}
		p = colon + 1;
		for (;;) {
			unsigned v = 0;
			size_t digits = 0;
			while (*p >= '0' && *p <= '9' && digits < 3) {
				v = v * 10 + (unsigned)(*p++ - '0');
				digits++;
			}
			if (digits == 0 || v >= PCRS_PER_BANK || (*p != ',' && *p != '\0')) {
				collector_set_err (err, errlen, "PCR selection for %s: expected PCR "
				                   "numbers 0..%d separated by commas", part,
				                   PCRS_PER_BANK - 1);
				return COLLECTOR_ERR_ARGS;
			}
			if (mask & (1u << v)) {
				collector_set_err (err, errlen, "PCR %s:%u selected twice", part, v);
				return COLLECTOR_ERR_ARGS;
			}
			mask |= 1u << v;
			if (*p == '\0')
				break;
			p++;
		}
		banks[n].alg = banks_known[bi].alg;
		banks[n].mask = mask;
		n++;
	}
	*n_banks = n;
	return COLLECTOR_OK;
}

static void
selection_from_banks (const struct bank_sel *banks, size_t n, TPML_PCR_SELECTION *sel)
{
	memset (sel, 0, sizeof *sel);
	sel->count = (UINT32)n;
	for (size_t i = 0; i < n; i++) {
		sel->pcrSelections[i].hash = banks[i].alg;
		sel->pcrSelections[i].sizeofSelect = 3;
		for (unsigned b = 0; b < 3; b++)
			sel->pcrSelections[i].pcrSelect[b] = (BYTE)(banks[i].mask >> (8 * b));
	}
}

static int tpm_run (void *impl, const unsigned char *nonce, size_t nonce_len,
                    struct collected *out, char *err, size_t errlen);

static const struct collector_ops tpm_ops = {
	.kind = "tpm2-quote",
	.run = tpm_run,
	.free = tpm_free,
};

struct collector *
collector_tpm2_new (const char *name, const char *tcti, uint32_t ak_handle, const char *pcrs,
                    char *err, size_t errlen)
{
	struct tpm_collector *t;

	if (collector_check_name (name, err, errlen) != COLLECTOR_OK)
		return NULL;
	if (tcti) {
		size_t n = strnlen (tcti, TCTI_CONF_MAX + 1);
		if (n == 0 || n > TCTI_CONF_MAX) {
			collector_set_err (err, errlen, "collector %s: TCTI configuration empty or "
			                   "longer than %d characters", name, TCTI_CONF_MAX);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			if (tcti[i] < ' ' || tcti[i] > '~') {
				collector_set_err (err, errlen, "collector %s: TCTI configuration has a "
				                   "non-printable character", name);
				return NULL;
			}
		}
	}
	/* TPM_HT_PERSISTENT; owner-created objects live in 0x81000000 ..
	 * 0x817fffff and platform ones above, both fine for an AK. */
	if ((ak_handle & 0xff000000u) != 0x81000000u) {
		collector_set_err (err, errlen, "collector %s: AK handle 0x%08x is not a persistent "
		                   "handle (0x81000000..0x81ffffff)", name, (unsigned)ak_handle);
		return NULL;
	}
	t = calloc (1, sizeof *t);
	if (!t) {
		collector_set_err (err, errlen, "out of memory");
		return NULL;
	}
	if (parse_pcrs (pcrs, t->banks, &t->n_banks, err, errlen) != COLLECTOR_OK) {
		free (t);
		return NULL;
	}
	selection_from_banks (t->banks, t->n_banks, &t->sel);
	if (tcti && !(t->tcti = strdup (tcti))) {
		free (t);
		collector_set_err (err, errlen, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init (&t->lock, NULL) != 0) {
		free (t->tcti);
		free (t);
		collector_set_err (err, errlen, "cannot make a mutex");
		return NULL;
	}
	t->ak_handle = ak_handle;
	return collector_wrap (name, &tpm_ops, t, err, errlen);
}

/* ---------------------------------------------------------------- a run */

/* One run's TPM connection and results. */
struct run {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ak;
	TPMT_SIG_SCHEME scheme;
	TPM2B_ATTEST *quoted;
	TPMT_SIGNATURE *sig;
	/* values[bank][pcr], lengths from banks_known; have = read */
	unsigned char values[BANKS_MAX][PCRS_PER_BANK][64];
	uint32_t have[BANKS_MAX];
};

static void
tpm_err (char *err, size_t errlen, const char *what, TSS2_RC rc)
{
	const char *text = Tss2_RC_Decode (rc);
	collector_set_err (err, errlen, "%s: 0x%x %s", what, (unsigned)rc, text ? text : "");
}

/* TPM_RC_HANDLE (format 1, error 0x0b) on a handle, from the TPM itself:
 * nothing lives at the persistent handle. */
static bool
rc_is_bad_handle (TSS2_RC rc)
{
	return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && (rc & TPM2_RC_FMT1) &&
	       (rc & 0x3f) == (TPM2_RC_HANDLE & 0x3f);
}

static void
run_close (struct run *r)
{
	Esys_Free (r->quoted);
	Esys_Free (r->sig);
	r->quoted = NULL;
	r->sig = NULL;
	if (r->esys && r->ak != ESYS_TR_NONE)
		Esys_TR_Close (r->esys, &r->ak); /* frees metadata only: the key stays */
	r->ak = ESYS_TR_NONE;
	if (r->esys)
		Esys_Finalize (&r->esys);
	if (r->tcti)
		Tss2_TctiLdr_Finalize (&r->tcti);
}

/* Connect, find the AK and choose the quote's signature scheme from it. */
static int
run_open (struct tpm_collector *t, struct run *r, char *err, size_t errlen)
{
	TPM2B_PUBLIC *pub = NULL;
	TPMT_PUBLIC *pa;
	TSS2_RC rc;
	int rv;

	rc = Tss2_TctiLdr_Initialize (t->tcti, &r->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		r->tcti = NULL;
		tpm_err (err, errlen, t->tcti ? t->tcti : "default TCTI", rc);
		return COLLECTOR_ERR_TCTI;
	}
	rc = Esys_Initialize (&r->esys, r->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r->esys = NULL;
		tpm_err (err, errlen, "Esys_Initialize", rc);
		return COLLECTOR_ERR_TCTI;
	}
	rc = Esys_TR_FromTPMPublic (r->esys, t->ak_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                            &r->ak);
	if (rc != TSS2_RC_SUCCESS) {
		r->ak = ESYS_TR_NONE;
		if (rc_is_bad_handle (rc)) {
			collector_set_err (err, errlen, "no key at persistent handle 0x%08x",
			                   (unsigned)t->ak_handle);
			return COLLECTOR_ERR_AK_MISSING;
		}
		tpm_err (err, errlen, "Esys_TR_FromTPMPublic", rc);
		return COLLECTOR_ERR_TPM;
	}
	rc = Esys_ReadPublic (r->esys, r->ak, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL,
	                      NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_err (err, errlen, "Esys_ReadPublic", rc);
		return COLLECTOR_ERR_TPM;
	}
	pa = &pub->publicArea;
	rv = COLLECTOR_ERR_AK_UNSUITABLE;
	/* An AK signs only what the TPM itself produced (restricted), and
	 * does not decrypt: an EK or a storage key is no AK. */
	if ((pa->objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
	                             TPMA_OBJECT_DECRYPT)) !=
	    (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)) {
		collector_set_err (err, errlen, "key at 0x%08x is not a restricted signing key "
		                   "(attributes 0x%08x)", (unsigned)t->ak_handle,
		                   (unsigned)pa->objectAttributes);
		goto out;
	}
	memset (&r->scheme, 0, sizeof r->scheme);
	if (pa->type == TPM2_ALG_RSA) {
		const TPMT_RSA_SCHEME *s = &pa->parameters.rsaDetail.scheme;
		if (s->scheme == TPM2_ALG_RSASSA || s->scheme == TPM2_ALG_RSAPSS) {
			r->scheme.scheme = s->scheme;
			r->scheme.details.any.hashAlg = s->details.anySig.hashAlg;
		} else if (s->scheme == TPM2_ALG_NULL) {
			r->scheme.scheme = TPM2_ALG_RSASSA;
			r->scheme.details.any.hashAlg = pa->nameAlg;
		}
	} else if (pa->type == TPM2_ALG_ECC) {
		const TPMT_ECC_SCHEME *s = &pa->parameters.eccDetail.scheme;
		if (s->scheme == TPM2_ALG_ECDSA) {
			r->scheme.scheme = s->scheme;
			r->scheme.details.any.hashAlg = s->details.anySig.hashAlg;
		} else if (s->scheme == TPM2_ALG_NULL) {
			r->scheme.scheme = TPM2_ALG_ECDSA;
			r->scheme.details.any.hashAlg = pa->nameAlg;
		}
	}
	if (r->scheme.scheme == 0 || !bank_md (r->scheme.details.any.hashAlg)) {
		collector_set_err (err, errlen, "key at 0x%08x: type 0x%04x with a scheme other than "
		                   "RSASSA, RSAPSS or ECDSA over SHA-1/2", (unsigned)t->ak_handle,
		                   (unsigned)pa->type);
		goto out;
	}
	rv = COLLECTOR_OK;
out:
	Esys_Free (pub);
	return rv;
}

/* Read every selected PCR.  PCR_Read returns at most 8 values per call
 * and says which: take those off what is left and ask again. */
static int
read_pcrs (struct tpm_collector *t, struct run *r, char *err, size_t errlen)
{
	TPML_PCR_SELECTION left = t->sel;
	struct bank_sel want[BANKS_MAX];

	memcpy (want, t->banks, sizeof want);
	memset (r->have, 0, sizeof r->have);
	for (unsigned round = 0;; round++) {
		TPML_PCR_SELECTION *got = NULL;
		TPML_DIGEST *vals = NULL;
		UINT32 counter;
		size_t k = 0, taken = 0;
		bool remaining = false;
		TSS2_RC rc;

		for (size_t b = 0; b < t->n_banks; b++)
			remaining |= want[b].mask != 0;
		if (!remaining)
			return COLLECTOR_OK;
		/* Each round takes at least one PCR; 4 banks x 24 bounds it. */
		if (round > BANKS_MAX * PCRS_PER_BANK)
			break;
		selection_from_banks (want, t->n_banks, &left);
		rc = Esys_PCR_Read (r->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &left, &counter,
		                    &got, &vals);
		if (rc != TSS2_RC_SUCCESS) {
			tpm_err (err, errlen, "Esys_PCR_Read", rc);
			return COLLECTOR_ERR_TPM;
		}
		for (UINT32 s = 0; s < got->count && s < TPM2_NUM_PCR_BANKS; s++) {
			const TPMS_PCR_SELECTION *ps = &got->pcrSelections[s];
			size_t b;
			int ki = bank_index (ps->hash);
			for (b = 0; b < t->n_banks && want[b].alg != ps->hash; b++)
				;
			for (unsigned byte = 0; byte < ps->sizeofSelect && byte < 3; byte++) {
				for (unsigned bit = 0; bit < 8; bit++) {
					unsigned pcr = 8 * byte + bit;
					if (!(ps->pcrSelect[byte] & (1u << bit)))
						continue;
					/* A value we did not ask for, or a short list: the
					 * TPM's answer does not add up. */
					if (b == t->n_banks || ki < 0 || !(want[b].mask & (1u << pcr)) ||
					    k >= vals->count ||
					    vals->digests[k].size != banks_known[ki].len) {
						Esys_Free (got);
						Esys_Free (vals);
						collector_set_err (err, errlen, "PCR_Read returned a selection "
						                   "or value that was not asked for");
						return COLLECTOR_ERR_TPM;
					}
					memcpy (r->values[b][pcr], vals->digests[k].buffer,
					        vals->digests[k].size);
					r->have[b] |= 1u << pcr;
					want[b].mask &= ~(1u << pcr);
					k++;
					taken++;
				}
			}
		}
		Esys_Free (got);
		Esys_Free (vals);
		if (taken == 0) {
			char bank_list[64] = "";
			for (size_t b = 0; b < t->n_banks; b++) {
				if (want[b].mask) {
					int ki = bank_index (want[b].alg);
					strncat (bank_list, banks_known[ki].name,
					         sizeof bank_list - strlen (bank_list) - 2);
					strcat (bank_list, " ");
				}
			}
			collector_set_err (err, errlen, "the TPM returns no value for the selected PCRs "
			                   "of bank %s(bank not allocated?)", bank_list);
			return COLLECTOR_ERR_TPM;
		}
	}
	collector_set_err (err, errlen, "PCR_Read did not converge");
	return COLLECTOR_ERR_TPM;
}

/* The pcrDigest the quote should carry, over the values just read, in the
 * order of the quote's own selection (FORMATS.md section 1).  1 if it
 * matches, 0 if not, negative on error. */
static int
digest_matches (struct tpm_collector *t, struct run *r, char *err, size_t errlen)
{
	TPMS_ATTEST a;
	size_t off = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rv = COLLECTOR_ERR_ENCODE;
	const EVP_MD *h = bank_md (r->scheme.details.any.hashAlg);
	const TPML_PCR_SELECTION *qs;

	memset (&a, 0, sizeof a);
	if (Tss2_MU_TPMS_ATTEST_Unmarshal (r->quoted->attestationData, r->quoted->size, &off, &a) !=
	            TSS2_RC_SUCCESS ||
	    off != r->quoted->size || a.type != TPM2_ST_ATTEST_QUOTE) {
		collector_set_err (err, errlen, "the TPM's quote does not unmarshal as a quote");
		return COLLECTOR_ERR_TPM;
	}
	qs = &a.attested.quote.pcrSelect;
	ctx = EVP_MD_CTX_new ();
	if (!ctx || !h || EVP_DigestInit_ex (ctx, h, NULL) != 1) {
		collector_set_err (err, errlen, "digest setup failed");
		goto out;
	}
	for (UINT32 s = 0; s < qs->count && s < TPM2_NUM_PCR_BANKS; s++) {
		const TPMS_PCR_SELECTION *ps = &qs->pcrSelections[s];
		int ki = bank_index (ps->hash);
		size_t b;
		for (b = 0; b < t->n_banks && t->banks[b].alg != ps->hash; b++)
			;
		for (unsigned byte = 0; byte < ps->sizeofSelect && byte < 3; byte++) {
			for (unsigned bit = 0; bit < 8; bit++) {
				unsigned pcr = 8 * byte + bit;
				if (!(ps->pcrSelect[byte] & (1u << bit)))
					continue;
				if (b == t->n_banks || ki < 0 || !(r->have[b] & (1u << pcr))) {
					collector_set_err (err, errlen, "the quote covers PCR %u of bank "
					                   "0x%04x, which was not asked for", pcr,
					                   (unsigned)ps->hash);
					rv = COLLECTOR_ERR_TPM;
					goto out;
				}
				if (EVP_DigestUpdate (ctx, r->values[b][pcr], banks_known[ki].len) != 1)
					goto out;
			}
		}
	}
	if (EVP_DigestFinal_ex (ctx, md, &mdlen) != 1)
		goto out;
	rv = mdlen == a.attested.quote.pcrDigest.size &&
	     memcmp (md, a.attested.quote.pcrDigest.buffer, mdlen) == 0;
out:
	EVP_MD_CTX_free (ctx);
	return rv;
}

static int
add_hex (json_object *obj, const char *key, const unsigned char *bytes, size_t len)
{
	char *hex = malloc (2 * len + 1);
	json_object *s;

	if (!hex)
		return -1;
	collector_hex (hex, bytes, len);
	s = json_object_new_string (hex);
	free (hex);
	if (!s)
		return -1;
	if (json_object_object_add (obj, key, s) != 0) {
		json_object_put (s);
		return -1;
	}
	return 0;
}

/* The envelope (collector.h); pcrs by bank in the configured order, each
 * bank's PCRs ascending. */
static int
encode (struct tpm_collector *t, struct run *r, struct collected *out, char *err, size_t errlen)
{
	unsigned char sigbuf[sizeof (TPMT_SIGNATURE)];
	size_t siglen = 0;
	json_object *root = NULL, *pcrs;
	const char *text;
	size_t len;
	int rv = COLLECTOR_ERR_ENCODE;

	if (Tss2_MU_TPMT_SIGNATURE_Marshal (r->sig, sigbuf, sizeof sigbuf, &siglen) !=
	    TSS2_RC_SUCCESS) {
		collector_set_err (err, errlen, "the TPM's signature does not marshal");
		return COLLECTOR_ERR_ENCODE;
	}
	/* json-c keeps insertion order: attest, signature, pcrs. */
	root = json_object_new_object ();
	if (!root || add_hex (root, "attest", r->quoted->attestationData, r->quoted->size) != 0 ||
	    add_hex (root, "signature", sigbuf, siglen) != 0)
		goto nomem;
	pcrs = json_object_new_object ();
	if (!pcrs || json_object_object_add (root, "pcrs", pcrs) != 0) {
		json_object_put (pcrs);
		goto nomem;
	}
	for (size_t b = 0; b < t->n_banks; b++) {
		int ki = bank_index (t->banks[b].alg);
		json_object *bank = json_object_new_object ();
		if (!bank || json_object_object_add (pcrs, banks_known[ki].name, bank) != 0) {
			json_object_put (bank);
			goto nomem;
		}
		for (unsigned pcr = 0; pcr < PCRS_PER_BANK; pcr++) {
			char key[4];
			if (!(r->have[b] & (1u << pcr)))
				continue;
			snprintf (key, sizeof key, "%u", pcr);
			if (add_hex (bank, key, r->values[b][pcr], banks_known[ki].len) != 0)
				goto nomem;
		}
	}
	text = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN);
	if (!text)
		goto nomem;
	len = strlen (text);
	out->data = malloc (len);
	if (!out->data)
		goto nomem;
	memcpy (out->data, text, len);
	out->len = len;
	memcpy (out->format, "tpm2-quote", sizeof "tpm2-quote");
	rv = COLLECTOR_OK;
	goto out;
nomem:
	collector_set_err (err, errlen, "out of memory encoding the quote");
	rv = COLLECTOR_ERR_NO_MEMORY;
out:
	json_object_put (root);
	return rv;
}

static int
quote_and_read (struct tpm_collector *t, struct run *r, const unsigned char *nonce,
                size_t nonce_len, char *err, size_t errlen)
{
	TPM2B_DATA qd;
	TSS2_RC rc;

	Esys_Free (r->quoted);
	Esys_Free (r->sig);
	r->quoted = NULL;
	r->sig = NULL;
	memset (&qd, 0, sizeof qd);
	qd.size = (UINT16)nonce_len; /* <= COLLECTOR_NONCE_MAX == sizeof qd.buffer */
	memcpy (qd.buffer, nonce, nonce_len);
	rc = Esys_Quote (r->esys, r->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd,
	                 &r->scheme, &t->sel, &r->quoted, &r->sig);
	if (rc != TSS2_RC_SUCCESS) {
		r->quoted = NULL;
		r->sig = NULL;
		tpm_err (err, errlen, "Esys_Quote", rc);
		return COLLECTOR_ERR_TPM;
	}
	return read_pcrs (t, r, err, errlen);
}

static int
tpm_run (void *impl, const unsigned char *nonce, size_t nonce_len, struct collected *out,
         char *err, size_t errlen)
{
	struct tpm_collector *t = impl;
	struct run *r;
	int rv, m = 0;

	if (nonce_len > sizeof ((TPM2B_DATA *)0)->buffer) {
		collector_set_err (err, errlen, "nonce longer than a TPM2B_DATA");
		return COLLECTOR_ERR_ARGS;
	}
	/* ~6 KiB of PCR values: off the stack of a host thread we know
	 * nothing about. */
	r = calloc (1, sizeof *r);
	if (!r) {
		collector_set_err (err, errlen, "out of memory");
		return COLLECTOR_ERR_NO_MEMORY;
	}
	r->ak = ESYS_TR_NONE;
	pthread_mutex_lock (&t->lock);
	rv = run_open (t, r, err, errlen);
	for (int i = 0; rv == COLLECTOR_OK && i < QUOTE_TRIES; i++) {
		rv = quote_and_read (t, r, nonce, nonce_len, err, errlen);
		if (rv != COLLECTOR_OK)
			break;
		m = digest_matches (t, r, err, errlen);
		if (m < 0)
			rv = m;
		if (m != 0)
			break;
	}
	if (rv == COLLECTOR_OK && m == 0) {
		collector_set_err (err, errlen, "PCRs changed between quote and read, %d times",
		                   QUOTE_TRIES);
		rv = COLLECTOR_ERR_PCR_UNSTABLE;
	}
	if (rv == COLLECTOR_OK)
		rv = encode (t, r, out, err, errlen);
	run_close (r);
	pthread_mutex_unlock (&t->lock);
	free (r);
	return rv;
}
