/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "claims.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- registry */

/* A claim a verifier can produce, named relative to its namespace (or to
 * the submodule it sits in). */
struct leaf {
	const char *name;
	enum claim_type type;
	size_t fixed_len;
	const char *const *values;
};

static const char *const ear_status_values[] = { "none", "affirming", "warning", "contraindicated",
	                                         NULL };
/* The formats a verifier exists (or is planned in issue 3) for; a new
 * verifier adds its name here and to the policy's format list. */
static const char *const format_values[] = { "tpm2-quote", "eat", "ear", NULL };

static const struct leaf tpm_leaves[] = {
	{ "firmware-version", CLAIM_INT, 0, NULL },
	{ "clock.reset-count", CLAIM_INT, 0, NULL },
	{ "clock.restart-count", CLAIM_INT, 0, NULL },
	{ "clock.safe", CLAIM_BOOL, 0, NULL },
	{ "ak", CLAIM_BYTES, 32, NULL }, /* SHA-256 of the AK's SubjectPublicKeyInfo */
};

/* tpm.pcr.BANK.N: a PCR value is exactly one digest of the bank's hash, so
 * a reference value of another length is a mistake caught at load. */
static const struct leaf pcr_leaves[] = {
	{ "sha1", CLAIM_BYTES, 20, NULL },
	{ "sha256", CLAIM_BYTES, 32, NULL },
	{ "sha384", CLAIM_BYTES, 48, NULL },
	{ "sha512", CLAIM_BYTES, 64, NULL },
};
#define TPM_PCR_COUNT 24

static const struct leaf eat_leaves[] = {
	{ "profile", CLAIM_STRING, 0, NULL },
	{ "ueid", CLAIM_BYTES, 0, NULL },
	{ "oemid", CLAIM_BYTES, 0, NULL },
	{ "hwmodel", CLAIM_BYTES, 0, NULL },
	{ "dbgstat", CLAIM_INT, 0, NULL },
	{ "swname", CLAIM_STRING, 0, NULL },
	{ "swversion", CLAIM_STRING, 0, NULL },
	{ "bootcount", CLAIM_INT, 0, NULL },
	{ "iat", CLAIM_INT, 0, NULL },           /* seconds since the epoch */
	{ "uptime", CLAIM_INT, 0, NULL },        /* seconds */
	{ "oemboot", CLAIM_BOOL, 0, NULL },
	{ "hwversion", CLAIM_STRING, 0, NULL },
	{ "oemid-pen", CLAIM_INT, 0, NULL },     /* oemid given as an IANA PEN */
	{ "bootseed", CLAIM_BYTES, 0, NULL },
};
static const struct leaf eat_measres_leaf = { "measres", CLAIM_INT, 0, NULL };

static const struct leaf ear_leaves[] = {
	{ "profile", CLAIM_STRING, 0, NULL },
	{ "iat", CLAIM_INT, 0, NULL }, /* when the verifier issued the result */
	{ "status", CLAIM_STRING, 0, ear_status_values },
	{ "tv.instance-identity", CLAIM_INT, 0, NULL },
	{ "tv.configuration", CLAIM_INT, 0, NULL },
	{ "tv.executables", CLAIM_INT, 0, NULL },
	{ "tv.file-system", CLAIM_INT, 0, NULL },
	{ "tv.hardware", CLAIM_INT, 0, NULL },
	{ "tv.runtime-opaque", CLAIM_INT, 0, NULL },
	{ "tv.storage-opaque", CLAIM_INT, 0, NULL },
	{ "tv.sourced-data", CLAIM_INT, 0, NULL },
	{ "verifier-id.developer", CLAIM_STRING, 0, NULL },
	{ "verifier-id.build", CLAIM_STRING, 0, NULL },
	{ "policy-id", CLAIM_STRING, 0, NULL },
};

static const struct leaf evidence_leaves[] = {
	{ "format", CLAIM_STRING, 0, format_values },
	{ "anchor", CLAIM_STRING, 0, NULL },
};

#define N_ELEMENTS(a) (sizeof (a) / sizeof (a)[0])

/* [A-Za-z0-9._-]: submodule, measurement system and result names. */
static bool
ident_char (char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

static const struct leaf *
exact (const char *s, const struct leaf *leaves, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp (s, leaves[i].name))
			return &leaves[i];
	}
	return NULL;
}

static bool
same_leaf (const struct leaf *a, const struct leaf *b)
{
	return a->type == b->type && a->fixed_len == b->fixed_len && a->values == b->values;
}

