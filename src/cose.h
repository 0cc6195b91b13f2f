/* SPDX-License-Identifier: Apache-2.0 */
/*
 * COSE_Sign1 verification (RFC 9052/9053; FORMATS.md section 2) and a
 * bounded CBOR loader, shared by the EAT and EAR verifiers.
 *
 * Hostile input never reaches libcbor's allocating parser unchecked:
 * cose_cbor_load() first walks the bytes with libcbor's streaming decoder
 * (which allocates nothing) and refuses indefinite lengths, nesting deeper
 * than COSE_CBOR_MAX_DEPTH and any declared array or map length that the
 * remaining bytes could not hold, before it calls cbor_load().  No
 * process-wide allocator is installed (cbor_set_allocs would change the
 * host application's libcbor too).
 *
 * Stateless; calls may run in parallel.
 */
#ifndef P11W_COSE_H
#define P11W_COSE_H

#include <cbor.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COSE_MAX_SIZE (64 * 1024)  /* bytes of one COSE message */
#define COSE_CBOR_MAX_DEPTH 16     /* nested arrays, maps and tags */
/* Items (heads) in one input.  cbor_load() allocates a few dozen bytes per
 * item, so this bounds its memory to well under a MiB whatever the input. */
#define COSE_CBOR_MAX_ITEMS 8192
#define COSE_KID_MAX 64

/* COSE algorithm identifiers (IANA). */
#define COSE_ALG_ES256 (-7)
#define COSE_ALG_EDDSA (-8)
#define COSE_ALG_ES384 (-35)
#define COSE_ALG_ES512 (-36)
#define COSE_ALG_PS256 (-37)
#define COSE_ALG_PS384 (-38)
#define COSE_ALG_PS512 (-39)

/* Flags for cose_sign1_verify. */
#define COSE_ALLOW_UNTAGGED 0x1u   /* accept the bare 4-element array */
#define COSE_ALLOW_CWT_TAG 0x2u    /* accept CWT tag 61 around tag 18 */

enum cose_err {
	COSE_OK = 0,
	COSE_ERR_ARGS = -1,
	COSE_ERR_SIZE = -2,           /* empty or over COSE_MAX_SIZE */
	COSE_ERR_CBOR = -3,           /* not well-formed CBOR, or trailing bytes */
	COSE_ERR_CBOR_LIMIT = -4,     /* indefinite length, too deep, length
	                               * larger than the input could hold */
	COSE_ERR_TAG = -5,            /* not tag 18 (or the tag is missing) */
	COSE_ERR_STRUCTURE = -6,      /* not a 4-element array of the right types */
	COSE_ERR_PROTECTED = -7,      /* protected header not a bstr holding a map */
	COSE_ERR_HEADER = -8,         /* a header parameter of the wrong type, a label
	                               * in both buckets, a duplicate label */
	COSE_ERR_CRIT = -9,           /* crit names a label this code does not know */
	COSE_ERR_ALG_MISSING = -10,   /* no alg in the protected header */
	COSE_ERR_ALG_UNKNOWN = -11,   /* alg not in the supported list */
	COSE_ERR_ALG_NOT_ALLOWED = -12, /* alg not in the caller's allow-list */
	COSE_ERR_NO_KEY = -13,        /* no pinned key fits (kid, or key type for alg) */
	COSE_ERR_KEY_MISMATCH = -14,  /* the kid's key is of another type than alg */
	COSE_ERR_SIG_LENGTH = -15,    /* signature of the wrong length for alg/key */
	COSE_ERR_SIGNATURE = -16,     /* does not verify */
	COSE_ERR_DETACHED = -17,      /* nil payload (detached content unsupported) */
	COSE_ERR_NO_MEMORY = -18,
	COSE_ERR_CRYPTO = -19,        /* OpenSSL failed otherwise */
};

/* A pinned verification key.  With @kid set, a message whose kid differs
 * does not use this key; a message with a kid matches only keys with the
 * same kid (or without one). */
struct cose_key {
	EVP_PKEY *pkey;
	const unsigned char *kid;
	size_t kid_len;
};

/* What a verified message says.  Owns its buffers; cose_sign1_clear(). */
struct cose_sign1 {
	int64_t alg;
	size_t key_index;             /* which of the keys verified it */
	unsigned char *payload;
	size_t payload_len;
	unsigned char *kid;           /* NULL if none */
	size_t kid_len;
	bool had_cwt_tag;
};

/*
 * Load @len bytes as exactly one CBOR item (trailing bytes are an error)
 * after the checks above.  NULL on failure, with the reason in @err.
 * Caller: cbor_decref().
 */
cbor_item_t *cose_cbor_load (const unsigned char *buf, size_t len, char *err, size_t errlen);

/*
 * The checks of cose_cbor_load() alone, with the reason as a code:
 * COSE_OK, COSE_ERR_SIZE (empty or over COSE_MAX_SIZE), COSE_ERR_CBOR (not
 * well-formed, truncated inside a head or before a container's last item,
 * trailing bytes) or COSE_ERR_CBOR_LIMIT (indefinite length, deeper than
 * COSE_CBOR_MAX_DEPTH, more than COSE_CBOR_MAX_ITEMS items, a string or
 * container declaring more than the rest of the input could hold, which
 * includes a string cut short).  cbor_load() may still refuse what passes
 * (an unassigned simple value, say).  libcbor 0.8 cannot decode tag heads
 * 0xc6-0xd4 (tags 6-20) and 0xd9-0xdb (tags above 255): they are refused
 * here as COSE_ERR_CBOR.  cose_sign1_verify() reads the tags in front of
 * the message (18, 61) itself, so a message starting 0xd2 is fine.
 */
int cose_cbor_check (const unsigned char *buf, size_t len, char *err, size_t errlen);

/* An integer item (uint or negint) as int64; false if not an integer or
 * out of range. */
bool cose_cbor_get_int (const cbor_item_t *item, int64_t *out);

/*
 * Verify the COSE_Sign1 in @msg against @keys (tried in order; with a kid
 * in the message only matching keys are tried), with external AAD
 * @aad/@aad_len (may be NULL/0) and @algs (n_algs COSE alg ids; NULL/0
 * means every supported one).  On COSE_OK @out holds the payload.
 * Returns COSE_OK or a negative enum cose_err; @err always receives a
 * NUL-terminated message.
 */
int cose_sign1_verify (const unsigned char *msg, size_t len, unsigned int flags,
                       const struct cose_key *keys, size_t n_keys, const unsigned char *aad,
                       size_t aad_len, const int64_t *algs, size_t n_algs, struct cose_sign1 *out,
                       char *err, size_t errlen);
void cose_sign1_clear (struct cose_sign1 *s);

const char *cose_strerror (int rv);
/* "ES256" for -7, ..., or NULL. */
const char *cose_alg_name (int64_t alg);
/* Parse "ES256" etc.; false if unknown. */
bool cose_alg_from_name (const char *name, int64_t *alg);

/*
 * ECDSA signatures travel as r||s (COSE and JWS); OpenSSL wants DER.
 * Converts @sig (2 * @half bytes) to DER in @der (at most @der_max).
 * Returns the DER length, or 0 on failure.  Shared with the JWS code.
 */
size_t cose_ecdsa_raw_to_der (const unsigned char *sig, size_t half, unsigned char *der,
                              size_t der_max);

#endif /* P11W_COSE_H */
