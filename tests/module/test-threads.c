/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-threads: p11-warden under concurrent use, for a few seconds.
 *
 * Threads with a session each, threads sharing one session, and a thread
 * that opens and closes sessions (which the others also poke at while it
 * closes them) run mixed operations: sign and verify, decryption with an
 * ungated key, refused decryption with a gated key, reading an ungated
 * key's value and being refused a gated one's, finds, C_GetSessionInfo,
 * random numbers.  Every result is checked against the one answer that is
 * right for it; a thread's counts become one TAP line per kind.
 *
 * Sharing a session is the application's business to serialise for
 * operations that have state (PKCS#11 keeps one operation of a kind per
 * session), so the sharing threads take a lock of their own around those
 * and call the stateless functions without it.
 *
 * P11W_TEST_SECONDS sets the duration (default 3).
 */
#include "config.h"

#include "module-test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_OWN 4          /* threads with a session of their own */
#define N_SHARED 3       /* threads sharing one session */
#define N_THREADS (N_OWN + N_SHARED + 1)   /* + the session churner */

enum job {
	JOB_SIGN,            /* sign, then verify the signature */
	JOB_DECRYPT,         /* decrypt with the ungated key */
	JOB_REFUSED,         /* C_DecryptInit with the gated key: refused */
	JOB_FIND,            /* find the ungated private key by label */
	JOB_INFO,            /* C_GetSessionInfo */
	JOB_SECRET,          /* CKA_VALUE: ungated given, gated refused */
	JOB_RANDOM,          /* C_GenerateRandom */
	JOB_CHURN,           /* open, use and close a session */
	JOB_VICTIM,          /* stateless calls on a session being closed */
	JOB_COUNT,
};

static const char *const job_names[JOB_COUNT] = {
	"sign and verify", "decrypt (ungated)", "decrypt (gated, refused)", "find",
	"C_GetSessionInfo", "CKA_VALUE (ungated read, gated refused)", "C_GenerateRandom",
	"open, sign, close", "calls on a session being closed",
};

struct worker {
	int id;
	CK_SESSION_HANDLE session;
	bool rw;
	pthread_mutex_t *lock;     /* the shared session's, or NULL */
	unsigned long done[JOB_COUNT];
	unsigned long failed[JOB_COUNT];
	unsigned int reported;     /* diagnostics printed */
};

static CK_SLOT_ID slot;
static struct mt_keys k;
static CK_BYTE data[] = "p11-warden thread test data";
static CK_BYTE ct[256];        /* data under the ungated public key */
static CK_ULONG ct_len;
static CK_BYTE open_value[32]; /* the ungated AES key's value */
static atomic_bool stop;
static atomic_ulong victim;    /* a session the churner is about to close */

static void
fail (struct worker *w, enum job job, const char *what, CK_RV rv)
{
	w->failed[job]++;
	if (w->reported++ < 5)
		t_diag ("thread %d, %s: %s: %s", w->id, job_names[job], what, rv_name (rv));
}

