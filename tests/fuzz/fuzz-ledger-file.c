/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the audit ledger's verifier (ledger_verify_file,
 * src/ledger-read.c) on arbitrary files: framing, the chain, the batch
 * attribution, checkpoints.  The input is written to a temporary file and
 * verified, without a head, under the fixed P-256 key below (which signed
 * the seeds in tests/fuzz/corpus/ledger-file, so that mutations reach the
 * checks past the signatures).  A test key, nothing else.
 */
#include "config.h"

#include "ledger.h"

#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiE+AjaFS4Vt0N5kp\n"
	"pLLzyMKqVKRwIRvZAfhe7daafiShRANCAATuvwdNInsTyZVY9EJ5osJJaUbRlVqq\n"
	"3Mer/0CFUlwu7B3TfX5JYw7g8H3u6w6ZvxW52L/0khjvcA/PI2MLt2yf\n"
	"-----END PRIVATE KEY-----\n";

static EVP_PKEY *key;
static char path[64];

static int
each (const struct ledger_entry *e, void *user)
{
	(void)user;
	return e->reason && !strcmp (e->reason, "stop") ? 1 : 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct ledger_verify_result r;
	FILE *f;

	if (!key) {
		BIO *b = BIO_new_mem_buf (key_pem, -1);
		key = b ? PEM_read_bio_PrivateKey (b, NULL, NULL, NULL) : NULL;
		BIO_free (b);
		snprintf (path, sizeof path, "/tmp/fuzz-ledger-file.%ld", (long)getpid ());
	}
	if (!key || size > 1024 * 1024)
		return 0;
	f = fopen (path, "wb");
	if (!f)
		return 0;
	if (size)
		fwrite (data, 1, size, f);
	fclose (f);
	(void)ledger_verify_file (path, key, NULL, true, each, NULL, &r);
	unlink (path);
	return 0;
}
