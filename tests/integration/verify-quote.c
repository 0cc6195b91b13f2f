/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify-quote: run verify_tpm_quote() on the files tpm2_quote writes, for
 * the end-to-end test against swtpm (test-tpm-quote.sh).
 *
 *   verify-quote --attest FILE --sig FILE [--sig-raw rsassa|rsapss|ecdsa]
 *                [--hash sha1|sha256|sha384|sha512] --ak PEM --nonce HEX
 *                --pcrs FILE --bank sha256 --select 0,1,16 [--anchor NAME]
 *
 * --attest is tpm2_quote -m; --sig is -s (a marshalled TPMT_SIGNATURE, or
 * with --sig-raw the -f plain bytes); --pcrs is -o with -F values (raw
 * digests concatenated in selection order).  --hash is the signature hash
 * the policy allows (and the hash of a raw signature); default sha256.
 *
 * On success every claim is printed as name=value (bytes in hex, integers
 * in decimal, booleans true/false, strings as they are) and the exit
 * status is 0; on a verification failure "error: STRERROR: DETAILS" goes
 * to stdout and the status is 1; on a usage or I/O error, status 2.
 */
#include "config.h"

#include "claims.h"
#include "verify-tpm.h"

#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage (void)
{
	fprintf (stderr, "usage: verify-quote --attest FILE --sig FILE [--sig-raw rsassa|rsapss|ecdsa]\n"
	                 "       [--hash sha256] --ak PEM --nonce HEX --pcrs FILE --bank sha256\n"
	                 "       --select 0,1,16 [--anchor NAME]\n");
	exit (2);
}

static unsigned char *
read_file (const char *path, size_t *len)
{
	FILE *f = fopen (path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf (stderr, "verify-quote: %s: %s\n", path, strerror (errno));
		exit (2);
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > (16u << 20)) {
				fprintf (stderr, "verify-quote: %s: too large\n", path);
				exit (2);
			}
			buf = realloc (buf, cap);
			if (!buf) {
				fprintf (stderr, "verify-quote: out of memory\n");
				exit (2);
			}
		}
		size_t r = fread (buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror (f)) {
		fprintf (stderr, "verify-quote: %s: read error\n", path);
		exit (2);
	}
	fclose (f);
	*len = n;
	return buf;
}

