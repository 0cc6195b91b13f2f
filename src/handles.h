/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object handles each slot has handed out.  Object handles are the
 * backend's, and a backend module may accept in a session of one token the
 * handle of an object on another (SoftHSM does): through p11-warden that
 * would let a key cross from a gated slot into another slot, or reach a
 * token p11-warden does not front.  So a handle is accepted in a slot only
 * if that slot returned it (C_FindObjects, C_CreateObject, C_CopyObject,
 * C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey); it is
 * forgotten when destroyed through p11-warden, and all are at C_Finalize.
 */
#ifndef P11W_HANDLES_H
#define P11W_HANDLES_H

#include "pkcs11.h"

#include <stdbool.h>

bool handles_known (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
/* False when the set is full (the handle then stays unusable: fail closed).
 * @owner: the session of a session object p11-warden made, so that its
 * handle goes with the session; 0 when unknown or a token object. */
bool handles_add (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_SESSION_HANDLE owner);
/* The session closed: its session objects are gone. */
void handles_forget_session (CK_SLOT_ID slot, CK_SESSION_HANDLE session);
void handles_remove (CK_SLOT_ID slot, CK_OBJECT_HANDLE object);
/* The object's class and key type, remembered once read (neither can
 * change after creation); false if not known yet. */
bool handles_type (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_OBJECT_CLASS *klass,
                   CK_KEY_TYPE *key_type);
void handles_set_type (CK_SLOT_ID slot, CK_OBJECT_HANDLE object, CK_OBJECT_CLASS klass,
                       CK_KEY_TYPE key_type);
/* Forget everything; @after_fork: do not touch the parent's lock. */
void handles_reset (bool after_fork);

#endif /* P11W_HANDLES_H */
