/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "log.h"
#include "pkcs11.h"

#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>

/* Until C_Initialize has read the configuration, errors go to stderr:
 * a configuration that cannot be read must be explained somewhere. */
static _Atomic int sink = LOG_SINK_STDERR;
static _Atomic int threshold = LOG_LEVEL_WARNING;

void
log_configure (enum log_sink s, enum log_level level)
{
	atomic_store (&sink, s);
	atomic_store (&threshold, level);
}

bool
log_enabled (enum log_level level)
{
	return (int)level <= atomic_load (&threshold) && atomic_load (&sink) != LOG_SINK_NONE;
}

void
log_msg (enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error", "warning", "info", "debug" };
	static const int priority[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[1024];
	va_list ap;

	if (!log_enabled (level))
		return;
	va_start (ap, fmt);
	vsnprintf (buf, sizeof buf, fmt, ap);
	va_end (ap);
	/* One line per message: control characters (which evidence, file
	 * contents or a remote client's bytes could carry into a message)
	 * become '?', so that nothing can forge a log line. */
	for (char *c = buf; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}

	if (atomic_load (&sink) == LOG_SINK_SYSLOG)
		syslog (LOG_AUTHPRIV | priority[level], "p11-warden: %s: %s", prefix[level], buf);
	else
		fprintf (stderr, "p11-warden: %s: %s\n", prefix[level], buf);
}

const char *
log_ckr_name (unsigned long rv)
{
	switch (rv) {
#define X(c) case c: return #c;
	X (CKR_OK) X (CKR_CANCEL) X (CKR_HOST_MEMORY) X (CKR_SLOT_ID_INVALID)
	X (CKR_GENERAL_ERROR) X (CKR_FUNCTION_FAILED) X (CKR_ARGUMENTS_BAD)
	X (CKR_CANT_LOCK) X (CKR_ATTRIBUTE_READ_ONLY) X (CKR_ATTRIBUTE_SENSITIVE)
	X (CKR_ATTRIBUTE_TYPE_INVALID) X (CKR_ATTRIBUTE_VALUE_INVALID)
	X (CKR_ACTION_PROHIBITED) X (CKR_DATA_INVALID) X (CKR_DATA_LEN_RANGE)
	X (CKR_DEVICE_ERROR) X (CKR_DEVICE_MEMORY) X (CKR_DEVICE_REMOVED)
	X (CKR_ENCRYPTED_DATA_INVALID) X (CKR_ENCRYPTED_DATA_LEN_RANGE)
	X (CKR_FUNCTION_CANCELED) X (CKR_FUNCTION_NOT_PARALLEL)
	X (CKR_FUNCTION_NOT_SUPPORTED) X (CKR_KEY_HANDLE_INVALID)
	X (CKR_KEY_SIZE_RANGE) X (CKR_KEY_TYPE_INCONSISTENT) X (CKR_KEY_NOT_NEEDED)
	X (CKR_KEY_CHANGED) X (CKR_KEY_NEEDED) X (CKR_KEY_INDIGESTIBLE)
	X (CKR_KEY_FUNCTION_NOT_PERMITTED) X (CKR_KEY_NOT_WRAPPABLE)
	X (CKR_KEY_UNEXTRACTABLE) X (CKR_MECHANISM_INVALID)
	X (CKR_MECHANISM_PARAM_INVALID) X (CKR_OBJECT_HANDLE_INVALID)
	X (CKR_OPERATION_ACTIVE) X (CKR_OPERATION_NOT_INITIALIZED)
	X (CKR_PIN_INCORRECT) X (CKR_PIN_INVALID) X (CKR_PIN_LEN_RANGE)
	X (CKR_PIN_EXPIRED) X (CKR_PIN_LOCKED) X (CKR_SESSION_CLOSED)
	X (CKR_SESSION_COUNT) X (CKR_SESSION_HANDLE_INVALID)
	X (CKR_SESSION_PARALLEL_NOT_SUPPORTED) X (CKR_SESSION_READ_ONLY)
	X (CKR_SESSION_EXISTS) X (CKR_SESSION_READ_ONLY_EXISTS)
	X (CKR_SESSION_READ_WRITE_SO_EXISTS) X (CKR_SIGNATURE_INVALID)
	X (CKR_SIGNATURE_LEN_RANGE) X (CKR_TEMPLATE_INCOMPLETE)
	X (CKR_TEMPLATE_INCONSISTENT) X (CKR_TOKEN_NOT_PRESENT)
	X (CKR_TOKEN_NOT_RECOGNIZED) X (CKR_TOKEN_WRITE_PROTECTED)
	X (CKR_UNWRAPPING_KEY_HANDLE_INVALID) X (CKR_UNWRAPPING_KEY_SIZE_RANGE)
	X (CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) X (CKR_USER_ALREADY_LOGGED_IN)
	X (CKR_USER_NOT_LOGGED_IN) X (CKR_USER_PIN_NOT_INITIALIZED)
	X (CKR_USER_TYPE_INVALID) X (CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	X (CKR_USER_TOO_MANY_TYPES) X (CKR_WRAPPED_KEY_INVALID)
	X (CKR_WRAPPED_KEY_LEN_RANGE) X (CKR_WRAPPING_KEY_HANDLE_INVALID)
	X (CKR_WRAPPING_KEY_SIZE_RANGE) X (CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
	X (CKR_RANDOM_SEED_NOT_SUPPORTED) X (CKR_RANDOM_NO_RNG)
	X (CKR_DOMAIN_PARAMS_INVALID) X (CKR_CURVE_NOT_SUPPORTED)
	X (CKR_BUFFER_TOO_SMALL) X (CKR_SAVED_STATE_INVALID)
	X (CKR_INFORMATION_SENSITIVE) X (CKR_STATE_UNSAVEABLE)
	X (CKR_CRYPTOKI_NOT_INITIALIZED) X (CKR_CRYPTOKI_ALREADY_INITIALIZED)
	X (CKR_MUTEX_BAD) X (CKR_MUTEX_NOT_LOCKED) X (CKR_FUNCTION_REJECTED)
	X (CKR_PIN_TOO_WEAK)
#undef X
	default:
		return NULL;
	}
}

/* Mechanisms a gated call can name; key generation mechanisms are left out
 * (CKM_RSA_PKCS_KEY_PAIR_GEN is 0, the value logged for calls that take no
 * mechanism). */
const char *
log_ckm_name (unsigned long mechanism)
{
	switch (mechanism) {
#define X(c) case c: return #c;
	X (CKM_RSA_PKCS) X (CKM_RSA_X_509) X (CKM_RSA_PKCS_OAEP)
	X (CKM_RSA_PKCS_PSS) X (CKM_SHA1_RSA_PKCS) X (CKM_SHA256_RSA_PKCS) X (CKM_SHA384_RSA_PKCS)
	X (CKM_SHA512_RSA_PKCS) X (CKM_SHA256_RSA_PKCS_PSS) X (CKM_SHA384_RSA_PKCS_PSS)
	X (CKM_SHA512_RSA_PKCS_PSS) X (CKM_ECDSA) X (CKM_ECDSA_SHA256)
	X (CKM_ECDSA_SHA384) X (CKM_ECDSA_SHA512) X (CKM_ECDH1_DERIVE) X (CKM_ECDH1_COFACTOR_DERIVE)
	X (CKM_AES_ECB) X (CKM_AES_CBC) X (CKM_AES_CBC_PAD) X (CKM_AES_CTR)
	X (CKM_AES_GCM) X (CKM_AES_KEY_WRAP) X (CKM_AES_KEY_WRAP_PAD)
	X (CKM_SHA256_HMAC) X (CKM_SHA256) X (CKM_CONCATENATE_BASE_AND_KEY)
	X (CKM_CONCATENATE_BASE_AND_DATA) X (CKM_XOR_BASE_AND_DATA) X (CKM_EXTRACT_KEY_FROM_KEY)
	X (CKM_DES3_CBC) X (CKM_DES3_ECB)
#undef X
	default:
		return NULL;
	}
}
