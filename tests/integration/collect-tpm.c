/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collect-tpm: run the tpm2-quote collector (src/collect-tpm.c) against a
 * TPM and check what it returns with the quote verifier (src/verify-tpm.c),
 * for test-collect-tpm.sh.
 *
 *   collect-tpm --handle 0x81010002 --pcrs sha256:0,1,16 [--tcti CONF]
 *               [--ak PEM] [--hash sha256] [--runs N] [--threads N] [--dump FILE]
 *
 * Each run uses a fresh random 32-byte nonce.  With --ak the envelope is
 * decoded here (json-c) and verified against that public key and the
 * nonce; the claims of the last run are printed as name=value.  Without
 * --ak only the format and the envelope's size are printed.  --dump writes
 * the last envelope to FILE.  Timing goes
 * to stdout as "# time ..." lines.
 *
 * Exit status: 0 all runs collected (and verified); 1 a run failed, with
 * "error: STRERROR: DETAILS" on stdout (collector errors and verifier
 * errors both, the latter prefixed "verify"); 2 usage or setup error.
 */
#include "config.h"

#include "claims.h"
#include "collector.h"
#include "verify-tpm.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 10000

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

static void
usage (void)
{
	fprintf (stderr, "usage: collect-tpm --handle 0x81xxxxxx --pcrs SPEC [--tcti CONF] [--ak PEM]\n"
	                 "       [--hash sha256] [--runs N] [--threads N] [--dump FILE]\n");
	exit (2);
}

static int
hexval (int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* the envelope is lower-case: upper case is a defect */
}

