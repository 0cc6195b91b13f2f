/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the gate remembers about keys it has found to be ungated, so that it
 * need not ask the backend again:
 *
 * - children: keys made by an allowed unwrap, derive or copy from an
 *   ungated key, released like their parent (their material was available
 *   through it).  Kept until the key is destroyed through p11-warden, its
 *   session closes (session objects), or the module is finalised.
 * - decisions: a key an `ungated` URI named when the gate last read it,
 *   or the policy a gated key's name bound it to, for `gate-cache-ms`
 *   (p11-warden.conf(5)); dropped earlier when the key is renamed or
 *   destroyed through p11-warden.
 *
 * Only releases are remembered, never refusals, and only for a bounded
 * number of keys: beyond it, the gate asks the backend every time.
 * Records are keyed by slot and backend object handle; a backend must not
 * reuse the handle of a live object (none does) and should not reuse one
 * within gate-cache-ms of its destruction by another process (SoftHSM
 * never reuses handles).
 */
#ifndef P11W_UNGATED_H
#define P11W_UNGATED_H

#include "pkcs11.h"

#include <stdbool.h>

void ungated_configure (unsigned int cache_ms);
/* Forget everything; @after_fork: the parent's lock may be held, do not
 * touch it. */
void ungated_reset (bool after_fork);

bool ungated_lookup (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
bool ungated_is_child (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
/* @owner: the session of a session object, 0 for a token object. */
bool ungated_note_child (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_SESSION_HANDLE owner);
/* Record a decision the gate reached from attributes it read when
 * ungated_epoch() was @epoch: dropped if a rename completed since. */
unsigned long ungated_epoch (void);
void ungated_note_decision (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, unsigned long epoch);
/* The same memory for a gated key: which policy its name binds it to
 * (found by the key-policy URIs or the slot's default), so that a key
 * with a live verdict need not be read again.  Only the binding is kept;
 * the verdict is asked for at every use. */
struct ungated_names {
	unsigned char id[256];
	size_t id_len;
	unsigned char label[256];
	size_t label_len;
};
void ungated_note_policy (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, unsigned long epoch,
                          int policy, const struct ungated_names *names);
bool ungated_lookup_policy (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, int *policy,
                            struct ungated_names *names);

void ungated_forget_object (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
/* A rename through p11-warden has completed (call after the backend has
 * answered): forget the decision about @object, and refuse to record any
 * decision read before now. */
void ungated_renamed (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
void ungated_forget_session (CK_SLOT_ID slot, CK_SESSION_HANDLE session);

#endif /* P11W_UNGATED_H */
