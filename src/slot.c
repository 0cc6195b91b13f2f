/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "util.h"
#include "slot.h"
#include "audit.h"
#include "log.h"
#include "token-state.h"

#include <openssl/crypto.h>

#include <p11-warden/p11-warden.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct slot *slots;
static CK_ULONG n_slots;
/* Serialises binding, so that two slots never bind the same token. */
static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Bind @slot's backend token, unless another slot fronts it already: a
 * PKCS#11 login is per application and token, so two slots over one token
 * would share the backend login (a login to one would log the other in,
 * with its own gating).  Called with @slot->lock held, or during
 * C_Initialize.
 */
CK_RV
slot_bind (struct slot *slot)
{
	CK_RV rv;

	if (slot->backend.bound)
		return CKR_OK;
	pthread_mutex_lock (&bind_lock);
	rv = slot->backend.ops->bind_token (&slot->backend);
	if (rv == CKR_OK) {
		for (CK_ULONG i = 0; i < n_slots; i++) {
			struct slot *o = &slots[i];
			if (o == slot || !o->backend.bound || o->backend.fl != slot->backend.fl ||
			    o->backend.slot_id != slot->backend.slot_id)
				continue;
			log_error ("slot '%s': its backend token is already fronted by slot '%s'; two "
			           "slots over one token would share its login: the slot shows no token",
			           slot->conf->name, o->conf->name);
			slot->backend.bound = false;
			rv = CKR_TOKEN_NOT_PRESENT;
			break;
		}
	}
	pthread_mutex_unlock (&bind_lock);
	return rv;
}

CK_RV
slots_open (const struct conf *conf, char *err, size_t errlen)
{
	CK_RV rv;

	slots = calloc (conf->n_slots ? conf->n_slots : 1, sizeof *slots);
	if (!slots)
		return CKR_HOST_MEMORY;
	n_slots = 0;
	for (size_t i = 0; i < conf->n_slots; i++) {
		struct slot *s = &slots[i];
		struct token_state st;
		char msg[768];

		s->id = (CK_SLOT_ID)i;
		s->conf = &conf->slots[i];
		s->global = conf;
		s->login = SLOT_NOT_LOGGED_IN;
		pthread_mutex_init (&s->lock, NULL);
		pthread_mutex_init (&s->label_lock, NULL);
		s->backend.ops = backend_ops_for (s->conf);
		n_slots++;
		if (!s->backend.ops) {
			snprintf (err, errlen, "slot '%s': no backend", s->conf->name);
			return CKR_GENERAL_ERROR;
		}
		rv = s->backend.ops->open (&s->backend, s->conf, msg, sizeof msg);
		if (rv != CKR_OK) {
			/* Name the configuration line that asked for it. */
			snprintf (err, errlen, "%s:%d: %s", conf->path, s->conf->line, msg);
			return rv;
		}
		/* A token that is absent now is looked for again later. */
		(void)slot_bind (s);
		if (token_state_read (conf->state_dir, s->conf->name, &st) == CKR_OK && st.initialized)
			memcpy (s->label, st.label, sizeof s->label);
		else
			util_pad (s->label, sizeof s->label, s->conf->name);
	}
	return CKR_OK;
}

void
slots_close (void)
{
	for (CK_ULONG i = 0; i < n_slots; i++) {
		if (slots[i].backend.ops)
			slots[i].backend.ops->close (&slots[i].backend);
		pthread_mutex_destroy (&slots[i].lock);
		pthread_mutex_destroy (&slots[i].label_lock);
	}
	free (slots);
	slots = NULL;
	n_slots = 0;
}

void
slots_abandon (void)
{
	/* The parent's locks may be held by threads that do not exist here, and
	 * the backend's state is the parent's: leak it rather than touch it. */
	slots = NULL;
	n_slots = 0;
	pthread_mutex_init (&bind_lock, NULL);
}

CK_ULONG
slots_count (void)
{
	return n_slots;
}

struct slot *
slot_get (CK_SLOT_ID id)
{
	return id < n_slots ? &slots[id] : NULL;
}

