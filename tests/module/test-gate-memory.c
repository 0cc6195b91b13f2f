/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-gate-memory: what the gate remembers (src/ungated.c), in one
 * long-lived process, since the memory belongs to a module instance.
 *
 * The program runs three module instances one after the other (C_Finalize,
 * P11_WARDEN_CONF, C_Initialize), whose configurations test-gate-memory.sh
 * writes identical but for gate-cache-ms:
 *
 * gate-cache-ms = 400
 *   1. Decisions.  An RSA key released because `ungated =
 *      pkcs11:object=open-key` names it decrypts; another process renames
 *      it on the backend to a gated name.  Within 400 ms of the decision it
 *      may still decrypt (reported, not asserted); every use that starts
 *      later is refused, although the key was used all through the window
 *      (the window is counted from the decision, it does not slide), and
 *      once refused it stays refused.  Refusals are not remembered: renamed
 *      back by the other process, it decrypts at once.
 * default gate-cache-ms (1000)
 *   2. Renaming through p11-warden to a gated name takes effect at the next
 *      call, in every session; the key cannot be renamed back.  A gated key
 *      cannot reach an ungated name through an over-long label.  And again
 *      with another thread using the key while the rename is under way,
 *      through slow-backend.so (SoftHSM with slow renames).
 *   3. Destroying through p11-warden forgets: new gated keys are refused,
 *      whatever handle they get.
 *   5. Children: keys unwrapped (RSA-PKCS, AES key wrap) by an ungated key,
 *      and their own children, decrypt and their CKA_VALUE is released; a
 *      secret derived (ECDH) from an ungated key is released; gated
 *      unwrapping and base keys make nothing.  The children die with their
 *      session and no key made afterwards inherits their release.
 *   6. Copies: the copy of an ungated key is released whatever its name
 *      (by design); a gated key cannot be copied under an ungated name, and
 *      its copies are gated.
 * gate-cache-ms = 0
 *   4. The other process's renames take effect at the very next call, both
 *      ways; children are still remembered (they are not decisions).
 *
 * SoftHSM never reuses an object handle, so in 3 and 5 no new key gets the
 * handle of a forgotten one (the test says so when one does): there the
 * checks can only fail against a backend that reuses handles.
 *
 * The other process is this program again, exec'd in helper mode
 * (--backend-helper): it loads SoftHSM itself, logs in with the backend PIN
 * and renames objects (C_SetAttributeValue of CKA_LABEL) on request, read
 * from a pipe, answering on another.  It starts before the module is
 * loaded and lives until the end, so that a rename costs milliseconds.
 *
 * Environment (test-gate-memory.sh, tests/lib.sh): P11W_MODULE,
 * SOFTHSM2_MODULE, SOFTHSM2_CONF, P11W_CONF_CACHE_400,
 * P11W_CONF_CACHE_DEFAULT, P11W_CONF_CACHE_0, P11W_CONF_SLOW_BACKEND,
 * WARDEN_LABEL, WARDEN_PIN, BACKEND_LABEL, BACKEND_PIN.
 */
#include "config.h"

#include "module-test.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

/* Labels; the configuration leaves the open-* ones ungated. */
#define LABEL_OPEN "open-key"         /* the RSA pair renamed back and forth */
#define LABEL_RENAMED "renamed-key"   /* gated */
#define LABEL_GATED "gated-key"       /* gated */
#define LABEL_OPEN_SESS "open-sess"   /* ungated session keys */
#define LABEL_GATED_SESS "gated-sess" /* gated session keys */
#define LABEL_VICTIM "open-victim"    /* ungated; a gated key must never get it */

#define CACHE_MS 400
#define DEFAULT_CACHE_MS 1000

static CK_SLOT_ID slot;
static struct mt_keys k;
static CK_BYTE data[] = "p11-warden gate memory test: plaintext to round trip";
static CK_BYTE iv[16] = "0123456789abcdef";

/* ------------------------------------------------------------ time */

