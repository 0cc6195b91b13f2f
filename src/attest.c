/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "attest.h"
#include "anchors.h"
#include "audit.h"
#include "collector.h"
#include "evidence.h"
#include "log.h"

#include <p11-warden/p11-warden.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Vendor object handles: a range no backend hands out in practice; a
 * backend handle inside it is refused by module.c (hand_out). */
#define HANDLE_SHIFT (sizeof (CK_OBJECT_HANDLE) > 4 ? 32 : 16)
#define HANDLE_TAG ((CK_OBJECT_HANDLE)0x7057UL)
#define HANDLE_BASE (HANDLE_TAG << HANDLE_SHIFT)

#define POLICY_RECHECK_NS 1000000000ull  /* look at a policy file at most once a second */
#define PUSH_OBJECTS_MAX 64              /* vendor objects of one session */
#define N_FORMATS 3

static const char *const formats[N_FORMATS] = { "tpm2-quote", "eat", "ear" };

static int
format_index (const char *f)
{
	for (int i = 0; i < N_FORMATS; i++) {
		if (!strcmp (f, formats[i]))
			return i;
	}
	return -1;
}

struct apolicy {
	const struct conf_policy *conf;
	struct policy *p;              /* NULL while the file does not load */
	char broken[512];              /* why, when p is NULL */
	struct policy **retired;       /* earlier versions, freed at close */
	size_t n_retired;
	unsigned long gen;             /* bumped when the document changes */
	struct stat st;                /* the file as loaded */
	uint64_t checked_ns;
	struct pulled *pulled;         /* per slot (conf order) */
	pthread_mutex_t pull_lock;     /* one pull at a time per policy */
};

/* A pulled verdict of one policy in one slot: the slot's collectors are
 * what attested, so another slot (one without collectors, say) never uses
 * it.  @seq counts finished pulls, so that callers that waited behind a
 * pull take its result, a failure too, rather than each pulling again. */
struct pulled {
	bool pass;
	unsigned long gen;             /* the policy's generation it was made under */
	time_t expires;
	uint64_t expires_ns;
	unsigned long seq;
	char fail[ATTEST_REASON_MAX];  /* the last pull's failure */
	uint64_t fail_ns;              /* when it finished */
};

struct pobject {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS klass;
	unsigned char nonce[ATTEST_NONCE_LEN];       /* challenge */
	/* verdict */
	bool pass;
	int policy;
	unsigned long policy_gen;
	time_t expires;
	char reason[ATTEST_REASON_MAX];
	char format[EVIDENCE_FORMAT_MAX + 1];
	char *claims;                                /* "name=value\n"... */
	struct pobject *next;
};

struct psession {
	CK_SESSION_HANDLE session;
	unsigned char nonce[ATTEST_NONCE_LEN];
	bool have_nonce;
	unsigned int used;                           /* formats that used the nonce */
	struct appraisal ev[N_FORMATS];              /* newest per format */
	unsigned long ev_epoch[N_FORMATS];           /* policy_epoch when pushed */
	struct pobject *objects;
	size_t n_objects;
	struct psession *next;
};

