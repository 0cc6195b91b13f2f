/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the audit ledger's record parser
 * (ledger_parse_record, src/ledger-read.c) on arbitrary bytes, the head
 * file parser on the same bytes, and, for what parses as a checkpoint,
 * the signature check through cose_sign1_verify (libcbor sees the
 * checkpoint's bytes there).  Seeds: tests/fuzz/corpus/ledger-record,
 * one record (genesis, checkpoint, records with every field) per file.
 */
#include "config.h"

#include "ledger-impl.h"
#include "ledger.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static EVP_PKEY *key;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct ledger_entry e;
	struct ledger_head h;
	char scratch[LEDGER_RECORD_MAX + 32], err[256];
	unsigned char digest[LEDGER_HASH_LEN];
	int64_t alg;

	if (!key)
		key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	if (ledger_parse_record (data, size, &e, scratch, sizeof scratch, err, sizeof err) == 0) {
		/* Touch what the entry points at: it must lie inside. */
		volatile size_t sum = 0;
		const char *t[] = { e.event, e.slot, e.operation, e.verdict, e.reason,
		                    e.policy, e.format, e.anchor, e.user };
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
			sum += t[i] ? strlen (t[i]) : 0;
		for (size_t i = 0; i < e.key_id_len; i++)
			sum += e.key_id[i];
		for (size_t i = 0; i < e.key_label_len; i++)
			sum += e.key_label[i];
		sum += e.prev[31];
		if (e.checkpoint) {
			sum += e.kid[15] + e.sig[63];
			if (key && ledger_key_ids (key, digest, &alg, err, sizeof err) == 0)
				(void)ledger_checkpoint_verify (data, size, key, e.kid, e.alg, err, sizeof err);
		}
		(void)sum;
	}
	(void)ledger_head_parse (data, size, &h, err, sizeof err);
	return 0;
}