/* Microseconds on the clock the module uses (CLOCK_MONOTONIC). */
static uint64_t
now_us (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#define MS(us) ((unsigned int)((us) / 1000u))

static void
sleep_ms (unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
sleep_until (uint64_t when_us)
{
	uint64_t t = now_us ();
	if (t < when_us)
		sleep_ms (MS (when_us - t) + 1);
}

/* ------------------------------------------------------------ the other process */

/* Helper mode: SoftHSM straight, no p11-warden.  Commands on stdin, one a
 * line: "rename OLD NEW" relabels every object labelled OLD and answers
 * "ok N" (N objects) or "err 0xRV".  Ends at end of input. */
static int
helper_main (void)
{
	const char *path = mt_env ("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so");
	const char *label = mt_env ("BACKEND_LABEL", "backend");
	const char *pin = mt_env ("BACKEND_PIN", "1234");
	CK_C_GetFunctionList gfl;
	CK_FUNCTION_LIST *b = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[16];
	CK_ULONG n = N_ELEMS (slots);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_TOKEN_INFO ti;
	char want[32], line[512], from[256], to[256];
	size_t len = strlen (label);
	bool found = false;
	void *dl;
	CK_RV rv;

	dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
	if (!dl || !(gfl = (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList")) ||
	    gfl (&b) != CKR_OK) {
		fprintf (stderr, "helper: cannot load %s\n", path);
		return 2;
	}
	memset (&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = b->C_Initialize (&args)) != CKR_OK) {
		fprintf (stderr, "helper: C_Initialize: 0x%lx\n", (unsigned long)rv);
		return 2;
	}
	memset (want, ' ', sizeof want);
	memcpy (want, label, len < sizeof want ? len : sizeof want);
	if (b->C_GetSlotList (CK_TRUE, slots, &n) != CKR_OK)
		n = 0;
	for (CK_ULONG i = 0; i < n && !found; i++) {
		if (b->C_GetTokenInfo (slots[i], &ti) == CKR_OK &&
		    memcmp (ti.label, want, sizeof want) == 0) {
			CK_FLAGS flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
			found = b->C_OpenSession (slots[i], flags, NULL, NULL, &s) == CKR_OK;
		}
	}
	if (!found || b->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen (pin)) != CKR_OK) {
		fprintf (stderr, "helper: no backend token '%s' to log in to\n", label);
		return 2;
	}
	printf ("ready\n");
	fflush (stdout);
	while (fgets (line, sizeof line, stdin)) {
		CK_ATTRIBUTE t = { CKA_LABEL, from, 0 };
		CK_OBJECT_HANDLE h[16];
		CK_ULONG count = 0, done = 0;

		if (sscanf (line, "rename %255s %255s", from, to) != 2) {
			printf ("err bad-command\n");
			fflush (stdout);
			continue;
		}
		t.ulValueLen = strlen (from);
		rv = b->C_FindObjectsInit (s, &t, 1);
		if (rv == CKR_OK) {
			rv = b->C_FindObjects (s, h, N_ELEMS (h), &count);
			b->C_FindObjectsFinal (s);
		}
		for (CK_ULONG i = 0; rv == CKR_OK && i < count; i++) {
			CK_ATTRIBUTE a = { CKA_LABEL, to, strlen (to) };
			rv = b->C_SetAttributeValue (s, h[i], &a, 1);
			if (rv == CKR_OK)
				done++;
		}
		if (rv == CKR_OK)
			printf ("ok %lu\n", (unsigned long)done);
		else
			printf ("err 0x%lx\n", (unsigned long)rv);
		fflush (stdout);
	}
	b->C_Logout (s);
	b->C_CloseSession (s);
	b->C_Finalize (NULL);
	return 0;
}

static pid_t helper_pid = -1;
static FILE *helper_cmd;   /* our end of its stdin */
static FILE *helper_reply; /* our end of its stdout */

static void
helper_start (const char *argv0)
{
	int to[2], from[2];
	char line[64];

	if (pipe (to) != 0 || pipe (from) != 0)
		t_bail ("pipe: %s", strerror (errno));
	fflush (stdout);
	helper_pid = fork ();
	if (helper_pid < 0)
		t_bail ("fork: %s", strerror (errno));
	if (helper_pid == 0) {
		dup2 (to[0], 0);
		dup2 (from[1], 1);
		close (to[0]);
		close (to[1]);
		close (from[0]);
		close (from[1]);
		execl ("/proc/self/exe", argv0, "--backend-helper", (char *)NULL);
		fprintf (stderr, "exec /proc/self/exe: %s\n", strerror (errno));
		_exit (127);
	}
	close (to[0]);
	close (from[1]);
	helper_cmd = fdopen (to[1], "w");
	helper_reply = fdopen (from[0], "r");
	if (!helper_cmd || !helper_reply)
		t_bail ("fdopen: %s", strerror (errno));
	if (!fgets (line, sizeof line, helper_reply) || strcmp (line, "ready\n") != 0)
		t_bail ("the backend helper did not start");
}

/* Relabel, on the backend and from the other process, every object labelled
 * @from; returns how many (bails out when the helper fails). */
static unsigned long
backend_rename (const char *from, const char *to)
{
	char line[128] = "no answer";
	unsigned long n;

	fprintf (helper_cmd, "rename %s %s\n", from, to);
	fflush (helper_cmd);
	if (!fgets (line, sizeof line, helper_reply) || sscanf (line, "ok %lu", &n) != 1)
		t_bail ("backend rename %s -> %s failed: %s", from, to, line);
	return n;
}

static void
helper_stop (void)
{
	int status = 0;
	fclose (helper_cmd);
	fclose (helper_reply);
	if (waitpid (helper_pid, &status, 0) != helper_pid)
		status = -1;
	t_ok (WIFEXITED (status) && WEXITSTATUS (status) == 0,
	      "the backend helper process exited cleanly (status 0x%x)", status);
}

/* ------------------------------------------------------------ module instances */

/* C_Initialize with the configuration in the environment variable @var. */
static void
instance_start (const char *var)
{
	const char *path = getenv (var);
	CK_RV rv;

	if (!path || !*path)
		t_bail ("%s is not set (run through test-gate-memory.sh)", var);
	setenv ("P11_WARDEN_CONF", path, 1);
	rv = mt_initialize ();
	if (rv != CKR_OK)
		t_bail ("C_Initialize with %s: %s", path, rv_name (rv));
	slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
}

static void
instance_end (const char *what)
{
	t_rv (F->C_Finalize (NULL), CKR_OK, "%s: C_Finalize", what);
}

/* A logged-in R/W session, the test keys looked up. */
static CK_SESSION_HANDLE
user_session (void)
{
	CK_SESSION_HANDLE s = mt_open (slot, true);
	mt_login (s);
	mt_keys (s, &k);
	return s;
}

/* ------------------------------------------------------------ operations */

static CK_RV
rsa_encrypt (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const CK_BYTE *in, CK_ULONG in_len,
             CK_BYTE *out, CK_ULONG *out_len)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_RV rv = F->C_EncryptInit (s, &m, pub);
	if (rv != CKR_OK)
		return rv;
	return F->C_Encrypt (s, (CK_BYTE_PTR)in, in_len, out, out_len);
}

/* C_DecryptInit (RSA PKCS#1) with @priv, then C_Decrypt of @ct, which must
 * give @data back: CKR_OK, or the first error (CKR_GENERAL_ERROR for a
 * wrong plaintext).  No operation is left active. */
static CK_RV
rsa_decrypt (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_BYTE *ct, CK_ULONG ct_len)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE out[512];
	CK_ULONG len = sizeof out;
	CK_RV rv = F->C_DecryptInit (s, &m, priv);
	if (rv != CKR_OK)
		return rv;
	rv = F->C_Decrypt (s, ct, ct_len, out, &len);
	if (rv != CKR_OK)
		return rv;
	return len == sizeof data && memcmp (out, data, len) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

/* AES-CBC-PAD round trip with @key: C_EncryptInit/C_Encrypt, then
 * C_DecryptInit/C_Decrypt.  CKR_OK when @data comes back; else the first
 * error (CKR_GENERAL_ERROR for a wrong plaintext). */
static CK_RV
aes_round_trip (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof iv };
	CK_BYTE ct[128], out[128];
	CK_ULONG ct_len = sizeof ct, len = sizeof out;
	CK_RV rv;

	if ((rv = F->C_EncryptInit (s, &m, key)) != CKR_OK ||
	    (rv = F->C_Encrypt (s, data, sizeof data, ct, &ct_len)) != CKR_OK)
		return rv == CKR_OK ? CKR_GENERAL_ERROR : rv;
	if ((rv = F->C_DecryptInit (s, &m, key)) != CKR_OK)
		return rv;
	if ((rv = F->C_Decrypt (s, ct, ct_len, out, &len)) != CKR_OK)
		return rv;
	return len == sizeof data && memcmp (out, data, len) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

/* Just C_DecryptInit (AES-CBC-PAD); an operation that starts is ended. */
static CK_RV
aes_decrypt_init (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof iv };
	CK_RV rv = F->C_DecryptInit (s, &m, key);
	if (rv == CKR_OK)
		F->C_SessionCancel (s, CKF_DECRYPT);
	return rv;
}

