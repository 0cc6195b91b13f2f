/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "audit.h"
#include "ledger.h"
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_bool enabled;     /* the ledger is open */
static atomic_bool configured;  /* a ledger is configured: without it open,
                                 * nothing is released */

CK_RV
audit_open (const struct conf *conf, char *err, size_t errlen)
{
	struct ledger_options opt;
	char msg[512];

	atomic_store (&enabled, false);
	atomic_store (&configured, conf->audit_ledger != NULL);
	if (!conf->audit_ledger) {
		bool gated = false;
		for (size_t i = 0; i < conf->n_slots; i++)
			gated |= conf->slots[i].gated;
		if (gated)
			log_warning ("no audit ledger ('audit-ledger' and 'audit-key' in [module]): "
			             "decisions go to the log only");
		return CKR_OK;
	}
	memset (&opt, 0, sizeof opt);
	opt.path = conf->audit_ledger;
	opt.key_file = conf->audit_key;
	opt.fsync = (enum ledger_fsync)conf->audit_fsync;
	opt.batch_ms = conf->audit_batch_ms;
	opt.batch_max = conf->audit_batch_max;
	opt.flusher_thread = true;
	if (ledger_open (&opt, msg, sizeof msg) != 0) {
		snprintf (err, errlen, "%s: audit ledger: %s", conf->path, msg);
		return CKR_GENERAL_ERROR;
	}
	atomic_store (&enabled, true);
	return CKR_OK;
}

void
audit_close (void)
{
	if (atomic_exchange (&enabled, false))
		ledger_close ();
	atomic_store (&configured, false);
}

void
audit_shutdown (void)
{
	/* Still configured: the threads that go on until the process ends
	 * get refusals, not unrecorded releases. */
	if (atomic_exchange (&enabled, false))
		ledger_close ();
}

void
audit_abandon (void)
{
	if (atomic_exchange (&enabled, false))
		ledger_abandon ();
	atomic_store (&configured, false);
}

void
audit_flush (void)
{
	if (audit_enabled ())
		(void)ledger_flush ();
}

bool
audit_enabled (void)
{
	return atomic_load_explicit (&enabled, memory_order_relaxed);
}

bool
audit_ready (char *why, size_t len)
{
	char e[256];
	if (!atomic_load_explicit (&configured, memory_order_relaxed))
		return true;
	if (!audit_enabled ()) {
		snprintf (why, len, "the audit ledger is closed (the process is exiting): nothing is "
		          "released unrecorded");
		return false;
	}
	if (ledger_healthy ())
		return true;
	ledger_last_error (e, sizeof e);
	snprintf (why, len, "the audit ledger cannot be written (%s): nothing is released unrecorded",
	          e);
	return false;
}

/* A label for the syslog line: printable ASCII, the rest as '?'. */
static void
printable (const unsigned char *in, size_t n, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++)
		out[o++] = in[i] >= 0x20 && in[i] < 0x7f ? (char)in[i] : '?';
	if (len)
		out[o] = '\0';
}

bool
audit_decision (const char *slot, bool allow, const char *operation, bool has_mechanism,
                CK_MECHANISM_TYPE mechanism, const struct audit_key *key, const char *policy,
                const unsigned char *policy_digest, const char *reason)
{
	struct ledger_record r;
	char label[72] = "";

	memset (&r, 0, sizeof r);
	r.event = allow ? "gated-allow" : "gated-deny";
	r.slot = slot;
	if (key) {
		r.key_id = key->id;
		r.key_id_len = key->id_len;
		r.key_label = key->label;
		r.key_label_len = key->label_len;
		if (key->label)
			printable (key->label, key->label_len, label, sizeof label);
	}
	r.has_mechanism = has_mechanism;
	r.mechanism = mechanism;
	r.operation = operation;
	r.verdict = allow ? "allow" : "deny";
	r.reason = reason;
	r.policy = policy;
	r.policy_digest = policy_digest;
	/* The one-line summary; a denial's reason is in the gate's own line. */
	if (allow)
		log_info ("slot '%s': released %s of key '%s' under policy '%s'", slot, operation, label,
		          policy ? policy : "-");
	if (!audit_enabled ())
		return !allow || !atomic_load (&configured);
	if (ledger_append (&r) != 0) {
		char e[256];
		ledger_last_error (e, sizeof e);
		log_error ("slot '%s': cannot record the %s decision in the audit ledger (%s)%s", slot,
		           r.verdict, e, allow ? ": the release is refused" : "");
		return !allow;
	}
	return true;
}

void
audit_evidence (const char *slot, const char *format, const char *anchor,
                const unsigned char *digest, bool pass, const char *reason)
{
	struct ledger_record r;
	if (!audit_enabled ())
		return;
	memset (&r, 0, sizeof r);
	r.event = "evidence-appraised";
	r.slot = slot;
	r.format = format;
	r.anchor = anchor;
	r.evidence_digest = digest;
	r.verdict = pass ? "pass" : "fail";
	r.reason = reason;
	(void)ledger_append (&r);
}

void
audit_policy (const char *policy, const unsigned char *digest, bool ok, const char *reason)
{
	struct ledger_record r;
	if (!audit_enabled ())
		return;
	memset (&r, 0, sizeof r);
	r.event = "policy-loaded";
	r.policy = policy;
	r.policy_digest = digest;
	r.verdict = ok ? "pass" : "fail";
	r.reason = reason;
	(void)ledger_append (&r);
}

void
audit_event (const char *event, const char *slot, const char *user, const char *verdict,
             const char *reason)
{
	struct ledger_record r;
	if (!audit_enabled ())
		return;
	memset (&r, 0, sizeof r);
	r.event = event;
	r.slot = slot;
	r.user = user;
	r.verdict = verdict;
	r.reason = reason;
	(void)ledger_append (&r);
}
