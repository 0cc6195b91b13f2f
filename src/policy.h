/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policies: which evidence releases a gated key.  One JSON document per
 * named policy (p11-warden-policy(5) is the reference), checked completely
 * when it loads, so that a mistake is an error with the file, a JSON path
 * and the reason, never a policy that silently means something else.
 * Evaluation is a pure function of (policy, claims, time): no I/O, no
 * allocation, no clock; the same inputs always give the same verdict and
 * the same reason.
 */
#ifndef P11W_POLICY_H
#define P11W_POLICY_H

#include "claims.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define POLICY_MAX_SIZE (64 * 1024)  /* bytes of a policy document */
#define POLICY_MAX_DEPTH 16          /* nested JSON arrays and objects */
#define POLICY_MAX_MEMBERS 64        /* members of one JSON object */
#define POLICY_MAX_RULES 64          /* anyOf, allOf and evidence rules */
#define POLICY_MAX_PREDICATES 256
#define POLICY_ANCHOR_NAME_MAX 64
#define POLICY_DEFAULT_MAX_AGE 300
#define POLICY_MAX_MAX_AGE 86400
#define POLICY_DIGEST_LEN 32         /* SHA-256 */
#define POLICY_PATH_MAX 256
#define POLICY_REASON_MAX 640
#define POLICY_SHOW_MAX 64           /* characters of a value shown in a reason */

/* Operations a policy can gate.  The first seven release key material or
 * plaintext and are gated by every policy (DESIGN.md, "The gate"); a policy
 * may add the last two. */
enum policy_op {
	POLICY_OP_DECRYPT,
	POLICY_OP_UNWRAP,
	POLICY_OP_DERIVE,
	POLICY_OP_WRAP,
	POLICY_OP_RAW_SIGN,
	POLICY_OP_READ_SECRET,
	POLICY_OP_DIGEST_KEY,
	POLICY_OP_ENCRYPT,
	POLICY_OP_SIGN,
	POLICY_OP_COUNT
};

/* One appraised piece of evidence, as the gate hands it over. */
struct evidence_claims {
	const char *format;             /* "tpm2-quote", "eat", "ear" */
	const char *anchor;             /* name of the enrolled anchor that verified it */
	time_t verified_at;             /* when the verifier accepted it */
	bool nonce_matched;             /* it carried a nonce this module issued, unused
	                                 * before (checked by the verifier) */
	const struct claim_set *claims;
};

struct policy_result {
	bool pass;
	time_t expires;                  /* pass: the verdict lapses at this time */
	char path[POLICY_PATH_MAX];      /* fail: JSON path of the first failing
	                                  * predicate or rule, in document order */
	char reason[POLICY_REASON_MAX];  /* fail: "PATH: why"; pass: "pass" */
};

struct policy;

/*
 * Load @path: a regular file of at most POLICY_MAX_SIZE bytes, owned by
 * this account or root, writable by neither group nor others.  NULL on
 * failure, with "PATH: problem" (and, for errors in the document, a JSON
 * path) in @err.
 */
struct policy *policy_load_file (const char *path, char *err, size_t errlen)
	__attribute__ ((warn_unused_result));
/* Parse @len bytes of @text (not necessarily NUL-terminated); @name (the
 * file name) starts every error message. */
struct policy *policy_parse (const char *name, const char *text, size_t len, char *err,
                             size_t errlen) __attribute__ ((warn_unused_result));
void policy_free (struct policy *p);

const char *policy_name (const struct policy *p);
unsigned int policy_max_age (const struct policy *p);
bool policy_nonce_required (const struct policy *p);
bool policy_gates (const struct policy *p, enum policy_op op);
/* SHA-256 of the document's bytes exactly as read, for the audit ledger. */
const unsigned char *policy_digest (const struct policy *p);

const char *policy_op_name (enum policy_op op);

/* Call @cb for every anchor every evidence rule names, with the rule's
 * format and JSON path; stops (returning false) when @cb returns false. */
bool policy_for_each_anchor (const struct policy *p,
                             bool (*cb) (const char *format, const char *anchor, const char *path,
                                         void *user),
                             void *user);

/*
 * Does the evidence in @ev satisfy @p at time @now?  An evidence rule is
 * met by any one element of @ev of its format, verified by one of its
 * anchors no more than max-age seconds before @now (and not after it),
 * with a matched nonce when the policy requires one, whose claims meet
 * every predicate.  @out always receives the verdict: on a pass the
 * earliest verification time among the evidence used plus max-age (of the
 * alternatives of an anyOf that hold, the one that lasts longest is used);
 * on a failure the first failing predicate or rule in document order.
 * Returns out->pass.
 */
bool policy_evaluate (const struct policy *p, const struct evidence_claims *ev, size_t n_ev,
                      time_t now, struct policy_result *out);

#endif /* P11W_POLICY_H */
