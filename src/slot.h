/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The slots p11-warden presents: one per [slot:NAME] of the configuration,
 * in file order.  A slot holds the backend it fronts, the application's
 * login state (PKCS#11 logins are per application and token) and counts of
 * its sessions.  PINs are p11-warden's own (token-state.h); a user login on
 * the front logs the backend in with the credential p11-warden holds.
 */
#ifndef P11W_SLOT_H
#define P11W_SLOT_H

#include "backend.h"
#include "conf.h"
#include "pkcs11.h"

#include <pthread.h>
#include <stdbool.h>

#define SLOT_NOT_LOGGED_IN ((CK_USER_TYPE)-1)

struct slot {
	CK_SLOT_ID id;
	const struct conf_slot *conf;
	const struct conf *global;
	struct backend backend;
	pthread_mutex_t lock;       /* guards everything below */
	CK_USER_TYPE login;         /* CKU_USER, CKU_SO or SLOT_NOT_LOGGED_IN */
	CK_ULONG n_sessions;
	CK_ULONG n_rw_sessions;
	/* The token label, for URI matching: under its own lock, so that the
	 * gate never waits behind a login's slow PIN hashing. */
	pthread_mutex_t label_lock;
	CK_UTF8CHAR label[32];
};

/* Build the slots of @conf and open their backends.  On failure @err says
 * which slot failed and why. */
CK_RV slots_open (const struct conf *conf, char *err, size_t errlen);
/* Log out, close backends, free. */
void slots_close (void);
/* Forget the slots without touching them (child of fork). */
void slots_abandon (void);

CK_ULONG slots_count (void);
/* Bind the slot's backend token (see slot.c); with slot->lock held. */
CK_RV slot_bind (struct slot *slot);
struct slot *slot_get (CK_SLOT_ID id);

void slot_info (struct slot *slot, CK_SLOT_INFO *info);
CK_RV slot_token_info (struct slot *slot, CK_TOKEN_INFO *info);
/* The token info used to match configured URIs (label, manufacturer...). */
void slot_match_info (struct slot *slot, CK_TOKEN_INFO *info);

CK_RV slot_session_opened (struct slot *slot, CK_FLAGS flags);
void slot_session_closed (struct slot *slot, CK_FLAGS flags);
/* The state of a session of this slot with @flags (CKS_*). */
CK_STATE slot_session_state (struct slot *slot, CK_FLAGS flags);

CK_RV slot_init_token (struct slot *slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label);
CK_RV slot_init_pin (struct slot *slot, CK_FLAGS session_flags, CK_UTF8CHAR_PTR pin, CK_ULONG len);
CK_RV slot_set_pin (struct slot *slot, CK_FLAGS session_flags, CK_UTF8CHAR_PTR old_pin,
                    CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len);
CK_RV slot_login (struct slot *slot, CK_SESSION_HANDLE backend_session, CK_USER_TYPE type,
                  CK_UTF8CHAR_PTR pin, CK_ULONG len);
CK_RV slot_logout (struct slot *slot, CK_SESSION_HANDLE backend_session);
bool slot_logged_in_as (struct slot *slot, CK_USER_TYPE type);

#endif /* P11W_SLOT_H */