static CK_RV
read_value (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE *out, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { CKA_VALUE, out, *len };
	CK_RV rv = F->C_GetAttributeValue (s, key, &a, 1);
	*len = a.ulValueLen;
	return rv;
}

/* Is the object's CKA_LABEL @want (read through p11-warden)? */
static bool
label_is (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const char *want)
{
	char buf[300];
	CK_ATTRIBUTE a = { CKA_LABEL, buf, sizeof buf };
	return F->C_GetAttributeValue (s, h, &a, 1) == CKR_OK && a.ulValueLen == strlen (want) &&
	       memcmp (buf, want, a.ulValueLen) == 0;
}

/* A non-sensitive, extractable AES-256 session key, labelled @label (or
 * with no label); bails out on failure. */
static CK_OBJECT_HANDLE
session_aes (CK_SESSION_HANDLE s, const char *label)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SENSITIVE, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, label ? strlen (label) : 0 },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = F->C_GenerateKey (s, &mech, t, N_ELEMS (t) - (label ? 0 : 1), &h);
	if (rv != CKR_OK)
		t_bail ("C_GenerateKey (session AES, %s): %s", label ? label : "no label",
		        rv_name (rv));
	return h;
}

/* The same, made with C_CreateObject from a value of our own. */
static CK_OBJECT_HANDLE
session_aes_created (CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE value[32];
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SENSITIVE, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_VALUE, value, sizeof value },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_LABEL, (void *)label, label ? strlen (label) : 0 },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;

	memset (value, 0x5a, sizeof value);
	rv = F->C_CreateObject (s, t, N_ELEMS (t) - (label ? 0 : 1), &h);
	if (rv != CKR_OK)
		t_bail ("C_CreateObject (session AES): %s", rv_name (rv));
	return h;
}

/* C_UnwrapKey of an AES session key with no label, usable for encryption,
 * decryption, wrapping and unwrapping, its value readable. */
static CK_RV
unwrap_aes (CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE unwrapping,
            CK_BYTE *wrapped, CK_ULONG wrapped_len, CK_OBJECT_HANDLE *out)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SENSITIVE, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
	};
	*out = CK_INVALID_HANDLE;
	return F->C_UnwrapKey (s, &m, unwrapping, wrapped, wrapped_len, t, N_ELEMS (t), out);
}

/* The raw EC point (04 || X || Y) of an EC public key. */
static CK_ULONG
ec_point (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_BYTE *out, CK_ULONG max)
{
	CK_BYTE der[160];
	CK_ATTRIBUTE a = { CKA_EC_POINT, der, sizeof der };

	if (F->C_GetAttributeValue (s, pub, &a, 1) != CKR_OK || a.ulValueLen < 3 ||
	    der[0] != 0x04 || der[1] != a.ulValueLen - 2 || a.ulValueLen - 2 > max)
		t_bail ("CKA_EC_POINT: not a short DER OCTET STRING");
	memcpy (out, der + 2, a.ulValueLen - 2);
	return a.ulValueLen - 2;
}

/* ECDH with @base and the peer's public key: a 32-byte generic secret,
 * extractable and not sensitive (a session object). */
static CK_RV
derive_ecdh (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE base, CK_OBJECT_HANDLE peer_pub,
             CK_OBJECT_HANDLE *out)
{
	CK_BYTE point[160];
	CK_ECDH1_DERIVE_PARAMS p;
	CK_MECHANISM m = { CKM_ECDH1_DERIVE, &p, sizeof p };
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
	};

	memset (&p, 0, sizeof p);
	p.kdf = CKD_NULL;
	p.ulPublicDataLen = ec_point (s, peer_pub, point, sizeof point);
	p.pPublicData = point;
	*out = CK_INVALID_HANDLE;
	return F->C_DeriveKey (s, &m, base, t, N_ELEMS (t), out);
}

/* ------------------------------------------------------------ 1. the remembered decision */

/*
 * gate-cache-ms = 400.  The decision is taken by the first C_DecryptInit;
 * the other process then renames the key to a gated name.  The key is used
 * every 20 ms from then on: a use that starts 400 ms or more after the
 * decision call returned must be refused (the decision expired, the
 * backend now says gated, and uses within the window must not have made
 * it last longer), and once refused it stays refused.  Whether the uses
 * within the window still pass is the cache's business, not a guarantee:
 * reported, not asserted.
 */