void
slot_info (struct slot *slot, CK_SLOT_INFO *info)
{
	char desc[64];

	memset (info, 0, sizeof *info);
	snprintf (desc, sizeof desc, "p11-warden slot %s", slot->conf->name);
	util_pad (info->slotDescription, sizeof info->slotDescription, desc);
	util_pad (info->manufacturerID, sizeof info->manufacturerID, P11W_MANUFACTURER);
	pthread_mutex_lock (&slot->lock);
	if (slot_bind (slot) == CKR_OK)
		info->flags |= CKF_TOKEN_PRESENT;
	pthread_mutex_unlock (&slot->lock);
	info->flags |= CKF_HW_SLOT;
	info->hardwareVersion.major = P11W_VERSION_MAJOR;
	info->hardwareVersion.minor = P11W_VERSION_MINOR;
	info->firmwareVersion.major = P11W_VERSION_MAJOR;
	info->firmwareVersion.minor = P11W_VERSION_MINOR;
}

static void
pin_flags (unsigned int failures, unsigned int max, CK_FLAGS low, CK_FLAGS final, CK_FLAGS locked,
           CK_FLAGS *flags)
{
	if (failures == 0 || max == 0)
		return;
	if (failures >= max)
		*flags |= locked;
	else if (failures + 1 == max)
		*flags |= final;
	else
		*flags |= low;
}

void
slot_match_info (struct slot *slot, CK_TOKEN_INFO *info)
{
	memset (info, 0, sizeof *info);
	pthread_mutex_lock (&slot->label_lock);
	memcpy (info->label, slot->label, sizeof info->label);
	pthread_mutex_unlock (&slot->label_lock);
	util_pad (info->manufacturerID, sizeof info->manufacturerID, P11W_MANUFACTURER);
	util_pad (info->model, sizeof info->model, slot->backend.ops->name);
	util_pad (info->serialNumber, sizeof info->serialNumber, slot->conf->name);
}

CK_RV
slot_token_info (struct slot *slot, CK_TOKEN_INFO *info)
{
	const struct conf *g = slot->global;
	struct token_state st;
	CK_TOKEN_INFO bti;
	CK_RV rv;

	pthread_mutex_lock (&slot->lock);
	rv = slot_bind (slot);
	pthread_mutex_unlock (&slot->lock);
	if (rv != CKR_OK)
		return CKR_TOKEN_NOT_PRESENT;
	pthread_mutex_lock (&slot->lock);
	rv = token_state_read (g->state_dir, slot->conf->name, &st);
	pthread_mutex_unlock (&slot->lock);
	if (rv != CKR_OK)
		return rv;

	slot_match_info (slot, info);
	if (st.initialized) {
		memcpy (info->label, st.label, sizeof info->label);
		pthread_mutex_lock (&slot->label_lock);
		memcpy (slot->label, st.label, sizeof slot->label);
		pthread_mutex_unlock (&slot->label_lock);
	}
	info->flags = CKF_LOGIN_REQUIRED;
	if (st.initialized)
		info->flags |= CKF_TOKEN_INITIALIZED;
	if (st.user_pin[0])
		info->flags |= CKF_USER_PIN_INITIALIZED;
	pin_flags (st.user_failures, g->pin_max_failures, CKF_USER_PIN_COUNT_LOW,
	           CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, &info->flags);
	pin_flags (st.so_failures, g->pin_max_failures, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY,
	           CKF_SO_PIN_LOCKED, &info->flags);
	if (slot->backend.fl->C_GetTokenInfo (slot->backend.slot_id, &bti) == CKR_OK) {
		info->flags |= bti.flags & (CKF_RNG | CKF_WRITE_PROTECTED);
		info->hardwareVersion = bti.hardwareVersion;
	}
	OPENSSL_cleanse (&st, sizeof st);

	pthread_mutex_lock (&slot->lock);
	info->ulSessionCount = slot->n_sessions;
	info->ulRwSessionCount = slot->n_rw_sessions;
	pthread_mutex_unlock (&slot->lock);
	info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	info->ulMaxPinLen = PIN_MAX_LEN;
	info->ulMinPinLen = PIN_MIN_LEN;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->firmwareVersion.major = P11W_VERSION_MAJOR;
	info->firmwareVersion.minor = P11W_VERSION_MINOR;
	memset (info->utcTime, ' ', sizeof info->utcTime);
	return CKR_OK;
}

