/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "session.h"
#include "gate.h"
#include "handles.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 256

static struct {
	pthread_rwlock_t lock;
	struct session *buckets[BUCKETS];
	CK_SESSION_HANDLE next_handle;
	bool ready;
} tbl;

static inline unsigned int
bucket (CK_SESSION_HANDLE h)
{
	return (unsigned int)(h % BUCKETS);
}

CK_RV
sessions_init (void)
{
	memset (&tbl, 0, sizeof tbl);
	if (pthread_rwlock_init (&tbl.lock, NULL) != 0)
		return CKR_CANT_LOCK;
	tbl.next_handle = 1;
	tbl.ready = true;
	return CKR_OK;
}

static void
session_unref (struct session *s)
{
	if (atomic_fetch_sub (&s->refs, 1) == 1) {
		pthread_mutex_destroy (&s->lock);
		free (s);
	}
}

CK_RV
session_open (struct slot *slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
	struct session *s;
	CK_RV rv;

	rv = slot_session_opened (slot, flags);
	if (rv != CKR_OK)
		return rv;
	s = calloc (1, sizeof *s);
	if (!s) {
		slot_session_closed (slot, flags);
		return CKR_HOST_MEMORY;
	}
	s->slot = slot;
	s->flags = flags;
	atomic_init (&s->refs, 1);
	pthread_mutex_init (&s->lock, NULL);
	/* Notifications are not forwarded: the application's callback would
	 * receive backend handles. */
	rv = slot->backend.fl->C_OpenSession (slot->backend.slot_id, flags, NULL, NULL, &s->bs);
	if (rv != CKR_OK) {
		slot_session_closed (slot, flags);
		pthread_mutex_destroy (&s->lock);
		free (s);
		return rv;
	}
	pthread_rwlock_wrlock (&tbl.lock);
	/* Handles are never reused within a module instance, and never 0. */
	s->handle = tbl.next_handle++;
	s->next = tbl.buckets[bucket (s->handle)];
	tbl.buckets[bucket (s->handle)] = s;
	pthread_rwlock_unlock (&tbl.lock);
	*out = s->handle;
	return CKR_OK;
}

CK_RV
session_acquire (CK_SESSION_HANDLE handle, struct session **out)
{
	struct session *s;

	pthread_rwlock_rdlock (&tbl.lock);
	for (s = tbl.buckets[bucket (handle)]; s; s = s->next) {
		if (s->handle == handle) {
			atomic_fetch_add (&s->refs, 1);
			break;
		}
	}
	pthread_rwlock_unlock (&tbl.lock);
	if (!s)
		return CKR_SESSION_HANDLE_INVALID;
	pthread_mutex_lock (&s->lock);
	if (s->closed) {
		pthread_mutex_unlock (&s->lock);
		session_unref (s);
		return CKR_SESSION_HANDLE_INVALID;
	}
	*out = s;
	return CKR_OK;
}

void
session_release (struct session *s)
{
	pthread_mutex_unlock (&s->lock);
	session_unref (s);
}

/* Remove @s from the table (table write-locked by the caller). */
static void
unlink_inlock (struct session *s)
{
	struct session **p = &tbl.buckets[bucket (s->handle)];
	while (*p && *p != s)
		p = &(*p)->next;
	if (*p)
		*p = s->next;
}

/* Close a session already unlinked from the table: waits for the call in
 * progress on it, closes the backend session, drops the table's reference. */
static void
finish_close (struct session *s)
{
	CK_RV rv;
	pthread_mutex_lock (&s->lock);
	s->closed = true;
	rv = s->slot->backend.fl->C_CloseSession (s->bs);
	if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED)
		log_warning ("slot '%s': backend C_CloseSession: 0x%lx", s->slot->conf->name,
		             (unsigned long)rv);
	slot_session_closed (s->slot, s->flags);
	gate_forget_session (s->slot, s->handle);
	handles_forget_session (s->slot->id, s->handle);
	pthread_mutex_unlock (&s->lock);
	session_unref (s);
}

CK_RV
session_close (CK_SESSION_HANDLE handle)
{
	struct session *s;

	pthread_rwlock_wrlock (&tbl.lock);
	for (s = tbl.buckets[bucket (handle)]; s; s = s->next) {
		if (s->handle == handle)
			break;
	}
	if (s)
		unlink_inlock (s);
	pthread_rwlock_unlock (&tbl.lock);
	if (!s)
		return CKR_SESSION_HANDLE_INVALID;
	finish_close (s);
	return CKR_OK;
}

/* Unlink every session of @slot (NULL: all) into a private list, then close
 * them outside the table lock. */
static void
close_matching (struct slot *slot)
{
	struct session *list = NULL, *s, *next;

	pthread_rwlock_wrlock (&tbl.lock);
	for (unsigned int i = 0; i < BUCKETS; i++) {
		struct session **p = &tbl.buckets[i];
		while (*p) {
			s = *p;
			if (!slot || s->slot == slot) {
				*p = s->next;
				s->next = list;
				list = s;
			} else {
				p = &s->next;
			}
		}
	}
	pthread_rwlock_unlock (&tbl.lock);
	for (s = list; s; s = next) {
		next = s->next;
		finish_close (s);
	}
}

void
session_close_slot (struct slot *slot)
{
	close_matching (slot);
}

void
sessions_close_all (void)
{
	if (!tbl.ready)
		return;
	close_matching (NULL);
	pthread_rwlock_destroy (&tbl.lock);
	tbl.ready = false;
}

void
sessions_abandon (void)
{
	/* Inherited from the parent: locks may be held by threads that do not
	 * exist in this process.  Leak rather than touch. */
	memset (&tbl, 0, sizeof tbl);
}
