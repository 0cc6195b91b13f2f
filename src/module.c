/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11-warden.so: the PKCS#11 entry points.
 *
 * Every function of the 3.0 table is here, filled explicitly; nothing is
 * forwarded to a backend without passing through this file's checks, and
 * every path that could release plaintext or key material calls the gate
 * (gate.c) first.  Calls that are not supported say so.
 */
#include "config.h"

#include "util.h"
#include "conf.h"
#include "attest.h"
#include "audit.h"
#include "gate.h"
#include "handles.h"
#include "log.h"
#include "pkcs11.h"
#include "session.h"
#include "slot.h"

#include <p11-warden/p11-warden.h>

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef P11W_SYSCONF_FILE
#define P11W_SYSCONF_FILE "/etc/p11-warden/p11-warden.conf"
#endif

#ifndef CKF_FIND_OBJECTS
#define CKF_FIND_OBJECTS 0x00000040UL /* 3.0, C_SessionCancel */
#endif

#define EXPORT __attribute__ ((visibility ("default")))

/* ------------------------------------------------------------ module state */

static struct {
	pthread_mutex_t lock;          /* C_Initialize / C_Finalize */
	atomic_bool initialized;
	unsigned int generation;       /* fork generation at C_Initialize */
	struct conf conf;
} gl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Bumped in the child of every fork: state from before is not this
 * process's to use (p11-kit's and pkcs11-provider's approach). */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * In the child only: a new generation, and a fresh C_Initialize lock (the
 * parent's may have been held by a thread that does not exist here).  No
 * prepare handler takes the lock: a backend that forks inside its own
 * C_Initialize, which runs under that lock, would deadlock on it.
 */
static void
atfork_child (void)
{
	atomic_fetch_add (&fork_generation, 1);
	pthread_mutex_init (&gl.lock, NULL);
}

static void
register_atfork (void)
{
	pthread_atfork (NULL, NULL, atfork_child);
}

static inline bool
module_ready (void)
{
	return atomic_load_explicit (&gl.initialized, memory_order_acquire) &&
	       gl.generation == atomic_load_explicit (&fork_generation, memory_order_relaxed);
}

/*
 * At process exit, write the audit records still buffered and stop the
 * ledger's flusher: many applications exit without C_Finalize.  An atexit
 * handler registered after the ledger (and so OpenSSL) is initialised runs
 * before OpenSSL's own cleanup, which a destructor would not (the flush
 * signs a checkpoint).  Only in the process that initialised the module:
 * a forked child holds a copy of its parent's buffer, the parent's to
 * write.  The module is never unloaded (-z nodelete), so the handler stays.
 */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void
module_exit (void)
{
	if (module_ready () && audit_enabled ())
		audit_shutdown ();
}

static void
register_exit (void)
{
	atexit (module_exit);
}

#define CHECK_READY() \
	do { \
		if (!module_ready ()) \
			return CKR_CRYPTOKI_NOT_INITIALIZED; \
	} while (0)

/* Look the session up and hold it for the rest of the call. */
#define BEGIN_SESSION(handle) \
	struct session *s = NULL; \
	CK_RV rv; \
	CHECK_READY (); \
	rv = session_acquire ((handle), &s); \
	if (rv != CKR_OK) \
		return rv

#define BACKEND(s) ((s)->slot->backend.fl)

/* Was @h handed out by this session's slot (handles.h)? */
#define KNOWN(s, h) handles_known ((s)->slot->id, (h))

/* ------------------------------------------------------------ general */

static CK_RV
check_init_args (CK_C_INITIALIZE_ARGS *args)
{
	int fns;
	if (!args)
		return CKR_OK;
	if (args->pReserved)
		return CKR_ARGUMENTS_BAD;
	fns = !!args->CreateMutex + !!args->DestroyMutex + !!args->LockMutex + !!args->UnlockMutex;
	if (fns != 0 && fns != 4)
		return CKR_ARGUMENTS_BAD;
	/* 3.0, 5.4: with callbacks but without CKF_OS_LOCKING_OK the library
	 * must use the application's callbacks; the backends below us cannot,
	 * so say so. */
	if (fns == 4 && !(args->flags & CKF_OS_LOCKING_OK))
		return CKR_CANT_LOCK;
	return CKR_OK;
}

static CK_RV
sys_C_Initialize (CK_VOID_PTR init_args)
{
	char err[1024];
	const char *path;
	bool explicit_path, missing = false;
	CK_RV rv;

	rv = check_init_args (init_args);
	if (rv != CKR_OK)
		return rv;
	pthread_once (&atfork_once, register_atfork);

	pthread_mutex_lock (&gl.lock);
	if (atomic_load (&gl.initialized) && gl.generation != atomic_load (&fork_generation)) {
		/* A child initialising again: forget the parent's state. */
		sessions_abandon ();
		gate_reset (true);
		attest_abandon ();
		audit_abandon ();
		handles_reset (true);
		slots_abandon ();
		memset (&gl.conf, 0, sizeof gl.conf);
		atomic_store (&gl.initialized, false);
	}
	if (atomic_load (&gl.initialized)) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}

	/* Read once, here; secure_getenv ignores the variable in setuid
	 * programs. */
	path = secure_getenv ("P11_WARDEN_CONF");
	explicit_path = path && *path;
	if (!explicit_path)
		path = P11W_SYSCONF_FILE;
	if (!conf_load (path, !explicit_path, &gl.conf, &missing, err, sizeof err)) {
		log_error ("C_Initialize failed: %s", err);
		conf_free (&gl.conf);
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	log_configure (gl.conf.log_sink, gl.conf.log_level);
	gate_configure (&gl.conf);
	if (missing)
		log_info ("no configuration file at %s (and P11_WARDEN_CONF is not set): "
		          "presenting no slots", path);

	rv = sessions_init ();
	if (rv != CKR_OK)
		goto fail_conf;
	/* The ledger first, so that what loads after it is recorded. */
	rv = audit_open (&gl.conf, err, sizeof err);
	if (rv != CKR_OK) {
		log_error ("C_Initialize failed: %s", err);
		sessions_close_all ();
		goto fail_conf;
	}
	audit_event ("initialize", NULL, NULL, NULL, gl.conf.path);
	if (audit_enabled ())
		pthread_once (&exit_once, register_exit);
	rv = attest_open (&gl.conf, err, sizeof err);
	if (rv != CKR_OK) {
		log_error ("C_Initialize failed: %s", err);
		sessions_close_all ();
		audit_event ("initialize", NULL, NULL, "fail", err);
		audit_close ();
		goto fail_conf;
	}
	rv = slots_open (&gl.conf, err, sizeof err);
	if (rv != CKR_OK) {
		log_error ("C_Initialize failed: %s", err);
		slots_close ();
		sessions_close_all ();
		attest_close ();
		audit_event ("initialize", NULL, NULL, "fail", err);
		audit_close ();
		goto fail_conf;
	}
	gl.generation = atomic_load (&fork_generation);
	atomic_store_explicit (&gl.initialized, true, memory_order_release);
	log_debug ("initialised from %s with %lu slot(s)", path, (unsigned long)slots_count ());
	rv = CKR_OK;
	goto out;

fail_conf:
	conf_free (&gl.conf);
	log_configure (LOG_SINK_STDERR, LOG_LEVEL_WARNING);
out:
	pthread_mutex_unlock (&gl.lock);
	return rv;
}

static CK_RV
sys_C_Finalize (CK_VOID_PTR reserved)
{
	CK_RV rv = CKR_OK;
	if (reserved)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock (&gl.lock);
	if (!module_ready ()) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	} else {
		atomic_store (&gl.initialized, false);
		sessions_close_all ();
		slots_close ();
		gate_reset (false);
		handles_reset (false);
		attest_close ();
		audit_event ("finalize", NULL, NULL, NULL, NULL);
		audit_close ();
		conf_free (&gl.conf);
	}
	pthread_mutex_unlock (&gl.lock);
	return rv;
}

