/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the audit ledger (src/ledger.c, src/ledger-read.c): the
 * round trip of every field, threads, fork, the tamper matrix (each case
 * found at the right first bad record, for the right reason), crashes
 * (a torn or unsigned tail, a batch without its head), a write failure
 * (RLIMIT_FSIZE: the same EFBIG/short write a full disk gives) and its
 * recovery, the audit key's checks, and timings (printed as "# bench").
 */
#include "config.h"

#include "ledger-impl.h"
#include "ledger.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256], key_path[300], ledger_path[300], head_path[320];
static EVP_PKEY *priv, *other;

static void
write_key (const char *path, EVP_PKEY *k, mode_t mode)
{
	FILE *f;
	int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true (fd >= 0);
	assert_int_equal (fchmod (fd, mode), 0);
	f = fdopen (fd, "w");
	assert_non_null (f);
	assert_int_equal (PEM_write_PrivateKey (f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose (f);
}

static int
setup (void **state)
{
	(void)state;
	snprintf (dir, sizeof dir, "%s/p11w-ledger.XXXXXX", getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
	if (!mkdtemp (dir))
		return -1;
	snprintf (key_path, sizeof key_path, "%s/audit.pem", dir);
	snprintf (ledger_path, sizeof ledger_path, "%s/ledger", dir);
	snprintf (head_path, sizeof head_path, "%s/ledger.head", dir);
	priv = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	other = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
	if (!priv || !other)
		return -1;
	write_key (key_path, priv, 0600);
	log_configure (LOG_SINK_NONE, LOG_LEVEL_ERROR);
	return 0;
}

static int
teardown (void **state)
{
	char cmd[400];
	(void)state;
	EVP_PKEY_free (priv);
	EVP_PKEY_free (other);
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system (cmd) == 0 ? 0 : -1;
}

static void
fresh (void)
{
	unlink (ledger_path);
	unlink (head_path);
}

static void
open_ledger (enum ledger_fsync fs, unsigned int batch_max, bool flusher)
{
	struct ledger_options o = { ledger_path, key_path, fs, 20, batch_max, flusher };
	char err[256];
	int rv = ledger_open (&o, err, sizeof err);
	if (rv != 0)
		fail_msg ("ledger_open: %s", err);
	assert_true (ledger_healthy ());
}

static enum ledger_verify_status
verify (EVP_PKEY *k, bool no_head, struct ledger_verify_result *r)
{
	return ledger_verify_file (ledger_path, k, NULL, no_head, NULL, NULL, r);
}

static void
assert_ok (void)
{
	struct ledger_verify_result r;
	enum ledger_verify_status st = verify (priv, false, &r);
	if (st != LEDGER_VERIFY_OK)
		fail_msg ("verify: %d, first bad %lld: %s", st, (long long)r.first_bad, r.reason);
}

/* ---------------------------------------------------------------- records */

static unsigned char pdig[32], edig[32];

/* Record number @i of the test ledgers: every field set, each distinct. */
static void
fill (struct ledger_record *r, int i, char *bufs)
{
	char *slot = bufs, *reason = bufs + 64, *label = bufs + 128;
	memset (r, 0, sizeof *r);
	for (int j = 0; j < 32; j++) {
		pdig[j] = (unsigned char)(0xa0 + j);
		edig[j] = (unsigned char)(0x40 + j);
	}
	snprintf (slot, 64, "slot-%d", i);
	snprintf (reason, 64, "policy tpm-pcr16 satisfied, record %d", i);
	snprintf (label, 64, "aes-key-%d", i);
	r->event = i % 2 ? "gated-allow" : "gated-deny";
	r->slot = slot;
	r->key_id = (const unsigned char *)"\x01\x02\x03\x04\x05\x06";
	r->key_id_len = 6;
	r->key_label = (const unsigned char *)label;
	r->key_label_len = strlen (label);
	r->has_mechanism = true;
	r->mechanism = 0x2109; /* CKM_AES_KEY_WRAP */
	r->operation = "unwrap";
	r->verdict = i % 2 ? "allow" : "deny";
	r->reason = reason;
	r->policy = "tpm-pcr16";
	r->policy_digest = pdig;
	r->format = "tpm2-quote";
	r->anchor = "ak-1";
	r->evidence_digest = edig;
	r->user = "user";
}

struct collected {
	struct ledger_entry e[64];
	char text[64][9][1100];
	unsigned char bin[64][2][300];
	size_t n;
};

static int
collect (const struct ledger_entry *e, void *user)
{
	struct collected *c = user;
	const char *const *t[9] = { &e->event, &e->slot, &e->operation, &e->verdict, &e->reason,
	                            &e->policy, &e->format, &e->anchor, &e->user };
	struct ledger_entry *d;
	if (c->n >= 64)
		return 0;
	d = &c->e[c->n];
	*d = *e;
	/* Deep copies: the entry's pointers die with the callback. */
	for (int i = 0; i < 9; i++) {
		if (*t[i]) {
			snprintf (c->text[c->n][i], sizeof c->text[c->n][i], "%s", *t[i]);
		}
	}
	d->event = e->event ? c->text[c->n][0] : NULL;
	d->slot = e->slot ? c->text[c->n][1] : NULL;
	d->operation = e->operation ? c->text[c->n][2] : NULL;
	d->verdict = e->verdict ? c->text[c->n][3] : NULL;
	d->reason = e->reason ? c->text[c->n][4] : NULL;
	d->policy = e->policy ? c->text[c->n][5] : NULL;
	d->format = e->format ? c->text[c->n][6] : NULL;
	d->anchor = e->anchor ? c->text[c->n][7] : NULL;
	d->user = e->user ? c->text[c->n][8] : NULL;
	if (e->key_label) {
		memcpy (c->bin[c->n][0], e->key_label, e->key_label_len);
		d->key_label = c->bin[c->n][0];
	}
	if (e->key_id) {
		memcpy (c->bin[c->n][1], e->key_id, e->key_id_len);
		d->key_id = c->bin[c->n][1];
	}
	d->policy_digest = e->policy_digest ? pdig : NULL;
	d->evidence_digest = e->evidence_digest ? edig : NULL;
	if (e->policy_digest)
		assert_memory_equal (e->policy_digest, pdig, 32);
	if (e->evidence_digest)
		assert_memory_equal (e->evidence_digest, edig, 32);
	d->prev = d->kid = d->sig = d->nonce = d->key_digest = NULL;
	c->n++;
	return 0;
}

static void
test_round_trip (void **state)
{
	struct collected *c = calloc (1, sizeof *c);
	struct ledger_verify_result r;
	struct ledger_record rec;
	char bufs[192], longtext[3000], *bad = "caf\xc3(-slot";
	int64_t t0 = (int64_t)time (NULL) * 1000;
	(void)state;

	assert_non_null (c);
	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, 100, false);
	for (int i = 0; i < 3; i++) {
		fill (&rec, i, bufs);
		assert_int_equal (ledger_append (&rec), 0);
	}
	/* Only the event: every other field left out. */
	memset (&rec, 0, sizeof rec);
	rec.event = "initialize";
	assert_int_equal (ledger_append (&rec), 0);
	/* Too long: cut and marked; not UTF-8: a bstr, read back the same. */
	memset (longtext, 'x', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = '\0';
	memcpy (longtext + LEDGER_TEXT_MAX - 1, "\xc3\xa9", 2); /* é across the cut */
	rec.reason = longtext;
	rec.slot = bad;
	assert_int_equal (ledger_append (&rec), 0);
	/* Refused: no event, a reserved one. */
	memset (&rec, 0, sizeof rec);
	assert_int_equal (ledger_append (&rec), -EINVAL);
	rec.event = "checkpoint";
	assert_int_equal (ledger_append (&rec), -EINVAL);
	ledger_close ();
	assert_false (ledger_healthy ());
	assert_int_equal (ledger_append (&rec), -EINVAL);
	rec.event = "login";
	assert_int_equal (ledger_append (&rec), -EBADF);

	assert_int_equal (ledger_verify_file (ledger_path, priv, NULL, false, collect, c, &r),
	                  LEDGER_VERIFY_OK);
	/* genesis, checkpoint, 5 records, checkpoint */
	assert_int_equal (r.records, 8);
	assert_int_equal (r.checkpoints, 2);
	assert_int_equal (r.verified, 8);
	assert_int_equal (r.unsigned_tail, 0);
	assert_false (r.torn_tail);
	assert_int_equal (r.first_bad, -1);
	assert_int_equal (c->n, 8);

	assert_string_equal (c->e[0].event, "genesis");
	assert_int_equal (c->e[0].seq, 0);
	assert_true (c->e[1].checkpoint);
	assert_int_equal (c->e[1].count, 1);
	assert_int_equal (c->e[1].alg, -7);
	for (int i = 0; i < 3; i++) {
		const struct ledger_entry *e = &c->e[2 + i];
		fill (&rec, i, bufs);
		assert_int_equal (e->seq, 2 + i);
		assert_false (e->checkpoint);
		assert_true (e->time_ms >= t0 - 1000 && e->time_ms <= t0 + 60000);
		assert_string_equal (e->event, rec.event);
		assert_string_equal (e->slot, rec.slot);
		assert_int_equal (e->key_id_len, 6);
		assert_memory_equal (e->key_id, rec.key_id, 6);
		assert_int_equal (e->key_label_len, rec.key_label_len);
		assert_memory_equal (e->key_label, rec.key_label, rec.key_label_len);
		assert_true (e->has_mechanism);
		assert_int_equal (e->mechanism, 0x2109);
		assert_string_equal (e->operation, "unwrap");
		assert_string_equal (e->verdict, rec.verdict);
		assert_string_equal (e->reason, rec.reason);
		assert_string_equal (e->policy, "tpm-pcr16");
		assert_non_null (e->policy_digest);
		assert_string_equal (e->format, "tpm2-quote");
		assert_string_equal (e->anchor, "ak-1");
		assert_non_null (e->evidence_digest);
		assert_string_equal (e->user, "user");
		assert_int_equal (e->pid, getpid ());
		assert_int_equal (e->uid, geteuid ());
		assert_int_equal (e->cut, 0);
		assert_int_equal (e->text_bytes, 0);
	}
	assert_string_equal (c->e[5].event, "initialize");
	assert_null (c->e[5].slot);
	assert_null (c->e[5].key_id);
	assert_false (c->e[5].has_mechanism);
	assert_null (c->e[5].policy_digest);
	assert_int_equal (c->e[6].cut, 1u << LK_REASON);
	assert_int_equal (strlen (c->e[6].reason), LEDGER_TEXT_MAX - 1); /* cut before the é */
	assert_int_equal (c->e[6].text_bytes, 1u << LK_SLOT);
	assert_string_equal (c->e[6].slot, bad);
	assert_true (c->e[7].checkpoint);
	assert_int_equal (c->e[7].count, 5);
	free (c);
}

/* ---------------------------------------------------------------- file images */

#define MAXF 256

struct img {
	unsigned char *b;
	size_t n;
	size_t off[MAXF], len[MAXF]; /* len: the record, without the length words */
	size_t nf;
};

static void
img_load (struct img *m, const char *path)
{
	FILE *f = fopen (path, "rb");
	long n;
	assert_non_null (f);
	fseek (f, 0, SEEK_END);
	n = ftell (f);
	fseek (f, 0, SEEK_SET);
	m->b = malloc ((size_t)n + 1);
	assert_non_null (m->b);
	assert_int_equal (fread (m->b, 1, (size_t)n, f), (size_t)n);
	fclose (f);
	m->n = (size_t)n;
	m->nf = 0;
	for (size_t o = 0; o + 8 <= m->n && m->nf < MAXF;) {
		size_t l = (size_t)m->b[o] << 24 | (size_t)m->b[o + 1] << 16 | (size_t)m->b[o + 2] << 8 |
		           m->b[o + 3];
		if (o + 8 + l > m->n)
			break;
		m->off[m->nf] = o;
		m->len[m->nf++] = l;
		o += 8 + l;
	}
}

static void
save (const char *path, const unsigned char *b, size_t n)
{
	FILE *f = fopen (path, "wb");
	assert_non_null (f);
	assert_int_equal (fwrite (b, 1, n, f), n);
	fclose (f);
}

/* Write frames @idx[0..n) of @m (in that order) as the ledger. */
static void
save_frames (const struct img *m, const size_t *idx, size_t n)
{
	FILE *f = fopen (ledger_path, "wb");
	assert_non_null (f);
	for (size_t i = 0; i < n; i++)
		assert_int_equal (fwrite (m->b + m->off[idx[i]], 1, m->len[idx[i]] + 8, f),
		                  m->len[idx[i]] + 8);
	fclose (f);
}

/* Offset (in the record) of the last byte of key @key's value. */
static size_t
value_last (const unsigned char *rec, size_t len, unsigned int key)
{
	size_t o = 1;
	unsigned int n = rec[0] & 0x1f;
	for (unsigned int i = 0; i < n; i++) {
		unsigned int k = rec[o++];
		unsigned int major = rec[o] >> 5, ai = rec[o] & 0x1f;
		size_t hl = ai < 24 ? 1 : 1 + ((size_t)1 << (ai - 24)), v = 0;
		for (size_t j = 1; j < hl; j++)
			v = v << 8 | rec[o + j];
		if (ai < 24)
			v = ai;
		if (major == 0) {
			if (k == key)
				return o + hl - 1;
			o += hl;
		} else {
			if (k == key)
				return o + hl + v - 1;
			o += hl + v;
		}
		assert_true (o <= len);
	}
	fail_msg ("key %u not in the record", key);
	return 0;
}

/*
 * The tamper ledger: genesis 0, checkpoint 1, records 2-6, checkpoint 7,
 * records 8-12, checkpoint 13, records 14-16, checkpoint 17.
 */
static struct img base;
static unsigned char base_head[512];
static size_t base_head_len;

static void
make_tamper_ledger (void)
{
	struct ledger_record rec;
	char bufs[192];
	FILE *f;
	fresh ();
	open_ledger (LEDGER_FSYNC_NONE, 5, false);
	for (int i = 0; i < 13; i++) {
		fill (&rec, i, bufs);
		assert_int_equal (ledger_append (&rec), 0);
	}
	ledger_close ();
	assert_ok ();
	free (base.b);
	img_load (&base, ledger_path);
	assert_int_equal (base.nf, 18);
	f = fopen (head_path, "rb");
	assert_non_null (f);
	base_head_len = fread (base_head, 1, sizeof base_head, f);
	fclose (f);
}

static void
restore (void)
{
	save (ledger_path, base.b, base.n);
	save (head_path, base_head, base_head_len);
}

static void
expect_bad (const char *what, int64_t first_bad, const char *reason)
{
	struct ledger_verify_result r;
	enum ledger_verify_status st = verify (priv, false, &r);
	if (st != LEDGER_VERIFY_BAD || r.first_bad != first_bad || !strstr (r.reason, reason))
		fail_msg ("%s: status %d, first bad %lld (want %lld), reason \"%s\" (want \"%s\")", what,
		          st, (long long)r.first_bad, (long long)first_bad, r.reason, reason);
}

static void
flip_at (size_t frame, size_t rec_off)
{
	unsigned char *b = malloc (base.n);
	assert_non_null (b);
	memcpy (b, base.b, base.n);
	b[base.off[frame] + 4 + rec_off] ^= 0x01;
	save (ledger_path, b, base.n);
	save (head_path, base_head, base_head_len);
	free (b);
}

static void
test_tamper_fields (void **state)
{
	static const struct {
		unsigned int key;
		const char *reason;
	} fields[] = {
		{ LK_SEQ, "sequence" },           { LK_TIME, "altered" },
		{ LK_PREV, "prev mismatch" },     { LK_EVENT, "altered" },
		{ LK_SLOT, "altered" },           { LK_KEY_ID, "altered" },
		{ LK_KEY_LABEL, "altered" },      { LK_MECHANISM, "altered" },
		{ LK_OPERATION, "altered" },      { LK_VERDICT, "altered" },
		{ LK_REASON, "altered" },         { LK_POLICY, "altered" },
		{ LK_POLICY_DIGEST, "altered" },  { LK_FORMAT, "altered" },
		{ LK_ANCHOR, "altered" },         { LK_EVIDENCE_DIGEST, "altered" },
		{ LK_PID, "altered" },            { LK_UID, "altered" },
		{ LK_USER, "altered" },
	};
	/* A record inside a batch, the first of one, the last before its
	 * checkpoint. */
	static const size_t targets[] = { 10, 8, 12 };
	(void)state;

	make_tamper_ledger ();
	restore ();
	assert_ok ();
	for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		size_t fi = targets[t];
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			char what[64];
			size_t at = value_last (base.b + base.off[fi] + 4, base.len[fi], fields[i].key);
			snprintf (what, sizeof what, "record %zu, key %u", fi, fields[i].key);
			flip_at (fi, at);
			expect_bad (what, (int64_t)fi, fields[i].reason);
		}
	}
	/* The genesis record's nonce: altered (its chain breaks). */
	flip_at (0, value_last (base.b + base.off[0] + 4, base.len[0], LK_NONCE));
	expect_bad ("genesis nonce", 0, "altered");
	/* The genesis record's key digest: another key. */
	flip_at (0, value_last (base.b + base.off[0] + 4, base.len[0], LK_KEY_DIGEST));
	expect_bad ("genesis key digest", 0, "wrong key");
	/* A frame's length word. */
	flip_at (9, (size_t)-4 + 3);
	expect_bad ("length word", 9, "frame length");
	restore ();
}

static void
test_tamper_checkpoint (void **state)
{
	const unsigned char *cp;
	size_t plen, poff;
	(void)state;

	make_tamper_ledger ();
	cp = base.b + base.off[7] + 4;
	/* d2 84 55 <protected: 21 bytes> a0 58 LEN <payload> 58 40 <sig> */
	assert_int_equal (cp[0], 0xd2);
	assert_int_equal (cp[2], 0x55);
	assert_int_equal (cp[24], 0xa0);
	assert_int_equal (cp[25], 0x58);
	plen = cp[26];
	poff = 27;
	assert_int_equal (poff + plen + 2 + 64, base.len[7]);

	flip_at (7, poff + value_last (cp + poff, plen, LK_TIME));
	expect_bad ("checkpoint time", 7, "signature");
	flip_at (7, poff + value_last (cp + poff, plen, LK_COUNT));
	expect_bad ("checkpoint count", 7, "signature");
	flip_at (7, poff + value_last (cp + poff, plen, LK_PREV));
	expect_bad ("checkpoint prev", 7, "signature");
	flip_at (7, poff + value_last (cp + poff, plen, LK_SEQ));
	expect_bad ("checkpoint seq", 7, "signature");
	flip_at (7, base.len[7] - 1);
	expect_bad ("checkpoint signature", 7, "signature");
	flip_at (7, base.len[7] - 40);
	expect_bad ("checkpoint signature (r)", 7, "signature");
	flip_at (7, 3 + 5 + 7); /* a kid byte */
	expect_bad ("checkpoint kid", 7, "kid");
	flip_at (7, 3 + 2); /* alg -7 -> -8 */
	expect_bad ("checkpoint alg", 7, "signature");
	flip_at (7, 3); /* the protected map's head */
	expect_bad ("checkpoint protected header", 7, "protected header");
	flip_at (17, base.len[17] - 1);
	expect_bad ("last checkpoint signature", 17, "signature");
	restore ();
}

static unsigned char *
sha (const unsigned char *p, size_t n, unsigned char *out)
{
	unsigned int l;
	assert_int_equal (EVP_Digest (p, n, out, &l, EVP_sha256 (), NULL), 1);
	return out;
}

static void
test_tamper_structure (void **state)
{
	size_t idx[MAXF + 2], n;
	(void)state;

	make_tamper_ledger ();

	/* Dropped record 10. */
	n = 0;
	for (size_t i = 0; i < base.nf; i++) {
		if (i != 10)
			idx[n++] = i;
	}
	save_frames (&base, idx, n);
	expect_bad ("dropped", 10, "sequence gap");
	/* Dropped: the last record before a checkpoint. */
	n = 0;
	for (size_t i = 0; i < base.nf; i++) {
		if (i != 12)
			idx[n++] = i;
	}
	save_frames (&base, idx, n);
	expect_bad ("dropped last", 12, "sequence gap");
	/* Dropped: a whole checkpoint. */
	n = 0;
	for (size_t i = 0; i < base.nf; i++) {
		if (i != 7)
			idx[n++] = i;
	}
	save_frames (&base, idx, n);
	expect_bad ("dropped checkpoint", 7, "sequence gap");

	/* Duplicated record 9. */
	n = 0;
	for (size_t i = 0; i < base.nf; i++) {
		idx[n++] = i;
		if (i == 9)
			idx[n++] = i;
	}
	save_frames (&base, idx, n);
	expect_bad ("duplicated", 10, "sequence repeat");

	/* Records 9 and 10 swapped. */
	n = 0;
	for (size_t i = 0; i < base.nf; i++)
		idx[n++] = i == 9 ? 10 : i == 10 ? 9 : i;
	save_frames (&base, idx, n);
	expect_bad ("swapped", 9, "sequence gap");

	/* A forged record inserted after 9: seq 10, chained to 9, unsigned. */
	{
		unsigned char *b = malloc (base.n + 600), h[32];
		size_t o = 0, fl = base.len[11] + 8;
		memcpy (b, base.b, base.off[10]);
		o = base.off[10];
		memcpy (b + o, base.b + base.off[11], fl); /* a record of the right shape */
		b[o + 4 + 2] = 10;                          /* seq */
		assert_int_equal (b[o + 4 + 3], 0x01);
		memcpy (b + o + 4 + 6, sha (base.b + base.off[9], base.len[9] + 8, h), 32);
		b[o + 4 + value_last (b + o + 4, base.len[11], LK_VERDICT)] ^= 0x01;
		o += fl;
		memcpy (b + o, base.b + base.off[10], base.n - base.off[10]);
		o += base.n - base.off[10];
		save (ledger_path, b, o);
		expect_bad ("inserted", 10, "inserted");
		free (b);
	}

	/* Truncated by whole batches: the head tells. */
	restore ();
	assert_int_equal (truncate (ledger_path, (off_t)base.off[14]), 0);
	expect_bad ("truncated to checkpoint 13", 14, "truncated");
	restore ();
	assert_int_equal (truncate (ledger_path, (off_t)base.off[8]), 0);
	expect_bad ("truncated to checkpoint 7", 8, "truncated");
	/* Truncated inside a batch: the unsigned rest is no excuse. */
	restore ();
	assert_int_equal (truncate (ledger_path, (off_t)base.off[16] + 3), 0);
	expect_bad ("truncated mid-batch", 14, "truncated");

	/* Head missing; altered; from another ledger. */
	restore ();
	unlink (head_path);
	expect_bad ("head missing", -1, "head file missing");
	{
		struct ledger_verify_result r;
		assert_int_equal (verify (priv, true, &r), LEDGER_VERIFY_OK);
	}
	{
		unsigned char h[512];
		memcpy (h, base_head, base_head_len);
		h[base_head_len - 70] ^= 0x01; /* in the hash */
		save (head_path, h, base_head_len);
		expect_bad ("head hash altered", -1, "head mismatch");
		memcpy (h, base_head, base_head_len);
		h[base_head_len - 1] ^= 0x01; /* in the signature */
		save (head_path, h, base_head_len);
		expect_bad ("head signature altered", -1, "head mismatch");
		save (head_path, h, 5);
		expect_bad ("head cut", -1, "head");
	}

	/* Wrong public key. */
	restore ();
	{
		struct ledger_verify_result r;
		assert_int_equal (verify (other, false, &r), LEDGER_VERIFY_BAD);
		assert_int_equal (r.first_bad, 0);
		assert_non_null (strstr (r.reason, "wrong key"));
	}
	restore ();
}

static void
test_splice (void **state)
{
	struct img a;
	unsigned char *b;
	size_t n;
	(void)state;

	/* Two ledgers, same key, same shape: the first 8 frames of one, then
	 * the other's from seq 8. */
	make_tamper_ledger ();
	a = base;
	base.b = NULL;
	make_tamper_ledger ();
	b = malloc (a.n + base.n);
	assert_non_null (b);
	memcpy (b, a.b, a.off[8]);
	n = a.off[8];
	memcpy (b + n, base.b + base.off[8], base.n - base.off[8]);
	n += base.n - base.off[8];
	save (ledger_path, b, n);
	expect_bad ("spliced", 8, "prev mismatch");
	/* Its head is right, the records are not. */
	free (b);
	free (a.b);
	restore ();
}

/* ---------------------------------------------------------------- crashes */

static void
test_crash_tail (void **state)
{
	struct ledger_verify_result r;
	struct ledger_record rec;
	char bufs[192], err[256];
	struct img m;
	(void)state;

	make_tamper_ledger ();
	/* A crash inside the last batch's write: records 14 and 15 whole,
	 * 16 torn, no checkpoint; the head still names checkpoint 13. */
	{
		unsigned char h[512];
		size_t hl;
		FILE *f;
		save (ledger_path, base.b, base.off[16] + 20);
		/* The head as it was after checkpoint 13: rebuild it. */
		struct ledger_head hd;
		unsigned char fh[32];
		assert_int_equal (ledger_head_parse (base_head, base_head_len, &hd, err, sizeof err), 0);
		hd.seq = 13;
		hd.offset = base.off[13];
		memcpy (hd.hash, sha (base.b + base.off[13], base.len[13] + 8, fh), 32);
		memcpy (hd.sig, base.b + base.off[13] + 4 + base.len[13] - 64, 64);
		hl = ledger_head_encode (&hd, h, sizeof h);
		assert_true (hl > 0);
		f = fopen (head_path, "wb");
		assert_non_null (f);
		fwrite (h, 1, hl, f);
		fclose (f);
	}
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.unsigned_tail, 2);
	assert_true (r.torn_tail);
	assert_int_equal (r.torn_offset, base.off[16]);
	assert_int_equal (r.signed_end, base.off[14]);
	assert_int_equal (r.verified, 14);

	/* The next writer cuts it back and goes on. */
	open_ledger (LEDGER_FSYNC_BATCH, 5, false);
	fill (&rec, 99, bufs);
	assert_int_equal (ledger_append (&rec), 0);
	ledger_close ();
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.unsigned_tail, 0);
	assert_false (r.torn_tail);
	assert_int_equal (r.records, 16); /* 0..13, record 14 (new), checkpoint 15 */
	img_load (&m, ledger_path);
	assert_int_equal (m.off[14], base.off[14]);
	free (m.b);

	/* A zero-filled tail (blocks allocated, data lost): torn. */
	make_tamper_ledger ();
	{
		unsigned char *b = calloc (1, base.n + 4096);
		memcpy (b, base.b, base.n);
		save (ledger_path, b, base.n + 4096);
		free (b);
	}
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_true (r.torn_tail);

	/* A crash after the batch's write, before the head's: the batch is
	 * complete and signed; the next writer keeps it and moves the head. */
	make_tamper_ledger ();
	{
		unsigned char *b = malloc (base.n);
		struct ledger_head hd;
		unsigned char h[512], fh[32];
		size_t hl;
		memcpy (b, base.b, base.n);
		assert_int_equal (ledger_head_parse (base_head, base_head_len, &hd, err, sizeof err), 0);
		hd.seq = 13;
		hd.offset = base.off[13];
		memcpy (hd.hash, sha (base.b + base.off[13], base.len[13] + 8, fh), 32);
		memcpy (hd.sig, base.b + base.off[13] + 4 + base.len[13] - 64, 64);
		hl = ledger_head_encode (&hd, h, sizeof h);
		save (head_path, h, hl);
		free (b);
	}
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK); /* the head is behind */
	open_ledger (LEDGER_FSYNC_BATCH, 5, false);
	ledger_close ();
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.records, 18);
	{
		FILE *f = fopen (head_path, "rb");
		unsigned char h[512];
		size_t hl = fread (h, 1, sizeof h, f);
		fclose (f);
		assert_int_equal (hl, base_head_len);
		assert_memory_equal (h, base_head, hl);
	}

	/* Truncated below the head: the writer refuses, never repairs. */
	make_tamper_ledger ();
	assert_int_equal (truncate (ledger_path, (off_t)base.off[14]), 0);
	{
		struct ledger_options o = { ledger_path, key_path, LEDGER_FSYNC_BATCH, 20, 5, false };
		assert_int_equal (ledger_open (&o, err, sizeof err), -EIO);
		assert_non_null (strstr (err, "truncation"));
		assert_false (ledger_healthy ());
		/* The head deleted as well: a ledger with more than its first
		 * batch and no head is refused too. */
		unlink (head_path);
		assert_int_equal (ledger_open (&o, err, sizeof err), -EIO);
		assert_non_null (strstr (err, "head is missing"));
		/* The head of another checkpoint's hash. */
		restore ();
		{
			unsigned char h[512];
			memcpy (h, base_head, base_head_len);
			h[base_head_len - 70] ^= 0x01;
			save (head_path, h, base_head_len);
		}
		assert_int_equal (ledger_open (&o, err, sizeof err), -EIO);
		assert_non_null (strstr (err, "hash"));
	}
	restore ();
}

