/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fork: p11-warden across fork().
 *
 * The parent initialises, opens a session and logs in, then forks.  In the
 * child every entry point answers CKR_CRYPTOKI_NOT_INITIALIZED until
 * C_Initialize is called again; after it the module works (open, log in,
 * sign, the gate) and nothing of the parent's is inherited: not its
 * sessions, and above all not its login.  SoftHSM has no fork handling of
 * its own (library.reset_on_fork defaults to false), so its memory in the
 * child still holds the parent's logged-in sessions: a fresh session that
 * could see private objects without a login would be a security bug.  The
 * parent keeps working after each child has exited.
 *
 * The child's checks continue the parent's TAP numbering: the child sends
 * its counters back through a pipe.
 */
#include "config.h"

#include "module-test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static CK_SLOT_ID slot;
static struct mt_keys k;
static CK_BYTE data[] = "p11-warden fork test data";

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

static CK_RV
sign (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[256];
	CK_ULONG len = sizeof sig;
	CK_RV rv = F->C_SignInit (s, &m, key);
	if (rv == CKR_OK)
		rv = F->C_Sign (s, data, sizeof data, sig, &len);
	return rv;
}

/* What the parent's session can do; used before and after each child. */
static void
parent_works (CK_SESSION_HANDLE s, const char *when)
{
	CK_SESSION_HANDLE s2;
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };

	t_ok (mt_state (s) == CKS_RW_USER_FUNCTIONS, "parent, %s: its session is still logged in",
	      when);
	t_rv (sign (s, k.open_priv), CKR_OK, "parent, %s: sign", when);
	t_ok (count_private (s) > 0, "parent, %s: the private objects are visible", when);
	t_rv (F->C_DecryptInit (s, &rsa, k.gated_priv), CKR_FUNCTION_REJECTED,
	      "parent, %s: the gate still refuses", when);
	t_rv (F->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_OK,
	      "parent, %s: C_OpenSession", when);
	t_ok (mt_state (s2) == CKS_RO_USER_FUNCTIONS, "parent, %s: a new session is logged in", when);
	t_rv (F->C_CloseSession (s2), CKR_OK, "parent, %s: C_CloseSession", when);
}

/* The child that initialises again.  Returns through _exit. */
static void
child_reinitialises (int fd, CK_SESSION_HANDLE parent_session)
{
	CK_SESSION_HANDLE s;
	CK_SESSION_INFO si;
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE value[64];
	CK_ATTRIBUTE a = { CKA_VALUE, value, sizeof value };
	struct mt_keys ck;
	unsigned int counts[2];
	CK_RV rv;

	t_ok (getpid () != 0, "child: forked");
	mt_check_not_initialized (slot, parent_session, "child, before C_Initialize");

	rv = mt_initialize ();
	t_rv (rv, CKR_OK, "child: C_Initialize");
	if (rv == CKR_OK) {
		t_rv (mt_initialize (), CKR_CRYPTOKI_ALREADY_INITIALIZED, "child: C_Initialize twice");
		t_rv (F->C_GetSessionInfo (parent_session, &si), CKR_SESSION_HANDLE_INVALID,
		      "child: the parent's session is not inherited");
		slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
		s = mt_open (slot, false);
		t_ok (mt_state (s) == CKS_RO_PUBLIC_SESSION,
		      "child: a new session is public (the parent's login is not inherited)");
		/* The security check: SoftHSM's memory is the parent's, logged
		 * in; the child's sessions must not be. */
		t_ok (count_private (s) == 0, "child: no private object is visible before C_Login");
		t_ok (sign (s, k.open_priv) != CKR_OK,
		      "child: the parent's handle of a private key signs nothing before C_Login");
		t_ok (F->C_GetAttributeValue (s, k.open_aes, &a, 1) != CKR_OK,
		      "child: no key value is readable through the parent's handle before C_Login");
		t_rv (F->C_Login (s, CKU_USER, (CK_UTF8CHAR_PTR)"0000", 4), CKR_PIN_INCORRECT,
		      "child: C_Login with a wrong PIN");
		mt_login (s);
		t_ok (mt_state (s) == CKS_RO_USER_FUNCTIONS, "child: logged in");
		t_ok (count_private (s) > 0, "child: the private objects are visible after C_Login");
		mt_keys (s, &ck);
		t_rv (sign (s, ck.open_priv), CKR_OK, "child: sign");
		t_rv (F->C_DecryptInit (s, &rsa, ck.gated_priv), CKR_FUNCTION_REJECTED,
		      "child: the gate refuses a gated key");
		t_rv (F->C_Logout (s), CKR_OK, "child: C_Logout");
		t_ok (count_private (s) == 0, "child: after C_Logout, no private object is visible");
		t_rv (F->C_Finalize (NULL), CKR_OK, "child: C_Finalize");
	}
	t_get_counts (&counts[0], &counts[1]);
	if (write (fd, counts, sizeof counts) != (ssize_t)sizeof counts)
		_exit (98);
	_exit (counts[1] ? 1 : 0);
}