static CK_RV
get_info (CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor)
{
	CHECK_READY ();
	if (!info)
		return CKR_ARGUMENTS_BAD;
	memset (info, 0, sizeof *info);
	info->cryptokiVersion.major = major;
	info->cryptokiVersion.minor = minor;
	util_pad (info->manufacturerID, sizeof info->manufacturerID, P11W_MANUFACTURER);
	util_pad (info->libraryDescription, sizeof info->libraryDescription,
	        "p11-warden attestation-gated keys");
	info->libraryVersion.major = P11W_VERSION_MAJOR;
	info->libraryVersion.minor = P11W_VERSION_MINOR;
	return CKR_OK;
}

/* The 2.40 list and the 3.0 list each report their own version. */
static CK_RV
sys_C_GetInfo (CK_INFO_PTR info)
{
	return get_info (info, 3, 0);
}

static CK_RV
sys_C_GetInfo_v2 (CK_INFO_PTR info)
{
	return get_info (info, 2, 40);
}

/* ------------------------------------------------------------ slots and tokens */

static CK_RV
sys_C_GetSlotList (CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_SLOT_ID ids[CONF_MAX_SLOTS];
	CK_ULONG n = 0;

	CHECK_READY ();
	if (!count)
		return CKR_ARGUMENTS_BAD;
	for (CK_ULONG i = 0; i < slots_count (); i++) {
		if (token_present) {
			CK_SLOT_INFO si;
			slot_info (slot_get (i), &si);
			if (!(si.flags & CKF_TOKEN_PRESENT))
				continue;
		}
		ids[n++] = i;
	}
	if (!list) {
		*count = n;
		return CKR_OK;
	}
	if (*count < n) {
		*count = n;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy (list, ids, n * sizeof *ids);
	*count = n;
	return CKR_OK;
}

static CK_RV
sys_C_GetSlotInfo (CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
	struct slot *slot;
	CHECK_READY ();
	if (!info)
		return CKR_ARGUMENTS_BAD;
	slot = slot_get (id);
	if (!slot)
		return CKR_SLOT_ID_INVALID;
	slot_info (slot, info);
	return CKR_OK;
}

static CK_RV
sys_C_GetTokenInfo (CK_SLOT_ID id, CK_TOKEN_INFO_PTR info)
{
	struct slot *slot;
	CHECK_READY ();
	if (!info)
		return CKR_ARGUMENTS_BAD;
	slot = slot_get (id);
	if (!slot)
		return CKR_SLOT_ID_INVALID;
	return slot_token_info (slot, info);
}

/* The slot, with its backend token bound. */
static CK_RV
token_slot (CK_SLOT_ID id, struct slot **out)
{
	struct slot *slot = slot_get (id);
	CK_RV rv;
	if (!slot)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock (&slot->lock);
	rv = slot_bind (slot);
	pthread_mutex_unlock (&slot->lock);
	if (rv != CKR_OK)
		return CKR_TOKEN_NOT_PRESENT;
	*out = slot;
	return CKR_OK;
}

static CK_RV
sys_C_GetMechanismList (CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	struct slot *slot;
	CK_RV rv;
	CHECK_READY ();
	if (!count)
		return CKR_ARGUMENTS_BAD;
	rv = token_slot (id, &slot);
	if (rv != CKR_OK)
		return rv;
	return slot->backend.fl->C_GetMechanismList (slot->backend.slot_id, list, count);
}

static CK_RV
sys_C_GetMechanismInfo (CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	struct slot *slot;
	CK_RV rv;
	CHECK_READY ();
	if (!info)
		return CKR_ARGUMENTS_BAD;
	rv = token_slot (id, &slot);
	if (rv != CKR_OK)
		return rv;
	return slot->backend.fl->C_GetMechanismInfo (slot->backend.slot_id, type, info);
}

/* An administrative action or a login, with its outcome (never a PIN). */
static void
audit_result (const char *event, struct slot *slot, const char *user, CK_RV rv)
{
	char why[64];
	snprintf (why, sizeof why, "%s (0x%lx)", log_ckr_name (rv) ? log_ckr_name (rv) : "CKR",
	          (unsigned long)rv);
	audit_event (event, slot->conf->name, user, rv == CKR_OK ? "pass" : "fail", why);
}

static CK_RV
sys_C_InitToken (CK_SLOT_ID id, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
	struct slot *slot;
	CK_RV rv;
	CHECK_READY ();
	rv = token_slot (id, &slot);
	if (rv != CKR_OK)
		return rv;
	rv = slot_init_token (slot, pin, pin_len, label);
	audit_result ("token-init", slot, "so", rv);
	return rv;
}

static CK_RV
sys_C_InitPIN (CK_SESSION_HANDLE handle, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	BEGIN_SESSION (handle);
	rv = slot_init_pin (s->slot, s->flags, pin, pin_len);
	audit_result ("pin-init", s->slot, "so", rv);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SetPIN (CK_SESSION_HANDLE handle, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
              CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
	BEGIN_SESSION (handle);
	rv = slot_set_pin (s->slot, s->flags, old_pin, old_len, new_pin, new_len);
	audit_result ("pin-change", s->slot, NULL, rv);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ sessions */

static CK_RV
sys_C_OpenSession (CK_SLOT_ID id, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR out)
{
	struct slot *slot;
	CK_RV rv;
	CHECK_READY ();
	if (!out)
		return CKR_ARGUMENTS_BAD;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if (flags & ~(CKF_SERIAL_SESSION | CKF_RW_SESSION))
		return CKR_ARGUMENTS_BAD;
	rv = token_slot (id, &slot);
	if (rv != CKR_OK)
		return rv;
	return session_open (slot, flags, out);
}

static CK_RV
sys_C_CloseSession (CK_SESSION_HANDLE handle)
{
	CHECK_READY ();
	return session_close (handle);
}

static CK_RV
sys_C_CloseAllSessions (CK_SLOT_ID id)
{
	struct slot *slot;
	CHECK_READY ();
	slot = slot_get (id);
	if (!slot)
		return CKR_SLOT_ID_INVALID;
	session_close_slot (slot);
	return CKR_OK;
}

static CK_RV
sys_C_GetSessionInfo (CK_SESSION_HANDLE handle, CK_SESSION_INFO_PTR info)
{
	if (!info)
		return module_ready () ? CKR_ARGUMENTS_BAD : CKR_CRYPTOKI_NOT_INITIALIZED;
	BEGIN_SESSION (handle);
	info->slotID = s->slot->id;
	info->state = slot_session_state (s->slot, s->flags);
	info->flags = s->flags;
	info->ulDeviceError = 0;
	session_release (s);
	return CKR_OK;
}

/* Saved operation state could carry a decryption context past the gate into
 * another session; p11-warden does not export or import it. */
static CK_RV
sys_C_GetOperationState (CK_SESSION_HANDLE handle, CK_BYTE_PTR state, CK_ULONG_PTR len)
{
	CHECK_READY ();
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
sys_C_SetOperationState (CK_SESSION_HANDLE handle, CK_BYTE_PTR state, CK_ULONG len,
                         CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
	CHECK_READY ();
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
sys_C_Login (CK_SESSION_HANDLE handle, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	BEGIN_SESSION (handle);
	rv = slot_login (s->slot, s->bs, type, pin, pin_len);
	audit_result (rv == CKR_OK ? "login" : "login-failed", s->slot,
	              type == CKU_SO ? "so" : type == CKU_USER ? "user" : "other", rv);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_LoginUser (CK_SESSION_HANDLE handle, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin,
                 CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len)
{
	/* p11-warden tokens have no user names (one user and one SO). */
	if (username && username_len) {
		CHECK_READY ();
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	return sys_C_Login (handle, type, pin, pin_len);
}

static CK_RV
sys_C_Logout (CK_SESSION_HANDLE handle)
{
	BEGIN_SESSION (handle);
	rv = slot_logout (s->slot, s->bs);
	if (rv == CKR_OK)
		audit_result ("logout", s->slot, NULL, rv);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ operation state */

/*
 * The front keeps its own record of the operations active in a session so
 * that the application sees the specification's behaviour whatever the
 * backend does.  When the front ends an operation the backend may still
 * hold, abort_backend_op() finishes it there with a call that ends it.
 *
 * SoftHSM 2.6 keeps its operation after CKR_ARGUMENTS_BAD (a NULL input),
 * after CKR_KEY_INDIGESTIBLE from C_DigestKey, after C_DecryptFinal,
 * C_EncryptFinal, C_DecryptUpdate of a single-part RSA mechanism
 * (CKR_FUNCTION_NOT_SUPPORTED), after C_SignFinal and C_VerifyFinal of a
 * single-part one, and it answers C_DecryptFinal of an AES-CBC-PAD
 * decryption that has had no data with CKR_BUFFER_TOO_SMALL whatever the
 * buffer.  It has one operation slot per session, so a kept operation also
 * refuses every later Init of another kind with CKR_OPERATION_ACTIVE.
 *
 * What ends an operation everywhere is the single-part call with a
 * zero-length input (3.0, 5.2: C_Encrypt, C_Decrypt, C_Digest, C_Sign and
 * C_Verify always terminate the operation unless they answer a length
 * query or CKR_BUFFER_TOO_SMALL): it either completes on empty data or
 * fails on it.  The Final call follows for backends that refuse a
 * single-part call in the middle of a multi-part operation without ending
 * it; whichever call comes second finds nothing to end, and says so.
 */
static void
abort_backend_op (struct session *s, unsigned int op)
{
	CK_FUNCTION_LIST *fl = BACKEND (s);
	CK_BYTE scratch[64] = { 0 };
	CK_BYTE *big = NULL;
	CK_ULONG len;
	const CK_ULONG big_len = 16384;

	switch (op) {
	case OP_FIND:
		(void)fl->C_FindObjectsFinal (s->bs);
		return;
	case OP_VERIFY:
		/* An empty signature is the wrong length for every mechanism. */
		(void)fl->C_Verify (s->bs, scratch, 0, scratch, 0);
		(void)fl->C_VerifyFinal (s->bs, scratch, 0);
		return;
	default:
		break;
	}
	/* Output lands in a buffer large enough that no call can ask for more;
	 * what lands there is cleansed and dropped. */
	/* From the secure heap when the host set one up, the ordinary heap
	 * otherwise; OPENSSL_secure_clear_free releases either. */
	big = OPENSSL_secure_malloc (big_len);
	if (!big)
		return;
#define END_WITH(call) \
	do { \
		len = big_len; \
		(void)(call); \
	} while (0)
	switch (op) {
	case OP_ENCRYPT:
		END_WITH (fl->C_Encrypt (s->bs, scratch, 0, big, &len));
		END_WITH (fl->C_EncryptFinal (s->bs, big, &len));
		break;
	case OP_DECRYPT:
		END_WITH (fl->C_Decrypt (s->bs, scratch, 0, big, &len));
		END_WITH (fl->C_DecryptFinal (s->bs, big, &len));
		break;
	case OP_DIGEST:
		END_WITH (fl->C_Digest (s->bs, scratch, 0, big, &len));
		END_WITH (fl->C_DigestFinal (s->bs, big, &len));
		break;
	case OP_SIGN:
		END_WITH (fl->C_Sign (s->bs, scratch, 0, big, &len));
		END_WITH (fl->C_SignFinal (s->bs, big, &len));
		break;
	case OP_SIGN_RECOVER:
		END_WITH (fl->C_SignRecover (s->bs, scratch, 0, big, &len));
		break;
	case OP_VERIFY_RECOVER:
		END_WITH (fl->C_VerifyRecover (s->bs, scratch, 0, big, &len));
		break;
	default:
		break;
	}
#undef END_WITH
	OPENSSL_secure_clear_free (big, big_len);
}

static void
end_op (struct session *s, unsigned int op)
{
	if (s->ops & op) {
		s->ops &= ~op;
		abort_backend_op (s, op);
	}
}

/* The backend answered a call of @op with @rv, and by the specification
 * that ended the operation: a success ended it at the backend as well, an
 * error may not have (see above). */
static void
op_ended (struct session *s, unsigned int op, CK_RV rv)
{
	if (rv == CKR_OK)
		s->ops &= ~op;
	else
		end_op (s, op);
}

/* After a call that returns output: the operation goes on only after
 * CKR_BUFFER_TOO_SMALL or a successful length query (3.0, 5.2). */
static void
after_output_call (struct session *s, unsigned int op, CK_RV rv, const void *out)
{
	if (!(rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && out == NULL)))
		op_ended (s, op, rv);
}

typedef CK_RV (*init_fn) (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
typedef CK_RV (*single_fn) (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
typedef CK_RV (*final_fn) (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR);
typedef CK_RV (*input_fn) (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);

/* XInit of every keyed operation: state, gate, backend. */
static CK_RV
op_init (struct session *s, unsigned int op, enum gate_use use, init_fn fn,
         CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m;
	CK_RV rv;
	if (!mechanism)
		return CKR_ARGUMENTS_BAD;
	if (s->ops & op)
		return CKR_OPERATION_ACTIVE;
	/* One copy of the mechanism: the backend gets the type the gate saw,
	 * even if another thread rewrites the caller's structure meanwhile. */
	m = *mechanism;
	if (!KNOWN (s, key))
		return CKR_KEY_HANDLE_INVALID;
	rv = gate_authorize (s, key, use, m.mechanism, CKR_KEY_HANDLE_INVALID, NULL);
	if (rv != CKR_OK)
		return rv;
	rv = fn (s->bs, &m, key);
	if (rv == CKR_OPERATION_ACTIVE) {
		/* The backend kept an operation the front had ended. */
		abort_backend_op (s, op);
		rv = fn (s->bs, &m, key);
	}
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID; /* 3.0, 5.x XInit: a key handle */
	if (rv == CKR_OK)
		s->ops |= op;
	return rv;
}

/* Single-part calls with output: C_Encrypt, C_Decrypt, C_Sign, C_Digest,
 * C_SignRecover, C_VerifyRecover. */
static CK_RV
op_single (struct session *s, unsigned int op, single_fn fn, CK_BYTE_PTR in, CK_ULONG in_len,
           CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_RV rv;
	if (!(s->ops & op))
		return CKR_OPERATION_NOT_INITIALIZED;
	if ((!in && in_len) || !out_len) {
		end_op (s, op);
		return CKR_ARGUMENTS_BAD;
	}
	rv = fn (s->bs, in, in_len, out, out_len);
	after_output_call (s, op, rv, out);
	return rv;
}

/* Multi-part updates with output: C_EncryptUpdate, C_DecryptUpdate. */
static CK_RV
op_update_out (struct session *s, unsigned int op, single_fn fn, CK_BYTE_PTR in, CK_ULONG in_len,
               CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_RV rv;
	if (!(s->ops & op))
		return CKR_OPERATION_NOT_INITIALIZED;
	if ((!in && in_len) || !out_len) {
		end_op (s, op);
		return CKR_ARGUMENTS_BAD;
	}
	rv = fn (s->bs, in, in_len, out, out_len);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		end_op (s, op);
	return rv;
}

/* Multi-part updates without output: C_DigestUpdate, C_SignUpdate,
 * C_VerifyUpdate; any error ends the operation. */
static CK_RV
op_update_in (struct session *s, unsigned int op, input_fn fn, CK_BYTE_PTR in, CK_ULONG in_len)
{
	CK_RV rv;
	if (!(s->ops & op))
		return CKR_OPERATION_NOT_INITIALIZED;
	if (!in && in_len) {
		end_op (s, op);
		return CKR_ARGUMENTS_BAD;
	}
	rv = fn (s->bs, in, in_len);
	if (rv != CKR_OK)
		end_op (s, op);
	return rv;
}

static CK_RV
op_final (struct session *s, unsigned int op, final_fn fn, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_RV rv;
	if (!(s->ops & op))
		return CKR_OPERATION_NOT_INITIALIZED;
	if (!out_len) {
		end_op (s, op);
		return CKR_ARGUMENTS_BAD;
	}
	rv = fn (s->bs, out, out_len);
	after_output_call (s, op, rv, out);
	return rv;
}

/* ------------------------------------------------------------ objects */

/*
 * A private copy of a caller's template.  The gate decides on the copy and
 * the backend is given the copy, so another thread of the application
 * cannot change the attribute types, or the naming values (class, label,
 * id, token), between the decision and the call.  Other values stay in the
 * caller's buffers: the backend reads inputs from there, and writes
 * C_GetAttributeValue's outputs there.
 */
#define SNAPSHOT_MAX_ATTRS 4096
#define SNAPSHOT_STACK 16
#define SNAPSHOT_MAX_NAMING 65536

struct snapshot {
	CK_ATTRIBUTE *attrs;
	CK_ATTRIBUTE stack[SNAPSHOT_STACK];
	CK_BYTE *values;
};

static bool
naming_attribute (CK_ATTRIBUTE_TYPE t)
{
	return t == CKA_CLASS || t == CKA_LABEL || t == CKA_ID || t == CKA_TOKEN;
}

static CK_RV
snapshot_take (struct snapshot *sn, CK_ATTRIBUTE_PTR templ, CK_ULONG count, bool copy_names)
{
	size_t names = 0, off = 0;

	sn->values = NULL;
	sn->attrs = sn->stack;
	if (count > SNAPSHOT_MAX_ATTRS)
		return CKR_ARGUMENTS_BAD;
	if (count > SNAPSHOT_STACK && !(sn->attrs = calloc (count, sizeof *sn->attrs)))
		return CKR_HOST_MEMORY;
	if (count)
		memcpy (sn->attrs, templ, count * sizeof *sn->attrs);
	if (!copy_names)
		return CKR_OK;
	for (CK_ULONG i = 0; i < count; i++) {
		if (naming_attribute (sn->attrs[i].type) && sn->attrs[i].pValue) {
			if (sn->attrs[i].ulValueLen > SNAPSHOT_MAX_NAMING - names)
				goto too_big;
			names += sn->attrs[i].ulValueLen;
		}
	}
	if (names && !(sn->values = malloc (names))) {
		if (sn->attrs != sn->stack)
			free (sn->attrs);
		return CKR_HOST_MEMORY;
	}
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ATTRIBUTE *a = &sn->attrs[i];
		if (naming_attribute (a->type) && a->pValue && a->ulValueLen) {
			memcpy (sn->values + off, a->pValue, a->ulValueLen);
			a->pValue = sn->values + off;
			off += a->ulValueLen;
		}
	}
	return CKR_OK;
too_big:
	if (sn->attrs != sn->stack)
		free (sn->attrs);
	return CKR_ATTRIBUTE_VALUE_INVALID;
}

/* Release the copy; @templ: the caller's template, to receive the lengths
 * the backend wrote (C_GetAttributeValue), or NULL. */
static void
snapshot_release (struct snapshot *sn, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	if (templ) {
		for (CK_ULONG i = 0; i < count; i++)
			templ[i].ulValueLen = sn->attrs[i].ulValueLen;
	}
	if (sn->attrs != sn->stack)
		free (sn->attrs);
	free (sn->values);
}

/* Give the application a handle the backend made: recorded as this slot's
 * first (an object the front cannot record is destroyed, never leaked). */
static CK_RV
hand_out (struct session *s, CK_OBJECT_HANDLE made, CK_OBJECT_HANDLE_PTR out, int is_token)
{
	/* A session object (CKA_TOKEN false, the default) dies with this
	 * session; its handle is recorded as the session's.  In doubt, a token
	 * object: the record then outlives the object, never the reverse.
	 * A handle in the range of p11-warden's own objects is refused. */
	if (attest_is_object (made) || !handles_add (s->slot->id, made, is_token == 0 ? s->handle : 0)) {
		(void)BACKEND (s)->C_DestroyObject (s->bs, made);
		return CKR_DEVICE_MEMORY;
	}
	*out = made;
	return CKR_OK;
}

static bool
template_ok (CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	return templ || count == 0;
}

/* CKA_TOKEN as the template sets it: 1 or 0; a template without it makes a
 * session object (CKA_TOKEN defaults to false), 0.  A malformed value: -1,
 * ask the backend. */
static int
template_token (CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type == CKA_TOKEN) {
			if (!templ[i].pValue || templ[i].ulValueLen != sizeof (CK_BBOOL))
				return -1;
			return *(CK_BBOOL *)templ[i].pValue ? 1 : 0;
		}
	}
	return 0;
}

/* Does the template set an attribute that names the object (and so decides
 * whether it is gated)? */
static bool
template_names_object (CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type == CKA_LABEL || templ[i].type == CKA_ID || templ[i].type == CKA_CLASS)
			return true;
	}
	return false;
}

/* The errors of a template the backend refused. */
static bool
template_refused (CK_RV rv)
{
	switch (rv) {
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_TEMPLATE_INCONSISTENT:
		return true;
	default:
		return false;
	}
}

/*
 * SoftHSM 2.6 makes the object of C_CreateObject, C_GenerateKey and
 * C_UnwrapKey before it applies the application's template; when it then
 * refuses the template (CKR_ATTRIBUTE_READ_ONLY for CKA_VALUE_LEN in an
 * unwrap template, for one) it returns the error with no handle and leaves
 * the object behind: a key with default attributes and no value, kept in
 * the session, or on the token for good when CKA_TOKEN was asked for.
 *
 * After such a failure for a secret key, the remains are found and
 * destroyed.  They need no record of what existed before: a secret key that
 * was not generated on the token (CKA_LOCAL false) and whose CKA_VALUE_LEN
 * is 0 holds no key at all, so whatever matches (another thread's failed
 * call included) is garbage.  The search runs in a backend session of its
 * own: the application's operations in its session stay as they are
 * (SoftHSM has one operation slot per session, finds included).
 */
static void
sweep_unfinished_keys (struct session *s, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	CK_FUNCTION_LIST *fl = BACKEND (s);
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_BBOOL no = CK_FALSE;
	CK_ULONG zero = 0, n = 0, n_find = 3, destroyed = 0;
	CK_ATTRIBUTE find[5] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_LOCAL, &no, sizeof no },
		{ CKA_VALUE_LEN, &zero, sizeof zero },
	};
	int token_wanted = template_token (templ, count);
	CK_OBJECT_HANDLE found[16];
	CK_SESSION_HANDLE tmp;

	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type == CKA_CLASS) {
			CK_OBJECT_CLASS want;
			if (!templ[i].pValue || templ[i].ulValueLen != sizeof want)
				return;
			memcpy (&want, templ[i].pValue, sizeof want);
			if (want != CKO_SECRET_KEY)
				return;
		} else if (templ[i].type == CKA_KEY_TYPE && templ[i].pValue &&
		           templ[i].ulValueLen == sizeof (CK_KEY_TYPE) && n_find == 3) {
			find[n_find++] = templ[i];
		}
	}
	/* A session object was asked for (the default): look at session
	 * objects only, which belong to this application, so no other
	 * process's token object is ever considered.  A token object was
	 * asked for: SoftHSM may leave its remains as either kind. */
	if (token_wanted == 0)
		find[n_find++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, sizeof no };
	if (fl->C_OpenSession (s->slot->backend.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
	                       NULL, &tmp) != CKR_OK)
		return;
	/* Collect a batch, end the search, destroy; again until none is left
	 * (bounded: a backend that cannot destroy them must not hold us). */
	for (int round = 0; round < 64; round++) {
		n = 0;
		if (fl->C_FindObjectsInit (tmp, find, n_find) != CKR_OK)
			break;
		if (fl->C_FindObjects (tmp, found, sizeof found / sizeof found[0], &n) != CKR_OK)
			n = 0;
		(void)fl->C_FindObjectsFinal (tmp);
		for (CK_ULONG i = 0; i < n; i++) {
			if (fl->C_DestroyObject (tmp, found[i]) == CKR_OK)
				destroyed++;
		}
		if (n < sizeof found / sizeof found[0])
			break;
	}
	(void)fl->C_CloseSession (tmp);
	if (destroyed)
		log_warning ("slot '%s': removed %lu key object(s) without a value that a failed call "
		             "left in the backend", s->slot->conf->name, (unsigned long)destroyed);
}