static void
test_decision_window (void)
{
	const uint64_t window = CACHE_MS * 1000u;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub;
	CK_BYTE ct[512];
	CK_ULONG ct_len = sizeof ct;
	uint64_t decided, renamed, t, first_refusal = 0;
	unsigned int in_window = 0, in_window_ok = 0, late = 0, late_ok = 0, ok_after_refusal = 0;
	unsigned int other = 0;
	CK_RV rv, other_rv = CKR_OK;

	instance_start ("P11W_CONF_CACHE_400");
	s = mt_open (slot, true);
	mt_login (s);
	mt_provision (s);
	if (!mt_find (s, CKO_PRIVATE_KEY, LABEL_OPEN))
		mt_make_rsa (s, LABEL_OPEN, 0x20);
	mt_keys (s, &k);
	priv = mt_find (s, CKO_PRIVATE_KEY, LABEL_OPEN);
	pub = mt_find (s, CKO_PUBLIC_KEY, LABEL_OPEN);
	if (!priv || !pub)
		t_bail ("no RSA pair labelled %s", LABEL_OPEN);
	if (rsa_encrypt (s, pub, data, sizeof data, ct, &ct_len) != CKR_OK)
		t_bail ("C_Encrypt with %s", LABEL_OPEN);

	t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_OK,
	      "cache %d ms: the RSA key named by `ungated = pkcs11:object=%s` decrypts", CACHE_MS,
	      LABEL_OPEN);
	/* The decision was noted inside that call: it expires before
	 * decided + window. */
	decided = now_us ();
	t_ok (backend_rename (LABEL_OPEN, LABEL_RENAMED) == 2,
	      "another process renames the pair to '%s' on the backend", LABEL_RENAMED);
	renamed = now_us ();
	t_ok (label_is (s, priv, LABEL_RENAMED) && label_is (s, pub, LABEL_RENAMED),
	      "the other process's rename is visible through p11-warden (%u ms after the decision)",
	      MS (renamed - decided));

	/* Use it all through the window and a little beyond (at least twice
	 * beyond, however slow the machine). */
	while ((t = now_us ()) < decided + window + 80000u || late < 2) {
		rv = rsa_decrypt (s, priv, ct, ct_len);
		if (t < decided + window) {
			in_window++;
			in_window_ok += rv == CKR_OK;
		} else {
			late++;
			late_ok += rv == CKR_OK;
		}
		if (rv == CKR_OK && first_refusal)
			ok_after_refusal++;
		if (rv == CKR_FUNCTION_REJECTED && !first_refusal)
			first_refusal = t;
		if (rv != CKR_OK && rv != CKR_FUNCTION_REJECTED) {
			other++;
			other_rv = rv;
		}
		sleep_ms (20);
	}
	t_diag ("within the %d ms window: %u of %u uses after the rename still decrypted "
	        "(remembered); the first refusal started %d ms after the decision",
	        CACHE_MS, in_window_ok, in_window,
	        first_refusal ? (int)MS (first_refusal - decided) : -1);
	t_ok (other == 0,
	      "cache %d ms: every use answered CKR_OK or CKR_FUNCTION_REJECTED (%u: %s)", CACHE_MS,
	      other, rv_name (other_rv));
	t_ok (late > 0 && late_ok == 0,
	      "cache %d ms: of the uses that started %d ms or more after the decision, none "
	      "decrypted, though the key was used all through the window (%u of %u did)", CACHE_MS,
	      CACHE_MS, late_ok, late);
	t_ok (ok_after_refusal == 0, "cache %d ms: once refused, the key stayed refused (%u not)",
	      CACHE_MS, ok_after_refusal);
	sleep_until (decided + window + 100000u);
	t = now_us ();
	t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_FUNCTION_REJECTED,
	      "cache %d ms: %u ms after the decision the externally renamed key is refused",
	      CACHE_MS, MS (t - decided));

	/* Refusals are never remembered. */
	t_ok (backend_rename (LABEL_RENAMED, LABEL_OPEN) == 2,
	      "the other process renames it back to '%s'", LABEL_OPEN);
	t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_OK,
	      "cache %d ms: renamed back to an ungated name, it decrypts at once (refusals are not "
	      "remembered)", CACHE_MS);

	/* A fresh decision, then the key is renamed through p11-warden: the
	 * rename drops the decision even inside the window. */
	{
		CK_ATTRIBUTE gated = { CKA_LABEL, (void *)LABEL_RENAMED, strlen (LABEL_RENAMED) };
		CK_ATTRIBUTE open = { CKA_LABEL, (void *)LABEL_OPEN, strlen (LABEL_OPEN) };
		t_rv (F->C_SetAttributeValue (s, priv, &gated, 1), CKR_OK,
		      "cache %d ms: rename through p11-warden to '%s'", CACHE_MS, LABEL_RENAMED);
		t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_FUNCTION_REJECTED,
		      "cache %d ms: refused at the next call, inside the window", CACHE_MS);
		/* Back, from the other process (p11-warden refuses it, rightly). */
		t_rv (F->C_SetAttributeValue (s, priv, &open, 1), CKR_FUNCTION_REJECTED,
		      "cache %d ms: p11-warden refuses to rename it back to an ungated name",
		      CACHE_MS);
		t_ok (backend_rename (LABEL_RENAMED, LABEL_OPEN) == 1,
		      "the other process renames the private key back");
	}
	F->C_CloseSession (s);
	instance_end ("cache 400");
}

/* ------------------------------------------------------------ 2. renames through p11-warden */

