/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "module-test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ TAP */

static pthread_mutex_t tap_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int tap_n;
static unsigned int tap_failed;

static bool report (bool cond, const char *detail, const char *fmt, va_list ap)
	__attribute__ ((format (printf, 3, 0)));

static bool
report (bool cond, const char *detail, const char *fmt, va_list ap)
{
	pthread_mutex_lock (&tap_lock);
	tap_n++;
	if (!cond)
		tap_failed++;
	printf ("%sok %u - ", cond ? "" : "not ", tap_n);
	vprintf (fmt, ap);
	if (detail && *detail)
		printf (" (%s)", detail);
	printf ("\n");
	fflush (stdout);
	pthread_mutex_unlock (&tap_lock);
	return cond;
}

bool
t_ok (bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start (ap, fmt);
	report (cond, NULL, fmt, ap);
	va_end (ap);
	return cond;
}

bool
t_rv (CK_RV got, CK_RV want, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	if (got == want)
		snprintf (detail, sizeof detail, "%s", rv_name (got));
	else
		snprintf (detail, sizeof detail, "got %s, want %s", rv_name (got), rv_name (want));
	va_start (ap, fmt);
	report (got == want, detail, fmt, ap);
	va_end (ap);
	return got == want;
}

bool
t_rv_any (CK_RV got, const CK_RV *want, size_t n, const char *fmt, ...)
{
	char detail[320];
	size_t o;
	bool match = false;
	va_list ap;

	for (size_t i = 0; i < n; i++)
		match = match || got == want[i];
	if (match) {
		snprintf (detail, sizeof detail, "%s", rv_name (got));
	} else {
		o = (size_t)snprintf (detail, sizeof detail, "got %s, want one of", rv_name (got));
		for (size_t i = 0; i < n && o < sizeof detail; i++)
			o += (size_t)snprintf (detail + o, sizeof detail - o, " %s", rv_name (want[i]));
	}
	va_start (ap, fmt);
	report (match, detail, fmt, ap);
	va_end (ap);
	return match;
}

void
t_diag (const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock (&tap_lock);
	printf ("# ");
	va_start (ap, fmt);
	vprintf (fmt, ap);
	va_end (ap);
	printf ("\n");
	fflush (stdout);
	pthread_mutex_unlock (&tap_lock);
}

void
t_bail (const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock (&tap_lock);
	printf ("Bail out! ");
	va_start (ap, fmt);
	vprintf (fmt, ap);
	va_end (ap);
	printf ("\n");
	fflush (stdout);
	pthread_mutex_unlock (&tap_lock);
	exit (99);
}

int
t_failures (void)
{
	int n;
	pthread_mutex_lock (&tap_lock);
	n = (int)tap_failed;
	pthread_mutex_unlock (&tap_lock);
	return n;
}

void
t_get_counts (unsigned int *n, unsigned int *failed)
{
	pthread_mutex_lock (&tap_lock);
	*n = tap_n;
	*failed = tap_failed;
	pthread_mutex_unlock (&tap_lock);
}

void
t_set_counts (unsigned int n, unsigned int failed)
{
	pthread_mutex_lock (&tap_lock);
	tap_n = n;
	tap_failed = failed;
	pthread_mutex_unlock (&tap_lock);
}

int
t_done (void)
{
	pthread_mutex_lock (&tap_lock);
	printf ("1..%u\n", tap_n);
	if (tap_failed)
		printf ("# %u of %u checks failed\n", tap_failed, tap_n);
	fflush (stdout);
	pthread_mutex_unlock (&tap_lock);
	return tap_failed ? 1 : 0;
}