/* ---------------------------------------------------------------- write failure */

static void
test_write_failure (void **state)
{
	struct ledger_verify_result r;
	struct ledger_record rec;
	struct rlimit old, lim;
	struct stat st;
	char bufs[192], err[256];
	int rv;
	(void)state;

	fresh ();
	signal (SIGXFSZ, SIG_IGN);
	open_ledger (LEDGER_FSYNC_BATCH, 8, false);
	for (int i = 0; i < 8; i++) {
		fill (&rec, i, bufs);
		assert_int_equal (ledger_append (&rec), 0);
	}
	assert_int_equal (stat (ledger_path, &st), 0);
	/* The file may not grow by more than a few bytes: the next batch's
	 * write comes up short, then fails (EFBIG, as ENOSPC would). */
	assert_int_equal (getrlimit (RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 100;
	assert_int_equal (setrlimit (RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 7; i++) {
		fill (&rec, 100 + i, bufs);
		assert_int_equal (ledger_append (&rec), 0);
	}
	fill (&rec, 107, bufs);
	rv = ledger_append (&rec); /* fills the batch: written now, and fails */
	assert_true (rv < 0);
	assert_false (ledger_healthy ());
	ledger_last_error (err, sizeof err);
	assert_non_null (strstr (err, "cannot append"));
	/* Cut back: the file ends on its last checkpoint still. */
	assert_int_equal (stat (ledger_path, &st), 0);
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.unsigned_tail, 0);
	assert_false (r.torn_tail);
	/* Unhealthy: appends fail (the caller refuses), records are kept. */
	fill (&rec, 108, bufs);
	assert_true (ledger_append (&rec) < 0);
	assert_true (ledger_flush () < 0);
	/* Never without bound: at the hard cap, nothing more is buffered. */
	for (int i = 0; i < 40; i++)
		assert_true (ledger_append (&rec) < 0);

	/* Room again: the next flush writes everything kept. */
	assert_int_equal (setrlimit (RLIMIT_FSIZE, &old), 0);
	assert_int_equal (ledger_flush (), 0);
	assert_true (ledger_healthy ());
	fill (&rec, 109, bufs);
	assert_int_equal (ledger_append (&rec), 0);
	ledger_close ();
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	/* genesis+cp, 8+cp, then 4 * 8 kept (8 + 1 + 23 refused at the cap
	 * of 32 pending) + 1 in batches of 8 + cps */
	assert_true (r.records >= 2 + 9 + 32 + 1);
	signal (SIGXFSZ, SIG_DFL);
}

/* ---------------------------------------------------------------- the key */

static void
test_key_checks (void **state)
{
	struct ledger_options o = { ledger_path, NULL, LEDGER_FSYNC_BATCH, 20, 5, false };
	char p[320], err[256];
	EVP_PKEY *rsa, *ed;
	struct ledger_verify_result r;
	struct ledger_record rec = { .event = "login" };
	(void)state;

	fresh ();
	o.key_file = p;
	snprintf (p, sizeof p, "%s/open.pem", dir);
	write_key (p, priv, 0640);
	assert_int_equal (ledger_open (&o, err, sizeof err), -EACCES);
	assert_non_null (strstr (err, "its group"));
	snprintf (p, sizeof p, "%s/rsa.pem", dir);
	rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)2048);
	assert_non_null (rsa);
	write_key (p, rsa, 0600);
	assert_int_equal (ledger_open (&o, err, sizeof err), -EINVAL);
	assert_non_null (strstr (err, "P-256 or Ed25519"));
	EVP_PKEY_free (rsa);
	snprintf (p, sizeof p, "%s/missing.pem", dir);
	assert_true (ledger_open (&o, err, sizeof err) < 0);
	o.batch_max = 0;
	assert_int_equal (ledger_open (&o, err, sizeof err), -EINVAL);

	/* Ed25519 works, and a ledger signed by it verifies under it only. */
	o.batch_max = 5;
	snprintf (p, sizeof p, "%s/ed.pem", dir);
	ed = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
	assert_non_null (ed);
	write_key (p, ed, 0400);
	assert_int_equal (ledger_open (&o, err, sizeof err), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal (ledger_append (&rec), 0);
	ledger_close ();
	assert_int_equal (verify (ed, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.records, 2 + 12 + 3);
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_BAD);
	assert_non_null (strstr (r.reason, "wrong key"));
	/* The P-256 key cannot go on with it either. */
	o.key_file = key_path;
	assert_int_equal (ledger_open (&o, err, sizeof err), -EIO);
	EVP_PKEY_free (ed);
}

/* ---------------------------------------------------------------- threads, fork */

#define THREADS 4
#define PER_THREAD 5000

static void *
appender (void *arg)
{
	struct ledger_record rec;
	char bufs[192];
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		fill (&rec, id * PER_THREAD + i, bufs);
		if (ledger_append (&rec) != 0)
			return (void *)1;
	}
	return NULL;
}

