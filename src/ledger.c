/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit ledger's writer (src/ledger.h says what; ledger-impl.h holds
 * the format).
 *
 * The cost that matters is ledger_append() on the gated path: it encodes
 * the caller's fields into a CBOR map body with a tiny bounded writer (no
 * libcbor items, no allocation but the buffer's amortised growth) and
 * copies it into the pending buffer under a mutex.  Sequence numbers and
 * the chain are filled in at flush time, under the file lock, because only
 * then is it known what another process appended before.  Hence the key
 * order: seq (0) and prev (1) first, so that the rest of the map can be
 * encoded ahead.
 *
 * Locks: flush_mtx (one flush at a time in this process, held across the
 * file I/O) is taken before mtx (the pending buffer, held for copies
 * only); never the other way round.  Across processes, an exclusive OFD
 * lock on the ledger (fcntl F_OFD_SETLKW; F_SETLKW where the kernel lacks
 * it) is held from reading the tail to writing the head.
 */
#include "config.h"

#include "cose.h"
#include "ledger-impl.h"
#include "ledger.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define KEY_FILE_MAX (16 * 1024)
/* Room in a record for its map head, seq and prev, filled at flush time:
 * the body encoded at append time must leave it. */
#define BODY_MAX (LEDGER_RECORD_MAX - 48)
/* A body that does not fit with texts of LEDGER_TEXT_MAX bytes is encoded
 * again with every text cut to this (11 texts and two ids of this size
 * fit in BODY_MAX). */
#define TEXT_SHORT 160
#define ID_SHORT 128
/* When flushes keep failing, pending records stop being accepted at
 * this many times batch_max: never grow without bound. */
#define HARD_CAP_FACTOR 4
/* A ledger without a head but with this little in it is a crash while
 * the first batch was written, and may be cut; more is refused. */
#define GENESIS_TORN_MAX (2 * LEDGER_FRAME_MAX)

/* ---------------------------------------------------------------- bounded CBOR writer */

struct cw {
	unsigned char *p;
	size_t len, cap;
	bool full;
};