const char *
rv_name (CK_RV rv)
{
	static _Thread_local char buf[32];
	switch (rv) {
#define X(c) case c: return #c;
	X (CKR_OK) X (CKR_HOST_MEMORY) X (CKR_SLOT_ID_INVALID) X (CKR_GENERAL_ERROR)
	X (CKR_FUNCTION_FAILED) X (CKR_ARGUMENTS_BAD) X (CKR_CANT_LOCK)
	X (CKR_ATTRIBUTE_READ_ONLY) X (CKR_ATTRIBUTE_SENSITIVE) X (CKR_ATTRIBUTE_TYPE_INVALID)
	X (CKR_ATTRIBUTE_VALUE_INVALID) X (CKR_DATA_INVALID) X (CKR_DATA_LEN_RANGE)
	X (CKR_DEVICE_ERROR) X (CKR_ENCRYPTED_DATA_INVALID) X (CKR_ENCRYPTED_DATA_LEN_RANGE)
	X (CKR_FUNCTION_NOT_PARALLEL) X (CKR_FUNCTION_NOT_SUPPORTED) X (CKR_KEY_HANDLE_INVALID)
	X (CKR_KEY_TYPE_INCONSISTENT) X (CKR_KEY_FUNCTION_NOT_PERMITTED)
	X (CKR_KEY_NOT_WRAPPABLE) X (CKR_KEY_UNEXTRACTABLE) X (CKR_MECHANISM_INVALID)
	X (CKR_MECHANISM_PARAM_INVALID) X (CKR_OBJECT_HANDLE_INVALID) X (CKR_OPERATION_ACTIVE)
	X (CKR_OPERATION_NOT_INITIALIZED) X (CKR_PIN_INCORRECT) X (CKR_PIN_LEN_RANGE)
	X (CKR_PIN_LOCKED) X (CKR_SESSION_CLOSED) X (CKR_SESSION_HANDLE_INVALID)
	X (CKR_SESSION_PARALLEL_NOT_SUPPORTED) X (CKR_SESSION_READ_ONLY) X (CKR_SESSION_EXISTS)
	X (CKR_SESSION_READ_ONLY_EXISTS) X (CKR_SESSION_READ_WRITE_SO_EXISTS)
	X (CKR_SIGNATURE_INVALID) X (CKR_SIGNATURE_LEN_RANGE) X (CKR_TEMPLATE_INCOMPLETE)
	X (CKR_TEMPLATE_INCONSISTENT) X (CKR_TOKEN_NOT_PRESENT)
	X (CKR_UNWRAPPING_KEY_HANDLE_INVALID) X (CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
	X (CKR_USER_ALREADY_LOGGED_IN) X (CKR_USER_NOT_LOGGED_IN) X (CKR_USER_PIN_NOT_INITIALIZED)
	X (CKR_USER_TYPE_INVALID) X (CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	X (CKR_WRAPPED_KEY_INVALID) X (CKR_WRAPPED_KEY_LEN_RANGE)
	X (CKR_WRAPPING_KEY_HANDLE_INVALID) X (CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
	X (CKR_BUFFER_TOO_SMALL) X (CKR_CRYPTOKI_NOT_INITIALIZED)
	X (CKR_CRYPTOKI_ALREADY_INITIALIZED) X (CKR_FUNCTION_REJECTED)
	X (CKR_CANCEL) X (CKR_NEED_TO_CREATE_THREADS) X (CKR_KEY_INDIGESTIBLE)
	X (CKR_KEY_SIZE_RANGE) X (CKR_TOKEN_NOT_RECOGNIZED) X (CKR_TOKEN_WRITE_PROTECTED)
	X (CKR_RANDOM_NO_RNG) X (CKR_DOMAIN_PARAMS_INVALID) X (CKR_MUTEX_BAD)
	X (CKR_MUTEX_NOT_LOCKED) X (CKR_SAVED_STATE_INVALID) X (CKR_STATE_UNSAVEABLE)
	X (CKR_INFORMATION_SENSITIVE) X (CKR_KEY_NOT_NEEDED) X (CKR_KEY_CHANGED) X (CKR_KEY_NEEDED)
	X (CKR_NO_EVENT) X (CKR_ACTION_PROHIBITED) X (CKR_PIN_INVALID) X (CKR_PIN_EXPIRED)
	X (CKR_DEVICE_MEMORY) X (CKR_DEVICE_REMOVED) X (CKR_SESSION_COUNT)
	X (CKR_OPERATION_CANCEL_FAILED)
#undef X
	default:
		snprintf (buf, sizeof buf, "0x%lx", (unsigned long)rv);
		return buf;
	}
}

/* ------------------------------------------------------------ the module */

CK_FUNCTION_LIST_3_0 *F;
CK_FUNCTION_LIST *F2;
CK_C_GetFunctionList mt_get_function_list;
CK_C_GetInterfaceList mt_get_interface_list;
CK_C_GetInterface mt_get_interface;

const char *
mt_env (const char *name, const char *fallback)
{
	const char *v = getenv (name);
	return v && *v ? v : fallback;
}

const char *
mt_pin (void)
{
	return mt_env ("WARDEN_PIN", "5678");
}

const char *
mt_so_pin (void)
{
	return mt_env ("WARDEN_SO_PIN", "87654321");
}

/* Is @sym defined in the module file itself?  dlsym on a handle also
 * searches the module's dependencies, and libp11-kit (the proxy) exports a
 * C_GetFunctionList of its own: a module that lost its export would
 * otherwise be replaced silently by p11-kit's proxy. */
bool
mt_module_defines (void *dl, const char *sym)
{
	const char *path = getenv ("P11W_MODULE");
	struct stat want, got;
	Dl_info info;
	void *p = dlsym (dl, sym);

	if (!p || !path || !dladdr (p, &info) || !info.dli_fname)
		return false;
	if (stat (path, &want) != 0 || stat (info.dli_fname, &got) != 0)
		return false;
	return want.st_dev == got.st_dev && want.st_ino == got.st_ino;
}

void *
mt_load (void)
{
	const char *path = getenv ("P11W_MODULE");
	CK_INTERFACE *iface = NULL;
	CK_VERSION v3 = { 3, 0 };
	void *dl;

	if (!path || !*path)
		t_bail ("P11W_MODULE is not set");
	dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		t_bail ("dlopen %s: %s", path, dlerror ());
	if (!mt_module_defines (dl, "C_GetFunctionList") ||
	    !mt_module_defines (dl, "C_GetInterfaceList") ||
	    !mt_module_defines (dl, "C_GetInterface"))
		t_bail ("%s does not export the discovery functions itself", path);
	/* Object pointers to function pointers: POSIX guarantees dlsym works. */
	*(void **)&mt_get_function_list = dlsym (dl, "C_GetFunctionList");
	*(void **)&mt_get_interface_list = dlsym (dl, "C_GetInterfaceList");
	*(void **)&mt_get_interface = dlsym (dl, "C_GetInterface");
	if (mt_get_function_list (&F2) != CKR_OK || !F2)
		t_bail ("C_GetFunctionList failed");
	if (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", &v3, &iface, 0) != CKR_OK || !iface)
		t_bail ("C_GetInterface(PKCS 11, 3.0) failed");
	F = iface->pFunctionList;
	return dl;
}

CK_RV
mt_initialize (void)
{
	CK_C_INITIALIZE_ARGS args;
	memset (&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	return F->C_Initialize (&args);
}

CK_SLOT_ID
mt_slot (const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;
	char want[32];
	size_t len = strlen (label);

	memset (want, ' ', sizeof want);
	memcpy (want, label, len < sizeof want ? len : sizeof want);
	if (F->C_GetSlotList (CK_TRUE, slots, &n) != CKR_OK)
		t_bail ("C_GetSlotList failed");
	for (CK_ULONG i = 0; i < n; i++) {
		if (F->C_GetTokenInfo (slots[i], &ti) == CKR_OK &&
		    memcmp (ti.label, want, sizeof want) == 0)
			return slots[i];
	}
	t_bail ("no token labelled '%s'", label);
}

CK_SESSION_HANDLE
mt_open (CK_SLOT_ID slot, bool rw)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_RV rv = F->C_OpenSession (slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL,
	                             NULL, &s);
	if (rv != CKR_OK)
		t_bail ("C_OpenSession: %s", rv_name (rv));
	return s;
}

CK_OBJECT_HANDLE
mt_find (CK_SESSION_HANDLE s, CK_OBJECT_CLASS klass, const char *label)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_LABEL, (void *)label, strlen (label) },
	};
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;

	if (F->C_FindObjectsInit (s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (F->C_FindObjects (s, h, 2, &n) != CKR_OK)
		n = 0;
	F->C_FindObjectsFinal (s);
	return n == 1 ? h[0] : CK_INVALID_HANDLE;
}

CK_ULONG
mt_count_objects (CK_SESSION_HANDLE s)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n, total = 0;

	if (F->C_FindObjectsInit (s, NULL, 0) != CKR_OK)
		return (CK_ULONG)-1;
	do {
		n = 0;
		if (F->C_FindObjects (s, h, 64, &n) != CKR_OK) {
			total = (CK_ULONG)-1;
			break;
		}
		total += n;
	} while (n > 0);
	F->C_FindObjectsFinal (s);
	return total;
}

CK_STATE
mt_state (CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	if (F->C_GetSessionInfo (s, &si) != CKR_OK)
		return (CK_STATE)-1;
	return si.state;
}

static void
make_rsa (CK_SESSION_HANDLE s, const char *label, CK_BYTE id)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE;
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 0x01, 0x00, 0x01 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, strlen (label) },
		{ CKA_ID, &id, 1 },
		{ CKA_MODULUS_BITS, &bits, sizeof bits },
		{ CKA_PUBLIC_EXPONENT, e, sizeof e },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, strlen (label) },
		{ CKA_ID, &id, 1 },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv = F->C_GenerateKeyPair (s, &mech, pub, sizeof pub / sizeof pub[0], priv,
	                                 sizeof priv / sizeof priv[0], &hpub, &hpriv);
	if (rv != CKR_OK)
		t_bail ("C_GenerateKeyPair %s: %s", label, rv_name (rv));
}

