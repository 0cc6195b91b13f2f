/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11-warden public header: the constants an application may need when it
 * talks to p11-warden through standard PKCS#11 calls.
 *
 * Include it after a PKCS#11 header (p11-kit's <p11-kit/pkcs11.h>, or the
 * OASIS headers).
 */
#ifndef P11_WARDEN_H
#define P11_WARDEN_H

/*
 * The one return code of a denial.  Every release path of a gated key
 * (decryption in all its forms, unwrap, derive, wrap of the key, raw RSA,
 * reading secret attributes, digest of the key) returns it when the gate
 * refuses; the reason is in the log.  The session stays usable.
 *
 * PKCS#11 3.0, section 5.1.6: CKR_FUNCTION_REJECTED "the signature request
 * is rejected by the user"; it is the only standard code whose meaning is
 * "refused by policy outside the token's mechanism rules", and it is not
 * returned by SoftHSM or the usual backends for any other reason, so an
 * application can tell a denial from every other failure.
 */
#define P11W_CKR_DENIED CKR_FUNCTION_REJECTED

/*
 * Vendor-defined ranges.  All p11-warden constants live in
 * CKx_VENDOR_DEFINED | P11W_VENDOR_TAG | n, so they never collide with
 * another vendor that follows the same convention.
 */
#define P11W_VENDOR_TAG 0x50573000UL /* "PW0" */

/*
 * Pushed evidence (p11-warden-policy(5), "PUSHED EVIDENCE").  For
 * applications that gather their own evidence, and for clients reaching
 * the module through p11-kit's RPC, with standard calls only:
 *
 * 1. C_CreateObject with { CKA_CLASS = CKO_P11W_CHALLENGE } returns a
 *    session object whose CKA_VALUE is a fresh 32-byte nonce.  A session
 *    has one nonce at a time: a new challenge replaces the last.
 * 2. The application has its evidence made over that nonce (a TPM quote's
 *    qualifying data, an EAT or EAR eat_nonce).
 * 3. C_CreateObject with { CKA_CLASS = CKO_P11W_EVIDENCE,
 *    CKA_P11W_FORMAT = "tpm2-quote" | "eat" | "ear", CKA_VALUE = the
 *    evidence bytes, optionally CKA_P11W_POLICY = a policy name } appraises
 *    the evidence at once and returns the handle of a verdict object
 *    (CKO_P11W_VERDICT).  Its CKA_P11W_STATUS (CK_ULONG) is
 *    P11W_VERDICT_PASS or P11W_VERDICT_FAIL, CKA_P11W_REASON (UTF-8) says
 *    why, CKA_P11W_EXPIRES (CK_ULONG, seconds since the epoch; 0 on a
 *    failure) when the pass lapses, CKA_P11W_POLICY the policy it was
 *    judged against (the named one, else the slot's default), and
 *    CKA_P11W_CLAIMS (UTF-8, one "name=value" per line) what the verifier
 *    found.  A failed appraisal is a verdict too (status FAIL, with the
 *    reason); C_CreateObject itself fails only for a malformed template.
 * 4. Until it expires, the session's gated operations under that policy
 *    pass.  Evidence pieces accumulate in the session (the newest per
 *    format), so a policy that wants a TPM quote and an EAR gets both.
 *
 * A nonce is good for one piece of evidence per format: pushing the same
 * evidence twice (or another over a used nonce) fails.  Verdicts and
 * nonces end with the session, at C_Finalize, after fork, and when the
 * policy changes.  The objects cannot be copied, changed or found; they
 * can be read and destroyed.  Every attribute is flat (no arrays or
 * nested templates), so p11-kit's RPC carries them.
 */
#define CKO_P11W_CHALLENGE (CKO_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x1UL)
#define CKO_P11W_EVIDENCE (CKO_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x2UL)
#define CKO_P11W_VERDICT (CKO_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x3UL)

#define CKA_P11W_FORMAT (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x1UL)
#define CKA_P11W_POLICY (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x2UL)
#define CKA_P11W_STATUS (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x3UL)
#define CKA_P11W_REASON (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x4UL)
#define CKA_P11W_EXPIRES (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x5UL)
#define CKA_P11W_CLAIMS (CKA_VENDOR_DEFINED | P11W_VENDOR_TAG | 0x6UL)

#define P11W_VERDICT_FAIL 0UL
#define P11W_VERDICT_PASS 1UL

/* Manufacturer id reported in CK_INFO and CK_TOKEN_INFO. */
#define P11W_MANUFACTURER "p11-warden"

#endif /* P11_WARDEN_H */
