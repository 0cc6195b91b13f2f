/* SPDX-License-Identifier: Apache-2.0 */
/*
 * push-client: an application that pushes its own attestation evidence to
 * p11-warden with standard PKCS#11 calls only (p11-warden.h, "Pushed
 * evidence"), then decrypts with a gated key in the same session.  It
 * loads any PKCS#11 module by path: p11-warden.so itself, or p11-kit's
 * p11-kit-client.so talking to a `p11-kit server` that exports p11-warden
 * (P11_KIT_SERVER_ADDRESS).
 *
 *   push-client MODULE [OPTIONS] [--run PROGRAM [ARGS...]]
 *
 * In one session: C_Login; C_CreateObject of a CKO_P11W_CHALLENGE and its
 * CKA_VALUE (the nonce); PROGRAM ARGS... NONCE-HEX is run and waited for
 * (it makes the evidence over the nonce and writes it to the --evidence
 * file); C_CreateObject of a CKO_P11W_EVIDENCE with the file's bytes; the
 * verdict's attributes; C_Decrypt of --in with the private key labelled
 * --key.  It prints what it saw as "name=value" lines on stdout:
 *
 *   nonce=HEX
 *   verdictN.status=pass|fail          N = 1, 2 (--push-twice)
 *   verdictN.reason=TEXT
 *   verdictN.expires=SECONDS
 *   verdictN.policy=NAME
 *   verdictN.format=FORMAT
 *   verdictN.claim=NAME=VALUE          one line per claim
 *   destroyed.status.rv=HEX NAME       --destroy-verdict
 *   decrypt.other.rv=HEX NAME          --other-session
 *   decrypt.rv=HEX NAME
 *
 * Options:
 *   --token LABEL      token label (default "warden")
 *   --pin PIN          user PIN (default "5678")
 *   --key LABEL        the private key to decrypt with
 *   --in FILE          ciphertext (RSA PKCS#1 v1.5, or OAEP with --oaep)
 *   --out FILE         written with the plaintext when C_Decrypt succeeds
 *   --oaep             CKM_RSA_PKCS_OAEP, SHA-1 and MGF1-SHA1
 *   --evidence FILE    the evidence to push (after --run, if given)
 *   --format NAME      CKA_P11W_FORMAT (default "tpm2-quote")
 *   --policy NAME      CKA_P11W_POLICY (default: none, the slot's policy)
 *   --no-challenge     push without creating a challenge first
 *   --push-twice       push the same evidence twice
 *   --other-session    also decrypt in a second session of the same
 *                      login (first), which saw no evidence
 *   --destroy-verdict  destroy the (last) verdict, then read its status
 *   --after-push CMD   run CMD with /bin/sh -c after the push, then read
 *                      the verdict again (as "verdictA.*") before decrypting
 *
 * Exit status: 0 when every step ran (whatever the verdicts and the
 * decryption returned: those are printed), 1 when a step before them
 * failed, 2 on a usage error.
 */
#include <p11-kit/pkcs11.h>
#include <p11-warden/p11-warden.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FILE (64 * 1024)

struct opts {
	const char *module;
	const char *token;
	const char *pin;
	const char *key;
	const char *in;
	const char *out;
	const char *evidence;
	const char *format;
	const char *policy;
	bool oaep;
	bool no_challenge;
	bool push_twice;
	bool other_session;
	bool destroy_verdict;
	const char *after_push;
	char **run;               /* NULL-terminated, or NULL */
};

static CK_FUNCTION_LIST_PTR f;

static const char *
rv_name (CK_RV rv)
{
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_OPERATION_NOT_INITIALIZED: return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
	case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_FUNCTION_REJECTED: return "CKR_FUNCTION_REJECTED";
	default: return "?";
	}
}

static bool
ck (const char *what, CK_RV rv)
{
	if (rv == CKR_OK)
		return true;
	fprintf (stderr, "push-client: %s: 0x%lx %s\n", what, (unsigned long)rv, rv_name (rv));
	return false;
}

static void
print_rv (const char *name, CK_RV rv)
{
	printf ("%s=0x%lx %s\n", name, (unsigned long)rv, rv_name (rv));
	fflush (stdout);
}

static void
print_hex (const char *name, const unsigned char *p, size_t n)
{
	printf ("%s=", name);
	for (size_t i = 0; i < n; i++)
		printf ("%02x", p[i]);
	printf ("\n");
	fflush (stdout);
}