static void
make_aes (CK_SESSION_HANDLE s, const char *label, CK_BYTE id)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, strlen (label) },
		{ CKA_ID, &id, 1 },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_DERIVE, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE h;
	CK_RV rv = F->C_GenerateKey (s, &mech, t, sizeof t / sizeof t[0], &h);
	if (rv != CKR_OK)
		t_bail ("C_GenerateKey %s: %s", label, rv_name (rv));
}

static void
make_ec (CK_SESSION_HANDLE s, const char *label, CK_BYTE id)
{
	/* DER of the OID prime256v1 (1.2.840.10045.3.1.7). */
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, strlen (label) },
		{ CKA_ID, &id, 1 },
		{ CKA_EC_PARAMS, (void *)p256, sizeof p256 },
		{ CKA_VERIFY, &yes, sizeof yes },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, strlen (label) },
		{ CKA_ID, &id, 1 },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_DERIVE, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv = F->C_GenerateKeyPair (s, &mech, pub, sizeof pub / sizeof pub[0], priv,
	                                 sizeof priv / sizeof priv[0], &hpub, &hpriv);
	if (rv != CKR_OK)
		t_bail ("C_GenerateKeyPair %s: %s", label, rv_name (rv));
}

void
mt_make_rsa (CK_SESSION_HANDLE s, const char *label, CK_BYTE id)
{
	make_rsa (s, label, id);
}