static void
test_rename_through_warden (void)
{
	CK_SESSION_HANDLE s1, s2;
	CK_OBJECT_HANDLE priv, pub, h;
	CK_BYTE ct[512];
	CK_ULONG ct_len = sizeof ct;
	CK_ATTRIBUTE gated = { CKA_LABEL, (void *)LABEL_GATED, strlen (LABEL_GATED) };
	CK_ATTRIBUTE open = { CKA_LABEL, (void *)LABEL_OPEN, strlen (LABEL_OPEN) };
	CK_ATTRIBUTE victim = { CKA_LABEL, (void *)LABEL_VICTIM, strlen (LABEL_VICTIM) };
	char long_label[300];
	CK_ATTRIBUTE longer = { CKA_LABEL, long_label, sizeof long_label };
	uint64_t t0, dt;
	CK_RV rv;

	s1 = user_session ();
	s2 = mt_open (slot, true);
	priv = mt_find (s1, CKO_PRIVATE_KEY, LABEL_OPEN);
	pub = mt_find (s1, CKO_PUBLIC_KEY, LABEL_OPEN);
	if (!priv || !pub || rsa_encrypt (s1, pub, data, sizeof data, ct, &ct_len) != CKR_OK)
		t_bail ("the RSA pair %s", LABEL_OPEN);

	t_rv (rsa_decrypt (s1, priv, ct, ct_len), CKR_OK, "default cache: %s decrypts", LABEL_OPEN);
	t0 = now_us ();
	t_rv (F->C_SetAttributeValue (s2, priv, &gated, 1), CKR_OK,
	      "default cache: renamed through p11-warden (another session) to '%s'", LABEL_GATED);
	t_rv (rsa_decrypt (s1, priv, ct, ct_len), CKR_FUNCTION_REJECTED,
	      "default cache: the very next C_DecryptInit is refused, no waiting");
	dt = now_us () - t0;
	t_ok (dt < DEFAULT_CACHE_MS * 1000u,
	      "default cache: ... well inside the %d ms the decision would have lasted (%u ms)",
	      DEFAULT_CACHE_MS, MS (dt));
	t_rv (rsa_decrypt (s2, priv, ct, ct_len), CKR_FUNCTION_REJECTED,
	      "default cache: refused in the renaming session too");
	t_rv (F->C_SetAttributeValue (s1, priv, &open, 1), CKR_FUNCTION_REJECTED,
	      "default cache: renaming it back to '%s' is refused", LABEL_OPEN);
	t_ok (label_is (s1, priv, LABEL_GATED), "default cache: ... and it keeps its gated name");

	/* A gated key must not reach an ungated name by way of a label too long
	 * for the gate to read (it reads 256 bytes). */
	memset (long_label, 'x', sizeof long_label);
	h = session_aes (s1, LABEL_GATED_SESS);
	t_rv (aes_decrypt_init (s1, h), CKR_FUNCTION_REJECTED,
	      "a gated session AES key is refused");
	rv = F->C_SetAttributeValue (s1, h, &longer, 1);
	t_diag ("renaming a gated key to a %zu-byte label: %s", sizeof long_label, rv_name (rv));
	/* Regression: a rename to a label the gate cannot read whole used to be
	 * accepted as "still gated", and from there a second rename reached an
	 * ungated name.  A new name must be readable whole, and still gated. */
	t_rv (F->C_SetAttributeValue (s1, h, &victim, 1), CKR_FUNCTION_REJECTED,
	      "a gated key with an over-long label cannot be renamed to the ungated '%s'",
	      LABEL_VICTIM);
	/* Regression (same). */
	t_rv (aes_decrypt_init (s1, h), CKR_FUNCTION_REJECTED,
	      "... and it is still refused for decryption");
	F->C_DestroyObject (s1, h);

	F->C_CloseSession (s2);
	F->C_CloseSession (s1);
}

/*
 * The same rename with another thread using the key while it is under
 * way.  Through slow-backend.so a rename to a label starting "slow-" waits
 * 300 ms between p11-warden's gate and SoftHSM; the other thread reads the
 * key's CKA_VALUE (which passes the gate like C_DecryptInit) 50 ms into
 * it.  That read overlaps the rename and the backend still holds the old
 * name, so either answer is right for it; but once the rename has
 * returned, the key must be refused.
 */
struct overlap {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	uint64_t start, end;
	CK_RV rv;
};

static void *
overlap_main (void *arg)
{
	struct overlap *o = arg;
	CK_BYTE value[64];
	CK_ULONG len = sizeof value;

	sleep_ms (50);
	o->start = now_us ();
	o->rv = read_value (o->s, o->key, value, &len);
	o->end = now_us ();
	return NULL;
}

static void
test_rename_concurrent (void)
{
	CK_SESSION_HANDLE s;
	CK_ATTRIBUTE slow = { CKA_LABEL, (void *)"slow-gated", 10 };
	struct overlap o;
	uint64_t t0, t1;
	pthread_t th;
	CK_BYTE value[64];
	CK_ULONG len = sizeof value;
	CK_RV rv;

	instance_start ("P11W_CONF_SLOW_BACKEND");
	s = user_session ();
	memset (&o, 0, sizeof o);
	o.s = mt_open (slot, true);
	o.key = session_aes (s, LABEL_OPEN_SESS);
	t_rv (aes_round_trip (s, o.key), CKR_OK,
	      "slow backend: a session key labelled '%s' (ungated) decrypts", LABEL_OPEN_SESS);
	if (pthread_create (&th, NULL, overlap_main, &o) != 0)
		t_bail ("pthread_create");
	t0 = now_us ();
	rv = F->C_SetAttributeValue (s, o.key, &slow, 1);
	t1 = now_us ();
	pthread_join (th, NULL);
	t_rv (rv, CKR_OK, "slow backend: renamed through p11-warden to 'slow-gated' (%u ms)",
	      MS (t1 - t0));
	t_ok (o.start > t0 && o.end < t1,
	      "slow backend: another thread read the key's CKA_VALUE during the rename, %u ms in "
	      "(%s)", MS (o.start - t0), rv_name (o.rv));
	/* Regression: the decision used to be forgotten before the backend
	 * renamed the key, and another thread's use in between read the old
	 * label and recorded the decision again, outliving the rename.  Now the
	 * decision is dropped after the rename, and one read before it is not
	 * recorded (the rename epoch in ungated.c). */
	t_rv (aes_decrypt_init (s, o.key), CKR_FUNCTION_REJECTED,
	      "slow backend: once the rename has returned, the key is refused");
	/* Regression (same). */
	t_rv (read_value (o.s, o.key, value, &len), CKR_FUNCTION_REJECTED,
	      "slow backend: ... in the other session too");
	F->C_DestroyObject (s, o.key);
	F->C_CloseSession (o.s);
	F->C_CloseSession (s);
	instance_end ("slow backend");
}

