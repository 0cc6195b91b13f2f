/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "evidence.h"
#include "cose.h"
#include "util.h"
#include "verify-ear.h"
#include "verify-eat.h"
#include "verify-tpm.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#define EVIDENCE_ERR_ARGS (-1000)
#define EVIDENCE_ERR_FORMAT (-1001)    /* a format this build does not know */
#define EVIDENCE_ERR_SIZE (-1002)
#define EVIDENCE_ERR_ENVELOPE (-1003)  /* the tpm2-quote JSON is malformed */
#define EVIDENCE_ERR_NO_ANCHOR (-1004) /* no anchor of the format is enrolled */
#define EVIDENCE_ERR_NO_MEMORY (-1005)

bool
evidence_format_known (const char *format)
{
	return format && (!strcmp (format, "tpm2-quote") || !strcmp (format, "eat") ||
	                  !strcmp (format, "ear"));
}

void
appraisal_clear (struct appraisal *a)
{
	claim_set_free (a->claims);
	memset (a, 0, sizeof *a);
}

void
appraisal_as_evidence (const struct appraisal *a, struct evidence_claims *ev)
{
	ev->format = a->format;
	ev->anchor = a->anchor;
	ev->verified_at = a->verified_at;
	ev->nonce_matched = a->nonce_matched;
	ev->claims = a->claims;
}

/* ------------------------------------------------------------ tpm2-quote */

#define TPM_ENVELOPE_PCRS_MAX (VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX)

struct tpm_envelope {
	unsigned char attest[VERIFY_TPM_ATTEST_MAX];
	size_t attest_len;
	unsigned char sig[VERIFY_TPM_SIG_MAX];
	size_t sig_len;
	bool raw;
	uint16_t raw_scheme, raw_hash;
	unsigned char digests[TPM_ENVELOPE_PCRS_MAX][64];
	struct verify_tpm_pcr pcrs[TPM_ENVELOPE_PCRS_MAX];
	size_t n_pcrs;
};

static bool
hex_member (struct json_object *root, const char *key, unsigned char *out, size_t max,
            size_t *len)
{
	struct json_object *v;
	if (!json_object_object_get_ex (root, key, &v) || !json_object_is_type (v, json_type_string))
		return false;
	return util_hex_decode (json_object_get_string (v), (size_t)json_object_get_string_len (v), out,
	                   max, len);
}

static const struct {
	const char *name;
	uint16_t alg;
	size_t len;
} banks[] = {
	{ "sha1", VERIFY_TPM_ALG_SHA1, 20 },
	{ "sha256", VERIFY_TPM_ALG_SHA256, 32 },
	{ "sha384", VERIFY_TPM_ALG_SHA384, 48 },
	{ "sha512", VERIFY_TPM_ALG_SHA512, 64 },
};

static int
bank_by_name (const char *name)
{
	for (size_t i = 0; i < sizeof banks / sizeof banks[0]; i++) {
		if (!strcmp (name, banks[i].name))
			return (int)i;
	}
	return -1;
}

static bool
add_pcr (struct tpm_envelope *e, int bank, unsigned int index, struct json_object *v, char *err,
         size_t errlen)
{
	size_t len = 0;
	if (e->n_pcrs >= TPM_ENVELOPE_PCRS_MAX) {
		snprintf (err, errlen, "tpm2-quote evidence: more than %d PCR values",
		          TPM_ENVELOPE_PCRS_MAX);
		return false;
	}
	if (!json_object_is_type (v, json_type_string) ||
	    !util_hex_decode (json_object_get_string (v), (size_t)json_object_get_string_len (v),
	                 e->digests[e->n_pcrs], sizeof e->digests[0], &len) ||
	    len != banks[bank].len) {
		snprintf (err, errlen, "tpm2-quote evidence: pcrs.%s.%u is not a %zu-byte hex digest",
		          banks[bank].name, index, banks[bank].len);
		return false;
	}
	e->pcrs[e->n_pcrs].bank = banks[bank].alg;
	e->pcrs[e->n_pcrs].index = index;
	e->pcrs[e->n_pcrs].digest = e->digests[e->n_pcrs];
	e->pcrs[e->n_pcrs].len = len;
	e->n_pcrs++;
	return true;
}

