/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit ledger's reader: the record parser (the fuzz target's entry
 * point), the head file, the tail scan a writer runs after a crash, and
 * the offline verifier (p11-warden audit verify).
 *
 * Records are parsed by hand rather than through libcbor: the writer
 * produces one canonical form (definite lengths, shortest heads, integer
 * keys strictly ascending, a fixed set of value types), so anything else
 * is refused, and a bounded walk over at most LEDGER_RECORD_MAX bytes
 * allocates nothing.  Checkpoint signatures are checked by
 * cose_sign1_verify (src/cose.c).
 */
#include "config.h"

#include "cose.h"
#include "ledger-impl.h"
#include "util.h"
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- shared helpers */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
fetch_sha256 (void)
{
	sha256_md = EVP_MD_fetch (NULL, "SHA256", NULL);
}

const EVP_MD *
ledger_sha256 (void)
{
	pthread_once (&sha256_once, fetch_sha256);
	return sha256_md ? sha256_md : EVP_sha256 ();
}

bool
ledger_hash (EVP_MD_CTX *ctx, const unsigned char *p, size_t n, unsigned char out[LEDGER_HASH_LEN])
{
	unsigned int len = 0;
	return EVP_DigestInit_ex2 (ctx, ledger_sha256 (), NULL) == 1 &&
	       EVP_DigestUpdate (ctx, p, n) == 1 && EVP_DigestFinal_ex (ctx, out, &len) == 1 &&
	       len == LEDGER_HASH_LEN;
}

int
ledger_key_ids (EVP_PKEY *pkey, unsigned char digest[LEDGER_HASH_LEN], int64_t *alg, char *err,
                size_t errlen)
{
	unsigned char *der = NULL;
	char group[64];
	size_t glen = 0;
	unsigned int dlen = 0;
	int n, rv = -EINVAL;

	if (!pkey) {
		set_err (err, errlen, "no key");
		return -EINVAL;
	}
	if (EVP_PKEY_is_a (pkey, "ED25519")) {
		*alg = COSE_ALG_EDDSA;
	} else if (EVP_PKEY_is_a (pkey, "EC") &&
	           EVP_PKEY_get_group_name (pkey, group, sizeof group, &glen) == 1 &&
	           (!strcmp (group, "prime256v1") || !strcmp (group, "P-256"))) {
		*alg = COSE_ALG_ES256;
	} else {
		set_err (err, errlen, "the audit key is %s: P-256 or Ed25519 only",
		         EVP_PKEY_get0_type_name (pkey) ? EVP_PKEY_get0_type_name (pkey) : "of unknown type");
		return -EINVAL;
	}
	n = i2d_PUBKEY (pkey, &der);
	if (n <= 0 || EVP_Digest (der, (size_t)n, digest, &dlen, ledger_sha256 (), NULL) != 1 ||
	    dlen != LEDGER_HASH_LEN) {
		set_err (err, errlen, "cannot encode the audit key's public part");
		rv = -EIO;
		goto out;
	}
	rv = 0;
out:
	OPENSSL_free (der);
	ERR_clear_error ();
	return rv;
}


/* ---------------------------------------------------------------- bounded CBOR reader */

struct rd {
	const unsigned char *p;
	size_t len, off;
};

/*
 * One head: major type and argument, shortest form only (what the writer
 * produces; anything else is not a record of ours), no indefinite length.
 */
static bool
rd_head (struct rd *r, unsigned int *major, uint64_t *v)
{
	unsigned int ai;
	size_t n;
	if (r->off >= r->len)
		return false;
	*major = r->p[r->off] >> 5;
	ai = r->p[r->off] & 0x1f;
	r->off++;
	if (ai < 24) {
		*v = ai;
		return true;
	}
	if (ai > 27)
		return false;
	n = (size_t)1 << (ai - 24);
	if (r->len - r->off < n)
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | r->p[r->off + i];
	r->off += n;
	/* Shortest form: a longer head than the value needs is refused. */
	switch (ai) {
	case 24: return *v >= 24;
	case 25: return *v > 0xff;
	case 26: return *v > 0xffff;
	default: return *v > 0xffffffffu;
	}
}

/* A string of major type @major and at most @max bytes. */
static bool
rd_string (struct rd *r, unsigned int want, size_t max, const unsigned char **s, size_t *n,
           unsigned int *major)
{
	uint64_t v;
	unsigned int m;
	if (!rd_head (r, &m, &v) || (want != 0 && m != want) || (want == 0 && m != 2 && m != 3))
		return false;
	if (v > max || v > r->len - r->off)
		return false;
	*s = r->p + r->off;
	*n = (size_t)v;
	r->off += (size_t)v;
	if (major)
		*major = m;
	return true;
}

/* ---------------------------------------------------------------- records */

enum rec_kind { KIND_RECORD, KIND_CHECKPOINT };

struct scratch {
	char *p;
	size_t len, used;
};

static const char *
scratch_copy (struct scratch *sc, const unsigned char *s, size_t n)
{
	char *out;
	if (sc->len - sc->used < n + 1)
		return NULL;
	out = sc->p + sc->used;
	memcpy (out, s, n);
	out[n] = '\0';
	sc->used += n + 1;
	return out;
}

static const char **
text_slot (struct ledger_entry *e, uint64_t key)
{
	switch (key) {
	case LK_EVENT: return &e->event;
	case LK_SLOT: return &e->slot;
	case LK_OPERATION: return &e->operation;
	case LK_VERDICT: return &e->verdict;
	case LK_REASON: return &e->reason;
	case LK_POLICY: return &e->policy;
	case LK_FORMAT: return &e->format;
	case LK_ANCHOR: return &e->anchor;
	case LK_USER: return &e->user;
	}
	return NULL;
}

