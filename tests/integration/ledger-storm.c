/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit ledger under test-ledger-storm.sh:
 *
 *   ledger-storm write LEDGER KEY TAG COUNT
 *       append COUNT records (reason "TAG:i"), fsync=batch, small batches,
 *       a flusher thread; after every ledger_flush() that succeeds, print
 *       how many are durable ("durable N") so that the script knows what a
 *       kill -9 may not take away.
 *   ledger-storm check LEDGER KEY PROGRESS...
 *       verify the ledger; for each progress file (named TAG, holding
 *       "durable N" lines), records TAG:0 .. TAG:N-1 must all be there,
 *       and no record may be there twice.
 *   ledger-storm diskfull LEDGER KEY FILLER
 *       on a small file system with FILLER taking most of it: append until
 *       a write fails (ledger_append fails, ledger_healthy is false, the
 *       ledger still verifies), remove FILLER, and see it recover.
 */
#include "config.h"

#include "ledger.h"
#include "log.h"

#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
open_ledger (const char *path, const char *key, unsigned int batch_max)
{
	struct ledger_options o = { path, key, LEDGER_FSYNC_BATCH, 5, batch_max, true };
	char err[256];
	if (ledger_open (&o, err, sizeof err) != 0) {
		fprintf (stderr, "ledger_open: %s\n", err);
		return -1;
	}
	return 0;
}