/* ------------------------------------------------------------ 3. destroying forgets */

static void
test_destroy_forgets (void)
{
	CK_SESSION_HANDLE s = user_session ();
	CK_OBJECT_HANDLE open_key, child, made[8], dead[2];
	CK_BYTE wrapped[64];
	CK_ULONG wrapped_len = sizeof wrapped;
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	unsigned int reused = 0;

	open_key = session_aes (s, LABEL_OPEN_SESS);
	t_rv (aes_round_trip (s, open_key), CKR_OK,
	      "destroy: a session key labelled '%s' (ungated) decrypts", LABEL_OPEN_SESS);
	t_rv (F->C_WrapKey (s, &wrap, k.open_aes, k.open_aes_b, wrapped, &wrapped_len), CKR_OK,
	      "destroy: C_WrapKey of %s under %s", KEY_OPEN_AES_B, KEY_OPEN_AES);
	t_rv (unwrap_aes (s, CKM_AES_KEY_WRAP, k.open_aes, wrapped, wrapped_len, &child), CKR_OK,
	      "destroy: C_UnwrapKey with %s (a child)", KEY_OPEN_AES);
	t_rv (aes_round_trip (s, child), CKR_OK, "destroy: the child decrypts");
	dead[0] = open_key;
	dead[1] = child;
	t_rv (F->C_DestroyObject (s, open_key), CKR_OK,
	      "destroy: C_DestroyObject (the ungated key)");
	t_rv (F->C_DestroyObject (s, child), CKR_OK, "destroy: C_DestroyObject (the child)");
	t_rv (aes_decrypt_init (s, open_key), CKR_KEY_HANDLE_INVALID,
	      "destroy: the destroyed key's handle names nothing");
	t_rv (aes_decrypt_init (s, child), CKR_KEY_HANDLE_INVALID,
	      "destroy: the destroyed child's handle names nothing");

	for (size_t i = 0; i < N_ELEMS (made); i++) {
		const char *label = i % 3 == 0 ? LABEL_GATED_SESS : i % 3 == 1 ? NULL : "";
		bool reuse;
		made[i] = i % 2 ? session_aes_created (s, label) : session_aes (s, label);
		reuse = made[i] == dead[0] || made[i] == dead[1];
		reused += reuse;
		t_rv (aes_decrypt_init (s, made[i]), CKR_FUNCTION_REJECTED,
		      "destroy: new gated key %zu (%s, label %s, handle %lu%s) is refused", i,
		      i % 2 ? "created" : "generated", label ? (*label ? label : "empty") : "none",
		      (unsigned long)made[i], reuse ? ", a destroyed key's handle" : "");
	}
	t_diag ("destroy: %u of %zu new keys got a destroyed key's handle (SoftHSM never reuses "
	        "handles)", reused, N_ELEMS (made));
	for (size_t i = 0; i < N_ELEMS (made); i++)
		F->C_DestroyObject (s, made[i]);
	F->C_CloseSession (s);
}

/* ------------------------------------------------------------ 5. children */