static int
hexval (int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char *
parse_hex (const char *s, size_t *len)
{
	size_t n = strlen (s);
	unsigned char *out;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n % 2) {
		fprintf (stderr, "verify-quote: odd-length hex\n");
		exit (2);
	}
	out = malloc (n / 2 + 1);
	if (!out)
		exit (2);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval ((unsigned char)s[2 * i]), lo = hexval ((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf (stderr, "verify-quote: bad hex\n");
			exit (2);
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

static const struct {
	const char *name;
	uint16_t alg;
	size_t len;
} hash_names[] = {
	{ "sha1", VERIFY_TPM_ALG_SHA1, 20 },
	{ "sha256", VERIFY_TPM_ALG_SHA256, 32 },
	{ "sha384", VERIFY_TPM_ALG_SHA384, 48 },
	{ "sha512", VERIFY_TPM_ALG_SHA512, 64 },
};

static uint16_t
hash_alg (const char *name, size_t *len)
{
	for (size_t i = 0; i < sizeof hash_names / sizeof hash_names[0]; i++) {
		if (strcmp (name, hash_names[i].name) == 0) {
			if (len)
				*len = hash_names[i].len;
			return hash_names[i].alg;
		}
	}
	fprintf (stderr, "verify-quote: unknown hash %s\n", name);
	exit (2);
}

static void
print_claim (const struct claim *c)
{
	printf ("%s=", c->name);
	switch (c->v.type) {
	case CLAIM_INT:
		printf ("%lld", (long long)c->v.i);
		break;
	case CLAIM_BOOL:
		printf ("%s", c->v.b ? "true" : "false");
		break;
	case CLAIM_STRING:
		fwrite (c->v.data, 1, c->v.len, stdout);
		break;
	case CLAIM_BYTES:
		for (size_t i = 0; i < c->v.len; i++)
			printf ("%02x", c->v.data[i]);
		break;
	default:
		printf ("?");
		break;
	}
	putchar ('\n');
}

int
main (int argc, char **argv)
{
	const char *attest_path = NULL, *sig_path = NULL, *sig_raw = NULL, *hash = "sha256";
	const char *ak_path = NULL, *nonce_hex = NULL, *pcrs_path = NULL, *bank = NULL;
	const char *select = NULL, *anchor = "ak";
	struct verify_tpm_input in;
	struct verify_tpm_pcr pcrs[VERIFY_TPM_PCRS_MAX];
	size_t n_pcrs = 0, digest_len = 0, pcrs_len = 0;
	unsigned char *pcr_bytes = NULL;
	uint16_t bank_alg, allowed[1];
	char err[512] = "";
	struct claim_set *set;
	FILE *f;
	EVP_PKEY *ak;
	int rv;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (i + 1 >= argc)
			usage ();
		const char *v = argv[++i];
		if (strcmp (o, "--attest") == 0)
			attest_path = v;
		else if (strcmp (o, "--sig") == 0)
			sig_path = v;
		else if (strcmp (o, "--sig-raw") == 0)
			sig_raw = v;
		else if (strcmp (o, "--hash") == 0)
			hash = v;
		else if (strcmp (o, "--ak") == 0)
			ak_path = v;
		else if (strcmp (o, "--nonce") == 0)
			nonce_hex = v;
		else if (strcmp (o, "--pcrs") == 0)
			pcrs_path = v;
		else if (strcmp (o, "--bank") == 0)
			bank = v;
		else if (strcmp (o, "--select") == 0)
			select = v;
		else if (strcmp (o, "--anchor") == 0)
			anchor = v;
		else
			usage ();
	}
	if (!attest_path || !sig_path || !ak_path || !nonce_hex || !pcrs_path || !bank || !select)
		usage ();

	memset (&in, 0, sizeof in);
	in.attest = read_file (attest_path, &in.attest_len);
	in.sig = read_file (sig_path, &in.sig_len);
	in.sig_marshalled = true;
	allowed[0] = hash_alg (hash, NULL);
	if (sig_raw) {
		in.sig_marshalled = false;
		in.raw_hash = allowed[0];
		if (strcmp (sig_raw, "rsassa") == 0)
			in.raw_scheme = VERIFY_TPM_ALG_RSASSA;
		else if (strcmp (sig_raw, "rsapss") == 0)
			in.raw_scheme = VERIFY_TPM_ALG_RSAPSS;
		else if (strcmp (sig_raw, "ecdsa") == 0)
			in.raw_scheme = VERIFY_TPM_ALG_ECDSA;
		else
			usage ();
	}
	in.allowed_hashes = allowed;
	in.n_allowed_hashes = 1;

	f = fopen (ak_path, "r");
	if (!f) {
		fprintf (stderr, "verify-quote: %s: %s\n", ak_path, strerror (errno));
		return 2;
	}
	ak = PEM_read_PUBKEY (f, NULL, NULL, NULL);
	fclose (f);
	if (!ak) {
		fprintf (stderr, "verify-quote: %s: not a PEM public key\n", ak_path);
		return 2;
	}
	in.ak = ak;
	in.anchor = anchor;
	in.nonce = parse_hex (nonce_hex, &in.nonce_len);

	/* The -F values file: one digest per selected PCR, in ascending order
	 * (the order tpm2_quote writes them), sliced as presented. */
	bank_alg = hash_alg (bank, &digest_len);
	pcr_bytes = read_file (pcrs_path, &pcrs_len);
	{
		char *sel = strdup (select), *save = NULL;
		size_t off = 0;
		if (!sel)
			return 2;
		for (char *t = strtok_r (sel, ",", &save); t; t = strtok_r (NULL, ",", &save)) {
			char *end;
			unsigned long idx = strtoul (t, &end, 10);
			if (*end || end == t || n_pcrs >= VERIFY_TPM_PCRS_MAX) {
				fprintf (stderr, "verify-quote: bad --select\n");
				return 2;
			}
			if (off + digest_len > pcrs_len) {
				fprintf (stderr, "verify-quote: %s: too short for the selection\n", pcrs_path);
				return 2;
			}
			pcrs[n_pcrs].bank = bank_alg;
			pcrs[n_pcrs].index = (unsigned int)idx;
			pcrs[n_pcrs].digest = pcr_bytes + off;
			pcrs[n_pcrs].len = digest_len;
			n_pcrs++;
			off += digest_len;
		}
		if (off != pcrs_len) {
			fprintf (stderr, "verify-quote: %s: %zu bytes, the selection needs %zu\n", pcrs_path,
			         pcrs_len, off);
			return 2;
		}
		free (sel);
	}
	in.pcrs = pcrs;
	in.n_pcrs = n_pcrs;

	set = claim_set_new ();
	if (!set)
		return 2;
	rv = verify_tpm_quote (&in, set, err, sizeof err);
	if (rv != VERIFY_TPM_OK) {
		printf ("error: %s: %s\n", verify_tpm_strerror (rv), err);
	} else {
		for (size_t i = 0; i < claim_set_count (set); i++)
			print_claim (claim_set_at (set, i));
	}
	claim_set_free (set);
	EVP_PKEY_free (ak);
	free ((void *)in.attest);
	free ((void *)in.sig);
	free ((void *)in.nonce);
	free (pcr_bytes);
	return rv == VERIFY_TPM_OK ? 0 : 1;
}