void
mt_provision (CK_SESSION_HANDLE s)
{
	if (!mt_find (s, CKO_PRIVATE_KEY, KEY_GATED_RSA))
		make_rsa (s, KEY_GATED_RSA, 1);
	if (!mt_find (s, CKO_PRIVATE_KEY, KEY_OPEN_RSA))
		make_rsa (s, KEY_OPEN_RSA, 2);
	if (!mt_find (s, CKO_SECRET_KEY, KEY_GATED_AES))
		make_aes (s, KEY_GATED_AES, 3);
	if (!mt_find (s, CKO_SECRET_KEY, KEY_OPEN_AES))
		make_aes (s, KEY_OPEN_AES, 4);
	if (!mt_find (s, CKO_SECRET_KEY, KEY_OPEN_AES_B))
		make_aes (s, KEY_OPEN_AES_B, 5);
	if (!mt_find (s, CKO_PRIVATE_KEY, KEY_GATED_EC))
		make_ec (s, KEY_GATED_EC, 6);
	if (!mt_find (s, CKO_PRIVATE_KEY, KEY_OPEN_EC))
		make_ec (s, KEY_OPEN_EC, 7);
}

void
mt_keys (CK_SESSION_HANDLE s, struct mt_keys *k)
{
	k->gated_priv = mt_find (s, CKO_PRIVATE_KEY, KEY_GATED_RSA);
	k->gated_pub = mt_find (s, CKO_PUBLIC_KEY, KEY_GATED_RSA);
	k->open_priv = mt_find (s, CKO_PRIVATE_KEY, KEY_OPEN_RSA);
	k->open_pub = mt_find (s, CKO_PUBLIC_KEY, KEY_OPEN_RSA);
	k->gated_aes = mt_find (s, CKO_SECRET_KEY, KEY_GATED_AES);
	k->open_aes = mt_find (s, CKO_SECRET_KEY, KEY_OPEN_AES);
	k->open_aes_b = mt_find (s, CKO_SECRET_KEY, KEY_OPEN_AES_B);
	k->gated_ec = mt_find (s, CKO_PRIVATE_KEY, KEY_GATED_EC);
	k->gated_ec_pub = mt_find (s, CKO_PUBLIC_KEY, KEY_GATED_EC);
	k->open_ec = mt_find (s, CKO_PRIVATE_KEY, KEY_OPEN_EC);
	k->open_ec_pub = mt_find (s, CKO_PUBLIC_KEY, KEY_OPEN_EC);
	if (!k->gated_priv || !k->gated_pub || !k->open_priv || !k->open_pub || !k->gated_aes ||
	    !k->open_aes || !k->open_aes_b || !k->gated_ec || !k->gated_ec_pub || !k->open_ec ||
	    !k->open_ec_pub)
		t_bail ("a test key is missing (log in and provision first)");
}