static void
test_children (void)
{
	CK_SESSION_HANDLE sa = user_session (), sb;
	CK_OBJECT_HANDLE c_rsa, c_wrap, grandchild, h, made[6];
	CK_BYTE secret[32], wrapped_rsa[512], wrapped[64], value[64], value_b[64];
	CK_ULONG wrapped_rsa_len = sizeof wrapped_rsa, wrapped_len = sizeof wrapped, len, len_b;
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_ULONG before;

	for (size_t i = 0; i < sizeof secret; i++)
		secret[i] = (CK_BYTE)(0xa0 + i);
	if (rsa_encrypt (sa, k.open_pub, secret, sizeof secret, wrapped_rsa, &wrapped_rsa_len) !=
	    CKR_OK)
		t_bail ("C_Encrypt with %s", KEY_OPEN_RSA);
	if (F->C_WrapKey (sa, &wrap, k.open_aes, k.open_aes_b, wrapped, &wrapped_len) != CKR_OK)
		t_bail ("C_WrapKey of %s", KEY_OPEN_AES_B);

	/* Unwrapped by an ungated RSA key (CKM_RSA_PKCS). */
	t_rv (unwrap_aes (sa, CKM_RSA_PKCS, k.open_priv, wrapped_rsa, wrapped_rsa_len, &c_rsa),
	      CKR_OK, "children: C_UnwrapKey (RSA-PKCS) with the ungated %s, no label",
	      KEY_OPEN_RSA);
	t_rv (aes_round_trip (sa, c_rsa), CKR_OK,
	      "children: the unwrapped key encrypts and decrypts (round trip)");
	len = sizeof value;
	t_ok (read_value (sa, c_rsa, value, &len) == CKR_OK && len == sizeof secret &&
	      memcmp (value, secret, len) == 0,
	      "children: its CKA_VALUE is released, and is the key that was wrapped");

	/* Unwrapped by an ungated AES key (CKM_AES_KEY_WRAP). */
	t_rv (unwrap_aes (sa, CKM_AES_KEY_WRAP, k.open_aes, wrapped, wrapped_len, &c_wrap), CKR_OK,
	      "children: C_UnwrapKey (AES key wrap) with the ungated %s, no label", KEY_OPEN_AES);
	t_rv (aes_round_trip (sa, c_wrap), CKR_OK, "children: ... round trip");
	len = sizeof value;
	len_b = sizeof value_b;
	t_ok (read_value (sa, c_wrap, value, &len) == CKR_OK &&
	      read_value (sa, k.open_aes_b, value_b, &len_b) == CKR_OK && len == len_b &&
	      memcmp (value, value_b, len) == 0, "children: ... and it is %s", KEY_OPEN_AES_B);

	/* A child's child. */
	{
		CK_BYTE w2[64];
		CK_ULONG w2_len = sizeof w2;
		if (F->C_WrapKey (sa, &wrap, c_wrap, k.open_aes_b, w2, &w2_len) != CKR_OK)
			t_bail ("C_WrapKey under the child");
		t_rv (unwrap_aes (sa, CKM_AES_KEY_WRAP, c_wrap, w2, w2_len, &grandchild), CKR_OK,
		      "children: C_UnwrapKey with the child (a grandchild)");
		t_rv (aes_round_trip (sa, grandchild), CKR_OK, "children: the grandchild decrypts");
	}

	/* Gated unwrapping keys make nothing. */
	before = mt_count_objects (sa);
	t_rv (unwrap_aes (sa, CKM_RSA_PKCS, k.gated_priv, wrapped_rsa, wrapped_rsa_len, &h),
	      CKR_FUNCTION_REJECTED, "children: C_UnwrapKey (RSA-PKCS) with the gated %s",
	      KEY_GATED_RSA);
	t_ok (h == CK_INVALID_HANDLE, "children: ... returns no handle");
	t_rv (unwrap_aes (sa, CKM_AES_KEY_WRAP, k.gated_aes, wrapped, wrapped_len, &h),
	      CKR_FUNCTION_REJECTED, "children: C_UnwrapKey (AES key wrap) with the gated %s",
	      KEY_GATED_AES);
	t_ok (h == CK_INVALID_HANDLE && mt_count_objects (sa) == before,
	      "children: ... and the refused unwraps made no object");

	/* Derivation. */
	t_rv (derive_ecdh (sa, k.open_ec, k.gated_ec_pub, &h), CKR_OK,
	      "children: C_DeriveKey (ECDH) with the ungated %s", KEY_OPEN_EC);
	len = sizeof value;
	t_rv (read_value (sa, h, value, &len), CKR_OK,
	      "children: the derived secret's CKA_VALUE is released");
	t_ok (len == 32, "children: ... 32 bytes of it");
	before = mt_count_objects (sa);
	{
		CK_OBJECT_HANDLE g = CK_INVALID_HANDLE;
		t_rv (derive_ecdh (sa, k.gated_ec, k.open_ec_pub, &g), CKR_FUNCTION_REJECTED,
		      "children: C_DeriveKey (ECDH) with the gated %s is refused", KEY_GATED_EC);
		t_ok (g == CK_INVALID_HANDLE && mt_count_objects (sa) == before,
		      "children: ... no handle, no object");
	}

	/* The children die with their session, and their release with them. */
	t_rv (F->C_CloseSession (sa), CKR_OK, "children: C_CloseSession of their session");
	/* That was the token's last session: the login went with it. */
	sb = mt_open (slot, true);
	mt_login (sb);
	t_rv (aes_decrypt_init (sb, c_rsa), CKR_KEY_HANDLE_INVALID,
	      "children: the unwrapped key is gone with its session");
	t_rv (aes_decrypt_init (sb, grandchild), CKR_KEY_HANDLE_INVALID,
	      "children: the grandchild is gone with its session");
	for (size_t i = 0; i < N_ELEMS (made); i++) {
		CK_OBJECT_HANDLE old[] = { c_rsa, c_wrap, grandchild, h };
		bool reuse = false;
		made[i] = i % 2 ? session_aes_created (sb, NULL) : session_aes (sb, NULL);
		for (size_t j = 0; j < N_ELEMS (old); j++)
			reuse = reuse || made[i] == old[j];
		t_rv (aes_decrypt_init (sb, made[i]), CKR_FUNCTION_REJECTED,
		      "children: a new unlabelled key of another session (handle %lu%s) is refused "
		      "for decryption", (unsigned long)made[i], reuse ? ", a child's handle" : "");
		len = sizeof value;
		t_rv (read_value (sb, made[i], value, &len), CKR_FUNCTION_REJECTED,
		      "children: ... and for CKA_VALUE");
	}
	for (size_t i = 0; i < N_ELEMS (made); i++)
		F->C_DestroyObject (sb, made[i]);
	F->C_CloseSession (sb);
}

/* ------------------------------------------------------------ 6. copies */

