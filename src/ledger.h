/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit ledger (DESIGN.md "Audit ledger"; issue 4): every decision and
 * every administrative action becomes a record that an auditor can verify
 * offline, and that nobody can alter, drop, insert or reorder unseen.
 *
 * File format (p11-warden-ledger(5) documents it):
 *   - a sequence of frames: u32 big-endian length L, L bytes, the same u32
 *     again (so that the last frame can be found from the end);
 *   - each frame holds one record: a CBOR map with small integer keys
 *     (sequence number, time, hash of the previous frame, event, slot,
 *     key id and label, mechanism, operation, verdict, reason, policy and
 *     its digest, evidence format, anchor and digest, pid, uid);
 *   - a checkpoint record, written at the end of every batch, is a
 *     COSE_Sign1 (tag 18) by the audit key over a map holding the
 *     sequence number and the hash of the previous frame: it signs every
 *     record before it through the hash chain;
 *   - PATH.head, replaced atomically (rename) after every batch, holds the
 *     last checkpoint's sequence number, file offset, frame hash and its
 *     signature, so that cutting records off the end of the ledger is
 *     seen (rolling both files back together is not: that needs a
 *     monotonic counter outside the file system, e.g. a TPM NV counter).
 *
 * Writing: records are buffered per process and written in batches (a
 * batch: the records, then a checkpoint; one write(), under an exclusive
 * fcntl lock on the ledger, after re-reading the tail another process
 * may have appended).  With a flusher thread, the append that fills a
 * batch wakes it (the gated call does not wait for fsync) and it writes
 * every batch-ms otherwise; the appending thread writes itself only when
 * 4 * batch-max records are pending (the flusher fell behind).  Without
 * one, the thread that fills the batch writes it.  The loss window: after
 * kill -9, the records not yet written: normally at most batch-max
 * records or batch-ms of them, plus those appended during the flush in
 * progress; at most 4 * batch-max.  With fsync = always each record is
 * its own batch, written and synced before ledger_append() returns.  With
 * fsync = none a power loss (not kill -9) may lose more, and may leave
 * the ledger shorter than its head, which then reads as truncation.  A
 * torn batch at the end (a crash inside write()) is cut back to the last
 * complete checkpoint by the next writer.
 *
 * Failure: when a batch cannot be written (disk full, permissions, a
 * ledger shorter than its head says), the ledger is unhealthy:
 * ledger_append() fails and ledger_healthy() is false until a later
 * flush succeeds; the gate refuses gated operations meanwhile (fail
 * closed) and the reason goes to syslog.
 *
 * Never recorded: a PIN, plaintext, or any key byte.
 */
#ifndef P11W_LEDGER_H
#define P11W_LEDGER_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LEDGER_RECORD_MAX 4096       /* bytes of one encoded record */
#define LEDGER_TEXT_MAX 1024         /* bytes of one text field (reason...) */
#define LEDGER_ID_MAX 256            /* bytes of a key id or label */
#define LEDGER_DEFAULT_BATCH_MS 200
#define LEDGER_DEFAULT_BATCH_MAX 256

enum ledger_fsync {
	LEDGER_FSYNC_ALWAYS,   /* one record per batch, fsync each */
	LEDGER_FSYNC_BATCH,    /* fsync at each batch (default) */
	LEDGER_FSYNC_NONE,     /* leave it to the kernel */
};

struct ledger_options {
	const char *path;            /* the ledger; PATH.head beside it */
	const char *key_file;        /* PEM private key, P-256 or Ed25519, mode 0600/0400,
	                              * owned by this account or root */
	enum ledger_fsync fsync;
	unsigned int batch_ms;       /* 1..10000 */
	unsigned int batch_max;      /* 1..65536 */
	bool flusher_thread;         /* false: flush only when a batch fills, at
	                              * ledger_flush() and at ledger_close() (the
	                              * admin tool) */
};

/* One record, as a caller fills it; NULL/0 fields are left out.  Text
 * longer than LEDGER_TEXT_MAX is cut (and marked). */
struct ledger_record {
	const char *event;           /* required: "initialize", "finalize", "login",
	                              * "login-failed", "logout", "gated-allow",
	                              * "gated-deny", "evidence-appraised",
	                              * "policy-loaded", "token-init", "pin-init",
	                              * "pin-change", "admin", ... */
	const char *slot;
	const unsigned char *key_id;
	size_t key_id_len;
	const unsigned char *key_label; /* bytes as the token holds them */
	size_t key_label_len;
	bool has_mechanism;
	unsigned long mechanism;
	const char *operation;       /* "decrypt", "unwrap", ... */
	const char *verdict;         /* "allow", "deny", "pass", "fail" */
	const char *reason;
	const char *policy;
	const unsigned char *policy_digest;   /* 32 bytes */
	const char *format;
	const char *anchor;
	const unsigned char *evidence_digest; /* 32 bytes */
	const char *user;            /* "user", "so", or an admin account name */
};

/*
 * Open (create if missing, mode 0600) and check the ledger: the key loads
 * and is P-256 or Ed25519, the tail is sound (a torn batch is cut back),
 * the head agrees.  0, or a negative error with the reason in @err.
 * Process-wide: one ledger per process.
 */
