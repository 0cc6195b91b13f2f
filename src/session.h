/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions: the front's handles, each mapped to one backend session of its
 * slot's token, with the operations active in it.  Object handles are the
 * backend's own (a session belongs to exactly one backend token, so they
 * need no mapping).
 *
 * A call holds its session (a reference and the session's lock) from
 * session_acquire to session_release: calls on one session are serialised,
 * which is the PKCS#11 model of one operation of each kind per session, and
 * a session closed by another thread is freed only when the last holder
 * lets go.
 */
#ifndef P11W_SESSION_H
#define P11W_SESSION_H

#include "pkcs11.h"
#include "slot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Operations that can be active in a session (PKCS#11 3.0, 5.2). */
enum op {
	OP_FIND = 1u << 0,
	OP_ENCRYPT = 1u << 1,
	OP_DECRYPT = 1u << 2,
	OP_DIGEST = 1u << 3,
	OP_SIGN = 1u << 4,
	OP_VERIFY = 1u << 5,
	OP_SIGN_RECOVER = 1u << 6,
	OP_VERIFY_RECOVER = 1u << 7,
};

struct session {
	CK_SESSION_HANDLE handle;
	struct slot *slot;
	CK_SESSION_HANDLE bs;       /* the backend's session */
	CK_FLAGS flags;
	unsigned int ops;           /* enum op bits, under lock */
	bool closed;
	atomic_uint refs;
	pthread_mutex_t lock;
	struct session *next;       /* hash chain */
};

CK_RV sessions_init (void);
/* Close every session (and its backend session). */
void sessions_close_all (void);
/* Forget every session without touching it (child of fork). */
void sessions_abandon (void);

/* Open a backend session on @slot and register it. */
CK_RV session_open (struct slot *slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
/* Look up @handle; on success the session is held and locked. */
CK_RV session_acquire (CK_SESSION_HANDLE handle, struct session **out);
void session_release (struct session *s);
CK_RV session_close (CK_SESSION_HANDLE handle);
/* Close every session of @slot. */
void session_close_slot (struct slot *slot);

#endif /* P11W_SESSION_H */
