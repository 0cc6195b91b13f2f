/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11w-bench: operations per second of PKCS#11 modules, and what p11-warden
 * costs in front of its backend.
 *
 * Two "sides" can be measured in one process: the backend module used
 * directly (--direct) and p11-warden fronting that same backend (--warden).
 * Each side is loaded with dlopen() and C_GetFunctionList(), finds its token
 * by label, logs in, and generates its own session keys (labelled bench-rsa
 * and bench-aes, which the benchmark configuration declares ungated).
 *
 * For every operation and thread count the sides are measured in alternating
 * rounds (direct, warden, direct, ...) so that drift in machine load hits
 * both alike; the median over the rounds is reported with its spread.
 *
 * Every operation's result is checked: decryptions against the original
 * plaintext, signatures against the reference signature (PKCS#1 v1.5 is
 * deterministic), unwrapped keys by the return codes in the timed loop and
 * by an AES-ECB probe in the untimed warm-up of every worker.  A benchmark
 * that measures errors is worthless, so any failure ends the run with the
 * CKR name and exit status 1.
 *
 * When both sides are the same SoftHSM instance in this process (p11-warden
 * loads the backend itself), the second C_Initialize returns
 * CKR_CRYPTOKI_ALREADY_INITIALIZED and the second C_Login returns
 * CKR_USER_ALREADY_LOGGED_IN: both are expected.  The side that did not
 * initialise the library does not finalise it either.
 *
 * Build: cc -std=c11 $(pkg-config --cflags p11-kit-1) p11w-bench.c -ldl -lpthread
 */

#define _POSIX_C_SOURCE 200809L

#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Note: in its default (compatibility) mode the p11-kit header defines
 * lower-case macros such as "value", "count", "params" and "reserved".
 * Identifiers with those names are avoided below.
 */

#define PROGRAM              "p11w-bench"

#define RSA_BITS             2048
#define RSA_BYTES            (RSA_BITS / 8)
#define AES_KEY_BYTES        32
#define AES_BLOCK_BYTES      16
#define WRAPPED_BYTES        (AES_KEY_BYTES + 8)   /* RFC 3394 adds one 64-bit block */

#define MAX_THREADS          256
#define MAX_THREAD_COUNTS    16
#define MAX_ROUNDS           1000

#define LABEL_RSA            "bench-rsa"
#define LABEL_AES            "bench-aes"
#define LABEL_UNWRAPPED      "bench-unwrapped"

/* The operations, in the order they are run and reported. */
enum {
	OP_RSA_PKCS_DECRYPT,
	OP_RSA_OAEP_DECRYPT,
	OP_RSA_SIGN,
	OP_AES_UNWRAP,
	OP_TRIVIAL,
	OP_ATTR,
	N_OPS
};

static const char *const op_names[N_OPS] = {
	"rsa-pkcs-decrypt",
	"rsa-oaep-decrypt",
	"rsa-sign",
	"aes-unwrap",
	"trivial",
	"attr",
};

enum {
	SIDE_DIRECT,
	SIDE_WARDEN,
	N_SIDES
};

/* The fixed inputs: a 32-byte plaintext (also the message that is signed)
 * and one AES block encrypted under the unwrapped key to check its value. */
static const CK_BYTE plaintext[32] = "p11-warden bench plaintext 0123";
static const CK_BYTE probe_block[AES_BLOCK_BYTES] = "p11w probe block";

/* One module under test, with the keys and reference data made for it. */
typedef struct {
	const char *name;               /* "direct" or "warden" */
	const char *module_path;
	const char *token_label;
	const char *pin;
	bool enabled;

	void *dl;
	CK_FUNCTION_LIST_PTR fn;
	bool initialized;               /* our C_Initialize returned CKR_OK */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE setup;        /* owns the session keys; open all run */
	bool logged_in;                 /* our C_Login returned CKR_OK */

	CK_OBJECT_HANDLE rsa_pub;
	CK_OBJECT_HANDLE rsa_priv;
	CK_OBJECT_HANDLE aes_key;

	CK_BYTE ct_pkcs[RSA_BYTES];
	CK_ULONG ct_pkcs_len;
	CK_BYTE ct_oaep[RSA_BYTES];
	CK_ULONG ct_oaep_len;
	CK_BYTE signature[RSA_BYTES];
	CK_ULONG signature_len;
	CK_BYTE wrapped[WRAPPED_BYTES];
	CK_ULONG wrapped_len;
	CK_BYTE probe_ct[AES_BLOCK_BYTES];   /* probe_block under the wrapped key */
} Side;

/* Released all at once when every worker of a round is ready. */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int ready;
	bool go;
} Gate;

typedef struct {
	Side *side;
	int op;
	double seconds;
	Gate *gate;
	pthread_t thread;
	unsigned long done;             /* operations completed in the window */
	double elapsed;                 /* seconds from start to the last one */
	bool failed;
} Worker;

/* Set by the first failing worker so that the others stop early. */
static atomic_bool abort_run;

static struct {
	Side sides[N_SIDES];
	unsigned int threads[MAX_THREAD_COUNTS];
	size_t n_threads;
	double seconds;
	unsigned int rounds;
	bool ops[N_OPS];
	bool verbose;
} opt;

/*
 * Error reporting
 */

#define RV_NAME(x) { x, #x }

