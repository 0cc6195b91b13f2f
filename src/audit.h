/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the module records in the audit ledger (src/ledger.h), and the
 * one-line syslog summary of each decision.  The gate asks audit_ready()
 * before it releases anything: with a ledger configured, a release that
 * cannot be recorded does not happen (fail closed).
 */
#ifndef P11W_AUDIT_H
#define P11W_AUDIT_H

#include "conf.h"
#include "pkcs11.h"

#include <stdbool.h>
#include <stddef.h>

/* Open the ledger @conf names (none: audit is off, and says so once). */
CK_RV audit_open (const struct conf *conf, char *err, size_t errlen);
void audit_close (void);
/* At process exit: write what is buffered and close, but stay configured,
 * so that threads still running are refused rather than unrecorded. */
void audit_shutdown (void);
void audit_abandon (void);
bool audit_enabled (void);
/* Write what is buffered (process exit). */
void audit_flush (void);

/* May a release be recorded now?  True without a ledger; false (with
 * why) when the ledger is configured but cannot be written. */
bool audit_ready (char *why, size_t len);

/* A gate decision about a key.  Returns false when a release could not be
 * recorded: the caller then refuses it. */
struct audit_key {
	const unsigned char *id;
	size_t id_len;
	const unsigned char *label;
	size_t label_len;
};
bool audit_decision (const char *slot, bool allow, const char *operation, bool has_mechanism,
                     CK_MECHANISM_TYPE mechanism, const struct audit_key *key,
                     const char *policy, const unsigned char *policy_digest, const char *reason);

/* Evidence appraised (pulled or pushed), with its outcome. */
void audit_evidence (const char *slot, const char *format, const char *anchor,
                     const unsigned char *digest, bool pass, const char *reason);
/* A policy (re)loaded, or failing to. */
void audit_policy (const char *policy, const unsigned char *digest, bool ok, const char *reason);
/* Anything else: initialize, finalize, login, login-failed, logout,
 * token-init, pin-init, pin-change. */
void audit_event (const char *event, const char *slot, const char *user, const char *verdict,
                  const char *reason);

#endif /* P11W_AUDIT_H */