/* What one reading of a name found: a leaf, or several that disagree. */
struct match {
	const struct leaf *leaf;
	bool ambiguous;
};

static void
merge (struct match *acc, struct match m)
{
	if (m.ambiguous)
		acc->ambiguous = true;
	if (!m.leaf)
		return;
	if (!acc->leaf)
		acc->leaf = m.leaf;
	else if (!same_leaf (acc->leaf, m.leaf))
		acc->ambiguous = true;
}

/* One result per offset into the name: a submodule name may hold dots, so
 * "submod.a.b.c" can be read as submodule "a" or "a.b"; remembering each
 * suffix keeps the work quadratic in the (bounded) name length rather
 * than exponential in its dots. */
struct memo {
	bool done[CLAIM_NAME_MAX + 1];
	struct match m[CLAIM_NAME_MAX + 1];
};

/* SYSTEM.RESULT-ID: both non-empty, of ident_char; any dot may split them
 * (every split gives the same type). */
static bool
two_idents (const char *s)
{
	size_t n = strlen (s);
	bool split = false;
	for (size_t i = 0; i < n; i++) {
		if (!ident_char (s[i]))
			return false;
		if (s[i] == '.' && i > 0 && i + 1 < n)
			split = true;
	}
	return split;
}

/*
 * The EAT or EAR claim at @name + @off (after "eat." or "ear.", or after
 * a submodule's name): an exact leaf, eat's measres.SYSTEM.RESULT-ID, or
 * submod.NAME.CLAIM read every way the dots allow.
 */
static struct match
match_tree (const char *name, size_t off, const struct leaf *leaves, size_t n, bool measres,
            struct memo *memo)
{
	const char *s = name + off;
	struct match acc = { NULL, false };

	if (off > CLAIM_NAME_MAX)
		return acc;
	if (memo->done[off])
		return memo->m[off];
	acc.leaf = exact (s, leaves, n);
	if (measres && !strncmp (s, "measres.", 8) && two_idents (s + 8))
		merge (&acc, (struct match){ &eat_measres_leaf, false });
	if (!strncmp (s, "submod.", 7)) {
		const char *r = s + 7;
		for (size_t p = 0; r[p] && ident_char (r[p]); p++) {
			if (r[p] == '.' && p > 0)
				merge (&acc, match_tree (name, (size_t)(r - name) + p + 1, leaves, n, measres,
				                         memo));
		}
	}
	memo->done[off] = true;
	memo->m[off] = acc;
	return acc;
}

/* tpm.pcr.BANK.N, N in 0..23 written without leading zeros (so that one
 * PCR has one name). */
static const struct leaf *
match_pcr (const char *s)
{
	const char *dot = strchr (s, '.');
	const struct leaf *bank = NULL;
	size_t blen;
	unsigned int n = 0;

	if (!dot)
		return NULL;
	blen = (size_t)(dot - s);
	for (size_t i = 0; i < N_ELEMENTS (pcr_leaves); i++) {
		if (strlen (pcr_leaves[i].name) == blen && !strncmp (s, pcr_leaves[i].name, blen))
			bank = &pcr_leaves[i];
	}
	if (!bank)
		return NULL;
	s = dot + 1;
	if (!*s || (s[0] == '0' && s[1]) || strlen (s) > 2)
		return NULL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return NULL;
		n = n * 10 + (unsigned int)(*s - '0');
	}
	return n < TPM_PCR_COUNT ? bank : NULL;
}

bool
claims_lookup_name (const char *name, struct claim_info *info)
{
	const struct leaf *leaf = NULL;
	size_t len;

	if (!name)
		return false;
	len = strnlen (name, CLAIM_NAME_MAX + 1);
	if (len == 0 || len > CLAIM_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!ident_char (name[i]))
			return false;
	}
	if (!strncmp (name, "tpm.", 4)) {
		leaf = !strncmp (name + 4, "pcr.", 4) ? match_pcr (name + 8)
		                                      : exact (name + 4, tpm_leaves, N_ELEMENTS (tpm_leaves));
	} else if (!strncmp (name, "eat.", 4) || !strncmp (name, "ear.", 4)) {
		/* On the stack (about 2 KiB) rather than static: lookups run
		 * in several threads at once. */
		struct memo memo;
		struct match m;
		bool eat = name[2] == 't';
		memset (&memo, 0, sizeof memo);
		m = match_tree (name, 4, eat ? eat_leaves : ear_leaves,
		                eat ? N_ELEMENTS (eat_leaves) : N_ELEMENTS (ear_leaves), eat, &memo);
		leaf = m.ambiguous ? NULL : m.leaf;
	} else if (!strncmp (name, "evidence.", 9)) {
		leaf = exact (name + 9, evidence_leaves, N_ELEMENTS (evidence_leaves));
	}
	if (!leaf)
		return false;
	if (info) {
		info->type = leaf->type;
		info->fixed_len = leaf->fixed_len;
		info->values = leaf->values;
	}
	return true;
}