CK_RV
slot_session_opened (struct slot *slot, CK_FLAGS flags)
{
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&slot->lock);
	/* PKCS#11 3.0, 5.6 (C_OpenSession): no read-only session while the SO is
	 * logged in. */
	if (!(flags & CKF_RW_SESSION) && slot->login == CKU_SO) {
		rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
	} else {
		slot->n_sessions++;
		if (flags & CKF_RW_SESSION)
			slot->n_rw_sessions++;
	}
	pthread_mutex_unlock (&slot->lock);
	return rv;
}

void
slot_session_closed (struct slot *slot, CK_FLAGS flags)
{
	pthread_mutex_lock (&slot->lock);
	if (slot->n_sessions > 0)
		slot->n_sessions--;
	if ((flags & CKF_RW_SESSION) && slot->n_rw_sessions > 0)
		slot->n_rw_sessions--;
	/* Closing the last session logs the application out (the backend does
	 * the same, its sessions mirroring ours). */
	bool logged_out = slot->n_sessions == 0 && slot->login != SLOT_NOT_LOGGED_IN;
	if (slot->n_sessions == 0)
		slot->login = SLOT_NOT_LOGGED_IN;
	pthread_mutex_unlock (&slot->lock);
	if (logged_out)
		audit_event ("logout", slot->conf->name, NULL, "pass", "the last session closed");
}

