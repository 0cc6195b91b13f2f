/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging: syslog or stderr, chosen once at C_Initialize.  Never pass a
 * PIN, plaintext or key byte to these functions.
 */
#ifndef P11W_LOG_H
#define P11W_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_sink { LOG_SINK_SYSLOG, LOG_SINK_STDERR, LOG_SINK_NONE };
enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_configure (enum log_sink sink, enum log_level level);
bool log_enabled (enum log_level level);

void log_msg (enum log_level level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define log_error(...) log_msg (LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg (LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg (LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { \
		if (log_enabled (LOG_LEVEL_DEBUG)) \
			log_msg (LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

/* The name of a CKR value ("CKR_PIN_INCORRECT"), or NULL if unknown. */
const char *log_ckr_name (unsigned long rv);
/* The name of a common mechanism ("CKM_RSA_PKCS"), or NULL. */
const char *log_ckm_name (unsigned long mechanism);

#endif /* P11W_LOG_H */
