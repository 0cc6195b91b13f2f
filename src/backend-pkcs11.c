/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pkcs11 backend: one token of an HSM's own PKCS#11 module.
 *
 * The module is loaded and initialised through p11-kit (unmanaged, so the
 * calls reach the HSM module unchanged; p11-kit initialises it with
 * CKF_OS_LOCKING_OK, counts references when several slots share it, and
 * copes with a module the application had already initialised).  The token
 * is chosen by an RFC 7512 URI, matched with p11-kit's URI functions.
 */
#include "config.h"

#include "backend.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKEND_PIN_MAX 256
#define MAX_BACKEND_SLOTS 256

/* Checked again at every login; checked here so a misconfiguration shows at
 * C_Initialize, not at the first C_Login. */
static CK_RV read_pin_file (const char *path, char *pin, size_t max, size_t *len);

static CK_RV
pkcs11_open (struct backend *b, const struct conf_slot *conf, char *err, size_t errlen)
{
	const char *msg;
	CK_RV rv;

	char pin[BACKEND_PIN_MAX];
	size_t len;

	b->conf = conf;
	b->bound = false;
	rv = read_pin_file (conf->pin_file, pin, sizeof pin, &len);
	OPENSSL_cleanse (pin, sizeof pin);
	if (rv != CKR_OK) {
		snprintf (err, errlen, "slot '%s': backend PIN file %s is missing, unreadable or readable "
		          "by others (see the log)", conf->name, conf->pin_file);
		return CKR_GENERAL_ERROR;
	}
	b->fl = p11_kit_module_load (conf->module, P11_KIT_MODULE_UNMANAGED | P11_KIT_MODULE_CRITICAL);
	if (!b->fl) {
		msg = p11_kit_message ();
		snprintf (err, errlen, "slot '%s': cannot load backend module %s: %s", conf->name,
		          conf->module, msg ? msg : "unknown error");
		return CKR_GENERAL_ERROR;
	}
	rv = p11_kit_module_initialize (b->fl);
	if (rv != CKR_OK) {
		const char *name = log_ckr_name (rv);
		snprintf (err, errlen, "slot '%s': backend module %s failed to initialise: %s (0x%lx)",
		          conf->name, conf->module, name ? name : "?", (unsigned long)rv);
		p11_kit_module_release (b->fl);
		b->fl = NULL;
		return rv == CKR_GENERAL_ERROR ? rv : CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

static CK_RV
pkcs11_bind_token (struct backend *b)
{
	CK_SLOT_ID slots[MAX_BACKEND_SLOTS];
	CK_ULONG n = MAX_BACKEND_SLOTS, i;
	CK_TOKEN_INFO ti;
	CK_SLOT_ID found = 0;
	int matches = 0;
	CK_RV rv;

	if (b->bound)
		return CKR_OK;
	if (!b->fl)
		return CKR_TOKEN_NOT_PRESENT;
	rv = b->fl->C_GetSlotList (CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		log_warning ("slot '%s': backend C_GetSlotList: %s", b->conf->name,
		             log_ckr_name (rv) ? log_ckr_name (rv) : "error");
		return CKR_TOKEN_NOT_PRESENT;
	}
	for (i = 0; i < n; i++) {
		if (b->fl->C_GetTokenInfo (slots[i], &ti) != CKR_OK)
			continue;
		if (p11_kit_uri_match_token_info (b->conf->token.uri, &ti) == 1) {
			if (matches++ == 0)
				found = slots[i];
		}
	}
	if (matches == 0) {
		log_warning ("slot '%s': no backend token matches %s (in %s): the slot shows no token",
		             b->conf->name, b->conf->token.text, b->conf->module);
		return CKR_TOKEN_NOT_PRESENT;
	}
	if (matches > 1) {
		/* Refuse to guess: a second token with the same label could be an
		 * attacker's. */
		log_error ("slot '%s': %d backend tokens match %s; make the URI specific (serial=...)",
		           b->conf->name, matches, b->conf->token.text);
		return CKR_TOKEN_NOT_PRESENT;
	}
	b->slot_id = found;
	b->bound = true;
	log_info ("slot '%s': bound to backend token %s", b->conf->name, b->conf->token.text);
	return CKR_OK;
}

/*
 * Read the backend PIN.  The file must be a regular file that others cannot
 * read or write; the PIN ends at the first newline.  The buffer is locked in
 * memory and cleansed by the caller.
 */
static CK_RV
read_pin_file (const char *path, char *pin, size_t max, size_t *len)
{
	struct stat st;
	ssize_t r;
	CK_RV rv = CKR_DEVICE_ERROR;
	int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	*len = 0;
	if (fd < 0) {
		log_error ("backend PIN file %s: %s", path, strerror (errno));
		return CKR_DEVICE_ERROR;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		log_error ("backend PIN file %s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) {
		log_error ("backend PIN file %s: mode %03o lets others read or change it; refusing "
		           "(chmod 600 or 640)", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	r = read (fd, pin, max);
	if (r < 0 || (size_t)r >= max) {
		log_error ("backend PIN file %s: unreadable or longer than %zu bytes", path, max - 1);
		goto out;
	}
	*len = (size_t)r;
	for (size_t i = 0; i < *len; i++) {
		if (pin[i] == '\n' || pin[i] == '\r') {
			*len = i;
			break;
		}
	}
	if (*len == 0) {
		log_error ("backend PIN file %s: empty", path);
		goto out;
	}
	rv = CKR_OK;
out:
	close (fd);
	return rv;
}

static CK_RV
pkcs11_login (struct backend *b, CK_SESSION_HANDLE session, CK_USER_TYPE type)
{
	char pin[BACKEND_PIN_MAX] = { 0 };
	size_t len = 0;
	bool locked = mlock (pin, sizeof pin) == 0;
	CK_RV rv;

	rv = read_pin_file (b->conf->pin_file, pin, sizeof pin, &len);
	if (rv == CKR_OK) {
		rv = b->fl->C_Login (session, type, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)len);
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
	}
	OPENSSL_cleanse (pin, sizeof pin);
	if (locked)
		munlock (pin, sizeof pin);
	if (rv != CKR_OK) {
		const char *name = log_ckr_name (rv);
		log_error ("slot '%s': backend login failed: %s (0x%lx)", b->conf->name,
		           name ? name : "?", (unsigned long)rv);
		/* The application's PIN was right; the backend credential is not. */
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_LEN_RANGE)
			rv = CKR_DEVICE_ERROR;
	}
	return rv;
}

static void
pkcs11_close (struct backend *b)
{
	if (b->fl) {
		p11_kit_module_finalize (b->fl);
		p11_kit_module_release (b->fl);
	}
	b->fl = NULL;
	b->bound = false;
}

const struct backend_ops backend_pkcs11_ops = {
	.name = "pkcs11",
	.open = pkcs11_open,
	.bind_token = pkcs11_bind_token,
	.login = pkcs11_login,
	.close = pkcs11_close,
};

const struct backend_ops *
backend_ops_for (const struct conf_slot *conf)
{
	switch (conf->backend) {
	case CONF_BACKEND_PKCS11:
		return &backend_pkcs11_ops;
	}
	return NULL;
}