#define EXPECT(w, job, call, want) \
	do { \
		CK_RV rv_ = (call); \
		if (rv_ != (want)) { \
			fail ((w), (job), #call, rv_); \
			return; \
		} \
	} while (0)

static void
lock (struct worker *w)
{
	if (w->lock)
		pthread_mutex_lock (w->lock);
}

static void
unlock (struct worker *w)
{
	if (w->lock)
		pthread_mutex_unlock (w->lock);
}

static void
job_sign (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[256];
	CK_ULONG len = sizeof sig;

	EXPECT (w, JOB_SIGN, F->C_SignInit (s, &m, k.open_priv), CKR_OK);
	EXPECT (w, JOB_SIGN, F->C_Sign (s, data, sizeof data, sig, &len), CKR_OK);
	EXPECT (w, JOB_SIGN, F->C_VerifyInit (s, &m, k.open_pub), CKR_OK);
	EXPECT (w, JOB_SIGN, F->C_Verify (s, data, sizeof data, sig, len), CKR_OK);
	sig[7] ^= 0x20;
	EXPECT (w, JOB_SIGN, F->C_VerifyInit (s, &m, k.open_pub), CKR_OK);
	EXPECT (w, JOB_SIGN, F->C_Verify (s, data, sizeof data, sig, len), CKR_SIGNATURE_INVALID);
}

static void
job_decrypt (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE out[256];
	CK_ULONG len = sizeof out;

	EXPECT (w, JOB_DECRYPT, F->C_DecryptInit (s, &m, k.open_priv), CKR_OK);
	EXPECT (w, JOB_DECRYPT, F->C_Decrypt (s, ct, ct_len, out, &len), CKR_OK);
	if (len != sizeof data || memcmp (out, data, len) != 0)
		fail (w, JOB_DECRYPT, "the plaintext differs", CKR_OK);
}

static void
job_refused (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE out[256];
	CK_ULONG len = sizeof out;

	EXPECT (w, JOB_REFUSED, F->C_DecryptInit (s, &m, k.gated_priv), CKR_FUNCTION_REJECTED);
	EXPECT (w, JOB_REFUSED, F->C_Decrypt (s, ct, ct_len, out, &len),
	        CKR_OPERATION_NOT_INITIALIZED);
}

static void
job_find (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &klass, sizeof klass },
		{ CKA_LABEL, (void *)KEY_OPEN_RSA, strlen (KEY_OPEN_RSA) },
	};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n = 0;

	EXPECT (w, JOB_FIND, F->C_FindObjectsInit (s, t, 2), CKR_OK);
	EXPECT (w, JOB_FIND, F->C_FindObjects (s, h, 4, &n), CKR_OK);
	EXPECT (w, JOB_FIND, F->C_FindObjectsFinal (s), CKR_OK);
	if (n != 1 || h[0] != k.open_priv)
		fail (w, JOB_FIND, "not exactly the ungated private key", CKR_OK);
}

static void
job_info (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	CK_STATE want = w->rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;

	EXPECT (w, JOB_INFO, F->C_GetSessionInfo (s, &si), CKR_OK);
	if (si.slotID != slot || si.state != want || !(si.flags & CKF_SERIAL_SESSION) ||
	    !!(si.flags & CKF_RW_SESSION) != w->rw)
		fail (w, JOB_INFO, "wrong slot, state or flags", CKR_OK);
}

static void
job_secret (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_BYTE value[64];
	CK_ATTRIBUTE a = { CKA_VALUE, value, sizeof value };

	EXPECT (w, JOB_SECRET, F->C_GetAttributeValue (s, k.open_aes, &a, 1), CKR_OK);
	if (a.ulValueLen != sizeof open_value || memcmp (value, open_value, sizeof open_value) != 0)
		fail (w, JOB_SECRET, "the ungated key's value differs", CKR_OK);
	a.ulValueLen = sizeof value;
	EXPECT (w, JOB_SECRET, F->C_GetAttributeValue (s, k.gated_aes, &a, 1), CKR_FUNCTION_REJECTED);
}

static void
job_random (struct worker *w, CK_SESSION_HANDLE s)
{
	CK_BYTE a[32], b[32];

	EXPECT (w, JOB_RANDOM, F->C_GenerateRandom (s, a, sizeof a), CKR_OK);
	EXPECT (w, JOB_RANDOM, F->C_GenerateRandom (s, b, sizeof b), CKR_OK);
	if (memcmp (a, b, sizeof a) == 0)
		fail (w, JOB_RANDOM, "the same 32 random bytes twice", CKR_OK);
}

/* Stateless calls on a session the churner may be closing right now: each
 * answers as for a live session, or CKR_SESSION_HANDLE_INVALID. */
