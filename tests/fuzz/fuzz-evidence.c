/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: evidence_appraise (src/evidence.c), the dispatcher
 * every pulled and pushed piece of evidence goes through, and in
 * particular the tpm2-quote JSON envelope parser in front of the quote
 * verifier.
 *
 * Input: format u8 (mod 3: tpm2-quote, eat, ear), flags u8 (bit 0: no
 * nonce, as the admin tool without --nonce), then the evidence bytes.
 * Anchors: the Azure vTPM AK (tpm2-quote; tests/data/tpm/ak.pem, so the
 * seeds from that quote verify), and one P-256 key each for eat and ear.
 * The nonce is "challenge", the quote's.
 */
#include "config.h"

#include "anchors.h"
#include "evidence.h"

#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char azure_ak_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqR7LqAABDczZDIJxh4Yu\n"
	"OOp/0EiqZ0TvLsy8ZoLd3OMHs+1mLF4rNkW4d5vHgF5UwOHcLIMWnrjHr5cPop/p\n"
	"vnapqYvv1hQVBwhfOV4EedT27Fp2N2Jrj54JVc500a5s8ogiOTTm3bJ86VCoKGn3\n"
	"Ou2WMPWGYbIOTInVfJYsASUXeihOBO6r/DFDjzNP+XOW/YinXf7Xj/Gbcp0Pngwz\n"
	"8OHqnQrb9cyMe+sSbcUVdHoaj3CcAmjGvvhpyIzKxCjHg/LqUBmVx5xtKfZSreee\n"
	"rQvOsoDRKcx2/S+oDt6eP1jsXFldIpqbSM34qA3gBkve6xy1jVEUrclNgxFtMI5P\n"
	"DQIDAQAB\n"
	"-----END PUBLIC KEY-----\n";

static struct conf_anchor confs[3];
static struct anchor anchors[3];
static struct anchor_set set;

static bool
init (void)
{
	static const char *const formats[3] = { "tpm2-quote", "eat", "ear" };
	BIO *bio;
	if (set.n)
		return true;
	bio = BIO_new_mem_buf (azure_ak_pem, -1);
	if (!bio)
		return false;
	anchors[0].pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
	BIO_free (bio);
	anchors[1].pkey = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	anchors[2].pkey = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	for (int i = 0; i < 3; i++) {
		if (!anchors[i].pkey || !anchor_fingerprint (anchors[i].pkey, anchors[i].fingerprint))
			return false;
		snprintf (confs[i].name, sizeof confs[i].name, "fuzz-%d", i);
		confs[i].format = (char *)formats[i];
		anchors[i].conf = &confs[i];
	}
	set.a = anchors;
	set.n = 3;
	return true;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	static const char *const formats[3] = { "tpm2-quote", "eat", "ear" };
	static const unsigned char nonce[] = "challenge";
	struct appraisal a;
	char err[512];

	if (size < 2 || !init ())
		return 0;
	if (evidence_appraise (&set, formats[data[0] % 3], data + 2, size - 2,
	                       (data[1] & 1) ? NULL : nonce, sizeof nonce - 1, 1700000000, 60, &a,
	                       err, sizeof err) == 0) {
		/* What the gate reads of an accepted appraisal. */
		struct evidence_claims ev;
		appraisal_as_evidence (&a, &ev);
		if (!ev.claims || !ev.format[0] || !ev.anchor[0])
			abort ();
		appraisal_clear (&a);
	} else if (!err[0]) {
		abort (); /* every refusal says why */
	}
	return 0;
}