/* A child that never initialises: everything is refused, nothing is
 * touched, and it leaves with exit() (the library destructors run). */
static void
child_leaves (int fd, CK_SESSION_HANDLE parent_session)
{
	CK_SESSION_INFO si;
	CK_INFO info;
	unsigned int counts[2];

	t_rv (F->C_GetInfo (&info), CKR_CRYPTOKI_NOT_INITIALIZED, "second child: C_GetInfo");
	t_rv (F->C_GetSessionInfo (parent_session, &si), CKR_CRYPTOKI_NOT_INITIALIZED,
	      "second child: C_GetSessionInfo on the parent's session");
	t_rv (F->C_Finalize (NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "second child: C_Finalize");
	t_get_counts (&counts[0], &counts[1]);
	if (write (fd, counts, sizeof counts) != (ssize_t)sizeof counts)
		_exit (98);
	fflush (stdout);
	exit (counts[1] ? 1 : 0);
}

/* Fork, run @child in the child, wait, and take its checks into ours. */
static void
run_child (void (*child) (int, CK_SESSION_HANDLE), CK_SESSION_HANDLE s, const char *name)
{
	unsigned int counts[2] = { 0, 0 };
	int fds[2], status = 0;
	ssize_t r;
	pid_t pid;

	if (pipe (fds) != 0)
		t_bail ("pipe: %s", strerror (errno));
	fflush (stdout);
	pid = fork ();
	if (pid < 0)
		t_bail ("fork: %s", strerror (errno));
	if (pid == 0) {
		close (fds[0]);
		child (fds[1], s);
		_exit (97);
	}
	close (fds[1]);
	do {
		r = read (fds[0], counts, sizeof counts);
	} while (r < 0 && errno == EINTR);
	close (fds[0]);
	while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == (ssize_t)sizeof counts) {
		unsigned int n, failed;
		t_get_counts (&n, &failed);
		/* The child went on from our numbering. */
		t_set_counts (counts[0], failed + counts[1]);
	}
	t_ok (r == (ssize_t)sizeof counts, "%s: reported its checks", name);
	t_ok (WIFEXITED (status) && WEXITSTATUS (status) == (counts[1] ? 1 : 0),
	      "%s: exited normally (status 0x%x)", name, (unsigned)status);
}

int
main (void)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	mt_load ();
	rv = mt_initialize ();
	if (rv != CKR_OK)
		t_bail ("C_Initialize: %s", rv_name (rv));
	slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
	s = mt_open (slot, true);
	mt_login (s);
	mt_provision (s);
	mt_keys (s, &k);
	parent_works (s, "before fork");

	/* A find in progress in the parent: the child must not be able to
	 * continue it (it is not initialised), and the parent can. */
	t_rv (F->C_FindObjectsInit (s, NULL, 0), CKR_OK, "parent: C_FindObjectsInit before fork");
	run_child (child_reinitialises, s, "first child");
	{
		CK_OBJECT_HANDLE h[4];
		CK_ULONG n = 0;
		t_rv (F->C_FindObjects (s, h, 4, &n), CKR_OK,
		      "parent: the find goes on after the child");
		t_ok (n > 0, "parent: ... and finds objects");
		t_rv (F->C_FindObjectsFinal (s), CKR_OK, "parent: C_FindObjectsFinal");
	}
	parent_works (s, "after the first child");

	run_child (child_leaves, s, "second child");
	parent_works (s, "after the second child");

	t_rv (F->C_Finalize (NULL), CKR_OK, "parent: C_Finalize");
	return t_done ();
}
