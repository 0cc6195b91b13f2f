/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11w-attest-bench: what attestation costs.
 *
 *  appraise-tpm   CPU time of one appraisal (evidence_appraise) of a TPM
 *                 2.0 quote signed by an RSA-2048 AK: the public Azure vTPM
 *                 quote of tests/data/tpm (24 PCRs), JSON envelope parsing
 *                 included.
 *  appraise-eat   the same for an ES256 EAT made here (COSE_Sign1 over a
 *                 CWT/EAT claims set with nonce, iat, profile, ueid).
 *  first-call     with P11W_MODULE and a p11-warden configuration whose
 *                 slot pulls from a TPM (run-bench.sh sets one up): the wall
 *                 time of the first gated RSA-2048 decryption of a fresh
 *                 module instance (collector, quote, appraisal, policy and
 *                 the decryption), then of the following ones (live verdict).
 *
 * Every result is checked: an appraisal that fails, or a decryption that
 * does not give the plaintext back, ends the run with exit status 1.
 */
#include "config.h"

#include "anchors.h"
#include "cose-build.h"
#include "evidence.h"

#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
cpu_s (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
wall_s (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
die (const char *what)
{
	fprintf (stderr, "p11w-attest-bench: %s\n", what);
	exit (1);
}

/* One anchor, held in a configuration of its own. */
static void
one_anchor (struct conf_anchor *ca, struct anchor_set *set, struct anchor *a, const char *format,
            EVP_PKEY *pkey)
{
	memset (ca, 0, sizeof *ca);
	snprintf (ca->name, sizeof ca->name, "bench");
	ca->format = (char *)format;
	a->conf = ca;
	a->pkey = pkey;
	set->a = a;
	set->n = 1;
}

/* Appraise @n times; the CPU microseconds per appraisal. */
static double
time_appraisal (const struct anchor_set *set, const char *format, const unsigned char *data,
                size_t len, const unsigned char *nonce, size_t nonce_len, time_t now, int n)
{
	char err[512];
	double t0;
	for (int i = 0; i < 50; i++) { /* warm-up, and the check */
		struct appraisal a;
		if (evidence_appraise (set, format, data, len, nonce, nonce_len, now, 60, &a, err,
		                       sizeof err) != 0) {
			fprintf (stderr, "p11w-attest-bench: %s appraisal failed: %s\n", format, err);
			exit (1);
		}
		appraisal_clear (&a);
	}
	t0 = cpu_s ();
	for (int i = 0; i < n; i++) {
		struct appraisal a;
		if (evidence_appraise (set, format, data, len, nonce, nonce_len, now, 60, &a, err,
		                       sizeof err) != 0)
			die ("appraisal failed during the run");
		appraisal_clear (&a);
	}
	return (cpu_s () - t0) / n * 1e6;
}

static void
bench_tpm (const char *srcdir, int n)
{
	char path[4096], err[512];
	unsigned char *data;
	size_t len = 0;
	FILE *f;
	EVP_PKEY *ak;
	struct conf_anchor ca;
	struct anchor a;
	struct anchor_set set;
	const unsigned char nonce[] = "challenge";
	/* The envelope: the public quote, with its raw signature's scheme. */
	static const char head[] = "{\"signature-scheme\": \"rsassa\", \"signature-hash\": \"sha256\", ";

	snprintf (path, sizeof path, "%s/tests/data/tpm/ak.pem", srcdir);
	ak = anchor_load_key (path, err, sizeof err);
	if (!ak)
		die (err);
	snprintf (path, sizeof path, "%s/tests/data/tpm/tpm-quote-v1.json", srcdir);
	f = fopen (path, "rb");
	if (!f)
		die ("cannot open tests/data/tpm/tpm-quote-v1.json");
	data = malloc (65536);
	memcpy (data, head, sizeof head - 1);
	len = sizeof head - 1;
	{
		size_t r = fread (data + len, 1, 65536 - len - 1, f);
		unsigned char *brace;
		fclose (f);
		brace = memchr (data + len, '{', r);
		if (!brace)
			die ("tpm-quote-v1.json is not an object");
		/* Drop the original opening brace. */
		memmove (brace, brace + 1, r - (size_t)(brace - (data + len)) - 1);
		len += r - 1;
	}
	one_anchor (&ca, &set, &a, "tpm2-quote", ak);
	printf ("appraise-tpm   RSA-2048 AK, 24 PCRs:  %7.1f us CPU per appraisal (target < 100)\n",
	        time_appraisal (&set, "tpm2-quote", data, len, nonce, sizeof nonce - 1, time (NULL), n));
	free (data);
	EVP_PKEY_free (ak);
}

/* A CWT/EAT claims set: eat_profile, iat, eat_nonce, ueid, dbgstat. */
static unsigned char *
eat_payload (const unsigned char *nonce, size_t nonce_len, int64_t iat, size_t *len)
{
	static const unsigned char ueid[] = { 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	cbor_item_t *m = cbor_new_definite_map (5);
	struct cbor_pair p[5] = {
		{ cbor_build_uint16 (265), cbor_build_string ("tag:example.com,2026:bench") },
		{ cbor_build_uint8 (6), cbor_build_uint64 ((uint64_t)iat) },
		{ cbor_build_uint8 (10), cbor_build_bytestring (nonce, nonce_len) },
		{ cbor_build_uint16 (256), cbor_build_bytestring (ueid, sizeof ueid) },
		{ cbor_build_uint16 (263), cbor_build_uint8 (2) },
	};
	unsigned char *out = NULL;
	size_t cap = 0;
	for (int i = 0; i < 5; i++) {
		if (!cbor_map_add (m, p[i]))
			die ("cbor_map_add");
		cbor_decref (&p[i].key);
		cbor_decref (&p[i].value);
	}
	*len = cbor_serialize_alloc (m, &out, &cap);
	cbor_decref (&m);
	return out;
}

static void
bench_eat (int n)
{
	unsigned char nonce[32], *payload, *token;
	size_t plen, tlen;
	EVP_PKEY *key = EVP_EC_gen ("P-256");
	struct build b;
	struct conf_anchor ca;
	struct anchor a;
	struct anchor_set set;
	time_t now = time (NULL);

	if (!key)
		die ("EVP_EC_gen");
	memset (nonce, 0x5a, sizeof nonce);
	payload = eat_payload (nonce, sizeof nonce, (int64_t)now, &plen);
	memset (&b, 0, sizeof b);
	b.key = key;
	b.alg = COSE_ALG_ES256;
	b.payload = payload;
	b.payload_len = plen;
	token = build_sign1 (&b, &tlen);
	if (!token)
		die ("cannot build the EAT");
	one_anchor (&ca, &set, &a, "eat", key);
	printf ("appraise-eat   ES256 EAT (%zu bytes):   %7.1f us CPU per appraisal (target < 150)\n",
	        tlen, time_appraisal (&set, "eat", token, tlen, nonce, sizeof nonce, now, n));
	free (token);
	free (payload);
	EVP_PKEY_free (key);
}

/* ------------------------------------------------------------ first call */

#define CK(call) \
	do { \
		CK_RV rv_ = (call); \
		if (rv_ != CKR_OK) { \
			fprintf (stderr, "p11w-attest-bench: %s failed: 0x%lx\n", #call, \
			         (unsigned long)rv_); \
			exit (1); \
		} \
	} while (0)

static void
bench_first_call (const char *module, const char *token_label, const char *pin, int n)
{
	void *dl = dlopen (module, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slots[16];
	CK_ULONG n_slots = 16;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 1, 0, 1 }, label[] = "bench-gated";
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pt[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof bits },
		{ CKA_PUBLIC_EXPONENT, e, sizeof e },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE kt[] = {
		{ CKA_LABEL, label, sizeof label - 1 },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SENSITIVE, &yes, sizeof yes },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_PRIVATE, &yes, sizeof yes },
	};
	CK_BYTE msg[32] = "p11-warden first gated call....", ct[256], out[256];
	CK_ULONG ct_len = sizeof ct, out_len;
	CK_TOKEN_INFO ti;
	bool found = false;
	double t0, first, rest;

	if (!dl)
		die (dlerror ());
	get = (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList");
	if (!get)
		die ("no C_GetFunctionList");
	CK (get (&fl));
	CK (fl->C_Initialize (NULL));
	CK (fl->C_GetSlotList (CK_TRUE, slots, &n_slots));
	for (CK_ULONG i = 0; i < n_slots && !found; i++) {
		CK (fl->C_GetTokenInfo (slots[i], &ti));
		found = !strncmp ((const char *)ti.label, token_label, strlen (token_label));
		if (found)
			slots[0] = slots[i];
	}
	if (!found)
		die ("token not found");
	CK (fl->C_OpenSession (slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
	CK (fl->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen (pin)));
	CK (fl->C_GenerateKeyPair (s, &gen, pt, 4, kt, 5, &pub, &priv));
	CK (fl->C_EncryptInit (s, &pkcs, pub));
	CK (fl->C_Encrypt (s, msg, sizeof msg, ct, &ct_len));

	t0 = wall_s ();
	CK (fl->C_DecryptInit (s, &pkcs, priv));
	out_len = sizeof out;
	CK (fl->C_Decrypt (s, ct, ct_len, out, &out_len));
	first = wall_s () - t0;
	if (out_len != sizeof msg || memcmp (out, msg, sizeof msg))
		die ("the first decryption gave something else back");
	t0 = wall_s ();
	for (int i = 0; i < n; i++) {
		CK (fl->C_DecryptInit (s, &pkcs, priv));
		out_len = sizeof out;
		CK (fl->C_Decrypt (s, ct, ct_len, out, &out_len));
	}
	rest = (wall_s () - t0) / n;
	if (out_len != sizeof msg || memcmp (out, msg, sizeof msg))
		die ("a decryption gave something else back");
	printf ("first-call     gated RSA-2048 decrypt, pull from the TPM: %6.2f ms wall (target < 15)\n",
	        first * 1e3);
	printf ("               then, with the live verdict:               %6.2f ms wall per decrypt\n",
	        rest * 1e3);
	(void)fl->C_Logout (s);
	(void)fl->C_CloseSession (s);
	(void)fl->C_Finalize (NULL);
}

int
main (int argc, char **argv)
{
	const char *srcdir = getenv ("P11W_SRCDIR");
	const char *module = getenv ("P11W_MODULE");
	const char *token = getenv ("P11W_BENCH_TOKEN");
	const char *pin = getenv ("P11W_BENCH_PIN");
	int n = argc > 1 ? atoi (argv[1]) : 2000;

	if (!srcdir)
		die ("P11W_SRCDIR must name the source tree (for tests/data/tpm)");
	if (n < 1)
		n = 2000;
	bench_tpm (srcdir, n);
	bench_eat (n);
	if (module && token && pin)
		bench_first_call (module, token, pin, 20);
	else
		printf ("first-call     skipped (P11W_MODULE, P11W_BENCH_TOKEN, P11W_BENCH_PIN unset)\n");
	return 0;
}
