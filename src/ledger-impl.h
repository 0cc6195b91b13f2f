/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ledger's writer (ledger.c) and reader (ledger-read.c) share:
 * the record keys, the head file, the tail scan that a writer runs after
 * a crash.  Not for other callers: src/ledger.h is the interface.
 *
 * Frame:  u32 BE L | L bytes of record | u32 BE L, 1 <= L <= LEDGER_RECORD_MAX.
 * Chain:  a record's prev is SHA-256 of the whole previous frame, both
 *         length words included (so that the framing is chained too);
 *         the genesis record (seq 0) has 32 zero bytes.
 */
#ifndef P11W_LEDGER_IMPL_H
#define P11W_LEDGER_IMPL_H

#include "ledger.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record map keys (unsigned, strictly ascending in every record). */
enum ledger_key {
	LK_SEQ = 0,              /* uint */
	LK_PREV = 1,             /* bstr 32: SHA-256 of the previous frame */
	LK_TIME = 2,             /* uint: ms since the epoch */
	LK_EVENT = 3,            /* text */
	LK_SLOT = 4,             /* text */
	LK_KEY_ID = 5,           /* bstr <= LEDGER_ID_MAX */
	LK_KEY_LABEL = 6,        /* bstr <= LEDGER_ID_MAX */
	LK_MECHANISM = 7,        /* uint */
	LK_OPERATION = 8,        /* text */
	LK_VERDICT = 9,          /* text */
	LK_REASON = 10,          /* text */
	LK_POLICY = 11,          /* text */
	LK_POLICY_DIGEST = 12,   /* bstr 32 */
	LK_FORMAT = 13,          /* text */
	LK_ANCHOR = 14,          /* text */
	LK_EVIDENCE_DIGEST = 15, /* bstr 32 */
	LK_PID = 16,             /* uint */
	LK_UID = 17,             /* uint */
	LK_USER = 18,            /* text */
	LK_CUT = 19,             /* uint: bit (1 << key) for each field cut short */
	LK_NONCE = 20,           /* genesis only: bstr 16, random per ledger */
	LK_KEY_DIGEST = 21,      /* genesis only: bstr 32, SHA-256 of the audit key's SPKI */
	LK_COUNT = 22,           /* checkpoint only: uint, records the checkpoint closes */
	LK_VERSION = 23,         /* genesis only: uint, 1 */
	LK_MAX = LK_VERSION,
};

/* "text": a tstr holding valid UTF-8, or a bstr when the caller's string
 * was not UTF-8; never a NUL inside. */

#define LEDGER_HASH_LEN 32
#define LEDGER_KID_LEN 16
#define LEDGER_NONCE_LEN 16
#define LEDGER_SIG_LEN 64           /* ES256 r||s, or Ed25519 */
#define LEDGER_FRAME_OVERHEAD 8
#define LEDGER_FRAME_MAX (LEDGER_RECORD_MAX + LEDGER_FRAME_OVERHEAD)
#define LEDGER_FORMAT_VERSION 1
/* Records between two checkpoints, at most (writers close a batch sooner:
 * batch_max is at most this). */
#define LEDGER_BATCH_LIMIT 65536
#define LEDGER_HEAD_MAX 512

#define LEDGER_EVENT_GENESIS "genesis"
#define LEDGER_EVENT_CHECKPOINT "checkpoint"

/* SHA-256, fetched once (an implicit fetch takes a lock at every use). */
const EVP_MD *ledger_sha256 (void);
/* SHA-256 of @n bytes with a caller's context (reused: no allocation). */
bool ledger_hash (EVP_MD_CTX *ctx, const unsigned char *p, size_t n,
                  unsigned char out[LEDGER_HASH_LEN]);

/* The audit key's identity: SHA-256 of its SubjectPublicKeyInfo (the kid
 * is its first LEDGER_KID_LEN bytes) and its COSE algorithm (ES256 for
 * P-256, EdDSA for Ed25519).  0, or a negative error for another key. */
int ledger_key_ids (EVP_PKEY *pkey, unsigned char digest[LEDGER_HASH_LEN], int64_t *alg,
                    char *err, size_t errlen);


/*
 * PATH.head: a CBOR map {0: version 1, 1: seq, 2: offset, 3: hash (bstr
 * 32), 4: signature (bstr)} naming the last checkpoint written: its
 * sequence number, the offset of its frame, SHA-256 of that frame, and
 * the checkpoint's signature.
 */
struct ledger_head {
	uint64_t seq;
	uint64_t offset;
	unsigned char hash[LEDGER_HASH_LEN];
	unsigned char sig[LEDGER_SIG_LEN];
	size_t sig_len;
};

size_t ledger_head_encode (const struct ledger_head *h, unsigned char *buf, size_t cap);
int ledger_head_parse (const unsigned char *buf, size_t len, struct ledger_head *h, char *err,
                       size_t errlen);
/* Read and parse @path (via dirfd when >= 0); -ENOENT when missing. */
int ledger_head_read (int dirfd, const char *path, struct ledger_head *h, char *err,
                      size_t errlen);

/* Is the frame at @off of @fd (of @size bytes) complete, with matching
 * length words?  0 with the record in @rec (LEDGER_RECORD_MAX bytes) and
 * its length; 1 for nothing there (end); -EAGAIN for a torn frame;
 * -EBADMSG for bad length words; -errno for a read error. */
int ledger_read_frame (int fd, uint64_t size, uint64_t off, unsigned char *frame,
                       size_t *rec_len, char *err, size_t errlen);

/* Where a writer may append: after a checkpoint it trusts. */
struct ledger_point {
	uint64_t off;                     /* just after that checkpoint's frame */
	uint64_t next_seq;
	unsigned char prev[LEDGER_HASH_LEN]; /* hash of that frame */
};

/*
 * A writer after a crash: walk the frames from @good (a trusted point;
 * {0, 0, zeros} for a ledger without a head) to @size, and move @good
 * past every batch that is complete, chains, and whose checkpoint the key
 * signs (a crash between the batch's write and the head's); what follows
 * the last such point is a torn or unsigned tail for the caller to cut.
 * @checkpoints counts the checkpoints passed.  0, or a negative error
 * (I/O, no memory) with @err.
 */
int ledger_scan_tail (int fd, uint64_t size, struct ledger_point *good, EVP_PKEY *key,
                      uint64_t *checkpoints, char *err, size_t errlen);

/* Verify a checkpoint frame's signature under @key (kid and alg from
 * ledger_key_ids).  0, or a negative error with the reason. */
int ledger_checkpoint_verify (const unsigned char *rec, size_t len, EVP_PKEY *key,
                              const unsigned char *kid, int64_t alg, char *err, size_t errlen);

/* Half the order of P-256, big-endian: an ES256 checkpoint's s must not
 * exceed it (low-S), so that each checkpoint has one encoding and so one
 * frame hash (what the log keeps and audit verify prints). */
extern const unsigned char ledger_p256_half_order[32];

#endif /* P11W_LEDGER_IMPL_H */
