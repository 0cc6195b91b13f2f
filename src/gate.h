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
 * Called with the session held.
 */
CK_RV gate_authorize (struct session *s, CK_OBJECT_HANDLE key, enum gate_use use,
                      CK_MECHANISM_TYPE mechanism, CK_RV invalid_rv);

/* True for attribute types that hold secret key material. */
bool gate_is_secret_attribute (CK_ATTRIBUTE_TYPE type);

const char *gate_use_name (enum gate_use use);

#endif /* P11W_GATE_H */