/* Read a whole file (at most MAX_FILE bytes) into a malloc'd buffer. */
static unsigned char *
read_file (const char *path, size_t *len)
{
	FILE *fp = fopen (path, "rb");
	unsigned char *buf;
	size_t n;
	if (!fp) {
		fprintf (stderr, "push-client: %s: %s\n", path, strerror (errno));
		return NULL;
	}
	buf = malloc (MAX_FILE + 1);
	if (!buf) {
		fclose (fp);
		return NULL;
	}
	n = fread (buf, 1, MAX_FILE + 1, fp);
	fclose (fp);
	if (n == 0 || n > MAX_FILE) {
		fprintf (stderr, "push-client: %s: empty or larger than %d bytes\n", path, MAX_FILE);
		free (buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static bool
write_file (const char *path, const unsigned char *p, size_t n)
{
	FILE *fp = fopen (path, "wb");
	bool ok;
	if (!fp)
		return false;
	ok = fwrite (p, 1, n, fp) == n;
	return fclose (fp) == 0 && ok;
}

/* The slot whose token is labelled @label. */
static bool
find_slot (const char *label, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	char want[32];
	size_t l = strlen (label);

	if (l > sizeof want)
		return false;
	memset (want, ' ', sizeof want);
	memcpy (want, label, l);
	if (!ck ("C_GetSlotList", f->C_GetSlotList (CK_TRUE, slots, &n)))
		return false;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo (slots[i], &ti) == CKR_OK && !memcmp (ti.label, want, sizeof want)) {
			*out = slots[i];
			return true;
		}
	}
	fprintf (stderr, "push-client: no token labelled '%s'\n", label);
	return false;
}

static bool
find_key (CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_LABEL, (void *)label, strlen (label) },
	};
	CK_ULONG n = 0;
	if (!ck ("C_FindObjectsInit", f->C_FindObjectsInit (s, t, 2)))
		return false;
	if (!ck ("C_FindObjects", f->C_FindObjects (s, out, 1, &n)))
		return false;
	(void)f->C_FindObjectsFinal (s);
	if (n != 1) {
		fprintf (stderr, "push-client: no private key labelled '%s'\n", label);
		return false;
	}
	return true;
}

/* Run @argv with @nonce_hex (if not NULL) appended; wait for it.  True when it exits 0. */
static bool
run_program (char **argv, const char *nonce_hex)
{
	size_t n = 0;
	char **args;
	pid_t pid;
	int status;

	while (argv[n])
		n++;
	args = calloc (n + 2, sizeof *args);
	if (!args)
		return false;
	memcpy (args, argv, n * sizeof *args);
	args[n] = (char *)nonce_hex; /* NULL: nothing appended */
	fflush (stdout);
	pid = fork ();
	if (pid < 0) {
		free (args);
		return false;
	}
	if (pid == 0) {
		/* The program's stdout is ours: keep our "name=value" lines apart. */
		dup2 (STDERR_FILENO, STDOUT_FILENO);
		execvp (args[0], args);
		fprintf (stderr, "push-client: %s: %s\n", args[0], strerror (errno));
		_exit (127);
	}
	free (args);
	while (waitpid (pid, &status, 0) < 0) {
		if (errno != EINTR)
			return false;
	}
	if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
		fprintf (stderr, "push-client: %s failed (status 0x%x)\n", argv[0], status);
		return false;
	}
	return true;
}

static bool
run_shell (const char *cmd)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, (char *)"sh", NULL };
	return run_program (argv, NULL);
}

/* A text attribute (not NUL-terminated on the wire), malloc'd. */
static char *
get_text (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	char *buf;
	if (f->C_GetAttributeValue (s, o, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return NULL;
	buf = malloc (a.ulValueLen + 1);
	if (!buf)
		return NULL;
	a.pValue = buf;
	if (f->C_GetAttributeValue (s, o, &a, 1) != CKR_OK) {
		free (buf);
		return NULL;
	}
	buf[a.ulValueLen] = '\0';
	return buf;
}

static void
print_verdict (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE v, const char *n)
{
	CK_ULONG status = 99, expires = 0;
	CK_OBJECT_CLASS klass = 0;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_P11W_STATUS, &status, sizeof status },
		{ CKA_P11W_EXPIRES, &expires, sizeof expires },
	};
	char name[64], *text;
	CK_RV rv = f->C_GetAttributeValue (s, v, t, 3);

	snprintf (name, sizeof name, "verdict%s.attributes.rv", n);
	print_rv (name, rv);
	printf ("verdict%s.class=%s\n", n, klass == CKO_P11W_VERDICT ? "verdict" : "other");
	printf ("verdict%s.status=%s\n", n,
	        status == P11W_VERDICT_PASS ? "pass" : status == P11W_VERDICT_FAIL ? "fail" : "?");
	printf ("verdict%s.expires=%lu\n", n, (unsigned long)expires);
	text = get_text (s, v, CKA_P11W_REASON);
	printf ("verdict%s.reason=%s\n", n, text ? text : "(unreadable)");
	free (text);
	text = get_text (s, v, CKA_P11W_POLICY);
	printf ("verdict%s.policy=%s\n", n, text ? text : "(unreadable)");
	free (text);
	text = get_text (s, v, CKA_P11W_FORMAT);
	printf ("verdict%s.format=%s\n", n, text ? text : "(unreadable)");
	free (text);
	text = get_text (s, v, CKA_P11W_CLAIMS);
	if (text) {
		for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
			printf ("verdict%s.claim=%s\n", n, line);
	} else {
		printf ("verdict%s.claims=(unreadable)\n", n);
	}
	free (text);
	fflush (stdout);
}