static const char *const key_names[LK_MAX + 1] = {
	"seq", "prev", "time", "event", "slot", "key id", "key label", "mechanism", "operation",
	"verdict", "reason", "policy", "policy digest", "format", "anchor", "evidence digest", "pid",
	"uid", "user", "cut", "nonce", "key digest", "count", "version",
};

static int
parse_map (const unsigned char *buf, size_t len, size_t base, enum rec_kind kind,
           struct ledger_entry *e, struct scratch *sc, char *err, size_t errlen)
{
	struct rd r = { buf, len, 0 };
	unsigned int major;
	uint64_t n, key, v;
	int64_t last = -1;
	uint32_t seen = 0;
	bool genesis;

	if (!rd_head (&r, &major, &n) || major != 5) {
		set_err (err, errlen, "byte %zu: not a map", base);
		return -EBADMSG;
	}
	if (n > LK_MAX + 1) {
		set_err (err, errlen, "byte %zu: map of %" PRIu64 " entries (at most %d)", base, n,
		         LK_MAX + 1);
		return -EBADMSG;
	}
	for (uint64_t i = 0; i < n; i++) {
		size_t at = base + r.off, slen;
		const unsigned char *s;
		const char **text;
		unsigned int m;

		if (!rd_head (&r, &major, &key) || major != 0) {
			set_err (err, errlen, "byte %zu: key is not an unsigned integer", at);
			return -EBADMSG;
		}
		if (key > LK_MAX || (int64_t)key <= last) {
			set_err (err, errlen, "byte %zu: key %" PRIu64 " %s", at, key,
			         key > LK_MAX ? "unknown" : "out of order or repeated");
			return -EBADMSG;
		}
		last = (int64_t)key;
		seen |= 1u << key;
		at = base + r.off;
		if ((text = text_slot (e, key))) {
			if (!rd_string (&r, 0, LEDGER_TEXT_MAX, &s, &slen, &m)) {
				set_err (err, errlen, "byte %zu: %s is not a string of at most %d bytes", at,
				         key_names[key], LEDGER_TEXT_MAX);
				return -EBADMSG;
			}
			if (memchr (s, '\0', slen)) {
				set_err (err, errlen, "byte %zu: %s holds a NUL byte", at, key_names[key]);
				return -EBADMSG;
			}
			if (m == 3 && !util_utf8_valid (s, slen)) {
				set_err (err, errlen, "byte %zu: %s is not valid UTF-8", at, key_names[key]);
				return -EBADMSG;
			}
			/* The writer uses a byte string only for text that is not
			 * UTF-8: one record, one encoding. */
			if (m == 2 && util_utf8_valid (s, slen)) {
				set_err (err, errlen, "byte %zu: %s is valid UTF-8 but a byte string (not the "
				         "canonical form)", at, key_names[key]);
				return -EBADMSG;
			}
			if (m == 2)
				e->text_bytes |= 1u << key;
			*text = scratch_copy (sc, s, slen);
			if (!*text) {
				set_err (err, errlen, "scratch space too small");
				return -ENOBUFS;
			}
			continue;
		}
		switch (key) {
		case LK_PREV:
		case LK_POLICY_DIGEST:
		case LK_EVIDENCE_DIGEST:
		case LK_KEY_DIGEST:
		case LK_NONCE:
		case LK_KEY_ID:
		case LK_KEY_LABEL: {
			size_t want = key == LK_NONCE ? LEDGER_NONCE_LEN : LEDGER_HASH_LEN;
			bool var = key == LK_KEY_ID || key == LK_KEY_LABEL;
			if (!rd_string (&r, 2, var ? LEDGER_ID_MAX : want, &s, &slen, NULL) ||
			    (!var && slen != want)) {
				if (var)
					set_err (err, errlen, "byte %zu: %s is not a bstr of at most %d bytes", at,
					         key_names[key], LEDGER_ID_MAX);
				else
					set_err (err, errlen, "byte %zu: %s is not a bstr of %zu bytes", at,
					         key_names[key], want);
				return -EBADMSG;
			}
			switch (key) {
			case LK_PREV: e->prev = s; break;
			case LK_POLICY_DIGEST: e->policy_digest = s; break;
			case LK_EVIDENCE_DIGEST: e->evidence_digest = s; break;
			case LK_KEY_DIGEST: e->key_digest = s; break;
			case LK_NONCE: e->nonce = s; break;
			case LK_KEY_ID: e->key_id = s; e->key_id_len = slen; break;
			case LK_KEY_LABEL: e->key_label = s; e->key_label_len = slen; break;
			}
			continue;
		}
		}
		/* The rest are unsigned integers. */
		if (!rd_head (&r, &major, &v) || major != 0) {
			set_err (err, errlen, "byte %zu: %s is not an unsigned integer", at, key_names[key]);
			return -EBADMSG;
		}
		switch (key) {
		case LK_SEQ:
			e->seq = v;
			break;
		case LK_TIME:
		case LK_PID:
		case LK_UID:
			if (v > INT64_MAX) {
				set_err (err, errlen, "byte %zu: %s out of range", at, key_names[key]);
				return -EBADMSG;
			}
			if (key == LK_TIME)
				e->time_ms = (int64_t)v;
			else if (key == LK_PID)
				e->pid = (int64_t)v;
			else
				e->uid = (int64_t)v;
			break;
		case LK_MECHANISM:
			if (v > ULONG_MAX) {
				set_err (err, errlen, "byte %zu: mechanism out of range", at);
				return -EBADMSG;
			}
			e->has_mechanism = true;
			e->mechanism = (unsigned long)v;
			break;
		case LK_CUT:
			if (v == 0 || v >= (1u << LK_CUT)) {
				set_err (err, errlen, "byte %zu: cut names no field or an unknown one", at);
				return -EBADMSG;
			}
			e->cut = (uint32_t)v;
			break;
		case LK_COUNT:
			if (v > LEDGER_BATCH_LIMIT) {
				set_err (err, errlen, "byte %zu: count %" PRIu64 " above %d", at, v,
				         LEDGER_BATCH_LIMIT);
				return -EBADMSG;
			}
			e->count = v;
			break;
		case LK_VERSION:
			if (v != LEDGER_FORMAT_VERSION) {
				set_err (err, errlen, "byte %zu: ledger format version %" PRIu64 " (this reads %d)",
				         at, v, LEDGER_FORMAT_VERSION);
				return -EBADMSG;
			}
			break;
		}
	}
	if (r.off != len) {
		set_err (err, errlen, "byte %zu: %zu trailing byte(s) after the record", base + r.off,
		         len - r.off);
		return -EBADMSG;
	}