static bool
parse_pcrs (struct tpm_envelope *e, struct json_object *pcrs, char *err, size_t errlen)
{
	if (json_object_is_type (pcrs, json_type_array)) {
		/* Trustee's form: the 24 PCRs of the sha256 bank, in order. */
		size_t n = json_object_array_length (pcrs);
		if (n != VERIFY_TPM_PCRS_MAX) {
			snprintf (err, errlen, "tpm2-quote evidence: a 'pcrs' array must hold the %d "
			          "sha256 values", VERIFY_TPM_PCRS_MAX);
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			if (!add_pcr (e, 1, (unsigned int)i, json_object_array_get_idx (pcrs, i), err, errlen))
				return false;
		}
		return true;
	}
	if (!json_object_is_type (pcrs, json_type_object)) {
		snprintf (err, errlen, "tpm2-quote evidence: 'pcrs' must be an object of banks");
		return false;
	}
	json_object_object_foreach (pcrs, bank_name, values) {
		int bank = bank_by_name (bank_name);
		if (bank < 0 || !json_object_is_type (values, json_type_object)) {
			snprintf (err, errlen, "tpm2-quote evidence: 'pcrs' bank '%.16s' is unknown or not "
			          "an object", bank_name);
			return false;
		}
		json_object_object_foreach (values, idx, v) {
			char *end = NULL;
			unsigned long i = strtoul (idx, &end, 10);
			if (!*idx || *end || i >= VERIFY_TPM_PCRS_MAX || (idx[0] == '0' && idx[1])) {
				snprintf (err, errlen, "tpm2-quote evidence: 'pcrs.%s' index '%.8s' is not "
				          "0..23", bank_name, idx);
				return false;
			}
			if (!add_pcr (e, bank, (unsigned int)i, v, err, errlen))
				return false;
		}
	}
	return true;
}

