/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the policy parser (policy_parse) and, for every policy
 * that loads, the evaluator over a fixed set of evidence; short inputs
 * are also tried as claim names against the registry. */
#include "config.h"

#include "claims.h"
#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NOW ((time_t)1800000000)

static struct claim_set *sets[3];
static struct evidence_claims evidence[4];

/* The claims of the example policies' happy path, so that the fuzzer can
 * reach passing verdicts from the seeds. */
static void
init_evidence (void)
{
	static const unsigned char pcr16[32] = {
		0x37, 0x26, 0x37, 0x76, 0x2c, 0xaa, 0x3f, 0x15, 0xdc, 0x79, 0xdd, 0xaf, 0x57, 0xed, 0x34, 0xd1,
		0x92, 0x29, 0x25, 0x2f, 0x54, 0x1e, 0xcc, 0x2a, 0xf7, 0xf7, 0x0d, 0x9b, 0x1e, 0xad, 0x63, 0x9c,
	};
	static const unsigned char ueid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const char profile[] = "tag:github.com,2023:veraison/ear";

	if (sets[0])
		return;
	for (int i = 0; i < 3; i++) {
		sets[i] = claim_set_new ();
		if (!sets[i])
			abort ();
	}
	if (claim_set_add_bytes (sets[0], "tpm.pcr.sha256.16", pcr16, 32) ||
	    claim_set_add_bool (sets[0], "tpm.clock.safe", true) ||
	    claim_set_add_int (sets[0], "tpm.firmware-version", 7) ||
	    claim_set_add_string (sets[0], "evidence.format", "tpm2-quote", 10) ||
	    claim_set_add_string (sets[0], "evidence.anchor", "ak-prod", 7) ||
	    claim_set_add_string (sets[1], "eat.profile", "x", 1) ||
	    claim_set_add_bytes (sets[1], "eat.ueid", ueid, sizeof ueid) ||
	    claim_set_add_int (sets[1], "eat.dbgstat", 2) ||
	    claim_set_add_int (sets[1], "eat.measres.fw.boot", 1) ||
	    claim_set_add_string (sets[1], "eat.submod.gpu0.swname", "driver", 6) ||
	    claim_set_add_string (sets[2], "ear.profile", profile, sizeof profile - 1) ||
	    claim_set_add_string (sets[2], "ear.status", "affirming", 9) ||
	    claim_set_add_int (sets[2], "ear.tv.hardware", 2) ||
	    claim_set_add_int (sets[2], "ear.tv.executables", 3) ||
	    claim_set_add_string (sets[2], "ear.submod.cpu.status", "warning", 7))
		abort ();
	evidence[0] = (struct evidence_claims){ "tpm2-quote", "ak-prod", NOW - 100, true, sets[0] };
	evidence[1] = (struct evidence_claims){ "eat", "eat-prod", NOW - 10, false, sets[1] };
	evidence[2] = (struct evidence_claims){ "ear", "veraison-prod", NOW, true, sets[2] };
	evidence[3] = (struct evidence_claims){ "ear", "veraison-test", NOW - 400, true, sets[2] };
}

/* The input as a claim name: the registry's matcher reads names with
 * dots in several ways; whatever it calls known, a claim set takes with a
 * value of the registered type. */
static void
fuzz_name (const uint8_t *data, size_t size)
{
	static const unsigned char zeros[64];
	struct claim_info info;
	struct claim_set *cs;
	char name[CLAIM_NAME_MAX + 2];
	enum claims_err e = CLAIMS_OK;

	if (size > CLAIM_NAME_MAX + 1)
		return;
	memcpy (name, data, size);
	name[size] = '\0';
	if (!claims_lookup_name (name, &info)) {
		if (claims_name_type (name) != CLAIM_UNKNOWN)
			abort ();
		return;
	}
	if (strlen (name) > CLAIM_NAME_MAX || claims_name_type (name) != info.type)
		abort ();
	cs = claim_set_new ();
	if (!cs)
		abort ();
	switch (info.type) {
	case CLAIM_INT:
		e = claim_set_add_int (cs, name, -1);
		break;
	case CLAIM_BOOL:
		e = claim_set_add_bool (cs, name, true);
		break;
	case CLAIM_STRING:
		e = claim_set_add_string (cs, name, info.values ? info.values[0] : "x",
		                          info.values ? strlen (info.values[0]) : 1);
		break;
	case CLAIM_BYTES:
		e = claim_set_add_bytes (cs, name, zeros, info.fixed_len ? info.fixed_len : 1);
		break;
	case CLAIM_UNKNOWN:
		abort ();
	}
	if (e != CLAIMS_OK || !claim_set_find (cs, name))
		abort ();
	claim_set_free (cs);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	struct policy_result r1, r2;
	struct policy *p;
	char err[1024];

	init_evidence ();
	fuzz_name (data, size);
	p = policy_parse ("fuzz.json", (const char *)data, size, err, sizeof err);
	if (!p) {
		/* Every refusal names the file and says why; the pre-scan never
		 * accepts what json-c then refuses.  (Only the prefix tells: the
		 * message may quote the document, which may say anything.) */
		if (strncmp (err, "fuzz.json", 9) != 0 || strlen (err) < 12 ||
		    !strncmp (err, "fuzz.json: internal error", 25))
			abort ();
		return 0;
	}
	if (policy_max_age (p) < 1 || policy_max_age (p) > POLICY_MAX_MAX_AGE)
		abort ();
	for (int op = 0; op <= POLICY_OP_DIGEST_KEY; op++) {
		if (!policy_gates (p, (enum policy_op)op))
			abort (); /* release paths are always gated */
	}
	/* Nothing passes without evidence. */
	if (policy_evaluate (p, NULL, 0, NOW, &r1) || strncmp (r1.reason, "$.rule", 6) != 0)
		abort ();
	/* Deterministic, and a pass lasts at most max-age from now. */
	policy_evaluate (p, evidence, 4, NOW, &r1);
	policy_evaluate (p, evidence, 4, NOW, &r2);
	if (memcmp (&r1, &r2, sizeof r1) != 0)
		abort ();
	if (r1.pass && (r1.expires < NOW || r1.expires > NOW + (time_t)policy_max_age (p)))
		abort ();
	if (!r1.pass && (strncmp (r1.path, "$.rule", 6) != 0 ||
	                 strncmp (r1.reason, r1.path, strlen (r1.path)) != 0))
		abort ();
	policy_free (p);
	return 0;
}