static void
job_victim (struct worker *w)
{
	CK_SESSION_HANDLE s = atomic_load (&victim);
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE label[64];
	CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof label };
	CK_SESSION_INFO si;
	CK_RV rv;

	if (s == CK_INVALID_HANDLE)
		return;
	rv = F->C_GetSessionInfo (s, &si);
	if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID)
		fail (w, JOB_VICTIM, "C_GetSessionInfo", rv);
	if (rv == CKR_OK && (si.state != CKS_RO_USER_FUNCTIONS && si.state != CKS_RW_USER_FUNCTIONS))
		fail (w, JOB_VICTIM, "C_GetSessionInfo: not a user session", CKR_OK);
	rv = F->C_GetAttributeValue (s, k.open_priv, &a, 1);
	if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID)
		fail (w, JOB_VICTIM, "C_GetAttributeValue", rv);
	/* Nobody starts an operation on the victim: a refusal or a closed
	 * session, never anything else. */
	rv = F->C_DecryptInit (s, &m, k.gated_priv);
	if (rv != CKR_FUNCTION_REJECTED && rv != CKR_SESSION_HANDLE_INVALID)
		fail (w, JOB_VICTIM, "C_DecryptInit (gated)", rv);
}

static void *
worker_main (void *arg)
{
	struct worker *w = arg;
	unsigned int i = (unsigned int)w->id;

	while (!atomic_load_explicit (&stop, memory_order_relaxed)) {
		enum job job = (enum job)(i++ % (JOB_RANDOM + 2));
		CK_SESSION_HANDLE s = w->session;

		if (job == JOB_RANDOM + 1) {
			/* The victim counts as a job of its own. */
			job_victim (w);
			w->done[JOB_VICTIM]++;
			continue;
		}
		switch (job) {
		case JOB_SIGN:
			lock (w);
			job_sign (w, s);
			unlock (w);
			break;
		case JOB_DECRYPT:
			lock (w);
			job_decrypt (w, s);
			unlock (w);
			break;
		case JOB_REFUSED:
			/* Stateless when refused, but an Init checks first that no
			 * decryption is active: a sharer's would be. */
			lock (w);
			job_refused (w, s);
			unlock (w);
			break;
		case JOB_FIND:
			lock (w);
			job_find (w, s);
			unlock (w);
			break;
		case JOB_INFO:
			job_info (w, s);
			break;
		case JOB_SECRET:
			job_secret (w, s);
			break;
		case JOB_RANDOM:
			job_random (w, s);
			break;
		default:
			break;
		}
		w->done[job]++;
	}
	return NULL;
}

/* Opens a session (R/O and R/W in turn), checks it is logged in (the
 * login is the application's), signs with it, offers it to the others as
 * the victim, and closes it. */
static void *
churn_main (void *arg)
{
	struct worker *w = arg;
	unsigned long n = 0;

	while (!atomic_load_explicit (&stop, memory_order_relaxed)) {
		bool rw = n++ % 2;
		CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
		CK_SESSION_INFO si;
		CK_RV rv = F->C_OpenSession (slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL,
		                             NULL, &s);

		w->done[JOB_CHURN]++;
		if (rv != CKR_OK) {
			fail (w, JOB_CHURN, "C_OpenSession", rv);
			continue;
		}
		rv = F->C_GetSessionInfo (s, &si);
		if (rv != CKR_OK || si.state != (rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS))
			fail (w, JOB_CHURN, "the new session is not logged in", rv);
		w->rw = rw;
		job_sign (w, s);
		atomic_store (&victim, s);
		job_find (w, s);
		rv = F->C_CloseSession (s);
		if (rv != CKR_OK)
			fail (w, JOB_CHURN, "C_CloseSession", rv);
		rv = F->C_GetSessionInfo (s, &si);
		if (rv != CKR_SESSION_HANDLE_INVALID)
			fail (w, JOB_CHURN, "C_GetSessionInfo after C_CloseSession", rv);
	}
	return NULL;
}

static void
setup (CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_ATTRIBUTE a = { CKA_VALUE, open_value, sizeof open_value };

	mt_login (s);
	mt_provision (s);
	mt_keys (s, &k);
	ct_len = sizeof ct;
	if (F->C_EncryptInit (s, &m, k.open_pub) != CKR_OK ||
	    F->C_Encrypt (s, data, sizeof data, ct, &ct_len) != CKR_OK)
		t_bail ("cannot encrypt the test data");
	if (F->C_GetAttributeValue (s, k.open_aes, &a, 1) != CKR_OK || a.ulValueLen != 32)
		t_bail ("cannot read the ungated AES key");
}

