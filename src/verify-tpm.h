/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM 2.0 quote verification (FORMATS.md section 1): a TPMS_ATTEST of
 * type quote, signed by a pinned attestation key, carrying the caller's
 * fresh nonce and the digest of the PCR values the caller presents.  On
 * success the checked values become claims (tpm.*, evidence.*); nothing
 * in a claim set was taken from bytes the AK did not sign, except the PCR
 * values themselves, which are bound through pcrDigest.
 *
 * Standalone: it depends on OpenSSL, tpm2-tss's libtss2-mu and claims.c
 * only, and holds no state, so calls may run in parallel.
 */
#ifndef P11W_VERIFY_TPM_H
#define P11W_VERIFY_TPM_H

#include "claims.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Input caps: a real quote is 100-200 bytes and an RSA-4096 signature 518
 * marshalled, so anything larger is not a quote. */
#define VERIFY_TPM_ATTEST_MAX 1024
#define VERIFY_TPM_SIG_MAX 1024
#define VERIFY_TPM_BANKS_MAX 4    /* banks in a selection */
#define VERIFY_TPM_PCRS_MAX 24    /* PCRs in one bank (indices 0..23) */
#define VERIFY_TPM_NONCE_MAX 64   /* TPM2B_DATA holds at most one TPMU_HA */

/* TPM_ALG_ID values, as they appear on the wire. */
#define VERIFY_TPM_ALG_SHA1 0x0004
#define VERIFY_TPM_ALG_SHA256 0x000B
#define VERIFY_TPM_ALG_SHA384 0x000C
#define VERIFY_TPM_ALG_SHA512 0x000D
#define VERIFY_TPM_ALG_RSASSA 0x0014
#define VERIFY_TPM_ALG_RSAPSS 0x0016
#define VERIFY_TPM_ALG_ECDSA 0x0018

enum verify_tpm_err {
	VERIFY_TPM_OK = 0,
	VERIFY_TPM_ERR_ARGS = -1,            /* missing input, empty nonce, ... */
	VERIFY_TPM_ERR_ATTEST_SIZE = -2,     /* attest empty or over the cap */
	VERIFY_TPM_ERR_SIG_SIZE = -3,        /* signature empty or over the cap */
	VERIFY_TPM_ERR_PCR_COUNT = -4,       /* too many PCRs presented or selected */
	VERIFY_TPM_ERR_ATTEST_PARSE = -5,    /* TPMS_ATTEST does not unmarshal */
	VERIFY_TPM_ERR_ATTEST_TRAILING = -6, /* bytes after the TPMS_ATTEST */
	VERIFY_TPM_ERR_MAGIC = -7,           /* magic != TPM_GENERATED_VALUE */
	VERIFY_TPM_ERR_TYPE = -8,            /* type != TPM_ST_ATTEST_QUOTE */
	VERIFY_TPM_ERR_SIG_PARSE = -9,       /* TPMT_SIGNATURE does not unmarshal */
	VERIFY_TPM_ERR_SIG_TRAILING = -10,   /* bytes after the TPMT_SIGNATURE */
	VERIFY_TPM_ERR_SIG_SCHEME = -11,     /* scheme unknown or not for the AK's key type */
	VERIFY_TPM_ERR_HASH_NOT_ALLOWED = -12, /* signature hash not in the allowed list */
	VERIFY_TPM_ERR_SIGNATURE = -13,      /* signature does not verify under the AK */
	VERIFY_TPM_ERR_NONCE = -14,          /* extraData != the expected nonce */
	VERIFY_TPM_ERR_PCR_BANK = -15,       /* unknown bank, or a bank selected twice */
	VERIFY_TPM_ERR_PCR_VALUE = -16,      /* a presented value of the wrong length,
	                                      * or presented twice */
	VERIFY_TPM_ERR_PCR_SELECTION = -17,  /* selection != the PCRs presented */
	VERIFY_TPM_ERR_PCR_DIGEST = -18,     /* digest of the values != pcrDigest */
	VERIFY_TPM_ERR_CLOCK_UNSAFE = -19,   /* clockInfo.safe != 1 */
	VERIFY_TPM_ERR_NO_MEMORY = -20,
	VERIFY_TPM_ERR_CLAIMS = -21,         /* the claim set refused a claim */
	VERIFY_TPM_ERR_CRYPTO = -22,         /* OpenSSL failed (not a bad signature) */
};

/* One PCR value the caller presents (from tpm2_pcrread or an event log
 * replay); @digest is @len bytes, the bank's digest size. */
struct verify_tpm_pcr {
	uint16_t bank;               /* VERIFY_TPM_ALG_SHA* */
	unsigned int index;          /* 0..23 */
	const unsigned char *digest;
	size_t len;
};

struct verify_tpm_input {
	const unsigned char *attest; /* raw TPMS_ATTEST (tpm2_quote -m) */
	size_t attest_len;
	const unsigned char *sig;
	size_t sig_len;
	/* true: a marshalled TPMT_SIGNATURE (tpm2_quote -s, -f tss).
	 * false: a raw signature (-f plain: PKCS#1 v1.5 or PSS bytes for RSA,
	 * DER for ECDSA) whose scheme and hash are in raw_scheme/raw_hash,
	 * since nothing in the bytes says so. */
	bool sig_marshalled;
	uint16_t raw_scheme;         /* VERIFY_TPM_ALG_RSASSA/RSAPSS/ECDSA */
	uint16_t raw_hash;           /* VERIFY_TPM_ALG_SHA* */
	EVP_PKEY *ak;                /* the enrolled AK public key */
	const char *anchor;          /* its name, for evidence.anchor */
	const unsigned char *ak_fingerprint; /* SHA-256 of its SubjectPublicKeyInfo if
	                                      * known (32 bytes), else NULL: computed */
	const unsigned char *nonce;  /* the fresh challenge, 1..64 bytes */
	size_t nonce_len;
	const struct verify_tpm_pcr *pcrs;
	size_t n_pcrs;
	const uint16_t *allowed_hashes; /* signature hashes the policy allows */
	size_t n_allowed_hashes;
};

/*
 * Verify @in and, on success, add its claims to @out (which should be
 * empty: a claim already there makes the call fail with
 * VERIFY_TPM_ERR_CLAIMS, and claims added before that stay).  Returns
 * VERIFY_TPM_OK or a negative enum verify_tpm_err; @err (if @errlen > 0)
 * always receives a NUL-terminated message with the details.
 */
int verify_tpm_quote (const struct verify_tpm_input *in, struct claim_set *out, char *err,
                      size_t errlen);

const char *verify_tpm_strerror (int rv);

#endif /* P11W_VERIFY_TPM_H */