static void
cw_head (struct cw *w, unsigned int major, uint64_t v)
{
	unsigned char h[9];
	size_t n;
	major <<= 5;
	if (v < 24) {
		h[0] = (unsigned char)(major | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (unsigned char)(major | 24);
		h[1] = (unsigned char)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (unsigned char)(major | 25);
		h[1] = (unsigned char)(v >> 8);
		h[2] = (unsigned char)v;
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] = (unsigned char)(major | 26);
		for (int i = 0; i < 4; i++)
			h[1 + i] = (unsigned char)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = (unsigned char)(major | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (unsigned char)(v >> (56 - 8 * i));
		n = 9;
	}
	if (w->full || w->cap - w->len < n) {
		w->full = true;
		return;
	}
	memcpy (w->p + w->len, h, n);
	w->len += n;
}

static void
cw_raw (struct cw *w, const void *p, size_t n)
{
	if (w->full || w->cap - w->len < n) {
		w->full = true;
		return;
	}
	if (n)
		memcpy (w->p + w->len, p, n);
	w->len += n;
}

static void
cw_string (struct cw *w, unsigned int major, const void *p, size_t n)
{
	cw_head (w, major, n);
	cw_raw (w, p, n);
}

static void
put_uint (struct cw *w, unsigned int key, uint64_t v, unsigned int *pairs)
{
	cw_head (w, 0, key);
	cw_head (w, 0, v);
	(*pairs)++;
}

static void
put_bstr (struct cw *w, unsigned int key, const unsigned char *p, size_t n, size_t cap,
          uint32_t *cut, unsigned int *pairs)
{
	if (!p)
		return;
	if (n > cap) {
		n = cap;
		*cut |= 1u << key;
	}
	cw_head (w, 0, key);
	cw_string (w, 2, p, n);
	(*pairs)++;
}

/* A text field: a tstr when it is UTF-8, else a bstr (CBOR text must be
 * UTF-8, and a label or reason from a token need not be); cut at @cap
 * bytes, on a character boundary. */
static void
put_text (struct cw *w, unsigned int key, const char *s, size_t cap, uint32_t *cut,
          unsigned int *pairs)
{
	size_t n;
	if (!s)
		return;
	n = strnlen (s, cap + 1);
	if (n > cap) {
		n = cap;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		*cut |= 1u << key;
	}
	cw_head (w, 0, key);
	cw_string (w, util_utf8_valid ((const unsigned char *)s, n) ? 3 : 2, s, n);
	(*pairs)++;
}

/* ---------------------------------------------------------------- state */

/* The pending records: [u16 BE body length][u8 pairs][body] each. */
struct arena {
	unsigned char *buf;
	size_t len, cap;
	size_t count;
};

static struct {
	pthread_mutex_t mtx;          /* pending, open, stop, wake */
	pthread_mutex_t flush_mtx;    /* a flush; everything below the line */
	pthread_mutex_t err_mtx;      /* last_err */
	pthread_cond_t cond;
	bool inited;                  /* the mutexes and condvar */

	bool open;
	struct arena pending;
	size_t inflight_count;        /* copy of inflight.count, under mtx */
	bool stop, wake;
	pthread_t flusher;
	bool have_flusher;
	atomic_bool healthy;
	atomic_bool space_low;      /* the file system has less room than a batch needs */
	uint64_t space_need;        /* bytes: what "room for a batch" means here */
	char last_err[256];

	/* ---- under flush_mtx */
	struct arena inflight;        /* taken from pending; kept when a write fails */
	enum ledger_fsync fsync;
	unsigned int batch_ms, batch_max;
	char *path, *base, *head_base, *tmp_base;
	int fd, dirfd;
	EVP_PKEY *key;
	int64_t alg;
	unsigned char key_digest[LEDGER_HASH_LEN];
	EVP_MD_CTX *md_ctx;
	unsigned char *wbuf;
	size_t wcap;
	/* What this process knows of the file: valid while the file's size
	 * and identity are what it left. */
	bool known;
	dev_t dev;
	ino_t ino;
	struct ledger_point end;
	bool need_head;
	bool broken;                  /* truncation or tampering seen: never write */
} gl = { .fd = -1, .dirfd = -1 };

static void set_error (bool error, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Remember why the ledger is unhealthy, and tell syslog. */
static void
set_error (bool error, const char *fmt, ...)
{
	char msg[sizeof gl.last_err];
	va_list ap;
	va_start (ap, fmt);
	vsnprintf (msg, sizeof msg, fmt, ap);
	va_end (ap);
	pthread_mutex_lock (&gl.err_mtx);
	memcpy (gl.last_err, msg, sizeof msg);
	pthread_mutex_unlock (&gl.err_mtx);
	if (error)
		log_error ("audit ledger: %s", msg);
	else
		log_warning ("audit ledger: %s", msg);
}

static void set_err (char *err, size_t errlen, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static void
set_err (char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start (ap, fmt);
	vsnprintf (err, errlen, fmt, ap);
	va_end (ap);
}

static void
state_init (void)
{
	pthread_condattr_t ca;
	pthread_mutex_init (&gl.mtx, NULL);
	pthread_mutex_init (&gl.flush_mtx, NULL);
	pthread_mutex_init (&gl.err_mtx, NULL);
	pthread_condattr_init (&ca);
	/* batch_ms is an interval, not a date: immune to clock steps. */
	pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
	pthread_cond_init (&gl.cond, &ca);
	pthread_condattr_destroy (&ca);
	gl.inited = true;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static bool
arena_reserve (struct arena *a, size_t more)
{
	size_t ncap;
	unsigned char *nb;
	if (a->cap - a->len >= more)
		return true;
	ncap = a->cap ? a->cap : 16384;
	while (ncap - a->len < more) {
		if (ncap > SIZE_MAX / 2)
			return false;
		ncap *= 2;
	}
	nb = realloc (a->buf, ncap);
	if (!nb)
		return false;
	a->buf = nb;
	a->cap = ncap;
	return true;
}

static void
arena_free (struct arena *a)
{
	free (a->buf);
	memset (a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- file I/O */

#define LOCK_WAIT_MS 2000  /* the longest a writer waits for another's lock */

/*
 * Lock (or unlock) the ledger, waiting at most LOCK_WAIT_MS: a writer
 * that hangs holding the lock (stopped, or a reader holding a read lock)
 * must not hang every gated call behind it; past the wait the batch
 * fails, the ledger is unhealthy and releases are refused.
 */
static int
file_lock (int fd, short type)
{
	struct flock fl;
	unsigned int waited_ms = 0, step_ms = 1;
	for (;;) {
		memset (&fl, 0, sizeof fl);
		fl.l_type = type;
		fl.l_whence = SEEK_SET;
#ifdef F_OFD_SETLK
		/* OFD locks belong to the open file, not the process: closing
		 * another descriptor of the same file (a verifier in this
		 * process, say) does not drop them. */
		if (fcntl (fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINVAL) {
#endif
			if (fcntl (fd, F_SETLK, &fl) == 0)
				return 0;
#ifdef F_OFD_SETLK
		}
#endif
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EACCES) || type == F_UNLCK)
			return -errno;
		if (waited_ms >= LOCK_WAIT_MS)
			return -ETIMEDOUT;
		{
			struct timespec ts = { 0, (long)step_ms * 1000000L };
			nanosleep (&ts, NULL);
		}
		waited_ms += step_ms;
		if (step_ms < 20)
			step_ms *= 2;
	}
}

static int
write_full (int fd, const unsigned char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite (fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int
sync_fd (int fd)
{
	while (fdatasync (fd) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* PATH.head, replaced atomically: a temporary beside it (O_EXCL, under
 * the ledger lock, so a stale one from a crash is ours to remove),
 * written, synced, renamed over, and the directory synced. */
static int
write_head (const struct ledger_head *h, char *err, size_t errlen)
{
	unsigned char buf[LEDGER_HEAD_MAX];
	size_t n = ledger_head_encode (h, buf, sizeof buf);
	bool sync = gl.fsync != LEDGER_FSYNC_NONE;
	int fd, rv;

	if (n == 0) {
		set_err (err, errlen, "head does not encode");
		return -EINVAL;
	}
	(void)unlinkat (gl.dirfd, gl.tmp_base, 0);
	fd = openat (gl.dirfd, gl.tmp_base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rv = -errno;
		set_err (err, errlen, "%s.head: cannot create its temporary: %s", gl.path, strerror (errno));
		return rv;
	}
	rv = write_full (fd, buf, n, 0);
	if (rv == 0 && sync)
		rv = sync_fd (fd);
	if (close (fd) != 0 && rv == 0)
		rv = -errno;
	if (rv == 0 && renameat (gl.dirfd, gl.tmp_base, gl.dirfd, gl.head_base) != 0)
		rv = -errno;
	/* Some file systems cannot sync a directory (EINVAL): the rename
	 * is as durable as they make it. */
	if (rv == 0 && sync && (rv = sync_fd (gl.dirfd)) == -EINVAL)
		rv = 0;
	if (rv != 0) {
		(void)unlinkat (gl.dirfd, gl.tmp_base, 0);
		set_err (err, errlen, "%s.head: cannot write: %s", gl.path, strerror (-rv));
	}
	return rv;
}

/* Open (creating) the ledger by path, afresh: the one at the path is
 * the one that counts, should it have been replaced. */
static int
open_ledger_fd (char *err, size_t errlen)
{
	struct stat st;
	int fd = openat (gl.dirfd, gl.base, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0) {
		int rv = -errno;
		set_err (err, errlen, "%s: cannot open: %s", gl.path, strerror (errno));
		return rv;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		close (fd);
		set_err (err, errlen, "%s: not a regular file", gl.path);
		return -EINVAL;
	}
	if (gl.fd >= 0)
		close (gl.fd);
	gl.fd = fd;
	gl.known = false;
	return 0;
}

/*
 * With the lock held: where to append.  The fast path is a file of the
 * size and identity this process left.  Otherwise the head names the
 * last checkpoint: its frame must be there with the head's hash (else
 * the ledger was truncated or altered: refuse, never repair); past it, a
 * complete signed batch (a crash before the head was replaced) is
 * adopted and a torn or unsigned tail is cut.
 */
static int
establish_tail (char *err, size_t errlen)
{
	struct ledger_head head;
	struct ledger_point good;
	struct ledger_entry e;
	struct stat st;
	unsigned char *frame = NULL, h[LEDGER_HASH_LEN];
	char sub[256], scratch[LEDGER_RECORD_MAX + 32];
	uint64_t cps = 0, size;
	size_t len = 0;
	int rv;

	if (fstat (gl.fd, &st) != 0) {
		rv = -errno;
		set_err (err, errlen, "%s: %s", gl.path, strerror (errno));
		return rv;
	}
	size = (uint64_t)st.st_size;
	if (gl.known && st.st_dev == gl.dev && st.st_ino == gl.ino && size == gl.end.off)
		return 0;
	gl.known = false;

	memset (&good, 0, sizeof good);
	rv = ledger_head_read (gl.dirfd, gl.head_base, &head, sub, sizeof sub);
	if (rv == -ENOENT) {
		/* No head: a new ledger, or a crash while the first batch
		 * was written.  Anything more is a deleted head.  And a
		 * ledger this process has written to before that is now empty
		 * and headless was removed under it: starting a new one would
		 * hide that. */
		if (gl.end.off > 0) {
			gl.broken = true;
			set_err (err, errlen, "%s and its head were removed or replaced while this process "
			         "was writing it (it had reached record %" PRIu64 "): refusing to start a "
			         "new ledger", gl.path, gl.end.next_seq);
			return -EIO;
		}
		if (size > 0) {
			rv = ledger_scan_tail (gl.fd, size, &good, gl.key, &cps, err, errlen);
			if (rv != 0)
				return rv;
			/* The first batch (genesis, records, checkpoint) is one
			 * write before the first head: without a head, only it,
			 * whole or torn, can be there.  Anything after it (even
			 * past a damaged record the scan stopped at) means a
			 * deleted head, and cutting it would erase batches. */
			if (cps > 1 || (cps == 1 && size > good.off) ||
			    (cps == 0 && size > GENESIS_TORN_MAX)) {
				gl.broken = true;
				set_err (err, errlen, "%s.head is missing but the ledger holds %" PRIu64
				         " bytes%s: possible truncation; refusing to write (verify it with "
				         "p11-warden audit verify)", gl.path, size,
				         cps > 1 ? " and more than its first batch" : "");
				return -EIO;
			}
			gl.need_head = cps > 0;
		}
	} else if (rv != 0) {
		gl.broken = rv == -EBADMSG;
		set_err (err, errlen, "%s", sub);
		return rv == -EBADMSG ? -EIO : rv;
	} else {
		frame = malloc (LEDGER_FRAME_MAX);
		if (!frame) {
			set_err (err, errlen, "out of memory");
			return -ENOMEM;
		}
		rv = ledger_read_frame (gl.fd, size, head.offset, frame, &len, sub, sizeof sub);
		if (rv == 1 || rv == -EAGAIN) {
			gl.broken = true;
			set_err (err, errlen, "%s (%" PRIu64 " bytes) is shorter than its head says "
			         "(checkpoint %" PRIu64 " at offset %" PRIu64 "): possible truncation; "
			         "refusing to write", gl.path, size, head.seq, head.offset);
			free (frame);
			return -EIO;
		}
		if (rv == 0 && (!ledger_hash (gl.md_ctx, frame, len + LEDGER_FRAME_OVERHEAD, h) ||
		                memcmp (h, head.hash, LEDGER_HASH_LEN) != 0 ||
		                ledger_parse_record (frame + 4, len, &e, scratch, sizeof scratch, sub,
		                                     sizeof sub) != 0 ||
		                !e.checkpoint || e.seq != head.seq))
			rv = -EBADMSG;
		free (frame);
		if (rv != 0) {
			gl.broken = rv == -EBADMSG;
			set_err (err, errlen, "%s: the checkpoint at the head's offset %" PRIu64 " does not "
			         "have the head's hash: possible truncation or tampering; refusing to write",
			         gl.path, head.offset);
			return rv == -EBADMSG ? -EIO : rv;
		}
		good.off = head.offset + len + LEDGER_FRAME_OVERHEAD;
		good.next_seq = head.seq + 1;
		memcpy (good.prev, head.hash, LEDGER_HASH_LEN);
		if (size > good.off) {
			rv = ledger_scan_tail (gl.fd, size, &good, gl.key, &cps, err, errlen);
			if (rv != 0)
				return rv;
			gl.need_head = cps > 0;
		}
	}
	/* The ledger must be this key's: a ledger begun under another key
	 * cannot be continued (its checkpoints would not verify as one). */
	if (good.off > 0) {
		unsigned char *g = malloc (LEDGER_FRAME_MAX);
		if (!g) {
			set_err (err, errlen, "out of memory");
			return -ENOMEM;
		}
		rv = ledger_read_frame (gl.fd, size, 0, g, &len, sub, sizeof sub);
		if (rv == 0 && (ledger_parse_record (g + 4, len, &e, scratch, sizeof scratch, sub,
		                                     sizeof sub) != 0 ||
		                !e.key_digest || memcmp (e.key_digest, gl.key_digest, LEDGER_HASH_LEN)))
			rv = -EBADMSG;
		free (g);
		if (rv != 0) {
			gl.broken = true;
			set_err (err, errlen, "%s: its genesis record names another audit key than %s's (or "
			         "is damaged): refusing to write", gl.path, "this configuration");
			return -EIO;
		}
	}
	if (size > good.off) {
		set_error (false, "%s: cutting %" PRIu64 " byte(s) of torn or unsigned tail after "
		           "offset %" PRIu64 " (a writer crashed)", gl.path, size - good.off, good.off);
		while (ftruncate (gl.fd, (off_t)good.off) != 0) {
			if (errno != EINTR) {
				rv = -errno;
				set_err (err, errlen, "%s: cannot cut the torn tail: %s", gl.path, strerror (errno));
				return rv;
			}
		}
		if (gl.fsync != LEDGER_FSYNC_NONE)
			(void)sync_fd (gl.fd);
	}
	gl.end = good;
	gl.dev = st.st_dev;
	gl.ino = st.st_ino;
	gl.known = true;
	return 0;
}

/* ---------------------------------------------------------------- encoding a batch */

static bool
wbuf_reserve (size_t need)
{
	unsigned char *nb;
	size_t ncap = gl.wcap ? gl.wcap : 65536;
	if (gl.wcap >= need)
		return true;
	while (ncap < need)
		ncap *= 2;
	nb = realloc (gl.wbuf, ncap);
	if (!nb)
		return false;
	gl.wbuf = nb;
	gl.wcap = ncap;
	return true;
}

static void
put_be32 (unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int64_t
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes a record framed at wbuf + @o may take. */
static size_t
room (size_t o)
{
	size_t left = gl.wcap - o;
	if (gl.wcap < o + LEDGER_FRAME_OVERHEAD)
		return 0;
	left -= LEDGER_FRAME_OVERHEAD;
	return left < LEDGER_RECORD_MAX ? left : LEDGER_RECORD_MAX;
}

/* Frame the record body in @body (@pairs pairs) with seq and prev at
 * wbuf + *o; advances the chain.  The caller reserved the room. */
static bool
frame_record (size_t *o, const unsigned char *body, size_t body_len, unsigned int pairs,
              struct ledger_point *pt)
{
	struct cw w = { gl.wbuf + *o + 4, 0, room (*o), false };
	unsigned char *f = gl.wbuf + *o;

	cw_head (&w, 5, pairs + 2);
	cw_head (&w, 0, LK_SEQ);
	cw_head (&w, 0, pt->next_seq);
	cw_head (&w, 0, LK_PREV);
	cw_string (&w, 2, pt->prev, LEDGER_HASH_LEN);
	cw_raw (&w, body, body_len);
	if (w.full)
		return false;
	put_be32 (f, (uint32_t)w.len);
	put_be32 (f + 4 + w.len, (uint32_t)w.len);
	if (!ledger_hash (gl.md_ctx, f, w.len + LEDGER_FRAME_OVERHEAD, pt->prev))
		return false;
	pt->next_seq++;
	*o += w.len + LEDGER_FRAME_OVERHEAD;
	return true;
}

/* ES256 r||s or Ed25519 over @tbs. */
/* The order of P-256, big-endian. */
static const unsigned char p256_order[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static bool
sign (const unsigned char *tbs, size_t tbs_len, unsigned char sig[LEDGER_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t der_len = sizeof der;
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	bool ok = false;

	if (!ctx ||
	    EVP_DigestSignInit (ctx, NULL, gl.alg == COSE_ALG_ES256 ? ledger_sha256 () : NULL, NULL,
	                        gl.key) != 1)
		goto out;
	if (gl.alg == COSE_ALG_EDDSA) {
		size_t n = LEDGER_SIG_LEN;
		ok = EVP_DigestSign (ctx, sig, &n, tbs, tbs_len) == 1 && n == LEDGER_SIG_LEN;
		goto out;
	}
	if (EVP_DigestSign (ctx, der, &der_len, tbs, tbs_len) != 1)
		goto out;
	es = d2i_ECDSA_SIG (NULL, &p, (long)der_len);
	if (!es)
		goto out;
	ECDSA_SIG_get0 (es, &r, &s);
	/* RFC 9053 section 2.1: r and s, each left-padded to 32 bytes; s in
	 * its low form (n - s when s > n/2), which the verifier requires. */
	ok = BN_bn2binpad (r, sig, 32) == 32 && BN_bn2binpad (s, sig + 32, 32) == 32;
	if (ok && memcmp (sig + 32, ledger_p256_half_order, 32) > 0) {
		BIGNUM *n = BN_bin2bn (p256_order, sizeof p256_order, NULL);
		BIGNUM *low = BN_new ();
		ok = n && low && BN_sub (low, n, s) && BN_bn2binpad (low, sig + 32, 32) == 32;
		BN_free (n);
		BN_free (low);
	}
out:
	ECDSA_SIG_free (es);
	EVP_MD_CTX_free (ctx);
	ERR_clear_error ();
	return ok;
}

/* The checkpoint closing @count records: COSE_Sign1 over {seq, prev,
 * time, event "checkpoint", pid, uid, count}. */
static bool
frame_checkpoint (size_t *o, uint64_t count, struct ledger_point *pt, unsigned char *sig_out)
{
	unsigned char payload[128], prot[2 + 2 + 2 + LEDGER_KID_LEN];
	unsigned char tbs[256], sig[LEDGER_SIG_LEN];
	struct cw w = { payload, 0, sizeof payload, false };
	struct cw t = { tbs, 0, sizeof tbs, false };
	struct cw f;
	unsigned int pairs = 0;

	put_uint (&w, LK_SEQ, pt->next_seq, &pairs);
	cw_head (&w, 0, LK_PREV);
	cw_string (&w, 2, pt->prev, LEDGER_HASH_LEN);
	put_uint (&w, LK_TIME, (uint64_t)now_ms (), &pairs);
	cw_head (&w, 0, LK_EVENT);
	cw_string (&w, 3, LEDGER_EVENT_CHECKPOINT, strlen (LEDGER_EVENT_CHECKPOINT));
	put_uint (&w, LK_PID, (uint64_t)getpid (), &pairs);
	put_uint (&w, LK_UID, (uint64_t)geteuid (), &pairs);
	put_uint (&w, LK_COUNT, count, &pairs);
	if (w.full)
		return false;
	/* The map head goes in front: 7 pairs, one byte. */
	memmove (payload + 1, payload, w.len);
	payload[0] = 0xa7;
	w.len++;

	/* protected = {1: alg, 4: kid} */
	prot[0] = 0xa2;
	prot[1] = 0x01;
	prot[2] = gl.alg == COSE_ALG_ES256 ? 0x26 : 0x27;
	prot[3] = 0x04;
	prot[4] = 0x50;
	memcpy (prot + 5, gl.key_digest, LEDGER_KID_LEN);

	/* Sig_structure (RFC 9052 section 4.4): ["Signature1", protected,
	 * h'' (no external AAD), payload]. */
	cw_head (&t, 4, 4);
	cw_string (&t, 3, "Signature1", 10);
	cw_string (&t, 2, prot, 5 + LEDGER_KID_LEN);
	cw_string (&t, 2, NULL, 0);
	cw_string (&t, 2, payload, w.len);
	if (t.full || !sign (tbs, t.len, sig))
		return false;

	f = (struct cw){ gl.wbuf + *o + 4, 0, room (*o), false };
	cw_raw (&f, "\xd2", 1);
	cw_head (&f, 4, 4);
	cw_string (&f, 2, prot, 5 + LEDGER_KID_LEN);
	cw_head (&f, 5, 0);
	cw_string (&f, 2, payload, w.len);
	cw_string (&f, 2, sig, LEDGER_SIG_LEN);
	if (f.full)
		return false;
	put_be32 (gl.wbuf + *o, (uint32_t)f.len);
	put_be32 (gl.wbuf + *o + 4 + f.len, (uint32_t)f.len);
	if (!ledger_hash (gl.md_ctx, gl.wbuf + *o, f.len + LEDGER_FRAME_OVERHEAD, pt->prev))
		return false;
	memcpy (sig_out, sig, LEDGER_SIG_LEN);
	pt->next_seq++;
	*o += f.len + LEDGER_FRAME_OVERHEAD;
	return true;
}

/* The genesis record's body: event, pid, uid, nonce, key digest, version. */
static size_t
genesis_body (unsigned char *buf, size_t cap, unsigned int *pairs)
{
	struct cw w = { buf, 0, cap, false };
	unsigned char nonce[LEDGER_NONCE_LEN];
	if (RAND_bytes (nonce, sizeof nonce) != 1)
		return 0;
	*pairs = 0;
	put_uint (&w, LK_TIME, (uint64_t)now_ms (), pairs);
	cw_head (&w, 0, LK_EVENT);
	cw_string (&w, 3, LEDGER_EVENT_GENESIS, strlen (LEDGER_EVENT_GENESIS));
	(*pairs)++;
	put_uint (&w, LK_PID, (uint64_t)getpid (), pairs);
	put_uint (&w, LK_UID, (uint64_t)geteuid (), pairs);
	cw_head (&w, 0, LK_NONCE);
	cw_string (&w, 2, nonce, sizeof nonce);
	cw_head (&w, 0, LK_KEY_DIGEST);
	cw_string (&w, 2, gl.key_digest, LEDGER_HASH_LEN);
	put_uint (&w, LK_VERSION, LEDGER_FORMAT_VERSION, pairs);
	*pairs += 2;
	return w.full ? 0 : w.len;
}

/*
 * Write the inflight records (with flush_mtx held): under the file lock,
 * find the end, encode them in batches of batch_max, each closed by a
 * checkpoint, write it all with one write(), sync, replace the head.
 * A failed write is cut back and leaves the records inflight.
 */
static int
write_inflight (char *err, size_t errlen)
{
	struct ledger_point pt, before;
	struct ledger_head head;
	unsigned char sig[LEDGER_SIG_LEN], gbody[256];
	size_t o = 0, at = 0, gbody_len = 0, need;
	uint64_t last_cp_off = 0;
	unsigned int gpairs = 0;
	bool genesis, any_cp = false;
	int rv;

	memset (&head, 0, sizeof head);
	if (gl.broken) {
		set_err (err, errlen, "%s: refusing to write after possible truncation or tampering "
		         "(see the log)", gl.path);
		return -EIO;
	}
	/* Lock the file at the path: one replaced or removed behind this
	 * process's back is opened again (and then checked against the
	 * head like any other). */
	for (int tries = 0;; tries++) {
		struct stat pst, st;
		bool same;
		rv = file_lock (gl.fd, F_WRLCK);
		if (rv != 0) {
			set_err (err, errlen, "%s: cannot lock%s: %s", gl.path,
			         rv == -ETIMEDOUT ? " within 2 s (another process holds it)" : "",
			         strerror (-rv));
			return rv;
		}
		same = fstatat (gl.dirfd, gl.base, &pst, AT_SYMLINK_NOFOLLOW) == 0 &&
		       fstat (gl.fd, &st) == 0 && pst.st_dev == st.st_dev && pst.st_ino == st.st_ino;
		if (same)
			break;
		(void)file_lock (gl.fd, F_UNLCK);
		if (tries == 3) {
			set_err (err, errlen, "%s: keeps being replaced", gl.path);
			return -EIO;
		}
		rv = open_ledger_fd (err, errlen);
		if (rv != 0)
			return rv;
	}
	rv = establish_tail (err, errlen);
	if (rv != 0)
		goto unlock;
	genesis = gl.end.off == 0;
	if (gl.inflight.count == 0 && !genesis) {
		if (gl.need_head)
			goto head;
		goto unlock;
	}
	if (genesis) {
		gbody_len = genesis_body (gbody, sizeof gbody, &gpairs);
		if (gbody_len == 0) {
			rv = -EIO;
			set_err (err, errlen, "cannot make the genesis record (no randomness?)");
			goto unlock;
		}
	}
	/* Room: each record's frame, seq and prev around its body, and a
	 * checkpoint per batch (the encoders check it too). */
	need = (gl.inflight.count + 1) * (LEDGER_FRAME_OVERHEAD + 64) + gl.inflight.len +
	       gbody_len + ((gl.inflight.count + 1) / gl.batch_max + 2) * 512;
	if (!wbuf_reserve (need)) {
		rv = -ENOMEM;
		set_err (err, errlen, "out of memory");
		goto unlock;
	}
	pt = gl.end;
	{
		size_t in_batch = 0, left = gl.inflight.count;
		if (genesis) {
			if (!frame_record (&o, gbody, gbody_len, gpairs, &pt))
				goto encode_fail;
			in_batch++;
		}
		while (left > 0 || in_batch > 0) {
			if (left > 0 && in_batch < gl.batch_max) {
				const unsigned char *rec = gl.inflight.buf + at;
				size_t blen = (size_t)rec[0] << 8 | rec[1];
				if (!frame_record (&o, rec + 3, blen, rec[2], &pt))
					goto encode_fail;
				at += 3 + blen;
				left--;
				in_batch++;
				continue;
			}
			last_cp_off = o;
			if (!frame_checkpoint (&o, in_batch, &pt, sig))
				goto encode_fail;
			any_cp = true;
			in_batch = 0;
		}
	}

	/* One write; a short one (a full disk) is cut back so that the file
	 * ends on a checkpoint again. */
	rv = write_full (gl.fd, gl.wbuf, o, gl.end.off);
	if (rv == 0 && gl.fsync != LEDGER_FSYNC_NONE)
		rv = sync_fd (gl.fd);
	if (rv != 0) {
		set_err (err, errlen, "%s: cannot append %zu bytes: %s", gl.path, o, strerror (-rv));
		if (ftruncate (gl.fd, (off_t)gl.end.off) != 0)
			gl.known = false;
		goto unlock;
	}
	before = gl.end;
	gl.end = pt;
	gl.end.off += o;
	/* The file grew by o: still the file we know.  The records leave the
	 * buffer only once the head names their batch (below). */
	if (any_cp) {
		head.seq = pt.next_seq - 1;
		head.offset = gl.end.off - o + last_cp_off;
		memcpy (head.hash, pt.prev, LEDGER_HASH_LEN);
		memcpy (head.sig, sig, LEDGER_SIG_LEN);
		head.sig_len = LEDGER_SIG_LEN;
		gl.need_head = true;
	}
head:
	if (gl.need_head) {
		if (!any_cp) {
			/* A batch another writer left without its head: name the
			 * last checkpoint, read back. */
			unsigned char frame[LEDGER_FRAME_MAX];
			struct ledger_entry e;
			char scratch[LEDGER_RECORD_MAX + 32], sub[128];
			size_t len = 0;
			uint64_t off = 0, size = gl.end.off;
			/* Walk back by the trailing length words. */
			unsigned char w4[4];
			if (pread (gl.fd, w4, 4, (off_t)(size - 4)) != 4) {
				rv = -EIO;
				set_err (err, errlen, "%s: cannot read its last frame", gl.path);
				goto unlock;
			}
			off = (uint64_t)w4[0] << 24 | (uint64_t)w4[1] << 16 | (uint64_t)w4[2] << 8 | w4[3];
			if (off + LEDGER_FRAME_OVERHEAD > size ||
			    (off = size - LEDGER_FRAME_OVERHEAD - off,
			     ledger_read_frame (gl.fd, size, off, frame, &len, sub, sizeof sub) != 0 ||
			    ledger_parse_record (frame + 4, len, &e, scratch, sizeof scratch, sub,
			                         sizeof sub) != 0 ||
			    !e.checkpoint)) {
				rv = -EIO;
				set_err (err, errlen, "%s: its last frame is not a checkpoint", gl.path);
				goto unlock;
			}
			head.seq = e.seq;
			head.offset = off;
			memcpy (head.hash, gl.end.prev, LEDGER_HASH_LEN);
			memcpy (head.sig, e.sig, LEDGER_SIG_LEN);
			head.sig_len = LEDGER_SIG_LEN;
		}
		rv = write_head (&head, err, errlen);
		if (rv != 0) {
			if (any_cp) {
				/* The batch is in the file but its head is not (a full
				 * disk: the records fit in the last block, the new head
				 * file did not).  Cut the batch back: a release refused
				 * for want of a record must not stand in the ledger as
				 * made.  Its records stay buffered for the next try; the
				 * old head still names the old last checkpoint. */
				if (ftruncate (gl.fd, (off_t)before.off) != 0 ||
				    (gl.fsync != LEDGER_FSYNC_NONE && sync_fd (gl.fd) != 0))
					gl.known = false;
				gl.end = before;
				gl.need_head = false;
			}
			goto unlock;
		}
		gl.need_head = false;
		/* The head can be rewritten by whoever can write the ledger's
		 * directory; the log (syslog, best sent to another host) keeps
		 * a copy out of its reach, which `audit verify` prints to
		 * compare with: cutting batches off the end then shows. */
		{
			char hex[2 * LEDGER_HASH_LEN + 1];
			for (size_t i = 0; i < LEDGER_HASH_LEN; i++)
				snprintf (hex + 2 * i, 3, "%02x", head.hash[i]);
			log_info ("audit ledger: %s: checkpoint %" PRIu64 " %s", gl.path, head.seq, hex);
		}
	}
	if (any_cp) {
		gl.inflight.len = 0;
		gl.inflight.count = 0;
	}
	rv = 0;
	goto unlock;
encode_fail:
	rv = -EIO;
	set_err (err, errlen, "cannot encode or sign a batch");
unlock:
	(void)file_lock (gl.fd, F_UNLCK);
	return rv;
}

/* Move what is pending behind what is inflight (with flush_mtx held). */
static int
take_pending (void)
{
	int rv = 0;
	pthread_mutex_lock (&gl.mtx);
	if (gl.inflight.count == 0) {
		struct arena t = gl.inflight;
		gl.inflight = gl.pending;
		gl.pending = t;
		gl.pending.len = gl.pending.count = 0;
	} else if (gl.pending.count > 0) {
		if (arena_reserve (&gl.inflight, gl.pending.len)) {
			memcpy (gl.inflight.buf + gl.inflight.len, gl.pending.buf, gl.pending.len);
			gl.inflight.len += gl.pending.len;
			gl.inflight.count += gl.pending.count;
			gl.pending.len = gl.pending.count = 0;
		} else {
			rv = -ENOMEM;
		}
	}
	gl.inflight_count = gl.inflight.count;
	pthread_mutex_unlock (&gl.mtx);
	return rv;
}

static void check_space (void);

static int
flush_locked (void)
{
	char err[256];
	int rv;

	if (!gl.key)
		return -EBADF; /* closed meanwhile */
	rv = take_pending ();
	if (rv == 0)
		rv = write_inflight (err, sizeof err);
	else
		snprintf (err, sizeof err, "out of memory");
	pthread_mutex_lock (&gl.mtx);
	gl.inflight_count = gl.inflight.count;
	pthread_mutex_unlock (&gl.mtx);
	if (rv != 0) {
		bool was = atomic_exchange (&gl.healthy, false);
		/* Once per episode in syslog, not once per retry (an
		 * unhealthy ledger is retried at every append). */
		if (was)
			set_error (true, "%s", err);
		else {
			pthread_mutex_lock (&gl.err_mtx);
			snprintf (gl.last_err, sizeof gl.last_err, "%s", err);
			pthread_mutex_unlock (&gl.err_mtx);
		}
		return rv;
	}
	if (!atomic_exchange (&gl.healthy, true) && !gl.broken)
		log_warning ("audit ledger: %s: writable again", gl.path);
	/* A write that went through says nothing about the room left: look. */
	check_space ();
	return 0;
}

static int
flush_now (void)
{
	int rv;
	pthread_mutex_lock (&gl.flush_mtx);
	rv = flush_locked ();
	pthread_mutex_unlock (&gl.flush_mtx);
	return rv;
}

/* ---------------------------------------------------------------- flusher thread */

/* Is there room on the ledger's file system for a batch and a new head
 * (bytes and an inode)?  Below it the ledger reads as unhealthy, so that
 * the gate refuses before a release goes unrecorded.  Called by the
 * flusher at every tick and after every successful write (it only reads
 * the directory's fd and sets an atomic). */
static void
check_space (void)
{
	struct statvfs vfs;
	bool low, was;
	uint64_t need, total;
	if (gl.dirfd < 0 || fstatvfs (gl.dirfd, &vfs) != 0)
		return;
	/* On a small file system (a test's tmpfs) an eighth of it, at least
	 * a page: the margin must not exceed what the ledger can ever have. */
	need = gl.space_need;
	total = (uint64_t)vfs.f_blocks * (uint64_t)vfs.f_frsize;
	if (total / 8 < need)
		need = total / 8 > 4096 ? total / 8 : 4096;
	low = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize < need ||
	      (vfs.f_files != 0 && vfs.f_favail == 0);
	was = atomic_exchange (&gl.space_low, low);
	if (low && !was)
		set_error (true, "%s: less than %llu bytes (or no inode) left on its file system: "
		           "releases are refused until there is room", gl.path,
		           (unsigned long long)need);
	else if (!low && was)
		log_warning ("audit ledger: %s: room again on its file system", gl.path);
}

static void *
flusher_main (void *arg)
{
	(void)arg;
	pthread_mutex_lock (&gl.mtx);
	while (!gl.stop) {
		struct timespec ts;
		clock_gettime (CLOCK_MONOTONIC, &ts);
		ts.tv_sec += gl.batch_ms / 1000;
		ts.tv_nsec += (long)(gl.batch_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!gl.stop && !gl.wake) {
			if (pthread_cond_timedwait (&gl.cond, &gl.mtx, &ts) == ETIMEDOUT)
				break;
		}
		gl.wake = false;
		if (gl.stop)
			break;
		/* A disk that fills while nothing is waiting would otherwise be
		 * seen only when the next batch fails, after the releases it
		 * records were made: look at the room left at every tick. */
		check_space ();
		if (gl.pending.count == 0 && gl.inflight_count == 0)
			continue;
		pthread_mutex_unlock (&gl.mtx);
		(void)flush_now ();
		pthread_mutex_lock (&gl.mtx);
	}
	pthread_mutex_unlock (&gl.mtx);
	return NULL;
}

/* ---------------------------------------------------------------- API */

static int
load_key (const char *file, char *err, size_t errlen)
{
	char *pem;
	size_t len = 0;
	BIO *bio;
	EVP_PKEY *pkey = NULL;
	int rv;

	pem = util_read_file (file, KEY_FILE_MAX, UTIL_FILE_OWNED | UTIL_FILE_PRIVATE,
	                      "the audit key signs the ledger", &len, NULL, err, errlen);
	if (!pem)
		return -EACCES;
	bio = BIO_new_mem_buf (pem, (int)len);
	if (bio)
		pkey = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
	BIO_free (bio);
	OPENSSL_cleanse (pem, len);
	free (pem);
	ERR_clear_error ();
	if (!pkey) {
		set_err (err, errlen, "%s: not a PEM private key (unencrypted)", file);
		return -EINVAL;
	}
	rv = ledger_key_ids (pkey, gl.key_digest, &gl.alg, err, errlen);
	if (rv != 0) {
		char sub[200];
		snprintf (sub, sizeof sub, "%s", err);
		set_err (err, errlen, "%s: %s", file, sub);
		EVP_PKEY_free (pkey);
		return rv;
	}
	gl.key = pkey;
	return 0;
}

static void
release_files (void)
{
	if (gl.fd >= 0)
		close (gl.fd);
	if (gl.dirfd >= 0)
		close (gl.dirfd);
	gl.fd = gl.dirfd = -1;
	free (gl.path);
	free (gl.base);
	free (gl.head_base);
	free (gl.tmp_base);
	gl.path = gl.base = gl.head_base = gl.tmp_base = NULL;
	EVP_PKEY_free (gl.key);
	gl.key = NULL;
	EVP_MD_CTX_free (gl.md_ctx);
	gl.md_ctx = NULL;
	free (gl.wbuf);
	gl.wbuf = NULL;
	gl.wcap = 0;
	arena_free (&gl.pending);
	arena_free (&gl.inflight);
	gl.inflight_count = 0;
	gl.known = gl.need_head = gl.broken = false;
	/* A new open starts from the file as it is (a ledger rotated between
	 * C_Finalize and C_Initialize is a new ledger, not a removed one). */
	memset (&gl.end, 0, sizeof gl.end);
}

int
ledger_open (const struct ledger_options *opt, char *err, size_t errlen)
{
	const char *slash;
	char *dir = NULL;
	sigset_t all, old;
	int rv;

	set_err (err, errlen, "ok");
	if (!opt || !opt->path || !opt->key_file || !*opt->path || opt->batch_ms < 1 ||
	    opt->batch_ms > 10000 || opt->batch_max < 1 || opt->batch_max > LEDGER_BATCH_LIMIT ||
	    (opt->fsync != LEDGER_FSYNC_ALWAYS && opt->fsync != LEDGER_FSYNC_BATCH &&
	     opt->fsync != LEDGER_FSYNC_NONE)) {
		set_err (err, errlen, "ledger options out of range (path, key, batch-ms 1..10000, "
		         "batch-max 1..%d, fsync)", LEDGER_BATCH_LIMIT);
		return -EINVAL;
	}
	pthread_once (&init_once, state_init);
	if (!gl.inited)
		state_init (); /* after ledger_abandon */
	pthread_mutex_lock (&gl.flush_mtx);
	if (gl.open) {
		pthread_mutex_unlock (&gl.flush_mtx);
		set_err (err, errlen, "the audit ledger is already open");
		return -EBUSY;
	}
	gl.fsync = opt->fsync;
	gl.batch_ms = opt->batch_ms;
	gl.batch_max = opt->fsync == LEDGER_FSYNC_ALWAYS ? 1 : opt->batch_max;
	/* Room for a batch at ~256 bytes a record, its checkpoint and a head,
	 * and some slack: capped, since a large batch_max needs no more than
	 * what the disk holds for a while. */
	gl.space_need = 8192 + (uint64_t)gl.batch_max * 256;
	if (gl.space_need > 1024 * 1024)
		gl.space_need = 1024 * 1024;
	atomic_store (&gl.space_low, false);

	slash = strrchr (opt->path, '/');
	gl.path = strdup (opt->path);
	dir = slash ? strndup (opt->path, (size_t)(slash - opt->path)) : strdup (".");
	gl.base = strdup (slash ? slash + 1 : opt->path);
	gl.md_ctx = EVP_MD_CTX_new ();
	if (!gl.path || !dir || !gl.base || !gl.md_ctx ||
	    asprintf (&gl.head_base, "%s.head", gl.base) < 0 ||
	    asprintf (&gl.tmp_base, "%s.head.tmp", gl.base) < 0) {
		gl.head_base = gl.tmp_base = NULL;
		rv = -ENOMEM;
		set_err (err, errlen, "out of memory");
		goto fail;
	}
	if (!*gl.base || strlen (opt->path) > PATH_MAX - 16) {
		rv = -EINVAL;
		set_err (err, errlen, "%s: not a file path", opt->path);
		goto fail;
	}
	gl.dirfd = open (*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (gl.dirfd < 0) {
		rv = -errno;
		set_err (err, errlen, "%s: cannot open its directory: %s", opt->path, strerror (errno));
		goto fail;
	}
	rv = load_key (opt->key_file, err, errlen);
	if (rv != 0)
		goto fail;
	rv = open_ledger_fd (err, errlen);
	if (rv != 0)
		goto fail;
	/* Check the tail, cut a torn one, write the genesis batch of a new
	 * ledger or a missing head now: errors show at open, not at the
	 * first gated call. */
	rv = write_inflight (err, errlen);
	if (rv != 0)
		goto fail;

	gl.stop = gl.wake = false;
	atomic_store (&gl.healthy, true);
	pthread_mutex_lock (&gl.err_mtx);
	gl.last_err[0] = '\0';
	pthread_mutex_unlock (&gl.err_mtx);
	if (opt->flusher_thread) {
		/* The host's signals go to the host's threads. */
		sigfillset (&all);
		pthread_sigmask (SIG_BLOCK, &all, &old);
		rv = pthread_create (&gl.flusher, NULL, flusher_main, NULL);
		pthread_sigmask (SIG_SETMASK, &old, NULL);
		if (rv != 0) {
			set_err (err, errlen, "cannot start the ledger's flusher thread: %s", strerror (rv));
			rv = -rv;
			goto fail;
		}
		gl.have_flusher = true;
	}
	pthread_mutex_lock (&gl.mtx);
	gl.open = true;
	pthread_mutex_unlock (&gl.mtx);
	pthread_mutex_unlock (&gl.flush_mtx);
	free (dir);
	return 0;
fail:
	release_files ();
	free (dir);
	atomic_store (&gl.healthy, false);
	pthread_mutex_unlock (&gl.flush_mtx);
	return rv;
}

/* Encode @r's fields but seq and prev: 0 and the body's length, or a
 * negative error. */
static int
encode_body (const struct ledger_record *r, unsigned char *buf, size_t *len, unsigned int *pairs)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t tcap = pass ? TEXT_SHORT : LEDGER_TEXT_MAX, icap = pass ? ID_SHORT : LEDGER_ID_MAX;
		struct cw w = { buf, 0, BODY_MAX, false };
		uint32_t cut = 0;
		*pairs = 0;
		put_uint (&w, LK_TIME, (uint64_t)now_ms (), pairs);
		put_text (&w, LK_EVENT, r->event, tcap, &cut, pairs);
		put_text (&w, LK_SLOT, r->slot, tcap, &cut, pairs);
		put_bstr (&w, LK_KEY_ID, r->key_id, r->key_id_len, icap, &cut, pairs);
		put_bstr (&w, LK_KEY_LABEL, r->key_label, r->key_label_len, icap, &cut, pairs);
		if (r->has_mechanism)
			put_uint (&w, LK_MECHANISM, r->mechanism, pairs);
		put_text (&w, LK_OPERATION, r->operation, tcap, &cut, pairs);
		put_text (&w, LK_VERDICT, r->verdict, tcap, &cut, pairs);
		put_text (&w, LK_REASON, r->reason, tcap, &cut, pairs);
		put_text (&w, LK_POLICY, r->policy, tcap, &cut, pairs);
		put_bstr (&w, LK_POLICY_DIGEST, r->policy_digest, LEDGER_HASH_LEN, LEDGER_HASH_LEN, &cut,
		          pairs);
		put_text (&w, LK_FORMAT, r->format, tcap, &cut, pairs);
		put_text (&w, LK_ANCHOR, r->anchor, tcap, &cut, pairs);
		put_bstr (&w, LK_EVIDENCE_DIGEST, r->evidence_digest, LEDGER_HASH_LEN, LEDGER_HASH_LEN,
		          &cut, pairs);
		put_uint (&w, LK_PID, (uint64_t)getpid (), pairs);
		put_uint (&w, LK_UID, (uint64_t)geteuid (), pairs);
		put_text (&w, LK_USER, r->user, tcap, &cut, pairs);
		if (cut)
			put_uint (&w, LK_CUT, cut, pairs);
		if (!w.full) {
			*len = w.len;
			return 0;
		}
	}
	return -E2BIG; /* cannot happen with the caps above */
}

static int append_once (const struct ledger_record *r, bool force, bool *again);

int
ledger_append (const struct ledger_record *r)
{
	bool again = false;
	int rv = append_once (r, false, &again);
	/* At the hard cap with a healthy ledger, this thread has flushed
	 * (the flusher fell behind): the record goes in even if other
	 * threads filled the buffer again meanwhile (the cap is against
	 * flushes that fail, and this one did not). */
	if (again)
		rv = append_once (r, true, &again);
	return rv;
}

static int
append_once (const struct ledger_record *r, bool force, bool *again)
{
	unsigned char body[BODY_MAX];
	size_t len = 0;
	unsigned int pairs = 0;
	bool sync = false, cap_hit = false;
	int rv;

	/* The event names the record: UTF-8 text, and not one of the two
	 * this code writes itself. */
	if (!r || !r->event || !*r->event || strlen (r->event) > 64 ||
	    !util_utf8_valid ((const unsigned char *)r->event, strlen (r->event)) ||
	    !strcmp (r->event, LEDGER_EVENT_GENESIS) || !strcmp (r->event, LEDGER_EVENT_CHECKPOINT))
		return -EINVAL;
	rv = encode_body (r, body, &len, &pairs);
	if (rv != 0)
		return rv;

	pthread_mutex_lock (&gl.mtx);
	if (!gl.open) {
		pthread_mutex_unlock (&gl.mtx);
		return -EBADF;
	}
	if (!force && gl.pending.count + gl.inflight_count >= (size_t)HARD_CAP_FACTOR * gl.batch_max) {
		cap_hit = true;
	} else if (!arena_reserve (&gl.pending, 3 + len)) {
		pthread_mutex_unlock (&gl.mtx);
		return -ENOMEM;
	} else {
		unsigned char *p = gl.pending.buf + gl.pending.len;
		p[0] = (unsigned char)(len >> 8);
		p[1] = (unsigned char)len;
		p[2] = (unsigned char)pairs;
		memcpy (p + 3, body, len);
		gl.pending.len += 3 + len;
		gl.pending.count++;
	}
	/* A full batch: the flusher writes it while this thread goes on (a
	 * gated call does not wait for fsync); without a flusher, with
	 * fsync = always, or when the flusher falls behind by the hard cap,
	 * this thread writes. */
	if (gl.pending.count >= gl.batch_max) {
		if (gl.have_flusher && gl.fsync != LEDGER_FSYNC_ALWAYS && !cap_hit) {
			gl.wake = true;
			pthread_cond_signal (&gl.cond);
		} else {
			sync = true;
		}
	}
	if (cap_hit)
		sync = true;
	pthread_mutex_unlock (&gl.mtx);

	if (cap_hit && !atomic_load (&gl.healthy))
		return -EIO; /* not buffered: flushes keep failing */
	if (sync || !atomic_load (&gl.healthy)) {
		/* Unhealthy: try now, so that a disk with room again is seen
		 * at once rather than at the next batch. */
		rv = flush_now ();
		if (rv != 0)
			return rv;
		*again = cap_hit;
	}
	return 0;
}

int
ledger_flush (void)
{
	bool open;
	pthread_mutex_lock (&gl.mtx);
	open = gl.open;
	pthread_mutex_unlock (&gl.mtx);
	if (!open)
		return -EBADF;
	return flush_now ();
}

bool
ledger_healthy (void)
{
	return atomic_load (&gl.healthy) && !atomic_load (&gl.space_low);
}

void
ledger_last_error (char *out, size_t len)
{
	if (!out || len == 0)
		return;
	if (!gl.inited) {
		snprintf (out, len, "the audit ledger is not open");
		return;
	}
	pthread_mutex_lock (&gl.err_mtx);
	snprintf (out, len, "%s", gl.last_err[0] ? gl.last_err : "no error");
	pthread_mutex_unlock (&gl.err_mtx);
}

void
ledger_close (void)
{
	if (!gl.inited)
		return;
	pthread_mutex_lock (&gl.mtx);
	if (!gl.open) {
		pthread_mutex_unlock (&gl.mtx);
		return;
	}
	gl.stop = true;
	/* From here on appends fail (the gate refuses what it cannot
	 * record), so that none lands after the final flush unwritten. */
	gl.open = false;
	pthread_cond_signal (&gl.cond);
	pthread_mutex_unlock (&gl.mtx);
	if (gl.have_flusher) {
		pthread_join (gl.flusher, NULL);
		gl.have_flusher = false;
	}
	if (flush_now () != 0) {
		char why[sizeof gl.last_err];
		ledger_last_error (why, sizeof why);
		log_error ("audit ledger: records lost at close: %s", why);
	}
	pthread_mutex_lock (&gl.flush_mtx);
	pthread_mutex_lock (&gl.mtx);
	gl.open = false;
	pthread_mutex_unlock (&gl.mtx);
	release_files ();
	atomic_store (&gl.healthy, false);
	pthread_mutex_unlock (&gl.flush_mtx);
}

void
ledger_abandon (void)
{
	/* In a child after fork: the flusher thread was not copied, and a
	 * mutex may have been copied locked.  Leak what the parent's threads
	 * may have been using; keep nothing of it.  The descriptors are this
	 * process's own copies (an OFD lock stays with the parent's). */
	if (gl.fd >= 0)
		close (gl.fd);
	if (gl.dirfd >= 0)
		close (gl.dirfd);
	memset (&gl, 0, sizeof gl);
	gl.fd = gl.dirfd = -1;
	atomic_store (&gl.healthy, false);
	state_init ();
}
