/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers shared by test-jws, test-verify-ear and the EAR fuzz
 * targets: make JWS and COSE_Sign1 tokens, turn an EAR's JSON claims into
 * its CBOR form, read the JWK test keys.  Every function returns NULL (or
 * 0) on failure rather than asserting, so the fuzzers can use them too.
 * Results are malloc'd; free() them.
 */
#ifndef P11W_TEST_EAR_TOKENS_H
#define P11W_TEST_EAR_TOKENS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "P-256", "P-384", "P-521", or "RSA" (2048 bits). */
EVP_PKEY *et_keygen (const char *curve);
/* An EC JWK (as upstream's skey.json/pkey.json), private if it has d. */
EVP_PKEY *et_jwk_parse (const char *text, size_t len);
/* $P11W_SRCDIR/tests/data/ear/@name, NUL-terminated. */
char *et_read_data (const char *name, size_t *len);

char *et_b64url (const unsigned char *data, size_t len);

/*
 * header.payload.signature with @header_json as the protected header.
 * @alg picks the signature: "ES256"/"ES384"/"ES512" (r||s with @key),
 * "RS256"/"PS256" (@key RSA), "HS256" (HMAC keyed with @hmac_secret),
 * anything else an empty signature.
 */
char *et_jws (const char *header_json, const unsigned char *payload, size_t len, const char *alg,
              EVP_PKEY *key, const unsigned char *hmac_secret, size_t secret_len);

/* Raw r||s ECDSA signature of @msg with @key (SHA-256 for half 32, SHA-384
 * for 48, SHA-512 for 66) into @sig (2 * @half bytes). */
bool et_ecdsa_sign (EVP_PKEY *key, size_t half, const unsigned char *msg, size_t len,
                    unsigned char *sig);

/*
 * A COSE_Sign1 (tag 18, inside tag 61 if @cwt) with protected {1: @alg}
 * (ES256 -7 / ES384 -35 / ES512 -36), unprotected {4: @kid} if @kid, the
 * payload, and a signature by @key (for @alg's hash, whatever @key's
 * curve; a curve mismatch therefore gives a signature of the key's size).
 */
unsigned char *et_cose (EVP_PKEY *key, int64_t alg, const unsigned char *kid, size_t kid_len,
                        const unsigned char *payload, size_t len, bool cwt, size_t *out_len);

/*
 * The CBOR form of EAR JSON claims (Veraison or IETF member names):
 * eat_profile 265, iat 6, exp 4, nbf 5, eat_nonce 10 (base64url -> bstr),
 * verifier-id 1004 {0, 1}, submods 266 {name: {status 1000 (as its tier),
 * vector 1001 {0..7}, policy id(s) 1003}}; other members are kept with
 * text keys.
 */
unsigned char *et_json_to_cbor (const char *json, size_t *out_len);

#endif /* P11W_TEST_EAR_TOKENS_H */
