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

/* Manufacturer id reported in CK_INFO and CK_TOKEN_INFO. */
#define P11W_MANUFACTURER "p11-warden"

#endif /* P11_WARDEN_H */
