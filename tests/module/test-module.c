/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-module: p11-warden as an application sees it.
 *
 * The module is dlopen'ed and reached only through its three exported
 * discovery functions.  Checked, in order: the export map and both function
 * tables; every entry point before C_Initialize; the C_Initialize and
 * C_Finalize argument rules; NULL and garbage arguments on every entry
 * point; the two-call buffer convention; operation state (including the
 * front's recovery from SoftHSM's habit of keeping an operation after an
 * error); login and session states; the gate, on every release path of a
 * gated key and on the same paths of an ungated key; C_Finalize.
 *
 * Setup (tests/module/module-env.sh): slot `hsm` (token WARDEN_LABEL, user
 * PIN WARDEN_PIN) whose keys are gated except the open-* ones, and slot
 * `spare` (SPARE_LABEL), uninitialised, for the PIN lockout checks.
 */
#include "config.h"

#include "module-test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

static CK_SLOT_ID slot;              /* the gated slot */
static CK_SLOT_ID spare;             /* the uninitialised one */
static CK_SESSION_HANDLE rw;         /* R/W user session on `slot` */
static struct mt_keys k;

static CK_BYTE data[] = "p11-warden module test: the data to sign and encrypt";

/* ------------------------------------------------------------ small helpers */

/* An RSA PKCS#1 v1.5 signature over @data with @key. */
static CK_RV
sign_with (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type, CK_BYTE *sig,
           CK_ULONG *sig_len)
{
	CK_MECHANISM m = { type, NULL, 0 };
	CK_RV rv = F->C_SignInit (s, &m, key);
	if (rv != CKR_OK)
		return rv;
	return F->C_Sign (s, data, sizeof data, sig, sig_len);
}

/* Does a complete sign with the ungated RSA key work on @s? */
static bool
sign_works (CK_SESSION_HANDLE s)
{
	CK_BYTE sig[512];
	CK_ULONG len = sizeof sig;
	CK_RV rv = sign_with (s, k.open_priv, CKM_SHA256_RSA_PKCS, sig, &len);
	if (rv != CKR_OK)
		t_diag ("sign on the session: %s", rv_name (rv));
	return rv == CKR_OK && len == 256;
}

static CK_RV
encrypt_rsa (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const CK_BYTE *in, CK_ULONG in_len,
             CK_BYTE *out, CK_ULONG *out_len)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_RV rv = F->C_EncryptInit (s, &m, pub);
	if (rv != CKR_OK)
		return rv;
	return F->C_Encrypt (s, (CK_BYTE_PTR)in, in_len, out, out_len);
}

enum kind { K_NONE, K_DIGEST, K_ENCRYPT, K_DECRYPT, K_SIGN, K_VERIFY, K_FIND, K_COUNT };

/* Start and finish one operation of @kind on @s. */
static CK_RV
run_kind (CK_SESSION_HANDLE s, enum kind kind)
{
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM cbc = { CKM_AES_CBC_PAD, (CK_BYTE *)"0123456789abcdef", 16 };
	CK_MECHANISM pkcs = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE out[512], sig[512];
	CK_ULONG len = sizeof out, sig_len = sizeof sig, n;
	CK_OBJECT_HANDLE h[4];
	CK_RV rv = CKR_OK;

	switch (kind) {
	case K_DIGEST:
		if ((rv = F->C_DigestInit (s, &sha)) == CKR_OK)
			rv = F->C_Digest (s, data, sizeof data, out, &len);
		break;
	case K_ENCRYPT:
		if ((rv = F->C_EncryptInit (s, &cbc, k.open_aes)) == CKR_OK)
			rv = F->C_Encrypt (s, data, sizeof data, out, &len);
		break;
	case K_DECRYPT:
		/* 64 bytes of ciphertext from K_ENCRYPT's plaintext and key */
		if ((rv = F->C_EncryptInit (s, &cbc, k.open_aes)) != CKR_OK ||
		    (rv = F->C_Encrypt (s, data, sizeof data, out, &len)) != CKR_OK)
			break;
		n = len;
		len = sizeof out;
		if ((rv = F->C_DecryptInit (s, &cbc, k.open_aes)) == CKR_OK)
			rv = F->C_Decrypt (s, out, n, out, &len);
		break;
	case K_SIGN:
		if ((rv = F->C_SignInit (s, &pkcs, k.open_priv)) == CKR_OK)
			rv = F->C_Sign (s, data, sizeof data, sig, &sig_len);
		break;
	case K_VERIFY:
		if ((rv = F->C_SignInit (s, &pkcs, k.open_priv)) != CKR_OK ||
		    (rv = F->C_Sign (s, data, sizeof data, sig, &sig_len)) != CKR_OK)
			break;
		if ((rv = F->C_VerifyInit (s, &pkcs, k.open_pub)) == CKR_OK)
			rv = F->C_Verify (s, data, sizeof data, sig, sig_len);
		break;
	case K_FIND:
		if ((rv = F->C_FindObjectsInit (s, NULL, 0)) != CKR_OK)
			break;
		rv = F->C_FindObjects (s, h, 4, &n);
		if (rv == CKR_OK)
			rv = F->C_FindObjectsFinal (s);
		else
			F->C_FindObjectsFinal (s);
		break;
	case K_NONE:
	case K_COUNT:
		break;
	}
	return rv;
}

static const char *const kind_names[K_COUNT] = {
	"none", "digest", "encrypt", "decrypt", "sign", "verify", "find",
};

/*
 * Is the session idle, at the front and at the backend?  SoftHSM keeps one
 * operation per session whatever its kind, so an operation the front ended
 * but the backend kept makes the first Init of another kind fail with
 * CKR_OPERATION_ACTIVE.  Every other kind runs before @last, the kind under
 * test: an Init of the same kind could hide a stale operation (the front
 * retries it after ending the backend's).
 */
static bool
session_idle (CK_SESSION_HANDLE s, enum kind last)
{
	for (int i = K_NONE + 1; i <= K_COUNT; i++) {
		enum kind kind = i < K_COUNT ? (enum kind)i : last;
		CK_RV rv;
		if (kind == K_NONE || (i < K_COUNT && kind == last))
			continue;
		rv = run_kind (s, kind);
		if (rv != CKR_OK) {
			t_diag ("session not idle: %s: %s", kind_names[kind], rv_name (rv));
			return false;
		}
	}
	return true;
}

static CK_ULONG
count_objects (CK_SESSION_HANDLE s)
{
	return mt_count_objects (s);
}

/* ------------------------------------------------------------ exports and interfaces */

static void
test_exports (void *dl)
{
	static const char *const hidden[] = {
		"C_Initialize", "C_Finalize", "C_GetInfo", "C_OpenSession", "C_Login", "C_Decrypt",
		"C_UnwrapKey", "C_GetAttributeValue", "C_LoginUser", "C_SessionCancel",
		/* the core library's own functions */
		"gate_authorize", "session_acquire", "slots_open", "conf_load", "pin_verify",
		"log_error",
	};

	t_ok (mt_module_defines (dl, "C_GetFunctionList"), "export: C_GetFunctionList");
	t_ok (mt_module_defines (dl, "C_GetInterfaceList"), "export: C_GetInterfaceList");
	t_ok (mt_module_defines (dl, "C_GetInterface"), "export: C_GetInterface");
	/* dlsym on the module's handle also searches its dependencies; none
	 * of them defines these names, so anything found is an export. */
	for (size_t i = 0; i < N_ELEMS (hidden); i++)
		t_ok (dlsym (dl, hidden[i]) == NULL, "not exported: %s", hidden[i]);
}

/* Every slot of a function table, after the version. */
static void
check_table (const void *table, size_t size, size_t want_slots, const char *what)
{
	typedef void (*fn) (void);
	size_t first = offsetof (CK_FUNCTION_LIST, C_Initialize);
	size_t slots = (size - first) / sizeof (fn);
	size_t missing = 0;

	t_ok (slots == want_slots, "%s: %zu function slots (want %zu)", what, slots, want_slots);
	for (size_t i = 0; i < slots; i++) {
		fn f;
		memcpy (&f, (const char *)table + first + i * sizeof f, sizeof f);
		if (!f) {
			t_diag ("%s: slot %zu is NULL", what, i);
			missing++;
		}
	}
	t_ok (missing == 0, "%s: every function slot is filled", what);
}