static struct {
	pthread_mutex_t lock;
	bool open;
	const struct conf *conf;
	struct anchor_set anchors;
	struct apolicy *pol;
	size_t n_pol;
	struct collector **coll;       /* parallel to conf->collectors */
	size_t n_coll;
	struct psession *sessions;
	unsigned long policy_epoch;    /* bumped when any policy changes: pushed
	                                * evidence from before no longer counts */
	CK_OBJECT_HANDLE next_handle;
	atomic_bool any_gates_sign;
} at = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t
mono_ns (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ policies */

static void
update_gates_sign (void)
{
	bool any = false;
	for (size_t i = 0; i < at.n_pol; i++)
		any |= !at.pol[i].p || policy_gates (at.pol[i].p, POLICY_OP_SIGN);
	atomic_store (&at.any_gates_sign, any);
}

static bool
same_file (const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* (Re)load policy @ap from its file (lock held, or not yet shared). */
static bool
load_policy (struct apolicy *ap, char *err, size_t errlen)
{
	struct policy *p;
	struct stat st;
	bool had = ap->p != NULL;

	memset (&st, 0, sizeof st);
	(void)stat (ap->conf->file, &st);
	p = policy_load_file (ap->conf->file, err, errlen);
	if (ap->p) {
		struct policy **r = realloc (ap->retired, (ap->n_retired + 1) * sizeof *r);
		if (r) {
			ap->retired = r;
			r[ap->n_retired++] = ap->p;
		}
		/* Without room to retire it, it stays reachable by nobody but
		 * is not freed either: a reader may still hold it. */
	}
	ap->p = p;
	ap->st = st;
	ap->gen++;
	at.policy_epoch++;
	if (!p)
		snprintf (ap->broken, sizeof ap->broken, "%s", err);
	else
		ap->broken[0] = '\0';
	if (had)
		log_info ("policy '%s' (%s) changed: %s; every verdict under it is dropped",
		          ap->conf->name, ap->conf->file, p ? "reloaded" : "it no longer loads");
	audit_policy (ap->conf->name, p ? policy_digest (p) : NULL, p != NULL,
	              p ? (had ? "reloaded" : "loaded") : err);
	update_gates_sign ();
	return p != NULL;
}

/* Has the policy file changed since it was loaded?  Looked at once a
 * second at most (lock held). */
static void
maybe_reload (struct apolicy *ap, uint64_t now)
{
	struct stat st;
	char err[512];
	if (now - ap->checked_ns < POLICY_RECHECK_NS && ap->checked_ns)
		return;
	ap->checked_ns = now;
	if (stat (ap->conf->file, &st) != 0) {
		if (ap->p) {
			snprintf (err, sizeof err, "%s: cannot stat", ap->conf->file);
			memset (&ap->st, 0, sizeof ap->st);
			(void)load_policy (ap, err, sizeof err);
		}
		return;
	}
	if (same_file (&st, &ap->st))
		return;
	(void)load_policy (ap, err, sizeof err);
}

/* Every policy, at most once a second (lock held). */
static void
maybe_reload_all (uint64_t now)
{
	for (size_t i = 0; i < at.n_pol; i++)
		maybe_reload (&at.pol[i], now);
}

int
attest_policy_index (const char *name)
{
	int idx = -1;
	pthread_mutex_lock (&at.lock);
	for (size_t i = 0; at.open && i < at.n_pol; i++) {
		if (!strcmp (at.pol[i].conf->name, name)) {
			idx = (int)i;
			break;
		}
	}
	pthread_mutex_unlock (&at.lock);
	return idx;
}

bool
attest_policy_gates (int idx, enum policy_op op)
{
	bool gates = true;
	pthread_mutex_lock (&at.lock);
	if (at.open && idx >= 0 && (size_t)idx < at.n_pol) {
		maybe_reload (&at.pol[idx], mono_ns ());
		if (at.pol[idx].p)
			gates = policy_gates (at.pol[idx].p, op);
	}
	pthread_mutex_unlock (&at.lock);
	return gates;
}

bool
attest_policy_about (int idx, char *name, size_t len, unsigned char digest[POLICY_DIGEST_LEN])
{
	bool have = false;
	pthread_mutex_lock (&at.lock);
	if (at.open && idx >= 0 && (size_t)idx < at.n_pol) {
		snprintf (name, len, "%s", at.pol[idx].conf->name);
		if (at.pol[idx].p) {
			memcpy (digest, policy_digest (at.pol[idx].p), POLICY_DIGEST_LEN);
			have = true;
		}
	}
	pthread_mutex_unlock (&at.lock);
	return have;
}

bool
attest_any_policy_gates_sign (void)
{
	/* Signatures skip the gate while no policy gates them, so this is
	 * where a policy newly gating "sign" (or no longer loading) must be
	 * noticed: every policy file is looked at once a second from here. */
	static _Atomic uint64_t last_ns;
	uint64_t now = mono_ns (), last = atomic_load_explicit (&last_ns, memory_order_relaxed);
	if (now - last >= POLICY_RECHECK_NS &&
	    atomic_compare_exchange_strong (&last_ns, &last, now)) {
		pthread_mutex_lock (&at.lock);
		if (at.open)
			maybe_reload_all (now);
		pthread_mutex_unlock (&at.lock);
	}
	return atomic_load_explicit (&at.any_gates_sign, memory_order_relaxed);
}

/* Every anchor a policy names is enrolled for the rule's format. */
struct anchor_check {
	const struct anchor_set *anchors;
	const char *policy;
	char *err;
	size_t errlen;
};

static bool
check_anchor_ref (const char *format, const char *anchor, const char *path, void *user)
{
	struct anchor_check *c = user;
	const struct anchor *a = anchors_find (c->anchors, anchor);
	if (!a) {
		snprintf (c->err, c->errlen, "policy '%s': %s names anchor '%s', which is not enrolled "
		          "(no [anchor:%s])", c->policy, path, anchor, anchor);
		return false;
	}
	if (strcmp (a->conf->format, format) != 0) {
		snprintf (c->err, c->errlen, "policy '%s': %s names anchor '%s' for %s evidence, but "
		          "that anchor verifies %s", c->policy, path, anchor, format, a->conf->format);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ open/close */

static void
free_sessions (void)
{
	while (at.sessions) {
		struct psession *ps = at.sessions;
		at.sessions = ps->next;
		for (int f = 0; f < N_FORMATS; f++)
			appraisal_clear (&ps->ev[f]);
		while (ps->objects) {
			struct pobject *o = ps->objects;
			ps->objects = o->next;
			free (o->claims);
			OPENSSL_cleanse (o, sizeof *o);
			free (o);
		}
		OPENSSL_cleanse (ps, sizeof *ps);
		free (ps);
	}
}

static void
close_inlock (void)
{
	free_sessions ();
	for (size_t i = 0; i < at.n_pol; i++) {
		struct apolicy *ap = &at.pol[i];
		policy_free (ap->p);
		for (size_t j = 0; j < ap->n_retired; j++)
			policy_free (ap->retired[j]);
		free (ap->retired);
		free (ap->pulled);
		pthread_mutex_destroy (&ap->pull_lock);
	}
	free (at.pol);
	at.pol = NULL;
	at.n_pol = 0;
	for (size_t i = 0; i < at.n_coll; i++)
		collector_free (at.coll[i]);
	free (at.coll);
	at.coll = NULL;
	at.n_coll = 0;
	anchors_free (&at.anchors);
	at.conf = NULL;
	at.open = false;
	atomic_store (&at.any_gates_sign, false);
}

CK_RV
attest_open (const struct conf *conf, char *err, size_t errlen)
{
	CK_RV rv = CKR_GENERAL_ERROR;

	pthread_mutex_lock (&at.lock);
	close_inlock ();
	at.conf = conf;
	at.next_handle = HANDLE_BASE + 1;
	if (!anchors_load (conf, &at.anchors, err, errlen))
		goto fail;
	if (conf->n_policies) {
		at.pol = calloc (conf->n_policies, sizeof *at.pol);
		if (!at.pol) {
			snprintf (err, errlen, "out of memory");
			goto fail;
		}
	}
	for (size_t i = 0; i < conf->n_policies; i++) {
		struct apolicy *ap = &at.pol[i];
		struct anchor_check c = { &at.anchors, conf->policies[i].name, err, errlen };
		char msg[512];
		ap->conf = &conf->policies[i];
		pthread_mutex_init (&ap->pull_lock, NULL);
		at.n_pol++;
		ap->pulled = calloc (conf->n_slots ? conf->n_slots : 1, sizeof *ap->pulled);
		if (!ap->pulled) {
			snprintf (err, errlen, "out of memory");
			goto fail;
		}
		/* A policy that does not load at start is a configuration error
		 * (later, a policy that stops loading refuses everything). */
		if (!load_policy (ap, msg, sizeof msg)) {
			snprintf (err, errlen, "%s:%d: policy '%s': %s", conf->path, ap->conf->line,
			          ap->conf->name, msg);
			goto fail;
		}
		ap->checked_ns = mono_ns ();
		if (!policy_for_each_anchor (ap->p, check_anchor_ref, &c))
			goto fail;
	}
	if (conf->n_collectors) {
		at.coll = calloc (conf->n_collectors, sizeof *at.coll);
		if (!at.coll) {
			snprintf (err, errlen, "out of memory");
			goto fail;
		}
	}
	for (size_t i = 0; i < conf->n_collectors; i++) {
		const struct conf_collector *k = &conf->collectors[i];
		char msg[512];
		if (k->type == CONF_COLLECTOR_TPM2_QUOTE)
			at.coll[i] = collector_tpm2_new (k->name, k->tcti, (uint32_t)k->ak_handle, k->pcrs,
			                                 msg, sizeof msg);
		else
			at.coll[i] = collector_command_new (k->name, (const char *const *)k->argv,
			                                    k->timeout_ms, k->max_output, msg, sizeof msg);
		at.n_coll++;
		if (!at.coll[i]) {
			snprintf (err, errlen, "%s:%d: collector '%s': %s", conf->path, k->line, k->name, msg);
			goto fail;
		}
	}
	/* A gated slot needs somewhere to find a policy for its keys, unless
	 * it means to refuse them all. */
	for (size_t i = 0; i < conf->n_slots; i++) {
		const struct conf_slot *s = &conf->slots[i];
		if (s->gated && !s->policy && s->n_bindings == 0)
			log_info ("slot '%s': gated, with no policy: its gated keys are always refused",
			          s->name);
	}
	at.open = true;
	update_gates_sign ();
	rv = CKR_OK;
	goto out;
fail:
	close_inlock ();
out:
	pthread_mutex_unlock (&at.lock);
	return rv;
}

void
attest_close (void)
{
	pthread_mutex_lock (&at.lock);
	close_inlock ();
	pthread_mutex_unlock (&at.lock);
}

void
attest_abandon (void)
{
	/* The parent's threads may have held any of these locks; its
	 * verdicts and nonces are not this process's.  Leaked, not freed. */
	pthread_mutex_init (&at.lock, NULL);
	at.open = false;
	at.sessions = NULL;
	at.pol = NULL;
	at.n_pol = 0;
	at.coll = NULL;
	at.n_coll = 0;
	memset (&at.anchors, 0, sizeof at.anchors);
	at.conf = NULL;
	atomic_store (&at.any_gates_sign, false);
}

/* ------------------------------------------------------------ verdicts */

static struct psession *
find_session (CK_SESSION_HANDLE h)
{
	for (struct psession *ps = at.sessions; ps; ps = ps->next) {
		if (ps->session == h)
			return ps;
	}
	return NULL;
}

/* Judge the session's pushed evidence against @ap (lock held).  Evidence
 * pushed before a policy changed is dropped: the verdicts it gave were
 * under the old document, and "a verdict dies when its policy changes"
 * holds for pushed ones too (the application pushes again). */
static bool
session_passes (struct psession *ps, struct apolicy *ap, time_t now, struct policy_result *res)
{
	struct evidence_claims ev[N_FORMATS];
	size_t n = 0;
	for (int f = 0; f < N_FORMATS; f++) {
		if (ps->ev[f].claims && ps->ev_epoch[f] != at.policy_epoch)
			appraisal_clear (&ps->ev[f]);
		if (ps->ev[f].claims)
			appraisal_as_evidence (&ps->ev[f], &ev[n++]);
	}
	if (n == 0) {
		res->pass = false;
		snprintf (res->reason, sizeof res->reason, "no pushed evidence%s",
		          ps->have_nonce ? "" : " (and no challenge)");
		return false;
	}
	return policy_evaluate (ap->p, ev, n, now, res);
}

/* Pull: a fresh nonce, every collector of the slot, one appraisal each,
 * then the policy.  Called with the policy's pull lock, not the global one. */
static bool
pull (struct session *s, struct apolicy *ap, const struct policy *p, time_t *expires,
      char *reason, size_t reason_len)
{
	const struct conf_slot *cs = s->slot->conf;
	unsigned char nonce[ATTEST_NONCE_LEN];
	struct appraisal got[CONF_MAX_COLLECTORS];
	struct evidence_claims ev[CONF_MAX_COLLECTORS];
	struct policy_result res;
	size_t n = 0;
	char first_fail[ATTEST_REASON_MAX] = "";
	bool ok = false;

	if (cs->n_collectors == 0) {
		snprintf (reason, reason_len, "no live verdict for policy '%s' and slot '%s' has no "
		          "collectors (push evidence, or configure 'collectors')", ap->conf->name,
		          cs->name);
		return false;
	}
	if (RAND_bytes (nonce, sizeof nonce) != 1) {
		snprintf (reason, reason_len, "cannot make a nonce (RAND_bytes failed)");
		return false;
	}
	memset (got, 0, sizeof got);
	for (size_t i = 0; i < cs->n_collectors; i++) {
		const struct conf_collector *k = conf_find_collector (at.conf, cs->collectors[i]);
		struct collector *c = k ? at.coll[k - at.conf->collectors] : NULL;
		struct collected out = { 0 };
		char err[512];
		int rv;
		if (!c)
			continue;
		rv = collector_run (c, nonce, sizeof nonce, &out, err, sizeof err);
		if (rv != COLLECTOR_OK) {
			log_warning ("collector '%s': %s (%s)", k->name, collector_strerror (rv), err);
			if (!first_fail[0])
				snprintf (first_fail, sizeof first_fail, "collector '%s': %s", k->name, err);
			continue;
		}
		rv = evidence_appraise (&at.anchors, out.format, out.data, out.len, nonce, sizeof nonce,
		                        time (NULL), at.conf->clock_skew, &got[n], err, sizeof err);
		if (rv != 0)
			log_warning ("collector '%s': its %s evidence is refused: %s", k->name, out.format,
			             err);
		{
			unsigned char d[32];
			SHA256 (out.data, out.len, d);
			audit_evidence (cs->name, out.format, rv == 0 ? got[n].anchor : NULL, d, rv == 0,
			                rv == 0 ? "verified (pulled)" : err);
		}
		collected_clear (&out);
		if (rv != 0) {
			if (!first_fail[0])
				snprintf (first_fail, sizeof first_fail, "collector '%s': evidence refused: %s",
				          k->name, err);
			continue;
		}
		appraisal_as_evidence (&got[n], &ev[n]);
		n++;
	}
	OPENSSL_cleanse (nonce, sizeof nonce);
	if (policy_evaluate (p, ev, n, time (NULL), &res)) {
		ok = true;
		*expires = res.expires;
	} else if (first_fail[0]) {
		snprintf (reason, reason_len, "policy '%s': %s; %s", ap->conf->name, res.reason,
		          first_fail);
	} else {
		snprintf (reason, reason_len, "policy '%s': %s", ap->conf->name, res.reason);
	}
	for (size_t i = 0; i < n; i++)
		appraisal_clear (&got[i]);
	return ok;
}

static bool
pulled_live (const struct pulled *pv, const struct apolicy *ap, uint64_t now_ns, time_t now)
{
	return pv->pass && pv->gen == ap->gen && now_ns < pv->expires_ns && now < pv->expires;
}

CK_RV
attest_check (struct session *s, int idx, char *reason, size_t reason_len)
{
	struct apolicy *ap;
	struct pulled *pv;
	struct policy_result res;
	uint64_t now_ns = mono_ns ();
	time_t now = time (NULL), expires = 0;
	const struct policy *p;
	unsigned long gen, seq;
	size_t slot;
	char pushed_why[POLICY_REASON_MAX + 32] = "";
	bool ok;

	pthread_mutex_lock (&at.lock);
	if (!at.open || idx < 0 || (size_t)idx >= at.n_pol) {
		pthread_mutex_unlock (&at.lock);
		snprintf (reason, reason_len, "no policy");
		return P11W_CKR_DENIED;
	}
	ap = &at.pol[idx];
	slot = (size_t)(s->slot->conf - at.conf->slots);
	if (slot >= at.conf->n_slots) {
		pthread_mutex_unlock (&at.lock);
		snprintf (reason, reason_len, "internal error: unknown slot");
		return P11W_CKR_DENIED;
	}
	pv = &ap->pulled[slot];
	maybe_reload (ap, now_ns);
	if (!ap->p) {
		snprintf (reason, reason_len, "policy '%s' does not load: %s", ap->conf->name,
		          ap->broken);
		pthread_mutex_unlock (&at.lock);
		return P11W_CKR_DENIED;
	}
	/* A verdict pulled for this slot, alive on both clocks. */
	if (pulled_live (pv, ap, now_ns, now)) {
		pthread_mutex_unlock (&at.lock);
		return CKR_OK;
	}
	pv->pass = false;
	/* The session's pushed evidence. */
	{
		struct psession *ps = find_session (s->handle);
		if (ps && session_passes (ps, ap, now, &res)) {
			pthread_mutex_unlock (&at.lock);
			return CKR_OK;
		}
		if (ps)
			snprintf (pushed_why, sizeof pushed_why, "; pushed evidence: %s", res.reason);
	}
	p = ap->p;
	gen = ap->gen;
	seq = pv->seq;
	pthread_mutex_unlock (&at.lock);

	/* Pull, one thread per policy; those that waited behind a pull take
	 * its result, pass or fail (a collector that times out would
	 * otherwise make N waiting callers wait N times). */
	pthread_mutex_lock (&ap->pull_lock);
	pthread_mutex_lock (&at.lock);
	now_ns = mono_ns ();
	now = time (NULL);
	if (pulled_live (pv, ap, now_ns, now)) {
		pthread_mutex_unlock (&at.lock);
		pthread_mutex_unlock (&ap->pull_lock);
		return CKR_OK;
	}
	if (ap->gen != gen || !ap->p) {
		pthread_mutex_unlock (&at.lock);
		pthread_mutex_unlock (&ap->pull_lock);
		snprintf (reason, reason_len, "policy '%s' changed during the check", ap->conf->name);
		return P11W_CKR_DENIED;
	}
	if (pv->seq != seq && !pv->pass) {
		snprintf (reason, reason_len, "%s%s", pv->fail, pushed_why);
		pthread_mutex_unlock (&at.lock);
		pthread_mutex_unlock (&ap->pull_lock);
		return P11W_CKR_DENIED;
	}
	pthread_mutex_unlock (&at.lock);
	/* p stays valid: replaced policies are retired, not freed, until
	 * attest_close, which runs only when no call is in progress. */
	ok = pull (s, ap, p, &expires, reason, reason_len);
	pthread_mutex_lock (&at.lock);
	now_ns = mono_ns ();
	now = time (NULL);
	pv->seq++;
	if (ok && ap->gen == gen && expires > now) {
		pv->pass = true;
		pv->gen = gen;
		pv->expires = expires;
		pv->expires_ns = now_ns + (uint64_t)(expires - now) * 1000000000ull;
		log_info ("policy '%s', slot '%s': pulled evidence passes, verdict held until %lld",
		          ap->conf->name, s->slot->conf->name, (long long)expires);
	} else {
		if (ok) {
			ok = false;
			snprintf (reason, reason_len, "policy '%s' changed, or the verdict expired, during "
			          "the check", ap->conf->name);
		}
		pv->pass = false;
		snprintf (pv->fail, sizeof pv->fail, "%s", reason);
		pv->fail_ns = now_ns;
	}
	pthread_mutex_unlock (&at.lock);
	pthread_mutex_unlock (&ap->pull_lock);
	if (!ok && pushed_why[0]) {
		size_t used = strnlen (reason, reason_len);
		if (used + 1 < reason_len)
			snprintf (reason + used, reason_len - used, "%s", pushed_why);
	}
	return ok ? CKR_OK : P11W_CKR_DENIED;
}

/* ------------------------------------------------------------ vendor objects */

bool
attest_is_object (CK_OBJECT_HANDLE h)
{
	return (h >> HANDLE_SHIFT) == HANDLE_TAG;
}

static bool
template_class (const CK_ATTRIBUTE *templ, CK_ULONG count, CK_OBJECT_CLASS *klass)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type == CKA_CLASS && templ[i].pValue &&
		    templ[i].ulValueLen == sizeof (CK_OBJECT_CLASS)) {
			memcpy (klass, templ[i].pValue, sizeof *klass);
			return true;
		}
	}
	return false;
}

bool
attest_template_is_ours (const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	CK_OBJECT_CLASS k;
	if (!templ || !template_class (templ, count, &k))
		return false;
	return k == CKO_P11W_CHALLENGE || k == CKO_P11W_EVIDENCE || k == CKO_P11W_VERDICT;
}

static struct psession *
session_state (CK_SESSION_HANDLE h)
{
	struct psession *ps = find_session (h);
	if (ps)
		return ps;
	ps = calloc (1, sizeof *ps);
	if (!ps)
		return NULL;
	ps->session = h;
	ps->next = at.sessions;
	at.sessions = ps;
	return ps;
}

static struct pobject *
new_object (struct psession *ps, CK_OBJECT_CLASS klass)
{
	struct pobject *o;
	if (ps->n_objects >= PUSH_OBJECTS_MAX)
		return NULL;
	o = calloc (1, sizeof *o);
	if (!o)
		return NULL;
	o->h = at.next_handle++;
	o->klass = klass;
	o->next = ps->objects;
	ps->objects = o;
	ps->n_objects++;
	return o;
}

/* "name=value\n" for each claim, for CKA_P11W_CLAIMS. */
static char *
claims_text (const struct claim_set *set)
{
	size_t n = claim_set_count (set), cap = 256, len = 0;
	char *out = malloc (cap);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const struct claim *c = claim_set_at (set, i);
		char value[POLICY_SHOW_MAX * 4 + 32];
		size_t need;
		claim_value_format (&c->v, 128, value, sizeof value);
		need = strlen (c->name) + 1 + strlen (value) + 2;
		if (len + need > cap) {
			size_t bigger_cap = cap;
			char *bigger;
			while (len + need > bigger_cap)
				bigger_cap *= 2;
			if (bigger_cap > 256 * 1024 || !(bigger = realloc (out, bigger_cap))) {
				/* Too many to show: say so rather than show nothing. */
				if (len + 4 < cap)
					memcpy (out + len, "...", 4);
				return out;
			}
			out = bigger;
			cap = bigger_cap;
		}
		len += (size_t)snprintf (out + len, cap - len, "%s=%s\n", c->name, value);
	}
	return out;
}

