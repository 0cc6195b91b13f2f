/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "cose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Header labels (RFC 9052 section 3.1). */
#define LABEL_ALG 1
#define LABEL_CRIT 2
#define LABEL_CONTENT_TYPE 3
#define LABEL_KID 4

#define TAG_COSE_SIGN1 18
#define TAG_CWT 61

/* Parameters in one header bucket: real messages carry two or three. */
#define HEADER_PARAMS_MAX 32

static void set_err (char *err, size_t errlen, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

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
cose_strerror (int rv)
{
	switch (rv) {
	case COSE_OK: return "ok";
	case COSE_ERR_ARGS: return "invalid arguments";
	case COSE_ERR_SIZE: return "message empty or too large";
	case COSE_ERR_CBOR: return "not well-formed CBOR";
	case COSE_ERR_CBOR_LIMIT: return "CBOR beyond the decoder's limits";
	case COSE_ERR_TAG: return "not a tagged COSE_Sign1";
	case COSE_ERR_STRUCTURE: return "not a COSE_Sign1 structure";
	case COSE_ERR_PROTECTED: return "protected header is not a bstr holding a map";
	case COSE_ERR_HEADER: return "bad header parameter";
	case COSE_ERR_CRIT: return "critical header parameter not understood";
	case COSE_ERR_ALG_MISSING: return "no algorithm in the protected header";
	case COSE_ERR_ALG_UNKNOWN: return "algorithm not supported";
	case COSE_ERR_ALG_NOT_ALLOWED: return "algorithm not allowed";
	case COSE_ERR_NO_KEY: return "no pinned key fits the message";
	case COSE_ERR_KEY_MISMATCH: return "the key named by kid does not fit the algorithm";
	case COSE_ERR_SIG_LENGTH: return "signature of the wrong length";
	case COSE_ERR_SIGNATURE: return "signature does not verify";
	case COSE_ERR_DETACHED: return "detached payload not supported";
	case COSE_ERR_NO_MEMORY: return "out of memory";
	case COSE_ERR_CRYPTO: return "cryptographic library failure";
	}
	return "unknown error";
}

/* ---------------------------------------------------------------- algorithms */

enum kty { KTY_EC, KTY_OKP, KTY_RSA };

static const struct alg_info {
	int64_t alg;
	const char *name;
	enum kty kty;
	int curve_nid;      /* EC: the only curve that fits */
	size_t half;        /* EC: bytes of r and of s */
	const char *md;     /* NULL for EdDSA */
} algs_supported[] = {
	{ COSE_ALG_ES256, "ES256", KTY_EC, NID_X9_62_prime256v1, 32, "SHA256" },
	{ COSE_ALG_ES384, "ES384", KTY_EC, NID_secp384r1, 48, "SHA384" },
	{ COSE_ALG_ES512, "ES512", KTY_EC, NID_secp521r1, 66, "SHA512" },
	{ COSE_ALG_EDDSA, "EdDSA", KTY_OKP, 0, 0, NULL },
	{ COSE_ALG_PS256, "PS256", KTY_RSA, 0, 0, "SHA256" },
	{ COSE_ALG_PS384, "PS384", KTY_RSA, 0, 0, "SHA384" },
	{ COSE_ALG_PS512, "PS512", KTY_RSA, 0, 0, "SHA512" },
};
#define N_ALGS (sizeof algs_supported / sizeof algs_supported[0])

/* RFC 9053 section 2.2: RSA keys of fewer bits MUST NOT be used. */
#define RSA_MIN_BITS 2048

static const struct alg_info *
alg_lookup (int64_t alg)
{
	for (size_t i = 0; i < N_ALGS; i++) {
		if (algs_supported[i].alg == alg)
			return &algs_supported[i];
	}
	return NULL;
}

const char *
cose_alg_name (int64_t alg)
{
	const struct alg_info *a = alg_lookup (alg);
	return a ? a->name : NULL;
}

bool
cose_alg_from_name (const char *name, int64_t *alg)
{
	if (!name || !alg)
		return false;
	for (size_t i = 0; i < N_ALGS; i++) {
		if (!strcmp (name, algs_supported[i].name)) {
			*alg = algs_supported[i].alg;
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------- bounded loading */

/*
 * State of the allocation-free pre-walk.  Each open array, map or tag is
 * a frame counting the items it still expects.  Every expected item needs
 * at least one byte, so a declared length that the bytes left cannot
 * hold is refused here, before cbor_load() allocates anything for it.
 */
struct walk {
	uint64_t left[COSE_CBOR_MAX_DEPTH];
	size_t depth;
	uint64_t pending;    /* sum of left[] */
	/* What the callback saw, acted on once the head's length is known. */
	enum { EV_LEAF, EV_OPEN, EV_INDEF, EV_BREAK } ev;
	uint64_t n;          /* EV_OPEN: items declared */
};

static void
cb_array (void *ctx, size_t n)
{
	struct walk *w = ctx;
	w->ev = EV_OPEN;
	w->n = n;
}

static void
cb_map (void *ctx, size_t n)
{
	struct walk *w = ctx;
	w->ev = EV_OPEN;
	/* A map of n pairs is 2n items; n is at most SIZE_MAX / 2 or it
	 * could not be a real length, and halving keeps the sum exact. */
	w->n = n > UINT64_MAX / 2 ? UINT64_MAX : 2 * (uint64_t)n;
}

static void
cb_tag (void *ctx, uint64_t v)
{
	struct walk *w = ctx;
	(void)v;
	w->ev = EV_OPEN;
	w->n = 1;
}

static void
cb_indef (void *ctx)
{
	struct walk *w = ctx;
	w->ev = EV_INDEF;
}

static void
cb_break (void *ctx)
{
	struct walk *w = ctx;
	w->ev = EV_BREAK;
}

/* Length of the head that starts with @b (RFC 8949 section 3). */
static size_t
head_len (unsigned char b)
{
	switch (b & 0x1f) {
	case 24: return 2;
	case 25: return 3;
	case 26: return 5;
	case 27: return 9;
	}
	return 1;
}

/* One complete item fills a slot of the innermost frame; a frame with
 * no slots left is a complete item of its parent in turn. */
static void
walk_complete (struct walk *w)
{
	while (w->depth > 0) {
		w->pending--;
		if (--w->left[w->depth - 1] > 0)
			return;
		w->depth--;
	}
}

/*
 * Walk @buf as one CBOR item without allocating.  The string callbacks
 * are left to libcbor's empty ones: it calls them only once the whole
 * declared string is in the buffer, and answers NEDATA otherwise.
 */
static int
cbor_prewalk (const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	struct walk w;
	size_t pos = 0, items = 0;

	memset (&w, 0, sizeof w);
	cb.array_start = cb_array;
	cb.map_start = cb_map;
	cb.tag = cb_tag;
	cb.indef_array_start = cb_indef;
	cb.indef_map_start = cb_indef;
	cb.byte_string_start = cb_indef;
	cb.string_start = cb_indef;
	cb.indef_break = cb_break;

	do {
		struct cbor_decoder_result r;
		uint64_t needed;
		if (pos >= len) {
			set_err (err, errlen, "CBOR truncated (%" PRIu64 " item(s) missing)", w.pending);
			return COSE_ERR_CBOR;
		}
		if (++items > COSE_CBOR_MAX_ITEMS) {
			set_err (err, errlen, "more than %d CBOR items", COSE_CBOR_MAX_ITEMS);
			return COSE_ERR_CBOR_LIMIT;
		}
		w.ev = EV_LEAF;
		r = cbor_stream_decode (buf + pos, len - pos, &cb, &w);
		if (r.status == CBOR_DECODER_NEDATA) {
			/* A complete head: the string it declares is longer
			 * than the input. */
			if (len - pos >= head_len (buf[pos])) {
				set_err (err, errlen, "string at byte %zu declares more bytes than the input has",
				         pos);
				return COSE_ERR_CBOR_LIMIT;
			}
			set_err (err, errlen, "CBOR truncated at byte %zu", pos);
			return COSE_ERR_CBOR;
		}
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - pos) {
			/* libcbor 0.8 refuses tag heads 0xc6-0xd4 (tags 6-20)
			 * and 0xd9-0xdb (tags above 255), well-formed as they
			 * are; say so rather than blame the input. */
			if ((buf[pos] >= 0xc6 && buf[pos] <= 0xd4) || (buf[pos] >= 0xd9 && buf[pos] <= 0xdb))
				set_err (err, errlen, "tag head 0x%02x at byte %zu: not decodable by libcbor 0.8",
				         buf[pos], pos);
			else
				set_err (err, errlen, "malformed CBOR at byte %zu", pos);
			return COSE_ERR_CBOR;
		}
		switch (w.ev) {
		case EV_INDEF:
			set_err (err, errlen, "indefinite length at byte %zu", pos);
			return COSE_ERR_CBOR_LIMIT;
		case EV_BREAK:
			set_err (err, errlen, "break outside an indefinite-length item at byte %zu", pos);
			return COSE_ERR_CBOR;
		case EV_LEAF:
			pos += r.read;
			walk_complete (&w);
			break;
		case EV_OPEN:
			pos += r.read;
			if (w.n == 0) {
				walk_complete (&w);
				break;
			}
			/* Bytes still needed: every pending slot but those of
			 * the open frames' own children in progress (one per
			 * frame, this container among them), plus this one's
			 * items. */
			needed = w.pending - w.depth;
			if (w.n > len - pos || needed > len - pos - w.n) {
				set_err (err, errlen,
				         "container at byte %zu declares more items than the input could hold",
				         pos - r.read);
				return COSE_ERR_CBOR_LIMIT;
			}
			if (w.depth >= COSE_CBOR_MAX_DEPTH) {
				set_err (err, errlen, "CBOR nested deeper than %d at byte %zu",
				         COSE_CBOR_MAX_DEPTH, pos - r.read);
				return COSE_ERR_CBOR_LIMIT;
			}
			w.left[w.depth++] = w.n;
			w.pending += w.n;
			break;
		}
	} while (w.depth > 0);

	if (pos != len) {
		set_err (err, errlen, "%zu trailing byte(s) after the CBOR item", len - pos);
		return COSE_ERR_CBOR;
	}
	return COSE_OK;
}

int
cose_cbor_check (const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	set_err (err, errlen, "ok");
	if (!buf || len == 0 || len > COSE_MAX_SIZE) {
		set_err (err, errlen, "CBOR input of %zu bytes (1..%d)", len, COSE_MAX_SIZE);
		return COSE_ERR_SIZE;
	}
	return cbor_prewalk (buf, len, err, errlen);
}

static cbor_item_t *
load (const unsigned char *buf, size_t len, int *rv, char *err, size_t errlen)
{
	struct cbor_load_result res;
	cbor_item_t *item;

	*rv = cose_cbor_check (buf, len, err, errlen);
	if (*rv != COSE_OK)
		return NULL;
	memset (&res, 0, sizeof res);
	item = cbor_load (buf, len, &res);
	if (!item || res.error.code != CBOR_ERR_NONE || res.read != len) {
		*rv = item || res.error.code != CBOR_ERR_MEMERROR ? COSE_ERR_CBOR : COSE_ERR_NO_MEMORY;
		set_err (err, errlen, "CBOR does not load (libcbor error %d at byte %zu)",
		         (int)res.error.code, res.error.position);
		if (item)
			cbor_decref (&item);
		return NULL;
	}
	return item;
}

cbor_item_t *
cose_cbor_load (const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	int rv;
	return load (buf, len, &rv, err, errlen);
}

/* ---------------------------------------------------------------- item helpers */

bool
cose_cbor_get_int (const cbor_item_t *item, int64_t *out)
{
	uint64_t v;
	if (!item || !cbor_is_int (item))
		return false;
	v = cbor_get_int (item);
	if (v > INT64_MAX)
		return false;
	/* A negint holds -1 - v; -1 - INT64_MAX is INT64_MIN, still exact. */
	*out = cbor_isa_uint (item) ? (int64_t)v : -1 - (int64_t)v;
	return true;
}

/* A header label: an int or a text string (RFC 9052 section 3). */
struct label {
	bool text;
	int64_t i;
	const unsigned char *s;
	size_t len;
	cbor_item_t *value;
	bool prot;
};

static bool
label_equal (const struct label *a, const struct label *b)
{
	if (a->text != b->text)
		return false;
	if (!a->text)
		return a->i == b->i;
	return a->len == b->len && (a->len == 0 || !memcmp (a->s, b->s, a->len));
}

static bool
label_read (const cbor_item_t *key, struct label *l)
{
	memset (l, 0, sizeof *l);
	if (cbor_is_int (key))
		return cose_cbor_get_int (key, &l->i);
	if (cbor_isa_string (key) && cbor_string_is_definite (key)) {
		l->text = true;
		l->s = cbor_string_handle (key);
		l->len = cbor_string_length (key);
		return true;
	}
	return false;
}

struct headers {
	struct label l[2 * HEADER_PARAMS_MAX];
	size_t n;
};

static const struct label *
header_find (const struct headers *h, int64_t label)
{
	for (size_t i = 0; i < h->n; i++) {
		if (!h->l[i].text && h->l[i].i == label)
			return &h->l[i];
	}
	return NULL;
}

/* Add the parameters of one bucket; a label seen before, in this bucket
 * or the other, is refused (RFC 9052 section 3: MUST NOT be in both). */
static int
headers_add (struct headers *h, const cbor_item_t *map, bool prot, char *err, size_t errlen)
{
	struct cbor_pair *pairs = cbor_map_handle (map);
	size_t n = cbor_map_size (map);
	const char *bucket = prot ? "protected" : "unprotected";

	if (n > HEADER_PARAMS_MAX) {
		set_err (err, errlen, "%zu parameters in the %s header (at most %d)", n, bucket,
		         HEADER_PARAMS_MAX);
		return COSE_ERR_HEADER;
	}
	for (size_t i = 0; i < n; i++) {
		struct label *l = &h->l[h->n];
		if (!label_read (pairs[i].key, l)) {
			set_err (err, errlen, "%s header label %zu is not an int or text", bucket, i);
			return COSE_ERR_HEADER;
		}
		l->value = pairs[i].value;
		l->prot = prot;
		for (size_t j = 0; j < h->n; j++) {
			if (label_equal (&h->l[j], l)) {
				if (l->text)
					set_err (err, errlen, "a text header label appears twice (%s)",
					         h->l[j].prot == prot ? bucket : "in both buckets");
				else
					set_err (err, errlen, "header label %" PRId64 " appears twice (%s)", l->i,
					         h->l[j].prot == prot ? bucket : "in both buckets");
				return COSE_ERR_HEADER;
			}
		}
		h->n++;
	}
	return COSE_OK;
}

/* Labels that this code processes, and so may be marked critical. */
static bool
crit_understood (const struct label *l)
{
	return !l->text && (l->i == LABEL_ALG || l->i == LABEL_KID);
}

static int
check_headers (const struct headers *h, int64_t *alg, const unsigned char **kid, size_t *kid_len,
               char *err, size_t errlen)
{
	const struct label *a, *k, *c, *ct;

	/* crit (RFC 9052 section 3.1): protected, a non-empty array of
	 * labels, each present in the protected header. */
	c = header_find (h, LABEL_CRIT);
	if (c) {
		cbor_item_t **v;
		size_t n;
		if (!c->prot) {
			set_err (err, errlen, "crit in the unprotected header");
			return COSE_ERR_HEADER;
		}
		if (!cbor_isa_array (c->value) || cbor_array_size (c->value) == 0) {
			set_err (err, errlen, "crit is not a non-empty array");
			return COSE_ERR_HEADER;
		}
		v = cbor_array_handle (c->value);
		n = cbor_array_size (c->value);
		for (size_t i = 0; i < n; i++) {
			struct label l;
			bool present = false;
			if (!label_read (v[i], &l)) {
				set_err (err, errlen, "crit element %zu is not a label", i);
				return COSE_ERR_HEADER;
			}
			if (!crit_understood (&l)) {
				if (l.text)
					set_err (err, errlen, "crit names text label of %zu bytes", l.len);
				else
					set_err (err, errlen, "crit names label %" PRId64, l.i);
				return COSE_ERR_CRIT;
			}
			for (size_t j = 0; j < h->n; j++) {
				if (h->l[j].prot && label_equal (&h->l[j], &l))
					present = true;
			}
			if (!present) {
				set_err (err, errlen, "crit names label %" PRId64 ", absent from the protected header",
				         l.i);
				return COSE_ERR_HEADER;
			}
		}
	}

	ct = header_find (h, LABEL_CONTENT_TYPE);
	if (ct && !cbor_isa_uint (ct->value) &&
	    !(cbor_isa_string (ct->value) && cbor_string_is_definite (ct->value))) {
		set_err (err, errlen, "content type is neither uint nor text");
		return COSE_ERR_HEADER;
	}

	*kid = NULL;
	*kid_len = 0;
	k = header_find (h, LABEL_KID);
	if (k) {
		if (!cbor_isa_bytestring (k->value) || !cbor_bytestring_is_definite (k->value) ||
		    cbor_bytestring_length (k->value) > COSE_KID_MAX) {
			set_err (err, errlen, "kid is not a bstr of at most %d bytes", COSE_KID_MAX);
			return COSE_ERR_HEADER;
		}
		*kid = cbor_bytestring_handle (k->value);
		*kid_len = cbor_bytestring_length (k->value);
	}

	/* alg must be signed: one in the unprotected header could be
	 * swapped for a weaker one by anyone on the path. */
	a = header_find (h, LABEL_ALG);
	if (!a || !a->prot) {
		set_err (err, errlen, a ? "alg in the unprotected header only"
		                        : "no alg in the protected header");
		return COSE_ERR_ALG_MISSING;
	}
	if (cbor_isa_string (a->value)) {
		set_err (err, errlen, "text alg not supported");
		return COSE_ERR_ALG_UNKNOWN;
	}
	if (!cose_cbor_get_int (a->value, alg)) {
		set_err (err, errlen, "alg is not an int");
		return COSE_ERR_HEADER;
	}
	if (!alg_lookup (*alg)) {
		set_err (err, errlen, "alg %" PRId64 " not supported", *alg);
		return COSE_ERR_ALG_UNKNOWN;
	}
	return COSE_OK;
}

/* ---------------------------------------------------------------- signatures */

size_t
cose_ecdsa_raw_to_der (const unsigned char *sig, size_t half, unsigned char *der, size_t der_max)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = der;
	size_t out = 0;
	int n;

	/* 66 bytes: P-521, the largest curve COSE and JWS name. */
	if (!sig || !der || half == 0 || half > 66)
		return 0;
	r = BN_bin2bn (sig, (int)half, NULL);
	s = BN_bin2bn (sig + half, (int)half, NULL);
	es = ECDSA_SIG_new ();
	if (!r || !s || !es)
		goto out;
	if (ECDSA_SIG_set0 (es, r, s) != 1)
		goto out;
	r = s = NULL; /* es owns them */
	n = i2d_ECDSA_SIG (es, NULL);
	if (n <= 0 || (size_t)n > der_max)
		goto out;
	n = i2d_ECDSA_SIG (es, &p);
	if (n > 0)
		out = (size_t)n;
out:
	BN_free (r);
	BN_free (s);
	ECDSA_SIG_free (es);
	return out;
}

/* Does @pkey fit @a?  EC: the alg's curve; EdDSA: Ed25519 or Ed448; PS*:
 * RSA of at least RSA_MIN_BITS. */
static bool
key_fits (const EVP_PKEY *pkey, const struct alg_info *a)
{
	char group[64];
	size_t glen = 0;
	int nid;

	switch (a->kty) {
	case KTY_EC:
		if (!EVP_PKEY_is_a (pkey, "EC") ||
		    EVP_PKEY_get_group_name (pkey, group, sizeof group, &glen) != 1)
			return false;
		nid = OBJ_sn2nid (group);
		if (nid == NID_undef)
			nid = EC_curve_nist2nid (group);
		return nid == a->curve_nid;
	case KTY_OKP:
		return EVP_PKEY_is_a (pkey, "ED25519") || EVP_PKEY_is_a (pkey, "ED448");
	case KTY_RSA:
		return (EVP_PKEY_is_a (pkey, "RSA") || EVP_PKEY_is_a (pkey, "RSA-PSS")) &&
		       EVP_PKEY_get_bits (pkey) >= RSA_MIN_BITS;
	}
	return false;
}

static size_t
expected_sig_len (const EVP_PKEY *pkey, const struct alg_info *a)
{
	switch (a->kty) {
	case KTY_EC:
		return 2 * a->half;
	case KTY_OKP:
		return EVP_PKEY_is_a (pkey, "ED25519") ? 64 : 114;
	case KTY_RSA:
		return (size_t)EVP_PKEY_get_size (pkey);
	}
	return 0;
}

/* COSE_OK, COSE_ERR_SIGNATURE or COSE_ERR_CRYPTO/NO_MEMORY. */
static int
verify_one (EVP_PKEY *pkey, const struct alg_info *a, const unsigned char *sig, size_t sig_len,
            const unsigned char *tbs, size_t tbs_len)
{
	unsigned char der[160];
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rv = COSE_ERR_CRYPTO;

	if (a->kty == KTY_EC) {
		sig_len = cose_ecdsa_raw_to_der (sig, a->half, der, sizeof der);
		if (sig_len == 0)
			goto out;
		sig = der;
	}
	ctx = EVP_MD_CTX_new ();
	if (!ctx) {
		rv = COSE_ERR_NO_MEMORY;
		goto out;
	}
	if (EVP_DigestVerifyInit_ex (ctx, &pctx, a->md, NULL, NULL, pkey, NULL) != 1)
		goto out;
	/* RFC 8230 section 2: PSS with MGF1 of the same hash and a salt as
	 * long as the hash. */
	if (a->kty == KTY_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md_name (pctx, a->md, NULL) != 1))
		goto out;
	rv = EVP_DigestVerify (ctx, sig, sig_len, tbs, tbs_len) == 1 ? COSE_OK : COSE_ERR_SIGNATURE;
out:
	/* A failed verification leaves errors queued that mean nothing to
	 * the host application. */
	ERR_clear_error ();
	EVP_MD_CTX_free (ctx);
	return rv;
}

/* Sig_structure (RFC 9052 section 4.4), encoded by hand: definite
 * lengths, shortest heads, which is what the signer had to produce. */
static unsigned char *
sig_structure (const unsigned char *prot, size_t prot_len, const unsigned char *aad,
               size_t aad_len, const unsigned char *payload, size_t payload_len, size_t *out_len)
{
	static const char context[] = "Signature1";
	size_t cap = 1 + 1 + (sizeof context - 1) + 3 * 9 + prot_len + aad_len + payload_len;
	unsigned char *buf = malloc (cap);
	const unsigned char *parts[3] = { prot, aad, payload };
	size_t lens[3] = { prot_len, aad_len, payload_len };
	size_t o = 0, n;

	if (!buf)
		return NULL;
	o += cbor_encode_array_start (4, buf + o, cap - o);
	o += cbor_encode_string_start (sizeof context - 1, buf + o, cap - o);
	memcpy (buf + o, context, sizeof context - 1);
	o += sizeof context - 1;
	for (int i = 0; i < 3; i++) {
		n = cbor_encode_bytestring_start (lens[i], buf + o, cap - o);
		if (n == 0) {
			free (buf);
			return NULL;
		}
		o += n;
		if (lens[i])
			memcpy (buf + o, parts[i], lens[i]);
		o += lens[i];
	}
	*out_len = o;
	return buf;
}

/* ---------------------------------------------------------------- Sign1 */

/* Is @item the simple value @v?  Checked by width first: libcbor 0.8's
 * cbor_is_null() and cbor_is_bool() assert, and so abort the host, when
 * handed a float. */
static bool
simple_is (const cbor_item_t *item, uint8_t v)
{
	return cbor_isa_float_ctrl (item) && cbor_float_get_width (item) == CBOR_FLOAT_0 &&
	       cbor_ctrl_value (item) == v;
}

static bool
definite_bstr (const cbor_item_t *item)
{
	return cbor_isa_bytestring (item) && cbor_bytestring_is_definite (item);
}

/* The bytes of a definite bstr; libcbor has no buffer for an empty one. */
static const unsigned char *
bstr_data (const cbor_item_t *item)
{
	static const unsigned char empty[1];
	const unsigned char *p = cbor_bytestring_handle (item);
	return p ? p : empty;
}

/* A complete tag head at @p: its length, with the tag number in @tag;
 * 0 if @p does not start with one. */
static size_t
tag_head (const unsigned char *p, size_t n, uint64_t *tag)
{
	size_t h;
	if (n == 0 || (p[0] & 0xe0) != 0xc0 || (p[0] & 0x1f) > 27)
		return 0;
	h = head_len (p[0]);
	if (n < h)
		return 0;
	if (h == 1) {
		*tag = p[0] & 0x1f;
		return 1;
	}
	*tag = 0;
	for (size_t i = 1; i < h; i++)
		*tag = *tag << 8 | p[i];
	return h;
}

/*
 * Strip the tags in front of the message: 18, or 61(18) with
 * COSE_ALLOW_CWT_TAG, or none with COSE_ALLOW_UNTAGGED.  They are read
 * here rather than by libcbor because libcbor 0.8 cannot decode tag 18
 * in its usual one-byte form (0xd2).  *@off is where the array starts.
 */
static int
strip_tags (const unsigned char *msg, size_t len, unsigned int flags, size_t *off, bool *cwt,
            char *err, size_t errlen)
{
	uint64_t tag = 0;
	size_t h = tag_head (msg, len, &tag);

	*off = 0;
	*cwt = false;
	if (h && tag == TAG_CWT) {
		if (!(flags & COSE_ALLOW_CWT_TAG)) {
			set_err (err, errlen, "CWT tag 61 not accepted here");
			return COSE_ERR_TAG;
		}
		*cwt = true;
		*off = h;
		h = tag_head (msg + *off, len - *off, &tag);
		/* RFC 8392 section 6: the COSE message inside keeps its own
		 * tag. */
		if (!h) {
			set_err (err, errlen, "CWT tag 61 not around tag 18");
			return COSE_ERR_TAG;
		}
	}
	if (h) {
		if (tag != TAG_COSE_SIGN1) {
			set_err (err, errlen, "tag %" PRIu64 ", not 18 (COSE_Sign1)", tag);
			return COSE_ERR_TAG;
		}
		*off += h;
	} else if (!(flags & COSE_ALLOW_UNTAGGED)) {
		set_err (err, errlen, "no COSE_Sign1 tag 18");
		return COSE_ERR_TAG;
	}
	if (*off == len) {
		set_err (err, errlen, "nothing after the tags");
		return COSE_ERR_CBOR;
	}
	return COSE_OK;
}

void
cose_sign1_clear (struct cose_sign1 *s)
{
	if (!s)
		return;
	free (s->payload);
	free (s->kid);
	memset (s, 0, sizeof *s);
}

static bool
alg_allowed (int64_t alg, const int64_t *algs, size_t n_algs)
{
	if (!algs || n_algs == 0)
		return true;
	for (size_t i = 0; i < n_algs; i++) {
		if (algs[i] == alg)
			return true;
	}
	return false;
}

static bool
kid_equal (const struct cose_key *k, const unsigned char *kid, size_t kid_len)
{
	return k->kid && k->kid_len == kid_len && (kid_len == 0 || !memcmp (k->kid, kid, kid_len));
}

int
cose_sign1_verify (const unsigned char *msg, size_t len, unsigned int flags,
                   const struct cose_key *keys, size_t n_keys, const unsigned char *aad,
                   size_t aad_len, const int64_t *algs, size_t n_algs, struct cose_sign1 *out,
                   char *err, size_t errlen)
{
	cbor_item_t *top = NULL, *prot_map = NULL, **el;
	struct headers *h = NULL;
	const struct alg_info *a;
	const unsigned char *prot, *payload, *sig, *kid;
	size_t prot_len, payload_len, sig_len, kid_len, tbs_len = 0, off = 0;
	unsigned char *tbs = NULL;
	bool cwt, any_fit = false, kid_named = false, len_ok = false;
	int64_t alg;
	int rv;

	if (out)
		memset (out, 0, sizeof *out);
	set_err (err, errlen, "ok");
	if (!msg || !out || (n_keys && !keys) || (aad_len && !aad) || (n_algs && !algs) ||
	    aad_len > COSE_MAX_SIZE || flags & ~(COSE_ALLOW_UNTAGGED | COSE_ALLOW_CWT_TAG)) {
		set_err (err, errlen, "missing or invalid arguments");
		return COSE_ERR_ARGS;
	}
	for (size_t i = 0; i < n_keys; i++) {
		if (!keys[i].pkey || (keys[i].kid_len && !keys[i].kid)) {
			set_err (err, errlen, "key %zu incomplete", i);
			return COSE_ERR_ARGS;
		}
	}
	if (len == 0 || len > COSE_MAX_SIZE) {
		set_err (err, errlen, "message of %zu bytes (1..%d)", len, COSE_MAX_SIZE);
		return COSE_ERR_SIZE;
	}
	rv = strip_tags (msg, len, flags, &off, &cwt, err, errlen);
	if (rv != COSE_OK)
		return rv;
	top = load (msg + off, len - off, &rv, err, errlen);
	if (!top)
		return rv;
	if (cbor_isa_tag (top)) {
		rv = COSE_ERR_TAG;
		set_err (err, errlen, "tag %" PRIu64 " inside the COSE_Sign1 tag", cbor_tag_value (top));
		goto out;
	}
	if (!cbor_isa_array (top) || cbor_array_size (top) != 4) {
		rv = COSE_ERR_STRUCTURE;
		set_err (err, errlen, "COSE_Sign1 is not a 4-element array");
		goto out;
	}
	el = cbor_array_handle (top);

	if (!definite_bstr (el[0])) {
		rv = COSE_ERR_PROTECTED;
		set_err (err, errlen, cbor_isa_map (el[0]) ? "protected header is a bare map, not a bstr"
		                                           : "protected header is not a bstr");
		goto out;
	}
	if (!cbor_isa_map (el[1])) {
		rv = COSE_ERR_STRUCTURE;
		set_err (err, errlen, "unprotected header is not a map");
		goto out;
	}
	if (simple_is (el[2], CBOR_CTRL_NULL)) {
		rv = COSE_ERR_DETACHED;
		set_err (err, errlen, "payload is nil (detached)");
		goto out;
	}
	if (!definite_bstr (el[2]) || !definite_bstr (el[3])) {
		rv = COSE_ERR_STRUCTURE;
		set_err (err, errlen, "payload or signature is not a bstr");
		goto out;
	}
	prot = bstr_data (el[0]);
	prot_len = cbor_bytestring_length (el[0]);
	payload = bstr_data (el[2]);
	payload_len = cbor_bytestring_length (el[2]);
	sig = bstr_data (el[3]);
	sig_len = cbor_bytestring_length (el[3]);

	h = calloc (1, sizeof *h);
	if (!h) {
		rv = COSE_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", cose_strerror (rv));
		goto out;
	}
	/* An empty bstr stands for the empty map (RFC 9052 section 3). */
	if (prot_len > 0) {
		char sub[128];
		prot_map = load (prot, prot_len, &rv, sub, sizeof sub);
		if (!prot_map || !cbor_isa_map (prot_map)) {
			if (rv != COSE_ERR_NO_MEMORY)
				rv = COSE_ERR_PROTECTED;
			set_err (err, errlen, "protected header bstr does not hold a map%s%s",
			         prot_map ? "" : ": ", prot_map ? "" : sub);
			goto out;
		}
		rv = headers_add (h, prot_map, true, err, errlen);
		if (rv != COSE_OK)
			goto out;
	}
	rv = headers_add (h, el[1], false, err, errlen);
	if (rv != COSE_OK)
		goto out;
	rv = check_headers (h, &alg, &kid, &kid_len, err, errlen);
	if (rv != COSE_OK)
		goto out;
	if (!alg_allowed (alg, algs, n_algs)) {
		rv = COSE_ERR_ALG_NOT_ALLOWED;
		set_err (err, errlen, "alg %s not allowed", cose_alg_name (alg));
		goto out;
	}
	a = alg_lookup (alg);

	tbs = sig_structure (prot, prot_len, aad, aad_len, payload, payload_len, &tbs_len);
	if (!tbs) {
		rv = COSE_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", cose_strerror (rv));
		goto out;
	}
	/* Keys in order: with a kid in the message, those with that kid or
	 * none; without, all.  The kid is a hint (it may be unprotected):
	 * what decides is the signature. */
	rv = COSE_ERR_NO_KEY;
	for (size_t i = 0; i < n_keys; i++) {
		const struct cose_key *k = &keys[i];
		int r;
		if (kid && k->kid && !kid_equal (k, kid, kid_len))
			continue;
		if (kid && k->kid)
			kid_named = true;
		if (!key_fits (k->pkey, a))
			continue;
		any_fit = true;
		if (sig_len != expected_sig_len (k->pkey, a))
			continue;
		len_ok = true;
		r = verify_one (k->pkey, a, sig, sig_len, tbs, tbs_len);
		if (r == COSE_OK) {
			out->key_index = i;
			rv = COSE_OK;
			break;
		}
		if (r != COSE_ERR_SIGNATURE) {
			rv = r;
			set_err (err, errlen, "key %zu: %s", i, cose_strerror (r));
			goto out;
		}
	}
	if (rv != COSE_OK) {
		if (len_ok) {
			rv = COSE_ERR_SIGNATURE;
			set_err (err, errlen, "%s signature does not verify under any fitting key",
			         a->name);
		} else if (any_fit) {
			rv = COSE_ERR_SIG_LENGTH;
			set_err (err, errlen, "%s signature of %zu bytes fits no key", a->name, sig_len);
		} else if (kid_named) {
			rv = COSE_ERR_KEY_MISMATCH;
			set_err (err, errlen, "the key with the message's kid does not fit %s", a->name);
		} else {
			rv = COSE_ERR_NO_KEY;
			set_err (err, errlen, kid ? "no pinned key for the message's kid fits %s"
			                          : "no pinned key fits %s", a->name);
		}
		goto out;
	}

	out->alg = alg;
	out->had_cwt_tag = cwt;
	/* One spare byte so that an empty payload still has a buffer. */
	out->payload = malloc (payload_len + 1);
	out->kid = kid ? malloc (kid_len + 1) : NULL;
	if (!out->payload || (kid && !out->kid)) {
		cose_sign1_clear (out);
		rv = COSE_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", cose_strerror (rv));
		goto out;
	}
	memcpy (out->payload, payload, payload_len);
	out->payload_len = payload_len;
	if (kid) {
		memcpy (out->kid, kid, kid_len);
		out->kid_len = kid_len;
	}
	rv = COSE_OK;
out:
	free (tbs);
	free (h);
	if (prot_map)
		cbor_decref (&prot_map);
	cbor_decref (&top);
	return rv;
}
