/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the module tests: a small TAP writer, loading the built
 * module with dlopen (only its three exported discovery functions), and the
 * test keys.
 *
 * The programs never link the module: what they see is what an application
 * sees, export map included.  The environment comes from module-env.sh:
 * P11W_MODULE, P11_WARDEN_CONF, WARDEN_LABEL, WARDEN_PIN, WARDEN_SO_PIN,
 * SPARE_LABEL, P11W_PIN_MAX_FAILURES (and P11W_TEST_SECONDS for
 * test-threads).
 */
#ifndef P11W_MODULE_TEST_H
#define P11W_MODULE_TEST_H

#include <p11-kit/pkcs11.h>
#include "pkcs11.h"

#include <stdbool.h>
#include <stddef.h>

#ifndef CKF_FIND_OBJECTS
#define CKF_FIND_OBJECTS 0x00000040UL /* 3.0, C_SessionCancel */
#endif

/* ------------------------------------------------------------ TAP */

/* Each check prints "ok N - ..." or "not ok N - ..."; safe from any thread. */
bool t_ok (bool cond, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Passes when @got is @want; the message names both codes. */
bool t_rv (CK_RV got, CK_RV want, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
/* Passes when @got is one of @n codes in @want. */
bool t_rv_any (CK_RV got, const CK_RV *want, size_t n, const char *fmt, ...)
	__attribute__ ((format (printf, 4, 5)));
void t_diag (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* A setup step that must work: prints "Bail out!" and exits 99. */
void t_bail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2), noreturn));
/* Prints the plan; the exit status: 0 when every check passed, else 1. */
int t_done (void);
int t_failures (void);
/* The counters, to carry a forked child's checks back into the parent's
 * numbering (test-fork.c). */
void t_get_counts (unsigned int *n, unsigned int *failed);
void t_set_counts (unsigned int n, unsigned int failed);

const char *rv_name (CK_RV rv);

/* ------------------------------------------------------------ the module */

extern CK_FUNCTION_LIST_3_0 *F;   /* the 3.0 list, from C_GetInterface */
extern CK_FUNCTION_LIST *F2;      /* the 2.40 list, from C_GetFunctionList */

/* The exported discovery functions, resolved with dlsym. */
extern CK_C_GetFunctionList mt_get_function_list;
extern CK_C_GetInterfaceList mt_get_interface_list;
extern CK_C_GetInterface mt_get_interface;

/* dlopen $P11W_MODULE and fill F and F2 (bails out on failure, and when
 * the discovery functions do not come from the module file itself). */
void *mt_load (void);
/* Does the module file itself export @sym (not one of its dependencies)? */
bool mt_module_defines (void *dl, const char *sym);
/* C_Initialize with CKF_OS_LOCKING_OK. */
CK_RV mt_initialize (void);

const char *mt_env (const char *name, const char *fallback);
const char *mt_pin (void);
const char *mt_so_pin (void);

/* Handles that name nothing (the module's handles are small counters and
 * SoftHSM's are small indices). */
#define MT_BOGUS_HANDLE ((CK_ULONG)0x7eadbeefUL)
#define MT_BOGUS_SLOT ((CK_SLOT_ID)4242)

/*
 * Call every entry point that takes a session, with handle @h and
 * arguments that are otherwise well formed, and expect @want of each: the
 * stubs of unsupported functions answer CKR_FUNCTION_NOT_SUPPORTED (and
 * the legacy ones CKR_FUNCTION_NOT_PARALLEL) once the module is
 * initialised, whatever the session.  Object handles passed are bogus, so
 * that nothing is changed should a check fail.  C_CloseSession (h) is the
 * last call.
 */
void mt_check_session_calls (CK_SESSION_HANDLE h, CK_RV want, const char *what);
/* Every entry point but the three discovery functions must answer
 * CKR_CRYPTOKI_NOT_INITIALIZED (@slot and @h are handles that were valid
 * before: a finalised module or the child of a fork); the discovery
 * functions must still work. */
void mt_check_not_initialized (CK_SLOT_ID slot, CK_SESSION_HANDLE h, const char *what);

/* The slot whose token has this label (blank padded in CK_TOKEN_INFO);
 * bails out when there is none. */
CK_SLOT_ID mt_slot (const char *label);
CK_SESSION_HANDLE mt_open (CK_SLOT_ID slot, bool rw);
/* The single object of @klass with @label, or CK_INVALID_HANDLE. */
CK_OBJECT_HANDLE mt_find (CK_SESSION_HANDLE s, CK_OBJECT_CLASS klass, const char *label);
/* How many objects the session can see. */
CK_ULONG mt_count_objects (CK_SESSION_HANDLE s);
/* The session's state (CKS_*), or (CK_STATE)-1 on error. */
CK_STATE mt_state (CK_SESSION_HANDLE s);

/*
 * The test keys, created in the session's token through the module when
 * missing (the session must be a logged-in R/W user session).  The
 * configuration written by module-env.sh leaves the open-* keys ungated.
 * SoftHSM hands out new object handles once every session of its token has
 * closed: look the keys up again after that.
 */
#define KEY_GATED_RSA "gated-rsa"   /* RSA-2048 pair, private key sensitive */
#define KEY_OPEN_RSA "open-rsa"
#define KEY_GATED_AES "gated-aes"   /* AES-256, extractable, not sensitive */
#define KEY_OPEN_AES "open-aes"
#define KEY_OPEN_AES_B "open-aes-b"
#define KEY_GATED_EC "gated-ec"     /* P-256 pair for ECDH, private key sensitive */
#define KEY_OPEN_EC "open-ec"
void mt_provision (CK_SESSION_HANDLE s);
/* One more RSA-2048 token key pair like the test keys, labelled @label
 * (both halves), id @id; bails out on failure. */
void mt_make_rsa (CK_SESSION_HANDLE s, const char *label, CK_BYTE id);

struct mt_keys {
	CK_OBJECT_HANDLE gated_priv, gated_pub, open_priv, open_pub;
	CK_OBJECT_HANDLE gated_aes, open_aes, open_aes_b;
	CK_OBJECT_HANDLE gated_ec, gated_ec_pub, open_ec, open_ec_pub;
};
/* Look the test keys up (bails out when one is missing). */
void mt_keys (CK_SESSION_HANDLE s, struct mt_keys *k);

/* Log in as the user (CKR_USER_ALREADY_LOGGED_IN counts as done); bails
 * out on failure. */
void mt_login (CK_SESSION_HANDLE s);

#endif /* P11W_MODULE_TEST_H */
