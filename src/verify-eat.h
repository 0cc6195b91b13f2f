/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entity Attestation Token verification (RFC 9711; FORMATS.md section 3):
 * a COSE_Sign1 (tag 18, optionally inside CWT tag 61) signed by a pinned
 * key, whose payload is a CBOR claims map.  Once the signature, the claim
 * types, the time claims, the nonce and the profile pass, the claims a
 * policy can name become eat.* claims (and evidence.format = "eat",
 * evidence.anchor = the name of the key that verified).
 *
 * Claim keys: integer keys are the registered CWT/EAT claims; the ones
 * this code knows are type-checked, others are ignored (RFC 8392 section
 * 3: claims not understood are ignored).  Text keys are private claims
 * and ignored too, except that a text key spelling the JSON name of a
 * claim this code checks ("iat", "eat_nonce", ...) is refused: a reader
 * that honoured it would see another token than this code does.  Keys of
 * any other type, and duplicate keys, are refused.  The early-draft keys
 * 11 (ueid) and 16 (dbgstat) are refused.
 *
 * Submodules: a claims map is checked by the same rules (up to
 * VERIFY_EAT_SUBMOD_DEPTH deep) and its claims become
 * eat.submod.NAME.CLAIM; a nested token is refused (not supported); a
 * detached digest is type-checked and yields no claims.
 *
 * Standalone: OpenSSL, libcbor, cose.c and claims.c; no state, so calls
 * may run in parallel.
 */
#ifndef P11W_VERIFY_EAT_H
#define P11W_VERIFY_EAT_H

#include "claims.h"
#include "cose.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VERIFY_EAT_TOKEN_MAX COSE_MAX_SIZE
#define VERIFY_EAT_SUBMOD_DEPTH 4      /* submodules inside submodules */
#define VERIFY_EAT_MAP_MAX 256         /* entries in one claims map */
#define VERIFY_EAT_NONCE_MIN 8         /* eat_nonce: 8..64 bytes */
#define VERIFY_EAT_NONCE_MAX 64
#define VERIFY_EAT_NONCES_MAX 16       /* nonces in an eat_nonce array */
/* NumericDates outside 0..9999-12-31 are refused, so that no time
 * arithmetic here can overflow. */
#define VERIFY_EAT_TIME_MAX INT64_C(253402300799)

enum verify_eat_err {
	VERIFY_EAT_OK = 0,
	VERIFY_EAT_ERR_ARGS = -1,          /* missing input, bad nonce length, ... */
	VERIFY_EAT_ERR_SIZE = -2,          /* token empty or over the cap */
	VERIFY_EAT_ERR_COSE = -3,          /* COSE_Sign1 malformed (details in err) */
	VERIFY_EAT_ERR_ALG = -4,           /* alg missing, unsupported or not allowed */
	VERIFY_EAT_ERR_NO_KEY = -5,        /* no pinned key fits (kid, key type) */
	VERIFY_EAT_ERR_SIGNATURE = -6,     /* signature of the wrong length or bad */
	VERIFY_EAT_ERR_PAYLOAD = -7,       /* payload not CBOR, or not a map */
	VERIFY_EAT_ERR_CLAIM_KEY = -8,     /* a key neither int nor text, a refused text key */
	VERIFY_EAT_ERR_DUPLICATE = -9,     /* a key twice in one map */
	VERIFY_EAT_ERR_CLAIM_TYPE = -10,   /* a claim of the wrong type or out of range */
	VERIFY_EAT_ERR_EARLY_DRAFT = -11,  /* key 11 or 16 (early-draft ueid/dbgstat) */
	VERIFY_EAT_ERR_IAT_MISSING = -12,
	VERIFY_EAT_ERR_IAT_FUTURE = -13,   /* iat > now + skew */
	VERIFY_EAT_ERR_IAT_STALE = -14,    /* now - iat > max_iat_age + skew */
	VERIFY_EAT_ERR_EXPIRED = -15,      /* now > exp + skew */
	VERIFY_EAT_ERR_NOT_YET_VALID = -16, /* now + skew < nbf */
	VERIFY_EAT_ERR_NONCE_MISSING = -17, /* a nonce was expected, the token has none */
	VERIFY_EAT_ERR_NONCE = -18,        /* no eat_nonce equals the challenge */
	VERIFY_EAT_ERR_PROFILE = -19,      /* eat_profile missing or another */
	VERIFY_EAT_ERR_UEID = -20,         /* ueid of a bad length or type byte */
	VERIFY_EAT_ERR_DBGSTAT = -21,      /* dbgstat not 0..4 */
	VERIFY_EAT_ERR_MEASRES = -22,      /* measres malformed, result not 1..4 */
	VERIFY_EAT_ERR_SUBMOD = -23,       /* submods malformed or nested too deep */
	VERIFY_EAT_ERR_NESTED_TOKEN = -24, /* a submodule is a nested token */
	VERIFY_EAT_ERR_NAME = -25,         /* a submodule, system or result name that
	                                    * cannot be part of a claim name */
	VERIFY_EAT_ERR_LIMIT = -26,        /* a map or array over its cap */
	VERIFY_EAT_ERR_NO_MEMORY = -27,
	VERIFY_EAT_ERR_CLAIMS = -28,       /* the claim set refused a claim */
	VERIFY_EAT_ERR_CRYPTO = -29,       /* OpenSSL failed (not a bad signature) */
};

struct verify_eat_input {
	const unsigned char *token;    /* the COSE_Sign1 (tag 18 or 61(18)) */
	size_t len;
	const struct cose_key *keys;   /* pinned keys, tried in order */
	size_t n_keys;
	const char *const *anchor_names; /* n_keys names, for evidence.anchor */
	const int64_t *algs;           /* allowed COSE algs; NULL/0: all supported */
	size_t n_algs;
	/* The fresh challenge (8..64 bytes), which an eat_nonce must equal;
	 * NULL: not checked (and *nonce_matched is false). */
	const unsigned char *nonce;
	size_t nonce_len;
	int64_t now;                   /* seconds since the epoch */
	unsigned int skew;             /* seconds of clock skew allowed */
	int64_t max_iat_age;           /* seconds; 0: iat's age is the policy's business */
	/* Required eat_profile (a URI, or an OID in dotted form for an OID
	 * profile), or NULL. */
	const char *profile;
};

/*
 * Verify @in and, on success, add its claims to @out; on failure @out is
 * left as it was (claims are collected aside and copied at the end).  A
 * claim already in @out makes the call fail with VERIFY_EAT_ERR_CLAIMS
 * (claims copied before it stay).  @key_index (may be NULL) receives the
 * index of the key that verified, @nonce_matched (may be NULL) whether a
 * nonce was checked and matched.  Returns VERIFY_EAT_OK or a negative
 * enum verify_eat_err; @err (if @errlen > 0) always receives a
 * NUL-terminated message.
 */
int verify_eat (const struct verify_eat_input *in, struct claim_set *out, size_t *key_index,
                bool *nonce_matched, char *err, size_t errlen);

const char *verify_eat_strerror (int rv);

#endif /* P11W_VERIFY_EAT_H */