/* The template's value of @type as a string (copied, NUL-terminated). */
static CK_RV
template_text (const CK_ATTRIBUTE *templ, CK_ULONG count, CK_ATTRIBUTE_TYPE type, char *out,
               size_t max, bool *present)
{
	*present = false;
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type != type)
			continue;
		if (*present || !templ[i].pValue || templ[i].ulValueLen == 0 ||
		    templ[i].ulValueLen >= max || memchr (templ[i].pValue, 0, templ[i].ulValueLen))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		memcpy (out, templ[i].pValue, templ[i].ulValueLen);
		out[templ[i].ulValueLen] = '\0';
		*present = true;
	}
	return CKR_OK;
}

/* Bytes outside printable ASCII in a reason become '?': reasons carry
 * parts of the evidence (a member name, a profile), which must not forge
 * log lines or reach applications as control characters. */
static void
sanitize (char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
	}
}

static int
policy_by_name (const char *name)
{
	for (size_t i = 0; name && i < at.n_pol; i++) {
		if (!strcmp (at.pol[i].conf->name, name))
			return (int)i;
	}
	return -1;
}

/* When the evidence was made, as far as it says: an EAT's or EAR's iat
 * (never later than now).  max-age counts from there, so that an old
 * token without exp is not made fresh by being pushed again. */
