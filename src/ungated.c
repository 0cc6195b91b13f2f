/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "ungated.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024
#define MAX_RECORDS 100000

enum kind { KIND_CHILD, KIND_DECISION };

struct record {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE object;
	enum kind kind;
	CK_SESSION_HANDLE owner;   /* children: session of a session object, or 0 */
	uint64_t expires_ns;       /* decisions */
	int policy;                /* decisions: -1 ungated, else the gated key's policy */
	unsigned char *names;      /* policy decisions: the key's id, then its label,
	                            * for the audit records of its uses */
	size_t id_len, label_len;
	struct record *next;
};

static struct {
	pthread_mutex_t lock;
	struct record *buckets[BUCKETS];
	size_t count;
	uint64_t ttl_ns;
	unsigned long epoch;   /* bumped by every rename through p11-warden */
} tbl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t
now_ns (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned int
bucket (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	return (unsigned int)((object * 31 + slot) % BUCKETS);
}

void
ungated_configure (unsigned int cache_ms)
{
	pthread_mutex_lock (&tbl.lock);
	tbl.ttl_ns = (uint64_t)cache_ms * 1000000u;
	pthread_mutex_unlock (&tbl.lock);
}

/* Remove the records of bucket @b for which @match holds (lock held). */
static void
remove_inlock (unsigned int b, bool (*match) (const struct record *, const void *),
               const void *arg)
{
	struct record **p = &tbl.buckets[b];
	while (*p) {
		if (match (*p, arg)) {
			struct record *dead = *p;
			*p = dead->next;
			free (dead->names);
			free (dead);
			tbl.count--;
		} else {
			p = &(*p)->next;
		}
	}
}

struct key {
	CK_SLOT_ID slot;
	CK_ULONG value;
	uint64_t now;
};

static bool
match_object (const struct record *r, const void *arg)
{
	const struct key *k = arg;
	return r->slot == k->slot && r->object == k->value;
}

static bool
match_decision (const struct record *r, const void *arg)
{
	return r->kind == KIND_DECISION && match_object (r, arg);
}

static bool
match_expired (const struct record *r, const void *arg)
{
	const struct key *k = arg;
	return r->kind == KIND_DECISION && r->expires_ns <= k->now;
}

static bool
match_owner (const struct record *r, const void *arg)
{
	const struct key *k = arg;
	return r->slot == k->slot && r->kind == KIND_CHILD && r->owner == k->value && k->value != 0;
}

static bool
match_all (const struct record *r, const void *arg)
{
	return true;
}

/* The record of @object: a child, or a decision (ungated, or the policy
 * of a gated key); -2 none, -1 ungated, else the policy. */
static int
lookup (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, bool children_only)
{
	struct key k = { slot, object, now_ns () };
	unsigned int b = bucket (slot, object);
	int found = -2;

	pthread_mutex_lock (&tbl.lock);
	remove_inlock (b, match_expired, &k);
	for (struct record *r = tbl.buckets[b]; r; r = r->next) {
		if (r->slot == slot && r->object == object && (!children_only || r->kind == KIND_CHILD)) {
			found = r->kind == KIND_CHILD ? -1 : r->policy;
			/* A child record outranks a decision about the same key. */
			if (found == -1)
				break;
		}
	}
	pthread_mutex_unlock (&tbl.lock);
	return found;
}

bool
ungated_lookup (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	return lookup (slot, object, false) == -1;
}

bool
ungated_lookup_policy (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, int *policy,
                       struct ungated_names *names)
{
	struct key k = { slot, object, now_ns () };
	unsigned int b = bucket (slot, object);
	bool found = false;

	pthread_mutex_lock (&tbl.lock);
	remove_inlock (b, match_expired, &k);
	for (struct record *r = tbl.buckets[b]; r; r = r->next) {
		if (r->slot != slot || r->object != object)
			continue;
		if (r->kind == KIND_CHILD || r->policy < 0) {
			found = false; /* ungated: not a policy binding */
			break;
		}
		found = true;
		*policy = r->policy;
		if (names) {
			names->id_len = r->id_len;
			names->label_len = r->label_len;
			if (r->names) {
				memcpy (names->id, r->names, r->id_len);
				memcpy (names->label, r->names + r->id_len, r->label_len);
			}
		}
	}
	pthread_mutex_unlock (&tbl.lock);
	return found;
}

bool
ungated_is_child (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	return lookup (slot, object, true) == -1;
}

static bool
add (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, enum kind kind, CK_SESSION_HANDLE owner,
     unsigned long epoch, int policy, const struct ungated_names *names)
{
	struct record *r = calloc (1, sizeof *r);
	struct key k = { slot, object, now_ns () };
	unsigned int b = bucket (slot, object);

	if (!r)
		return false;
	if (names && names->id_len <= sizeof names->id && names->label_len <= sizeof names->label &&
	    names->id_len + names->label_len > 0) {
		r->names = malloc (names->id_len + names->label_len);
		if (!r->names) {
			free (r);
			return false;
		}
		memcpy (r->names, names->id, names->id_len);
		memcpy (r->names + names->id_len, names->label, names->label_len);
		r->id_len = names->id_len;
		r->label_len = names->label_len;
	}
	r->slot = slot;
	r->object = object;
	r->kind = kind;
	r->owner = owner;
	r->policy = kind == KIND_DECISION ? policy : -1;
	pthread_mutex_lock (&tbl.lock);
	if (kind == KIND_DECISION) {
		/* A decision read before a rename that has completed since
		 * describes a name the key may no longer have. */
		if (tbl.ttl_ns == 0 || epoch != tbl.epoch) {
			pthread_mutex_unlock (&tbl.lock);
			free (r->names);
			free (r);
			return false;
		}
		r->expires_ns = k.now + tbl.ttl_ns;
		/* One live decision per key. */
		remove_inlock (b, match_decision, &k);
	}
	if (tbl.count >= MAX_RECORDS) {
		pthread_mutex_unlock (&tbl.lock);
		free (r->names);
		free (r);
		return false;
	}
	r->next = tbl.buckets[b];
	tbl.buckets[b] = r;
	tbl.count++;
	pthread_mutex_unlock (&tbl.lock);
	return true;
}

bool
ungated_note_child (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_SESSION_HANDLE owner)
{
	return add (slot, object, KIND_CHILD, owner, 0, -1, NULL);
}

unsigned long
ungated_epoch (void)
{
	unsigned long e;
	pthread_mutex_lock (&tbl.lock);
	e = tbl.epoch;
	pthread_mutex_unlock (&tbl.lock);
	return e;
}

void
ungated_note_decision (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, unsigned long epoch)
{
	(void)add (slot, object, KIND_DECISION, 0, epoch, -1, NULL);
}

void
ungated_note_policy (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, unsigned long epoch, int policy,
                     const struct ungated_names *names)
{
	if (policy >= 0)
		(void)add (slot, object, KIND_DECISION, 0, epoch, policy, names);
}

void
ungated_forget_object (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	struct key k = { slot, object, 0 };
	pthread_mutex_lock (&tbl.lock);
	remove_inlock (bucket (slot, object), match_object, &k);
	pthread_mutex_unlock (&tbl.lock);
}

void
ungated_renamed (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	struct key k = { slot, object, 0 };
	pthread_mutex_lock (&tbl.lock);
	tbl.epoch++;
	remove_inlock (bucket (slot, object), match_decision, &k);
	pthread_mutex_unlock (&tbl.lock);
}

void
ungated_forget_session (CK_SLOT_ID slot, CK_SESSION_HANDLE session)
{
	struct key k = { slot, session, 0 };
	pthread_mutex_lock (&tbl.lock);
	for (unsigned int b = 0; b < BUCKETS; b++)
		remove_inlock (b, match_owner, &k);
	pthread_mutex_unlock (&tbl.lock);
}

void
ungated_reset (bool after_fork)
{
	if (after_fork) {
		pthread_mutex_init (&tbl.lock, NULL);
		memset (tbl.buckets, 0, sizeof tbl.buckets);
		tbl.count = 0;
		return;
	}
	pthread_mutex_lock (&tbl.lock);
	for (unsigned int b = 0; b < BUCKETS; b++)
		remove_inlock (b, match_all, NULL);
	pthread_mutex_unlock (&tbl.lock);
}