int ledger_open (const struct ledger_options *opt, char *err, size_t errlen);
/* Buffer @r (pid, uid, time and the chain fields are filled here).  0, or
 * a negative error when the ledger is not open (-EBADF), @r has no event
 * or a reserved one (-EINVAL: "genesis", "checkpoint"), or the ledger is
 * not healthy (-EIO...: the caller refuses what it was about to allow).
 * An unhealthy ledger tries to write at once; if it cannot, the record
 * stays buffered (up to 4 * batch-max records; beyond, it is dropped) to
 * be written by the first flush that succeeds. */
int ledger_append (const struct ledger_record *r);
/* Write what is buffered now.  0 or a negative error. */
int ledger_flush (void);
/* Is the ledger open and was its last write good?  Cheap (an atomic). */
bool ledger_healthy (void);
/* Why it is not (a copy), for messages. */
void ledger_last_error (char *out, size_t len);
/* Flush, stop the flusher, close. */
void ledger_close (void);
/* In a child after fork: forget (the flusher thread is not there). */
void ledger_abandon (void);

/* ------------------------------------------------------------ reading */

/* A record as read back (pointers into the reader's buffer, valid during
 * the callback). */
struct ledger_entry {
	uint64_t seq;
	int64_t time_ms;             /* ms since the epoch */
	bool checkpoint;
	const char *event;           /* NUL-terminated copies */
	const char *slot, *operation, *verdict, *reason, *policy, *format, *anchor, *user;
	const unsigned char *key_id;
	size_t key_id_len;
	const unsigned char *key_label;
	size_t key_label_len;
	bool has_mechanism;
	unsigned long mechanism;
	const unsigned char *policy_digest, *evidence_digest; /* 32 bytes or NULL */
	int64_t pid, uid;            /* -1 if absent */
	uint64_t offset;             /* of its frame in the file */
	const unsigned char *prev;   /* 32 bytes: SHA-256 of the previous frame */
	uint32_t cut;                /* bit (1 << key) per field cut short by the writer */
	uint32_t text_bytes;         /* bit (1 << key) per text field stored as a bstr
	                              * (the caller's string was not UTF-8) */
	/* checkpoint: */
	uint64_t count;              /* records it closes */
	int64_t alg;                 /* COSE alg: -7 ES256, -8 EdDSA */
	const unsigned char *kid;    /* 16 bytes: SHA-256(SPKI)[0..16) */
	const unsigned char *sig;    /* 64 bytes */
	/* genesis (seq 0): */
	const unsigned char *nonce;  /* 16 random bytes */
	const unsigned char *key_digest; /* 32 bytes: SHA-256 of the audit key's SPKI */
};

enum ledger_verify_status {
	LEDGER_VERIFY_OK = 0,
	LEDGER_VERIFY_BAD = 1,       /* a record fails: see first_bad, reason */
	LEDGER_VERIFY_IO = 2,        /* the file cannot be read */
};

struct ledger_verify_result {
	uint64_t records;            /* complete records read (checkpoints included) */
	uint64_t checkpoints;
	uint64_t verified;           /* records covered by a valid checkpoint */
	uint64_t unsigned_tail;      /* complete records after the last checkpoint */
	bool torn_tail;              /* an incomplete frame at the end */
	uint64_t torn_offset;        /* where it starts */
	uint64_t signed_end;         /* file offset just after the last checkpoint */
	uint64_t last_checkpoint_seq; /* and its sequence number and frame hash, to */
	unsigned char last_checkpoint_hash[32]; /* compare with the log's copy */
	int64_t first_bad;           /* sequence number of the first bad record, or -1 */
	uint64_t first_bad_offset;
	char reason[512];
};

/*
 * Verify the ledger at @path with the audit public key @pub (NULL: read
 * without it, for audit show: the chain and the sequence are checked, the
 * audit key and the signatures are not, so nothing read is authenticated), against
 * @head_path (NULL: PATH.head; a missing head file is an error unless
 * @no_head).  Checks every frame, the CBOR of every record, sequence
 * numbers (from 0, no gap, no repeat), the hash chain, every checkpoint's
 * signature, and that the head names a checkpoint in the file with the
 * same hash.  What follows the last checkpoint (complete records of a
 * batch whose write a crash cut short, and a torn frame) is not an error:
 * it is counted in unsigned_tail (and the torn frame's offset given), so
 * that verification passes up to the last complete record after kill -9;
 * those records are not authenticated, and the next writer cuts them.
 * @each (may be NULL) is called for every record that parses, in order,
 * before the verdict on it is known; a non-zero return stops reading.
 * Rate: tens of thousands of records a second (the signature check is per
 * checkpoint).
 */
enum ledger_verify_status
ledger_verify_file (const char *path, EVP_PKEY *pub, const char *head_path, bool no_head,
                    int (*each) (const struct ledger_entry *e, void *user), void *user,
                    struct ledger_verify_result *out);

/*
 * Parse one frame's record bytes (the fuzz target's entry point, and what
 * ledger_verify_file uses): 0 with @e filled (pointers into @buf or into
 * @scratch, @scratch_len bytes), or a negative error with the reason.
 */
int ledger_parse_record (const unsigned char *buf, size_t len, struct ledger_entry *e,
                         char *scratch, size_t scratch_len, char *err, size_t errlen);

#endif /* P11W_LEDGER_H */
