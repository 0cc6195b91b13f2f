/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EAR attestation result verification (draft-ietf-rats-ear, Veraison EAR;
 * FORMATS.md section 4): a result signed by the organisation's own
 * verifier, as a JWT (JWS compact, ES256/ES384, JSON claims) or as a
 * COSE_Sign1 (tag 18, optionally inside CWT tag 61; ES256/ES384, CBOR
 * claims).  The form is told by the first byte: 0xd2 or 0xd8 is COSE,
 * anything else is read as a JWS.
 *
 * Profiles (the caller names the one it requires; the token's eat_profile
 * must be exactly that):
 *   VERIFY_EAR_PROFILE_VERAISON  "tag:github.com,2023:veraison/ear":
 *     JSON names "ear.status" (string), "ear.trustworthiness-vector",
 *     "ear.appraisal-policy-id" (string), "ear.verifier-id"; CBOR keys
 *     1000 (status, an int tier), 1001, 1003, 1004.
 *   VERIFY_EAR_PROFILE_IETF_03 / _04  "tag:ietf.org,2026:rats/ear#03"/"#04":
 *     JSON names "ear_status", "ear_trustworthiness_vector",
 *     "ear_appraisal_policy_ids" (array), "ear_verifier_id"; CBOR keys as
 *     above with 1003 an array.
 * Both forms share eat_profile (265), iat (6), exp (4), nbf (5),
 * eat_nonce (10) and submods (266).  A status is accepted as a string
 * (none, affirming, warning, contraindicated) or as its tier (0, 2, 32,
 * 96) in either form; anything else is refused.
 *
 * Claims on success:
 *   ear.profile, ear.iat, ear.verifier-id.developer, ear.verifier-id.build;
 *   per submodule NAME: ear.submod.NAME.status (string),
 *     ear.submod.NAME.tv.<vector claim> (int, those present),
 *     ear.submod.NAME.policy-id (string; left out when a list holds more
 *     than one id, so that a policy naming it fails closed);
 *   with exactly one submodule, its status, tv.* and policy-id also at
 *     top level (ear.status, ear.tv.hardware, ...), so that a policy for
 *     the usual single-attester result need not know the submodule's name;
 *     with several, policies must name ear.submod.NAME.*;
 *   evidence.format = "ear", evidence.anchor = the name of the verifier
 *     key that signed it.
 * Extension claims (ear.raw-evidence, ear.veraison.*, 1002, ...) are
 * ignored.  A submodule name must be 1..VERIFY_EAR_NAME_MAX bytes of
 * [A-Za-z0-9._-] (what a claim name can hold): others are refused rather
 * than renamed.
 *
 * Standalone: OpenSSL, json-c, libcbor, cose.c, jws.c and claims.c; no
 * state, so calls may run in parallel.
 */
#ifndef P11W_VERIFY_EAR_H
#define P11W_VERIFY_EAR_H

#include "claims.h"
#include "cose.h"
#include "jws.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VERIFY_EAR_PROFILE_VERAISON "tag:github.com,2023:veraison/ear"
#define VERIFY_EAR_PROFILE_IETF_03 "tag:ietf.org,2026:rats/ear#03"
#define VERIFY_EAR_PROFILE_IETF_04 "tag:ietf.org,2026:rats/ear#04"

#define VERIFY_EAR_MAX_SIZE (64 * 1024) /* bytes of one token, either form */
#define VERIFY_EAR_SUBMODS_MAX 64
#define VERIFY_EAR_NAME_MAX 64          /* bytes of a submodule name */
#define VERIFY_EAR_MAP_MAX 256          /* members of a CBOR map read here */
#define VERIFY_EAR_NONCE_MIN 8          /* RFC 9711: eat_nonce is 8..64 bytes */
#define VERIFY_EAR_NONCE_MAX 64