static void
test_interfaces (void)
{
	CK_INTERFACE list[4];
	CK_INTERFACE *iface = NULL;
	CK_FUNCTION_LIST *fl = NULL;
	CK_VERSION v30 = { 3, 0 }, v240 = { 2, 40 }, v31 = { 3, 1 }, v220 = { 2, 20 };
	CK_ULONG n;

	/* C_GetInterfaceList: the two-call convention. */
	t_rv (mt_get_interface_list (NULL, NULL), CKR_ARGUMENTS_BAD, "C_GetInterfaceList (NULL, NULL)");
	n = 0;
	t_rv (mt_get_interface_list (NULL, &n), CKR_OK, "C_GetInterfaceList: count query");
	t_ok (n == 2, "C_GetInterfaceList: two interfaces (got %lu)", (unsigned long)n);
	n = 1;
	t_rv (mt_get_interface_list (list, &n), CKR_BUFFER_TOO_SMALL,
	      "C_GetInterfaceList: buffer of one");
	t_ok (n == 2, "C_GetInterfaceList: BUFFER_TOO_SMALL gives the count (got %lu)",
	      (unsigned long)n);
	n = 0;
	t_rv (mt_get_interface_list (list, &n), CKR_BUFFER_TOO_SMALL,
	      "C_GetInterfaceList: buffer of none");
	n = N_ELEMS (list);
	t_rv (mt_get_interface_list (list, &n), CKR_OK, "C_GetInterfaceList: large buffer");
	t_ok (n == 2, "C_GetInterfaceList: count set to two");
	t_ok (strcmp ((char *)list[0].pInterfaceName, "PKCS 11") == 0 &&
	      strcmp ((char *)list[1].pInterfaceName, "PKCS 11") == 0,
	      "C_GetInterfaceList: both named \"PKCS 11\"");
	t_ok (((CK_FUNCTION_LIST *)list[0].pFunctionList)->version.major == 3 &&
	      ((CK_FUNCTION_LIST *)list[0].pFunctionList)->version.minor == 0,
	      "C_GetInterfaceList: 3.0 first");
	t_ok (((CK_FUNCTION_LIST *)list[1].pFunctionList)->version.major == 2 &&
	      ((CK_FUNCTION_LIST *)list[1].pFunctionList)->version.minor == 40,
	      "C_GetInterfaceList: 2.40 second");
	t_ok (list[0].pFunctionList == (void *)F && list[1].pFunctionList == (void *)F2,
	      "C_GetInterfaceList: the same tables as C_GetInterface and C_GetFunctionList");

	/* C_GetInterface by name and version. */
	t_rv (mt_get_interface (NULL, NULL, &iface, 0), CKR_OK, "C_GetInterface (NULL, NULL)");
	t_ok (iface && iface->pFunctionList == (void *)F, "C_GetInterface (NULL, NULL): the 3.0 table");
	iface = NULL;
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &iface, 0), CKR_OK,
	      "C_GetInterface (\"PKCS 11\", NULL)");
	t_ok (iface && iface->pFunctionList == (void *)F, "C_GetInterface (\"PKCS 11\", NULL): 3.0");
	iface = NULL;
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &iface, 0), CKR_OK,
	      "C_GetInterface (\"PKCS 11\", 3.0)");
	t_ok (iface && iface->pFunctionList == (void *)F, "C_GetInterface 3.0: the 3.0 table");
	iface = NULL;
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK,
	      "C_GetInterface (\"PKCS 11\", 2.40)");
	t_ok (iface && iface->pFunctionList == (void *)F2 &&
	      ((CK_FUNCTION_LIST *)iface->pFunctionList)->version.minor == 40,
	      "C_GetInterface 2.40: the 2.40 table");
	iface = NULL;
	t_rv (mt_get_interface (NULL, &v240, &iface, 0), CKR_OK, "C_GetInterface (NULL, 2.40)");
	t_ok (iface && iface->pFunctionList == (void *)F2, "C_GetInterface (NULL, 2.40): 2.40");
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", NULL, NULL, 0), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: NULL out-pointer");
	iface = NULL;
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "Vendor p11-warden", NULL, &iface, 0),
	      CKR_ARGUMENTS_BAD, "C_GetInterface: unknown name");
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11 ", NULL, &iface, 0), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: name with a trailing blank");
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "", NULL, &iface, 0), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: empty name");
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &iface, 0), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: unknown version 3.1");
	t_rv (mt_get_interface ((CK_UTF8CHAR_PTR) "PKCS 11", &v220, &iface, 0), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: unknown version 2.20");
	t_rv (mt_get_interface (NULL, NULL, &iface, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD,
	      "C_GetInterface: no fork-safe interface is claimed");
	t_ok (iface == NULL, "C_GetInterface: the out-pointer is untouched on failure");

	/* C_GetFunctionList, and the tables' own discovery slots. */
	t_rv (mt_get_function_list (NULL), CKR_ARGUMENTS_BAD, "C_GetFunctionList (NULL)");
	t_ok (F2->version.major == 2 && F2->version.minor == 40, "C_GetFunctionList: version 2.40");
	t_rv (F->C_GetFunctionList (&fl), CKR_OK, "3.0 table: C_GetFunctionList");
	t_ok (fl == F2, "3.0 table: C_GetFunctionList gives the 2.40 table");
	n = 0;
	t_rv (F->C_GetInterfaceList (NULL, &n), CKR_OK, "3.0 table: C_GetInterfaceList");
	t_ok (n == 2, "3.0 table: C_GetInterfaceList counts two");
	iface = NULL;
	t_rv (F->C_GetInterface ((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK,
	      "3.0 table: C_GetInterface 2.40");
	t_ok (iface && iface->pFunctionList == (void *)F2, "3.0 table: C_GetInterface 2.40 table");

	check_table (F2, sizeof *F2, 68, "2.40 table");
	check_table (F, sizeof *F, 92, "3.0 table");
	/* The 3.0 table starts with the 2.40 one: the same functions. */
	t_ok (F->C_Initialize == F2->C_Initialize && F->C_Decrypt == F2->C_Decrypt &&
	      F->C_WaitForSlotEvent == F2->C_WaitForSlotEvent,
	      "the 3.0 table's 2.40 part is the 2.40 table's");
}

/* ------------------------------------------------------------ C_Initialize / C_Finalize */

static CK_RV
mutex_create (CK_VOID_PTR_PTR m)
{
	pthread_mutex_t *p = malloc (sizeof *p);
	if (!p)
		return CKR_HOST_MEMORY;
	pthread_mutex_init (p, NULL);
	*m = p;
	return CKR_OK;
}

static CK_RV
mutex_destroy (CK_VOID_PTR m)
{
	pthread_mutex_destroy (m);
	free (m);
	return CKR_OK;
}

static CK_RV
mutex_lock (CK_VOID_PTR m)
{
	return pthread_mutex_lock (m) == 0 ? CKR_OK : CKR_MUTEX_BAD;
}

static CK_RV
mutex_unlock (CK_VOID_PTR m)
{
	return pthread_mutex_unlock (m) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

static void
test_initialize (void)
{
	CK_C_INITIALIZE_ARGS args;
	CK_INFO info;
	int reserved = 0;

	t_rv (F->C_Finalize (NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize before C_Initialize");

	memset (&args, 0, sizeof args);
	args.pReserved = &reserved;
	t_rv (F->C_Initialize (&args), CKR_ARGUMENTS_BAD, "C_Initialize: pReserved not NULL");

	memset (&args, 0, sizeof args);
	args.CreateMutex = mutex_create;
	t_rv (F->C_Initialize (&args), CKR_ARGUMENTS_BAD, "C_Initialize: one mutex callback of four");
	args.DestroyMutex = mutex_destroy;
	args.LockMutex = mutex_lock;
	args.flags = CKF_OS_LOCKING_OK;
	t_rv (F->C_Initialize (&args), CKR_ARGUMENTS_BAD,
	      "C_Initialize: three mutex callbacks of four, with CKF_OS_LOCKING_OK");
	memset (&args, 0, sizeof args);
	args.UnlockMutex = mutex_unlock;
	t_rv (F->C_Initialize (&args), CKR_ARGUMENTS_BAD, "C_Initialize: only UnlockMutex");
	t_rv (F->C_GetInfo (&info), CKR_CRYPTOKI_NOT_INITIALIZED,
	      "a rejected C_Initialize leaves the module uninitialised");

	/* 3.0, 5.4 C_Initialize: callbacks without CKF_OS_LOCKING_OK mean the
	 * library must use the application's mutexes; the backends cannot. */
	memset (&args, 0, sizeof args);
	args.CreateMutex = mutex_create;
	args.DestroyMutex = mutex_destroy;
	args.LockMutex = mutex_lock;
	args.UnlockMutex = mutex_unlock;
	t_rv (F->C_Initialize (&args), CKR_CANT_LOCK,
	      "C_Initialize: mutex callbacks without CKF_OS_LOCKING_OK");
	args.flags = CKF_OS_LOCKING_OK;
	t_rv (F->C_Initialize (&args), CKR_OK,
	      "C_Initialize: mutex callbacks with CKF_OS_LOCKING_OK");
	t_rv (F->C_Initialize (&args), CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize twice");
	t_rv (F->C_Initialize (NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED,
	      "C_Initialize (NULL) when initialised");
	t_rv (F->C_Finalize (&reserved), CKR_ARGUMENTS_BAD, "C_Finalize (non-NULL)");
	t_rv (F->C_GetInfo (&info), CKR_OK, "a rejected C_Finalize leaves the module initialised");
	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize");
	t_rv (F->C_Finalize (NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize twice");

	t_rv (F->C_Initialize (NULL), CKR_OK, "C_Initialize (NULL)");
	t_rv (F->C_GetInfo (&info), CKR_OK, "C_GetInfo (3.0 table)");
	t_ok (info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 0,
	      "C_GetInfo through the 3.0 table says 3.0");
	t_ok (memcmp (info.manufacturerID, "p11-warden", 10) == 0 && info.flags == 0,
	      "C_GetInfo: manufacturer p11-warden, no flags");
	t_rv (F2->C_GetInfo (&info), CKR_OK, "C_GetInfo (2.40 table)");
	t_ok (info.cryptokiVersion.major == 2 && info.cryptokiVersion.minor == 40,
	      "C_GetInfo through the 2.40 table says 2.40");
	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize after C_Initialize (NULL)");

	memset (&args, 0, sizeof args);
	args.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	t_rv (F->C_Initialize (&args), CKR_OK,
	      "C_Initialize: CKF_LIBRARY_CANT_CREATE_OS_THREADS (the module creates none)");
	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize");
}

/* ------------------------------------------------------------ setup */

static void
setup (void)
{
	CK_RV rv = mt_initialize ();
	if (rv != CKR_OK)
		t_bail ("C_Initialize: %s", rv_name (rv));
	slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
	spare = mt_slot (mt_env ("SPARE_LABEL", "spare"));
	rw = mt_open (slot, true);
	mt_login (rw);
	mt_provision (rw);
	mt_keys (rw, &k);
}

/* ------------------------------------------------------------ bad arguments */

/* Calls on slots: NULL out-pointers and slot ids that name nothing. */
static void
test_bad_slot_arguments (void)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_INFO mi;
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR label[32];
	CK_UTF8CHAR so_pin[] = "00000000";
	CK_ULONG n;
	const CK_SLOT_ID bad[] = { MT_BOGUS_SLOT, 2, (CK_SLOT_ID)-1 };

	memset (label, ' ', sizeof label);
	t_rv (F->C_GetInfo (NULL), CKR_ARGUMENTS_BAD, "C_GetInfo (NULL)");
	t_rv (F->C_GetSlotList (CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD, "C_GetSlotList: NULL count");
	t_rv (F->C_GetSlotInfo (slot, NULL), CKR_ARGUMENTS_BAD, "C_GetSlotInfo: NULL info");
	t_rv (F->C_GetTokenInfo (slot, NULL), CKR_ARGUMENTS_BAD, "C_GetTokenInfo: NULL info");
	t_rv (F->C_GetMechanismList (slot, NULL, NULL), CKR_ARGUMENTS_BAD,
	      "C_GetMechanismList: NULL count");
	t_rv (F->C_GetMechanismInfo (slot, CKM_RSA_PKCS, NULL), CKR_ARGUMENTS_BAD,
	      "C_GetMechanismInfo: NULL info");
	t_rv (F->C_GetMechanismInfo (slot, CKM_VENDOR_DEFINED | 0x4242, &mi), CKR_MECHANISM_INVALID,
	      "C_GetMechanismInfo: unknown mechanism");
	t_rv (F->C_InitToken (slot, NULL, 8, label), CKR_ARGUMENTS_BAD, "C_InitToken: NULL PIN");
	t_rv (F->C_InitToken (slot, so_pin, 8, NULL), CKR_ARGUMENTS_BAD, "C_InitToken: NULL label");
	t_rv (F->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD,
	      "C_OpenSession: NULL handle pointer");
	t_rv (F->C_OpenSession (slot, 0, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED,
	      "C_OpenSession: without CKF_SERIAL_SESSION");
	t_rv (F->C_OpenSession (slot, CKF_SERIAL_SESSION | 0x80000000UL, NULL, NULL, &h),
	      CKR_ARGUMENTS_BAD, "C_OpenSession: unknown flag");
	t_rv (F->C_WaitForSlotEvent (CKF_DONT_BLOCK, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED,
	      "C_WaitForSlotEvent: not supported (NULL slot pointer)");
	t_rv (F->C_WaitForSlotEvent (0, &n, (void *)&n), CKR_FUNCTION_NOT_SUPPORTED,
	      "C_WaitForSlotEvent: not supported (garbage)");

	for (size_t i = 0; i < N_ELEMS (bad); i++) {
		CK_SLOT_ID b = bad[i];
		t_rv (F->C_GetSlotInfo (b, &si), CKR_SLOT_ID_INVALID, "C_GetSlotInfo: slot 0x%lx", b);
		t_rv (F->C_GetTokenInfo (b, &ti), CKR_SLOT_ID_INVALID, "C_GetTokenInfo: slot 0x%lx", b);
		n = 0;
		t_rv (F->C_GetMechanismList (b, NULL, &n), CKR_SLOT_ID_INVALID,
		      "C_GetMechanismList: slot 0x%lx", b);
		t_rv (F->C_GetMechanismInfo (b, CKM_RSA_PKCS, &mi), CKR_SLOT_ID_INVALID,
		      "C_GetMechanismInfo: slot 0x%lx", b);
		t_rv (F->C_InitToken (b, so_pin, 8, label), CKR_SLOT_ID_INVALID,
		      "C_InitToken: slot 0x%lx", b);
		t_rv (F->C_OpenSession (b, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_SLOT_ID_INVALID,
		      "C_OpenSession: slot 0x%lx", b);
		t_rv (F->C_CloseAllSessions (b), CKR_SLOT_ID_INVALID, "C_CloseAllSessions: slot 0x%lx",
		      b);
	}
}

/* Every session call with handles that name no session. */
static void
test_bad_session_handles (void)
{
	CK_SESSION_HANDLE closed = mt_open (slot, false);
	char what[64];

	if (F->C_CloseSession (closed) != CKR_OK)
		t_bail ("C_CloseSession failed");
	mt_check_session_calls (MT_BOGUS_HANDLE, CKR_SESSION_HANDLE_INVALID, "bogus session");
	mt_check_session_calls (CK_INVALID_HANDLE, CKR_SESSION_HANDLE_INVALID, "session 0");
	snprintf (what, sizeof what, "closed session %lu", (unsigned long)closed);
	mt_check_session_calls (closed, CKR_SESSION_HANDLE_INVALID, what);
	t_ok (sign_works (rw), "the open session still works");
}

/* NULL out-pointers, operations that were never started, and object or key
 * handles that name nothing, on a good session. */
static void
test_bad_session_arguments (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	CK_MECHANISM cbc = { CKM_AES_CBC_PAD, (CK_BYTE *)"0123456789abcdef", 16 };
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM pkcs = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM raw = { CKM_RSA_X_509, NULL, 0 };
	CK_MECHANISM keygen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM pairgen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_MECHANISM derive = { CKM_SHA256_KEY_DERIVATION, NULL, 0 };
	CK_BYTE in[64] = { 0 }, out[512];
	CK_ULONG len, n;
	CK_UTF8CHAR pin[] = "00000000";
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, h2 = CK_INVALID_HANDLE, objs[4];
	CK_OBJECT_CLASS klass = CKO_DATA;
	CK_BBOOL no = CK_FALSE;
	CK_ULONG value_len = 32;
	CK_ATTRIBUTE data_obj[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE label = { CKA_LABEL, out, sizeof out };
	CK_ATTRIBUTE value = { CKA_VALUE, out, sizeof out };
	CK_ATTRIBUTE new_label = { CKA_LABEL, (void *)"renamed", 7 };
	CK_ATTRIBUTE session_obj = { CKA_TOKEN, &no, sizeof no };
	CK_ATTRIBUTE aes_len = { CKA_VALUE_LEN, &value_len, sizeof value_len };
	const CK_OBJECT_HANDLE bad[] = { MT_BOGUS_HANDLE, CK_INVALID_HANDLE };
	CK_RV rv;

	/* Tokens, PINs and sessions. */
	t_rv (F->C_InitPIN (s, NULL, 8), CKR_USER_NOT_LOGGED_IN,
	      "C_InitPIN outside an SO session (checked before the PIN)");
	t_rv (F->C_SetPIN (s, NULL, 4, pin, 8), CKR_ARGUMENTS_BAD, "C_SetPIN: NULL old PIN");
	t_rv (F->C_SetPIN (s, pin, 8, NULL, 4), CKR_ARGUMENTS_BAD, "C_SetPIN: NULL new PIN");
	t_rv (F->C_GetSessionInfo (s, NULL), CKR_ARGUMENTS_BAD, "C_GetSessionInfo: NULL info");
	t_rv (F->C_GetSessionInfo (MT_BOGUS_HANDLE, NULL), CKR_ARGUMENTS_BAD,
	      "C_GetSessionInfo: NULL info and bogus session");
	t_rv (F->C_GetOperationState (s, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED,
	      "C_GetOperationState: not supported (NULL pointers)");
	t_rv (F->C_SetOperationState (s, NULL, 99, MT_BOGUS_HANDLE, MT_BOGUS_HANDLE),
	      CKR_FUNCTION_NOT_SUPPORTED, "C_SetOperationState: not supported (garbage)");
	t_rv (F->C_Login (s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD, "C_Login: NULL PIN");
	t_rv (F->C_Login (s, 0x4242, pin, 8), CKR_USER_TYPE_INVALID, "C_Login: unknown user type");
	t_rv (F->C_LoginUser (s, CKU_USER, pin, 8, (CK_UTF8CHAR_PTR) "alice", 5),
	      CKR_FUNCTION_NOT_SUPPORTED, "C_LoginUser with a user name");
	t_rv (F->C_LoginUser (s, CKU_USER, NULL, 4, NULL, 0), CKR_ARGUMENTS_BAD,
	      "C_LoginUser: NULL PIN");
	t_rv (F->C_SessionCancel (s, 0), CKR_OK, "C_SessionCancel: no flags");
	t_rv (F->C_SessionCancel (s, ~(CK_FLAGS)0), CKR_OK,
	      "C_SessionCancel: every flag, nothing active");
	t_rv (F->C_GetFunctionStatus (s), CKR_FUNCTION_NOT_PARALLEL, "C_GetFunctionStatus: legacy");
	t_rv (F->C_CancelFunction (s), CKR_FUNCTION_NOT_PARALLEL, "C_CancelFunction: legacy");

	/* Objects. */
	t_rv (F->C_CreateObject (s, NULL, 2, &h), CKR_ARGUMENTS_BAD, "C_CreateObject: NULL template");
	t_rv (F->C_CreateObject (s, data_obj, 2, NULL), CKR_ARGUMENTS_BAD,
	      "C_CreateObject: NULL handle pointer");
	t_rv (F->C_CopyObject (s, k.open_aes, NULL, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_CopyObject: NULL template");
	t_rv (F->C_CopyObject (s, k.open_aes, &session_obj, 1, NULL), CKR_ARGUMENTS_BAD,
	      "C_CopyObject: NULL handle pointer");
	t_rv (F->C_GetObjectSize (s, k.open_aes, NULL), CKR_ARGUMENTS_BAD,
	      "C_GetObjectSize: NULL size");
	t_rv (F->C_GetAttributeValue (s, k.open_aes, NULL, 1), CKR_ARGUMENTS_BAD,
	      "C_GetAttributeValue: NULL template");
	t_rv (F->C_SetAttributeValue (s, k.open_aes, NULL, 1), CKR_ARGUMENTS_BAD,
	      "C_SetAttributeValue: NULL template");
	t_rv (F->C_FindObjectsInit (s, NULL, 3), CKR_ARGUMENTS_BAD,
	      "C_FindObjectsInit: NULL template, count 3");
	for (size_t i = 0; i < N_ELEMS (bad); i++) {
		CK_OBJECT_HANDLE b = bad[i];
		len = 0;
		t_rv (F->C_CopyObject (s, b, &session_obj, 1, &h), CKR_OBJECT_HANDLE_INVALID,
		      "C_CopyObject: object 0x%lx", b);
		t_rv (F->C_CopyObject (s, b, &new_label, 1, &h), CKR_OBJECT_HANDLE_INVALID,
		      "C_CopyObject with a new label: object 0x%lx", b);
		t_rv (F->C_DestroyObject (s, b), CKR_OBJECT_HANDLE_INVALID,
		      "C_DestroyObject: object 0x%lx", b);
		t_rv (F->C_GetObjectSize (s, b, &len), CKR_OBJECT_HANDLE_INVALID,
		      "C_GetObjectSize: object 0x%lx", b);
		label.ulValueLen = sizeof out;
		t_rv (F->C_GetAttributeValue (s, b, &label, 1), CKR_OBJECT_HANDLE_INVALID,
		      "C_GetAttributeValue (CKA_LABEL): object 0x%lx", b);
		value.ulValueLen = sizeof out;
		t_rv (F->C_GetAttributeValue (s, b, &value, 1), CKR_OBJECT_HANDLE_INVALID,
		      "C_GetAttributeValue (CKA_VALUE): object 0x%lx", b);
		t_rv (F->C_SetAttributeValue (s, b, &new_label, 1), CKR_OBJECT_HANDLE_INVALID,
		      "C_SetAttributeValue (CKA_LABEL): object 0x%lx", b);
		t_rv (F->C_SetAttributeValue (s, b, &session_obj, 1), CKR_OBJECT_HANDLE_INVALID,
		      "C_SetAttributeValue (CKA_TOKEN): object 0x%lx", b);
	}

	/* Find. */
	t_rv (F->C_FindObjects (s, objs, 4, &n), CKR_OPERATION_NOT_INITIALIZED,
	      "C_FindObjects without C_FindObjectsInit");
	t_rv (F->C_FindObjectsFinal (s), CKR_OPERATION_NOT_INITIALIZED,
	      "C_FindObjectsFinal without C_FindObjectsInit");
	t_rv (F->C_FindObjectsInit (s, NULL, 0), CKR_OK, "C_FindObjectsInit");
	t_rv (F->C_FindObjects (s, objs, 4, NULL), CKR_ARGUMENTS_BAD, "C_FindObjects: NULL count");
	t_rv (F->C_FindObjects (s, NULL, 4, &n), CKR_ARGUMENTS_BAD, "C_FindObjects: NULL array");
	t_rv (F->C_FindObjectsFinal (s), CKR_OK, "C_FindObjectsFinal");

	/* Every Init: NULL mechanism, keys that name nothing. */
	t_rv (F->C_EncryptInit (s, NULL, k.open_aes), CKR_ARGUMENTS_BAD, "C_EncryptInit: NULL mechanism");
	t_rv (F->C_DecryptInit (s, NULL, k.open_aes), CKR_ARGUMENTS_BAD, "C_DecryptInit: NULL mechanism");
	t_rv (F->C_DigestInit (s, NULL), CKR_ARGUMENTS_BAD, "C_DigestInit: NULL mechanism");
	t_rv (F->C_SignInit (s, NULL, k.open_priv), CKR_ARGUMENTS_BAD, "C_SignInit: NULL mechanism");
	t_rv (F->C_SignRecoverInit (s, NULL, k.open_priv), CKR_ARGUMENTS_BAD,
	      "C_SignRecoverInit: NULL mechanism");
	t_rv (F->C_VerifyInit (s, NULL, k.open_pub), CKR_ARGUMENTS_BAD, "C_VerifyInit: NULL mechanism");
	t_rv (F->C_VerifyRecoverInit (s, NULL, k.open_pub), CKR_ARGUMENTS_BAD,
	      "C_VerifyRecoverInit: NULL mechanism");
	for (size_t i = 0; i < N_ELEMS (bad); i++) {
		CK_OBJECT_HANDLE b = bad[i];
		t_rv (F->C_EncryptInit (s, &cbc, b), CKR_KEY_HANDLE_INVALID, "C_EncryptInit: key 0x%lx", b);
		t_rv (F->C_EncryptInit (s, &raw, b), CKR_KEY_HANDLE_INVALID,
		      "C_EncryptInit (raw RSA): key 0x%lx", b);
		t_rv (F->C_DecryptInit (s, &cbc, b), CKR_KEY_HANDLE_INVALID, "C_DecryptInit: key 0x%lx", b);
		t_rv (F->C_DecryptInit (s, &rsa, b), CKR_KEY_HANDLE_INVALID,
		      "C_DecryptInit (RSA): key 0x%lx", b);
		t_rv (F->C_SignInit (s, &pkcs, b), CKR_KEY_HANDLE_INVALID, "C_SignInit: key 0x%lx", b);
		t_rv (F->C_SignInit (s, &raw, b), CKR_KEY_HANDLE_INVALID,
		      "C_SignInit (raw RSA): key 0x%lx", b);
		t_rv (F->C_SignRecoverInit (s, &raw, b), CKR_KEY_HANDLE_INVALID,
		      "C_SignRecoverInit: key 0x%lx", b);
		t_rv (F->C_VerifyInit (s, &pkcs, b), CKR_KEY_HANDLE_INVALID, "C_VerifyInit: key 0x%lx", b);
		t_rv (F->C_VerifyRecoverInit (s, &raw, b), CKR_KEY_HANDLE_INVALID,
		      "C_VerifyRecoverInit: key 0x%lx", b);
		len = sizeof out;
		t_rv (F->C_DigestInit (s, &sha), CKR_OK, "C_DigestInit");
		t_rv (F->C_DigestKey (s, b), CKR_KEY_HANDLE_INVALID, "C_DigestKey: key 0x%lx", b);
		t_rv (F->C_DigestFinal (s, out, &len), CKR_OPERATION_NOT_INITIALIZED,
		      "a failed C_DigestKey ended the digest");
	}

	/* Every operation call without its Init. */
	len = sizeof out;
	t_rv (F->C_Encrypt (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_Encrypt without Init");
	t_rv (F->C_EncryptUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_EncryptUpdate without Init");
	t_rv (F->C_EncryptFinal (s, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_EncryptFinal without Init");
	t_rv (F->C_Decrypt (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_Decrypt without Init");
	t_rv (F->C_DecryptUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_DecryptUpdate without Init");
	t_rv (F->C_DecryptFinal (s, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_DecryptFinal without Init");
	t_rv (F->C_Digest (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_Digest without Init");
	t_rv (F->C_DigestUpdate (s, in, 16), CKR_OPERATION_NOT_INITIALIZED, "C_DigestUpdate without Init");
	t_rv (F->C_DigestKey (s, k.open_aes), CKR_OPERATION_NOT_INITIALIZED, "C_DigestKey without Init");
	t_rv (F->C_DigestFinal (s, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_DigestFinal without Init");
	t_rv (F->C_Sign (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_Sign without Init");
	t_rv (F->C_SignUpdate (s, in, 16), CKR_OPERATION_NOT_INITIALIZED, "C_SignUpdate without Init");
	t_rv (F->C_SignFinal (s, out, &len), CKR_OPERATION_NOT_INITIALIZED, "C_SignFinal without Init");
	t_rv (F->C_SignRecover (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_SignRecover without Init");
	t_rv (F->C_Verify (s, in, 16, out, 256), CKR_OPERATION_NOT_INITIALIZED, "C_Verify without Init");
	t_rv (F->C_VerifyUpdate (s, in, 16), CKR_OPERATION_NOT_INITIALIZED, "C_VerifyUpdate without Init");
	t_rv (F->C_VerifyFinal (s, out, 256), CKR_OPERATION_NOT_INITIALIZED, "C_VerifyFinal without Init");
	t_rv (F->C_VerifyRecover (s, out, 256, in, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_VerifyRecover without Init");
	t_rv (F->C_DigestEncryptUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_DigestEncryptUpdate without Init");
	t_rv (F->C_DecryptDigestUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_DecryptDigestUpdate without Init");
	t_rv (F->C_SignEncryptUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_SignEncryptUpdate without Init");
	t_rv (F->C_DecryptVerifyUpdate (s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_DecryptVerifyUpdate without Init");
	/* NULL pointers with a NULL out-length too: the missing operation is
	 * found first, and nothing is dereferenced. */
	t_rv (F->C_Encrypt (s, NULL, 0, NULL, NULL), CKR_OPERATION_NOT_INITIALIZED,
	      "C_Encrypt (NULL everything) without Init");
	t_rv (F->C_Decrypt (s, NULL, 0, NULL, NULL), CKR_OPERATION_NOT_INITIALIZED,
	      "C_Decrypt (NULL everything) without Init");
	t_rv (F->C_Sign (s, NULL, 0, NULL, NULL), CKR_OPERATION_NOT_INITIALIZED,
	      "C_Sign (NULL everything) without Init");

	/* NULL out-lengths and NULL inputs once an operation is active: each is
	 * CKR_ARGUMENTS_BAD, and ends the operation (3.0, 5.2). */
#define NULL_ARG(kind, init, call, after, name) \
	do { \
		rv = (init); \
		if (!t_rv (rv, CKR_OK, "%s: Init", name)) \
			break; \
		t_rv ((call), CKR_ARGUMENTS_BAD, "%s", name); \
		len = sizeof out; \
		t_rv ((after), CKR_OPERATION_NOT_INITIALIZED, "%s: ended the operation", name); \
		t_ok (session_idle (s, kind), "%s: ended it at the backend too", name); \
	} while (0)
	NULL_ARG (K_ENCRYPT, F->C_EncryptInit (s, &cbc, k.open_aes), F->C_Encrypt (s, in, 16, out, NULL),
	          F->C_Encrypt (s, in, 16, out, &len), "C_Encrypt: NULL out-length");
	NULL_ARG (K_ENCRYPT, F->C_EncryptInit (s, &cbc, k.open_aes), F->C_Encrypt (s, NULL, 16, out, &len),
	          F->C_Encrypt (s, in, 16, out, &len), "C_Encrypt: NULL input of 16 bytes");
	NULL_ARG (K_ENCRYPT, F->C_EncryptInit (s, &cbc, k.open_aes), F->C_EncryptUpdate (s, in, 16, out, NULL),
	          F->C_EncryptFinal (s, out, &len), "C_EncryptUpdate: NULL out-length");
	NULL_ARG (K_ENCRYPT, F->C_EncryptInit (s, &cbc, k.open_aes), F->C_EncryptFinal (s, out, NULL),
	          F->C_EncryptFinal (s, out, &len), "C_EncryptFinal: NULL out-length");
	NULL_ARG (K_DECRYPT, F->C_DecryptInit (s, &cbc, k.open_aes), F->C_Decrypt (s, in, 16, out, NULL),
	          F->C_Decrypt (s, in, 16, out, &len), "C_Decrypt: NULL out-length");
	NULL_ARG (K_DECRYPT, F->C_DecryptInit (s, &rsa, k.open_priv), F->C_Decrypt (s, in, 16, out, NULL),
	          F->C_Decrypt (s, in, 16, out, &len), "C_Decrypt (RSA): NULL out-length");
	NULL_ARG (K_DECRYPT, F->C_DecryptInit (s, &cbc, k.open_aes), F->C_DecryptUpdate (s, NULL, 16, out, &len),
	          F->C_DecryptFinal (s, out, &len), "C_DecryptUpdate: NULL input of 16 bytes");
	NULL_ARG (K_DECRYPT, F->C_DecryptInit (s, &cbc, k.open_aes), F->C_DecryptFinal (s, out, NULL),
	          F->C_DecryptFinal (s, out, &len), "C_DecryptFinal: NULL out-length");
	NULL_ARG (K_DIGEST, F->C_DigestInit (s, &sha), F->C_Digest (s, in, 16, out, NULL),
	          F->C_Digest (s, in, 16, out, &len), "C_Digest: NULL out-length");
	NULL_ARG (K_DIGEST, F->C_DigestInit (s, &sha), F->C_DigestUpdate (s, NULL, 16),
	          F->C_DigestFinal (s, out, &len), "C_DigestUpdate: NULL input of 16 bytes");
	NULL_ARG (K_DIGEST, F->C_DigestInit (s, &sha), F->C_DigestFinal (s, out, NULL),
	          F->C_DigestFinal (s, out, &len), "C_DigestFinal: NULL out-length");
	NULL_ARG (K_SIGN, F->C_SignInit (s, &pkcs, k.open_priv), F->C_Sign (s, in, 16, out, NULL),
	          F->C_Sign (s, in, 16, out, &len), "C_Sign: NULL out-length");
	NULL_ARG (K_SIGN, F->C_SignInit (s, &pkcs, k.open_priv), F->C_SignUpdate (s, NULL, 16),
	          F->C_SignFinal (s, out, &len), "C_SignUpdate: NULL input of 16 bytes");
	NULL_ARG (K_SIGN, F->C_SignInit (s, &pkcs, k.open_priv), F->C_SignFinal (s, out, NULL),
	          F->C_SignFinal (s, out, &len), "C_SignFinal: NULL out-length");
	NULL_ARG (K_VERIFY, F->C_VerifyInit (s, &pkcs, k.open_pub), F->C_Verify (s, in, 16, NULL, 256),
	          F->C_Verify (s, in, 16, out, 256), "C_Verify: NULL signature");
	NULL_ARG (K_VERIFY, F->C_VerifyInit (s, &pkcs, k.open_pub), F->C_VerifyUpdate (s, NULL, 16),
	          F->C_VerifyFinal (s, out, 256), "C_VerifyUpdate: NULL input of 16 bytes");
	NULL_ARG (K_VERIFY, F->C_VerifyInit (s, &pkcs, k.open_pub), F->C_VerifyFinal (s, NULL, 256),
	          F->C_VerifyFinal (s, out, 256), "C_VerifyFinal: NULL signature");
#undef NULL_ARG
	
	/* Keys: generation, wrapping, unwrapping, derivation. */
	t_rv (F->C_GenerateKey (s, NULL, &aes_len, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_GenerateKey: NULL mechanism");
	t_rv (F->C_GenerateKey (s, &keygen, NULL, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_GenerateKey: NULL template");
	t_rv (F->C_GenerateKey (s, &keygen, &aes_len, 1, NULL), CKR_ARGUMENTS_BAD,
	      "C_GenerateKey: NULL handle pointer");
	t_rv (F->C_GenerateKeyPair (s, NULL, NULL, 0, NULL, 0, &h, &h2), CKR_ARGUMENTS_BAD,
	      "C_GenerateKeyPair: NULL mechanism");
	t_rv (F->C_GenerateKeyPair (s, &pairgen, NULL, 2, NULL, 0, &h, &h2), CKR_ARGUMENTS_BAD,
	      "C_GenerateKeyPair: NULL public template");
	t_rv (F->C_GenerateKeyPair (s, &pairgen, NULL, 0, NULL, 2, &h, &h2), CKR_ARGUMENTS_BAD,
	      "C_GenerateKeyPair: NULL private template");
	t_rv (F->C_GenerateKeyPair (s, &pairgen, NULL, 0, NULL, 0, NULL, &h2), CKR_ARGUMENTS_BAD,
	      "C_GenerateKeyPair: NULL public handle pointer");
	t_rv (F->C_GenerateKeyPair (s, &pairgen, NULL, 0, NULL, 0, &h, NULL), CKR_ARGUMENTS_BAD,
	      "C_GenerateKeyPair: NULL private handle pointer");
	len = sizeof out;
	t_rv (F->C_WrapKey (s, NULL, k.open_aes, k.open_aes_b, out, &len), CKR_ARGUMENTS_BAD,
	      "C_WrapKey: NULL mechanism");
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, out, NULL), CKR_ARGUMENTS_BAD,
	      "C_WrapKey: NULL out-length");
	t_rv (F->C_UnwrapKey (s, NULL, k.open_aes, in, 40, &session_obj, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_UnwrapKey: NULL mechanism");
	t_rv (F->C_UnwrapKey (s, &wrap, k.open_aes, NULL, 40, &session_obj, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_UnwrapKey: NULL wrapped key");
	t_rv (F->C_UnwrapKey (s, &wrap, k.open_aes, in, 40, NULL, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_UnwrapKey: NULL template");
	t_rv (F->C_UnwrapKey (s, &wrap, k.open_aes, in, 40, &session_obj, 1, NULL), CKR_ARGUMENTS_BAD,
	      "C_UnwrapKey: NULL handle pointer");
	t_rv (F->C_DeriveKey (s, NULL, k.open_aes, &session_obj, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_DeriveKey: NULL mechanism");
	t_rv (F->C_DeriveKey (s, &derive, k.open_aes, NULL, 1, &h), CKR_ARGUMENTS_BAD,
	      "C_DeriveKey: NULL template");
	t_rv (F->C_DeriveKey (s, &derive, k.open_aes, &session_obj, 1, NULL), CKR_ARGUMENTS_BAD,
	      "C_DeriveKey: NULL handle pointer");
	for (size_t i = 0; i < N_ELEMS (bad); i++) {
		CK_OBJECT_HANDLE b = bad[i];
		len = sizeof out;
		t_rv (F->C_WrapKey (s, &wrap, b, k.open_aes_b, out, &len), CKR_WRAPPING_KEY_HANDLE_INVALID,
		      "C_WrapKey: wrapping key 0x%lx", b);
		t_rv (F->C_WrapKey (s, &wrap, b, k.gated_aes, out, &len), CKR_WRAPPING_KEY_HANDLE_INVALID,
		      "C_WrapKey: wrapping key 0x%lx, gated key", b);
		t_rv (F->C_WrapKey (s, &wrap, k.open_aes, b, out, &len), CKR_KEY_HANDLE_INVALID,
		      "C_WrapKey: key 0x%lx", b);
		t_rv (F->C_UnwrapKey (s, &wrap, b, in, 40, &session_obj, 1, &h),
		      CKR_UNWRAPPING_KEY_HANDLE_INVALID, "C_UnwrapKey: unwrapping key 0x%lx", b);
		t_rv (F->C_DeriveKey (s, &derive, b, &session_obj, 1, &h), CKR_KEY_HANDLE_INVALID,
		      "C_DeriveKey: base key 0x%lx", b);
	}

	/* Random numbers. */
	t_rv (F->C_SeedRandom (s, NULL, 16), CKR_ARGUMENTS_BAD, "C_SeedRandom: NULL seed");
	t_rv (F->C_GenerateRandom (s, NULL, 16), CKR_ARGUMENTS_BAD, "C_GenerateRandom: NULL buffer");
	t_rv (F->C_GenerateRandom (s, out, 16), CKR_OK, "C_GenerateRandom");
	{
		CK_RV ok_or[] = { CKR_OK, CKR_RANDOM_SEED_NOT_SUPPORTED };
		t_rv_any (F->C_SeedRandom (s, in, 16), ok_or, 2, "C_SeedRandom");
	}

	t_ok (session_idle (s, K_NONE), "after the bad arguments, the session is idle");
	t_rv (F->C_CloseSession (s), CKR_OK, "C_CloseSession");
	t_rv (F->C_CloseSession (s), CKR_SESSION_HANDLE_INVALID, "C_CloseSession twice");
}

/* ------------------------------------------------------------ the two-call convention */

static void
test_buffers (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	CK_SLOT_ID ids[8];
	CK_MECHANISM_TYPE *mechs;
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM pkcs = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE ct[512], pt[512], sig[512], modulus[512], wrapped[64];
	CK_ULONG n, m, ct_len = sizeof ct, len;
	CK_ATTRIBUTE a;
	bool found;

	/* C_GetSlotList */
	n = 0;
	t_rv (F->C_GetSlotList (CK_TRUE, NULL, &n), CKR_OK, "C_GetSlotList: count query");
	t_ok (n == 2, "C_GetSlotList: two slots with a token (got %lu)", (unsigned long)n);
	n = 1;
	t_rv (F->C_GetSlotList (CK_TRUE, ids, &n), CKR_BUFFER_TOO_SMALL, "C_GetSlotList: room for one");
	t_ok (n == 2, "C_GetSlotList: BUFFER_TOO_SMALL gives the count");
	n = 0;
	t_rv (F->C_GetSlotList (CK_FALSE, ids, &n), CKR_BUFFER_TOO_SMALL, "C_GetSlotList: room for none");
	n = N_ELEMS (ids);
	t_rv (F->C_GetSlotList (CK_FALSE, ids, &n), CKR_OK, "C_GetSlotList: large buffer");
	t_ok (n == 2 && ((ids[0] == slot && ids[1] == spare) || (ids[0] == spare && ids[1] == slot)),
	      "C_GetSlotList: both slots listed");

	/* C_GetMechanismList */
	n = 0;
	t_rv (F->C_GetMechanismList (slot, NULL, &n), CKR_OK, "C_GetMechanismList: count query");
	t_ok (n > 1, "C_GetMechanismList: %lu mechanisms", (unsigned long)n);
	mechs = calloc (n + 1, sizeof *mechs);
	if (!mechs)
		t_bail ("out of memory");
	m = n - 1;
	t_rv (F->C_GetMechanismList (slot, mechs, &m), CKR_BUFFER_TOO_SMALL,
	      "C_GetMechanismList: one short");
	t_ok (m == n, "C_GetMechanismList: BUFFER_TOO_SMALL gives the count");
	m = n + 1;
	t_rv (F->C_GetMechanismList (slot, mechs, &m), CKR_OK, "C_GetMechanismList: large buffer");
	found = false;
	for (CK_ULONG i = 0; i < m; i++)
		found = found || mechs[i] == CKM_RSA_PKCS;
	t_ok (m == n && found, "C_GetMechanismList: the list, with CKM_RSA_PKCS");
	free (mechs);

	/* C_Decrypt with an ungated key: the length query and BUFFER_TOO_SMALL
	 * keep the operation; the answer ends it. */
	t_rv (encrypt_rsa (s, k.open_pub, data, sizeof data, ct, &ct_len), CKR_OK,
	      "C_Encrypt (RSA PKCS#1) with the ungated public key");
	t_rv (F->C_DecryptInit (s, &rsa, k.open_priv), CKR_OK, "C_DecryptInit, ungated key");
	len = 0;
	t_rv (F->C_Decrypt (s, ct, ct_len, NULL, &len), CKR_OK, "C_Decrypt: length query");
	t_ok (len >= sizeof data, "C_Decrypt: length query gives room for the plaintext (%lu)",
	      (unsigned long)len);
	len = 4;
	t_rv (F->C_Decrypt (s, ct, ct_len, pt, &len), CKR_BUFFER_TOO_SMALL, "C_Decrypt: 4-byte buffer");
	t_ok (len >= sizeof data, "C_Decrypt: BUFFER_TOO_SMALL gives the length");
	len = sizeof pt;
	t_rv (F->C_Decrypt (s, ct, ct_len, pt, &len), CKR_OK,
	      "C_Decrypt after the length query and BUFFER_TOO_SMALL");
	t_ok (len == sizeof data && memcmp (pt, data, len) == 0, "C_Decrypt: the plaintext");
	len = sizeof pt;
	t_rv (F->C_Decrypt (s, ct, ct_len, pt, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_Decrypt: the answer ended the operation");

	/* C_Sign */
	t_rv (F->C_SignInit (s, &pkcs, k.open_priv), CKR_OK, "C_SignInit");
	len = 0;
	t_rv (F->C_Sign (s, data, sizeof data, NULL, &len), CKR_OK, "C_Sign: length query");
	t_ok (len == 256, "C_Sign: length query gives 256 (got %lu)", (unsigned long)len);
	len = 255;
	t_rv (F->C_Sign (s, data, sizeof data, sig, &len), CKR_BUFFER_TOO_SMALL,
	      "C_Sign: 255-byte buffer");
	t_ok (len == 256, "C_Sign: BUFFER_TOO_SMALL gives 256");
	len = sizeof sig;
	t_rv (F->C_Sign (s, data, sizeof data, sig, &len), CKR_OK, "C_Sign");
	t_ok (len == 256, "C_Sign: a 256-byte signature");
	t_rv (F->C_VerifyInit (s, &pkcs, k.open_pub), CKR_OK, "C_VerifyInit");
	t_rv (F->C_Verify (s, data, sizeof data, sig, len), CKR_OK, "C_Verify: the signature verifies");
	len = sizeof sig;
	t_rv (F->C_Sign (s, data, sizeof data, sig, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "C_Sign: the signature ended the operation");

	/* C_GetAttributeValue: a public attribute, then a secret one of an
	 * ungated key. */
	a.type = CKA_MODULUS;
	a.pValue = NULL;
	a.ulValueLen = 0;
	t_rv (F->C_GetAttributeValue (s, k.open_pub, &a, 1), CKR_OK,
	      "C_GetAttributeValue (CKA_MODULUS): length query");
	t_ok (a.ulValueLen == 256, "C_GetAttributeValue: modulus of 256 bytes (got %lu)",
	      (unsigned long)a.ulValueLen);
	a.pValue = modulus;
	a.ulValueLen = 100;
	t_rv (F->C_GetAttributeValue (s, k.open_pub, &a, 1), CKR_BUFFER_TOO_SMALL,
	      "C_GetAttributeValue (CKA_MODULUS): 100-byte buffer");
	t_ok (a.ulValueLen == CK_UNAVAILABLE_INFORMATION,
	      "C_GetAttributeValue: BUFFER_TOO_SMALL marks the attribute unavailable (3.0, 5.7)");
	a.ulValueLen = sizeof modulus;
	t_rv (F->C_GetAttributeValue (s, k.open_pub, &a, 1), CKR_OK,
	      "C_GetAttributeValue (CKA_MODULUS)");
	t_ok (a.ulValueLen == 256, "C_GetAttributeValue: 256 bytes");
	a.type = CKA_VALUE;
	a.pValue = NULL;
	a.ulValueLen = 0;
	t_rv (F->C_GetAttributeValue (s, k.open_aes, &a, 1), CKR_OK,
	      "C_GetAttributeValue (CKA_VALUE, ungated AES): length query");
	t_ok (a.ulValueLen == 32, "C_GetAttributeValue: 32 bytes of AES key");
	a.pValue = pt;
	a.ulValueLen = 16;
	t_rv (F->C_GetAttributeValue (s, k.open_aes, &a, 1), CKR_BUFFER_TOO_SMALL,
	      "C_GetAttributeValue (CKA_VALUE, ungated AES): 16-byte buffer");
	a.ulValueLen = 32;
	t_rv (F->C_GetAttributeValue (s, k.open_aes, &a, 1), CKR_OK,
	      "C_GetAttributeValue (CKA_VALUE, ungated AES)");

	/* C_WrapKey */
	len = 0;
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, NULL, &len), CKR_OK,
	      "C_WrapKey: length query");
	t_ok (len == 40, "C_WrapKey: 40 bytes for an AES-256 key (got %lu)", (unsigned long)len);
	len = 8;
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, wrapped, &len), CKR_BUFFER_TOO_SMALL,
	      "C_WrapKey: 8-byte buffer");
	len = sizeof wrapped;
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, wrapped, &len), CKR_OK, "C_WrapKey");
	t_ok (len == 40, "C_WrapKey: 40 bytes");

	t_ok (session_idle (s, K_NONE), "after the buffer checks, the session is idle");
	F->C_CloseSession (s);
}

/* ------------------------------------------------------------ operation state */

static void
test_operation_state (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	CK_MECHANISM cbc = { CKM_AES_CBC_PAD, (CK_BYTE *)"0123456789abcdef", 16 };
	CK_MECHANISM cbc_nopad = { CKM_AES_CBC, (CK_BYTE *)"0123456789abcdef", 16 };
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM pkcs = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE out[512], sig[512], big[300], garbage[256], ct[512], zeros[32], badpad[32];
	CK_ULONG len, sig_len, ct_len;
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n;
	CK_RV rv;

	memset (big, 0x5a, sizeof big);
	/* As an RSA ciphertext, 1: it decrypts to 1 whatever the key, which is
	 * no valid padding (random bytes would be, very rarely). */
	memset (garbage, 0, sizeof garbage);
	garbage[sizeof garbage - 1] = 1;

	/* XInit twice: CKR_OPERATION_ACTIVE, and the first one goes on. */
	t_rv (F->C_EncryptInit (s, &cbc, k.open_aes), CKR_OK, "C_EncryptInit");
	t_rv (F->C_EncryptInit (s, &cbc, k.open_aes), CKR_OPERATION_ACTIVE, "C_EncryptInit twice");
	len = sizeof out;
	t_rv (F->C_Encrypt (s, data, sizeof data, out, &len), CKR_OK, "C_Encrypt: the first goes on");
	t_rv (F->C_DecryptInit (s, &rsa, k.open_priv), CKR_OK, "C_DecryptInit");
	t_rv (F->C_DecryptInit (s, &rsa, k.open_priv), CKR_OPERATION_ACTIVE, "C_DecryptInit twice");
	t_rv (F->C_DecryptInit (s, &rsa, k.gated_priv), CKR_OPERATION_ACTIVE,
	      "C_DecryptInit twice, the second with a gated key: OPERATION_ACTIVE first");
	t_rv (F->C_SessionCancel (s, CKF_DECRYPT), CKR_OK, "C_SessionCancel (CKF_DECRYPT)");
	t_rv (F->C_DigestInit (s, &sha), CKR_OK, "C_DigestInit");
	t_rv (F->C_DigestInit (s, &sha), CKR_OPERATION_ACTIVE, "C_DigestInit twice");
	t_rv (F->C_DigestUpdate (s, data, sizeof data), CKR_OK, "C_DigestUpdate: the first goes on");
	len = sizeof out;
	t_rv (F->C_DigestFinal (s, out, &len), CKR_OK, "C_DigestFinal");
	t_rv (F->C_SignInit (s, &pkcs, k.open_priv), CKR_OK, "C_SignInit");
	t_rv (F->C_SignInit (s, &pkcs, k.open_priv), CKR_OPERATION_ACTIVE, "C_SignInit twice");
	sig_len = sizeof sig;
	t_rv (F->C_Sign (s, data, sizeof data, sig, &sig_len), CKR_OK, "C_Sign: the first goes on");
	t_rv (F->C_VerifyInit (s, &pkcs, k.open_pub), CKR_OK, "C_VerifyInit");
	t_rv (F->C_VerifyInit (s, &pkcs, k.open_pub), CKR_OPERATION_ACTIVE, "C_VerifyInit twice");
	t_rv (F->C_Verify (s, data, sizeof data, sig, sig_len), CKR_OK, "C_Verify: the first goes on");
	t_rv (F->C_FindObjectsInit (s, NULL, 0), CKR_OK, "C_FindObjectsInit");
	t_rv (F->C_FindObjectsInit (s, NULL, 0), CKR_OPERATION_ACTIVE, "C_FindObjectsInit twice");
	t_rv (F->C_FindObjects (s, h, 4, &n), CKR_OK, "C_FindObjects: the first goes on");
	t_rv (F->C_FindObjectsFinal (s), CKR_OK, "C_FindObjectsFinal");

	/* Multi-part: length queries and BUFFER_TOO_SMALL on the Final keep
	 * the operation. */
	t_rv (F->C_EncryptInit (s, &cbc, k.open_aes), CKR_OK, "C_EncryptInit (multi-part)");
	len = sizeof out;
	t_rv (F->C_EncryptUpdate (s, data, 20, out, &len), CKR_OK, "C_EncryptUpdate");
	len = 0;
	t_rv (F->C_EncryptFinal (s, NULL, &len), CKR_OK, "C_EncryptFinal: length query");
	t_ok (len == 16, "C_EncryptFinal: one padded block to come (got %lu)", (unsigned long)len);
	len = 3;
	t_rv (F->C_EncryptFinal (s, out, &len), CKR_BUFFER_TOO_SMALL, "C_EncryptFinal: 3-byte buffer");
	len = sizeof out;
	t_rv (F->C_EncryptFinal (s, out, &len), CKR_OK, "C_EncryptFinal after both");
	t_rv (F->C_DigestInit (s, &sha), CKR_OK, "C_DigestInit");
	len = 0;
	t_rv (F->C_Digest (s, data, sizeof data, NULL, &len), CKR_OK, "C_Digest: length query");
	t_ok (len == 32, "C_Digest: 32 bytes");
	len = 31;
	t_rv (F->C_Digest (s, data, sizeof data, out, &len), CKR_BUFFER_TOO_SMALL,
	      "C_Digest: 31-byte buffer");
	len = 32;
	t_rv (F->C_Digest (s, data, sizeof data, out, &len), CKR_OK, "C_Digest after both");
	t_rv (F->C_SignInit (s, &pkcs, k.open_priv), CKR_OK, "C_SignInit (multi-part)");
	t_rv (F->C_SignUpdate (s, data, sizeof data), CKR_OK, "C_SignUpdate");
	len = 0;
	t_rv (F->C_SignFinal (s, NULL, &len), CKR_OK, "C_SignFinal: length query");
	len = 10;
	t_rv (F->C_SignFinal (s, out, &len), CKR_BUFFER_TOO_SMALL, "C_SignFinal: 10-byte buffer");
	len = sizeof out;
	t_rv (F->C_SignFinal (s, out, &len), CKR_OK, "C_SignFinal after both");
	/* PKCS#1 v1.5 is deterministic: the same as the single-part one. */
	t_ok (len == sig_len && memcmp (out, sig, len) == 0,
	      "C_SignFinal: the signature C_Sign made of the same data");
	t_ok (session_idle (s, K_NONE), "the session is idle");

	/* Errors end the operation, at the front and at the backend: after
	 * each, the call again says OPERATION_NOT_INITIALIZED and every kind of
	 * operation can start (SoftHSM's single operation slot would refuse
	 * if its operation had been left behind). */
#define ERROR_ENDS(kind, must_fail, init, call, after, name) \
	do { \
		rv = (init); \
		if (!t_rv (rv, CKR_OK, "%s: Init", name)) \
			break; \
		rv = (call); \
		if (must_fail) \
			t_ok (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL, "%s: fails (%s)", name, \
			      rv_name (rv)); \
		else \
			t_ok (rv != CKR_BUFFER_TOO_SMALL, "%s: %s", name, rv_name (rv)); \
		len = sizeof out; \
		t_rv ((after), CKR_OPERATION_NOT_INITIALIZED, "%s: the operation ended", name); \
		t_ok (session_idle (s, kind), "%s: ended at the backend too", name); \
	} while (0)

	/* decrypt */
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_Decrypt (RSA) of garbage ciphertext");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_Decrypt (s, garbage, 10, out, &len),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_Decrypt (RSA) of a 10-byte ciphertext");
	len = 0;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &rsa, k.open_priv),
	            (F->C_Decrypt (s, garbage, sizeof garbage, NULL, &len),
	             F->C_Decrypt (s, garbage, sizeof garbage, out, &len)),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_Decrypt (RSA) of garbage after a length query");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &cbc, k.open_aes),
	            F->C_Decrypt (s, garbage, 15, out, &len),
	            F->C_Decrypt (s, garbage, 16, out, &len),
	            "C_Decrypt (AES-CBC-PAD) of 15 bytes");
	/* Two blocks that decrypt to zeros: a final pad byte of 0 is never
	 * valid padding (random garbage would be, once in 256). */
	memset (zeros, 0, sizeof zeros);
	len = sizeof badpad;
	if (F->C_EncryptInit (s, &cbc_nopad, k.open_aes) != CKR_OK ||
	    F->C_Encrypt (s, zeros, sizeof zeros, badpad, &len) != CKR_OK || len != sizeof badpad)
		t_bail ("cannot make a ciphertext with bad padding");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &cbc, k.open_aes),
	            F->C_Decrypt (s, badpad, sizeof badpad, out, &len),
	            F->C_Decrypt (s, garbage, 16, out, &len),
	            "C_Decrypt (AES-CBC-PAD) with bad padding");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &cbc, k.open_aes),
	            (F->C_DecryptUpdate (s, badpad, sizeof badpad, out, &len), len = sizeof out,
	             F->C_DecryptFinal (s, out, &len)),
	            F->C_DecryptFinal (s, out, &len),
	            "C_DecryptFinal (AES-CBC-PAD) with bad padding");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &cbc, k.open_aes),
	            (F->C_DecryptUpdate (s, garbage, 17, out, &len), len = sizeof out,
	             F->C_DecryptFinal (s, out, &len)),
	            F->C_DecryptFinal (s, out, &len),
	            "C_DecryptFinal (AES-CBC-PAD) after 17 bytes");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_DecryptUpdate (s, garbage, sizeof garbage, out, &len),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_DecryptUpdate with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, true, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_DecryptFinal (s, out, &len),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_DecryptFinal with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, false, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_Decrypt (s, NULL, 0, out, &len),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_Decrypt (RSA) of NULL, 0 bytes");
	len = sizeof out;
	ERROR_ENDS (K_DECRYPT, false, F->C_DecryptInit (s, &cbc, k.open_aes),
	            F->C_Decrypt (s, NULL, 0, out, &len),
	            F->C_Decrypt (s, garbage, 16, out, &len),
	            "C_Decrypt (AES) of NULL, 0 bytes");
	ERROR_ENDS (K_DECRYPT, false, F->C_DecryptInit (s, &rsa, k.open_priv),
	            F->C_SessionCancel (s, CKF_DECRYPT),
	            F->C_Decrypt (s, garbage, sizeof garbage, out, &len),
	            "C_SessionCancel (CKF_DECRYPT), RSA");
	ERROR_ENDS (K_DECRYPT, false, F->C_DecryptInit (s, &cbc, k.open_aes),
	            (F->C_DecryptUpdate (s, garbage, 16, out, &len),
	             F->C_SessionCancel (s, CKF_DECRYPT)),
	            F->C_DecryptFinal (s, out, &len),
	            "C_SessionCancel (CKF_DECRYPT) after an update, AES");

	/* encrypt */
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, true, F->C_EncryptInit (s, &rsa, k.open_pub),
	            F->C_Encrypt (s, big, sizeof big, out, &len),
	            F->C_Encrypt (s, data, sizeof data, out, &len),
	            "C_Encrypt (RSA) of too much data");
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, true, F->C_EncryptInit (s, &cbc_nopad, k.open_aes),
	            F->C_Encrypt (s, big, 15, out, &len),
	            F->C_Encrypt (s, big, 16, out, &len),
	            "C_Encrypt (AES-CBC) of 15 bytes");
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, true, F->C_EncryptInit (s, &cbc_nopad, k.open_aes),
	            (F->C_EncryptUpdate (s, big, 15, out, &len), len = sizeof out,
	             F->C_EncryptFinal (s, out, &len)),
	            F->C_EncryptFinal (s, out, &len),
	            "C_EncryptFinal (AES-CBC) after 15 bytes");
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, true, F->C_EncryptInit (s, &rsa, k.open_pub),
	            F->C_EncryptUpdate (s, data, sizeof data, out, &len),
	            F->C_Encrypt (s, data, sizeof data, out, &len),
	            "C_EncryptUpdate with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, true, F->C_EncryptInit (s, &rsa, k.open_pub),
	            F->C_EncryptFinal (s, out, &len),
	            F->C_Encrypt (s, data, sizeof data, out, &len),
	            "C_EncryptFinal with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_ENCRYPT, false, F->C_EncryptInit (s, &rsa, k.open_pub),
	            F->C_Encrypt (s, NULL, 0, out, &len),
	            F->C_Encrypt (s, data, sizeof data, out, &len),
	            "C_Encrypt (RSA) of NULL, 0 bytes");
	ERROR_ENDS (K_ENCRYPT, false, F->C_EncryptInit (s, &rsa, k.open_pub),
	            F->C_SessionCancel (s, CKF_ENCRYPT),
	            F->C_Encrypt (s, data, sizeof data, out, &len),
	            "C_SessionCancel (CKF_ENCRYPT), RSA");
	ERROR_ENDS (K_ENCRYPT, false, F->C_EncryptInit (s, &cbc, k.open_aes),
	            (F->C_EncryptUpdate (s, data, 20, out, &len), F->C_SessionCancel (s, CKF_ENCRYPT)),
	            F->C_EncryptFinal (s, out, &len),
	            "C_SessionCancel (CKF_ENCRYPT) after an update, AES");

	/* digest */
	ERROR_ENDS (K_DIGEST, true, F->C_DigestInit (s, &sha),
	            F->C_DigestKey (s, k.open_priv),
	            F->C_DigestFinal (s, out, &len),
	            "C_DigestKey of a private key");
	len = sizeof out;
	ERROR_ENDS (K_DIGEST, false, F->C_DigestInit (s, &sha),
	            F->C_Digest (s, NULL, 0, out, &len),
	            F->C_Digest (s, data, sizeof data, out, &len),
	            "C_Digest of NULL, 0 bytes");
	ERROR_ENDS (K_DIGEST, false, F->C_DigestInit (s, &sha),
	            (F->C_DigestUpdate (s, data, 10), F->C_SessionCancel (s, CKF_DIGEST)),
	            F->C_DigestFinal (s, out, &len),
	            "C_SessionCancel (CKF_DIGEST) after an update");

	/* sign */
	len = sizeof out;
	ERROR_ENDS (K_SIGN, true, F->C_SignInit (s, &rsa, k.open_priv),
	            F->C_Sign (s, big, sizeof big, out, &len),
	            F->C_Sign (s, data, sizeof data, out, &len),
	            "C_Sign (RSA PKCS#1) of too much data");
	ERROR_ENDS (K_SIGN, true, F->C_SignInit (s, &rsa, k.open_priv),
	            F->C_SignUpdate (s, data, sizeof data),
	            F->C_Sign (s, data, sizeof data, out, &len),
	            "C_SignUpdate with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_SIGN, true, F->C_SignInit (s, &rsa, k.open_priv),
	            F->C_SignFinal (s, out, &len),
	            F->C_Sign (s, data, sizeof data, out, &len),
	            "C_SignFinal with a single-part RSA mechanism");
	len = sizeof out;
	ERROR_ENDS (K_SIGN, false, F->C_SignInit (s, &pkcs, k.open_priv),
	            F->C_Sign (s, NULL, 0, out, &len),
	            F->C_Sign (s, data, sizeof data, out, &len),
	            "C_Sign of NULL, 0 bytes");
	ERROR_ENDS (K_SIGN, false, F->C_SignInit (s, &pkcs, k.open_priv),
	            (F->C_SignUpdate (s, data, 10), F->C_SessionCancel (s, CKF_SIGN)),
	            F->C_SignFinal (s, out, &len),
	            "C_SessionCancel (CKF_SIGN) after an update");
	ERROR_ENDS (K_SIGN, false, F->C_SignInit (s, &rsa, k.open_priv),
	            F->C_SessionCancel (s, CKF_SIGN),
	            F->C_Sign (s, data, sizeof data, out, &len),
	            "C_SessionCancel (CKF_SIGN), single-part RSA");

	/* verify */
	memcpy (out, sig, sig_len);
	out[10] ^= 1;
	ERROR_ENDS (K_VERIFY, true, F->C_VerifyInit (s, &pkcs, k.open_pub),
	            F->C_Verify (s, data, sizeof data, out, sig_len),
	            F->C_Verify (s, data, sizeof data, sig, sig_len),
	            "C_Verify of a wrong signature");
	ERROR_ENDS (K_VERIFY, true, F->C_VerifyInit (s, &pkcs, k.open_pub),
	            F->C_Verify (s, data, sizeof data, sig, 10),
	            F->C_Verify (s, data, sizeof data, sig, sig_len),
	            "C_Verify of a 10-byte signature");
	ERROR_ENDS (K_VERIFY, true, F->C_VerifyInit (s, &pkcs, k.open_pub),
	            (F->C_VerifyUpdate (s, data, sizeof data), F->C_VerifyFinal (s, sig, 10)),
	            F->C_VerifyFinal (s, sig, sig_len),
	            "C_VerifyFinal of a 10-byte signature");
	ERROR_ENDS (K_VERIFY, true, F->C_VerifyInit (s, &rsa, k.open_pub),
	            F->C_VerifyUpdate (s, data, sizeof data),
	            F->C_Verify (s, data, sizeof data, sig, sig_len),
	            "C_VerifyUpdate with a single-part RSA mechanism");
	ERROR_ENDS (K_VERIFY, true, F->C_VerifyInit (s, &rsa, k.open_pub),
	            F->C_VerifyFinal (s, sig, sig_len),
	            F->C_Verify (s, data, sizeof data, sig, sig_len),
	            "C_VerifyFinal with a single-part RSA mechanism");
	ERROR_ENDS (K_VERIFY, false, F->C_VerifyInit (s, &pkcs, k.open_pub),
	            F->C_Verify (s, NULL, 0, sig, sig_len),
	            F->C_Verify (s, data, sizeof data, sig, sig_len),
	            "C_Verify of NULL, 0 bytes");
	ERROR_ENDS (K_VERIFY, false, F->C_VerifyInit (s, &pkcs, k.open_pub),
	            (F->C_VerifyUpdate (s, data, 10), F->C_SessionCancel (s, CKF_VERIFY)),
	            F->C_VerifyFinal (s, sig, sig_len),
	            "C_SessionCancel (CKF_VERIFY) after an update");

	/* find */
	ERROR_ENDS (K_FIND, false, F->C_FindObjectsInit (s, NULL, 0),
	            F->C_SessionCancel (s, CKF_FIND_OBJECTS),
	            F->C_FindObjects (s, h, 4, &n),
	            "C_SessionCancel (CKF_FIND_OBJECTS)");
#undef ERROR_ENDS

	/* A gated key refused at Init leaves nothing active. */
	t_rv (F->C_DecryptInit (s, &rsa, k.gated_priv), CKR_FUNCTION_REJECTED,
	      "C_DecryptInit with a gated key");
	len = sizeof out;
	t_rv (F->C_Decrypt (s, garbage, sizeof garbage, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "a refused C_DecryptInit starts nothing");
	t_ok (session_idle (s, K_DECRYPT), "a refused C_DecryptInit leaves the session idle");

	/* Decrypting a real ciphertext still works after all that. */
	ct_len = sizeof ct;
	t_rv (encrypt_rsa (s, k.open_pub, data, sizeof data, ct, &ct_len), CKR_OK, "C_Encrypt (RSA)");
	t_rv (F->C_DecryptInit (s, &rsa, k.open_priv), CKR_OK, "C_DecryptInit");
	len = sizeof out;
	t_rv (F->C_Decrypt (s, ct, ct_len, out, &len), CKR_OK, "C_Decrypt");
	t_ok (len == sizeof data && memcmp (out, data, len) == 0, "C_Decrypt: the plaintext");
	F->C_CloseSession (s);
}

/* ------------------------------------------------------------ login and session states */

/* How many private objects the session sees. */
static CK_ULONG
count_private (CK_SESSION_HANDLE s)
{
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t = { CKA_PRIVATE, &yes, sizeof yes };
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n = 0;

	if (F->C_FindObjectsInit (s, &t, 1) != CKR_OK)
		return (CK_ULONG)-1;
	if (F->C_FindObjects (s, h, 64, &n) != CKR_OK)
		n = (CK_ULONG)-1;
	F->C_FindObjectsFinal (s);
	return n;
}

static CK_FLAGS
token_flags (CK_SLOT_ID id)
{
	CK_TOKEN_INFO ti;
	if (F->C_GetTokenInfo (id, &ti) != CKR_OK)
		return 0;
	return ti.flags;
}

static void
test_login (void)
{
	CK_UTF8CHAR_PTR pin = (CK_UTF8CHAR_PTR)mt_pin (), so = (CK_UTF8CHAR_PTR)mt_so_pin ();
	CK_ULONG pin_len = strlen (mt_pin ()), so_len = strlen (mt_so_pin ());
	CK_UTF8CHAR wrong[] = "0000", new_pin[] = "9999", spare_pin[] = "1111";
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE ro, w, w2, sp, h;
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_FLAGS flags;
	unsigned int max = (unsigned int)atoi (mt_env ("P11W_PIN_MAX_FAILURES", "5"));

	/* Logged out to begin with: closing every session of the slot logs the
	 * application out (3.0, 5.6 C_CloseSession). */
	t_rv (F->C_CloseAllSessions (slot), CKR_OK, "C_CloseAllSessions");
	t_rv (F->C_GetSessionInfo (rw, &si), CKR_SESSION_HANDLE_INVALID,
	      "C_CloseAllSessions closed the session");
	ro = mt_open (slot, false);
	w = mt_open (slot, true);
	t_ok (mt_state (ro) == CKS_RO_PUBLIC_SESSION, "R/O session: CKS_RO_PUBLIC_SESSION");
	t_ok (mt_state (w) == CKS_RW_PUBLIC_SESSION, "R/W session: CKS_RW_PUBLIC_SESSION");
	t_rv (F->C_GetSessionInfo (w, &si), CKR_OK, "C_GetSessionInfo");
	t_ok (si.slotID == slot && si.flags == (CKF_SERIAL_SESSION | CKF_RW_SESSION) &&
	      si.ulDeviceError == 0, "C_GetSessionInfo: slot, flags, no device error");
	t_ok (count_private (w) == 0, "logged out: no private object visible (the backend too)");

	/* The user PIN. */
	t_rv (F->C_Login (ro, CKU_USER, wrong, 4), CKR_PIN_INCORRECT, "C_Login: wrong PIN");
	t_ok (token_flags (slot) & CKF_USER_PIN_COUNT_LOW, "one failure: CKF_USER_PIN_COUNT_LOW");
	/* CKR_PIN_LEN_RANGE is not among C_Login's return values (3.0, 5.6):
	 * a PIN too short to be right is simply wrong. */
	t_rv (F->C_Login (ro, CKU_USER, wrong, 1), CKR_PIN_INCORRECT, "C_Login: 1-byte PIN");
	t_rv (F->C_Login (ro, CKU_CONTEXT_SPECIFIC, pin, pin_len), CKR_USER_NOT_LOGGED_IN,
	      "C_Login (CKU_CONTEXT_SPECIFIC) before the user");
	t_ok (mt_state (ro) == CKS_RO_PUBLIC_SESSION, "a failed login changes no state");
	t_rv (F->C_Login (ro, CKU_USER, pin, pin_len), CKR_OK, "C_Login: user, on the R/O session");
	t_ok (!(token_flags (slot) & CKF_USER_PIN_COUNT_LOW), "a good PIN resets the failure count");
	t_ok (mt_state (ro) == CKS_RO_USER_FUNCTIONS, "R/O session: CKS_RO_USER_FUNCTIONS");
	t_ok (mt_state (w) == CKS_RW_USER_FUNCTIONS,
	      "R/W session: CKS_RW_USER_FUNCTIONS (a login is per application and token)");
	t_ok (count_private (w) > 0, "logged in: the private objects are visible");
	h = mt_open (slot, false);
	t_ok (mt_state (h) == CKS_RO_USER_FUNCTIONS, "a session opened after the login is logged in");
	F->C_CloseSession (h);
	t_rv (F->C_Login (w, CKU_USER, pin, pin_len), CKR_USER_ALREADY_LOGGED_IN,
	      "C_Login: user again");
	t_rv (F->C_Login (w, CKU_SO, so, so_len), CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
	      "C_Login: SO while the user is");
	t_rv (F->C_InitPIN (w, pin, pin_len), CKR_USER_NOT_LOGGED_IN, "C_InitPIN as the user");
	t_rv (F->C_Logout (ro), CKR_OK, "C_Logout");
	t_rv (F->C_Logout (ro), CKR_USER_NOT_LOGGED_IN, "C_Logout twice");
	t_ok (mt_state (ro) == CKS_RO_PUBLIC_SESSION && mt_state (w) == CKS_RW_PUBLIC_SESSION,
	      "after C_Logout: public sessions");
	t_ok (count_private (w) == 0, "after C_Logout: no private object visible");
	t_rv (F->C_InitPIN (w, pin, pin_len), CKR_USER_NOT_LOGGED_IN, "C_InitPIN in a public session");

	/* The SO. */
	t_rv (F->C_Login (w, CKU_SO, so, so_len), CKR_SESSION_READ_ONLY_EXISTS,
	      "C_Login: SO with a R/O session open");
	t_rv (F->C_CloseSession (ro), CKR_OK, "C_CloseSession (the R/O one)");
	t_rv (F->C_Login (w, CKU_SO, wrong, 4), CKR_PIN_INCORRECT, "C_Login: wrong SO PIN");
	t_rv (F->C_Login (w, CKU_SO, so, so_len), CKR_OK, "C_Login: SO");
	t_ok (mt_state (w) == CKS_RW_SO_FUNCTIONS, "CKS_RW_SO_FUNCTIONS");
	t_rv (F->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &h),
	      CKR_SESSION_READ_WRITE_SO_EXISTS, "C_OpenSession (R/O) while the SO is logged in");
	w2 = mt_open (slot, true);
	t_ok (mt_state (w2) == CKS_RW_SO_FUNCTIONS, "a new R/W session: CKS_RW_SO_FUNCTIONS");
	t_rv (F->C_Login (w2, CKU_SO, so, so_len), CKR_USER_ALREADY_LOGGED_IN, "C_Login: SO again");
	t_rv (F->C_Login (w2, CKU_USER, pin, pin_len), CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
	      "C_Login: user while the SO is");
	t_ok (count_private (w2) == 0,
	      "the SO administers p11-warden's token: no private backend object visible");
	t_rv (F->C_InitPIN (w2, pin, pin_len), CKR_OK, "C_InitPIN as the SO");
	t_rv (F->C_Logout (w2), CKR_OK, "C_Logout (SO)");
	t_ok (mt_state (w) == CKS_RW_PUBLIC_SESSION, "after the SO's logout: public");
	F->C_CloseSession (w2);

	/* C_SetPIN */
	ro = mt_open (slot, false);
	t_rv (F->C_SetPIN (ro, pin, pin_len, new_pin, 4), CKR_SESSION_READ_ONLY,
	      "C_SetPIN in a R/O session");
	t_rv (F->C_SetPIN (w, wrong, 4, new_pin, 4), CKR_PIN_INCORRECT, "C_SetPIN: wrong old PIN");
	t_rv (F->C_SetPIN (w, pin, pin_len, new_pin, 2), CKR_PIN_LEN_RANGE,
	      "C_SetPIN: new PIN too short");
	t_rv (F->C_SetPIN (w, pin, pin_len, new_pin, 4), CKR_OK, "C_SetPIN (public session)");
	t_rv (F->C_Login (w, CKU_USER, pin, pin_len), CKR_PIN_INCORRECT, "the old PIN is gone");
	t_rv (F->C_Login (w, CKU_USER, new_pin, 4), CKR_OK, "C_Login with the new PIN");
	t_rv (F->C_SetPIN (w, new_pin, 4, pin, pin_len), CKR_OK, "C_SetPIN back (user session)");
	t_rv (F->C_Logout (w), CKR_OK, "C_Logout");
	t_rv (F->C_Login (w, CKU_USER, pin, pin_len), CKR_OK, "C_Login with the first PIN again");

	/* Closing the last session logs out, the backend too. */
	t_rv (F->C_CloseSession (ro), CKR_OK, "C_CloseSession");
	t_ok (mt_state (w) == CKS_RW_USER_FUNCTIONS, "one session left: still logged in");
	t_rv (F->C_CloseSession (w), CKR_OK, "C_CloseSession (the last one)");
	w = mt_open (slot, true);
	t_ok (mt_state (w) == CKS_RW_PUBLIC_SESSION, "after the last session closed: public");
	t_ok (count_private (w) == 0, "after the last session closed: no private object visible");

	/* The spare slot: C_InitToken, C_InitPIN, and the lockout. */
	memset (label, ' ', sizeof label);
	memcpy (label, "spare", 5);
	flags = token_flags (spare);
	t_ok (!(flags & CKF_TOKEN_INITIALIZED), "spare slot: token not initialised");
	t_rv (F->C_InitToken (spare, so, 2, label), CKR_PIN_LEN_RANGE, "C_InitToken: short SO PIN");
	t_rv (F->C_InitToken (spare, so, so_len, label), CKR_OK, "C_InitToken (spare)");
	t_rv (F->C_GetTokenInfo (spare, &ti), CKR_OK, "C_GetTokenInfo (spare)");
	t_ok ((ti.flags & CKF_TOKEN_INITIALIZED) && !(ti.flags & CKF_USER_PIN_INITIALIZED) &&
	      memcmp (ti.label, label, sizeof label) == 0,
	      "spare: initialised, labelled, no user PIN yet");
	sp = mt_open (spare, true);
	t_rv (F->C_InitToken (spare, so, so_len, label), CKR_SESSION_EXISTS,
	      "C_InitToken with a session open");
	t_rv (F->C_Login (sp, CKU_USER, spare_pin, 4), CKR_USER_PIN_NOT_INITIALIZED,
	      "C_Login before C_InitPIN");
	t_rv (F->C_Login (sp, CKU_SO, so, so_len), CKR_OK, "C_Login: SO (spare)");
	t_rv (F->C_InitPIN (sp, spare_pin, 2), CKR_PIN_LEN_RANGE, "C_InitPIN: short PIN");
	t_rv (F->C_InitPIN (sp, NULL, 4), CKR_ARGUMENTS_BAD, "C_InitPIN: NULL PIN");
	t_rv (F->C_InitPIN (sp, spare_pin, 4), CKR_OK, "C_InitPIN (spare)");
	t_rv (F->C_Logout (sp), CKR_OK, "C_Logout (SO)");
	t_ok (token_flags (spare) & CKF_USER_PIN_INITIALIZED, "spare: CKF_USER_PIN_INITIALIZED");
	t_ok (mt_state (w) == CKS_RW_PUBLIC_SESSION, "the other slot's login state is its own");
	for (unsigned int i = 1; i <= max; i++) {
		t_rv (F->C_Login (sp, CKU_USER, wrong, 4), CKR_PIN_INCORRECT, "wrong PIN, try %u of %u",
		      i, max);
		flags = token_flags (spare);
		if (i + 1 < max)
			t_ok (flags & CKF_USER_PIN_COUNT_LOW, "after %u: CKF_USER_PIN_COUNT_LOW", i);
		else if (i + 1 == max)
			t_ok (flags & CKF_USER_PIN_FINAL_TRY, "after %u: CKF_USER_PIN_FINAL_TRY", i);
		else
			t_ok (flags & CKF_USER_PIN_LOCKED, "after %u: CKF_USER_PIN_LOCKED", i);
	}
	t_rv (F->C_Login (sp, CKU_USER, spare_pin, 4), CKR_PIN_LOCKED, "locked: the right PIN too");
	t_rv (F->C_Login (sp, CKU_USER, wrong, 4), CKR_PIN_LOCKED, "locked: a wrong PIN");
	t_ok (mt_state (sp) == CKS_RW_PUBLIC_SESSION, "locked: still public");
	t_rv (F->C_Login (sp, CKU_SO, so, so_len), CKR_OK, "the SO logs in");
	t_rv (F->C_InitPIN (sp, spare_pin, 4), CKR_OK, "C_InitPIN resets the locked user PIN");
	t_rv (F->C_Logout (sp), CKR_OK, "C_Logout (SO)");
	t_ok (!(token_flags (spare) & CKF_USER_PIN_LOCKED), "spare: unlocked");
	t_rv (F->C_Login (sp, CKU_USER, spare_pin, 4), CKR_OK, "C_Login after the reset");
	t_ok (mt_state (sp) == CKS_RW_USER_FUNCTIONS, "spare: CKS_RW_USER_FUNCTIONS");
	t_ok (mt_state (w) == CKS_RW_PUBLIC_SESSION, "the gated slot is still public");
	t_rv (F->C_CloseSession (sp), CKR_OK, "C_CloseSession (spare)");

	/* Back to the state the other checks expect.  SoftHSM hands out new
	 * object handles once every session of its token has closed. */
	rw = w;
	mt_login (rw);
	mt_keys (rw, &k);
}

/* ------------------------------------------------------------ the gate */

/* The raw EC point (04 || X || Y) of an EC public key, from its DER
 * OCTET STRING in CKA_EC_POINT. */
static CK_ULONG
ec_point (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_BYTE *out, CK_ULONG max)
{
	CK_BYTE der[160];
	CK_ATTRIBUTE a = { CKA_EC_POINT, der, sizeof der };

	if (F->C_GetAttributeValue (s, pub, &a, 1) != CKR_OK || a.ulValueLen < 3 || der[0] != 0x04 ||
	    der[1] != a.ulValueLen - 2 || a.ulValueLen - 2 > max)
		t_bail ("CKA_EC_POINT: not a short DER OCTET STRING");
	memcpy (out, der + 2, a.ulValueLen - 2);
	return a.ulValueLen - 2;
}

static CK_RV
derive_ecdh (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE base, CK_OBJECT_HANDLE peer_pub,
             CK_OBJECT_HANDLE *out)
{
	CK_BYTE point[160];
	CK_ECDH1_DERIVE_PARAMS p;
	CK_MECHANISM m = { CKM_ECDH1_DERIVE, &p, sizeof p };
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL no = CK_FALSE;
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_VALUE_LEN, &len, sizeof len },
	};

	memset (&p, 0, sizeof p);
	p.kdf = CKD_NULL;
	p.ulPublicDataLen = ec_point (s, peer_pub, point, sizeof point);
	p.pPublicData = point;
	*out = CK_INVALID_HANDLE;
	return F->C_DeriveKey (s, &m, base, t, N_ELEMS (t), out);
}

/* A session AES-256 key made by unwrapping, labelled nothing. */
static CK_RV
unwrap_aes (CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
            CK_BYTE *wrapped, CK_ULONG wrapped_len, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_ENCRYPT, &yes, sizeof yes },
	};
	*out = CK_INVALID_HANDLE;
	return F->C_UnwrapKey (s, m, unwrapping, wrapped, wrapped_len, t, N_ELEMS (t), out);
}

/* AES-ECB of one block with @key: compares two keys without reading them. */
static bool
ecb_block (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE out[16])
{
	CK_MECHANISM m = { CKM_AES_ECB, NULL, 0 };
	CK_ULONG len = 16;
	return F->C_EncryptInit (s, &m, key) == CKR_OK &&
	       F->C_Encrypt (s, data, 16, out, &len) == CKR_OK && len == 16;
}

#define DENIED(call, name) \
	do { \
		t_rv ((call), CKR_FUNCTION_REJECTED, "gate: %s", name); \
		t_ok (sign_works (s), "gate: the session still signs after: %s", name); \
	} while (0)

static void
test_gate (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM raw = { CKM_RSA_X_509, NULL, 0 };
	CK_MECHANISM cbc = { CKM_AES_CBC_PAD, (CK_BYTE *)"0123456789abcdef", 16 };
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE ct[512], out[512], wrapped[64], garbage[256], e1[16], e2[16], value[64];
	CK_BYTE block[256];
	CK_ULONG ct_len = sizeof ct, len, wrapped_len, before;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ATTRIBUTE a;
	CK_ATTRIBUTE label_and_value[2];
	CK_ATTRIBUTE open_label = { CKA_LABEL, (void *)KEY_OPEN_AES, strlen (KEY_OPEN_AES) };
	CK_BBOOL no = CK_FALSE;
	/* Names the configuration leaves ungated (module-env.sh). */
	CK_ATTRIBUTE ungated_label = { CKA_LABEL, (void *)KEY_OPEN_RSA, strlen (KEY_OPEN_RSA) };
	CK_ATTRIBUTE ungated_copy_t[] = {
		{ CKA_LABEL, (void *)KEY_OPEN_AES_B, strlen (KEY_OPEN_AES_B) },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE copy_t[] = {
		{ CKA_LABEL, (void *)"open-aes-copy", 13 },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE session_only = { CKA_TOKEN, &no, sizeof no };

	t_ok (CKR_FUNCTION_REJECTED == 0x200, "a denial is CKR_FUNCTION_REJECTED, 0x200");

	/* A handle belongs to the slot that handed it out.  SoftHSM accepts one
	 * token's handles in a session of another; through p11-warden a gated
	 * key must not cross into another slot (whose gating may differ). */
	{
		CK_SESSION_HANDLE other = mt_open (spare, true);
		CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
		CK_BYTE lbl[64];
		CK_ATTRIBUTE la = { CKA_LABEL, lbl, sizeof lbl };
		t_rv (F->C_DecryptInit (other, &pkcs, k.gated_priv), CKR_KEY_HANDLE_INVALID,
		      "handles: the hsm slot's gated key is not a key in the spare slot");
		t_rv (F->C_SignInit (other, &pkcs, k.open_priv), CKR_KEY_HANDLE_INVALID,
		      "handles: ... nor its ungated one");
		t_rv (F->C_GetAttributeValue (other, k.gated_aes, &la, 1), CKR_OBJECT_HANDLE_INVALID,
		      "handles: ... nor an object there");
		t_rv (F->C_DestroyObject (other, k.open_aes_b), CKR_OBJECT_HANDLE_INVALID,
		      "handles: ... it cannot be destroyed from there");
		t_rv (F->C_GetAttributeValue (s, k.gated_aes, &la, 1), CKR_OK,
		      "handles: it is still an object in its own slot");
		F->C_CloseSession (other);
	}
	/* As an RSA ciphertext, 1: it decrypts to 1, no valid padding. */
	memset (garbage, 0, sizeof garbage);
	garbage[sizeof garbage - 1] = 1;
	memset (block, 0, sizeof block);
	block[255] = 1;

	/* Decryption. */
	t_rv (encrypt_rsa (s, k.gated_pub, data, sizeof data, ct, &ct_len), CKR_OK,
	      "gate: encryption with a gated public key passes");
	DENIED (F->C_DecryptInit (s, &rsa, k.gated_priv), "C_DecryptInit (RSA), gated key");
	DENIED (F->C_DecryptInit (s, &raw, k.gated_priv), "C_DecryptInit (raw RSA), gated key");
	DENIED (F->C_DecryptInit (s, &cbc, k.gated_aes), "C_DecryptInit (AES), gated key");
	len = sizeof out;
	t_rv (F->C_Decrypt (s, ct, ct_len, out, &len), CKR_OPERATION_NOT_INITIALIZED,
	      "gate: nothing to decrypt with after the denials");
	ct_len = sizeof ct;
	t_rv (encrypt_rsa (s, k.open_pub, data, sizeof data, ct, &ct_len), CKR_OK, "C_Encrypt (RSA)");
	t_rv (F->C_DecryptInit (s, &rsa, k.open_priv), CKR_OK, "ungated: C_DecryptInit (RSA)");
	len = sizeof out;
	t_rv (F->C_Decrypt (s, ct, ct_len, out, &len), CKR_OK, "ungated: C_Decrypt (RSA)");
	t_ok (len == sizeof data && memcmp (out, data, len) == 0, "ungated: the plaintext");
	t_rv (F->C_DecryptInit (s, &cbc, k.open_aes), CKR_OK, "ungated: C_DecryptInit (AES)");
	t_rv (F->C_SessionCancel (s, CKF_DECRYPT), CKR_OK, "C_SessionCancel");

	/* Raw RSA: decryption by another name. */
	DENIED (F->C_SignInit (s, &raw, k.gated_priv), "C_SignInit (CKM_RSA_X_509), gated key");
	DENIED (F->C_SignRecoverInit (s, &raw, k.gated_priv),
	        "C_SignRecoverInit (CKM_RSA_X_509), gated key");
	t_rv (F->C_SignInit (s, &raw, k.open_priv), CKR_OK, "ungated: C_SignInit (CKM_RSA_X_509)");
	len = sizeof out;
	t_rv (F->C_Sign (s, block, sizeof block, out, &len), CKR_OK, "ungated: C_Sign (CKM_RSA_X_509)");
	t_ok (len == 256, "ungated: a raw RSA result of 256 bytes");
	t_rv (F->C_EncryptInit (s, &raw, k.gated_pub), CKR_OK,
	      "gate: raw RSA with a gated public key passes");
	t_rv (F->C_SessionCancel (s, CKF_ENCRYPT), CKR_OK, "C_SessionCancel");

	/* Wrapping: the key that would leave the token is the one guarded. */
	before = count_objects (s);
	len = sizeof wrapped;
	DENIED (F->C_WrapKey (s, &wrap, k.open_aes, k.gated_aes, wrapped, &len),
	        "C_WrapKey of a gated key");
	len = 0;
	DENIED (F->C_WrapKey (s, &wrap, k.open_aes, k.gated_aes, NULL, &len),
	        "C_WrapKey of a gated key, length query");
	wrapped_len = sizeof wrapped;
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, wrapped, &wrapped_len), CKR_OK,
	      "ungated: C_WrapKey");
	len = sizeof out;
	/* Wrapping under a gated key is encryption under it: an oracle. */
	DENIED (F->C_WrapKey (s, &wrap, k.gated_aes, k.open_aes_b, out, &len),
	        "C_WrapKey under a gated wrapping key");

	/* Any use of a gated secret key can be an oracle: encrypting in CTR
	 * mode decrypts, ECB and CMAC give the block function. */
	{
		CK_BYTE iv[16] = { 0 };
		CK_MECHANISM ctr_m = { CKM_AES_CBC, iv, sizeof iv };
		CK_MECHANISM ecb_m = { CKM_AES_ECB, NULL, 0 };
		CK_MECHANISM cmac_m = { CKM_AES_CMAC, NULL, 0 };
		CK_MECHANISM concat_m = { CKM_CONCATENATE_BASE_AND_KEY, &k.gated_aes,
			                  sizeof k.gated_aes };
		CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
		CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
		CK_ATTRIBUTE dt[] = { { CKA_CLASS, &sk, sizeof sk }, { CKA_KEY_TYPE, &gk, sizeof gk } };
		/* A signature mechanism needs the right kind of key: SoftHSM takes
		 * PSS or DSA on a secret key at C_SignInit and crashes in C_Sign. */
		{
			CK_MECHANISM pss_m = { CKM_RSA_PKCS_PSS, NULL, 0 };
			CK_MECHANISM dsa_m = { CKM_DSA, NULL, 0 };
			CK_MECHANISM ecdsa_m = { CKM_ECDSA, NULL, 0 };
			t_rv (F->C_SignInit (s, &pss_m, k.open_aes), CKR_KEY_TYPE_INCONSISTENT,
			      "gate: C_SignInit (RSA-PSS) with a secret key");
			t_rv (F->C_SignInit (s, &dsa_m, k.gated_aes), CKR_KEY_TYPE_INCONSISTENT,
			      "gate: C_SignInit (DSA) with a secret key");
			t_rv (F->C_SignInit (s, &ecdsa_m, k.open_priv), CKR_KEY_TYPE_INCONSISTENT,
			      "gate: C_SignInit (ECDSA) with an RSA key");
			t_rv (F->C_VerifyInit (s, &pss_m, k.gated_priv), CKR_KEY_TYPE_INCONSISTENT,
			      "gate: C_VerifyInit (RSA-PSS) with a private key");
			t_ok (sign_works (s), "gate: the session still signs after the refusals");
		}
		DENIED (F->C_EncryptInit (s, &ctr_m, k.gated_aes), "C_EncryptInit (AES-CBC), gated key");
		DENIED (F->C_EncryptInit (s, &ecb_m, k.gated_aes), "C_EncryptInit (AES-ECB), gated key");
		DENIED (F->C_SignInit (s, &cmac_m, k.gated_aes), "C_SignInit (AES-CMAC), gated key");
		DENIED (F->C_VerifyInit (s, &cmac_m, k.gated_aes), "C_VerifyInit (AES-CMAC), gated key");
		t_rv (F->C_EncryptInit (s, &ecb_m, k.open_aes), CKR_OK, "ungated: C_EncryptInit (AES-ECB)");
		t_rv (F->C_SessionCancel (s, CKF_ENCRYPT), CKR_OK, "C_SessionCancel (encrypt)");
		/* A derivation whose parameters carry a second key is refused in a
		 * gated slot, whatever the base key: the gate cannot see it. */
		h = CK_INVALID_HANDLE;
		DENIED (F->C_DeriveKey (s, &concat_m, k.open_aes, dt, 2, &h),
		        "C_DeriveKey (CONCATENATE_BASE_AND_KEY), gated key in the parameters");
		t_ok (h == CK_INVALID_HANDLE, "gate: ... and no key was made");
	}

	/* Searching by a secret value would test guesses of gated keys; a
	 * certificate or public key may be found by its value. */
	{
		CK_BYTE guess[32] = { 0 };
		CK_OBJECT_CLASS sk = CKO_SECRET_KEY, cert = CKO_CERTIFICATE;
		CK_ATTRIBUTE by_value[] = { { CKA_VALUE, guess, sizeof guess } };
		CK_ATTRIBUTE key_by_value[] = { { CKA_CLASS, &sk, sizeof sk },
			                        { CKA_VALUE, guess, sizeof guess } };
		CK_ATTRIBUTE cert_by_value[] = { { CKA_CLASS, &cert, sizeof cert },
			                         { CKA_VALUE, guess, sizeof guess } };
		DENIED (F->C_FindObjectsInit (s, by_value, 1), "C_FindObjectsInit by CKA_VALUE");
		DENIED (F->C_FindObjectsInit (s, key_by_value, 2),
		        "C_FindObjectsInit of secret keys by CKA_VALUE");
		t_rv (F->C_FindObjectsInit (s, cert_by_value, 2), CKR_OK,
		      "gate: C_FindObjectsInit of certificates by CKA_VALUE passes");
		t_rv (F->C_FindObjectsFinal (s), CKR_OK, "C_FindObjectsFinal");
	}

	/* Unwrapping: the unwrapping key is the one guarded; nothing is made. */
	DENIED (unwrap_aes (s, &wrap, k.gated_aes, wrapped, wrapped_len, &h),
	        "C_UnwrapKey (AES key wrap), gated unwrapping key");
	t_ok (h == CK_INVALID_HANDLE, "gate: a refused C_UnwrapKey returns no handle");
	DENIED (unwrap_aes (s, &rsa, k.gated_priv, ct, ct_len, &h),
	        "C_UnwrapKey (RSA), gated unwrapping key");
	t_ok (count_objects (s) == before, "gate: the refused unwraps made no object");
	t_rv (unwrap_aes (s, &wrap, k.open_aes, wrapped, wrapped_len, &h), CKR_OK,
	      "ungated: C_UnwrapKey");
	t_ok (h != CK_INVALID_HANDLE && ecb_block (s, h, e1) && ecb_block (s, k.open_aes_b, e2) &&
	      memcmp (e1, e2, 16) == 0, "ungated: the unwrapped key is the wrapped one");
	t_rv (F->C_DestroyObject (s, h), CKR_OK, "C_DestroyObject (the unwrapped key)");

	/* A failed unwrap leaves no half-made object. */
	before = count_objects (s);
	t_ok (unwrap_aes (s, &wrap, k.open_aes, garbage, 40, &h) != CKR_OK,
	      "C_UnwrapKey (AES key wrap) of garbage fails");
	t_ok (h == CK_INVALID_HANDLE, "a failed C_UnwrapKey returns no handle");
	t_ok (unwrap_aes (s, &wrap, k.open_aes, garbage, 12, &h) != CKR_OK,
	      "C_UnwrapKey (AES key wrap) of 12 bytes fails");
	t_ok (unwrap_aes (s, &rsa, k.open_priv, garbage, sizeof garbage, &h) != CKR_OK,
	      "C_UnwrapKey (RSA) of garbage fails");
	t_ok (count_objects (s) == before, "the failed unwraps left no object behind (%lu before)",
	      (unsigned long)before);
	{
		/* Templates SoftHSM refuses only after it has made the object
		 * (CKR_ATTRIBUTE_READ_ONLY): it leaves a key without a value behind
		 * and returns no handle for it.  A sign operation is active
		 * meanwhile: the clean-up must not disturb it. */
		CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
		CK_KEY_TYPE type = CKK_AES;
		CK_BBOOL yes = CK_TRUE;
		CK_ULONG len16 = 16, len32 = 32;
		CK_MECHANISM keygen = { CKM_AES_KEY_GEN, NULL, 0 };
		CK_MECHANISM pkcs = { CKM_SHA256_RSA_PKCS, NULL, 0 };
		CK_ATTRIBUTE unwrap_t[] = {
			{ CKA_CLASS, &klass, sizeof klass },
			{ CKA_KEY_TYPE, &type, sizeof type },
			{ CKA_TOKEN, &no, sizeof no },
			{ CKA_VALUE_LEN, &len16, sizeof len16 },
		};
		CK_ATTRIBUTE unwrap_token_t[] = {
			{ CKA_CLASS, &klass, sizeof klass },
			{ CKA_KEY_TYPE, &type, sizeof type },
			{ CKA_TOKEN, &yes, sizeof yes },
			{ CKA_LABEL, (void *)"half-made", 9 },
			{ CKA_VALUE_LEN, &len32, sizeof len32 },
		};
		CK_ATTRIBUTE create_t[] = {
			{ CKA_CLASS, &klass, sizeof klass },
			{ CKA_KEY_TYPE, &type, sizeof type },
			{ CKA_TOKEN, &yes, sizeof yes },
			{ CKA_VALUE, value, 32 },
			{ CKA_VALUE_LEN, &len32, sizeof len32 },
		};
		CK_ATTRIBUTE generate_t[] = {
			{ CKA_TOKEN, &yes, sizeof yes },
			{ CKA_VALUE_LEN, &len32, sizeof len32 },
			{ CKA_LOCAL, &no, sizeof no },
		};
		CK_RV rv;

		memset (value, 0x11, 32);
		before = count_objects (s);
		t_rv (F->C_SignInit (s, &pkcs, k.open_priv), CKR_OK, "C_SignInit (kept across)");
		h = CK_INVALID_HANDLE;
		rv = F->C_UnwrapKey (s, &wrap, k.open_aes, wrapped, wrapped_len, unwrap_t,
		                     N_ELEMS (unwrap_t), &h);
		t_ok (rv != CKR_OK && h == CK_INVALID_HANDLE,
		      "C_UnwrapKey with CKA_VALUE_LEN in the template fails (%s)", rv_name (rv));
		rv = F->C_UnwrapKey (s, &wrap, k.open_aes, wrapped, wrapped_len, unwrap_token_t,
		                     N_ELEMS (unwrap_token_t), &h);
		t_ok (rv != CKR_OK && h == CK_INVALID_HANDLE,
		      "C_UnwrapKey to a token object with CKA_VALUE_LEN fails (%s)", rv_name (rv));
		rv = F->C_CreateObject (s, create_t, N_ELEMS (create_t), &h);
		t_ok (rv != CKR_OK, "C_CreateObject of a token key with CKA_VALUE_LEN fails (%s)",
		      rv_name (rv));
		rv = F->C_GenerateKey (s, &keygen, generate_t, N_ELEMS (generate_t), &h);
		t_ok (rv != CKR_OK, "C_GenerateKey with CKA_LOCAL false fails (%s)", rv_name (rv));
		len = sizeof out;
		t_rv (F->C_Sign (s, data, sizeof data, out, &len), CKR_OK,
		      "the sign operation went on through the clean-ups");
		t_ok (count_objects (s) == before,
		      "refused templates left no object behind, on the token or in the session");
	}

	/* Derivation (ECDH). */
	before = count_objects (s);
	DENIED (derive_ecdh (s, k.gated_ec, k.open_ec_pub, &h), "C_DeriveKey (ECDH), gated base key");
	t_ok (count_objects (s) == before, "gate: the refused derivation made no object");
	t_rv (derive_ecdh (s, k.open_ec, k.gated_ec_pub, &h), CKR_OK, "ungated: C_DeriveKey (ECDH)");
	t_ok (h != CK_INVALID_HANDLE, "ungated: a derived key");
	if (h != CK_INVALID_HANDLE)
		F->C_DestroyObject (s, h);

	/* Reading secret attributes. */
	a.type = CKA_VALUE;
	a.pValue = value;
	a.ulValueLen = sizeof value;
	DENIED (F->C_GetAttributeValue (s, k.gated_aes, &a, 1),
	        "C_GetAttributeValue (CKA_VALUE) of a gated extractable AES key");
	a.pValue = NULL;
	a.ulValueLen = 0;
	DENIED (F->C_GetAttributeValue (s, k.gated_aes, &a, 1),
	        "C_GetAttributeValue (CKA_VALUE) of a gated key, length query");
	label_and_value[0].type = CKA_LABEL;
	label_and_value[0].pValue = out;
	label_and_value[0].ulValueLen = sizeof out;
	label_and_value[1].type = CKA_VALUE;
	label_and_value[1].pValue = value;
	label_and_value[1].ulValueLen = sizeof value;
	DENIED (F->C_GetAttributeValue (s, k.gated_aes, label_and_value, 2),
	        "C_GetAttributeValue (CKA_LABEL, CKA_VALUE) of a gated key");
	a.type = CKA_LABEL;
	a.pValue = out;
	a.ulValueLen = sizeof out;
	t_rv (F->C_GetAttributeValue (s, k.gated_aes, &a, 1), CKR_OK,
	      "gate: CKA_LABEL of a gated key passes");
	a.type = CKA_MODULUS;
	a.ulValueLen = sizeof out;
	t_rv (F->C_GetAttributeValue (s, k.gated_pub, &a, 1), CKR_OK,
	      "gate: CKA_MODULUS of a gated public key passes");
	a.type = CKA_PRIVATE_EXPONENT;
	a.ulValueLen = sizeof out;
	t_rv (F->C_GetAttributeValue (s, k.gated_priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE,
	      "gate: a sensitive attribute is the backend's to refuse");
	a.type = CKA_VALUE;
	a.pValue = value;
	a.ulValueLen = sizeof value;
	t_rv (F->C_GetAttributeValue (s, k.open_aes, &a, 1), CKR_OK,
	      "ungated: C_GetAttributeValue (CKA_VALUE)");
	t_ok (a.ulValueLen == 32, "ungated: 32 bytes of key");

	/* C_DigestKey */
	t_rv (F->C_DigestInit (s, &sha), CKR_OK, "C_DigestInit");
	DENIED (F->C_DigestKey (s, k.gated_aes), "C_DigestKey of a gated key");
	t_rv (F->C_DigestInit (s, &sha), CKR_OK, "C_DigestInit after the refused C_DigestKey");
	t_rv (F->C_DigestKey (s, k.open_aes), CKR_OK, "ungated: C_DigestKey");
	len = sizeof out;
	t_rv (F->C_DigestFinal (s, out, &len), CKR_OK, "ungated: C_DigestFinal");
	t_ok (len == 32, "ungated: a SHA-256 digest of the key");

	/* Renaming and copying under a new name. */
	/* A new name that the configuration leaves ungated would take the key
	 * (or its copy) out of the gate. */
	DENIED (F->C_SetAttributeValue (s, k.gated_aes, &open_label, 1),
	        "C_SetAttributeValue (CKA_LABEL) of a gated key, to an ungated name");
	DENIED (F->C_SetAttributeValue (s, k.gated_priv, &ungated_label, 1),
	        "C_SetAttributeValue (CKA_LABEL) of a gated private key, to an ungated name");
	t_ok (mt_find (s, CKO_SECRET_KEY, KEY_GATED_AES) == k.gated_aes &&
	      mt_find (s, CKO_SECRET_KEY, KEY_OPEN_AES) == k.open_aes &&
	      mt_find (s, CKO_PRIVATE_KEY, KEY_GATED_RSA) == k.gated_priv,
	      "gate: no key was renamed");
	t_rv (F->C_SetAttributeValue (s, k.open_aes, &open_label, 1), CKR_OK,
	      "ungated: C_SetAttributeValue (CKA_LABEL)");
	before = count_objects (s);
	h = CK_INVALID_HANDLE;
	DENIED (F->C_CopyObject (s, k.gated_aes, ungated_copy_t, N_ELEMS (ungated_copy_t), &h),
	        "C_CopyObject of a gated key with a new, ungated CKA_LABEL");
	DENIED (F->C_CopyObject (s, k.gated_aes, &open_label, 1, &h),
	        "C_CopyObject of a gated key with a new, ungated CKA_LABEL (token object)");
	t_ok (h == CK_INVALID_HANDLE && count_objects (s) == before, "gate: no copy was made");
	t_rv (F->C_CopyObject (s, k.gated_aes, &session_only, 1, &h), CKR_OK,
	      "gate: a copy that keeps the gated name passes");
	if (h != CK_INVALID_HANDLE) {
		a.type = CKA_VALUE;
		a.pValue = value;
		a.ulValueLen = sizeof value;
		t_rv (F->C_GetAttributeValue (s, h, &a, 1), CKR_FUNCTION_REJECTED,
		      "gate: ... and the copy is gated");
		F->C_DestroyObject (s, h);
	}
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.open_aes, copy_t, N_ELEMS (copy_t), &h), CKR_OK,
	      "ungated: C_CopyObject with a new CKA_LABEL");
	if (h != CK_INVALID_HANDLE)
		F->C_DestroyObject (s, h);

	t_ok (session_idle (s, K_NONE), "gate: the session is idle after every denial");
	F->C_CloseSession (s);
}
#undef DENIED

/* ------------------------------------------------------------ C_Finalize */

static void
test_finalize (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	CK_SESSION_INFO si;

	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize with sessions open");
	mt_check_not_initialized (slot, s, "after C_Finalize");
	t_rv (mt_initialize (), CKR_OK, "C_Initialize again");
	t_rv (F->C_GetSessionInfo (s, &si), CKR_SESSION_HANDLE_INVALID,
	      "a session of the previous instance is gone");
	slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
	s = mt_open (slot, true);
	t_ok (mt_state (s) == CKS_RW_PUBLIC_SESSION, "the new instance starts logged out");
	mt_login (s);
	mt_keys (s, &k);
	t_ok (sign_works (s), "the new instance signs");
	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize");
}

int
main (void)
{
	void *dl = mt_load ();

	test_exports (dl);
	test_interfaces ();
	mt_check_not_initialized (0, 1, "before C_Initialize");
	test_initialize ();
	setup ();
	test_bad_slot_arguments ();
	test_bad_session_handles ();
	test_bad_session_arguments ();
	test_buffers ();
	test_operation_state ();
	test_login ();
	test_gate ();
	test_finalize ();
	/* The module is linked -z nodelete; dlclose must still be harmless. */
	dlclose (dl);
	return t_done ();
}
