/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation state: the enrolled anchors, the policies, the collectors,
 * and the verdicts and nonces the gate relies on (DESIGN.md "The gate",
 * "Evidence").  gate.c asks attest_check() whether a gated use of a key
 * bound to a policy may go ahead; module.c routes the vendor objects of
 * pushed evidence (include/p11-warden/p11-warden.h) here.
 *
 * Verdicts:
 * - pulled: per policy, for the whole module instance, until the policy's
 *   max-age runs out (on the wall clock and on the monotonic clock, so
 *   that a clock set back does not stretch it);
 * - pushed: the evidence a session presented is judged against the key's
 *   policy at each gated call, so it lapses with max-age too;
 * - all die at C_Finalize, after fork (the module is not usable in a child
 *   until C_Initialize), and when the policy file changes (checked at most
 *   once a second; a policy that no longer loads refuses everything).
 */
#ifndef P11W_ATTEST_H
#define P11W_ATTEST_H

#include "conf.h"
#include "pkcs11.h"
#include "policy.h"
#include "session.h"

#include <stdbool.h>
#include <stddef.h>

#define ATTEST_NONCE_LEN 32
#define ATTEST_REASON_MAX 1024

/* Load anchors, policies and collectors named by @conf (kept by
 * reference until attest_close).  CKR_OK, or an error with "why" in @err. */
CK_RV attest_open (const struct conf *conf, char *err, size_t errlen);
void attest_close (void);
/* In a child after fork, before C_Initialize runs again: forget without
 * touching what the parent's threads may have held. */
void attest_abandon (void);

/* The index of the policy called @name, or -1. */
int attest_policy_index (const char *name);
/* Does policy @idx gate @op?  True when the policy is unusable. */
bool attest_policy_gates (int idx, enum policy_op op);
/* The name of policy @idx and, when it loads, its digest (true). */
bool attest_policy_about (int idx, char *name, size_t len, unsigned char digest[POLICY_DIGEST_LEN]);
/* Does any policy gate signing (so that signatures must ask the gate)? */
bool attest_any_policy_gates_sign (void);

/*
 * May session @s use a key bound to policy @idx now?  CKR_OK when a live
 * pulled verdict or the session's pushed evidence passes the policy;
 * otherwise evidence is pulled from the slot's collectors over a fresh
 * nonce and appraised.  P11W_CKR_DENIED with the reason in @reason.
 */
CK_RV attest_check (struct session *s, int idx, char *reason, size_t reason_len);

/* Vendor objects (challenge, evidence, verdict) of pushed evidence. */
bool attest_is_object (CK_OBJECT_HANDLE h);
/* Is @templ a vendor object template (its CKA_CLASS one of ours)? */
bool attest_template_is_ours (const CK_ATTRIBUTE *templ, CK_ULONG count);
CK_RV attest_create_object (struct session *s, const CK_ATTRIBUTE *templ, CK_ULONG count,
                            CK_OBJECT_HANDLE_PTR out);
CK_RV attest_get_attributes (struct session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR templ,
                             CK_ULONG count);
bool attest_object_exists (struct session *s, CK_OBJECT_HANDLE h);
CK_RV attest_destroy_object (struct session *s, CK_OBJECT_HANDLE h);
void attest_forget_session (CK_SESSION_HANDLE session);

#endif /* P11W_ATTEST_H */