static bool
parse_envelope (const unsigned char *data, size_t len, struct tpm_envelope *e, char *err,
                size_t errlen)
{
	static const char *const keys[] = { "attest", "message", "signature", "signature-scheme",
		                            "signature-hash", "pcrs" };
	struct json_tokener *tok = json_tokener_new_ex (8);
	struct json_object *root = NULL, *v;
	bool ok = false;

	memset (e, 0, sizeof *e);
	if (!tok) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	root = json_tokener_parse_ex (tok, (const char *)data, (int)len);
	if (!root || json_tokener_get_error (tok) != json_tokener_success ||
	    json_tokener_get_parse_end (tok) != len) {
		/* Whitespace after the document is harmless (a collector's newline). */
		size_t end = root ? json_tokener_get_parse_end (tok) : 0;
		bool blank = root != NULL;
		for (size_t i = end; blank && i < len; i++)
			blank = data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t';
		if (!blank) {
			snprintf (err, errlen, "tpm2-quote evidence: not one JSON document");
			goto out;
		}
	}
	if (!json_object_is_type (root, json_type_object)) {
		snprintf (err, errlen, "tpm2-quote evidence: not a JSON object");
		goto out;
	}
	json_object_object_foreach (root, k, unused) {
		bool known = false;
		(void)unused;
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			known |= !strcmp (k, keys[i]);
		if (!known) {
			snprintf (err, errlen, "tpm2-quote evidence: unknown member '%.32s'", k);
			goto out;
		}
	}
	if (!hex_member (root, "attest", e->attest, sizeof e->attest, &e->attest_len) &&
	    !hex_member (root, "message", e->attest, sizeof e->attest, &e->attest_len)) {
		snprintf (err, errlen, "tpm2-quote evidence: 'attest' must be the TPMS_ATTEST in hex "
		          "(at most %d bytes)", VERIFY_TPM_ATTEST_MAX);
		goto out;
	}
	if (!hex_member (root, "signature", e->sig, sizeof e->sig, &e->sig_len)) {
		snprintf (err, errlen, "tpm2-quote evidence: 'signature' must be hex (at most %d bytes)",
		          VERIFY_TPM_SIG_MAX);
		goto out;
	}
	if (json_object_object_get_ex (root, "signature-scheme", &v)) {
		const char *s = json_object_get_string (v);
		struct json_object *h;
		int bank;
		e->raw = true;
		if (!json_object_is_type (v, json_type_string))
			s = "";
		if (!strcmp (s, "rsassa"))
			e->raw_scheme = VERIFY_TPM_ALG_RSASSA;
		else if (!strcmp (s, "rsapss"))
			e->raw_scheme = VERIFY_TPM_ALG_RSAPSS;
		else if (!strcmp (s, "ecdsa"))
			e->raw_scheme = VERIFY_TPM_ALG_ECDSA;
		else {
			snprintf (err, errlen, "tpm2-quote evidence: 'signature-scheme' must be rsassa, "
			          "rsapss or ecdsa");
			goto out;
		}
		if (!json_object_object_get_ex (root, "signature-hash", &h) ||
		    !json_object_is_type (h, json_type_string) ||
		    (bank = bank_by_name (json_object_get_string (h))) < 0) {
			snprintf (err, errlen, "tpm2-quote evidence: a raw signature needs "
			          "'signature-hash' (sha1, sha256, sha384, sha512)");
			goto out;
		}
		e->raw_hash = banks[bank].alg;
	} else if (json_object_object_get_ex (root, "signature-hash", &v)) {
		snprintf (err, errlen, "tpm2-quote evidence: 'signature-hash' without "
		          "'signature-scheme'");
		goto out;
	}
	if (json_object_object_get_ex (root, "pcrs", &v) && !parse_pcrs (e, v, err, errlen))
		goto out;
	ok = true;
out:
	json_object_put (root);
	json_tokener_free (tok);
	return ok;
}

/* The extraData of a quote, for an appraisal without a challenge. */
static bool
quote_extra_data (const struct tpm_envelope *e, unsigned char *out, size_t *len)
{
	TPMS_ATTEST a;
	size_t off = 0;
	if (Tss2_MU_TPMS_ATTEST_Unmarshal (e->attest, e->attest_len, &off, &a) != 0 ||
	    a.extraData.size == 0 || a.extraData.size > VERIFY_TPM_NONCE_MAX)
		return false;
	memcpy (out, a.extraData.buffer, a.extraData.size);
	*len = a.extraData.size;
	return true;
}

static const uint16_t tpm_hashes[] = { VERIFY_TPM_ALG_SHA256, VERIFY_TPM_ALG_SHA384,
	                               VERIFY_TPM_ALG_SHA512 };