static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	RV_NAME (CKR_OK),
	RV_NAME (CKR_CANCEL),
	RV_NAME (CKR_HOST_MEMORY),
	RV_NAME (CKR_SLOT_ID_INVALID),
	RV_NAME (CKR_GENERAL_ERROR),
	RV_NAME (CKR_FUNCTION_FAILED),
	RV_NAME (CKR_ARGUMENTS_BAD),
	RV_NAME (CKR_NO_EVENT),
	RV_NAME (CKR_NEED_TO_CREATE_THREADS),
	RV_NAME (CKR_CANT_LOCK),
	RV_NAME (CKR_ATTRIBUTE_READ_ONLY),
	RV_NAME (CKR_ATTRIBUTE_SENSITIVE),
	RV_NAME (CKR_ATTRIBUTE_TYPE_INVALID),
	RV_NAME (CKR_ATTRIBUTE_VALUE_INVALID),
	RV_NAME (CKR_ACTION_PROHIBITED),
	RV_NAME (CKR_DATA_INVALID),
	RV_NAME (CKR_DATA_LEN_RANGE),
	RV_NAME (CKR_DEVICE_ERROR),
	RV_NAME (CKR_DEVICE_MEMORY),
	RV_NAME (CKR_DEVICE_REMOVED),
	RV_NAME (CKR_ENCRYPTED_DATA_INVALID),
	RV_NAME (CKR_ENCRYPTED_DATA_LEN_RANGE),
	RV_NAME (CKR_FUNCTION_CANCELED),
	RV_NAME (CKR_FUNCTION_NOT_PARALLEL),
	RV_NAME (CKR_FUNCTION_NOT_SUPPORTED),
	RV_NAME (CKR_KEY_HANDLE_INVALID),
	RV_NAME (CKR_KEY_SIZE_RANGE),
	RV_NAME (CKR_KEY_TYPE_INCONSISTENT),
	RV_NAME (CKR_KEY_NOT_NEEDED),
	RV_NAME (CKR_KEY_CHANGED),
	RV_NAME (CKR_KEY_NEEDED),
	RV_NAME (CKR_KEY_INDIGESTIBLE),
	RV_NAME (CKR_KEY_FUNCTION_NOT_PERMITTED),
	RV_NAME (CKR_KEY_NOT_WRAPPABLE),
	RV_NAME (CKR_KEY_UNEXTRACTABLE),
	RV_NAME (CKR_MECHANISM_INVALID),
	RV_NAME (CKR_MECHANISM_PARAM_INVALID),
	RV_NAME (CKR_OBJECT_HANDLE_INVALID),
	RV_NAME (CKR_OPERATION_ACTIVE),
	RV_NAME (CKR_OPERATION_NOT_INITIALIZED),
	RV_NAME (CKR_PIN_INCORRECT),
	RV_NAME (CKR_PIN_INVALID),
	RV_NAME (CKR_PIN_LEN_RANGE),
	RV_NAME (CKR_PIN_EXPIRED),
	RV_NAME (CKR_PIN_LOCKED),
	RV_NAME (CKR_SESSION_CLOSED),
	RV_NAME (CKR_SESSION_COUNT),
	RV_NAME (CKR_SESSION_HANDLE_INVALID),
	RV_NAME (CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	RV_NAME (CKR_SESSION_READ_ONLY),
	RV_NAME (CKR_SESSION_EXISTS),
	RV_NAME (CKR_SESSION_READ_ONLY_EXISTS),
	RV_NAME (CKR_SESSION_READ_WRITE_SO_EXISTS),
	RV_NAME (CKR_SIGNATURE_INVALID),
	RV_NAME (CKR_SIGNATURE_LEN_RANGE),
	RV_NAME (CKR_TEMPLATE_INCOMPLETE),
	RV_NAME (CKR_TEMPLATE_INCONSISTENT),
	RV_NAME (CKR_TOKEN_NOT_PRESENT),
	RV_NAME (CKR_TOKEN_NOT_RECOGNIZED),
	RV_NAME (CKR_TOKEN_WRITE_PROTECTED),
	RV_NAME (CKR_UNWRAPPING_KEY_HANDLE_INVALID),
	RV_NAME (CKR_UNWRAPPING_KEY_SIZE_RANGE),
	RV_NAME (CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
	RV_NAME (CKR_USER_ALREADY_LOGGED_IN),
	RV_NAME (CKR_USER_NOT_LOGGED_IN),
	RV_NAME (CKR_USER_PIN_NOT_INITIALIZED),
	RV_NAME (CKR_USER_TYPE_INVALID),
	RV_NAME (CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	RV_NAME (CKR_USER_TOO_MANY_TYPES),
	RV_NAME (CKR_WRAPPED_KEY_INVALID),
	RV_NAME (CKR_WRAPPED_KEY_LEN_RANGE),
	RV_NAME (CKR_WRAPPING_KEY_HANDLE_INVALID),
	RV_NAME (CKR_WRAPPING_KEY_SIZE_RANGE),
	RV_NAME (CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	RV_NAME (CKR_RANDOM_SEED_NOT_SUPPORTED),
	RV_NAME (CKR_RANDOM_NO_RNG),
	RV_NAME (CKR_DOMAIN_PARAMS_INVALID),
	RV_NAME (CKR_CURVE_NOT_SUPPORTED),
	RV_NAME (CKR_BUFFER_TOO_SMALL),
	RV_NAME (CKR_SAVED_STATE_INVALID),
	RV_NAME (CKR_INFORMATION_SENSITIVE),
	RV_NAME (CKR_STATE_UNSAVEABLE),
	RV_NAME (CKR_CRYPTOKI_NOT_INITIALIZED),
	RV_NAME (CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV_NAME (CKR_MUTEX_BAD),
	RV_NAME (CKR_MUTEX_NOT_LOCKED),
	RV_NAME (CKR_NEW_PIN_MODE),
	RV_NAME (CKR_NEXT_OTP),
	RV_NAME (CKR_EXCEEDED_MAX_ITERATIONS),
	RV_NAME (CKR_FIPS_SELF_TEST_FAILED),
	RV_NAME (CKR_LIBRARY_LOAD_FAILED),
	RV_NAME (CKR_PIN_TOO_WEAK),
	RV_NAME (CKR_PUBLIC_KEY_INVALID),
	RV_NAME (CKR_FUNCTION_REJECTED),
};

static const char *
rv_name (CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof (rv_names) / sizeof (rv_names[0]); i++) {
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	}
	if (rv & CKR_VENDOR_DEFINED)
		return "CKR_VENDOR_DEFINED+";
	return "unknown CKR";
}

#ifdef __GNUC__
#define GNUC_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
#else
#define GNUC_PRINTF(f, a)
#endif

static bool fail (const Side *side, const char *op_name, const char *format, ...)
	GNUC_PRINTF (3, 4);

/* Prints "p11w-bench: <side>: <op>: <message>" on stderr.  Always false. */
static bool
fail (const Side *side,
      const char *op_name,
      const char *format,
      ...)
{
	char message[512];
	va_list va;

	va_start (va, format);
	vsnprintf (message, sizeof (message), format, va);
	va_end (va);

	fprintf (stderr, "%s: %s%s%s%s%s\n", PROGRAM,
	         side ? side->name : "", side ? ": " : "",
	         op_name ? op_name : "", op_name ? ": " : "",
	         message);
	return false;
}

/* Reports a failed call with the name and number of its return value. */
static bool
fail_rv (const Side *side,
         const char *op_name,
         const char *call,
         CK_RV rv)
{
	return fail (side, op_name, "%s failed: %s (0x%08lx)",
	             call, rv_name (rv), (unsigned long) rv);
}

static double
now (void)
{
	struct timespec ts;

	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * Operations.  Each returns true on success and reports its own failure.
 * With "full", it also checks what the timed loop can only check cheaply.
 */

static bool
op_decrypt (Side *side,
            CK_SESSION_HANDLE session,
            int op)
{
	CK_RSA_PKCS_OAEP_PARAMS oaep = {
		/* SoftHSM 2.6 accepts OAEP only with SHA-1 and MGF1-SHA1 */
		.hashAlg = CKM_SHA_1,
		.mgf = CKG_MGF1_SHA1,
		.source = CKZ_DATA_SPECIFIED,
		.pSourceData = NULL,
		.ulSourceDataLen = 0,
	};
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE *ct = side->ct_pkcs;
	CK_ULONG ct_len = side->ct_pkcs_len;
	CK_BYTE out[RSA_BYTES];
	CK_ULONG out_len = sizeof (out);
	CK_RV rv;

	if (op == OP_RSA_OAEP_DECRYPT) {
		mech.mechanism = CKM_RSA_PKCS_OAEP;
		mech.pParameter = &oaep;
		mech.ulParameterLen = sizeof (oaep);
		ct = side->ct_oaep;
		ct_len = side->ct_oaep_len;
	}

	rv = side->fn->C_DecryptInit (session, &mech, side->rsa_priv);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[op], "C_DecryptInit", rv);
	rv = side->fn->C_Decrypt (session, ct, ct_len, out, &out_len);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[op], "C_Decrypt", rv);
	if (out_len != sizeof (plaintext) || memcmp (out, plaintext, out_len) != 0) {
		return fail (side, op_names[op],
		             "C_Decrypt returned CKR_OK but not the original plaintext "
		             "(%lu bytes)", (unsigned long) out_len);
	}
	return true;
}

static bool
op_sign (Side *side,
         CK_SESSION_HANDLE session)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[RSA_BYTES];
	CK_ULONG sig_len = sizeof (sig);
	CK_RV rv;

	rv = side->fn->C_SignInit (session, &mech, side->rsa_priv);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[OP_RSA_SIGN], "C_SignInit", rv);
	rv = side->fn->C_Sign (session, (CK_BYTE_PTR) plaintext, sizeof (plaintext),
	                       sig, &sig_len);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[OP_RSA_SIGN], "C_Sign", rv);

	/* PKCS#1 v1.5 signatures are deterministic: compare with the one
	 * that C_Verify accepted during setup */
	if (sig_len != side->signature_len ||
	    memcmp (sig, side->signature, sig_len) != 0) {
		return fail (side, op_names[OP_RSA_SIGN],
		             "C_Sign returned CKR_OK but not the reference signature");
	}
	return true;
}