static int
count_each (const struct ledger_entry *e, void *user)
{
	size_t *n = user;
	if (!e->checkpoint && strcmp (e->event, "genesis"))
		(*n)++;
	return 0;
}

static void
test_threads (void **state)
{
	pthread_t t[THREADS];
	struct ledger_verify_result r;
	size_t n = 0;
	(void)state;

	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, 64, true);
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal (pthread_create (&t[i], NULL, appender, (void *)i), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rv;
		pthread_join (t[i], &rv);
		assert_null (rv);
	}
	ledger_close ();
	assert_int_equal (ledger_verify_file (ledger_path, priv, NULL, false, count_each, &n, &r),
	                  LEDGER_VERIFY_OK);
	assert_int_equal (n, THREADS * PER_THREAD);
	assert_int_equal (r.unsigned_tail, 0);

	/* fsync = always: each record its own batch. */
	fresh ();
	open_ledger (LEDGER_FSYNC_ALWAYS, 64, true);
	{
		struct ledger_record rec = { .event = "login" };
		for (int i = 0; i < 5; i++)
			assert_int_equal (ledger_append (&rec), 0);
		/* Written before ledger_append returned. */
		assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
		assert_int_equal (r.records, 2 + 2 * 5);
		assert_int_equal (r.checkpoints, 6);
	}
	ledger_close ();
}