/* Lower-case hex -> bytes; NULL if not exactly that. */
static unsigned char *
unhex (const char *s, size_t *len)
{
	size_t n = strlen (s);
	unsigned char *out;

	if (n == 0 || n % 2)
		return NULL;
	out = malloc (n / 2);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval ((unsigned char)s[2 * i]), lo = hexval ((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free (out);
			return NULL;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
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

/* Decode the envelope and verify it; claims into @set.  Returns 0, or 1
 * with the message in @msg. */
static int
verify (const struct collected *got, const unsigned char *nonce, size_t nonce_len, EVP_PKEY *ak,
        uint16_t hash, struct claim_set *set, char *msg, size_t msglen)
{
	struct verify_tpm_input in;
	struct verify_tpm_pcr pcrs[VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX];
	unsigned char *owned[VERIFY_TPM_BANKS_MAX * VERIFY_TPM_PCRS_MAX + 2];
	size_t n_owned = 0, n_pcrs = 0;
	json_tokener *tok;
	json_object *root = NULL, *o;
	char err[512] = "";
	int rv = 1;

	memset (&in, 0, sizeof in);
	if (strcmp (got->format, "tpm2-quote") != 0) {
		snprintf (msg, msglen, "decode: format %s", got->format);
		return 1;
	}
	tok = json_tokener_new ();
	if (!tok)
		return 1;
	root = json_tokener_parse_ex (tok, (const char *)got->data, (int)got->len);
	if (!root || json_tokener_get_error (tok) != json_tokener_success ||
	    json_tokener_get_parse_end (tok) != got->len) {
		snprintf (msg, msglen, "decode: the envelope is not one JSON value");
		goto out;
	}
	if (json_object_object_length (root) != 3) {
		snprintf (msg, msglen, "decode: the envelope has %d members, not 3",
		          json_object_object_length (root));
		goto out;
	}
	if (!json_object_object_get_ex (root, "attest", &o) || !json_object_is_type (o, json_type_string) ||
	    !(owned[n_owned] = unhex (json_object_get_string (o), &in.attest_len))) {
		snprintf (msg, msglen, "decode: attest missing or not lower-case hex");
		goto out;
	}
	in.attest = owned[n_owned++];
	if (!json_object_object_get_ex (root, "signature", &o) ||
	    !json_object_is_type (o, json_type_string) ||
	    !(owned[n_owned] = unhex (json_object_get_string (o), &in.sig_len))) {
		snprintf (msg, msglen, "decode: signature missing or not lower-case hex");
		goto out;
	}
	in.sig = owned[n_owned++];
	if (!json_object_object_get_ex (root, "pcrs", &o) || !json_object_is_type (o, json_type_object)) {
		snprintf (msg, msglen, "decode: pcrs missing");
		goto out;
	}
	json_object_object_foreach (o, bank, values)
	{
		size_t bi;
		for (bi = 0; bi < sizeof hash_names / sizeof hash_names[0]; bi++) {
			if (strcmp (bank, hash_names[bi].name) == 0)
				break;
		}
		if (bi == sizeof hash_names / sizeof hash_names[0] ||
		    !json_object_is_type (values, json_type_object)) {
			snprintf (msg, msglen, "decode: bank %s", bank);
			goto out;
		}
		json_object_object_foreach (values, idx, val)
		{
			char *end;
			unsigned long i = strtoul (idx, &end, 10);
			size_t len;
			if (*end || end == idx || i > 23 || n_pcrs == sizeof pcrs / sizeof pcrs[0] ||
			    !json_object_is_type (val, json_type_string) ||
			    !(owned[n_owned] = unhex (json_object_get_string (val), &len)) ||
			    len != hash_names[bi].len) {
				snprintf (msg, msglen, "decode: PCR %s:%s", bank, idx);
				goto out;
			}
			pcrs[n_pcrs++] = (struct verify_tpm_pcr){ .bank = hash_names[bi].alg,
				                                  .index = (unsigned)i,
				                                  .digest = owned[n_owned++],
				                                  .len = len };
		}
	}
	in.sig_marshalled = true;
	in.ak = ak;
	in.anchor = "ak";
	in.nonce = nonce;
	in.nonce_len = nonce_len;
	in.pcrs = pcrs;
	in.n_pcrs = n_pcrs;
	in.allowed_hashes = &hash;
	in.n_allowed_hashes = 1;
	rv = verify_tpm_quote (&in, set, err, sizeof err);
	if (rv != VERIFY_TPM_OK)
		snprintf (msg, msglen, "verify: %s: %s", verify_tpm_strerror (rv), err);
	rv = rv == VERIFY_TPM_OK ? 0 : 1;
out:
	while (n_owned > 0)
		free (owned[--n_owned]);
	json_object_put (root);
	json_tokener_free (tok);
	return rv;
}

struct job {
	struct collector *c;
	EVP_PKEY *ak;
	uint16_t hash;
	unsigned runs;
	double *ms;                  /* per run */
	struct claim_set *last;      /* claims of the last run, when verified */
	const char *dump;            /* write the last envelope here */
	char msg[1024];
	int failed;
};

static double
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *
job_main (void *p)
{
	struct job *j = p;

	for (unsigned r = 0; r < j->runs && !j->failed; r++) {
		unsigned char nonce[32];
		struct collected got;
		char err[512];
		double t0;
		int rv;

		if (RAND_bytes (nonce, sizeof nonce) != 1) {
			snprintf (j->msg, sizeof j->msg, "setup: RAND_bytes");
			j->failed = 2;
			break;
		}
		t0 = now_ms ();
		rv = collector_run (j->c, nonce, sizeof nonce, &got, err, sizeof err);
		j->ms[r] = now_ms () - t0;
		if (rv != COLLECTOR_OK) {
			snprintf (j->msg, sizeof j->msg, "%s: %s", collector_strerror (rv), err);
			j->failed = 1;
			break;
		}
		if (j->ak) {
			struct claim_set *set = claim_set_new ();
			if (!set || verify (&got, nonce, sizeof nonce, j->ak, j->hash, set, j->msg,
			                    sizeof j->msg) != 0) {
				claim_set_free (set);
				j->failed = 1;
			} else {
				claim_set_free (j->last);
				j->last = set;
			}
		} else if (r + 1 == j->runs) {
			printf ("format=%s\nbytes=%zu\n", got.format, got.len);
		}
		if (j->dump && r + 1 == j->runs) {
			FILE *f = fopen (j->dump, "wb");
			if (!f || fwrite (got.data, 1, got.len, f) != got.len || fclose (f) != 0) {
				snprintf (j->msg, sizeof j->msg, "setup: cannot write %s", j->dump);
				j->failed = 2;
			}
		}
		collected_clear (&got);
	}
	return NULL;
}

static int
cmp_double (const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
	const char *tcti = NULL, *pcrs = NULL, *ak_path = NULL, *hash_name = "sha256", *dump = NULL;
	unsigned long handle = 0, runs = 1, threads = 1;
	struct job jobs[8];
	pthread_t th[8];
	struct collector *c;
	EVP_PKEY *ak = NULL;
	uint16_t hash = 0;
	double *all;
	size_t n_all = 0;
	char err[512];
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		char *end;
		if (i + 1 >= argc)
			usage ();
		const char *v = argv[++i];
		if (strcmp (o, "--tcti") == 0)
			tcti = v;
		else if (strcmp (o, "--handle") == 0)
			handle = strtoul (v, &end, 0);
		else if (strcmp (o, "--pcrs") == 0)
			pcrs = v;
		else if (strcmp (o, "--ak") == 0)
			ak_path = v;
		else if (strcmp (o, "--hash") == 0)
			hash_name = v;
		else if (strcmp (o, "--runs") == 0)
			runs = strtoul (v, &end, 10);
		else if (strcmp (o, "--threads") == 0)
			threads = strtoul (v, &end, 10);
		else if (strcmp (o, "--dump") == 0)
			dump = v;
		else
			usage ();
	}
	if (!pcrs || runs < 1 || runs > MAX_RUNS || threads < 1 || threads > 8 || handle > 0xffffffffUL)
		usage ();
	for (size_t i = 0; i < sizeof hash_names / sizeof hash_names[0]; i++) {
		if (strcmp (hash_name, hash_names[i].name) == 0)
			hash = hash_names[i].alg;
	}
	if (!hash)
		usage ();
	if (ak_path) {
		FILE *f = fopen (ak_path, "r");
		if (!f) {
			fprintf (stderr, "collect-tpm: %s: %s\n", ak_path, strerror (errno));
			return 2;
		}
		ak = PEM_read_PUBKEY (f, NULL, NULL, NULL);
		fclose (f);
		if (!ak) {
			fprintf (stderr, "collect-tpm: %s: not a PEM public key\n", ak_path);
			return 2;
		}
	}

	c = collector_tpm2_new ("tpm", tcti, (uint32_t)handle, pcrs, err, sizeof err);
	if (!c) {
		printf ("error: new: %s\n", err);
		EVP_PKEY_free (ak);
		return 1;
	}
	all = calloc (runs * threads, sizeof *all);
	if (!all)
		return 2;
	for (unsigned long t = 0; t < threads; t++) {
		jobs[t] = (struct job){ .c = c, .ak = ak, .hash = hash, .runs = (unsigned)runs,
			                .ms = all + t * runs, .dump = t == 0 ? dump : NULL };
		if (pthread_create (&th[t], NULL, job_main, &jobs[t]) != 0)
			return 2;
	}
	for (unsigned long t = 0; t < threads; t++) {
		pthread_join (th[t], NULL);
		if (jobs[t].failed && !rc) {
			printf ("error: %s\n", jobs[t].msg);
			rc = jobs[t].failed;
		}
	}
	if (!rc) {
		if (jobs[0].last) {
			for (size_t i = 0; i < claim_set_count (jobs[0].last); i++)
				print_claim (claim_set_at (jobs[0].last, i));
		}
		n_all = runs * threads;
		qsort (all, n_all, sizeof *all, cmp_double);
		printf ("# time per collector_run over %zu runs (%lu threads): min %.2f ms, "
		        "median %.2f ms, max %.2f ms\n", n_all, threads, all[0], all[n_all / 2],
		        all[n_all - 1]);
	}
	for (unsigned long t = 0; t < threads; t++)
		claim_set_free (jobs[t].last);
	free (all);
	collector_free (c);
	EVP_PKEY_free (ak);
	return rc;
}