/* Encrypts probe_block under key with AES-ECB, to check a key's value
 * without reading it. */
static bool
aes_probe (Side *side,
           CK_SESSION_HANDLE session,
           CK_OBJECT_HANDLE key,
           const char *op_name,
           CK_BYTE out[AES_BLOCK_BYTES])
{
	CK_MECHANISM mech = { CKM_AES_ECB, NULL, 0 };
	CK_ULONG out_len = AES_BLOCK_BYTES;
	CK_RV rv;

	rv = side->fn->C_EncryptInit (session, &mech, key);
	if (rv != CKR_OK)
		return fail_rv (side, op_name, "C_EncryptInit (AES-ECB probe)", rv);
	rv = side->fn->C_Encrypt (session, (CK_BYTE_PTR) probe_block,
	                          sizeof (probe_block), out, &out_len);
	if (rv != CKR_OK)
		return fail_rv (side, op_name, "C_Encrypt (AES-ECB probe)", rv);
	if (out_len != AES_BLOCK_BYTES)
		return fail (side, op_name, "AES-ECB probe returned %lu bytes", (unsigned long) out_len);
	return true;
}

static bool
op_unwrap (Side *side,
           CK_SESSION_HANDLE session,
           bool full)
{
	const char *op_name = op_names[OP_AES_UNWRAP];
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
	CK_KEY_TYPE key_type = CKK_AES;
	CK_BBOOL yes = CK_TRUE;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &klass, sizeof (klass) },
		{ CKA_KEY_TYPE, &key_type, sizeof (key_type) },
		{ CKA_TOKEN, &no, sizeof (no) },
		{ CKA_SENSITIVE, &yes, sizeof (yes) },
		{ CKA_EXTRACTABLE, &no, sizeof (no) },
		{ CKA_ENCRYPT, &yes, sizeof (yes) },
		{ CKA_LABEL, LABEL_UNWRAPPED, sizeof (LABEL_UNWRAPPED) - 1 },
	};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_BYTE probe[AES_BLOCK_BYTES];
	bool ok = true;
	CK_RV rv;

	rv = side->fn->C_UnwrapKey (session, &mech, side->aes_key,
	                            side->wrapped, side->wrapped_len,
	                            tmpl, sizeof (tmpl) / sizeof (tmpl[0]), &key);
	if (rv != CKR_OK)
		return fail_rv (side, op_name, "C_UnwrapKey", rv);
	if (key == CK_INVALID_HANDLE)
		return fail (side, op_name, "C_UnwrapKey returned CKR_OK but no key handle");

	if (full) {
		ok = aes_probe (side, session, key, op_name, probe);
		if (ok && memcmp (probe, side->probe_ct, sizeof (probe)) != 0) {
			ok = fail (side, op_name, "the unwrapped key differs from the wrapped one "
			           "(AES-ECB probe mismatch)");
		}
	}

	/* Unwrapped keys are session objects: destroy each, or the token fills */
	rv = side->fn->C_DestroyObject (session, key);
	if (rv != CKR_OK)
		return fail_rv (side, op_name, "C_DestroyObject (unwrapped key)", rv);
	return ok;
}

static bool
op_trivial (Side *side,
            CK_SESSION_HANDLE session)
{
	CK_SESSION_INFO info;
	CK_RV rv;

	rv = side->fn->C_GetSessionInfo (session, &info);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[OP_TRIVIAL], "C_GetSessionInfo", rv);
	if (info.slotID != side->slot || info.state != CKS_RW_USER_FUNCTIONS) {
		return fail (side, op_names[OP_TRIVIAL],
		             "C_GetSessionInfo returned slot %lu state %lu, expected slot %lu "
		             "state CKS_RW_USER_FUNCTIONS", (unsigned long) info.slotID,
		             (unsigned long) info.state, (unsigned long) side->slot);
	}
	return true;
}

/* A call that p11-warden forwards (C_GetSessionInfo is answered by the
 * front alone): C_GetAttributeValue of the private key's CKA_CLASS, which
 * is not secret and so does not consult the gate's backend lookup. */
static bool
op_attr (Side *side,
         CK_SESSION_HANDLE session)
{
	CK_OBJECT_CLASS klass = 0;
	CK_ATTRIBUTE a = { CKA_CLASS, &klass, sizeof (klass) };
	CK_RV rv;

	rv = side->fn->C_GetAttributeValue (session, side->rsa_priv, &a, 1);
	if (rv != CKR_OK)
		return fail_rv (side, op_names[OP_ATTR], "C_GetAttributeValue", rv);
	if (klass != CKO_PRIVATE_KEY)
		return fail (side, op_names[OP_ATTR], "CKA_CLASS is %lu, expected CKO_PRIVATE_KEY",
		             (unsigned long) klass);
	return true;
}