	/* Which keys each kind must and may have. */
#define BIT(k) (1u << (k))
	{
		const uint32_t base_req = BIT (LK_SEQ) | BIT (LK_PREV) | BIT (LK_TIME) | BIT (LK_EVENT);
		const uint32_t genesis_keys = BIT (LK_NONCE) | BIT (LK_KEY_DIGEST) | BIT (LK_VERSION);
		uint32_t req, allowed;
		if ((seen & base_req) != base_req) {
			set_err (err, errlen, "record without seq, prev, time or event");
			return -EBADMSG;
		}
		genesis = !strcmp (e->event, LEDGER_EVENT_GENESIS);
		if (kind == KIND_CHECKPOINT) {
			if (strcmp (e->event, LEDGER_EVENT_CHECKPOINT)) {
				set_err (err, errlen, "signed payload with event \"%s\", not checkpoint", e->event);
				return -EBADMSG;
			}
			req = base_req | BIT (LK_COUNT);
			allowed = req | BIT (LK_PID) | BIT (LK_UID);
		} else if (genesis) {
			req = base_req | genesis_keys;
			allowed = req | BIT (LK_PID) | BIT (LK_UID) | BIT (LK_CUT);
		} else {
			if (!strcmp (e->event, LEDGER_EVENT_CHECKPOINT)) {
				set_err (err, errlen, "unsigned record with event checkpoint");
				return -EBADMSG;
			}
			req = base_req;
			allowed = ((1u << (LK_CUT + 1)) - 1);
		}
		if ((seen & req) != req || (seen & ~allowed)) {
			set_err (err, errlen, "%s record with %s keys",
			         kind == KIND_CHECKPOINT ? "checkpoint" : genesis ? "genesis" : "a",
			         (seen & req) != req ? "missing" : "unexpected");
			return -EBADMSG;
		}
		if ((e->text_bytes & BIT (LK_EVENT))) {
			set_err (err, errlen, "event is not text");
			return -EBADMSG;
		}
	}
#undef BIT
	return 0;
}

/*
 * A checkpoint: tag 18 (0xd2) around [protected: bstr {1: alg, 4: kid},
 * unprotected: {}, payload: bstr, signature: bstr 64], exactly as the
 * writer encodes it.  The signature is not checked here.
 */
static int
parse_checkpoint (const unsigned char *buf, size_t len, struct ledger_entry *e, struct scratch *sc,
                  char *err, size_t errlen)
{
	struct rd r = { buf, len, 1 };
	struct rd p;
	const unsigned char *prot, *payload, *sig, *kid;
	size_t prot_len, payload_len, sig_len, kid_len;
	unsigned int major;
	uint64_t v, alg;

	if (!rd_head (&r, &major, &v) || major != 4 || v != 4) {
		set_err (err, errlen, "checkpoint: not a 4-element COSE_Sign1 array");
		return -EBADMSG;
	}
	if (!rd_string (&r, 2, 64, &prot, &prot_len, NULL)) {
		set_err (err, errlen, "checkpoint: protected header is not a short bstr");
		return -EBADMSG;
	}
	p = (struct rd){ prot, prot_len, 0 };
	/* {1: -7 or -8, 4: kid} */
	if (!rd_head (&p, &major, &v) || major != 5 || v != 2 || !rd_head (&p, &major, &v) ||
	    major != 0 || v != 1 || !rd_head (&p, &major, &alg) || major != 1 ||
	    (alg != 6 && alg != 7) || !rd_head (&p, &major, &v) || major != 0 || v != 4 ||
	    !rd_string (&p, 2, LEDGER_KID_LEN, &kid, &kid_len, NULL) || kid_len != LEDGER_KID_LEN ||
	    p.off != p.len) {
		set_err (err, errlen, "checkpoint: protected header is not {alg: ES256 or EdDSA, kid: 16 bytes}");
		return -EBADMSG;
	}
	if (!rd_head (&r, &major, &v) || major != 5 || v != 0) {
		set_err (err, errlen, "checkpoint: unprotected header is not an empty map");
		return -EBADMSG;
	}
	if (!rd_string (&r, 2, LEDGER_RECORD_MAX, &payload, &payload_len, NULL)) {
		set_err (err, errlen, "checkpoint: payload is not a bstr");
		return -EBADMSG;
	}
	if (!rd_string (&r, 2, LEDGER_SIG_LEN, &sig, &sig_len, NULL) || sig_len != LEDGER_SIG_LEN) {
		set_err (err, errlen, "checkpoint: signature is not a bstr of %d bytes", LEDGER_SIG_LEN);
		return -EBADMSG;
	}
	if (r.off != len) {
		set_err (err, errlen, "checkpoint: %zu trailing byte(s)", len - r.off);
		return -EBADMSG;
	}
	e->checkpoint = true;
	e->alg = -1 - (int64_t)alg;
	e->kid = kid;
	e->sig = sig;
	return parse_map (payload, payload_len, (size_t)(payload - buf), KIND_CHECKPOINT, e, sc, err,
	                  errlen);
}