static int
appraise_tpm (const struct anchor_set *anchors, const unsigned char *data, size_t len,
              const unsigned char *nonce, size_t nonce_len, struct appraisal *out, char *err,
              size_t errlen)
{
	struct tpm_envelope *e = malloc (sizeof *e);
	unsigned char own_nonce[VERIFY_TPM_NONCE_MAX];
	int rv = EVIDENCE_ERR_NO_ANCHOR, first_rv = 0;
	char first_err[256] = "";

	if (!e) {
		snprintf (err, errlen, "out of memory");
		return EVIDENCE_ERR_NO_MEMORY;
	}
	if (!parse_envelope (data, len, e, err, errlen)) {
		free (e);
		return EVIDENCE_ERR_ENVELOPE;
	}
	if (!nonce) {
		if (!quote_extra_data (e, own_nonce, &nonce_len)) {
			snprintf (err, errlen, "tpm2-quote evidence: the quote does not unmarshal or has "
			          "no extraData");
			free (e);
			return VERIFY_TPM_ERR_ATTEST_PARSE;
		}
		nonce = own_nonce;
	}
	snprintf (err, errlen, "no tpm2-quote anchor is enrolled");
	for (size_t i = 0; i < anchors->n; i++) {
		const struct anchor *a = &anchors->a[i];
		struct verify_tpm_input in = {
			.attest = e->attest, .attest_len = e->attest_len,
			.sig = e->sig, .sig_len = e->sig_len,
			.sig_marshalled = !e->raw, .raw_scheme = e->raw_scheme, .raw_hash = e->raw_hash,
			.ak = a->pkey, .anchor = a->conf->name, .ak_fingerprint = a->fingerprint,
			.nonce = nonce, .nonce_len = nonce_len,
			.pcrs = e->pcrs, .n_pcrs = e->n_pcrs,
			.allowed_hashes = tpm_hashes,
			.n_allowed_hashes = sizeof tpm_hashes / sizeof tpm_hashes[0],
		};
		struct claim_set *set;
		if (strcmp (a->conf->format, "tpm2-quote") != 0)
			continue;
		set = claim_set_new ();
		if (!set) {
			rv = EVIDENCE_ERR_NO_MEMORY;
			snprintf (err, errlen, "out of memory");
			break;
		}
		rv = verify_tpm_quote (&in, set, err, errlen);
		if (rv == VERIFY_TPM_OK) {
			out->claims = set;
			snprintf (out->anchor, sizeof out->anchor, "%s", a->conf->name);
			break;
		}
		claim_set_free (set);
		/* Another anchor may hold the key that signed it; any other
		 * failure is the evidence's own. */
		if (rv != VERIFY_TPM_ERR_SIGNATURE && rv != VERIFY_TPM_ERR_SIG_SCHEME)
			break;
		if (!first_rv) {
			first_rv = rv;
			snprintf (first_err, sizeof first_err, "anchor '%s': %s", a->conf->name, err);
		}
	}
	if (rv != VERIFY_TPM_OK && first_rv && (rv == VERIFY_TPM_ERR_SIGNATURE ||
	                                        rv == VERIFY_TPM_ERR_SIG_SCHEME)) {
		snprintf (err, errlen, "no enrolled tpm2-quote anchor verifies it (%s)", first_err);
		rv = first_rv;
	}
	out->nonce_matched = rv == VERIFY_TPM_OK && nonce != own_nonce;
	OPENSSL_cleanse (e, sizeof *e);
	free (e);
	return rv;
}

/* ------------------------------------------------------------ eat, ear */

/* The anchors of @format as COSE keys, in enrolment order. */
static size_t
cose_keys (const struct anchor_set *anchors, const char *format, struct cose_key *keys,
           const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < anchors->n && n < max; i++) {
		const struct anchor *a = &anchors->a[i];
		if (strcmp (a->conf->format, format) != 0)
			continue;
		keys[n].pkey = a->pkey;
		keys[n].kid = a->conf->kid_len ? a->conf->kid : NULL;
		keys[n].kid_len = a->conf->kid_len;
		names[n] = a->conf->name;
		n++;
	}
	return n;
}

/* Profiles: each anchor may require its own, so anchors with different
 * profiles are tried one profile at a time. */