static time_t
evidence_time (const struct appraisal *a, time_t now)
{
	const struct claim *c = claim_set_find (a->claims, !strcmp (a->format, "eat") ? "eat.iat"
	                                                                              : "ear.iat");
	if (strcmp (a->format, "tpm2-quote") != 0 && c && c->v.type == CLAIM_INT && c->v.i < now)
		return (time_t)c->v.i;
	return now;
}

/*
 * C_CreateObject of evidence: appraise it now, keep it in the session, and
 * make a verdict object.  Called with at.lock held; the appraisal (a
 * signature check, up to EVIDENCE_MAX_SIZE bytes parsed) runs without it,
 * so that one client pushing evidence does not hold up every gated call.
 * The session (held by the caller) cannot close meanwhile.
 */
static CK_RV
create_evidence (struct session *s, struct psession *ps, const CK_ATTRIBUTE *templ,
                 CK_ULONG count, CK_OBJECT_HANDLE_PTR out)
{
	char format[EVIDENCE_FORMAT_MAX + 1], pname[CONF_NAME_MAX + 1];
	unsigned char nonce[ATTEST_NONCE_LEN];
	const CK_ATTRIBUTE *value = NULL;
	bool have_format, have_policy, have_nonce, appraised = false;
	struct appraisal a;
	struct pobject *o;
	int fidx, pidx = -1, rv;
	char err[512];
	time_t now = time (NULL);
	CK_RV crv;

	memset (&a, 0, sizeof a);
	crv = template_text (templ, count, CKA_P11W_FORMAT, format, sizeof format, &have_format);
	if (crv != CKR_OK)
		return crv;
	crv = template_text (templ, count, CKA_P11W_POLICY, pname, sizeof pname, &have_policy);
	if (crv != CKR_OK)
		return crv;
	for (CK_ULONG i = 0; i < count; i++) {
		switch (templ[i].type) {
		case CKA_CLASS:
		case CKA_P11W_FORMAT:
		case CKA_P11W_POLICY:
			break;
		case CKA_VALUE:
			if (value)
				return CKR_TEMPLATE_INCONSISTENT;
			value = &templ[i];
			break;
		case CKA_TOKEN:
			/* Evidence lives in the session, never on the token. */
			if (templ[i].ulValueLen != sizeof (CK_BBOOL) || !templ[i].pValue ||
			    *(CK_BBOOL *)templ[i].pValue != CK_FALSE)
				return CKR_ATTRIBUTE_VALUE_INVALID;
			break;
		default:
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
	}
	if (!have_format || !value)
		return CKR_TEMPLATE_INCOMPLETE;
	if (!value->pValue || value->ulValueLen == 0 || value->ulValueLen > EVIDENCE_MAX_SIZE)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	fidx = format_index (format);
	if (fidx < 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	pidx = policy_by_name (have_policy ? pname : s->slot->conf->policy);
	if (have_policy && pidx < 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	o = new_object (ps, CKO_P11W_VERDICT);
	if (!o)
		return CKR_DEVICE_MEMORY;
	snprintf (o->format, sizeof o->format, "%s", format);
	o->policy = pidx;
	/* Any change of policy files first, so that this evidence is stamped
	 * with the epoch it will be judged in. */
	maybe_reload_all (mono_ns ());

	if (ps->have_nonce && (ps->used & (1u << fidx))) {
		snprintf (o->reason, sizeof o->reason, "the session's nonce was already used for %s "
		          "evidence: create a new challenge (replay refused)", format);
		goto done;
	}
	if (!ps->have_nonce && fidx == 0) {
		/* A quote carries no time: over no challenge of ours, it could
		 * be any age, whatever max-age says. */
		snprintf (o->reason, sizeof o->reason, "a TPM quote is fresh only over this session's "
		          "nonce: create a challenge (CKO_P11W_CHALLENGE) and quote over its CKA_VALUE");
		goto done;
	}
	have_nonce = ps->have_nonce;
	if (have_nonce) {
		memcpy (nonce, ps->nonce, sizeof nonce);
		ps->used |= 1u << fidx;
	}
	pthread_mutex_unlock (&at.lock);
	rv = evidence_appraise (&at.anchors, format, value->pValue, value->ulValueLen,
	                        have_nonce ? nonce : NULL, sizeof nonce, now, at.conf->clock_skew, &a,
	                        err, sizeof err);
	OPENSSL_cleanse (nonce, sizeof nonce);
	/* Recorded before the lock is taken again: a ledger write may wait
	 * (audit-fsync = always, a full batch), and every gated call needs
	 * at.lock. */
	{
		unsigned char d[32];
		SHA256 (value->pValue, value->ulValueLen, d);
		audit_evidence (s->slot->conf->name, format, rv == 0 ? a.anchor : NULL, d, rv == 0,
		                rv == 0 ? "verified (pushed)" : err);
	}
	pthread_mutex_lock (&at.lock);
	if (rv != 0) {
		snprintf (o->reason, sizeof o->reason, "%s evidence refused: %s", format, err);
		goto done;
	}
	appraised = true;
	a.verified_at = evidence_time (&a, now);
	o->claims = claims_text (a.claims);
	appraisal_clear (&ps->ev[fidx]);
	ps->ev[fidx] = a;
	ps->ev_epoch[fidx] = at.policy_epoch;
	if (pidx < 0) {
		snprintf (o->reason, sizeof o->reason, "evidence appraised, but no policy was named "
		          "(CKA_P11W_POLICY) and slot '%s' has no default policy", s->slot->conf->name);
		goto done;
	}
	if (!at.pol[pidx].p) {
		snprintf (o->reason, sizeof o->reason, "policy '%s' does not load: %s",
		          at.pol[pidx].conf->name, at.pol[pidx].broken);
		goto done;
	}
	{
		struct policy_result res;
		o->policy_gen = at.pol[pidx].gen;
		if (session_passes (ps, &at.pol[pidx], now, &res)) {
			o->pass = true;
			o->expires = res.expires;
			snprintf (o->reason, sizeof o->reason, "pass: policy '%s'", at.pol[pidx].conf->name);
		} else {
			snprintf (o->reason, sizeof o->reason, "policy '%s': %s", at.pol[pidx].conf->name,
			          res.reason);
		}
	}
done:
	(void)appraised;
	sanitize (o->reason);
	log_info ("slot '%s': pushed %s evidence: %s", s->slot->conf->name, format, o->reason);
	*out = o->h;
	return CKR_OK;
}

CK_RV
attest_create_object (struct session *s, const CK_ATTRIBUTE *templ, CK_ULONG count,
                      CK_OBJECT_HANDLE_PTR out)
{
	CK_OBJECT_CLASS klass = 0;
	struct psession *ps;
	CK_RV rv = CKR_OK;

	if (!templ || !out || !template_class (templ, count, &klass))
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock (&at.lock);
	if (!at.open) {
		pthread_mutex_unlock (&at.lock);
		return CKR_GENERAL_ERROR;
	}
	ps = session_state (s->handle);
	if (!ps) {
		pthread_mutex_unlock (&at.lock);
		return CKR_HOST_MEMORY;
	}
	for (CK_ULONG i = 0, classes = 0; i < count; i++) {
		if (templ[i].type == CKA_CLASS && ++classes > 1) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			goto out;
		}
	}
	if (klass == CKO_P11W_CHALLENGE) {
		struct pobject *o;
		unsigned char fresh[ATTEST_NONCE_LEN];
		for (CK_ULONG i = 0; i < count; i++) {
			if (templ[i].type == CKA_CLASS)
				continue;
			if (templ[i].type == CKA_TOKEN && templ[i].pValue &&
			    templ[i].ulValueLen == sizeof (CK_BBOOL) &&
			    *(CK_BBOOL *)templ[i].pValue == CK_FALSE)
				continue;
			rv = templ[i].type == CKA_TOKEN ? CKR_ATTRIBUTE_VALUE_INVALID
			                                : CKR_ATTRIBUTE_TYPE_INVALID;
			goto out;
		}
		if (RAND_bytes (fresh, sizeof fresh) != 1) {
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
		o = new_object (ps, CKO_P11W_CHALLENGE);
		if (!o) {
			rv = CKR_DEVICE_MEMORY;
			goto out;
		}
		memcpy (ps->nonce, fresh, sizeof fresh);
		OPENSSL_cleanse (fresh, sizeof fresh);
		ps->have_nonce = true;
		ps->used = 0;
		memcpy (o->nonce, ps->nonce, sizeof o->nonce);
		*out = o->h;
	} else if (klass == CKO_P11W_EVIDENCE) {
		rv = create_evidence (s, ps, templ, count, out);
	} else {
		/* Verdicts are made by appraisal, never by the application. */
		rv = CKR_TEMPLATE_INCONSISTENT;
	}
out:
	pthread_mutex_unlock (&at.lock);
	return rv;
}

static struct pobject *
find_object (struct psession *ps, CK_OBJECT_HANDLE h)
{
	for (struct pobject *o = ps ? ps->objects : NULL; o; o = o->next) {
		if (o->h == h)
			return o;
	}
	return NULL;
}

/* Fill one attribute (3.0, 5.7): too small -> CKR_BUFFER_TOO_SMALL. */
static CK_RV
put (CK_ATTRIBUTE *a, const void *v, CK_ULONG len)
{
	if (!a->pValue) {
		a->ulValueLen = len;
		return CKR_OK;
	}
	if (a->ulValueLen < len) {
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy (a->pValue, v, len);
	a->ulValueLen = len;
	return CKR_OK;
}

CK_RV
attest_get_attributes (struct session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR templ,
                       CK_ULONG count)
{
	struct pobject *o;
	CK_RV rv = CKR_OK;
	time_t now = time (NULL);

	if (!templ)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock (&at.lock);
	o = find_object (find_session (s->handle), h);
	if (!o) {
		pthread_mutex_unlock (&at.lock);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	/* A verdict reads as failed once its policy file has changed. */
	if (o->klass == CKO_P11W_VERDICT && o->policy >= 0 && (size_t)o->policy < at.n_pol)
		maybe_reload (&at.pol[o->policy], mono_ns ());
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ATTRIBUTE *a = &templ[i];
		CK_BBOOL f = CK_FALSE;
		CK_RV r = CKR_OK;
		if (a->type == CKA_CLASS) {
			r = put (a, &o->klass, sizeof o->klass);
		} else if (a->type == CKA_TOKEN || a->type == CKA_PRIVATE || a->type == CKA_MODIFIABLE) {
			r = put (a, &f, sizeof f);
		} else if (o->klass == CKO_P11W_CHALLENGE && a->type == CKA_VALUE) {
			r = put (a, o->nonce, sizeof o->nonce);
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_STATUS) {
			/* Alive only until it expires and while its policy is the same. */
			bool live = o->pass && now < o->expires && o->policy >= 0 &&
			            (size_t)o->policy < at.n_pol && at.pol[o->policy].gen == o->policy_gen;
			CK_ULONG st = live ? P11W_VERDICT_PASS : P11W_VERDICT_FAIL;
			r = put (a, &st, sizeof st);
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_REASON) {
			const char *why = o->reason;
			if (o->pass && now >= o->expires)
				why = "expired";
			else if (o->pass && at.pol[o->policy].gen != o->policy_gen)
				why = "the policy changed since";
			r = put (a, why, (CK_ULONG)strlen (why));
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_EXPIRES) {
			CK_ULONG e = o->pass ? (CK_ULONG)o->expires : 0;
			r = put (a, &e, sizeof e);
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_POLICY) {
			const char *name = o->policy >= 0 ? at.pol[o->policy].conf->name : "";
			r = put (a, name, (CK_ULONG)strlen (name));
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_FORMAT) {
			r = put (a, o->format, (CK_ULONG)strlen (o->format));
		} else if (o->klass == CKO_P11W_VERDICT && a->type == CKA_P11W_CLAIMS) {
			const char *c = o->claims ? o->claims : "";
			r = put (a, c, (CK_ULONG)strlen (c));
		} else {
			a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			r = CKR_ATTRIBUTE_TYPE_INVALID;
		}
		/* 3.0, 5.7: report one of the errors, fill the rest. */
		if (r != CKR_OK && rv == CKR_OK)
			rv = r;
	}
	pthread_mutex_unlock (&at.lock);
	return rv;
}

bool
attest_object_exists (struct session *s, CK_OBJECT_HANDLE h)
{
	bool found;
	pthread_mutex_lock (&at.lock);
	found = find_object (find_session (s->handle), h) != NULL;
	pthread_mutex_unlock (&at.lock);
	return found;
}

CK_RV
attest_destroy_object (struct session *s, CK_OBJECT_HANDLE h)
{
	struct psession *ps;
	CK_RV rv = CKR_OBJECT_HANDLE_INVALID;
	pthread_mutex_lock (&at.lock);
	ps = find_session (s->handle);
	for (struct pobject **p = ps ? &ps->objects : NULL; p && *p; p = &(*p)->next) {
		if ((*p)->h == h) {
			struct pobject *dead = *p;
			*p = dead->next;
			ps->n_objects--;
			free (dead->claims);
			OPENSSL_cleanse (dead, sizeof *dead);
			free (dead);
			rv = CKR_OK;
			break;
		}
	}
	pthread_mutex_unlock (&at.lock);
	return rv;
}

void
attest_forget_session (CK_SESSION_HANDLE session)
{
	pthread_mutex_lock (&at.lock);
	for (struct psession **p = &at.sessions; *p; p = &(*p)->next) {
		if ((*p)->session == session) {
			struct psession *ps = *p;
			*p = ps->next;
			ps->next = NULL;
			/* free_sessions frees the list it is given: detach and free. */
			{
				struct psession *keep = at.sessions;
				at.sessions = ps;
				free_sessions ();
				at.sessions = keep;
			}
			break;
		}
	}
	pthread_mutex_unlock (&at.lock);
}