static CK_RV
sys_C_CreateObject (CK_SESSION_HANDLE handle, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR out)
{
	BEGIN_SESSION (handle);
	if (!template_ok (templ, count) || !out) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (attest_template_is_ours (templ, count)) {
		/* A challenge, or evidence to appraise (p11-warden.h). */
		struct snapshot sn;
		rv = snapshot_take (&sn, templ, count, true);
		if (rv == CKR_OK) {
			rv = attest_create_object (s, sn.attrs, count, out);
			snapshot_release (&sn, NULL, count);
		}
	} else {
		CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
		rv = BACKEND (s)->C_CreateObject (s->bs, templ, count, &made);
		if (template_refused (rv))
			sweep_unfinished_keys (s, templ, count);
		if (rv == CKR_OK)
			rv = hand_out (s, made, out, template_token (templ, count));
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_CopyObject (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                  CK_ULONG count, CK_OBJECT_HANDLE_PTR out)
{
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	struct snapshot sn;
	BEGIN_SESSION (handle);
	if (!template_ok (templ, count) || !out) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (attest_is_object (object)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	if (!KNOWN (s, object)) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	rv = snapshot_take (&sn, templ, count, true);
	if (rv != CKR_OK)
		goto out;
	/* A copy under another name could fall outside the gate. */
	if (template_names_object (sn.attrs, count))
		rv = gate_authorize_rename (s, object, GATE_COPY, sn.attrs, count);
	if (rv == CKR_OK)
		rv = BACKEND (s)->C_CopyObject (s->bs, object, sn.attrs, count, &made);
	if (rv == CKR_OK) {
		/* A copy keeps the source's CKA_TOKEN unless the template says. */
		if (gate_key_is_ungated (s, object))
			gate_note_child (s, made, template_token (sn.attrs, count) == 1 ? 1 : -1);
		rv = hand_out (s, made, out, template_token (sn.attrs, count) == 1 ? 1 : -1);
	}
	snapshot_release (&sn, NULL, count);
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DestroyObject (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object)
{
	BEGIN_SESSION (handle);
	if (attest_is_object (object)) {
		rv = attest_destroy_object (s, object);
		session_release (s);
		return rv;
	}
	if (!KNOWN (s, object)) {
		session_release (s);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	rv = BACKEND (s)->C_DestroyObject (s->bs, object);
	if (rv == CKR_OK) {
		gate_forget_object (s->slot, object);
		handles_remove (s->slot->id, object);
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_GetObjectSize (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object, CK_ULONG_PTR size)
{
	BEGIN_SESSION (handle);
	if (!size)
		rv = CKR_ARGUMENTS_BAD;
	else if (attest_is_object (object))
		rv = attest_object_exists (s, object) ? (*size = CK_UNAVAILABLE_INFORMATION, CKR_OK)
		                                      : CKR_OBJECT_HANDLE_INVALID;
	else if (!KNOWN (s, object))
		rv = CKR_OBJECT_HANDLE_INVALID;
	else
		rv = BACKEND (s)->C_GetObjectSize (s->bs, object, size);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_GetAttributeValue (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object,
                         CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	struct snapshot sn;
	BEGIN_SESSION (handle);
	if (!templ || count == 0) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (attest_is_object (object)) {
		rv = attest_get_attributes (s, object, templ, count);
		goto out;
	}
	if (!KNOWN (s, object)) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	rv = snapshot_take (&sn, templ, count, false);
	if (rv != CKR_OK)
		goto out;
	for (CK_ULONG i = 0; i < count; i++) {
		if (gate_is_secret_attribute (sn.attrs[i].type)) {
			rv = gate_authorize (s, object, GATE_READ_SECRET, 0, CKR_OBJECT_HANDLE_INVALID, NULL);
			break;
		}
	}
	if (rv == CKR_OK)
		rv = BACKEND (s)->C_GetAttributeValue (s->bs, object, sn.attrs, count);
	/* Lengths go back only when the backend has written them. */
	snapshot_release (&sn, rv == P11W_CKR_DENIED ? NULL : templ, count);
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SetAttributeValue (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE object,
                         CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	struct snapshot sn;
	BEGIN_SESSION (handle);
	if (!templ || count == 0) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (attest_is_object (object)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	if (!KNOWN (s, object)) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	rv = snapshot_take (&sn, templ, count, true);
	if (rv != CKR_OK)
		goto out;
	/* Renaming a gated key could move it under an `ungated` URI. */
	if (template_names_object (sn.attrs, count))
		rv = gate_authorize_rename (s, object, GATE_CHANGE_IDENTITY, sn.attrs, count);
	if (rv == CKR_OK) {
		rv = BACKEND (s)->C_SetAttributeValue (s->bs, object, sn.attrs, count);
		/* Whatever the backend answered, the old name may be gone. */
		if (template_names_object (sn.attrs, count))
			gate_renamed (s, object);
	}
	snapshot_release (&sn, NULL, count);
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_FindObjectsInit (CK_SESSION_HANDLE handle, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	struct snapshot sn;
	BEGIN_SESSION (handle);
	if (!template_ok (templ, count)) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (s->ops & OP_FIND) {
		rv = CKR_OPERATION_ACTIVE;
	} else if ((rv = snapshot_take (&sn, templ, count, true)) != CKR_OK) {
		/* nothing to release */
	} else {
		/* A search by a secret value is an equality oracle on keys. */
		rv = gate_authorize_find (s, sn.attrs, count);
		if (rv == CKR_OK)
			rv = BACKEND (s)->C_FindObjectsInit (s->bs, sn.attrs, count);
		if (rv == CKR_OPERATION_ACTIVE) {
			abort_backend_op (s, OP_FIND);
			rv = BACKEND (s)->C_FindObjectsInit (s->bs, sn.attrs, count);
		}
		if (rv == CKR_OK)
			s->ops |= OP_FIND;
		snapshot_release (&sn, NULL, count);
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_FindObjects (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
                   CK_ULONG_PTR count)
{
	BEGIN_SESSION (handle);
	if (!(s->ops & OP_FIND))
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (!count || (!objects && max))
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = BACKEND (s)->C_FindObjects (s->bs, objects, max, count);
	/* What a search finds in this slot's token may be used in this slot. */
	if (rv == CKR_OK && *count > max)
		rv = CKR_GENERAL_ERROR; /* a backend that overran the caller's array */
	for (CK_ULONG i = 0; rv == CKR_OK && i < *count; i++) {
		if (!handles_add (s->slot->id, objects[i], 0)) {
			*count = 0;
			rv = CKR_DEVICE_MEMORY;
		}
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_FindObjectsFinal (CK_SESSION_HANDLE handle)
{
	BEGIN_SESSION (handle);
	if (!(s->ops & OP_FIND)) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else {
		s->ops &= ~OP_FIND;
		rv = BACKEND (s)->C_FindObjectsFinal (s->bs);
	}
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ encryption */

static CK_RV
sys_C_EncryptInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_ENCRYPT, GATE_ENCRYPT, BACKEND (s)->C_EncryptInit, mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_Encrypt (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
               CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_ENCRYPT, BACKEND (s)->C_Encrypt, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_EncryptUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                     CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_update_out (s, OP_ENCRYPT, BACKEND (s)->C_EncryptUpdate, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_EncryptFinal (CK_SESSION_HANDLE handle, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_final (s, OP_ENCRYPT, BACKEND (s)->C_EncryptFinal, out, out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ decryption (gated) */

static CK_RV
sys_C_DecryptInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_DECRYPT, GATE_DECRYPT, BACKEND (s)->C_DecryptInit, mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_Decrypt (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
               CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_DECRYPT, BACKEND (s)->C_Decrypt, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DecryptUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                     CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_update_out (s, OP_DECRYPT, BACKEND (s)->C_DecryptUpdate, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DecryptFinal (CK_SESSION_HANDLE handle, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_final (s, OP_DECRYPT, BACKEND (s)->C_DecryptFinal, out, out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ digest */

static CK_RV
sys_C_DigestInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism)
{
	BEGIN_SESSION (handle);
	if (!mechanism) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (s->ops & OP_DIGEST) {
		rv = CKR_OPERATION_ACTIVE;
	} else {
		rv = BACKEND (s)->C_DigestInit (s->bs, mechanism);
		if (rv == CKR_OPERATION_ACTIVE) {
			abort_backend_op (s, OP_DIGEST);
			rv = BACKEND (s)->C_DigestInit (s->bs, mechanism);
		}
		if (rv == CKR_OK)
			s->ops |= OP_DIGEST;
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_Digest (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
              CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_DIGEST, BACKEND (s)->C_Digest, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DigestUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len)
{
	BEGIN_SESSION (handle);
	rv = op_update_in (s, OP_DIGEST, BACKEND (s)->C_DigestUpdate, in, in_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DigestKey (CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	if (!(s->ops & OP_DIGEST)) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	/* A digest of the key's value is a path to key material. */
	rv = KNOWN (s, key) ? gate_authorize (s, key, GATE_DIGEST_KEY, 0, CKR_KEY_HANDLE_INVALID, NULL)
	                    : CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK) {
		rv = BACKEND (s)->C_DigestKey (s->bs, key);
		if (rv == CKR_OBJECT_HANDLE_INVALID)
			rv = CKR_KEY_HANDLE_INVALID;
	}
	if (rv != CKR_OK)
		end_op (s, OP_DIGEST);
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DigestFinal (CK_SESSION_HANDLE handle, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_final (s, OP_DIGEST, BACKEND (s)->C_DigestFinal, out, out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ signing */

static CK_RV
sys_C_SignInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_SIGN, GATE_SIGN, BACKEND (s)->C_SignInit, mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_Sign (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
            CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_SIGN, BACKEND (s)->C_Sign, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SignUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len)
{
	BEGIN_SESSION (handle);
	rv = op_update_in (s, OP_SIGN, BACKEND (s)->C_SignUpdate, in, in_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SignFinal (CK_SESSION_HANDLE handle, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_final (s, OP_SIGN, BACKEND (s)->C_SignFinal, out, out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SignRecoverInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_SIGN_RECOVER, GATE_SIGN_RECOVER, BACKEND (s)->C_SignRecoverInit,
	              mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SignRecover (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                   CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_SIGN_RECOVER, BACKEND (s)->C_SignRecover, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ verification */

static CK_RV
sys_C_VerifyInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_VERIFY, GATE_VERIFY, BACKEND (s)->C_VerifyInit, mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_Verify (CK_SESSION_HANDLE handle, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
              CK_ULONG sig_len)
{
	BEGIN_SESSION (handle);
	if (!(s->ops & OP_VERIFY)) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else if ((!data && data_len) || !sig) {
		end_op (s, OP_VERIFY);
		rv = CKR_ARGUMENTS_BAD;
	} else {
		/* Every outcome ends a verification. */
		rv = BACKEND (s)->C_Verify (s->bs, data, data_len, sig, sig_len);
		op_ended (s, OP_VERIFY, rv);
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_VerifyUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len)
{
	BEGIN_SESSION (handle);
	rv = op_update_in (s, OP_VERIFY, BACKEND (s)->C_VerifyUpdate, in, in_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_VerifyFinal (CK_SESSION_HANDLE handle, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
	BEGIN_SESSION (handle);
	if (!(s->ops & OP_VERIFY)) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else if (!sig) {
		end_op (s, OP_VERIFY);
		rv = CKR_ARGUMENTS_BAD;
	} else {
		rv = BACKEND (s)->C_VerifyFinal (s->bs, sig, sig_len);
		op_ended (s, OP_VERIFY, rv);
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_VerifyRecoverInit (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism,
                         CK_OBJECT_HANDLE key)
{
	BEGIN_SESSION (handle);
	rv = op_init (s, OP_VERIFY_RECOVER, GATE_VERIFY_RECOVER, BACKEND (s)->C_VerifyRecoverInit,
	              mechanism, key);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_VerifyRecover (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                     CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_single (s, OP_VERIFY_RECOVER, BACKEND (s)->C_VerifyRecover, in, in_len, out, out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ dual-function */

typedef CK_RV (*dual_fn) (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

/* Both operations must be active; the decrypting forms were gated when
 * their decryption began. */
static CK_RV
op_dual (struct session *s, unsigned int ops, dual_fn fn, CK_BYTE_PTR in, CK_ULONG in_len,
         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_RV rv;
	if ((s->ops & ops) != ops)
		return CKR_OPERATION_NOT_INITIALIZED;
	if ((!in && in_len) || !out_len)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = fn (s->bs, in, in_len, out, out_len);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) {
		for (unsigned int bit = 1; bit <= OP_VERIFY_RECOVER; bit <<= 1) {
			if (ops & bit)
				end_op (s, bit);
		}
	}
	return rv;
}

static CK_RV
sys_C_DigestEncryptUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len,
                           CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_dual (s, OP_DIGEST | OP_ENCRYPT, BACKEND (s)->C_DigestEncryptUpdate, in, in_len, out,
	              out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DecryptDigestUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len,
                           CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_dual (s, OP_DECRYPT | OP_DIGEST, BACKEND (s)->C_DecryptDigestUpdate, in, in_len, out,
	              out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_SignEncryptUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_dual (s, OP_SIGN | OP_ENCRYPT, BACKEND (s)->C_SignEncryptUpdate, in, in_len, out,
	              out_len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DecryptVerifyUpdate (CK_SESSION_HANDLE handle, CK_BYTE_PTR in, CK_ULONG in_len,
                           CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	BEGIN_SESSION (handle);
	rv = op_dual (s, OP_DECRYPT | OP_VERIFY, BACKEND (s)->C_DecryptVerifyUpdate, in, in_len, out,
	              out_len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ keys */

static CK_RV
sys_C_GenerateKey (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
                   CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
	BEGIN_SESSION (handle);
	if (!mechanism || !template_ok (templ, count) || !key) {
		rv = CKR_ARGUMENTS_BAD;
	} else {
		CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
		rv = BACKEND (s)->C_GenerateKey (s->bs, mechanism, templ, count, &made);
		if (template_refused (rv))
			sweep_unfinished_keys (s, templ, count);
		if (rv == CKR_OK)
			rv = hand_out (s, made, key, template_token (templ, count));
	}
	session_release (s);
	return rv;
}

static CK_RV
sys_C_GenerateKeyPair (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism,
                       CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_templ,
                       CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
	BEGIN_SESSION (handle);
	if (!mechanism || !template_ok (pub_templ, pub_count) || !template_ok (priv_templ, priv_count) ||
	    !pub || !priv)
		rv = CKR_ARGUMENTS_BAD;
	else {
		CK_OBJECT_HANDLE made_pub = CK_INVALID_HANDLE, made_priv = CK_INVALID_HANDLE;
		rv = BACKEND (s)->C_GenerateKeyPair (s->bs, mechanism, pub_templ, pub_count, priv_templ,
		                                     priv_count, &made_pub, &made_priv);
		if (rv == CKR_OK) {
			bool pub_out;
			rv = hand_out (s, made_pub, pub, template_token (pub_templ, pub_count));
			pub_out = rv == CKR_OK;
			if (pub_out)
				rv = hand_out (s, made_priv, priv, template_token (priv_templ, priv_count));
			else
				(void)BACKEND (s)->C_DestroyObject (s->bs, made_priv);
			if (rv != CKR_OK && pub_out) {
				/* Both keys or neither. */
				handles_remove (s->slot->id, made_pub);
				(void)BACKEND (s)->C_DestroyObject (s->bs, made_pub);
			}
		}
	}
	session_release (s);
	return rv;
}

/* Is @object a valid handle in the session's token? */
static bool
object_exists (struct session *s, CK_OBJECT_HANDLE object)
{
	CK_OBJECT_CLASS klass;
	CK_ATTRIBUTE a = { CKA_CLASS, &klass, sizeof klass };
	CK_RV rv = BACKEND (s)->C_GetAttributeValue (s->bs, object, &a, 1);
	return object != CK_INVALID_HANDLE && rv != CKR_OBJECT_HANDLE_INVALID &&
	       rv != CKR_KEY_HANDLE_INVALID;
}

static CK_RV
sys_C_WrapKey (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_MECHANISM m;
	BEGIN_SESSION (handle);
	if (!mechanism || !out_len) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	m = *mechanism; /* what the gate sees is what the backend gets */
	if (!KNOWN (s, wrapping) || !object_exists (s, wrapping)) {
		rv = CKR_WRAPPING_KEY_HANDLE_INVALID;
		goto out;
	}
	if (!KNOWN (s, key)) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	/* Wrapping under a gated secret key is encryption under it. */
	rv = gate_authorize (s, wrapping, GATE_WRAPPING, m.mechanism,
	                     CKR_WRAPPING_KEY_HANDLE_INVALID, NULL);
	if (rv != CKR_OK)
		goto out;
	/* The key leaving the token wrapped is the one the gate guards. */
	rv = gate_authorize (s, key, GATE_WRAP, m.mechanism, CKR_KEY_HANDLE_INVALID, NULL);
	if (rv != CKR_OK)
		goto out;
	rv = BACKEND (s)->C_WrapKey (s->bs, &m, wrapping, key, out, out_len);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_UnwrapKey (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key)
{
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	CK_MECHANISM m;
	bool ungated = false;
	BEGIN_SESSION (handle);
	if (!mechanism || !wrapped || !template_ok (templ, count) || !key) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	m = *mechanism;
	if (!KNOWN (s, unwrapping)) {
		rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
		goto out;
	}
	rv = gate_authorize (s, unwrapping, GATE_UNWRAP, m.mechanism,
	                     CKR_UNWRAPPING_KEY_HANDLE_INVALID, &ungated);
	if (rv != CKR_OK)
		goto out;
	rv = BACKEND (s)->C_UnwrapKey (s->bs, &m, unwrapping, wrapped, wrapped_len, templ,
	                               count, &made);
	if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID)
		rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
	if (rv == CKR_OK) {
		if (ungated)
			gate_note_child (s, made, template_token (templ, count));
		rv = hand_out (s, made, key, template_token (templ, count));
	} else if (made != CK_INVALID_HANDLE) {
		/* A backend that reports the half-made key of a failed unwrap. */
		(void)BACKEND (s)->C_DestroyObject (s->bs, made);
	} else if (template_refused (rv)) {
		/* One that does not (SoftHSM). */
		sweep_unfinished_keys (s, templ, count);
	}
out:
	session_release (s);
	return rv;
}

static CK_RV
sys_C_DeriveKey (CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base,
                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	CK_MECHANISM m;
	bool ungated = false;
	BEGIN_SESSION (handle);
	if (!mechanism || !template_ok (templ, count) || !key) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	m = *mechanism;
	if (!KNOWN (s, base)) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	rv = gate_authorize (s, base, GATE_DERIVE, m.mechanism, CKR_KEY_HANDLE_INVALID,
	                     &ungated);
	if (rv != CKR_OK)
		goto out;
	rv = BACKEND (s)->C_DeriveKey (s->bs, &m, base, templ, count, &made);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK) {
		/* Recorded from our own copy of the handle, not the caller's. */
		if (ungated)
			gate_note_child (s, made, template_token (templ, count));
		rv = hand_out (s, made, key, template_token (templ, count));
	}
out:
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ random */

static CK_RV
sys_C_SeedRandom (CK_SESSION_HANDLE handle, CK_BYTE_PTR seed, CK_ULONG len)
{
	BEGIN_SESSION (handle);
	if (!seed && len)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = BACKEND (s)->C_SeedRandom (s->bs, seed, len);
	session_release (s);
	return rv;
}

static CK_RV
sys_C_GenerateRandom (CK_SESSION_HANDLE handle, CK_BYTE_PTR out, CK_ULONG len)
{
	BEGIN_SESSION (handle);
	if (!out && len)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = BACKEND (s)->C_GenerateRandom (s->bs, out, len);
	session_release (s);
	return rv;
}

/* ------------------------------------------------------------ legacy and events */

static CK_RV
sys_C_GetFunctionStatus (CK_SESSION_HANDLE handle)
{
	CHECK_READY ();
	return CKR_FUNCTION_NOT_PARALLEL; /* 3.0, 5.17: legacy */
}

static CK_RV
sys_C_CancelFunction (CK_SESSION_HANDLE handle)
{
	CHECK_READY ();
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV
sys_C_WaitForSlotEvent (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	CHECK_READY ();
	return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ------------------------------------------------------------ PKCS#11 3.0 */

static CK_RV
sys_C_SessionCancel (CK_SESSION_HANDLE handle, CK_FLAGS flags)
{
	static const struct { CK_FLAGS flag; unsigned int op; } map[] = {
		{ CKF_FIND_OBJECTS, OP_FIND }, { CKF_ENCRYPT, OP_ENCRYPT }, { CKF_DECRYPT, OP_DECRYPT },
		{ CKF_DIGEST, OP_DIGEST }, { CKF_SIGN, OP_SIGN }, { CKF_VERIFY, OP_VERIFY },
		{ CKF_SIGN_RECOVER, OP_SIGN_RECOVER }, { CKF_VERIFY_RECOVER, OP_VERIFY_RECOVER },
	};
	BEGIN_SESSION (handle);
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (flags & map[i].flag)
			end_op (s, map[i].op);
	}
	session_release (s);
	return CKR_OK;
}

/* Message-based cryptography (3.0, 5.13-5.16) is not offered: the backends
 * p11-warden fronts are 2.40 modules.  MessageDecrypt* would be gated like
 * C_DecryptInit. */
#define NOT_SUPPORTED_SESSION_CALL(name, args) \
	static CK_RV sys_##name args \
	{ \
		CHECK_READY (); \
		return CKR_FUNCTION_NOT_SUPPORTED; \
	}

NOT_SUPPORTED_SESSION_CALL (C_MessageEncryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED_SESSION_CALL (C_EncryptMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al, CK_BYTE_PTR i, CK_ULONG il, CK_BYTE_PTR o, CK_ULONG_PTR ol))
NOT_SUPPORTED_SESSION_CALL (C_EncryptMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al))
NOT_SUPPORTED_SESSION_CALL (C_EncryptMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR i, CK_ULONG il, CK_BYTE_PTR o, CK_ULONG_PTR ol, CK_FLAGS f))
NOT_SUPPORTED_SESSION_CALL (C_MessageEncryptFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED_SESSION_CALL (C_MessageDecryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED_SESSION_CALL (C_DecryptMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al, CK_BYTE_PTR i, CK_ULONG il, CK_BYTE_PTR o, CK_ULONG_PTR ol))
NOT_SUPPORTED_SESSION_CALL (C_DecryptMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al))
NOT_SUPPORTED_SESSION_CALL (C_DecryptMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR i, CK_ULONG il, CK_BYTE_PTR o, CK_ULONG_PTR ol, CK_FLAGS f))
NOT_SUPPORTED_SESSION_CALL (C_MessageDecryptFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED_SESSION_CALL (C_MessageSignInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED_SESSION_CALL (C_SignMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sg, CK_ULONG_PTR sl))
NOT_SUPPORTED_SESSION_CALL (C_SignMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl))
NOT_SUPPORTED_SESSION_CALL (C_SignMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sg, CK_ULONG_PTR sl))
NOT_SUPPORTED_SESSION_CALL (C_MessageSignFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED_SESSION_CALL (C_MessageVerifyInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED_SESSION_CALL (C_VerifyMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sg, CK_ULONG sl))
NOT_SUPPORTED_SESSION_CALL (C_VerifyMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl))
NOT_SUPPORTED_SESSION_CALL (C_VerifyMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sg, CK_ULONG sl))
NOT_SUPPORTED_SESSION_CALL (C_MessageVerifyFinal, (CK_SESSION_HANDLE h))

/* ------------------------------------------------------------ function tables */

static CK_RV sys_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);
static CK_RV sys_C_GetInterfaceList (CK_INTERFACE_PTR list, CK_ULONG_PTR count);
static CK_RV sys_C_GetInterface (CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                                 CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags);

#define COMMON_FUNCTIONS \
	.C_Initialize = sys_C_Initialize, \
	.C_Finalize = sys_C_Finalize, \
	.C_GetFunctionList = sys_C_GetFunctionList, \
	.C_GetSlotList = sys_C_GetSlotList, \
	.C_GetSlotInfo = sys_C_GetSlotInfo, \
	.C_GetTokenInfo = sys_C_GetTokenInfo, \
	.C_GetMechanismList = sys_C_GetMechanismList, \
	.C_GetMechanismInfo = sys_C_GetMechanismInfo, \
	.C_InitToken = sys_C_InitToken, \
	.C_InitPIN = sys_C_InitPIN, \
	.C_SetPIN = sys_C_SetPIN, \
	.C_OpenSession = sys_C_OpenSession, \
	.C_CloseSession = sys_C_CloseSession, \
	.C_CloseAllSessions = sys_C_CloseAllSessions, \
	.C_GetSessionInfo = sys_C_GetSessionInfo, \
	.C_GetOperationState = sys_C_GetOperationState, \
	.C_SetOperationState = sys_C_SetOperationState, \
	.C_Login = sys_C_Login, \
	.C_Logout = sys_C_Logout, \
	.C_CreateObject = sys_C_CreateObject, \
	.C_CopyObject = sys_C_CopyObject, \
	.C_DestroyObject = sys_C_DestroyObject, \
	.C_GetObjectSize = sys_C_GetObjectSize, \
	.C_GetAttributeValue = sys_C_GetAttributeValue, \
	.C_SetAttributeValue = sys_C_SetAttributeValue, \
	.C_FindObjectsInit = sys_C_FindObjectsInit, \
	.C_FindObjects = sys_C_FindObjects, \
	.C_FindObjectsFinal = sys_C_FindObjectsFinal, \
	.C_EncryptInit = sys_C_EncryptInit, \
	.C_Encrypt = sys_C_Encrypt, \
	.C_EncryptUpdate = sys_C_EncryptUpdate, \
	.C_EncryptFinal = sys_C_EncryptFinal, \
	.C_DecryptInit = sys_C_DecryptInit, \
	.C_Decrypt = sys_C_Decrypt, \
	.C_DecryptUpdate = sys_C_DecryptUpdate, \
	.C_DecryptFinal = sys_C_DecryptFinal, \
	.C_DigestInit = sys_C_DigestInit, \
	.C_Digest = sys_C_Digest, \
	.C_DigestUpdate = sys_C_DigestUpdate, \
	.C_DigestKey = sys_C_DigestKey, \
	.C_DigestFinal = sys_C_DigestFinal, \
	.C_SignInit = sys_C_SignInit, \
	.C_Sign = sys_C_Sign, \
	.C_SignUpdate = sys_C_SignUpdate, \
	.C_SignFinal = sys_C_SignFinal, \
	.C_SignRecoverInit = sys_C_SignRecoverInit, \
	.C_SignRecover = sys_C_SignRecover, \
	.C_VerifyInit = sys_C_VerifyInit, \
	.C_Verify = sys_C_Verify, \
	.C_VerifyUpdate = sys_C_VerifyUpdate, \
	.C_VerifyFinal = sys_C_VerifyFinal, \
	.C_VerifyRecoverInit = sys_C_VerifyRecoverInit, \
	.C_VerifyRecover = sys_C_VerifyRecover, \
	.C_DigestEncryptUpdate = sys_C_DigestEncryptUpdate, \
	.C_DecryptDigestUpdate = sys_C_DecryptDigestUpdate, \
	.C_SignEncryptUpdate = sys_C_SignEncryptUpdate, \
	.C_DecryptVerifyUpdate = sys_C_DecryptVerifyUpdate, \
	.C_GenerateKey = sys_C_GenerateKey, \
	.C_GenerateKeyPair = sys_C_GenerateKeyPair, \
	.C_WrapKey = sys_C_WrapKey, \
	.C_UnwrapKey = sys_C_UnwrapKey, \
	.C_DeriveKey = sys_C_DeriveKey, \
	.C_SeedRandom = sys_C_SeedRandom, \
	.C_GenerateRandom = sys_C_GenerateRandom, \
	.C_GetFunctionStatus = sys_C_GetFunctionStatus, \
	.C_CancelFunction = sys_C_CancelFunction, \
	.C_WaitForSlotEvent = sys_C_WaitForSlotEvent

static CK_FUNCTION_LIST functions_v2 = {
	.version = { 2, 40 },
	.C_GetInfo = sys_C_GetInfo_v2,
	COMMON_FUNCTIONS,
};

static CK_FUNCTION_LIST_3_0 functions_v3 = {
	.version = { 3, 0 },
	.C_GetInfo = sys_C_GetInfo,
	COMMON_FUNCTIONS,
	.C_GetInterfaceList = sys_C_GetInterfaceList,
	.C_GetInterface = sys_C_GetInterface,
	.C_LoginUser = sys_C_LoginUser,
	.C_SessionCancel = sys_C_SessionCancel,
	.C_MessageEncryptInit = sys_C_MessageEncryptInit,
	.C_EncryptMessage = sys_C_EncryptMessage,
	.C_EncryptMessageBegin = sys_C_EncryptMessageBegin,
	.C_EncryptMessageNext = sys_C_EncryptMessageNext,
	.C_MessageEncryptFinal = sys_C_MessageEncryptFinal,
	.C_MessageDecryptInit = sys_C_MessageDecryptInit,
	.C_DecryptMessage = sys_C_DecryptMessage,
	.C_DecryptMessageBegin = sys_C_DecryptMessageBegin,
	.C_DecryptMessageNext = sys_C_DecryptMessageNext,
	.C_MessageDecryptFinal = sys_C_MessageDecryptFinal,
	.C_MessageSignInit = sys_C_MessageSignInit,
	.C_SignMessage = sys_C_SignMessage,
	.C_SignMessageBegin = sys_C_SignMessageBegin,
	.C_SignMessageNext = sys_C_SignMessageNext,
	.C_MessageSignFinal = sys_C_MessageSignFinal,
	.C_MessageVerifyInit = sys_C_MessageVerifyInit,
	.C_VerifyMessage = sys_C_VerifyMessage,
	.C_VerifyMessageBegin = sys_C_VerifyMessageBegin,
	.C_VerifyMessageNext = sys_C_VerifyMessageNext,
	.C_MessageVerifyFinal = sys_C_MessageVerifyFinal,
};

static CK_UTF8CHAR interface_name[] = "PKCS 11";

/* Newest first: an application asking for "any" gets 3.0. */
static CK_INTERFACE interfaces[] = {
	{ interface_name, &functions_v3, 0 },
	{ interface_name, &functions_v2, 0 },
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

static CK_RV
sys_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	if (!list)
		return CKR_ARGUMENTS_BAD;
	*list = &functions_v2;
	return CKR_OK;
}

static CK_RV
sys_C_GetInterfaceList (CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	if (!count)
		return CKR_ARGUMENTS_BAD;
	if (!list) {
		*count = N_INTERFACES;
		return CKR_OK;
	}
	if (*count < N_INTERFACES) {
		*count = N_INTERFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy (list, interfaces, sizeof interfaces);
	*count = N_INTERFACES;
	return CKR_OK;
}

static CK_RV
sys_C_GetInterface (CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface,
                    CK_FLAGS flags)
{
	if (!iface)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < N_INTERFACES; i++) {
		const CK_VERSION *v = &((CK_FUNCTION_LIST *)interfaces[i].pFunctionList)->version;
		if (name && strcmp ((const char *)name, (const char *)interface_name) != 0)
			continue;
		if (version && (version->major != v->major || version->minor != v->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		*iface = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD; /* 3.0, 5.4: no matching interface */
}

/* ------------------------------------------------------------ exports */

EXPORT CK_RV C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);
EXPORT CK_RV C_GetInterfaceList (CK_INTERFACE_PTR list, CK_ULONG_PTR count);
EXPORT CK_RV C_GetInterface (CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                             CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags);

CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	return sys_C_GetFunctionList (list);
}

CK_RV
C_GetInterfaceList (CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	return sys_C_GetInterfaceList (list, count);
}

CK_RV
C_GetInterface (CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface,
                CK_FLAGS flags)
{
	return sys_C_GetInterface (name, version, iface, flags);
}