static int
appraise_token (const struct anchor_set *anchors, const char *format, const unsigned char *data,
                size_t len, const unsigned char *nonce, size_t nonce_len, time_t now,
                unsigned int skew, struct appraisal *out, char *err, size_t errlen)
{
	struct cose_key keys[CONF_MAX_ANCHORS];
	const char *names[CONF_MAX_ANCHORS];
	size_t n = cose_keys (anchors, format, keys, names, CONF_MAX_ANCHORS);
	int rv = EVIDENCE_ERR_NO_ANCHOR;

	snprintf (err, errlen, "no %s anchor is enrolled", format);
	for (size_t i = 0; i < n; i++) {
		const struct anchor *a = anchors_find (anchors, names[i]);
		const char *profile = a->conf->profile;
		struct cose_key group[CONF_MAX_ANCHORS];
		const char *group_names[CONF_MAX_ANCHORS];
		size_t g = 0, used = 0;
		bool matched = false, seen = false;
		struct claim_set *set;

		/* Skip anchors whose profile an earlier group already tried. */
		for (size_t j = 0; j < i && !seen; j++) {
			const char *pj = anchors_find (anchors, names[j])->conf->profile;
			seen = (!pj && !profile) || (pj && profile && !strcmp (pj, profile));
		}
		if (seen)
			continue;
		for (size_t j = i; j < n; j++) {
			const char *pj = anchors_find (anchors, names[j])->conf->profile;
			if ((!pj && !profile) || (pj && profile && !strcmp (pj, profile))) {
				group[g] = keys[j];
				group_names[g++] = names[j];
			}
		}
		set = claim_set_new ();
		if (!set) {
			snprintf (err, errlen, "out of memory");
			return EVIDENCE_ERR_NO_MEMORY;
		}
		if (!strcmp (format, "eat")) {
			struct verify_eat_input in = {
				.token = data, .len = len, .keys = group, .n_keys = g,
				.anchor_names = group_names, .nonce = nonce, .nonce_len = nonce_len,
				.now = (int64_t)now, .skew = skew, .profile = profile,
			};
			rv = verify_eat (&in, set, &used, &matched, err, errlen);
		} else {
			struct verify_ear_input in = {
				.token = data, .len = len, .keys = group, .n_keys = g,
				.anchor_names = group_names, .nonce = nonce, .nonce_len = nonce_len,
				.now = (int64_t)now, .skew = skew,
				.profile = profile ? profile : VERIFY_EAR_PROFILE_VERAISON,
			};
			rv = verify_ear (&in, set, &used, &matched, err, errlen);
		}
		if (rv == 0) {
			out->claims = set;
			out->nonce_matched = matched && nonce;
			snprintf (out->anchor, sizeof out->anchor, "%s", group_names[used < g ? used : 0]);
			return 0;
		}
		claim_set_free (set);
	}
	return rv;
}

int
evidence_appraise (const struct anchor_set *anchors, const char *format,
                   const unsigned char *data, size_t len, const unsigned char *nonce,
                   size_t nonce_len, time_t now, unsigned int skew, struct appraisal *out,
                   char *err, size_t errlen)
{
	int rv;

	memset (out, 0, sizeof *out);
	if (!anchors || !format || !data || !out || (nonce && (nonce_len == 0 || nonce_len > 64))) {
		snprintf (err, errlen, "invalid arguments");
		return EVIDENCE_ERR_ARGS;
	}
	if (!evidence_format_known (format)) {
		snprintf (err, errlen, "unknown evidence format '%.32s' (this build appraises "
		          "tpm2-quote, eat and ear)", format);
		return EVIDENCE_ERR_FORMAT;
	}
	if (len == 0 || len > EVIDENCE_MAX_SIZE) {
		snprintf (err, errlen, "%s evidence of %zu bytes (1 to %d accepted)", format, len,
		          EVIDENCE_MAX_SIZE);
		return EVIDENCE_ERR_SIZE;
	}
	if (!strcmp (format, "tpm2-quote"))
		rv = appraise_tpm (anchors, data, len, nonce, nonce_len, out, err, errlen);
	else
		rv = appraise_token (anchors, format, data, len, nonce, nonce_len, now, skew, out, err,
		                     errlen);
	if (rv != 0) {
		appraisal_clear (out);
		return rv;
	}
	snprintf (out->format, sizeof out->format, "%s", format);
	out->verified_at = now;
	SHA256 (data, len, out->digest);
	return 0;
}