enum verify_ear_err {
	VERIFY_EAR_OK = 0,
	VERIFY_EAR_ERR_ARGS = -1,           /* missing input, unknown profile, a
	                                     * nonce outside 8..64 bytes */
	VERIFY_EAR_ERR_SIZE = -2,           /* empty or over VERIFY_EAR_MAX_SIZE */
	VERIFY_EAR_ERR_PAYLOAD = -3,        /* claims not a JSON object / CBOR map,
	                                     * bad JSON, a duplicate key */
	VERIFY_EAR_ERR_CLAIM_TYPE = -4,     /* a claim read here of the wrong type */
	VERIFY_EAR_ERR_PROFILE_MISSING = -5,
	VERIFY_EAR_ERR_PROFILE = -6,        /* not the profile required */
	VERIFY_EAR_ERR_IAT_MISSING = -7,
	VERIFY_EAR_ERR_IAT_FUTURE = -8,     /* iat after now + skew */
	VERIFY_EAR_ERR_IAT_STALE = -9,      /* iat before now - max_age - skew */
	VERIFY_EAR_ERR_EXPIRED = -10,       /* exp at or before now - skew */
	VERIFY_EAR_ERR_NOT_YET_VALID = -11, /* nbf after now + skew */
	VERIFY_EAR_ERR_NONCE_MISSING = -12, /* a nonce was expected, none is there */
	VERIFY_EAR_ERR_NONCE = -13,         /* eat_nonce != the nonce, or malformed */
	VERIFY_EAR_ERR_VERIFIER_ID = -14,   /* verifier-id missing or incomplete */
	VERIFY_EAR_ERR_SUBMODS_MISSING = -15, /* no submods, or an empty map */
	VERIFY_EAR_ERR_SUBMODS_COUNT = -16, /* more than VERIFY_EAR_SUBMODS_MAX */
	VERIFY_EAR_ERR_SUBMOD_NAME = -17,   /* empty, too long, or not claim-name text */
	VERIFY_EAR_ERR_SUBMOD = -18,        /* a submodule's appraisal is not a map */
	VERIFY_EAR_ERR_STATUS_MISSING = -19,
	VERIFY_EAR_ERR_STATUS = -20,        /* not a known tier name or value */
	VERIFY_EAR_ERR_TV = -21,            /* vector not a map, unknown member */
	VERIFY_EAR_ERR_TV_VALUE = -22,      /* a vector value not an int in -128..127 */
	VERIFY_EAR_ERR_POLICY_ID = -23,     /* not a string (or a list of strings) */
	VERIFY_EAR_ERR_NO_MEMORY = -24,
	VERIFY_EAR_ERR_CLAIMS = -25,        /* the claim set refused a claim */
	VERIFY_EAR_ERR_CRYPTO = -26,
};

/* A refusal by the signature layer: its own code @e (a negative enum
 * jws_err or cose_err), offset so that every reason stays distinct. */
#define VERIFY_EAR_ERR_JWS(e) (-100 + (e))   /* -101 .. -199 */
#define VERIFY_EAR_ERR_COSE(e) (-200 + (e))  /* -201 .. -299 */

struct verify_ear_input {
	const unsigned char *token;
	size_t len;
	const struct cose_key *keys;        /* the pinned verifier keys */
	size_t n_keys;
	const char *const *anchor_names;    /* n_keys names, for evidence.anchor */
	const unsigned char *nonce;         /* the fresh challenge (8..64 bytes), or
	                                     * NULL: eat_nonce is not required, but
	                                     * checked for form if present */
	size_t nonce_len;
	int64_t now;                        /* seconds since the epoch */
	unsigned int skew;                  /* seconds of clock skew tolerated */
	unsigned int max_age;               /* iat no older than this (plus skew);
	                                     * 0: not checked here */
	const char *profile;                /* VERIFY_EAR_PROFILE_* */
};

/*
 * Verify @in and, on success, add its claims to @out (which should be
 * empty: a claim already there makes the call fail with
 * VERIFY_EAR_ERR_CLAIMS; a failure never adds anything).  On success *@key_index (if not NULL) is the
 * key that verified it and *@nonce_matched (if not NULL) says whether a
 * nonce was given and matched.  Returns VERIFY_EAR_OK, a negative enum
 * verify_ear_err, or VERIFY_EAR_ERR_JWS/COSE (code); @err (if @errlen > 0)
 * always receives a NUL-terminated message with the details.
 */
int verify_ear (const struct verify_ear_input *in, struct claim_set *out, size_t *key_index,
                bool *nonce_matched, char *err, size_t errlen);

const char *verify_ear_strerror (int rv);

#endif /* P11W_VERIFY_EAR_H */