int
ledger_parse_record (const unsigned char *buf, size_t len, struct ledger_entry *e, char *scratch,
                     size_t scratch_len, char *err, size_t errlen)
{
	struct scratch sc = { scratch, scratch_len, 0 };
	int rv;

	set_err (err, errlen, "ok");
	if (!e) {
		set_err (err, errlen, "missing arguments");
		return -EINVAL;
	}
	memset (e, 0, sizeof *e);
	e->pid = e->uid = -1;
	if (!buf || !scratch || len == 0 || len > LEDGER_RECORD_MAX) {
		set_err (err, errlen, "record of %zu bytes (1..%d)", len, LEDGER_RECORD_MAX);
		return -EINVAL;
	}
	if (buf[0] == 0xd2)
		rv = parse_checkpoint (buf, len, e, &sc, err, errlen);
	else
		rv = parse_map (buf, len, 0, KIND_RECORD, e, &sc, err, errlen);
	if (rv != 0) {
		uint64_t off = e->offset;
		memset (e, 0, sizeof *e);
		e->pid = e->uid = -1;
		e->offset = off;
	}
	return rv;
}

int
ledger_checkpoint_verify (const unsigned char *rec, size_t len, EVP_PKEY *key,
                          const unsigned char *kid, int64_t alg, char *err, size_t errlen)
{
	struct cose_key k = { key, kid, LEDGER_KID_LEN };
	struct cose_sign1 out;
	char sub[256];
	int rv;

	rv = cose_sign1_verify (rec, len, 0, &k, 1, NULL, 0, &alg, 1, &out, sub, sizeof sub);
	cose_sign1_clear (&out);
	if (rv != COSE_OK) {
		set_err (err, errlen, "bad signature: %s", sub);
		return rv == COSE_ERR_NO_MEMORY ? -ENOMEM : -EBADMSG;
	}
	/* The signature is the record's last 64 bytes (r || s); s must be
	 * the low one of its two valid values (n - s verifies too). */
	if (alg == COSE_ALG_ES256 &&
	    (len < LEDGER_SIG_LEN || memcmp (rec + len - 32, ledger_p256_half_order, 32) > 0)) {
		set_err (err, errlen, "bad signature: s is not in its low form (a re-encoded signature)");
		return -EBADMSG;
	}
	return 0;
}

const unsigned char ledger_p256_half_order[32] = {
	0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};

/* ---------------------------------------------------------------- head file */

size_t
ledger_head_encode (const struct ledger_head *h, unsigned char *buf, size_t cap)
{
	size_t o = 0;
	/* {0: 1, 1: seq, 2: offset, 3: hash, 4: sig}; the largest is well
	 * under 128 bytes. */
	if (cap < 2 + 2 * 9 + 2 + 2 + 2 + LEDGER_HASH_LEN + 2 + 2 + LEDGER_SIG_LEN + 8 ||
	    h->sig_len > LEDGER_SIG_LEN)
		return 0;
	buf[o++] = 0xa5;
	buf[o++] = 0x00;
	buf[o++] = LEDGER_FORMAT_VERSION;
	for (int i = 1; i <= 2; i++) {
		uint64_t v = i == 1 ? h->seq : h->offset;
		buf[o++] = (unsigned char)i;
		o += cbor_encode_uint (v, buf + o, cap - o);
	}
	buf[o++] = 0x03;
	buf[o++] = 0x58;
	buf[o++] = LEDGER_HASH_LEN;
	memcpy (buf + o, h->hash, LEDGER_HASH_LEN);
	o += LEDGER_HASH_LEN;
	buf[o++] = 0x04;
	buf[o++] = 0x58;
	buf[o++] = (unsigned char)h->sig_len;
	memcpy (buf + o, h->sig, h->sig_len);
	o += h->sig_len;
	return o;
}

int
ledger_head_parse (const unsigned char *buf, size_t len, struct ledger_head *h, char *err,
                   size_t errlen)
{
	struct rd r = { buf, len, 0 };
	const unsigned char *s;
	size_t n;
	unsigned int major;
	uint64_t v, key;

	memset (h, 0, sizeof *h);
	if (!rd_head (&r, &major, &v) || major != 5 || v != 5)
		goto bad;
	for (uint64_t i = 0; i < 5; i++) {
		if (!rd_head (&r, &major, &key) || major != 0 || key != i)
			goto bad;
		switch (key) {
		case 0:
			if (!rd_head (&r, &major, &v) || major != 0 || v != LEDGER_FORMAT_VERSION)
				goto bad;
			break;
		case 1:
		case 2:
			if (!rd_head (&r, &major, &v) || major != 0)
				goto bad;
			if (key == 1)
				h->seq = v;
			else
				h->offset = v;
			break;
		case 3:
			if (!rd_string (&r, 2, LEDGER_HASH_LEN, &s, &n, NULL) || n != LEDGER_HASH_LEN)
				goto bad;
			memcpy (h->hash, s, n);
			break;
		case 4:
			if (!rd_string (&r, 2, LEDGER_SIG_LEN, &s, &n, NULL) || n == 0)
				goto bad;
			memcpy (h->sig, s, n);
			h->sig_len = n;
			break;
		}
	}
	if (r.off != len)
		goto bad;
	return 0;
bad:
	set_err (err, errlen, "head: not a ledger head (byte %zu)", r.off);
	return -EBADMSG;
}