static CK_RV
push (CK_SESSION_HANDLE s, const struct opts *o, unsigned char *ev, size_t ev_len,
      CK_OBJECT_HANDLE *verdict)
{
	CK_OBJECT_CLASS klass = CKO_P11W_EVIDENCE;
	CK_ATTRIBUTE t[4] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_P11W_FORMAT, (void *)o->format, strlen (o->format) },
		{ CKA_VALUE, ev, ev_len },
	};
	CK_ULONG n = 3;
	if (o->policy) {
		t[3].type = CKA_P11W_POLICY;
		t[3].pValue = (void *)o->policy;
		t[3].ulValueLen = strlen (o->policy);
		n = 4;
	}
	return f->C_CreateObject (s, t, n, verdict);
}

static CK_RV
decrypt (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const struct opts *o, const unsigned char *ct,
         size_t ct_len, unsigned char *pt, CK_ULONG *pt_len)
{
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_RV rv;
	if (o->oaep) {
		m.mechanism = CKM_RSA_PKCS_OAEP;
		m.pParameter = &oaep;
		m.ulParameterLen = sizeof oaep;
	}
	rv = f->C_DecryptInit (s, &m, key);
	if (rv != CKR_OK)
		return rv;
	return f->C_Decrypt (s, (CK_BYTE_PTR)ct, ct_len, pt, pt_len);
}

static int
usage (void)
{
	fprintf (stderr, "usage: push-client MODULE [--token LABEL] [--pin PIN] --key LABEL --in FILE\n"
	                 "       [--out FILE] [--oaep] [--evidence FILE] [--format NAME] [--policy NAME]\n"
	                 "       [--no-challenge] [--push-twice] [--other-session] [--destroy-verdict]\n"
	                 "       [--after-push CMD] [--run PROGRAM [ARGS...]]\n");
	return 2;
}

