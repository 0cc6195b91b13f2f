/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gate: the one place that decides whether a key may be used in a way
 * that releases plaintext or key material.  Every entry point that can do so
 * calls gate_authorize() before the backend is called; nothing else in the
 * module decides.  A denial returns P11W_CKR_DENIED and logs why.
 */
#ifndef P11W_GATE_H
#define P11W_GATE_H

#include "pkcs11.h"
#include "session.h"

/* What the caller is about to do with the key. */
enum gate_use {
	GATE_DECRYPT,          /* C_DecryptInit (and so every decrypt form) */
	GATE_UNWRAP,           /* C_UnwrapKey, the key is the unwrapping key */
	GATE_DERIVE,           /* C_DeriveKey, the key is the base key */
	GATE_WRAP,             /* C_WrapKey, the key is the one being wrapped */
	GATE_WRAPPING,         /* C_WrapKey, the key is the wrapping key */
	GATE_DIGEST_KEY,       /* C_DigestKey: a digest of the key's value */
	GATE_READ_SECRET,      /* C_GetAttributeValue of a secret attribute */
	GATE_SIGN,             /* C_SignInit */
	GATE_SIGN_RECOVER,     /* C_SignRecoverInit */
	GATE_ENCRYPT,          /* C_EncryptInit */
	GATE_VERIFY,           /* C_VerifyInit */
	GATE_VERIFY_RECOVER,   /* C_VerifyRecoverInit */
	GATE_CHANGE_IDENTITY,  /* C_SetAttributeValue of CKA_LABEL/ID/CLASS */
	GATE_COPY,             /* C_CopyObject */
};

/*
 * May @key be used for @use with @mechanism in session @s?  CKR_OK, or
 * P11W_CKR_DENIED, or @invalid_rv when @key is not a valid handle (each
 * caller passes the code the specification gives for its function), or
 * another error when the key's attributes cannot be read (fail closed).
 * @ungated (may be NULL) is set when the key was allowed because it is
 * ungated, which is what keys made from it inherit (gate_note_child).
 * Called with the session held.
 */
CK_RV gate_authorize (struct session *s, CK_OBJECT_HANDLE key, enum gate_use use,
                      CK_MECHANISM_TYPE mechanism, CK_RV invalid_rv, bool *ungated);

/*
 * May @object be renamed (C_SetAttributeValue, GATE_CHANGE_IDENTITY) or
 * copied (C_CopyObject, GATE_COPY) with @templ?  Refused when the object is
 * gated now and the label, id or class in @templ would make it (or its
 * copy) ungated by the configuration.  Other changes pass.
 */
CK_RV gate_authorize_rename (struct session *s, CK_OBJECT_HANDLE object, enum gate_use use,
                             CK_ATTRIBUTE_PTR templ, CK_ULONG count);

/*
 * Keys made from other keys.  A key created by an allowed C_UnwrapKey or
 * C_DeriveKey (or a C_CopyObject) from an ungated key is released like its
 * parent: gating it would protect nothing, since its material was
 * available through the parent.  The module calls gate_note_child() after
 * such a call succeeds (@is_token: 1 or 0 from the template, -1 to ask the
 * backend); the record lives until the key is destroyed
 * through p11-warden, its session closes (session objects), or the module
 * is finalised.  Backends must not reuse object handles within a process
 * while the object exists (SoftHSM never reuses them).
 */
void gate_note_child (struct session *s, CK_OBJECT_HANDLE child, int is_token);
/* Is @key released without evidence (by configuration, or as a child)? */
bool gate_key_is_ungated (struct session *s, CK_OBJECT_HANDLE key);
void gate_forget_object (struct slot *slot, CK_OBJECT_HANDLE object);
/* After the backend has answered a C_SetAttributeValue that names
 * @object anew: what was remembered about its old name is dropped. */
void gate_renamed (struct session *s, CK_OBJECT_HANDLE object);
void gate_forget_session (struct slot *slot, CK_SESSION_HANDLE session);
/* Drop every record (C_Initialize, C_Finalize); after fork, forget them. */
void gate_reset (bool after_fork);
/* Settings from the configuration (gate-cache-ms), at C_Initialize. */
void gate_configure (const struct conf *conf);

/*
 * May a search use this template?  In a gated slot, a template holding a
 * secret attribute (CKA_VALUE...) is refused unless its CKA_CLASS is a
 * public one (certificates are found by their DER value): matching keys
 * against guesses of their value would be an oracle.
 */
CK_RV gate_authorize_find (struct session *s, CK_ATTRIBUTE_PTR templ, CK_ULONG count);

/* True for attribute types that hold secret key material. */
bool gate_is_secret_attribute (CK_ATTRIBUTE_TYPE type);

const char *gate_use_name (enum gate_use use);

#endif /* P11W_GATE_H */