int
main (void)
{
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
	CK_SESSION_HANDLE main_session, shared;
	CK_TOKEN_INFO ti;
	struct timespec pause;
	int seconds = atoi (mt_env ("P11W_TEST_SECONDS", "3"));
	CK_RV rv;

	mt_load ();
	rv = mt_initialize ();
	if (rv != CKR_OK)
		t_bail ("C_Initialize: %s", rv_name (rv));
	slot = mt_slot (mt_env ("WARDEN_LABEL", "warden"));
	main_session = mt_open (slot, true);
	setup (main_session);
	shared = mt_open (slot, false);

	memset (workers, 0, sizeof workers);
	for (int i = 0; i < N_THREADS; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		if (i < N_OWN) {
			w->rw = i % 2;
			w->session = mt_open (slot, w->rw);
		} else if (i < N_OWN + N_SHARED) {
			w->session = shared;
			w->lock = &shared_lock;
		}
	}
	t_diag ("%d threads with a session each, %d sharing one, one opening and closing "
	        "sessions, for %d s", N_OWN, N_SHARED, seconds);
	for (int i = 0; i < N_THREADS; i++) {
		if (pthread_create (&threads[i], NULL, i < N_OWN + N_SHARED ? worker_main : churn_main,
		                    &workers[i]) != 0)
			t_bail ("pthread_create failed");
	}
	pause.tv_sec = seconds > 0 ? seconds : 1;
	pause.tv_nsec = 0;
	nanosleep (&pause, NULL);
	atomic_store (&stop, true);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join (threads[i], NULL);

	for (int i = 0; i < N_THREADS; i++) {
		struct worker *w = &workers[i];
		const char *who = i < N_OWN ? "own session" : i < N_OWN + N_SHARED ? "shared session"
		                                                                    : "churner";
		for (int j = 0; j < JOB_COUNT; j++) {
			if (!w->done[j] && !w->failed[j])
				continue;
			t_ok (w->failed[j] == 0, "thread %d (%s): %s: %lu of %lu as expected", i, who,
			      job_names[j], w->done[j] - w->failed[j], w->done[j]);
		}
	}
	/* Every worker ran every job of its kind at least once. */
	for (int i = 0; i < N_OWN + N_SHARED; i++) {
		bool all = true;
		for (int j = 0; j <= JOB_RANDOM; j++)
			all = all && workers[i].done[j] > 0;
		t_ok (all, "thread %d ran every kind of job", i);
	}
	t_ok (workers[N_THREADS - 1].done[JOB_CHURN] > 1, "the churner opened and closed %lu sessions",
	      workers[N_THREADS - 1].done[JOB_CHURN]);

	/* The session counts came out right: main, shared and the four own. */
	t_rv (F->C_GetTokenInfo (slot, &ti), CKR_OK, "C_GetTokenInfo");
	t_ok (ti.ulSessionCount == 2 + N_OWN, "%lu sessions open (want %d)",
	      (unsigned long)ti.ulSessionCount, 2 + N_OWN);
	t_ok (ti.ulRwSessionCount == 1 + N_OWN / 2, "%lu R/W sessions open (want %d)",
	      (unsigned long)ti.ulRwSessionCount, 1 + N_OWN / 2);
	t_ok (mt_state (main_session) == CKS_RW_USER_FUNCTIONS, "still logged in");
	for (int i = 0; i < N_OWN; i++)
		t_rv (F->C_CloseSession (workers[i].session), CKR_OK, "C_CloseSession (thread %d)", i);
	t_rv (F->C_CloseSession (shared), CKR_OK, "C_CloseSession (shared)");
	t_rv (F->C_Finalize (NULL), CKR_OK, "C_Finalize");
	pthread_mutex_destroy (&shared_lock);
	return t_done ();
}
