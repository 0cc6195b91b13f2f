/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "handles.h"
#include "log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define MAX_HANDLES 1000000

struct entry {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE object;
	CK_SESSION_HANDLE owner;   /* the session of a session object, or 0 */
	bool typed;                /* class and key type known (they never change) */
	CK_OBJECT_CLASS klass;
	CK_KEY_TYPE key_type;
	struct entry *next;
};

static struct {
	pthread_rwlock_t lock;
	struct entry *buckets[BUCKETS];
	size_t count;
	bool full_logged;
} set = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static unsigned int
bucket (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	uint64_t h = (uint64_t)object * 0x9e3779b97f4a7c15u ^ (uint64_t)slot;
	return (unsigned int)((h ^ (h >> 29)) % BUCKETS);
}

static struct entry *
find_inlock (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	for (struct entry *e = set.buckets[bucket (slot, object)]; e; e = e->next) {
		if (e->slot == slot && e->object == object)
			return e;
	}
	return NULL;
}

bool
handles_known (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	bool known;
	if (object == CK_INVALID_HANDLE)
		return false;
	pthread_rwlock_rdlock (&set.lock);
	known = find_inlock (slot, object) != NULL;
	pthread_rwlock_unlock (&set.lock);
	return known;
}

bool
handles_add (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_SESSION_HANDLE owner)
{
	struct entry *e;
	unsigned int b = bucket (slot, object);

	if (object == CK_INVALID_HANDLE)
		return false;
	pthread_rwlock_wrlock (&set.lock);
	if (find_inlock (slot, object)) {
		pthread_rwlock_unlock (&set.lock);
		return true;
	}
	if (set.count >= MAX_HANDLES || !(e = malloc (sizeof *e))) {
		if (!set.full_logged)
			log_error ("more than %d object handles in use: new objects are refused",
			           MAX_HANDLES);
		set.full_logged = true;
		pthread_rwlock_unlock (&set.lock);
		return false;
	}
	e->slot = slot;
	e->object = object;
	e->owner = owner;
	e->typed = false;
	e->next = set.buckets[b];
	set.buckets[b] = e;
	set.count++;
	pthread_rwlock_unlock (&set.lock);
	return true;
}

void
handles_remove (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	pthread_rwlock_wrlock (&set.lock);
	for (struct entry **p = &set.buckets[bucket (slot, object)]; *p; p = &(*p)->next) {
		if ((*p)->slot == slot && (*p)->object == object) {
			struct entry *dead = *p;
			*p = dead->next;
			free (dead);
			set.count--;
			break;
		}
	}
	pthread_rwlock_unlock (&set.lock);
}

void
handles_reset (bool after_fork)
{
	if (after_fork) {
		/* The parent's entries and lock are left as they were. */
		pthread_rwlock_init (&set.lock, NULL);
		memset (set.buckets, 0, sizeof set.buckets);
		set.count = 0;
		set.full_logged = false;
		return;
	}
	pthread_rwlock_wrlock (&set.lock);
	for (unsigned int b = 0; b < BUCKETS; b++) {
		struct entry *e = set.buckets[b];
		while (e) {
			struct entry *next = e->next;
			free (e);
			e = next;
		}
		set.buckets[b] = NULL;
	}
	set.count = 0;
	set.full_logged = false;
	pthread_rwlock_unlock (&set.lock);
}

bool
handles_type (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_OBJECT_CLASS *klass,
              CK_KEY_TYPE *key_type)
{
	struct entry *e;
	bool typed = false;
	pthread_rwlock_rdlock (&set.lock);
	e = find_inlock (slot, object);
	if (e && e->typed) {
		*klass = e->klass;
		*key_type = e->key_type;
		typed = true;
	}
	pthread_rwlock_unlock (&set.lock);
	return typed;
}

void
handles_set_type (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_OBJECT_CLASS klass,
                  CK_KEY_TYPE key_type)
{
	struct entry *e;
	pthread_rwlock_wrlock (&set.lock);
	e = find_inlock (slot, object);
	if (e) {
		e->klass = klass;
		e->key_type = key_type;
		e->typed = true;
	}
	pthread_rwlock_unlock (&set.lock);
}

void
handles_forget_session (CK_SLOT_ID slot, CK_SESSION_HANDLE session)
{
	pthread_rwlock_wrlock (&set.lock);
	for (unsigned int b = 0; b < BUCKETS; b++) {
		struct entry **p = &set.buckets[b];
		while (*p) {
			if ((*p)->slot == slot && (*p)->owner == session) {
				struct entry *dead = *p;
				*p = dead->next;
				free (dead);
				set.count--;
			} else {
				p = &(*p)->next;
			}
		}
	}
	pthread_rwlock_unlock (&set.lock);
}