CK_STATE
slot_session_state (struct slot *slot, CK_FLAGS flags)
{
	CK_USER_TYPE login;
	pthread_mutex_lock (&slot->lock);
	login = slot->login;
	pthread_mutex_unlock (&slot->lock);
	if (login == CKU_SO)
		return CKS_RW_SO_FUNCTIONS;
	if (login == CKU_USER)
		return (flags & CKF_RW_SESSION) ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	return (flags & CKF_RW_SESSION) ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

bool
slot_logged_in_as (struct slot *slot, CK_USER_TYPE type)
{
	bool r;
	pthread_mutex_lock (&slot->lock);
	r = slot->login == type;
	pthread_mutex_unlock (&slot->lock);
	return r;
}

static CK_RV
check_pin_arg (CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	/* No protected authentication path: a PIN must be given. */
	if (!pin)
		return CKR_ARGUMENTS_BAD;
	if (len < PIN_MIN_LEN || len > PIN_MAX_LEN)
		return CKR_PIN_LEN_RANGE;
	return CKR_OK;
}

/*
 * Check @pin against @hash with the lockout counter @failures (a field of
 * @st); the caller holds the state file lock @f.
 */
static CK_RV
check_pin_counted (const struct conf *g, struct token_state_file *f, struct token_state *st,
                   const char *hash, unsigned int *failures, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	if (g->pin_max_failures && *failures >= g->pin_max_failures)
		return CKR_PIN_LOCKED;
	/* The attempt is counted, durably, before it is made: if the count
	 * cannot be written, no attempt is made at all (otherwise whoever can
	 * make the write fail would get unlimited guesses). */
	(*failures)++;
	if (token_state_store (f, st) != CKR_OK) {
		(*failures)--;
		return CKR_DEVICE_ERROR;
	}
	if (!pin_verify (pin, len, hash))
		return CKR_PIN_INCORRECT;
	*failures = 0;
	return token_state_store (f, st) == CKR_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

CK_RV
slot_init_token (struct slot *slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
{
	const struct conf *g = slot->global;
	struct token_state_file f;
	struct token_state st;
	CK_RV rv;

	if (!label)
		return CKR_ARGUMENTS_BAD;
	rv = check_pin_arg (pin, len);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock (&slot->lock);
	if (slot->n_sessions > 0) {
		rv = CKR_SESSION_EXISTS;
		goto out_unlocked;
	}
	rv = token_state_open (g->state_dir, slot->conf->name, true, &f, &st);
	if (rv != CKR_OK)
		goto out_unlocked;
	if (st.initialized) {
		/* Re-initialisation needs the current SO PIN. */
		rv = check_pin_counted (g, &f, &st, st.so_pin, &st.so_failures, pin, len);
		if (rv != CKR_OK)
			goto out;
	} else {
		rv = pin_hash (pin, len, g->pin_kdf_iterations, st.so_pin);
		if (rv != CKR_OK)
			goto out;
	}
	/* Re-initialising clears the user PIN (PKCS#11 3.0, 5.6 C_InitToken).
	 * The backend's objects belong to the HSM and stay where they are. */
	memcpy (st.label, label, sizeof st.label);
	st.user_pin[0] = '\0';
	st.user_failures = 0;
	st.so_failures = 0;
	rv = token_state_store (&f, &st);
	if (rv == CKR_OK) {
		pthread_mutex_lock (&slot->label_lock);
		memcpy (slot->label, st.label, sizeof slot->label);
		pthread_mutex_unlock (&slot->label_lock);
		log_info ("slot '%s': token initialised", slot->conf->name);
	}
out:
	token_state_close (&f);
out_unlocked:
	pthread_mutex_unlock (&slot->lock);
	OPENSSL_cleanse (&st, sizeof st);
	return rv;
}

CK_RV
slot_init_pin (struct slot *slot, CK_FLAGS session_flags, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	const struct conf *g = slot->global;
	struct token_state_file f;
	struct token_state st;
	CK_RV rv;

	pthread_mutex_lock (&slot->lock);
	if (slot->login != CKU_SO) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out_unlocked;
	}
	if (!(session_flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out_unlocked;
	}
	rv = check_pin_arg (pin, len);
	if (rv != CKR_OK)
		goto out_unlocked;
	rv = token_state_open (g->state_dir, slot->conf->name, true, &f, &st);
	if (rv != CKR_OK)
		goto out_unlocked;
	rv = pin_hash (pin, len, g->pin_kdf_iterations, st.user_pin);
	if (rv == CKR_OK) {
		st.user_failures = 0;
		rv = token_state_store (&f, &st);
	}
	token_state_close (&f);
	if (rv == CKR_OK)
		log_info ("slot '%s': user PIN set by the SO", slot->conf->name);
out_unlocked:
	pthread_mutex_unlock (&slot->lock);
	OPENSSL_cleanse (&st, sizeof st);
	return rv;
}

CK_RV
slot_set_pin (struct slot *slot, CK_FLAGS session_flags, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
              CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
	const struct conf *g = slot->global;
	struct token_state_file f;
	struct token_state st;
	bool so;
	char *hash;
	unsigned int *failures;
	CK_RV rv;

	if (!old_pin || !new_pin)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock (&slot->lock);
	/* 3.0, 5.6 C_SetPIN: only from R/W public, R/W user or R/W SO state. */
	if (!(session_flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out_unlocked;
	}
	rv = check_pin_arg (new_pin, new_len);
	if (rv != CKR_OK)
		goto out_unlocked;
	if (old_len > PIN_MAX_LEN) {
		rv = CKR_PIN_LEN_RANGE;
		goto out_unlocked;
	}
	so = slot->login == CKU_SO;
	rv = token_state_open (g->state_dir, slot->conf->name, true, &f, &st);
	if (rv != CKR_OK)
		goto out_unlocked;
	hash = so ? st.so_pin : st.user_pin;
	failures = so ? &st.so_failures : &st.user_failures;
	if (!st.initialized || !hash[0]) {
		rv = CKR_USER_PIN_NOT_INITIALIZED;
		goto out;
	}
	rv = check_pin_counted (g, &f, &st, hash, failures, old_pin, old_len);
	if (rv == CKR_OK)
		rv = pin_hash (new_pin, new_len, g->pin_kdf_iterations, hash);
	if (rv == CKR_OK)
		rv = token_state_store (&f, &st);
	if (rv == CKR_OK)
		log_info ("slot '%s': %s PIN changed", slot->conf->name, so ? "SO" : "user");
out:
	token_state_close (&f);
out_unlocked:
	pthread_mutex_unlock (&slot->lock);
	OPENSSL_cleanse (&st, sizeof st);
	return rv;
}

CK_RV
slot_login (struct slot *slot, CK_SESSION_HANDLE backend_session, CK_USER_TYPE type,
            CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	const struct conf *g = slot->global;
	struct token_state_file f;
	struct token_state st;
	unsigned int *failures;
	const char *hash;
	CK_RV rv;

	if (type != CKU_USER && type != CKU_SO && type != CKU_CONTEXT_SPECIFIC)
		return CKR_USER_TYPE_INVALID;
	if (!pin)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock (&slot->lock);
	if (type == CKU_CONTEXT_SPECIFIC) {
		if (slot->login != CKU_USER) {
			rv = CKR_USER_NOT_LOGGED_IN;
			goto out_unlocked;
		}
	} else if (slot->login == type) {
		rv = CKR_USER_ALREADY_LOGGED_IN;
		goto out_unlocked;
	} else if (slot->login != SLOT_NOT_LOGGED_IN) {
		rv = CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
		goto out_unlocked;
	} else if (type == CKU_SO && slot->n_sessions > slot->n_rw_sessions) {
		rv = CKR_SESSION_READ_ONLY_EXISTS;
		goto out_unlocked;
	}
	if (len > PIN_MAX_LEN) {
		rv = CKR_PIN_LEN_RANGE;
		goto out_unlocked;
	}
	rv = token_state_open (g->state_dir, slot->conf->name, false, &f, &st);
	if (rv != CKR_OK)
		goto out_unlocked;
	hash = type == CKU_SO ? st.so_pin : st.user_pin;
	failures = type == CKU_SO ? &st.so_failures : &st.user_failures;
	if (!st.initialized || !hash[0]) {
		rv = CKR_USER_PIN_NOT_INITIALIZED;
		goto out;
	}
	rv = check_pin_counted (g, &f, &st, hash, failures, pin, len);
	if (rv == CKR_PIN_INCORRECT)
		log_warning ("slot '%s': wrong %s PIN (%u consecutive failure%s)", slot->conf->name,
		             type == CKU_SO ? "SO" : "user", *failures, *failures == 1 ? "" : "s");
	else if (rv == CKR_PIN_LOCKED)
		log_warning ("slot '%s': %s PIN locked after %u failures", slot->conf->name,
		             type == CKU_SO ? "SO" : "user", *failures);
	if (rv != CKR_OK)
		goto out;
	/* The SO administers p11-warden's token only; the backend stays public. */
	if (type != CKU_SO) {
		rv = slot->backend.ops->login (&slot->backend, backend_session, type);
		if (rv != CKR_OK)
			goto out;
	}
	if (type != CKU_CONTEXT_SPECIFIC)
		slot->login = type;
out:
	token_state_close (&f);
out_unlocked:
	pthread_mutex_unlock (&slot->lock);
	OPENSSL_cleanse (&st, sizeof st);
	return rv;
}

CK_RV
slot_logout (struct slot *slot, CK_SESSION_HANDLE backend_session)
{
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&slot->lock);
	if (slot->login == SLOT_NOT_LOGGED_IN) {
		rv = CKR_USER_NOT_LOGGED_IN;
	} else {
		if (slot->login == CKU_USER) {
			CK_RV brv = slot->backend.fl->C_Logout (backend_session);
			if (brv != CKR_OK && brv != CKR_USER_NOT_LOGGED_IN) {
				/* The backend is still logged in: saying otherwise would
				 * let public sessions see private objects. */
				log_warning ("slot '%s': backend logout failed: 0x%lx; still logged in",
				             slot->conf->name, (unsigned long)brv);
				rv = brv;
			}
		}
		if (rv == CKR_OK)
			slot->login = SLOT_NOT_LOGGED_IN;
	}
	pthread_mutex_unlock (&slot->lock);
	return rv;
}