int
ledger_head_read (int dirfd, const char *path, struct ledger_head *h, char *err, size_t errlen)
{
	unsigned char buf[LEDGER_HEAD_MAX + 1];
	size_t have = 0;
	int fd, rv;

	fd = openat (dirfd >= 0 ? dirfd : AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		rv = -errno;
		set_err (err, errlen, "%s: %s", path, strerror (errno));
		return rv;
	}
	for (;;) {
		ssize_t r = read (fd, buf + have, sizeof buf - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rv = -errno;
			set_err (err, errlen, "%s: read error: %s", path, strerror (errno));
			close (fd);
			return rv;
		}
		if (r == 0)
			break;
		have += (size_t)r;
		if (have == sizeof buf)
			break;
	}
	close (fd);
	if (have > LEDGER_HEAD_MAX) {
		set_err (err, errlen, "%s: larger than a head", path);
		return -EBADMSG;
	}
	rv = ledger_head_parse (buf, have, h, err, errlen);
	if (rv != 0) {
		char sub[128];
		snprintf (sub, sizeof sub, "%s", err ? err : "");
		set_err (err, errlen, "%s: %s", path, sub);
	}
	return rv;
}

/* ---------------------------------------------------------------- frames */

static int
pread_full (int fd, unsigned char *buf, size_t n, uint64_t off)
{
	size_t have = 0;
	while (have < n) {
		ssize_t r = pread (fd, buf + have, n - have, (off_t)(off + have));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EAGAIN; /* shorter than fstat said: torn */
		have += (size_t)r;
	}
	return 0;
}