void
mt_login (CK_SESSION_HANDLE s)
{
	const char *pin = mt_pin ();
	CK_RV rv = F->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen (pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		t_bail ("C_Login: %s", rv_name (rv));
}

/* ------------------------------------------------------------ every entry point */

#define EXPECT(call, name) t_rv ((call), want, "%s: " name, what)
#define EXPECT_STUB(call, name) t_rv ((call), stub, "%s: " name, what)

void
mt_check_session_calls (CK_SESSION_HANDLE h, CK_RV want, const char *what)
{
	CK_BYTE in[32] = { 0 }, out[512];
	CK_ULONG len = sizeof out, n = 0;
	CK_MECHANISM digest = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM aes = { CKM_AES_ECB, NULL, 0 };
	CK_MECHANISM sign = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM raw = { CKM_RSA_X_509, NULL, 0 };
	CK_MECHANISM keygen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM pairgen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_MECHANISM derive = { CKM_SHA256_KEY_DERIVATION, NULL, 0 };
	CK_UTF8CHAR pin[] = "00000000";
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE, obj2 = CK_INVALID_HANDLE, objs[4];
	CK_ATTRIBUTE a = { CKA_LABEL, out, sizeof out };
	CK_SESSION_INFO si;
	const CK_OBJECT_HANDLE bogus = MT_BOGUS_HANDLE;
	/* Once initialised, the stubs answer for themselves. */
	const bool ni = want == CKR_CRYPTOKI_NOT_INITIALIZED;
	const CK_RV stub = ni ? want : CKR_FUNCTION_NOT_SUPPORTED;
	const CK_RV legacy = ni ? want : CKR_FUNCTION_NOT_PARALLEL;

	EXPECT (F->C_InitPIN (h, pin, 8), "C_InitPIN");
	EXPECT (F->C_SetPIN (h, pin, 8, pin, 8), "C_SetPIN");
	EXPECT (F->C_GetSessionInfo (h, &si), "C_GetSessionInfo");
	EXPECT_STUB (F->C_GetOperationState (h, out, &len), "C_GetOperationState");
	EXPECT_STUB (F->C_SetOperationState (h, out, 16, 0, 0), "C_SetOperationState");
	EXPECT (F->C_Login (h, CKU_USER, pin, 8), "C_Login");
	EXPECT (F->C_LoginUser (h, CKU_USER, pin, 8, NULL, 0), "C_LoginUser");
	EXPECT (F->C_Logout (h), "C_Logout");
	EXPECT (F->C_CreateObject (h, &a, 1, &obj), "C_CreateObject");
	EXPECT (F->C_CopyObject (h, bogus, &a, 1, &obj), "C_CopyObject");
	EXPECT (F->C_DestroyObject (h, bogus), "C_DestroyObject");
	EXPECT (F->C_GetObjectSize (h, bogus, &n), "C_GetObjectSize");
	EXPECT (F->C_GetAttributeValue (h, bogus, &a, 1), "C_GetAttributeValue");
	EXPECT (F->C_SetAttributeValue (h, bogus, &a, 1), "C_SetAttributeValue");
	EXPECT (F->C_FindObjectsInit (h, NULL, 0), "C_FindObjectsInit");
	EXPECT (F->C_FindObjects (h, objs, 4, &n), "C_FindObjects");
	EXPECT (F->C_FindObjectsFinal (h), "C_FindObjectsFinal");
	EXPECT (F->C_EncryptInit (h, &aes, bogus), "C_EncryptInit");
	EXPECT (F->C_Encrypt (h, in, 16, out, &len), "C_Encrypt");
	EXPECT (F->C_EncryptUpdate (h, in, 16, out, &len), "C_EncryptUpdate");
	EXPECT (F->C_EncryptFinal (h, out, &len), "C_EncryptFinal");
	EXPECT (F->C_DecryptInit (h, &aes, bogus), "C_DecryptInit");
	EXPECT (F->C_Decrypt (h, in, 16, out, &len), "C_Decrypt");
	EXPECT (F->C_DecryptUpdate (h, in, 16, out, &len), "C_DecryptUpdate");
	EXPECT (F->C_DecryptFinal (h, out, &len), "C_DecryptFinal");
	EXPECT (F->C_DigestInit (h, &digest), "C_DigestInit");
	EXPECT (F->C_Digest (h, in, 16, out, &len), "C_Digest");
	EXPECT (F->C_DigestUpdate (h, in, 16), "C_DigestUpdate");
	EXPECT (F->C_DigestKey (h, bogus), "C_DigestKey");
	EXPECT (F->C_DigestFinal (h, out, &len), "C_DigestFinal");
	EXPECT (F->C_SignInit (h, &sign, bogus), "C_SignInit");
	EXPECT (F->C_Sign (h, in, 16, out, &len), "C_Sign");
	EXPECT (F->C_SignUpdate (h, in, 16), "C_SignUpdate");
	EXPECT (F->C_SignFinal (h, out, &len), "C_SignFinal");
	EXPECT (F->C_SignRecoverInit (h, &raw, bogus), "C_SignRecoverInit");
	EXPECT (F->C_SignRecover (h, in, 16, out, &len), "C_SignRecover");
	EXPECT (F->C_VerifyInit (h, &sign, bogus), "C_VerifyInit");
	EXPECT (F->C_Verify (h, in, 16, out, 256), "C_Verify");
	EXPECT (F->C_VerifyUpdate (h, in, 16), "C_VerifyUpdate");
	EXPECT (F->C_VerifyFinal (h, out, 256), "C_VerifyFinal");
	EXPECT (F->C_VerifyRecoverInit (h, &raw, bogus), "C_VerifyRecoverInit");
	EXPECT (F->C_VerifyRecover (h, out, 256, in, &len), "C_VerifyRecover");
	EXPECT (F->C_DigestEncryptUpdate (h, in, 16, out, &len), "C_DigestEncryptUpdate");
	EXPECT (F->C_DecryptDigestUpdate (h, in, 16, out, &len), "C_DecryptDigestUpdate");
	EXPECT (F->C_SignEncryptUpdate (h, in, 16, out, &len), "C_SignEncryptUpdate");
	EXPECT (F->C_DecryptVerifyUpdate (h, in, 16, out, &len), "C_DecryptVerifyUpdate");
	EXPECT (F->C_GenerateKey (h, &keygen, &a, 1, &obj), "C_GenerateKey");
	EXPECT (F->C_GenerateKeyPair (h, &pairgen, &a, 1, &a, 1, &obj, &obj2), "C_GenerateKeyPair");
	EXPECT (F->C_WrapKey (h, &wrap, bogus, bogus, out, &len), "C_WrapKey");
	EXPECT (F->C_UnwrapKey (h, &wrap, bogus, in, 24, &a, 1, &obj), "C_UnwrapKey");
	EXPECT (F->C_DeriveKey (h, &derive, bogus, &a, 1, &obj), "C_DeriveKey");
	EXPECT (F->C_SeedRandom (h, in, 16), "C_SeedRandom");
	EXPECT (F->C_GenerateRandom (h, out, 16), "C_GenerateRandom");
	t_rv (F->C_GetFunctionStatus (h), legacy, "%s: C_GetFunctionStatus", what);
	t_rv (F->C_CancelFunction (h), legacy, "%s: C_CancelFunction", what);
	EXPECT (F->C_SessionCancel (h, CKF_SIGN), "C_SessionCancel");
	EXPECT_STUB (F->C_MessageEncryptInit (h, &aes, bogus), "C_MessageEncryptInit");
	EXPECT_STUB (F->C_EncryptMessage (h, in, 12, NULL, 0, in, 16, out, &len), "C_EncryptMessage");
	EXPECT_STUB (F->C_EncryptMessageBegin (h, in, 12, NULL, 0), "C_EncryptMessageBegin");
	EXPECT_STUB (F->C_EncryptMessageNext (h, in, 12, in, 16, out, &len, 0), "C_EncryptMessageNext");
	EXPECT_STUB (F->C_MessageEncryptFinal (h), "C_MessageEncryptFinal");
	EXPECT_STUB (F->C_MessageDecryptInit (h, &aes, bogus), "C_MessageDecryptInit");
	EXPECT_STUB (F->C_DecryptMessage (h, in, 12, NULL, 0, in, 16, out, &len), "C_DecryptMessage");
	EXPECT_STUB (F->C_DecryptMessageBegin (h, in, 12, NULL, 0), "C_DecryptMessageBegin");
	EXPECT_STUB (F->C_DecryptMessageNext (h, in, 12, in, 16, out, &len, 0), "C_DecryptMessageNext");
	EXPECT_STUB (F->C_MessageDecryptFinal (h), "C_MessageDecryptFinal");
	EXPECT_STUB (F->C_MessageSignInit (h, &sign, bogus), "C_MessageSignInit");
	EXPECT_STUB (F->C_SignMessage (h, NULL, 0, in, 16, out, &len), "C_SignMessage");
	EXPECT_STUB (F->C_SignMessageBegin (h, NULL, 0), "C_SignMessageBegin");
	EXPECT_STUB (F->C_SignMessageNext (h, NULL, 0, in, 16, out, &len), "C_SignMessageNext");
	EXPECT_STUB (F->C_MessageSignFinal (h), "C_MessageSignFinal");
	EXPECT_STUB (F->C_MessageVerifyInit (h, &sign, bogus), "C_MessageVerifyInit");
	EXPECT_STUB (F->C_VerifyMessage (h, NULL, 0, in, 16, out, 256), "C_VerifyMessage");
	EXPECT_STUB (F->C_VerifyMessageBegin (h, NULL, 0), "C_VerifyMessageBegin");
	EXPECT_STUB (F->C_VerifyMessageNext (h, NULL, 0, in, 16, out, 256), "C_VerifyMessageNext");
	EXPECT_STUB (F->C_MessageVerifyFinal (h), "C_MessageVerifyFinal");
	EXPECT (F->C_CloseSession (h), "C_CloseSession");
}

void
mt_check_not_initialized (CK_SLOT_ID slot, CK_SESSION_HANDLE h, const char *what)
{
	const CK_RV want = CKR_CRYPTOKI_NOT_INITIALIZED;
	CK_UTF8CHAR pin[] = "00000000";
	CK_UTF8CHAR label[32];
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_INFO mi;
	CK_SLOT_ID ev;
	CK_SESSION_HANDLE s2;
	CK_FUNCTION_LIST *fl = NULL;
	CK_INTERFACE *iface = NULL;
	CK_ULONG n = 0;

	memset (label, ' ', sizeof label);
	EXPECT (F->C_GetInfo (&info), "C_GetInfo (3.0 list)");
	EXPECT (F2->C_GetInfo (&info), "C_GetInfo (2.40 list)");
	EXPECT (F->C_GetSlotList (CK_TRUE, NULL, &n), "C_GetSlotList");
	EXPECT (F->C_GetSlotInfo (slot, &si), "C_GetSlotInfo");
	EXPECT (F->C_GetTokenInfo (slot, &ti), "C_GetTokenInfo");
	EXPECT (F->C_GetMechanismList (slot, NULL, &n), "C_GetMechanismList");
	EXPECT (F->C_GetMechanismInfo (slot, CKM_SHA256, &mi), "C_GetMechanismInfo");
	EXPECT (F->C_InitToken (MT_BOGUS_SLOT, pin, 8, label), "C_InitToken");
	EXPECT (F->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), "C_OpenSession");
	EXPECT (F->C_CloseAllSessions (slot), "C_CloseAllSessions");
	EXPECT (F->C_WaitForSlotEvent (CKF_DONT_BLOCK, &ev, NULL), "C_WaitForSlotEvent");
	mt_check_session_calls (h, want, what);
	EXPECT (F->C_Finalize (NULL), "C_Finalize");
	t_rv (mt_get_function_list (&fl), CKR_OK, "%s: C_GetFunctionList still works", what);
	t_rv (mt_get_interface_list (NULL, &n), CKR_OK, "%s: C_GetInterfaceList still works", what);
	t_rv (mt_get_interface (NULL, NULL, &iface, 0), CKR_OK, "%s: C_GetInterface still works",
	      what);
}