static void
test_flusher_timer (void **state)
{
	struct ledger_verify_result r;
	struct ledger_record rec = { .event = "logout" };
	struct timespec ts = { 0, 200 * 1000000L };
	(void)state;

	/* Fewer than a batch: the flusher writes them after batch-ms (20). */
	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, 1000, true);
	for (int i = 0; i < 3; i++)
		assert_int_equal (ledger_append (&rec), 0);
	nanosleep (&ts, NULL);
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	assert_int_equal (r.records, 2 + 3 + 1);
	ledger_close ();
}

static void
test_fork (void **state)
{
	struct ledger_verify_result r;
	struct ledger_record rec = { .event = "login" };
	size_t n = 0;
	int status;
	pid_t pid;
	(void)state;

	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, 16, true);
	for (int i = 0; i < 10; i++)
		assert_int_equal (ledger_append (&rec), 0);
	pid = fork ();
	assert_true (pid >= 0);
	if (pid == 0) {
		struct ledger_options o = { ledger_path, key_path, LEDGER_FSYNC_BATCH, 20, 16, true };
		char err[256];
		struct ledger_record c = { .event = "child" };
		/* The parent's pending records are not the child's to write. */
		ledger_abandon ();
		if (ledger_healthy () || ledger_append (&c) != -EBADF)
			_exit (2);
		if (ledger_open (&o, err, sizeof err) != 0)
			_exit (3);
		for (int i = 0; i < 100; i++) {
			if (ledger_append (&c) != 0)
				_exit (4);
		}
		ledger_close ();
		_exit (0);
	}
	for (int i = 0; i < 100; i++)
		assert_int_equal (ledger_append (&rec), 0);
	assert_int_equal (waitpid (pid, &status, 0), pid);
	assert_true (WIFEXITED (status));
	assert_int_equal (WEXITSTATUS (status), 0);
	ledger_close ();
	assert_int_equal (ledger_verify_file (ledger_path, priv, NULL, false, count_each, &n, &r),
	                  LEDGER_VERIFY_OK);
	assert_int_equal (n, 210);
}