static uint32_t
be32 (const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
ledger_read_frame (int fd, uint64_t size, uint64_t off, unsigned char *frame, size_t *rec_len,
                   char *err, size_t errlen)
{
	uint32_t l;
	int rv;

	if (off >= size)
		return 1;
	if (size - off < 4) {
		set_err (err, errlen, "offset %" PRIu64 ": torn frame (%" PRIu64 " byte(s))", off,
		         size - off);
		return -EAGAIN;
	}
	rv = pread_full (fd, frame, 4, off);
	if (rv != 0)
		goto io;
	l = be32 (frame);
	if (l == 0 || l > LEDGER_RECORD_MAX) {
		set_err (err, errlen, "offset %" PRIu64 ": bad frame length %" PRIu32, off, l);
		return -EBADMSG;
	}
	if (size - off < (uint64_t)l + LEDGER_FRAME_OVERHEAD) {
		set_err (err, errlen, "offset %" PRIu64 ": torn frame", off);
		return -EAGAIN;
	}
	rv = pread_full (fd, frame + 4, (size_t)l + 4, off + 4);
	if (rv != 0)
		goto io;
	if (be32 (frame + 4 + l) != l) {
		set_err (err, errlen, "offset %" PRIu64 ": frame length words disagree (%" PRIu32
		         " and %" PRIu32 ")", off, l, be32 (frame + 4 + l));
		return -EBADMSG;
	}
	*rec_len = l;
	return 0;
io:
	if (rv == -EAGAIN)
		set_err (err, errlen, "offset %" PRIu64 ": torn frame", off);
	else
		set_err (err, errlen, "offset %" PRIu64 ": read error: %s", off, strerror (-rv));
	return rv;
}

/* ---------------------------------------------------------------- writer's tail scan */

int
ledger_scan_tail (int fd, uint64_t size, struct ledger_point *good, EVP_PKEY *key,
                  uint64_t *checkpoints, char *err, size_t errlen)
{
	unsigned char *frame = NULL, digest[LEDGER_HASH_LEN], h[LEDGER_HASH_LEN];
	unsigned char prev[LEDGER_HASH_LEN];
	char *scratch = NULL;
	EVP_MD_CTX *ctx = NULL;
	struct ledger_entry e;
	uint64_t off = good->off, seq = good->next_seq, in_batch = 0;
	int64_t alg;
	int rv;

	*checkpoints = 0;
	rv = ledger_key_ids (key, digest, &alg, err, errlen);
	if (rv != 0)
		return rv;
	frame = malloc (LEDGER_FRAME_MAX);
	scratch = malloc (LEDGER_RECORD_MAX + 32);
	ctx = EVP_MD_CTX_new ();
	if (!frame || !scratch || !ctx) {
		set_err (err, errlen, "out of memory");
		rv = -ENOMEM;
		goto out;
	}
	memcpy (prev, good->prev, LEDGER_HASH_LEN);
	for (;;) {
		size_t len = 0;
		char sub[256];
		rv = ledger_read_frame (fd, size, off, frame, &len, sub, sizeof sub);
		if (rv == 1 || rv == -EAGAIN || rv == -EBADMSG) {
			rv = 0; /* the end of what can be trusted */
			break;
		}
		if (rv != 0) {
			set_err (err, errlen, "%s", sub);
			goto out;
		}
		if (ledger_parse_record (frame + 4, len, &e, scratch, LEDGER_RECORD_MAX + 32, sub,
		                         sizeof sub) != 0 ||
		    e.seq != seq || memcmp (e.prev, prev, LEDGER_HASH_LEN) != 0)
			break;
		if (seq == 0 && (!e.key_digest || memcmp (e.key_digest, digest, LEDGER_HASH_LEN)))
			break;
		if (!ledger_hash (ctx, frame, len + LEDGER_FRAME_OVERHEAD, h)) {
			set_err (err, errlen, "SHA-256 failed");
			rv = -EIO;
			goto out;
		}
		off += len + LEDGER_FRAME_OVERHEAD;
		seq++;
		memcpy (prev, h, LEDGER_HASH_LEN);
		if (!e.checkpoint) {
			if (++in_batch > LEDGER_BATCH_LIMIT)
				break;
			continue;
		}
		if (e.count != in_batch || memcmp (e.kid, digest, LEDGER_KID_LEN) != 0 ||
		    ledger_checkpoint_verify (frame + 4, len, key, digest, alg, sub, sizeof sub) != 0)
			break;
		good->off = off;
		good->next_seq = seq;
		memcpy (good->prev, h, LEDGER_HASH_LEN);
		in_batch = 0;
		(*checkpoints)++;
	}
out:
	EVP_MD_CTX_free (ctx);
	free (frame);
	free (scratch);
	return rv;
}

/* ---------------------------------------------------------------- verification */

/* A frame of the batch being read (records since the last checkpoint). */
struct fmeta {
	uint64_t seq;
	uint64_t off;
	unsigned char hash[LEDGER_HASH_LEN];
	unsigned char prev[LEDGER_HASH_LEN];
};

struct verifier {
	struct ledger_verify_result *out;
	/* The first forward finding of the current batch (sequence number or
	 * chain): kept until the batch's checkpoint says more. */
	bool have_cand;
	uint64_t cand_pos, cand_off;
	char cand_reason[sizeof ((struct ledger_verify_result *)0)->reason];
	struct fmeta *m;
	size_t n, cap;
	uint64_t batch_start;          /* position of m[0] */
};

static enum ledger_verify_status
bad (struct verifier *v, uint64_t pos, uint64_t off, const char *fmt, ...)
	__attribute__ ((format (printf, 4, 5)));

static enum ledger_verify_status
bad (struct verifier *v, uint64_t pos, uint64_t off, const char *fmt, ...)
{
	va_list ap;
	v->out->first_bad = pos > INT64_MAX ? INT64_MAX : (int64_t)pos;
	v->out->first_bad_offset = off;
	va_start (ap, fmt);
	vsnprintf (v->out->reason, sizeof v->out->reason, fmt, ap);
	va_end (ap);
	return LEDGER_VERIFY_BAD;
}

static void
candidate (struct verifier *v, uint64_t pos, uint64_t off, const char *fmt, ...)
	__attribute__ ((format (printf, 4, 5)));

static void
candidate (struct verifier *v, uint64_t pos, uint64_t off, const char *fmt, ...)
{
	va_list ap;
	if (v->have_cand)
		return;
	v->have_cand = true;
	v->cand_pos = pos;
	v->cand_off = off;
	va_start (ap, fmt);
	vsnprintf (v->cand_reason, sizeof v->cand_reason, fmt, ap);
	va_end (ap);
}

static enum ledger_verify_status
report_cand (struct verifier *v)
{
	return bad (v, v->cand_pos, v->cand_off, "%s", v->cand_reason);
}

/*
 * A valid checkpoint authenticates, through the chain, the records of its
 * batch from the last one backwards, as far as each record's hash is what
 * the next (authentic) record says.  The first record that breaks that
 * walk is where the file stops being what was signed: altered, inserted,
 * or standing where a dropped or duplicated one should be.  Between that
 * and the first forward finding (sequence numbers, chain), the earlier
 * wins; on a tie, the forward finding's words.
 */
static enum ledger_verify_status
judge_batch (struct verifier *v, const struct ledger_entry *cp)
{
	const unsigned char *expect = cp->prev;
	uint64_t next_seq = cp->seq, apos;
	size_t k;
	char why[sizeof v->cand_reason];
	bool brk = false;

	for (k = v->n; k-- > 0;) {
		if (memcmp (v->m[k].hash, expect, LEDGER_HASH_LEN) != 0) {
			brk = true;
			break;
		}
		expect = v->m[k].prev;
		next_seq = v->m[k].seq;
	}
	if (!brk)
		return v->have_cand ? report_cand (v) : LEDGER_VERIFY_OK;

	apos = v->batch_start + k;
	if (k + 1 < v->n && !memcmp (v->m[k].hash, v->m[k + 1].hash, LEDGER_HASH_LEN)) {
		apos++;
		snprintf (why, sizeof why, "record %" PRIu64 " duplicated (checkpoint %" PRIu64
		          " signs one copy)", v->m[k].seq, cp->seq);
	} else if (next_seq > 0 && v->m[k].seq < next_seq - 1 && next_seq - 1 > apos &&
	           next_seq - 1 - v->batch_start <= v->n) {
		apos = next_seq - 1;
		snprintf (why, sizeof why, "record %" PRIu64 " missing: the chain signed by checkpoint %"
		          PRIu64 " names a record that is not there (dropped)", next_seq - 1, cp->seq);
	} else {
		snprintf (why, sizeof why, "record at offset %" PRIu64 " (seq %" PRIu64 ") altered or "
		          "inserted: its hash is not what the chain signed by checkpoint %" PRIu64
		          " says", v->m[k].off, v->m[k].seq, cp->seq);
	}
	if (v->have_cand && v->cand_pos <= apos)
		return report_cand (v);
	return bad (v, apos, apos - v->batch_start < v->n ? v->m[apos - v->batch_start].off : cp->offset,
	            "%s", why);
}

/* Is everything from @off to @size zero (a crash that left zero-filled
 * blocks behind the last write: a torn tail, not tampering)? */
static bool
zero_tail (int fd, uint64_t off, uint64_t size)
{
	unsigned char buf[4096];
	while (off < size) {
		size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
		if (pread_full (fd, buf, n, off) != 0)
			return false;
		for (size_t i = 0; i < n; i++) {
			if (buf[i])
				return false;
		}
		off += n;
	}
	return true;
}

enum ledger_verify_status
ledger_verify_file (const char *path, EVP_PKEY *pub, const char *head_path, bool no_head,
                    int (*each) (const struct ledger_entry *e, void *user), void *user,
                    struct ledger_verify_result *out)
{
	struct ledger_verify_result dummy;
	struct verifier v;
	struct ledger_head head;
	struct stat st;
	unsigned char digest[LEDGER_HASH_LEN], prev[LEDGER_HASH_LEN], h[LEDGER_HASH_LEN];
	unsigned char *frame = NULL;
	char *scratch = NULL, hp[PATH_MAX], sub[256];
	EVP_MD_CTX *ctx = NULL;
	enum ledger_verify_status rv = LEDGER_VERIFY_IO;
	enum ledger_verify_status head_rv = LEDGER_VERIFY_OK;
	char head_reason[sizeof out->reason];
	bool have_head = false, head_seen = false;
	uint64_t off = 0, pos = 0, last_cp_seq = 0;
	bool any_cp = false;
	int64_t alg;
	int fd = -1, r;

	if (!out)
		out = &dummy;
	memset (out, 0, sizeof *out);
	memset (&v, 0, sizeof v);
	v.out = out;
	out->first_bad = -1;
	snprintf (out->reason, sizeof out->reason, "ok");
	if (!path) {
		snprintf (out->reason, sizeof out->reason, "missing arguments");
		return LEDGER_VERIFY_IO;
	}
	/* Without a key (audit show): the chain and the sequence are checked,
	 * the key and the signatures are not. */
	memset (digest, 0, sizeof digest);
	alg = 0;
	if (pub && ledger_key_ids (pub, digest, &alg, sub, sizeof sub) != 0) {
		snprintf (out->reason, sizeof out->reason, "%s", sub);
		return LEDGER_VERIFY_IO;
	}
	if (!head_path) {
		if ((size_t)snprintf (hp, sizeof hp, "%s.head", path) >= sizeof hp) {
			snprintf (out->reason, sizeof out->reason, "path too long");
			return LEDGER_VERIFY_IO;
		}
		head_path = hp;
	}
	/* A damaged or missing head is reported, but only after the records
	 * are checked: a bad record says more. */
	r = ledger_head_read (-1, head_path, &head, sub, sizeof sub);
	if (r == 0) {
		have_head = true;
	} else if (r != -ENOENT || !no_head) {
		head_rv = r == -ENOENT || r == -EBADMSG ? LEDGER_VERIFY_BAD : LEDGER_VERIFY_IO;
		snprintf (head_reason, sizeof head_reason, "%s%s",
		          r == -ENOENT ? "head file missing: " : "", sub);
	}

	fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		snprintf (out->reason, sizeof out->reason, "%s: %s", path,
		          fd < 0 ? strerror (errno) : "not a regular file");
		out->first_bad = -1;
		rv = LEDGER_VERIFY_IO;
		goto out;
	}
	frame = malloc (LEDGER_FRAME_MAX);
	scratch = malloc (LEDGER_RECORD_MAX + 32);
	ctx = EVP_MD_CTX_new ();
	if (!frame || !scratch || !ctx) {
		snprintf (out->reason, sizeof out->reason, "out of memory");
		rv = LEDGER_VERIFY_IO;
		goto out;
	}
	{
		rv = LEDGER_VERIFY_OK;
		memset (prev, 0, sizeof prev);

		for (;;) {
			struct ledger_entry e;
			size_t len = 0;
			r = ledger_read_frame (fd, (uint64_t)st.st_size, off, frame, &len, sub, sizeof sub);
			if (r == 1)
				break;
			if (r == -EAGAIN || (r == -EBADMSG && be32 (frame) == 0 &&
			                     zero_tail (fd, off, (uint64_t)st.st_size))) {
				out->torn_tail = true;
				out->torn_offset = off;
				break;
			}
			if (r == -EBADMSG) {
				rv = v.have_cand && v.cand_pos <= pos ? report_cand (&v)
				                                      : bad (&v, pos, off, "%s", sub);
				goto out;
			}
			if (r != 0) {
				snprintf (out->reason, sizeof out->reason, "%s: %s", path, sub);
				rv = LEDGER_VERIFY_IO;
				goto out;
			}
			if (ledger_parse_record (frame + 4, len, &e, scratch, LEDGER_RECORD_MAX + 32, sub,
			                         sizeof sub) != 0) {
				rv = v.have_cand && v.cand_pos <= pos
				             ? report_cand (&v)
				             : bad (&v, pos, off, "record at offset %" PRIu64 ": %s", off, sub);
				goto out;
			}
			e.offset = off;
			out->records++;
			if (each && each (&e, user) != 0) {
				snprintf (out->reason, sizeof out->reason, "stopped by the caller");
				goto done;
			}
			if (!ledger_hash (ctx, frame, len + LEDGER_FRAME_OVERHEAD, h)) {
				snprintf (out->reason, sizeof out->reason, "SHA-256 failed");
				rv = LEDGER_VERIFY_IO;
				goto out;
			}

			/* Forward: sequence numbers and the chain. */
			if (pos == 0) {
				if (!e.key_digest) {
					rv = bad (&v, 0, off, "record 0 is not the genesis record (event %s)", e.event);
					goto out;
				}
				if (pub && memcmp (e.key_digest, digest, LEDGER_HASH_LEN) != 0) {
					rv = bad (&v, 0, off, "wrong key: the ledger's genesis names another audit key "
					          "than the one given");
					goto out;
				}
			}
			if (e.seq != pos)
				candidate (&v, pos, off, "sequence %s: expected %" PRIu64 ", found %" PRIu64
				           " at offset %" PRIu64, e.seq < pos ? "repeat" : "gap", pos, e.seq, off);
			else if (memcmp (e.prev, prev, LEDGER_HASH_LEN) != 0)
				candidate (&v, pos, off, "prev mismatch: record %" PRIu64 " at offset %" PRIu64
				           " does not chain to the record before it", pos, off);

			if (!e.checkpoint) {
				if (v.n == v.cap) {
					size_t ncap = v.cap ? 2 * v.cap : 256;
					struct fmeta *nm;
					if (v.n >= LEDGER_BATCH_LIMIT) {
						rv = bad (&v, pos, off, "more than %d records without a checkpoint",
						          LEDGER_BATCH_LIMIT);
						goto out;
					}
					nm = realloc (v.m, ncap * sizeof *nm);
					if (!nm) {
						snprintf (out->reason, sizeof out->reason, "out of memory");
						rv = LEDGER_VERIFY_IO;
						goto out;
					}
					v.m = nm;
					v.cap = ncap;
				}
				if (v.n == 0)
					v.batch_start = pos;
				v.m[v.n].seq = e.seq;
				v.m[v.n].off = off;
				memcpy (v.m[v.n].hash, h, LEDGER_HASH_LEN);
				memcpy (v.m[v.n].prev, e.prev, LEDGER_HASH_LEN);
				v.n++;
			} else {
				/* The checkpoint: its key, its signature, then the batch. */
				const char *why = NULL;
				bool count_only = false;
				char wbuf[320];
				if (v.n == 0)
					v.batch_start = pos;
				if (pub && memcmp (e.kid, digest, LEDGER_KID_LEN) != 0) {
					why = "wrong key: the checkpoint's kid is not the given key's";
				} else if (pub && ledger_checkpoint_verify (frame + 4, len, pub, digest, alg, wbuf,
				                                            sizeof wbuf) != 0) {
					why = wbuf;
				} else if (e.count != v.n) {
					snprintf (wbuf, sizeof wbuf, "checkpoint closes %" PRIu64 " record(s), "
					          "%zu precede it", e.count, v.n);
					why = wbuf;
					count_only = true;
				}
				if (why && !count_only) {
					rv = v.have_cand && v.cand_pos < pos
					             ? report_cand (&v)
					             : bad (&v, pos, off, "checkpoint %" PRIu64 " at offset %" PRIu64
					                    ": %s", pos, off, why);
					goto out;
				}
				/* Signed: it authenticates its batch backwards (even
				 * when it closes another number of records than are
				 * there: where the chain breaks says more). */
				rv = judge_batch (&v, &e);
				if (rv != LEDGER_VERIFY_OK)
					goto out;
				if (why) {
					rv = bad (&v, pos, off, "checkpoint %" PRIu64 " at offset %" PRIu64 ": %s", pos,
					          off, why);
					goto out;
				}
				out->checkpoints++;
				out->verified += v.n + 1;
				out->signed_end = off + len + LEDGER_FRAME_OVERHEAD;
				any_cp = true;
				last_cp_seq = e.seq;
				out->last_checkpoint_seq = e.seq;
				memcpy (out->last_checkpoint_hash, h, LEDGER_HASH_LEN);
				if (have_head && off == head.offset) {
					head_seen = true;
					if (memcmp (h, head.hash, LEDGER_HASH_LEN) != 0 || e.seq != head.seq ||
					    head.sig_len != LEDGER_SIG_LEN ||
					    memcmp (head.sig, e.sig, LEDGER_SIG_LEN) != 0) {
						head_rv = LEDGER_VERIFY_BAD;
						snprintf (head_reason, sizeof head_reason, "head mismatch: the head "
						          "names checkpoint %" PRIu64 " at offset %" PRIu64 " with "
						          "another hash than the ledger's", head.seq, head.offset);
					}
				}
				v.n = 0;
				v.have_cand = false;
			}
			memcpy (prev, h, LEDGER_HASH_LEN);
			off += len + LEDGER_FRAME_OVERHEAD;
			pos++;
		}

		/* The unsigned tail: what a crash left after the last checkpoint. */
		if (v.have_cand) {
			rv = report_cand (&v);
			goto out;
		}
		out->unsigned_tail = v.n;
		if (have_head && !head_seen) {
			if (head.offset >= out->signed_end) {
				rv = bad (&v, any_cp ? last_cp_seq + 1 : 0, out->signed_end,
				          "truncated: the head names checkpoint %" PRIu64 " at offset %" PRIu64
				          ", the signed ledger ends at offset %" PRIu64 "%s", head.seq,
				          head.offset, out->signed_end,
				          any_cp ? "" : " (no checkpoint at all)");
				goto out;
			}
			head_rv = LEDGER_VERIFY_BAD;
			snprintf (head_reason, sizeof head_reason, "head mismatch: no checkpoint at offset %"
			          PRIu64 " where the head says checkpoint %" PRIu64 " is", head.offset,
			          head.seq);
		}
		if (head_rv != LEDGER_VERIFY_OK) {
			rv = head_rv;
			out->first_bad = -1;
			out->first_bad_offset = 0;
			snprintf (out->reason, sizeof out->reason, "%s", head_reason);
			goto out;
		}
		if (!any_cp && out->records > 0) {
			/* Only unsigned records: nothing is authenticated. */
			snprintf (out->reason, sizeof out->reason, "ok (no checkpoint yet: %" PRIu64
			          " unsigned record(s))", out->unsigned_tail);
		}
	}
done:
	if (rv == LEDGER_VERIFY_OK && !strcmp (out->reason, "ok") &&
	    (out->unsigned_tail || out->torn_tail))
		snprintf (out->reason, sizeof out->reason, "ok (%" PRIu64 " unsigned record(s) after the "
		          "last checkpoint%s)", out->unsigned_tail, out->torn_tail ? ", a torn frame" : "");
out:
	if (fd >= 0)
		close (fd);
	EVP_MD_CTX_free (ctx);
	free (frame);
	free (scratch);
	free (v.m);
	return rv;
}
