/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key stores behind p11-warden's slots.
 *
 * A backend presents one token through a PKCS#11 function list and a slot id
 * within it: the pkcs11 backend hands out the HSM module's own list; a store
 * of p11-warden's own (the TPM-sealed store) implements the same calls over
 * its keys.  The front (module.c) adds sessions, login, argument and
 * operation-state checks and the gate; a backend only performs operations.
 */
#ifndef P11W_BACKEND_H
#define P11W_BACKEND_H

#include "conf.h"
#include "pkcs11.h"

#include <stdbool.h>
#include <stddef.h>

struct backend;

struct backend_ops {
	const char *name;
	/* Load and initialise the key store.  Errors name the slot and cause. */
	CK_RV (*open) (struct backend *b, const struct conf_slot *conf, char *err, size_t errlen);
	/* Find the token (again); CKR_TOKEN_NOT_PRESENT while it is absent. */
	CK_RV (*bind_token) (struct backend *b);
	/* Log the backend session's token in with the credential p11-warden
	 * holds for it (the application never sees it). */
	CK_RV (*login) (struct backend *b, CK_SESSION_HANDLE session, CK_USER_TYPE type);
	/* Undo open. */
	void (*close) (struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	const struct conf_slot *conf;
	CK_FUNCTION_LIST *fl;          /* the token's calls */
	CK_SLOT_ID slot_id;            /* valid when bound */
	bool bound;
	void *priv;
};

extern const struct backend_ops backend_pkcs11_ops;

/* Choose the implementation for a configured slot. */
const struct backend_ops *backend_ops_for (const struct conf_slot *conf);

#endif /* P11W_BACKEND_H */
