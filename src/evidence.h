/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Appraisal of one piece of evidence: the verifier for its format, tried
 * with each enrolled anchor of that format, turns it into claims.  Used by
 * the gate (pulled and pushed evidence) and by the admin tool ("would this
 * evidence pass?"), so both always judge alike.
 *
 * Formats and their bytes:
 *   tpm2-quote  a JSON envelope (the tpm2-quote collector's output):
 *               {"attest": HEX, "signature": HEX, "pcrs": {"sha256": {"16": HEX}}}
 *               "attest" is the TPMS_ATTEST, "signature" a marshalled
 *               TPMT_SIGNATURE; or, with "signature-scheme" (rsassa,
 *               rsapss, ecdsa) and "signature-hash" (sha256, ...), the raw
 *               signature bytes.  "message" is read as "attest", and
 *               "pcrs" may be an array of the 24 sha256 values (the form
 *               Trustee's verifier tests use).
 *   eat         a COSE_Sign1 (tag 18, or CWT tag 61 around it)
 *   ear         a COSE_Sign1, or a JWS compact serialization
 */
#ifndef P11W_EVIDENCE_H
#define P11W_EVIDENCE_H

#include "anchors.h"
#include "claims.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define EVIDENCE_MAX_SIZE (64 * 1024)
#define EVIDENCE_FORMAT_MAX 31

struct appraisal {
	char format[EVIDENCE_FORMAT_MAX + 1];
	char anchor[CONF_NAME_MAX + 1];
	time_t verified_at;
	bool nonce_matched;
	struct claim_set *claims;
	unsigned char digest[32];   /* SHA-256 of the evidence bytes, for the ledger */
};

/* Is @format one this build appraises? */
bool evidence_format_known (const char *format);

/*
 * Appraise @len bytes of @format evidence against the anchors of that
 * format in @anchors, at @now with @skew seconds of clock tolerance.
 * @nonce (1..64 bytes) is the challenge it must carry; NULL appraises
 * without one (the admin tool without --nonce: nonce_matched is then
 * false, which a policy requiring a nonce refuses).  0 on success with
 * @out filled (appraisal_clear it); otherwise a negative verifier code and
 * the reason in @err.
 */
int evidence_appraise (const struct anchor_set *anchors, const char *format,
                       const unsigned char *data, size_t len, const unsigned char *nonce,
                       size_t nonce_len, time_t now, unsigned int skew, struct appraisal *out,
                       char *err, size_t errlen);
void appraisal_clear (struct appraisal *a);

/* The policy's view of @a (pointers into @a). */
void appraisal_as_evidence (const struct appraisal *a, struct evidence_claims *ev);

#endif /* P11W_EVIDENCE_H */
