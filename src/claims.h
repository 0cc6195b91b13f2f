/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Claims: what a verifier says about a platform once the checks that
 * belong to its evidence format have passed.  A claim set is flat: each
 * claim has a namespaced name ("tpm.pcr.sha256.16", "ear.status") and one
 * value of the type the registry gives that name.  Policies name claims
 * from the same registry, so a policy that names an unknown claim, or
 * compares one with a value of another type, is refused when it loads
 * rather than failing silently at every evaluation.  The registry is
 * listed in p11-warden-policy(5).
 */
#ifndef P11W_CLAIMS_H
#define P11W_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLAIMS_MAX 4096       /* claims in one set */
#define CLAIM_NAME_MAX 128    /* bytes of a name */
#define CLAIM_VALUE_MAX 4096  /* bytes of a string or bytes value */

enum claim_type {
	CLAIM_UNKNOWN = 0,
	CLAIM_INT,      /* int64 */
	CLAIM_BOOL,
	CLAIM_STRING,   /* UTF-8 text, no NUL */
	CLAIM_BYTES,    /* binary; written as hex in policies */
};

/* A value.  @data is owned by whoever holds the value; a string is also
 * NUL-terminated (@len does not count the NUL). */
struct claim_value {
	enum claim_type type;
	int64_t i;            /* CLAIM_INT */
	bool b;               /* CLAIM_BOOL */
	unsigned char *data;  /* CLAIM_STRING, CLAIM_BYTES */
	size_t len;
};

struct claim {
	char *name;
	struct claim_value v;
};

/* What the registry knows about a claim name. */
struct claim_info {
	enum claim_type type;
	size_t fixed_len;            /* CLAIM_BYTES: the only valid length, or 0 */
	const char *const *values;   /* CLAIM_STRING: NULL-terminated list of the
	                              * only valid values, or NULL for any */
};

enum claims_err {
	CLAIMS_OK = 0,
	CLAIMS_NO_MEMORY,
	CLAIMS_TOO_MANY,        /* more than CLAIMS_MAX */
	CLAIMS_BAD_NAME,        /* empty, longer than CLAIM_NAME_MAX */
	CLAIMS_UNKNOWN_NAME,    /* not in the registry (or ambiguous) */
	CLAIMS_WRONG_TYPE,      /* the registry gives the name another type */
	CLAIMS_BAD_VALUE,       /* too long, wrong fixed length, not an allowed
	                         * string, a string holding NUL */
	CLAIMS_DUPLICATE,       /* the set already has a claim of that name */
};

/*
 * The registry.  Names are matched exactly or by pattern
 * (tpm.pcr.sha256.N, eat.measres.SYSTEM.RESULT-ID, eat.submod.NAME.CLAIM,
 * ...).  A name that parses in two ways with different types (a submodule
 * or measurement name holding dots can make that happen) is unknown: its
 * type would depend on how it was read.
 */
bool claims_lookup_name (const char *name, struct claim_info *info);
/* The registered type of @name, or CLAIM_UNKNOWN. */
enum claim_type claims_name_type (const char *name);
const char *claim_type_name (enum claim_type type);
const char *claims_strerror (enum claims_err err);

/*
 * A claim set: at most CLAIMS_MAX claims with distinct registered names,
 * each value checked against the registry when it is added, so a set
 * never holds what a policy could not have been written against.  Kept
 * in name order; lookups are binary searches.
 */
struct claim_set;

#define CLAIMS_NODISCARD __attribute__ ((warn_unused_result))

struct claim_set *claim_set_new (void);
void claim_set_free (struct claim_set *set);

CLAIMS_NODISCARD enum claims_err claim_set_add_int (struct claim_set *set, const char *name,
                                                    int64_t value);
CLAIMS_NODISCARD enum claims_err claim_set_add_bool (struct claim_set *set, const char *name,
                                                     bool value);
/* @value holds @len bytes (no NUL inside; need not be NUL-terminated). */
CLAIMS_NODISCARD enum claims_err claim_set_add_string (struct claim_set *set, const char *name,
                                                       const char *value, size_t len);
CLAIMS_NODISCARD enum claims_err claim_set_add_bytes (struct claim_set *set, const char *name,
                                                      const void *value, size_t len);

/* The claim named @name, or NULL. */
const struct claim *claim_set_find (const struct claim_set *set, const char *name);
size_t claim_set_count (const struct claim_set *set);
/* The @i-th claim in name order, or NULL past the end. */
const struct claim *claim_set_at (const struct claim_set *set, size_t i);

/* Do two values of one type hold the same value?  Bytes compare as bytes
 * (so hex case never matters), strings exactly. */
bool claim_value_equal (const struct claim_value *a, const struct claim_value *b);

/*
 * Print @v for a message: integers in decimal, booleans as true/false,
 * bytes in lower-case hex, strings in double quotes with anything outside
 * printable ASCII escaped.  At most @max_chars characters of the value
 * itself are printed, then "..." (and for bytes the length).  Always
 * NUL-terminates @out (when @outlen > 0).
 */
void claim_value_format (const struct claim_value *v, size_t max_chars, char *out, size_t outlen);

#endif /* P11W_CLAIMS_H */
