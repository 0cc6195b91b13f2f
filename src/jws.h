/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWS compact serialization (RFC 7515 section 7.1), verification only,
 * for attestation results (EAR as a JWT): ES256 and ES384 under pinned
 * keys, nothing else.  An unsigned ("none") or HMAC token is never
 * accepted: a verifier's key is public, so an HMAC "signature" under it
 * would prove nothing.  Keys or certificates carried in the header (jwk,
 * jku, x5c, x5u) are never used; only the caller's pinned keys are.
 *
 * Also the strict JSON reader shared with the EAR verifier: json-c 0.16
 * silently keeps the last of two members of one name, so a token could
 * show one value to this code and another to a different parser.
 *
 * Stateless; calls may run in parallel.
 */
#ifndef P11W_JWS_H
#define P11W_JWS_H

#include "cose.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWS_MAX_SIZE (64 * 1024)  /* bytes of one token */
#define JWS_HEADER_MAX 4096       /* bytes of the decoded protected header */
#define JWS_KID_MAX COSE_KID_MAX

#define JWS_JSON_MAX_DEPTH 16     /* nested arrays and objects */
#define JWS_JSON_MAX_MEMBERS 256  /* members of one object */

enum jws_alg {
	JWS_ALG_ES256 = 1,
	JWS_ALG_ES384 = 2,
};

enum jws_err {
	JWS_OK = 0,
	JWS_ERR_ARGS = -1,
	JWS_ERR_SIZE = -2,          /* empty or over JWS_MAX_SIZE */
	JWS_ERR_FORMAT = -3,        /* not header.payload.signature (a dot
	                             * missing or extra, an empty header or
	                             * payload) */
	JWS_ERR_BASE64 = -4,        /* a part not strict base64url: padding,
	                             * another alphabet, non-zero spare bits */
	JWS_ERR_HEADER_JSON = -5,   /* header not one JSON object (bad JSON, a
	                             * duplicate member, too large or deep) */
	JWS_ERR_HEADER = -6,        /* a header parameter of the wrong type, or
	                             * b64 (RFC 7797) */
	JWS_ERR_CRIT = -7,          /* crit present and not empty */
	JWS_ERR_ALG_MISSING = -8,
	JWS_ERR_ALG_NONE = -9,      /* "none": unsigned */
	JWS_ERR_ALG_HMAC = -10,     /* HS256/384/512 */
	JWS_ERR_ALG_RSA = -11,      /* RS*, PS* */
	JWS_ERR_ALG_UNSUPPORTED = -12, /* anything else (ES512, EdDSA, ...) */
	JWS_ERR_NO_KEY = -13,       /* no pinned key for the token's kid */
	JWS_ERR_KEY_MISMATCH = -14, /* keys for the kid, none on alg's curve */
	JWS_ERR_SIG_LENGTH = -15,   /* not 64 (ES256) or 96 (ES384) bytes, or
	                             * empty */
	JWS_ERR_SIGNATURE = -16,    /* does not verify under any fitting key */
	JWS_ERR_NO_MEMORY = -17,
	JWS_ERR_CRYPTO = -18,       /* OpenSSL failed otherwise */
};

/* What a verified token says.  Owns its buffers; jws_result_clear(). */
struct jws_result {
	enum jws_alg alg;
	size_t key_index;         /* which of the keys verified it */
	unsigned char *payload;   /* decoded; one NUL byte past the end */
	size_t payload_len;
	char *kid;                /* NUL-terminated, or NULL if none */
	size_t kid_len;
};

/*
 * Verify the compact JWS in @token (@len bytes, no surrounding white
 * space) against @keys (struct cose_key, as in cose.c: a token with a kid
 * is checked only under keys with that kid, compared as bytes with the
 * header's kid string, or without one; a token without a kid under every
 * key), tried in order among those on the curve of the token's alg (P-256
 * for ES256, P-384 for ES384).
 * The signature is checked over the token's first two parts exactly as
 * sent.  On JWS_OK @out holds the payload, which must not be empty
 * (detached content is not supported).  Returns JWS_OK or a negative
 * enum jws_err; @err always receives a NUL-terminated message.
 */
int jws_verify (const char *token, size_t len, const struct cose_key *keys, size_t n_keys,
                struct jws_result *out, char *err, size_t errlen);
void jws_result_clear (struct jws_result *r);

const char *jws_strerror (int rv);
/* "ES256", "ES384", or NULL. */
const char *jws_alg_name (enum jws_alg alg);

/*
 * Strict base64url (RFC 4648 section 5, no padding, no white space,
 * spare bits zero) of @len characters into @out (room for @len * 3 / 4
 * bytes).  Returns false on any other input.
 */
bool jws_base64url_decode (const char *in, size_t len, unsigned char *out, size_t *out_len);

/*
 * Parse @len bytes as one JSON value (RFC 8259, UTF-8): refused are
 * duplicate member names in one object, more than JWS_JSON_MAX_MEMBERS
 * members or JWS_JSON_MAX_DEPTH levels, \u0000 anywhere, an integer
 * outside int64 (json-c would saturate it), a byte-order mark and
 * trailing text.  NULL on failure, with the reason and offset in @err.
 * Caller: json_object_put().
 */
json_object *jws_json_parse (const unsigned char *text, size_t len, char *err, size_t errlen);

#endif /* P11W_JWS_H */