int
main (int argc, char **argv)
{
	struct opts o = { .token = "warden", .pin = "5678", .format = "tpm2-quote" };
	CK_RV (*get_list) (CK_FUNCTION_LIST_PTR_PTR);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE, s2 = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key, verdict = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	unsigned char *ct = NULL, *ev = NULL, pt[1024];
	size_t ct_len = 0, ev_len = 0;
	CK_ULONG pt_len;
	bool initialized = false;
	void *dl = NULL;
	int ret = 1;
	CK_RV rv;

	if (argc < 2)
		return usage ();
	o.module = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;
		if (!strcmp (a, "--token"))
			val = &o.token;
		else if (!strcmp (a, "--pin"))
			val = &o.pin;
		else if (!strcmp (a, "--key"))
			val = &o.key;
		else if (!strcmp (a, "--in"))
			val = &o.in;
		else if (!strcmp (a, "--out"))
			val = &o.out;
		else if (!strcmp (a, "--evidence"))
			val = &o.evidence;
		else if (!strcmp (a, "--format"))
			val = &o.format;
		else if (!strcmp (a, "--policy"))
			val = &o.policy;
		else if (!strcmp (a, "--after-push"))
			val = &o.after_push;
		else if (!strcmp (a, "--oaep"))
			o.oaep = true;
		else if (!strcmp (a, "--no-challenge"))
			o.no_challenge = true;
		else if (!strcmp (a, "--push-twice"))
			o.push_twice = true;
		else if (!strcmp (a, "--other-session"))
			o.other_session = true;
		else if (!strcmp (a, "--destroy-verdict"))
			o.destroy_verdict = true;
		else if (!strcmp (a, "--run")) {
			if (i + 1 >= argc)
				return usage ();
			o.run = &argv[i + 1];
			break;
		} else
			return usage ();
		if (val) {
			if (++i >= argc)
				return usage ();
			*val = argv[i];
		}
	}
	if (!o.key || !o.in || (o.run && !o.evidence))
		return usage ();
	ct = read_file (o.in, &ct_len);
	if (!ct)
		goto out;

	dl = dlopen (o.module, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf (stderr, "push-client: %s\n", dlerror ());
		goto out;
	}
	get_list = (CK_RV (*) (CK_FUNCTION_LIST_PTR_PTR))dlsym (dl, "C_GetFunctionList");
	if (!get_list || !ck ("C_GetFunctionList", get_list (&f)))
		goto out;
	if (!ck ("C_Initialize", f->C_Initialize (NULL)))
		goto out;
	initialized = true;
	if (!find_slot (o.token, &slot))
		goto out;
	if (!ck ("C_OpenSession",
	         f->C_OpenSession (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)))
		goto out;
	rv = f->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR)o.pin, strlen (o.pin));
	if (rv != CKR_USER_ALREADY_LOGGED_IN && !ck ("C_Login", rv))
		goto out;
	if (!find_key (s, o.key, &key))
		goto out;

	if (!o.no_challenge) {
		CK_OBJECT_CLASS klass = CKO_P11W_CHALLENGE;
		CK_ATTRIBUTE t = { CKA_CLASS, &klass, sizeof klass };
		CK_OBJECT_HANDLE ch;
		unsigned char nonce[64];
		CK_ATTRIBUTE v = { CKA_VALUE, nonce, sizeof nonce };
		char hex[2 * sizeof nonce + 1];
		if (!ck ("C_CreateObject (challenge)", f->C_CreateObject (s, &t, 1, &ch)))
			goto out;
		if (!ck ("C_GetAttributeValue (challenge CKA_VALUE)", f->C_GetAttributeValue (s, ch, &v, 1)))
			goto out;
		print_hex ("nonce", nonce, v.ulValueLen);
		for (CK_ULONG i = 0; i < v.ulValueLen; i++)
			snprintf (hex + 2 * i, 3, "%02x", nonce[i]);
		if (o.run && !run_program (o.run, hex))
			goto out;
	} else if (o.run && !run_program (o.run, "00")) {
		goto out;
	}

	if (o.evidence) {
		ev = read_file (o.evidence, &ev_len);
		if (!ev)
			goto out;
		for (int n = 1; n <= (o.push_twice ? 2 : 1); n++) {
			char name[32];
			rv = push (s, &o, ev, ev_len, &verdict);
			snprintf (name, sizeof name, "push%d.rv", n);
			print_rv (name, rv);
			if (rv != CKR_OK)
				goto out;
			snprintf (name, sizeof name, "%d", n);
			print_verdict (s, verdict, name);
		}
	}
	if (o.after_push) {
		if (!run_shell (o.after_push))
			goto out;
		if (verdict != CK_INVALID_HANDLE)
			print_verdict (s, verdict, "A");
	}
	if (o.destroy_verdict && verdict != CK_INVALID_HANDLE) {
		CK_ULONG status;
		CK_ATTRIBUTE a = { CKA_P11W_STATUS, &status, sizeof status };
		if (!ck ("C_DestroyObject (verdict)", f->C_DestroyObject (s, verdict)))
			goto out;
		print_rv ("destroyed.status.rv", f->C_GetAttributeValue (s, verdict, &a, 1));
	}
	if (o.other_session) {
		if (!ck ("C_OpenSession (second)",
		         f->C_OpenSession (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2)))
			goto out;
		pt_len = sizeof pt;
		print_rv ("decrypt.other.rv", decrypt (s2, key, &o, ct, ct_len, pt, &pt_len));
	}
	pt_len = sizeof pt;
	rv = decrypt (s, key, &o, ct, ct_len, pt, &pt_len);
	print_rv ("decrypt.rv", rv);
	if (rv == CKR_OK && o.out && !write_file (o.out, pt, pt_len)) {
		fprintf (stderr, "push-client: cannot write %s\n", o.out);
		goto out;
	}
	ret = 0;
out:
	if (s2 != CK_INVALID_HANDLE)
		(void)f->C_CloseSession (s2);
	if (s != CK_INVALID_HANDLE)
		(void)f->C_CloseSession (s);
	if (initialized)
		(void)f->C_Finalize (NULL);
	/* No dlclose: the module may be built with -z nodelete, and a
	 * sanitizer report after unloading names no symbols. */
	(void)dl;
	free (ev);
	free (ct);
	return ret;
}
