/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the TPM 2.0 quote verifier (verify_tpm_quote).
 *
 * Input: flags u8, attest_len u16 (big-endian), attest, sig_len u16, sig,
 * then PCR values as records {bank u16, index u8, len u8, len bytes}.
 * Flags bit 0: sign the attest here with a P-256 key generated at start
 * (a marshalled ECDSA TPMT_SIGNATURE), so that mutations reach the checks
 * after the signature; otherwise sig is checked under the Azure set B AK,
 * marshalled if bit 1 is set, else a raw signature with the scheme of bits
 * 2-3 (RSASSA, RSAPSS, ECDSA).  The nonce is "challenge".
 */
#include "config.h"

#include "claims.h"
#include "verify-tpm.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* shared/testdata/tpm/ak.pem (set B, Azure vTPM AK, test data only). */
static const char azure_ak_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqR7LqAABDczZDIJxh4Yu\n"
	"OOp/0EiqZ0TvLsy8ZoLd3OMHs+1mLF4rNkW4d5vHgF5UwOHcLIMWnrjHr5cPop/p\n"
	"vnapqYvv1hQVBwhfOV4EedT27Fp2N2Jrj54JVc500a5s8ogiOTTm3bJ86VCoKGn3\n"
	"Ou2WMPWGYbIOTInVfJYsASUXeihOBO6r/DFDjzNP+XOW/YinXf7Xj/Gbcp0Pngwz\n"
	"8OHqnQrb9cyMe+sSbcUVdHoaj3CcAmjGvvhpyIzKxCjHg/LqUBmVx5xtKfZSreee\n"
	"rQvOsoDRKcx2/S+oDt6eP1jsXFldIpqbSM34qA3gBkve6xy1jVEUrclNgxFtMI5P\n"
	"DQIDAQAB\n"
	"-----END PUBLIC KEY-----\n"
	;

static EVP_PKEY *azure_ak, *self_key;

static bool
init (void)
{
	BIO *bio;
	if (azure_ak && self_key)
		return true;
	bio = BIO_new_mem_buf (azure_ak_pem, -1);
	if (!bio)
		return false;
	azure_ak = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
	BIO_free (bio);
	self_key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	return azure_ak && self_key;
}

/* A marshalled ECDSA TPMT_SIGNATURE over @msg by self_key. */
static size_t
self_sign (const uint8_t *msg, size_t len, uint8_t *out, size_t outlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t der_len = sizeof der, off = 0;
	ECDSA_SIG *es = NULL;
	TPMT_SIGNATURE ts;

	memset (&ts, 0, sizeof ts);
	if (!ctx || EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, self_key) != 1 ||
	    EVP_DigestSign (ctx, der, &der_len, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG (NULL, &p, (long)der_len);
	if (!es)
		goto out;
	ts.sigAlg = TPM2_ALG_ECDSA;
	ts.signature.ecdsa.hash = TPM2_ALG_SHA256;
	ts.signature.ecdsa.signatureR.size = 32;
	ts.signature.ecdsa.signatureS.size = 32;
	if (BN_bn2binpad (ECDSA_SIG_get0_r (es), ts.signature.ecdsa.signatureR.buffer, 32) != 32 ||
	    BN_bn2binpad (ECDSA_SIG_get0_s (es), ts.signature.ecdsa.signatureS.buffer, 32) != 32 ||
	    Tss2_MU_TPMT_SIGNATURE_Marshal (&ts, out, outlen, &off) != TSS2_RC_SUCCESS)
		off = 0;
out:
	ECDSA_SIG_free (es);
	EVP_MD_CTX_free (ctx);
	return off;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	static const uint16_t allowed[] = { VERIFY_TPM_ALG_SHA1, VERIFY_TPM_ALG_SHA256,
		                            VERIFY_TPM_ALG_SHA384, VERIFY_TPM_ALG_SHA512 };
	static const uint16_t schemes[] = { VERIFY_TPM_ALG_RSASSA, VERIFY_TPM_ALG_RSAPSS,
		                            VERIFY_TPM_ALG_ECDSA, VERIFY_TPM_ALG_RSASSA };
	struct verify_tpm_pcr pcrs[VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX + 1];
	struct verify_tpm_input in;
	struct claim_set *set;
	uint8_t sigbuf[256];
	char err[256];
	size_t pos = 0, n_pcrs = 0, alen, slen;
	int flags, rv;

	if (size < 5 || size > 16384 || !init ())
		return 0;
	flags = data[0];
	alen = (size_t)data[1] << 8 | data[2];
	pos = 3;
	if (alen > size - pos - 2)
		return 0;
	memset (&in, 0, sizeof in);
	in.attest = data + pos;
	in.attest_len = alen;
	pos += alen;
	slen = (size_t)data[pos] << 8 | data[pos + 1];
	pos += 2;
	if (slen > size - pos)
		return 0;
	in.sig = data + pos;
	in.sig_len = slen;
	pos += slen;
	while (size - pos >= 4 && n_pcrs < sizeof pcrs / sizeof pcrs[0]) {
		size_t len = data[pos + 3];
		if (len > size - pos - 4)
			break;
		pcrs[n_pcrs++] = (struct verify_tpm_pcr){ (uint16_t)(data[pos] << 8 | data[pos + 1]),
			                                  data[pos + 2], data + pos + 4, len };
		pos += 4 + len;
	}
	in.ak = azure_ak;
	in.sig_marshalled = flags & 2;
	in.raw_scheme = schemes[(flags >> 2) & 3];
	in.raw_hash = VERIFY_TPM_ALG_SHA256;
	if (flags & 1) {
		slen = self_sign (in.attest, in.attest_len, sigbuf, sizeof sigbuf);
		if (!slen)
			return 0;
		in.sig = sigbuf;
		in.sig_len = slen;
		in.sig_marshalled = true;
		in.ak = self_key;
	}
	in.anchor = "fuzz";
	in.nonce = (const unsigned char *)"challenge";
	in.nonce_len = 9;
	in.pcrs = pcrs;
	in.n_pcrs = n_pcrs;
	in.allowed_hashes = allowed;
	in.n_allowed_hashes = 4;

	set = claim_set_new ();
	if (!set)
		return 0;
	rv = verify_tpm_quote (&in, set, err, sizeof err);
	/* Success fills one claim per PCR and the fixed ones (the firmware
	 * version may be left out); failure adds nothing. */
	if (rv == VERIFY_TPM_OK) {
		size_t c = claim_set_count (set);
		if ((c != n_pcrs + 7 && c != n_pcrs + 6) || !claim_set_find (set, "evidence.format") ||
		    in.attest_len > VERIFY_TPM_ATTEST_MAX)
			abort ();
	} else if (claim_set_count (set) != 0 || !err[0] || rv > 0 || rv < VERIFY_TPM_ERR_CRYPTO) {
		abort ();
	}
	claim_set_free (set);
	return 0;
}