static EVP_PKEY *
load_key (const char *path)
{
	FILE *f = fopen (path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose (f);
	if (!k)
		fprintf (stderr, "%s: no key\n", path);
	return k;
}

static int
do_write (const char *path, const char *key, const char *tag, long count)
{
	char reason[128];
	struct ledger_record r = { .event = "gated-allow", .slot = "storm", .operation = "unwrap",
	                           .verdict = "allow", .reason = reason };
	setvbuf (stdout, NULL, _IOLBF, 0);
	if (open_ledger (path, key, 8) != 0)
		return 1;
	for (long i = 0; i < count; i++) {
		snprintf (reason, sizeof reason, "%s:%ld", tag, i);
		if (ledger_append (&r) != 0) {
			fprintf (stderr, "ledger_append failed at %ld\n", i);
			return 1;
		}
		if (i % 16 == 15) {
			if (ledger_flush () != 0) {
				fprintf (stderr, "ledger_flush failed at %ld\n", i);
				return 1;
			}
			printf ("durable %ld\n", i + 1);
		}
	}
	ledger_close ();
	printf ("durable %ld\n", count);
	return 0;
}

/* ---------------------------------------------------------------- check */

struct tagset {
	char name[64];
	unsigned char *seen;
	long cap, durable, present;
	bool dup;
};

struct check {
	struct tagset *t;
	size_t n;
	uint64_t records;
};

static int
each (const struct ledger_entry *e, void *user)
{
	struct check *c = user;
	const char *colon;
	char *end;
	long i;
	if (e->checkpoint || !e->reason || !(colon = strrchr (e->reason, ':')))
		return 0;
	c->records++;
	i = strtol (colon + 1, &end, 10);
	for (size_t k = 0; k < c->n; k++) {
		struct tagset *t = &c->t[k];
		if (strlen (t->name) != (size_t)(colon - e->reason) ||
		    strncmp (t->name, e->reason, (size_t)(colon - e->reason)))
			continue;
		if (*end || i < 0 || i >= t->cap)
			return 0;
		if (t->seen[i])
			t->dup = true;
		t->seen[i] = 1;
		t->present++;
	}
	return 0;
}

static int
do_check (const char *path, const char *key, int n, char **progress)
{
	struct ledger_verify_result r;
	struct check c = { calloc ((size_t)n, sizeof (struct tagset)), (size_t)n, 0 };
	EVP_PKEY *k = load_key (key);
	int bad = 0;
	enum ledger_verify_status st;

	if (!k || !c.t)
		return 1;
	for (int i = 0; i < n; i++) {
		FILE *f = fopen (progress[i], "r");
		const char *base = strrchr (progress[i], '/');
		char line[64];
		snprintf (c.t[i].name, sizeof c.t[i].name, "%s", base ? base + 1 : progress[i]);
		c.t[i].cap = 1000000;
		c.t[i].seen = calloc ((size_t)c.t[i].cap, 1);
		if (!c.t[i].seen)
			return 1;
		while (f && fgets (line, sizeof line, f)) {
			long d;
			/* A line cut by kill -9 does not count. */
			if (sscanf (line, "durable %ld", &d) == 1 && strchr (line, '\n'))
				c.t[i].durable = d;
		}
		if (f)
			fclose (f);
	}
	st = ledger_verify_file (path, k, NULL, false, each, &c, &r);
	printf ("# verify: %d (%s); %llu records, %llu checkpoints, %llu unsigned, torn %d\n", st,
	        r.reason, (unsigned long long)r.records, (unsigned long long)r.checkpoints,
	        (unsigned long long)r.unsigned_tail, r.torn_tail);
	if (st != LEDGER_VERIFY_OK)
		bad = 1;
	for (int i = 0; i < n; i++) {
		struct tagset *t = &c.t[i];
		long missing = 0;
		for (long j = 0; j < t->durable; j++)
			missing += !t->seen[j];
		if (missing || t->dup) {
			printf ("# %s: %ld durable, %ld present, %ld of the durable missing%s\n", t->name,
			        t->durable, t->present, missing, t->dup ? ", duplicates" : "");
			bad = 1;
		}
		free (t->seen);
	}
	printf ("# %llu storm records in the ledger\n", (unsigned long long)c.records);
	free (c.t);
	EVP_PKEY_free (k);
	return bad;
}

/* ---------------------------------------------------------------- disk full */

static int
do_diskfull (const char *path, const char *key, const char *filler)
{
	struct ledger_verify_result r;
	struct ledger_record rec = { .event = "gated-deny", .reason = "disk full test" };
	EVP_PKEY *k = load_key (key);
	char err[256];
	long i;

	if (!k || open_ledger (path, key, 4) != 0)
		return 1;
	for (i = 0; i < 100000; i++) {
		if (ledger_append (&rec) != 0 || ledger_flush () != 0)
			break;
	}
	if (i == 100000 || ledger_healthy ()) {
		fprintf (stderr, "the file system never filled, or the ledger stayed healthy\n");
		return 1;
	}
	ledger_last_error (err, sizeof err);
	printf ("# full after %ld records: %s\n", i, err);
	if (ledger_append (&rec) == 0) {
		fprintf (stderr, "an append succeeded on a full disk\n");
		return 1;
	}
	if (ledger_verify_file (path, k, NULL, false, NULL, NULL, &r) != LEDGER_VERIFY_OK ||
	    r.torn_tail || r.unsigned_tail) {
		fprintf (stderr, "the ledger of a full disk does not verify cleanly: %s\n", r.reason);
		return 1;
	}
	if (unlink (filler) != 0 || ledger_flush () != 0 || !ledger_healthy () ||
	    ledger_append (&rec) != 0) {
		fprintf (stderr, "no recovery after room was made\n");
		return 1;
	}
	ledger_close ();
	if (ledger_verify_file (path, k, NULL, false, NULL, NULL, &r) != LEDGER_VERIFY_OK) {
		fprintf (stderr, "after recovery: %s\n", r.reason);
		return 1;
	}
	printf ("# recovered: %llu records\n", (unsigned long long)r.records);
	EVP_PKEY_free (k);
	return 0;
}

int
main (int argc, char **argv)
{
	log_configure (LOG_SINK_STDERR, LOG_LEVEL_WARNING);
	if (argc == 6 && !strcmp (argv[1], "write"))
		return do_write (argv[2], argv[3], argv[4], atol (argv[5]));
	if (argc >= 4 && !strcmp (argv[1], "check"))
		return do_check (argv[2], argv[3], argc - 4, argv + 4);
	if (argc == 5 && !strcmp (argv[1], "diskfull"))
		return do_diskfull (argv[2], argv[3], argv[4]);
	fprintf (stderr, "usage: ledger-storm write|check|diskfull ...\n");
	return 2;
}
