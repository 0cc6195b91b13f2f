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

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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

/*
 * Backend modules loaded by this process, shared by the slots that use the
 * same module.  p11_kit_module_initialize() would call C_Initialize with
 * NULL arguments, which tells a module (SoftHSM among them) that the
 * application is single-threaded and turns its locking off; p11-warden is
 * called from many threads, so it initialises the module itself with
 * CKF_OS_LOCKING_OK.  Guarded by the module's C_Initialize lock.
 */
struct loaded_module {
	CK_FUNCTION_LIST *fl;
	unsigned int refs;
	bool must_finalize;      /* we initialised it (not the application) */
	bool parent_copy;        /* its state is a copy of our parent's (fork) */
	struct loaded_module *next;
};
static struct loaded_module *loaded;
static struct loaded_module *parent_loaded;  /* what the parent had, after fork */
static atomic_bool in_fork_child;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
mark_fork_child (void)
{
	atomic_store (&in_fork_child, true);
}

static void
register_atfork (void)
{
	pthread_atfork (NULL, NULL, mark_fork_child);
}

static struct loaded_module *
find_in (struct loaded_module *list, CK_FUNCTION_LIST *fl)
{
	for (struct loaded_module *m = list; m; m = m->next) {
		if (m->fl == fl)
			return m;
	}
	return NULL;
}

static CK_RV
module_acquire (CK_FUNCTION_LIST *fl, struct loaded_module **out)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	struct loaded_module *m;
	CK_RV rv;

	if (atomic_exchange (&in_fork_child, false)) {
		/* What the parent loaded belongs to the parent: forget it (the
		 * memory is kept, not freed: it is the parent's bookkeeping). */
		if (loaded)
			parent_loaded = loaded;
		loaded = NULL;
	}
	m = find_in (loaded, fl);
	if (m) {
		m->refs++;
		*out = m;
		return CKR_OK;
	}
	m = calloc (1, sizeof *m);
	if (!m)
		return CKR_HOST_MEMORY;
	rv = fl->C_Initialize (&args);
	if (rv == CKR_OK) {
		m->must_finalize = true;
	} else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* The application (or, before a fork, our parent) initialised
		 * it; it stays theirs to finalise. */
		m->parent_copy = find_in (parent_loaded, fl) != NULL;
	} else {
		free (m);
		return rv;
	}
	m->fl = fl;
	m->refs = 1;
	m->next = loaded;
	loaded = m;
	*out = m;
	return CKR_OK;
}

static void
module_release (CK_FUNCTION_LIST *fl)
{
	struct loaded_module **p = &loaded, *m;
	while (*p && (*p)->fl != fl)
		p = &(*p)->next;
	m = *p;
	if (!m || --m->refs > 0)
		return;
	*p = m->next;
	if (m->must_finalize)
		(void)fl->C_Finalize (NULL);
	free (m);
}

#ifndef P11W_P11KIT_MODULE_CONFIGS
#define P11W_P11KIT_MODULE_CONFIGS "/usr/share/p11-kit/modules"
#endif
#ifndef P11W_P11KIT_MODULE_PATH
#define P11W_P11KIT_MODULE_PATH "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif

/* Does the p11-kit registration @path (a .module file) load @module for
 * applications that use p11-kit-proxy?  Only its `module:`, `enable-in:`
 * and `disable-in:` lines matter here. */
static bool
registration_loads (const char *path, const char *module)
{
	char line[512], target[PATH_MAX];
	bool loads = false, proxy_excluded = false;
	FILE *f = fopen (path, "re");

	if (!f)
		return false;
	for (int n = 0; n < 1000 && fgets (line, sizeof line, f); n++) {
		char *v = strchr (line, ':');
		if (!v || line[0] == '#')
			continue;
		*v++ = '\0';
		v += strspn (v, " \t");
		v[strcspn (v, " \t\r\n")] = '\0';
		if (!strcmp (line, "module")) {
			char resolved[PATH_MAX];
			if (v[0] == '/')
				snprintf (target, sizeof target, "%s", v);
			else
				snprintf (target, sizeof target, "%s/%s", P11W_P11KIT_MODULE_PATH, v);
			loads = realpath (target, resolved) && !strcmp (resolved, module);
		} else if (!strcmp (line, "disable-in") && strstr (v, "p11-kit-proxy")) {
			proxy_excluded = true;
		} else if (!strcmp (line, "enable-in") && !strstr (v, "p11-kit-proxy")) {
			proxy_excluded = true;
		}
	}
	fclose (f);
	return loads && !proxy_excluded;
}

/*
 * A PKCS#11 login is per application and token: once p11-warden has logged
 * the backend token in, any other way the application reaches the same
 * module (p11-kit-proxy loading the system registry, for one) uses the
 * token logged in, past the gate.  Warn when the system registry offers
 * the backend module to p11-kit-proxy.
 */
static void
warn_if_registered (const struct conf_slot *conf)
{
	static const char *const dirs[] = { P11W_P11KIT_MODULE_CONFIGS, "/etc/pkcs11/modules" };
	char module[PATH_MAX];

	if (!realpath (conf->module, module))
		return;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		DIR *d = opendir (dirs[i]);
		struct dirent *e;
		if (!d)
			continue;
		while ((e = readdir (d))) {
			char path[PATH_MAX];
			size_t n = strlen (e->d_name);
			if (n < 8 || strcmp (e->d_name + n - 7, ".module") != 0)
				continue;
			snprintf (path, sizeof path, "%s/%s", dirs[i], e->d_name);
			if (registration_loads (path, module))
				log_warning ("slot '%s': the backend module %s is also registered with "
				             "p11-kit (%s): applications that use p11-kit-proxy can reach "
				             "its token directly, logged in by p11-warden, past the gate; "
				             "add 'disable-in: p11-kit-proxy' there, or run p11-warden as "
				             "a custody service (p11-kit server)", conf->name, conf->module,
				             path);
		}
		closedir (d);
	}
}

static CK_RV
pkcs11_open (struct backend *b, const struct conf_slot *conf, char *err, size_t errlen)
{
	struct loaded_module *m = NULL;
	char pin[BACKEND_PIN_MAX];
	const char *msg;
	size_t len;
	CK_RV rv;

	pthread_once (&atfork_once, register_atfork);
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
	rv = module_acquire (b->fl, &m);
	if (rv != CKR_OK) {
		const char *name = log_ckr_name (rv);
		snprintf (err, errlen, "slot '%s': backend module %s failed to initialise: %s (0x%lx)",
		          conf->name, conf->module, name ? name : "?", (unsigned long)rv);
		p11_kit_module_release (b->fl);
		b->fl = NULL;
		return CKR_GENERAL_ERROR;
	}
	b->priv = m;
	warn_if_registered (conf);
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
	if (((struct loaded_module *)b->priv)->parent_copy) {
		/* A module with no fork handling of its own (SoftHSM) keeps, in
		 * this child, a copy of the parent's sessions and login.  Close
		 * them in this process, so nothing logged in is inherited. */
		(void)b->fl->C_CloseAllSessions (found);
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
		module_release (b->fl);
		p11_kit_module_release (b->fl);
	}
	b->priv = NULL;
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