enum claim_type
claims_name_type (const char *name)
{
	struct claim_info info;
	return claims_lookup_name (name, &info) ? info.type : CLAIM_UNKNOWN;
}

const char *
claim_type_name (enum claim_type type)
{
	switch (type) {
	case CLAIM_INT:
		return "integer";
	case CLAIM_BOOL:
		return "boolean";
	case CLAIM_STRING:
		return "string";
	case CLAIM_BYTES:
		return "bytes";
	case CLAIM_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *
claims_strerror (enum claims_err err)
{
	switch (err) {
	case CLAIMS_OK:
		return "ok";
	case CLAIMS_NO_MEMORY:
		return "out of memory";
	case CLAIMS_TOO_MANY:
		return "too many claims";
	case CLAIMS_BAD_NAME:
		return "claim name empty or too long";
	case CLAIMS_UNKNOWN_NAME:
		return "claim name not in the registry";
	case CLAIMS_WRONG_TYPE:
		return "value of another type than the registry gives the claim";
	case CLAIMS_BAD_VALUE:
		return "value too long, of the wrong length, or not one the registry allows";
	case CLAIMS_DUPLICATE:
		return "claim already in the set";
	}
	return "unknown error";
}

/* ---------------------------------------------------------------- sets */

struct claim_set {
	struct claim *v; /* sorted by name (strcmp) */
	size_t n, cap;
};

struct claim_set *
claim_set_new (void)
{
	return calloc (1, sizeof (struct claim_set));
}

void
claim_set_free (struct claim_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free (set->v[i].name);
		free (set->v[i].v.data);
	}
	free (set->v);
	free (set);
}

/* Where @name is, or would go: *@found says which. */
static size_t
position (const struct claim_set *set, const char *name, bool *found)
{
	size_t lo = 0, hi = set->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp (name, set->v[mid].name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static enum claims_err
add (struct claim_set *set, const char *name, enum claim_type type, int64_t i, bool b,
     const void *data, size_t len)
{
	struct claim_info info;
	struct claim c;
	size_t at;
	bool found;

	if (!set || !name || strnlen (name, CLAIM_NAME_MAX + 1) == 0 ||
	    strnlen (name, CLAIM_NAME_MAX + 1) > CLAIM_NAME_MAX)
		return CLAIMS_BAD_NAME;
	if (!claims_lookup_name (name, &info))
		return CLAIMS_UNKNOWN_NAME;
	if (info.type != type)
		return CLAIMS_WRONG_TYPE;
	if (type == CLAIM_STRING || type == CLAIM_BYTES) {
		if (len > CLAIM_VALUE_MAX || (len > 0 && !data))
			return CLAIMS_BAD_VALUE;
		if (info.fixed_len && len != info.fixed_len)
			return CLAIMS_BAD_VALUE;
		/* Strings are compared with their length, but whoever prints or
		 * passes one on as a C string must not see it cut short. */
		if (type == CLAIM_STRING && len > 0 && memchr (data, '\0', len))
			return CLAIMS_BAD_VALUE;
		if (info.values) {
			bool allowed = false;
			for (const char *const *v = info.values; *v; v++) {
				if (strlen (*v) == len && !memcmp (*v, data, len))
					allowed = true;
			}
			if (!allowed)
				return CLAIMS_BAD_VALUE;
		}
	}
	at = position (set, name, &found);
	if (found)
		return CLAIMS_DUPLICATE;
	if (set->n >= CLAIMS_MAX)
		return CLAIMS_TOO_MANY;

	memset (&c, 0, sizeof c);
	c.v.type = type;
	c.v.i = i;
	c.v.b = b;
	c.name = strdup (name);
	if (!c.name)
		return CLAIMS_NO_MEMORY;
	if (type == CLAIM_STRING || type == CLAIM_BYTES) {
		/* One spare byte: strings stay NUL-terminated, and an empty
		 * value still has a buffer. */
		c.v.data = malloc (len + 1);
		if (!c.v.data) {
			free (c.name);
			return CLAIMS_NO_MEMORY;
		}
		if (len)
			memcpy (c.v.data, data, len);
		c.v.data[len] = '\0';
		c.v.len = len;
	}
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		struct claim *v;
		if (cap > CLAIMS_MAX)
			cap = CLAIMS_MAX;
		v = realloc (set->v, cap * sizeof *v);
		if (!v) {
			free (c.name);
			free (c.v.data);
			return CLAIMS_NO_MEMORY;
		}
		set->v = v;
		set->cap = cap;
	}
	memmove (&set->v[at + 1], &set->v[at], (set->n - at) * sizeof set->v[0]);
	set->v[at] = c;
	set->n++;
	return CLAIMS_OK;
}

enum claims_err
claim_set_add_int (struct claim_set *set, const char *name, int64_t value)
{
	return add (set, name, CLAIM_INT, value, false, NULL, 0);
}

enum claims_err
claim_set_add_bool (struct claim_set *set, const char *name, bool value)
{
	return add (set, name, CLAIM_BOOL, 0, value, NULL, 0);
}

enum claims_err
claim_set_add_string (struct claim_set *set, const char *name, const char *value, size_t len)
{
	return add (set, name, CLAIM_STRING, 0, false, value, len);
}

enum claims_err
claim_set_add_bytes (struct claim_set *set, const char *name, const void *value, size_t len)
{
	return add (set, name, CLAIM_BYTES, 0, false, value, len);
}

const struct claim *
claim_set_find (const struct claim_set *set, const char *name)
{
	size_t at;
	bool found;
	if (!set || !name)
		return NULL;
	at = position (set, name, &found);
	return found ? &set->v[at] : NULL;
}

size_t
claim_set_count (const struct claim_set *set)
{
	return set ? set->n : 0;
}

const struct claim *
claim_set_at (const struct claim_set *set, size_t i)
{
	return set && i < set->n ? &set->v[i] : NULL;
}

/* ---------------------------------------------------------------- values */

bool
claim_value_equal (const struct claim_value *a, const struct claim_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case CLAIM_INT:
		return a->i == b->i;
	case CLAIM_BOOL:
		return a->b == b->b;
	case CLAIM_STRING:
	case CLAIM_BYTES:
		return a->len == b->len && (a->len == 0 || !memcmp (a->data, b->data, a->len));
	case CLAIM_UNKNOWN:
		break;
	}
	return false;
}

void
claim_value_format (const struct claim_value *v, size_t max_chars, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	size_t o = 0, shown = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	switch (v->type) {
	case CLAIM_INT:
		snprintf (out, outlen, "%" PRId64, v->i);
		return;
	case CLAIM_BOOL:
		snprintf (out, outlen, "%s", v->b ? "true" : "false");
		return;
	case CLAIM_BYTES:
		for (size_t i = 0; i < v->len; i++) {
			if (shown + 2 > max_chars || o + 3 > outlen)
				break;
			out[o++] = digits[v->data[i] >> 4];
			out[o++] = digits[v->data[i] & 0xf];
			shown += 2;
		}
		out[o] = '\0';
		if (shown < 2 * v->len)
			snprintf (out + o, outlen - o, "...(%zu bytes)", v->len);
		else if (v->len == 0)
			snprintf (out, outlen, "(empty)");
		return;
	case CLAIM_STRING: {
		size_t i;
		if (o + 2 > outlen)
			return;
		out[o++] = '"';
		for (i = 0; i < v->len; i++) {
			unsigned char c = v->data[i];
			char esc[5];
			size_t n;
			if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
				esc[0] = (char)c;
				n = 1;
			} else if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				n = 2;
			} else {
				esc[0] = '\\';
				esc[1] = 'x';
				esc[2] = digits[c >> 4];
				esc[3] = digits[c & 0xf];
				n = 4;
			}
			if (shown + n > max_chars || o + n + 2 > outlen)
				break;
			memcpy (out + o, esc, n);
			o += n;
			shown += n;
		}
		out[o++] = '"';
		out[o] = '\0';
		if (i < v->len)
			snprintf (out + o, outlen - o, "...");
		return;
	}
	case CLAIM_UNKNOWN:
		break;
	}
	snprintf (out, outlen, "(no value)");
}