static void
test_copies (void)
{
	CK_SESSION_HANDLE s = user_session ();
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE gated_copy[] = {
		{ CKA_LABEL, (void *)"gated-copy", 10 },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE victim_copy[] = {
		{ CKA_LABEL, (void *)LABEL_VICTIM, strlen (LABEL_VICTIM) },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_ATTRIBUTE victim = { CKA_LABEL, (void *)LABEL_VICTIM, strlen (LABEL_VICTIM) };
	CK_ATTRIBUTE session_only = { CKA_TOKEN, &no, sizeof no };
	CK_OBJECT_HANDLE h;
	CK_BYTE ct[512], value[64];
	CK_ULONG ct_len = sizeof ct, len, before;

	/* Of an ungated key: released, whatever the copy's name (by design). */
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.open_aes, gated_copy, N_ELEMS (gated_copy), &h), CKR_OK,
	      "copies: C_CopyObject of the ungated %s under a gated name", KEY_OPEN_AES);
	t_ok (label_is (s, h, "gated-copy"), "copies: ... the copy has the gated name");
	t_rv (aes_round_trip (s, h), CKR_OK,
	      "copies: ... and, inheriting its source's release, decrypts");
	F->C_DestroyObject (s, h);

	if (rsa_encrypt (s, k.open_pub, data, sizeof data, ct, &ct_len) != CKR_OK)
		t_bail ("C_Encrypt with %s", KEY_OPEN_RSA);
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.open_priv, gated_copy, N_ELEMS (gated_copy), &h), CKR_OK,
	      "copies: C_CopyObject of the ungated RSA key %s under a gated name", KEY_OPEN_RSA);
	t_rv (rsa_decrypt (s, h, ct, ct_len), CKR_OK, "copies: ... the copy decrypts");
	F->C_DestroyObject (s, h);

	/* Of a gated key. */
	before = mt_count_objects (s);
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.gated_aes, victim_copy, N_ELEMS (victim_copy), &h),
	      CKR_FUNCTION_REJECTED, "copies: C_CopyObject of the gated %s as '%s' (ungated)",
	      KEY_GATED_AES, LABEL_VICTIM);
	t_ok (h == CK_INVALID_HANDLE && mt_count_objects (s) == before,
	      "copies: ... no handle, no object");
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.gated_priv, &victim, 1, &h), CKR_FUNCTION_REJECTED,
	      "copies: C_CopyObject of the gated RSA key %s as '%s'", KEY_GATED_RSA, LABEL_VICTIM);
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.gated_aes, gated_copy, N_ELEMS (gated_copy), &h), CKR_OK,
	      "copies: C_CopyObject of the gated %s under another gated name", KEY_GATED_AES);
	t_rv (aes_decrypt_init (s, h), CKR_FUNCTION_REJECTED, "copies: ... the copy is refused");
	len = sizeof value;
	t_rv (read_value (s, h, value, &len), CKR_FUNCTION_REJECTED,
	      "copies: ... and so is its CKA_VALUE");
	t_rv (F->C_SetAttributeValue (s, h, &victim, 1), CKR_FUNCTION_REJECTED,
	      "copies: ... and it cannot be renamed to '%s'", LABEL_VICTIM);
	F->C_DestroyObject (s, h);
	h = CK_INVALID_HANDLE;
	t_rv (F->C_CopyObject (s, k.gated_aes, &session_only, 1, &h), CKR_OK,
	      "copies: C_CopyObject of the gated %s keeping its name", KEY_GATED_AES);
	t_rv (aes_decrypt_init (s, h), CKR_FUNCTION_REJECTED, "copies: ... the copy is refused");
	F->C_DestroyObject (s, h);
	F->C_CloseSession (s);
}

/* ------------------------------------------------------------ 4. gate-cache-ms = 0 */

static void
test_no_cache (void)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub, child;
	CK_BYTE ct[512], wrapped[512], secret[32];
	CK_ULONG ct_len = sizeof ct, wrapped_len = sizeof wrapped;

	instance_start ("P11W_CONF_CACHE_0");
	/* The default-cache part left the private key under the gated name. */
	t_ok (backend_rename (LABEL_GATED, LABEL_OPEN) == 1,
	      "cache 0: the other process renames the private key back to '%s'", LABEL_OPEN);
	s = user_session ();
	priv = mt_find (s, CKO_PRIVATE_KEY, LABEL_OPEN);
	pub = mt_find (s, CKO_PUBLIC_KEY, LABEL_OPEN);
	if (!priv || !pub || rsa_encrypt (s, pub, data, sizeof data, ct, &ct_len) != CKR_OK)
		t_bail ("the RSA pair %s", LABEL_OPEN);

	for (int round = 1; round <= 3; round++) {
		t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_OK, "cache 0, round %d: %s decrypts",
		      round, LABEL_OPEN);
		t_ok (backend_rename (LABEL_OPEN, LABEL_RENAMED) == 2,
		      "cache 0, round %d: the other process renames it to '%s'", round,
		      LABEL_RENAMED);
		t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_FUNCTION_REJECTED,
		      "cache 0, round %d: refused at the very next call", round);
		t_ok (backend_rename (LABEL_RENAMED, LABEL_OPEN) == 2,
		      "cache 0, round %d: the other process renames it back", round);
		t_rv (rsa_decrypt (s, priv, ct, ct_len), CKR_OK,
		      "cache 0, round %d: released at the very next call", round);
	}

	/* Children are not decisions: gate-cache-ms does not limit them. */
	memset (secret, 0x3c, sizeof secret);
	if (rsa_encrypt (s, k.open_pub, secret, sizeof secret, wrapped, &wrapped_len) != CKR_OK)
		t_bail ("C_Encrypt with %s", KEY_OPEN_RSA);
	t_rv (unwrap_aes (s, CKM_RSA_PKCS, k.open_priv, wrapped, wrapped_len, &child), CKR_OK,
	      "cache 0: C_UnwrapKey with %s", KEY_OPEN_RSA);
	t_rv (aes_round_trip (s, child), CKR_OK, "cache 0: the child decrypts");
	F->C_CloseSession (s);
	instance_end ("cache 0");
}

int
main (int argc, char **argv)
{
	uint64_t start = now_us ();

	if (argc > 1 && strcmp (argv[1], "--backend-helper") == 0)
		return helper_main ();
	signal (SIGPIPE, SIG_IGN);
	helper_start (argv[0]);
	mt_load ();

	test_decision_window (); /* 1: gate-cache-ms = 400 */

	instance_start ("P11W_CONF_CACHE_DEFAULT");
	test_rename_through_warden (); /* 2 */
	test_destroy_forgets ();       /* 3 */
	test_children ();              /* 5 */
	test_copies ();                /* 6 */
	instance_end ("default cache");
	test_rename_concurrent (); /* 2, with another thread; default cache */

	test_no_cache (); /* 4: gate-cache-ms = 0 */

	helper_stop ();
	t_diag ("%u ms in all", MS (now_us () - start));
	return t_done ();
}