static void
test_parse_garbage (void **state)
{
	struct ledger_entry e;
	char scratch[64], err[128];
	unsigned char buf[64];
	(void)state;
	assert_int_equal (ledger_parse_record (NULL, 0, &e, scratch, sizeof scratch, err, sizeof err),
	                  -EINVAL);
	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)(rand () % (int)sizeof buf);
		for (size_t j = 0; j < n; j++)
			buf[j] = (unsigned char)rand ();
		if (i % 3 == 0)
			buf[0] = (unsigned char)(0xa0 | (buf[0] & 0x1f));
		(void)ledger_parse_record (buf, n, &e, scratch, sizeof scratch, err, sizeof err);
		assert_true (err[0] != '\0');
	}
	/* A record whose texts do not fit the scratch space. */
	make_tamper_ledger ();
	assert_int_equal (ledger_parse_record (base.b + base.off[5] + 4, base.len[5], &e, scratch, 8,
	                                       err, sizeof err),
	                  -ENOBUFS);
}

/* ---------------------------------------------------------------- timings */

static double
now (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define BENCH_N 200000

static void *
bench_appender (void *arg)
{
	struct ledger_record rec;
	char bufs[192];
	size_t n = (size_t)(intptr_t)arg;
	fill (&rec, 1, bufs);
	for (size_t i = 0; i < n; i++) {
		if (ledger_append (&rec) != 0)
			return (void *)1;
	}
	return NULL;
}

static void
test_bench (void **state)
{
	struct ledger_verify_result r;
	struct ledger_record rec;
	char bufs[192];
	double t0, t1;
	pthread_t t[2];
	(void)state;

	/* Appends as the gated path does them: a flusher, batches of 256. */
	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, LEDGER_DEFAULT_BATCH_MAX, true);
	t0 = now ();
	assert_null (bench_appender ((void *)(intptr_t)BENCH_N));
	t1 = now ();
	printf ("# bench: append, 1 thread: %.0f ns/record\n", (t1 - t0) * 1e9 / BENCH_N);
	t0 = now ();
	for (intptr_t i = 0; i < 2; i++)
		assert_int_equal (pthread_create (&t[i], NULL, bench_appender, (void *)(intptr_t)(BENCH_N / 2)), 0);
	for (int i = 0; i < 2; i++)
		pthread_join (t[i], NULL);
	t1 = now ();
	printf ("# bench: append, 2 threads: %.0f ns/record (wall, all threads)\n",
	        (t1 - t0) * 1e9 / BENCH_N);
	ledger_close ();

	/* A batch flush, alone: 256 records, a checkpoint, fsync, the head. */
	fresh ();
	open_ledger (LEDGER_FSYNC_BATCH, 65536, false);
	{
		double total = 0;
		fill (&rec, 1, bufs);
		for (int b = 0; b < 20; b++) {
			for (int i = 0; i < 256; i++)
				assert_int_equal (ledger_append (&rec), 0);
			t0 = now ();
			assert_int_equal (ledger_flush (), 0);
			total += now () - t0;
		}
		printf ("# bench: flush of a 256-record batch (fsync=batch): %.0f us\n", total * 1e6 / 20);
	}
	ledger_close ();
	fresh ();
	open_ledger (LEDGER_FSYNC_NONE, 65536, false);
	{
		double total = 0;
		for (int b = 0; b < 20; b++) {
			for (int i = 0; i < 256; i++)
				assert_int_equal (ledger_append (&rec), 0);
			t0 = now ();
			assert_int_equal (ledger_flush (), 0);
			total += now () - t0;
		}
		printf ("# bench: flush of a 256-record batch (fsync=none): %.0f us\n", total * 1e6 / 20);
	}
	ledger_close ();

	/* Verification of 100,000 records. */
	fresh ();
	open_ledger (LEDGER_FSYNC_NONE, LEDGER_DEFAULT_BATCH_MAX, false);
	for (int i = 0; i < 100000; i++)
		assert_int_equal (ledger_append (&rec), 0);
	ledger_close ();
	t0 = now ();
	assert_int_equal (verify (priv, false, &r), LEDGER_VERIFY_OK);
	t1 = now ();
	printf ("# bench: verify: %llu records in %.3f s: %.0f records/s\n",
	        (unsigned long long)r.records, t1 - t0, (double)r.records / (t1 - t0));
	assert_true (r.records > 100000);
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_round_trip),
		cmocka_unit_test (test_tamper_fields),
		cmocka_unit_test (test_tamper_checkpoint),
		cmocka_unit_test (test_tamper_structure),
		cmocka_unit_test (test_splice),
		cmocka_unit_test (test_crash_tail),
		cmocka_unit_test (test_write_failure),
		cmocka_unit_test (test_key_checks),
		cmocka_unit_test (test_threads),
		cmocka_unit_test (test_flusher_timer),
		cmocka_unit_test (test_fork),
		cmocka_unit_test (test_parse_garbage),
		cmocka_unit_test (test_bench),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
