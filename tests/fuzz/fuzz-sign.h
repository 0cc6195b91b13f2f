/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz helper: wrap fuzzer-chosen bytes in a COSE_Sign1 (tag 18) that a
 * key generated at start really signed, so that mutations get past the
 * signature and reach what comes after it.  Encoded by hand with
 * libcbor's head encoders; the signer is OpenSSL.
 */
#ifndef P11W_FUZZ_SIGN_H
#define P11W_FUZZ_SIGN_H

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* bstr head + bytes at @out + *@o (room checked by the caller). */
static inline void
fz_bstr (unsigned char *out, size_t cap, size_t *o, const unsigned char *p, size_t n)
{
	*o += cbor_encode_bytestring_start (n, out + *o, cap - *o);
	if (n)
		memcpy (out + *o, p, n);
	*o += n;
}

/*
 * 18([prot, {}, payload, sig]) with sig by @key under COSE @alg (-7 P-256,
 * -8 Ed25519, -37 RSA-PSS) over the Sig_structure; the caller chooses
 * @prot, so it may name another alg.  malloc'd; NULL on failure.
 */
static inline unsigned char *
fz_sign1 (EVP_PKEY *key, int alg, const unsigned char *prot, size_t prot_len,
          const unsigned char *payload, size_t payload_len, size_t *len)
{
	size_t cap = 64 + prot_len + payload_len + 600, o = 0, siglen = 0;
	unsigned char *tbs = malloc (cap), *out = malloc (cap), sig[600];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = false;

	if (!tbs || !out || !ctx)
		goto done;
	o += cbor_encode_array_start (4, tbs + o, cap - o);
	o += cbor_encode_string_start (10, tbs + o, cap - o);
	memcpy (tbs + o, "Signature1", 10);
	o += 10;
	fz_bstr (tbs, cap, &o, prot, prot_len);
	fz_bstr (tbs, cap, &o, NULL, 0);
	fz_bstr (tbs, cap, &o, payload, payload_len);
	if (EVP_DigestSignInit (ctx, &pctx, alg == -8 ? NULL : EVP_sha256 (), NULL, key) != 1)
		goto done;
	if (alg == -37 && (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	                   EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto done;
	siglen = sizeof sig;
	if (EVP_DigestSign (ctx, sig, &siglen, tbs, o) != 1)
		goto done;
	if (alg == -7) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG (NULL, &p, (long)siglen);
		if (!es)
			goto done;
		if (BN_bn2binpad (ECDSA_SIG_get0_r (es), sig, 32) != 32 ||
		    BN_bn2binpad (ECDSA_SIG_get0_s (es), sig + 32, 32) != 32) {
			ECDSA_SIG_free (es);
			goto done;
		}
		ECDSA_SIG_free (es);
		siglen = 64;
	}
	o = 0;
	out[o++] = 0xd2;
	o += cbor_encode_array_start (4, out + o, cap - o);
	fz_bstr (out, cap, &o, prot, prot_len);
	out[o++] = 0xa0;
	fz_bstr (out, cap, &o, payload, payload_len);
	fz_bstr (out, cap, &o, sig, siglen);
	*len = o;
	ok = true;
done:
	EVP_MD_CTX_free (ctx);
	free (tbs);
	if (!ok) {
		free (out);
		out = NULL;
	}
	return out;
}

#endif /* P11W_FUZZ_SIGN_H */