static bool
run_op (Side *side,
        CK_SESSION_HANDLE session,
        int op,
        bool full)
{
	switch (op) {
	case OP_RSA_PKCS_DECRYPT:
	case OP_RSA_OAEP_DECRYPT:
		return op_decrypt (side, session, op);
	case OP_RSA_SIGN:
		return op_sign (side, session);
	case OP_AES_UNWRAP:
		return op_unwrap (side, session, full);
	case OP_TRIVIAL:
		return op_trivial (side, session);
	case OP_ATTR:
		return op_attr (side, session);
	default:
		return fail (side, NULL, "unknown operation %d", op);
	}
}

/*
 * Loading, token lookup and key setup
 */

static bool
side_load (Side *side)
{
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList get_function_list;
	CK_RV rv;

	side->dl = dlopen (side->module_path, RTLD_NOW | RTLD_LOCAL);
	if (side->dl == NULL)
		return fail (side, NULL, "cannot load %s: %s", side->module_path, dlerror ());

	/* POSIX-sanctioned way to turn the void * from dlsym into a function pointer */
	*(void **) (&get_function_list) = dlsym (side->dl, "C_GetFunctionList");
	if (get_function_list == NULL)
		return fail (side, NULL, "%s exports no C_GetFunctionList", side->module_path);

	rv = get_function_list (&side->fn);
	if (rv != CKR_OK)
		return fail_rv (side, NULL, "C_GetFunctionList", rv);
	if (side->fn == NULL)
		return fail (side, NULL, "C_GetFunctionList returned no function list");

	/* A missing entry would be a NULL call later: check everything used */
#define REQUIRE(f) \
	if (side->fn->f == NULL) \
		return fail (side, NULL, "%s: function list has no " #f, side->module_path)
	REQUIRE (C_Initialize);
	REQUIRE (C_Finalize);
	REQUIRE (C_GetSlotList);
	REQUIRE (C_GetTokenInfo);
	REQUIRE (C_OpenSession);
	REQUIRE (C_CloseSession);
	REQUIRE (C_GetSessionInfo);
	REQUIRE (C_Login);
	REQUIRE (C_Logout);
	REQUIRE (C_DestroyObject);
	REQUIRE (C_EncryptInit);
	REQUIRE (C_Encrypt);
	REQUIRE (C_DecryptInit);
	REQUIRE (C_Decrypt);
	REQUIRE (C_SignInit);
	REQUIRE (C_Sign);
	REQUIRE (C_VerifyInit);
	REQUIRE (C_Verify);
	REQUIRE (C_GenerateKey);
	REQUIRE (C_GenerateKeyPair);
	REQUIRE (C_WrapKey);
	REQUIRE (C_UnwrapKey);
#undef REQUIRE

	memset (&args, 0, sizeof (args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = side->fn->C_Initialize (&args);
	if (rv == CKR_OK) {
		side->initialized = true;
	} else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* The same library, already initialised in this process (by
		 * p11-warden as its backend): fine, and not ours to finalise */
		fprintf (stderr, "%s: %s: %s already initialised in this process (shared with the other side)\n",
		         PROGRAM, side->name, side->module_path);
	} else {
		return fail_rv (side, NULL, "C_Initialize", rv);
	}
	return true;
}

/* Copies a blank-padded PKCS#11 string into a C string. */
static void
padded_to_string (char *out,
                  size_t out_size,
                  const unsigned char *in,
                  size_t in_len)
{
	size_t len = in_len;

	while (len > 0 && in[len - 1] == ' ')
		len--;
	if (len >= out_size)
		len = out_size - 1;
	memcpy (out, in, len);
	out[len] = '\0';
}

static bool
side_find_slot (Side *side)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n_slots = 0;
	CK_TOKEN_INFO info;
	char label[sizeof (info.label) + 1];
	bool found = false;
	CK_ULONG i;
	CK_RV rv;

	rv = side->fn->C_GetSlotList (CK_TRUE, NULL, &n_slots);
	if (rv != CKR_OK)
		return fail_rv (side, NULL, "C_GetSlotList", rv);
	if (n_slots > 0) {
		slots = calloc (n_slots, sizeof (CK_SLOT_ID));
		if (slots == NULL)
			return fail (side, NULL, "out of memory");
		rv = side->fn->C_GetSlotList (CK_TRUE, slots, &n_slots);
		if (rv != CKR_OK) {
			free (slots);
			return fail_rv (side, NULL, "C_GetSlotList", rv);
		}
	}

	for (i = 0; i < n_slots && !found; i++) {
		rv = side->fn->C_GetTokenInfo (slots[i], &info);
		if (rv != CKR_OK) {
			fail_rv (side, NULL, "C_GetTokenInfo", rv);
			continue;
		}
		padded_to_string (label, sizeof (label), info.label, sizeof (info.label));
		if (strcmp (label, side->token_label) == 0) {
			side->slot = slots[i];
			found = true;
		} else if (opt.verbose) {
			fprintf (stderr, "%s: %s: slot %lu holds token \"%s\"\n", PROGRAM,
			         side->name, (unsigned long) slots[i], label);
		}
	}
	free (slots);

	if (!found) {
		return fail (side, NULL, "no token labelled \"%s\" in %s (%lu slots with a token%s)",
		             side->token_label, side->module_path, (unsigned long) n_slots,
		             opt.verbose ? "" : "; --verbose lists them");
	}
	return true;
}

static bool
side_login (Side *side)
{
	CK_RV rv;

	rv = side->fn->C_OpenSession (side->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	                              NULL, NULL, &side->setup);
	if (rv != CKR_OK) {
		side->setup = CK_INVALID_HANDLE;
		return fail_rv (side, NULL, "C_OpenSession", rv);
	}

	rv = side->fn->C_Login (side->setup, CKU_USER, (CK_UTF8CHAR_PTR) side->pin,
	                        strlen (side->pin));
	if (rv == CKR_OK)
		side->logged_in = true;
	else if (rv != CKR_USER_ALREADY_LOGGED_IN)   /* shared with the other side */
		return fail_rv (side, NULL, "C_Login (CKU_USER)", rv);
	return true;
}

/* The RSA-2048 pair: ciphertexts made with the public key on the same module
 * (encryption is not gated), and the reference signature, checked once. */
static bool
side_setup_rsa (Side *side)
{
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = RSA_BITS;
	CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL yes = CK_TRUE;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE pub_tmpl[] = {
		{ CKA_TOKEN, &no, sizeof (no) },
		{ CKA_ENCRYPT, &yes, sizeof (yes) },
		{ CKA_VERIFY, &yes, sizeof (yes) },
		{ CKA_WRAP, &yes, sizeof (yes) },
		{ CKA_MODULUS_BITS, &bits, sizeof (bits) },
		{ CKA_PUBLIC_EXPONENT, exponent, sizeof (exponent) },
		{ CKA_LABEL, LABEL_RSA, sizeof (LABEL_RSA) - 1 },
	};
	CK_ATTRIBUTE priv_tmpl[] = {
		{ CKA_TOKEN, &no, sizeof (no) },
		{ CKA_PRIVATE, &yes, sizeof (yes) },
		{ CKA_SENSITIVE, &yes, sizeof (yes) },
		{ CKA_EXTRACTABLE, &no, sizeof (no) },
		{ CKA_DECRYPT, &yes, sizeof (yes) },
		{ CKA_SIGN, &yes, sizeof (yes) },
		{ CKA_UNWRAP, &yes, sizeof (yes) },
		{ CKA_LABEL, LABEL_RSA, sizeof (LABEL_RSA) - 1 },
	};
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM oaep_mech = { CKM_RSA_PKCS_OAEP, &oaep, sizeof (oaep) };
	CK_MECHANISM sign = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_FUNCTION_LIST_PTR fn = side->fn;
	CK_SESSION_HANDLE s = side->setup;
	CK_RV rv;

	rv = fn->C_GenerateKeyPair (s, &gen, pub_tmpl, sizeof (pub_tmpl) / sizeof (pub_tmpl[0]),
	                            priv_tmpl, sizeof (priv_tmpl) / sizeof (priv_tmpl[0]),
	                            &side->rsa_pub, &side->rsa_priv);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_GenerateKeyPair (RSA-2048)", rv);

	side->ct_pkcs_len = sizeof (side->ct_pkcs);
	rv = fn->C_EncryptInit (s, &pkcs, side->rsa_pub);
	if (rv == CKR_OK)
		rv = fn->C_Encrypt (s, (CK_BYTE_PTR) plaintext, sizeof (plaintext),
		                    side->ct_pkcs, &side->ct_pkcs_len);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_EncryptInit/C_Encrypt (CKM_RSA_PKCS)", rv);

	side->ct_oaep_len = sizeof (side->ct_oaep);
	rv = fn->C_EncryptInit (s, &oaep_mech, side->rsa_pub);
	if (rv == CKR_OK)
		rv = fn->C_Encrypt (s, (CK_BYTE_PTR) plaintext, sizeof (plaintext),
		                    side->ct_oaep, &side->ct_oaep_len);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_EncryptInit/C_Encrypt (CKM_RSA_PKCS_OAEP, SHA-1)", rv);

	side->signature_len = sizeof (side->signature);
	rv = fn->C_SignInit (s, &sign, side->rsa_priv);
	if (rv == CKR_OK)
		rv = fn->C_Sign (s, (CK_BYTE_PTR) plaintext, sizeof (plaintext),
		                 side->signature, &side->signature_len);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_SignInit/C_Sign (CKM_SHA256_RSA_PKCS)", rv);

	rv = fn->C_VerifyInit (s, &sign, side->rsa_pub);
	if (rv == CKR_OK)
		rv = fn->C_Verify (s, (CK_BYTE_PTR) plaintext, sizeof (plaintext),
		                   side->signature, side->signature_len);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_VerifyInit/C_Verify of the reference signature", rv);

	return true;
}

/* The AES-256 wrapping key, and a wrapped AES-256 key to unwrap. */
static bool
side_setup_aes (Side *side)
{
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_ULONG key_len = AES_KEY_BYTES;
	CK_BBOOL yes = CK_TRUE;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE wrapping_tmpl[] = {
		{ CKA_TOKEN, &no, sizeof (no) },
		{ CKA_PRIVATE, &yes, sizeof (yes) },
		{ CKA_SENSITIVE, &yes, sizeof (yes) },
		{ CKA_EXTRACTABLE, &no, sizeof (no) },
		{ CKA_WRAP, &yes, sizeof (yes) },
		{ CKA_UNWRAP, &yes, sizeof (yes) },
		{ CKA_VALUE_LEN, &key_len, sizeof (key_len) },
		{ CKA_LABEL, LABEL_AES, sizeof (LABEL_AES) - 1 },
	};
	/*
	 * The key to be wrapped also carries the bench-aes label: p11-warden
	 * gates C_WrapKey on the key being wrapped, and the benchmark
	 * configuration ungates only bench-rsa and bench-aes.  It is destroyed
	 * as soon as its wrapped form and its AES-ECB probe are known.
	 */
	CK_ATTRIBUTE payload_tmpl[] = {
		{ CKA_TOKEN, &no, sizeof (no) },
		{ CKA_SENSITIVE, &no, sizeof (no) },
		{ CKA_EXTRACTABLE, &yes, sizeof (yes) },
		{ CKA_ENCRYPT, &yes, sizeof (yes) },
		{ CKA_VALUE_LEN, &key_len, sizeof (key_len) },
		{ CKA_LABEL, LABEL_AES, sizeof (LABEL_AES) - 1 },
	};
	CK_FUNCTION_LIST_PTR fn = side->fn;
	CK_SESSION_HANDLE s = side->setup;
	CK_OBJECT_HANDLE payload = CK_INVALID_HANDLE;
	bool ok;
	CK_RV rv;

	rv = fn->C_GenerateKey (s, &gen, wrapping_tmpl,
	                        sizeof (wrapping_tmpl) / sizeof (wrapping_tmpl[0]), &side->aes_key);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_GenerateKey (AES-256 wrapping key)", rv);

	rv = fn->C_GenerateKey (s, &gen, payload_tmpl,
	                        sizeof (payload_tmpl) / sizeof (payload_tmpl[0]), &payload);
	if (rv != CKR_OK)
		return fail_rv (side, "setup", "C_GenerateKey (AES-256 key to wrap)", rv);

	ok = aes_probe (side, s, payload, "setup", side->probe_ct);
	if (ok) {
		side->wrapped_len = sizeof (side->wrapped);
		rv = fn->C_WrapKey (s, &wrap, side->aes_key, payload,
		                    side->wrapped, &side->wrapped_len);
		if (rv != CKR_OK)
			ok = fail_rv (side, "setup", "C_WrapKey (CKM_AES_KEY_WRAP)", rv);
		else if (side->wrapped_len != WRAPPED_BYTES)
			ok = fail (side, "setup", "C_WrapKey returned %lu bytes, expected %d",
			           (unsigned long) side->wrapped_len, WRAPPED_BYTES);
	}

	rv = fn->C_DestroyObject (s, payload);
	if (rv != CKR_OK && ok)
		ok = fail_rv (side, "setup", "C_DestroyObject (wrapped key)", rv);
	return ok;
}

static void
print_module_info (const Side *side)
{
	CK_INFO info;
	char desc[sizeof (info.libraryDescription) + 1];
	char manuf[sizeof (info.manufacturerID) + 1];

	if (side->fn->C_GetInfo == NULL || side->fn->C_GetInfo (&info) != CKR_OK) {
		printf ("# %s: %s, slot %lu, token \"%s\"\n", side->name, side->module_path,
		        (unsigned long) side->slot, side->token_label);
		return;
	}
	padded_to_string (desc, sizeof (desc), info.libraryDescription,
	                  sizeof (info.libraryDescription));
	padded_to_string (manuf, sizeof (manuf), info.manufacturerID,
	                  sizeof (info.manufacturerID));
	printf ("# %s: %s (%s, %s %u.%u), slot %lu, token \"%s\"\n", side->name,
	        side->module_path, desc, manuf, info.libraryVersion.major,
	        info.libraryVersion.minor, (unsigned long) side->slot, side->token_label);
}

static bool
side_setup (Side *side)
{
	bool need_rsa = opt.ops[OP_RSA_PKCS_DECRYPT] || opt.ops[OP_RSA_OAEP_DECRYPT] ||
	                opt.ops[OP_RSA_SIGN] || opt.ops[OP_ATTR];

	if (!side_find_slot (side) || !side_login (side))
		return false;
	if (need_rsa && !side_setup_rsa (side))
		return false;
	if (opt.ops[OP_AES_UNWRAP] && !side_setup_aes (side))
		return false;
	print_module_info (side);
	return true;
}

static void
side_teardown (Side *side)
{
	CK_RV rv;

	if (side->fn != NULL) {
		/* Closing the setup session destroys its session keys.  Only a
		 * login of our own is undone: a shared one belongs to the other side */
		if (side->setup != CK_INVALID_HANDLE) {
			if (side->logged_in) {
				rv = side->fn->C_Logout (side->setup);
				if (rv != CKR_OK)
					fail_rv (side, "teardown", "C_Logout", rv);
			}
			rv = side->fn->C_CloseSession (side->setup);
			if (rv != CKR_OK)
				fail_rv (side, "teardown", "C_CloseSession", rv);
		}
		if (side->initialized) {
			rv = side->fn->C_Finalize (NULL);
			if (rv != CKR_OK)
				fail_rv (side, "teardown", "C_Finalize", rv);
		}
	}
	if (side->dl != NULL)
		dlclose (side->dl);
	side->dl = NULL;
	side->fn = NULL;
}

/*
 * Rounds
 */

static void *
worker_main (void *data)
{
	Worker *w = data;
	Side *side = w->side;
	CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
	unsigned long done = 0;
	double start, end, deadline;
	bool ok = true;
	CK_RV rv;

	rv = side->fn->C_OpenSession (side->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	                              NULL, NULL, &session);
	if (rv != CKR_OK) {
		session = CK_INVALID_HANDLE;
		ok = fail_rv (side, op_names[w->op], "C_OpenSession (worker)", rv);
	}

	/* One untimed operation, fully checked: proves this session works
	 * (and the unwrapped key's value) before the clock starts */
	if (ok)
		ok = run_op (side, session, w->op, true);
	if (!ok)
		atomic_store (&abort_run, true);

	pthread_mutex_lock (&w->gate->lock);
		w->gate->ready++;
		pthread_cond_broadcast (&w->gate->cond);
		while (!w->gate->go)
			pthread_cond_wait (&w->gate->cond, &w->gate->lock);
	pthread_mutex_unlock (&w->gate->lock);

	if (ok && !atomic_load (&abort_run)) {
		start = now ();
		end = start;
		deadline = start + w->seconds;
		do {
			if (!run_op (side, session, w->op, false)) {
				ok = false;
				atomic_store (&abort_run, true);
				break;
			}
			done++;
			end = now ();
		} while (end < deadline &&
		         !atomic_load_explicit (&abort_run, memory_order_relaxed));
		w->done = done;
		w->elapsed = end - start;
	}

	if (session != CK_INVALID_HANDLE) {
		rv = side->fn->C_CloseSession (session);
		if (rv != CKR_OK)
			ok = fail_rv (side, op_names[w->op], "C_CloseSession (worker)", rv);
	}
	w->failed = !ok;
	return NULL;
}

/* Runs one round of op on side with n_threads workers; *rate gets the
 * sum of the workers' operations per second. */
static bool
run_round (Side *side,
           int op,
           unsigned int n_threads,
           double *rate)
{
	Worker *workers;
	Gate gate;
	unsigned int created = 0;
	unsigned int i;
	bool ok = true;
	int err;

	workers = calloc (n_threads, sizeof (Worker));
	if (workers == NULL)
		return fail (side, op_names[op], "out of memory");

	pthread_mutex_init (&gate.lock, NULL);
	pthread_cond_init (&gate.cond, NULL);
	gate.ready = 0;
	gate.go = false;

	for (i = 0; i < n_threads; i++) {
		workers[i].side = side;
		workers[i].op = op;
		workers[i].seconds = opt.seconds;
		workers[i].gate = &gate;
		err = pthread_create (&workers[i].thread, NULL, worker_main, &workers[i]);
		if (err != 0) {
			ok = fail (side, op_names[op], "pthread_create: %s", strerror (err));
			atomic_store (&abort_run, true);
			break;
		}
		created++;
	}

	/* Start everyone together, once all have their session and warm-up */
	pthread_mutex_lock (&gate.lock);
		while (gate.ready < created)
			pthread_cond_wait (&gate.cond, &gate.lock);
		gate.go = true;
		pthread_cond_broadcast (&gate.cond);
	pthread_mutex_unlock (&gate.lock);

	*rate = 0.0;
	for (i = 0; i < created; i++) {
		pthread_join (workers[i].thread, NULL);
		if (workers[i].failed)
			ok = false;
		else if (workers[i].elapsed > 0.0)
			*rate += (double) workers[i].done / workers[i].elapsed;
	}
	if (atomic_load (&abort_run))
		ok = false;

	pthread_cond_destroy (&gate.cond);
	pthread_mutex_destroy (&gate.lock);
	free (workers);
	return ok;
}

/*
 * Statistics and output
 */

typedef struct {
	double median;
	double min;
	double max;
} Stats;

static int
compare_doubles (const void *a,
                 const void *b)
{
	double x = *(const double *) a;
	double y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Sorts values in place. */
static Stats
stats_of (double *values,
          size_t n)
{
	Stats st;

	qsort (values, n, sizeof (double), compare_doubles);
	st.min = values[0];
	st.max = values[n - 1];
	st.median = (n % 2) ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
	return st;
}

/* Appends to a table line; see line_print(). */
static void line_add (char *line, size_t size, const char *format, ...)
	GNUC_PRINTF (3, 4);

static void
line_add (char *line,
          size_t size,
          const char *format,
          ...)
{
	size_t len = strlen (line);
	va_list va;

	if (len + 1 >= size)
		return;
	va_start (va, format);
	vsnprintf (line + len, size - len, format, va);
	va_end (va);
}

/* Prints a table line without the padding of its last column. */
static void
line_print (char *line)
{
	size_t len = strlen (line);

	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	puts (line);
	fflush (stdout);
}

static bool
both_sides (void)
{
	return opt.sides[SIDE_DIRECT].enabled && opt.sides[SIDE_WARDEN].enabled;
}

static void
print_header (void)
{
	char line[256] = "";
	size_t i;

	line_add (line, sizeof (line), "# %u rounds of %g s per side%s; ops/s: median (min..max) "
	          "over rounds; threads:", opt.rounds, opt.seconds,
	          both_sides () ? ", alternating" : "");
	for (i = 0; i < opt.n_threads; i++)
		line_add (line, sizeof (line), "%s%u", i ? "," : " ", opt.threads[i]);
	line_print (line);
	if (both_sides ()) {
		printf ("# ratio: warden/direct medians; overhead (trivial, attr): "
		        "threads/warden - threads/direct, the extra time of one call\n");
	}

	line[0] = '\0';
	line_add (line, sizeof (line), "%-18s %7s", "op", "threads");
	for (i = 0; i < N_SIDES; i++) {
		if (opt.sides[i].enabled)
			line_add (line, sizeof (line), "  %-30s", i == SIDE_DIRECT ? "direct ops/s" : "warden ops/s");
	}
	if (both_sides ())
		line_add (line, sizeof (line), "  %7s  %s", "ratio", "overhead");
	line_print (line);
}

static void
print_line (int op,
            unsigned int n_threads,
            const Stats st[N_SIDES])
{
	char line[256] = "";
	char cell[64];
	double overhead_us;
	int i;

	line_add (line, sizeof (line), "%-18s %7u", op_names[op], n_threads);
	for (i = 0; i < N_SIDES; i++) {
		if (opt.sides[i].enabled) {
			snprintf (cell, sizeof (cell), "%.0f (%.0f..%.0f)",
			          st[i].median, st[i].min, st[i].max);
			line_add (line, sizeof (line), "  %-30s", cell);
		}
	}
	if (both_sides ()) {
		line_add (line, sizeof (line), "  %7.3f",
		          st[SIDE_WARDEN].median / st[SIDE_DIRECT].median);
		if (op == OP_TRIVIAL || op == OP_ATTR) {
			/* The extra duration of one call, as a worker sees it */
			overhead_us = 1e6 * ((double) n_threads / st[SIDE_WARDEN].median -
			                     (double) n_threads / st[SIDE_DIRECT].median);
			line_add (line, sizeof (line), "  %+.3f us/call", overhead_us);
		}
	}
	line_print (line);
}

/*
 * Options
 */

/* Parses a whole decimal number in [min, max]. */
static bool
parse_uint (const char *text,
            unsigned long min,
            unsigned long max,
            unsigned long *out)
{
	char *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	v = strtoul (text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Parses "1,2,4" into opt.threads. */
static bool
parse_threads (const char *arg)
{
	char *copy = strdup (arg);
	char *tok, *save = NULL;
	unsigned long v;
	bool ok = copy != NULL;

	opt.n_threads = 0;
	for (tok = ok ? strtok_r (copy, ",", &save) : NULL; tok != NULL;
	     tok = strtok_r (NULL, ",", &save)) {
		if (opt.n_threads == MAX_THREAD_COUNTS || !parse_uint (tok, 1, MAX_THREADS, &v)) {
			ok = false;
			break;
		}
		opt.threads[opt.n_threads++] = (unsigned int) v;
	}
	free (copy);
	return ok && opt.n_threads > 0;
}

/* Parses "rsa-sign,trivial" or "all" into opt.ops. */
static bool
parse_ops (const char *arg)
{
	char *copy = strdup (arg);
	char *tok, *save = NULL;
	bool any = false;
	bool ok = copy != NULL;
	int i;

	memset (opt.ops, 0, sizeof (opt.ops));
	for (tok = ok ? strtok_r (copy, ",", &save) : NULL; tok != NULL;
	     tok = strtok_r (NULL, ",", &save)) {
		if (strcmp (tok, "all") == 0) {
			for (i = 0; i < N_OPS; i++)
				opt.ops[i] = true;
			any = true;
			continue;
		}
		for (i = 0; i < N_OPS; i++) {
			if (strcmp (tok, op_names[i]) == 0)
				break;
		}
		if (i == N_OPS) {
			fprintf (stderr, "%s: unknown operation \"%s\"\n", PROGRAM, tok);
			ok = false;
			break;
		}
		opt.ops[i] = true;
		any = true;
	}
	free (copy);
	return ok && any;
}

static void
usage (FILE *out)
{
	int i;

	fprintf (out,
	         "usage: %s [--direct MODULE.so --direct-token LABEL --direct-pin PIN]\n"
	         "       [--warden MODULE.so --warden-token LABEL --warden-pin PIN]\n"
	         "       [--threads N[,N...]] [--seconds S] [--rounds R] [--ops LIST] [--verbose]\n"
	         "\n"
	         "Measures PKCS#11 operations per second, each side with its own session keys\n"
	         "(labels " LABEL_RSA ", " LABEL_AES "); rounds alternate between the sides.\n"
	         "\n"
	         "  --threads   worker threads, one session each (default 1; a list such as 1,2)\n"
	         "  --seconds   length of one round, in seconds (default 1)\n"
	         "  --rounds    rounds per side, operation and thread count (default 5)\n"
	         "  --ops       comma-separated operations or \"all\" (default all):\n"
	         "             ", PROGRAM);
	for (i = 0; i < N_OPS; i++)
		fprintf (out, " %s", op_names[i]);
	fprintf (out, "\n  --verbose   print every round on stderr\n");
}

static bool
parse_options (int argc,
               char *argv[])
{
	enum {
		OPT_DIRECT = 1000, OPT_DIRECT_TOKEN, OPT_DIRECT_PIN,
		OPT_WARDEN, OPT_WARDEN_TOKEN, OPT_WARDEN_PIN,
		OPT_THREADS, OPT_SECONDS, OPT_ROUNDS, OPT_OPS,
	};
	static const struct option long_options[] = {
		{ "direct", required_argument, NULL, OPT_DIRECT },
		{ "direct-token", required_argument, NULL, OPT_DIRECT_TOKEN },
		{ "direct-pin", required_argument, NULL, OPT_DIRECT_PIN },
		{ "warden", required_argument, NULL, OPT_WARDEN },
		{ "warden-token", required_argument, NULL, OPT_WARDEN_TOKEN },
		{ "warden-pin", required_argument, NULL, OPT_WARDEN_PIN },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "ops", required_argument, NULL, OPT_OPS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	Side *direct = &opt.sides[SIDE_DIRECT];
	Side *warden = &opt.sides[SIDE_WARDEN];
	unsigned long v;
	char *end;
	int c, i;

	direct->name = "direct";
	warden->name = "warden";
	opt.threads[0] = 1;
	opt.n_threads = 1;
	opt.seconds = 1.0;
	opt.rounds = 5;
	for (i = 0; i < N_OPS; i++)
		opt.ops[i] = true;

	while ((c = getopt_long (argc, argv, "vh", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_DIRECT:
			direct->module_path = optarg;
			break;
		case OPT_DIRECT_TOKEN:
			direct->token_label = optarg;
			break;
		case OPT_DIRECT_PIN:
			direct->pin = optarg;
			break;
		case OPT_WARDEN:
			warden->module_path = optarg;
			break;
		case OPT_WARDEN_TOKEN:
			warden->token_label = optarg;
			break;
		case OPT_WARDEN_PIN:
			warden->pin = optarg;
			break;
		case OPT_THREADS:
			if (!parse_threads (optarg)) {
				fprintf (stderr, "%s: --threads wants numbers 1..%d separated by commas\n",
				         PROGRAM, MAX_THREADS);
				return false;
			}
			break;
		case OPT_SECONDS:
			errno = 0;
			opt.seconds = strtod (optarg, &end);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    !(opt.seconds > 0.0 && opt.seconds <= 3600.0)) {
				fprintf (stderr, "%s: --seconds wants a number above 0\n", PROGRAM);
				return false;
			}
			break;
		case OPT_ROUNDS:
			if (!parse_uint (optarg, 1, MAX_ROUNDS, &v)) {
				fprintf (stderr, "%s: --rounds wants a number 1..%d\n", PROGRAM, MAX_ROUNDS);
				return false;
			}
			opt.rounds = (unsigned int) v;
			break;
		case OPT_OPS:
			if (!parse_ops (optarg)) {
				usage (stderr);
				return false;
			}
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage (stdout);
			exit (0);
		default:
			usage (stderr);
			return false;
		}
	}
	if (optind < argc) {
		fprintf (stderr, "%s: unexpected argument \"%s\"\n", PROGRAM, argv[optind]);
		return false;
	}

	for (i = 0; i < N_SIDES; i++) {
		Side *side = &opt.sides[i];

		side->enabled = side->module_path != NULL;
		if (!side->enabled) {
			if (side->token_label != NULL || side->pin != NULL) {
				fprintf (stderr, "%s: --%s-token/--%s-pin given without --%s\n",
				         PROGRAM, side->name, side->name, side->name);
				return false;
			}
			continue;
		}
		if (side->token_label == NULL || side->pin == NULL) {
			fprintf (stderr, "%s: --%s needs --%s-token and --%s-pin\n",
			         PROGRAM, side->name, side->name, side->name);
			return false;
		}
	}
	if (!direct->enabled && !warden->enabled) {
		fprintf (stderr, "%s: nothing to measure: give --direct and/or --warden\n", PROGRAM);
		usage (stderr);
		return false;
	}
	return true;
}

/*
 * Main
 */

/* Index of n in the --threads list, or opt.n_threads if it is absent. */
static size_t
thread_index (unsigned int n)
{
	size_t t;

	for (t = 0; t < opt.n_threads; t++) {
		if (opt.threads[t] == n)
			break;
	}
	return t;
}

int
main (int argc,
      char *argv[])
{
	/* Load order: the warden first, so that it initialises its backend
	 * itself; rounds run direct first */
	static const int load_order[N_SIDES] = { SIDE_WARDEN, SIDE_DIRECT };
	double *rates = NULL;   /* [op][thread count][side][round] */
	Stats stats[N_OPS][MAX_THREAD_COUNTS][N_SIDES];
	bool measured[N_OPS][MAX_THREAD_COUNTS];
	size_t per_side, t, t1, t2, i;
	unsigned int r;
	int ret = 1;
	int op, s, k;

	if (!parse_options (argc, argv))
		return 1;

	for (i = 0; i < N_SIDES; i++)
		opt.sides[i].setup = CK_INVALID_HANDLE;

	per_side = opt.rounds;
	rates = calloc ((size_t) N_OPS * opt.n_threads * N_SIDES * per_side, sizeof (double));
	if (rates == NULL) {
		fprintf (stderr, "%s: out of memory\n", PROGRAM);
		return 1;
	}
#define RATE(op, t, s, r) rates[(((size_t) (op) * opt.n_threads + (t)) * N_SIDES + (s)) * per_side + (r)]

	for (k = 0; k < N_SIDES; k++) {
		Side *side = &opt.sides[load_order[k]];
		if (side->enabled && (!side_load (side) || !side_setup (side)))
			goto out;
	}

	memset (measured, 0, sizeof (measured));
	print_header ();

	for (op = 0; op < N_OPS; op++) {
		if (!opt.ops[op])
			continue;
		for (t = 0; t < opt.n_threads; t++) {
			for (r = 0; r < opt.rounds; r++) {
				for (s = 0; s < N_SIDES; s++) {
					if (!opt.sides[s].enabled)
						continue;
					if (!run_round (&opt.sides[s], op, opt.threads[t], &RATE (op, t, s, r)))
						goto out;
					if (opt.verbose) {
						fprintf (stderr, "%s: %s %s threads=%u round %u: %.1f ops/s\n",
						         PROGRAM, opt.sides[s].name, op_names[op],
						         opt.threads[t], r + 1, RATE (op, t, s, r));
					}
				}
			}
			for (s = 0; s < N_SIDES; s++) {
				if (opt.sides[s].enabled)
					stats[op][t][s] = stats_of (&RATE (op, t, s, 0), per_side);
			}
			measured[op][t] = true;
			print_line (op, opt.threads[t], stats[op][t]);
		}
	}

	/* Scaling from one to two threads, where both were measured */
	t1 = thread_index (1);
	t2 = thread_index (2);
	if (t1 < opt.n_threads && t2 < opt.n_threads) {
		printf ("# scaling, 2 threads / 1 thread (medians):\n");
		for (op = 0; op < N_OPS; op++) {
			if (!measured[op][t1] || !measured[op][t2])
				continue;
			printf ("%-18s %7s", op_names[op], "2/1");
			for (s = 0; s < N_SIDES; s++) {
				if (opt.sides[s].enabled) {
					printf ("  %s %.2fx", opt.sides[s].name,
					        stats[op][t2][s].median / stats[op][t1][s].median);
				}
			}
			printf ("\n");
		}
	}
#undef RATE

	ret = 0;

out:
	/* Reverse load order: the warden, which may own the backend, goes last */
	for (k = N_SIDES - 1; k >= 0; k--)
		side_teardown (&opt.sides[load_order[k]]);
	free (rates);
	if (ret != 0)
		fprintf (stderr, "%s: FAILED\n", PROGRAM);
	return ret;
}
