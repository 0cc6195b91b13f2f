/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "verify-ear.h"
#include "util.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CWT/EAT and EAR CBOR keys (FORMATS.md sections 3 and 4). */
#define KEY_EXP 4
#define KEY_NBF 5
#define KEY_IAT 6
#define KEY_NONCE 10
#define KEY_PROFILE 265
#define KEY_SUBMODS 266
#define KEY_STATUS 1000
#define KEY_TV 1001
#define KEY_POLICY_ID 1003
#define KEY_VERIFIER_ID 1004

#define N_ELEMENTS(a) (sizeof (a) / sizeof (a)[0])

static void set_err (char *err, size_t errlen, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static void
set_err (char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start (ap, fmt);
	vsnprintf (err, errlen, fmt, ap);
	va_end (ap);
}

const char *
verify_ear_strerror (int rv)
{
	switch (rv) {
	case VERIFY_EAR_OK: return "ok";
	case VERIFY_EAR_ERR_ARGS: return "invalid arguments";
	case VERIFY_EAR_ERR_SIZE: return "token size out of range";
	case VERIFY_EAR_ERR_PAYLOAD: return "claims are not one JSON object or CBOR map";
	case VERIFY_EAR_ERR_CLAIM_TYPE: return "claim of the wrong type";
	case VERIFY_EAR_ERR_PROFILE_MISSING: return "no eat_profile";
	case VERIFY_EAR_ERR_PROFILE: return "not the profile required";
	case VERIFY_EAR_ERR_IAT_MISSING: return "no iat";
	case VERIFY_EAR_ERR_IAT_FUTURE: return "issued in the future";
	case VERIFY_EAR_ERR_IAT_STALE: return "issued too long ago";
	case VERIFY_EAR_ERR_EXPIRED: return "expired";
	case VERIFY_EAR_ERR_NOT_YET_VALID: return "not yet valid (nbf)";
	case VERIFY_EAR_ERR_NONCE_MISSING: return "no eat_nonce, and a nonce was expected";
	case VERIFY_EAR_ERR_NONCE: return "eat_nonce is not the expected nonce";
	case VERIFY_EAR_ERR_VERIFIER_ID: return "verifier-id missing or incomplete";
	case VERIFY_EAR_ERR_SUBMODS_MISSING: return "no submods";
	case VERIFY_EAR_ERR_SUBMODS_COUNT: return "too many submods";
	case VERIFY_EAR_ERR_SUBMOD_NAME: return "submodule name not usable in a claim name";
	case VERIFY_EAR_ERR_SUBMOD: return "submodule appraisal is not a map";
	case VERIFY_EAR_ERR_STATUS_MISSING: return "no ear.status";
	case VERIFY_EAR_ERR_STATUS: return "unknown ear.status";
	case VERIFY_EAR_ERR_TV: return "bad trustworthiness vector";
	case VERIFY_EAR_ERR_TV_VALUE: return "trustworthiness claim outside -128..127";
	case VERIFY_EAR_ERR_POLICY_ID: return "bad appraisal policy id";
	case VERIFY_EAR_ERR_NO_MEMORY: return "out of memory";
	case VERIFY_EAR_ERR_CLAIMS: return "claim refused";
	case VERIFY_EAR_ERR_CRYPTO: return "cryptographic library failure";
	}
	if (rv <= VERIFY_EAR_ERR_JWS (-1) && rv >= VERIFY_EAR_ERR_JWS (-99))
		return jws_strerror (rv - VERIFY_EAR_ERR_JWS (0));
	if (rv <= VERIFY_EAR_ERR_COSE (-1) && rv >= VERIFY_EAR_ERR_COSE (-99))
		return cose_strerror (rv - VERIFY_EAR_ERR_COSE (0));
	return "unknown error";
}

/* ---------------------------------------------------------------- the result */

/* Trust tiers (AR4SI): the names ear.status takes, and their values. */
static const struct {
	const char *name;
	int64_t value;
} tiers[] = {
	{ "none", 0 },
	{ "affirming", 2 },
	{ "warning", 32 },
	{ "contraindicated", 96 },
};

/* Trustworthiness vector claims: JSON name = CBOR key index, and the
 * suffix of the claim name (ear.tv.NAME). */
static const char *const tv_names[] = {
	"instance-identity", "configuration", "executables", "file-system",
	"hardware", "runtime-opaque", "storage-opaque", "sourced-data",
};
#define TV_COUNT 8

/* One submodule's appraisal, as read from either form; strings point into
 * the parsed payload, which outlives this. */
struct appraisal {
	char name[VERIFY_EAR_NAME_MAX + 1];
	int tier;                   /* index into tiers[] */
	bool have_tv[TV_COUNT];
	int64_t tv[TV_COUNT];
	const char *policy_id;      /* NULL: none, or a list of several */
	size_t policy_id_len;
};

struct ear {
	const char *profile;
	size_t profile_len;
	bool have_iat, have_exp, have_nbf, have_nonce;
	int64_t iat, exp, nbf;
	unsigned char nonce[VERIFY_EAR_NONCE_MAX];
	size_t nonce_len;
	const char *developer, *build;
	size_t developer_len, build_len;
	size_t n_sub;
	struct appraisal sub[VERIFY_EAR_SUBMODS_MAX];
};

/* JSON member names of a profile. */
struct names {
	const char *status, *tv, *policy_id, *verifier_id;
	bool policy_list;           /* policy ids as an array */
};

static const struct names veraison_names = { "ear.status", "ear.trustworthiness-vector",
	                                     "ear.appraisal-policy-id", "ear.verifier-id", false };
static const struct names ietf_names = { "ear_status", "ear_trustworthiness_vector",
	                                 "ear_appraisal_policy_ids", "ear_verifier_id", true };

static int
tier_from_name (const char *s, size_t len)
{
	for (size_t i = 0; i < N_ELEMENTS (tiers); i++) {
		if (strlen (tiers[i].name) == len && !memcmp (tiers[i].name, s, len))
			return (int)i;
	}
	return -1;
}

static int
tier_from_value (int64_t v)
{
	for (size_t i = 0; i < N_ELEMENTS (tiers); i++) {
		if (tiers[i].value == v)
			return (int)i;
	}
	return -1;
}


/* A submodule name becomes part of claim names, which hold only
 * [A-Za-z0-9._-]; renaming would let two submodules collide, so a name
 * outside that is refused. */
static int
set_name (struct appraisal *a, const char *s, size_t len, char *err, size_t errlen)
{
	if (len == 0 || len > VERIFY_EAR_NAME_MAX) {
		set_err (err, errlen, "submodule name of %zu bytes (1..%d)", len, VERIFY_EAR_NAME_MAX);
		return VERIFY_EAR_ERR_SUBMOD_NAME;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			set_err (err, errlen, "submodule name \"%.*s\": only A-Z a-z 0-9 . _ - are allowed",
			         (int)len, s);
			return VERIFY_EAR_ERR_SUBMOD_NAME;
		}
	}
	memcpy (a->name, s, len);
	a->name[len] = '\0';
	return VERIFY_EAR_OK;
}

static int
set_tv (struct appraisal *a, const char *sub, size_t idx, int64_t v, char *err, size_t errlen)
{
	if (v < -128 || v > 127) {
		set_err (err, errlen, "submodule %s: %s = %lld (-128..127)", sub, tv_names[idx],
		         (long long)v);
		return VERIFY_EAR_ERR_TV_VALUE;
	}
	a->have_tv[idx] = true;
	a->tv[idx] = v;
	return VERIFY_EAR_OK;
}

/* The profile decides what every other member is called, so it is
 * compared before anything else is read. */
static int
check_profile (const struct ear *e, const char *required, char *err, size_t errlen)
{
	if (e->profile_len != strlen (required) || memcmp (e->profile, required, e->profile_len)) {
		set_err (err, errlen, "eat_profile \"%.*s\", required \"%s\"",
		         (int)(e->profile_len > 80 ? 80 : e->profile_len), e->profile, required);
		return VERIFY_EAR_ERR_PROFILE;
	}
	return VERIFY_EAR_OK;
}

/* ---------------------------------------------------------------- JSON form */

static int
json_string (json_object *v, const char *what, const char **s, size_t *len, char *err,
             size_t errlen)
{
	if (!json_object_is_type (v, json_type_string)) {
		set_err (err, errlen, "%s is not a string", what);
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	*s = json_object_get_string (v);
	*len = (size_t)json_object_get_string_len (v);
	return VERIFY_EAR_OK;
}

/* NumericDate: an integer here (a fraction would be rounded one way by one
 * reader and another way by the next). */
static int
json_time (json_object *root, const char *name, bool *have, int64_t *t, char *err, size_t errlen)
{
	json_object *v;
	if (!json_object_object_get_ex (root, name, &v))
		return VERIFY_EAR_OK;
	if (!json_object_is_type (v, json_type_int)) {
		set_err (err, errlen, "%s is not an integer", name);
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	*t = json_object_get_int64 (v);
	*have = true;
	return VERIFY_EAR_OK;
}

static int
json_appraisal (json_object *o, const struct names *nm, struct appraisal *a, char *err,
                size_t errlen)
{
	json_object *v;
	int rv;

	if (!json_object_is_type (o, json_type_object)) {
		set_err (err, errlen, "submodule %s is not an object", a->name);
		return VERIFY_EAR_ERR_SUBMOD;
	}
	if (!json_object_object_get_ex (o, nm->status, &v)) {
		set_err (err, errlen, "submodule %s has no %s", a->name, nm->status);
		return VERIFY_EAR_ERR_STATUS_MISSING;
	}
	if (json_object_is_type (v, json_type_string))
		a->tier = tier_from_name (json_object_get_string (v),
		                          (size_t)json_object_get_string_len (v));
	else if (json_object_is_type (v, json_type_int))
		a->tier = tier_from_value (json_object_get_int64 (v));
	else
		a->tier = -1;
	if (a->tier < 0) {
		set_err (err, errlen, "submodule %s: %s %.40s is not a trust tier", a->name, nm->status,
		         json_object_to_json_string (v));
		return VERIFY_EAR_ERR_STATUS;
	}
	if (json_object_object_get_ex (o, nm->tv, &v)) {
		if (!json_object_is_type (v, json_type_object)) {
			set_err (err, errlen, "submodule %s: %s is not an object", a->name, nm->tv);
			return VERIFY_EAR_ERR_TV;
		}
		json_object_object_foreach (v, key, val) {
			size_t i;
			for (i = 0; i < TV_COUNT; i++) {
				if (!strcmp (key, tv_names[i]))
					break;
			}
			if (i == TV_COUNT) {
				set_err (err, errlen, "submodule %s: unknown vector claim \"%.40s\"", a->name,
				         key);
				return VERIFY_EAR_ERR_TV;
			}
			if (!json_object_is_type (val, json_type_int)) {
				set_err (err, errlen, "submodule %s: %s is not an integer", a->name, key);
				return VERIFY_EAR_ERR_TV_VALUE;
			}
			rv = set_tv (a, a->name, i, json_object_get_int64 (val), err, errlen);
			if (rv != VERIFY_EAR_OK)
				return rv;
		}
	}
	if (json_object_object_get_ex (o, nm->policy_id, &v)) {
		json_object *one = v;
		if (nm->policy_list) {
			size_t n;
			if (!json_object_is_type (v, json_type_array) ||
			    (n = json_object_array_length (v)) == 0) {
				set_err (err, errlen, "submodule %s: %s is not a non-empty array", a->name,
				         nm->policy_id);
				return VERIFY_EAR_ERR_POLICY_ID;
			}
			for (size_t i = 0; i < n; i++) {
				if (!json_object_is_type (json_object_array_get_idx (v, i), json_type_string)) {
					set_err (err, errlen, "submodule %s: %s holds a non-string", a->name,
					         nm->policy_id);
					return VERIFY_EAR_ERR_POLICY_ID;
				}
			}
			one = n == 1 ? json_object_array_get_idx (v, 0) : NULL;
		}
		if (one && !json_object_is_type (one, json_type_string)) {
			set_err (err, errlen, "submodule %s: %s is not a string", a->name, nm->policy_id);
			return VERIFY_EAR_ERR_POLICY_ID;
		}
		if (one) {
			a->policy_id = json_object_get_string (one);
			a->policy_id_len = (size_t)json_object_get_string_len (one);
		}
	}
	return VERIFY_EAR_OK;
}

static int
json_read (json_object *root, const char *profile, const struct names *nm, struct ear *e,
           char *err, size_t errlen)
{
	json_object *v, *subs;
	int rv;

	if (!json_object_is_type (root, json_type_object)) {
		set_err (err, errlen, "claims are not a JSON object");
		return VERIFY_EAR_ERR_PAYLOAD;
	}
	if (!json_object_object_get_ex (root, "eat_profile", &v)) {
		set_err (err, errlen, "no eat_profile");
		return VERIFY_EAR_ERR_PROFILE_MISSING;
	}
	rv = json_string (v, "eat_profile", &e->profile, &e->profile_len, err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	rv = check_profile (e, profile, err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	if ((rv = json_time (root, "iat", &e->have_iat, &e->iat, err, errlen)) != VERIFY_EAR_OK ||
	    (rv = json_time (root, "exp", &e->have_exp, &e->exp, err, errlen)) != VERIFY_EAR_OK ||
	    (rv = json_time (root, "nbf", &e->have_nbf, &e->nbf, err, errlen)) != VERIFY_EAR_OK)
		return rv;
	/* eat_nonce in JSON: base64url of the nonce's bytes. */
	if (json_object_object_get_ex (root, "eat_nonce", &v)) {
		unsigned char buf[VERIFY_EAR_NONCE_MAX * 2];
		size_t n = 0, slen;
		if (!json_object_is_type (v, json_type_string)) {
			set_err (err, errlen, "eat_nonce is not a string (several nonces are not supported)");
			return VERIFY_EAR_ERR_NONCE;
		}
		slen = (size_t)json_object_get_string_len (v);
		if (slen > sizeof buf || !jws_base64url_decode (json_object_get_string (v), slen, buf, &n) ||
		    n < VERIFY_EAR_NONCE_MIN || n > VERIFY_EAR_NONCE_MAX) {
			set_err (err, errlen, "eat_nonce is not base64url of %d..%d bytes",
			         VERIFY_EAR_NONCE_MIN, VERIFY_EAR_NONCE_MAX);
			return VERIFY_EAR_ERR_NONCE;
		}
		memcpy (e->nonce, buf, n);
		e->nonce_len = n;
		e->have_nonce = true;
	}
	if (json_object_object_get_ex (root, nm->verifier_id, &v)) {
		json_object *d, *b;
		if (!json_object_is_type (v, json_type_object) ||
		    !json_object_object_get_ex (v, "developer", &d) ||
		    !json_object_object_get_ex (v, "build", &b) ||
		    !json_object_is_type (d, json_type_string) || !json_object_is_type (b, json_type_string)) {
			set_err (err, errlen, "%s is not {developer: string, build: string}",
			         nm->verifier_id);
			return VERIFY_EAR_ERR_VERIFIER_ID;
		}
		e->developer = json_object_get_string (d);
		e->developer_len = (size_t)json_object_get_string_len (d);
		e->build = json_object_get_string (b);
		e->build_len = (size_t)json_object_get_string_len (b);
	}
	if (!json_object_object_get_ex (root, "submods", &subs)) {
		set_err (err, errlen, "no submods");
		return VERIFY_EAR_ERR_SUBMODS_MISSING;
	}
	if (!json_object_is_type (subs, json_type_object)) {
		set_err (err, errlen, "submods is not an object");
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	if (json_object_object_length (subs) > VERIFY_EAR_SUBMODS_MAX) {
		set_err (err, errlen, "%d submods (at most %d)", json_object_object_length (subs),
		         VERIFY_EAR_SUBMODS_MAX);
		return VERIFY_EAR_ERR_SUBMODS_COUNT;
	}
	json_object_object_foreach (subs, name, sub) {
		struct appraisal *a = &e->sub[e->n_sub];
		rv = set_name (a, name, strlen (name), err, errlen);
		if (rv != VERIFY_EAR_OK)
			return rv;
		rv = json_appraisal (sub, nm, a, err, errlen);
		if (rv != VERIFY_EAR_OK)
			return rv;
		e->n_sub++;
	}
	return VERIFY_EAR_OK;
}

/* ---------------------------------------------------------------- CBOR form */

/* An integer key or value; false for anything else (or beyond int64). */
static bool
cbor_int64 (const cbor_item_t *it, int64_t *v)
{
	uint64_t u;
	if (cbor_isa_uint (it)) {
		u = cbor_get_int (it);
		if (u > INT64_MAX)
			return false;
		*v = (int64_t)u;
		return true;
	}
	if (cbor_isa_negint (it)) {
		u = cbor_get_int (it);
		if (u > INT64_MAX)
			return false;
		*v = -1 - (int64_t)u;
		return true;
	}
	return false;
}

static bool
cbor_text (const cbor_item_t *it, const char **s, size_t *len)
{
	if (!cbor_isa_string (it) || !cbor_string_is_definite (it))
		return false;
	*s = (const char *)cbor_string_handle (it);
	*len = cbor_string_length (it);
	if (*len && !*s)
		return false;
	if (!*s)
		*s = "";
	return util_utf8_valid ((const unsigned char *)*s, *len);
}

static bool
same_key (const cbor_item_t *a, const cbor_item_t *b)
{
	int64_t x, y;
	const char *s, *t;
	size_t n, m;
	if (cbor_int64 (a, &x) && cbor_int64 (b, &y))
		return x == y;
	if (cbor_isa_string (a) && cbor_isa_string (b) && cbor_text (a, &s, &n) && cbor_text (b, &t, &m))
		return n == m && !memcmp (s, t, n);
	return false;
}

/* A map read here: capped, and with no key twice (libcbor keeps both, and
 * which one a lookup finds would be this code's choice, not the signer's). */
static int
cbor_check_map (const cbor_item_t *m, const char *what, char *err, size_t errlen)
{
	struct cbor_pair *p;
	size_t n;

	if (!cbor_isa_map (m) || !cbor_map_is_definite (m)) {
		set_err (err, errlen, "%s is not a map", what);
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	n = cbor_map_size (m);
	if (n > VERIFY_EAR_MAP_MAX) {
		set_err (err, errlen, "%s has %zu members (at most %d)", what, n, VERIFY_EAR_MAP_MAX);
		return VERIFY_EAR_ERR_PAYLOAD;
	}
	p = cbor_map_handle (m);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (same_key (p[i].key, p[j].key)) {
				set_err (err, errlen, "%s has a key twice", what);
				return VERIFY_EAR_ERR_PAYLOAD;
			}
		}
	}
	return VERIFY_EAR_OK;
}

/* The value under integer key @key in a checked map, or NULL. */
static cbor_item_t *
cbor_get (const cbor_item_t *m, int64_t key)
{
	struct cbor_pair *p = cbor_map_handle (m);
	for (size_t i = 0; i < cbor_map_size (m); i++) {
		int64_t k;
		if (cbor_int64 (p[i].key, &k) && k == key)
			return p[i].value;
	}
	return NULL;
}

static int
cbor_time (const cbor_item_t *root, int64_t key, const char *name, bool *have, int64_t *t,
           char *err, size_t errlen)
{
	cbor_item_t *v = cbor_get (root, key);
	if (!v)
		return VERIFY_EAR_OK;
	if (!cbor_int64 (v, t)) {
		set_err (err, errlen, "%s is not an integer", name);
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	*have = true;
	return VERIFY_EAR_OK;
}

static int
cbor_appraisal (const cbor_item_t *o, const struct names *nm, struct appraisal *a, char *err,
                size_t errlen)
{
	cbor_item_t *v;
	int64_t i64;
	const char *s;
	size_t n;
	int rv;

	if (!cbor_isa_map (o)) {
		set_err (err, errlen, "submodule %s is not a map", a->name);
		return VERIFY_EAR_ERR_SUBMOD;
	}
	rv = cbor_check_map (o, a->name, err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	v = cbor_get (o, KEY_STATUS);
	if (!v) {
		set_err (err, errlen, "submodule %s has no status (1000)", a->name);
		return VERIFY_EAR_ERR_STATUS_MISSING;
	}
	a->tier = cbor_int64 (v, &i64) ? tier_from_value (i64) : cbor_text (v, &s, &n)
	                                                               ? tier_from_name (s, n) : -1;
	if (a->tier < 0) {
		set_err (err, errlen, "submodule %s: status is not a trust tier", a->name);
		return VERIFY_EAR_ERR_STATUS;
	}
	v = cbor_get (o, KEY_TV);
	if (v) {
		struct cbor_pair *p;
		if (!cbor_isa_map (v)) {
			set_err (err, errlen, "submodule %s: vector (1001) is not a map", a->name);
			return VERIFY_EAR_ERR_TV;
		}
		rv = cbor_check_map (v, "trustworthiness vector", err, errlen);
		if (rv != VERIFY_EAR_OK)
			return rv;
		p = cbor_map_handle (v);
		for (size_t i = 0; i < cbor_map_size (v); i++) {
			int64_t k;
			if (!cbor_int64 (p[i].key, &k) || k < 0 || k >= TV_COUNT) {
				set_err (err, errlen, "submodule %s: unknown vector claim key", a->name);
				return VERIFY_EAR_ERR_TV;
			}
			if (!cbor_int64 (p[i].value, &i64)) {
				set_err (err, errlen, "submodule %s: %s is not an integer", a->name,
				         tv_names[k]);
				return VERIFY_EAR_ERR_TV_VALUE;
			}
			rv = set_tv (a, a->name, (size_t)k, i64, err, errlen);
			if (rv != VERIFY_EAR_OK)
				return rv;
		}
	}
	v = cbor_get (o, KEY_POLICY_ID);
	if (v) {
		cbor_item_t *one = v;
		if (nm->policy_list) {
			if (!cbor_isa_array (v) || !cbor_array_is_definite (v) || cbor_array_size (v) == 0) {
				set_err (err, errlen, "submodule %s: policy ids (1003) not a non-empty array",
				         a->name);
				return VERIFY_EAR_ERR_POLICY_ID;
			}
			for (size_t i = 0; i < cbor_array_size (v); i++) {
				if (!cbor_text (cbor_array_handle (v)[i], &s, &n)) {
					set_err (err, errlen, "submodule %s: policy ids (1003) hold a non-string",
					         a->name);
					return VERIFY_EAR_ERR_POLICY_ID;
				}
			}
			one = cbor_array_size (v) == 1 ? cbor_array_handle (v)[0] : NULL;
		}
		if (one) {
			if (!cbor_text (one, &a->policy_id, &a->policy_id_len)) {
				set_err (err, errlen, "submodule %s: policy id (1003) is not a string", a->name);
				return VERIFY_EAR_ERR_POLICY_ID;
			}
		}
	}
	return VERIFY_EAR_OK;
}

static int
cbor_read (const cbor_item_t *root, const char *profile, const struct names *nm, struct ear *e,
           char *err, size_t errlen)
{
	cbor_item_t *v, *subs;
	struct cbor_pair *p;
	int rv;

	if (!cbor_isa_map (root)) {
		set_err (err, errlen, "claims are not a CBOR map");
		return VERIFY_EAR_ERR_PAYLOAD;
	}
	rv = cbor_check_map (root, "claims", err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	v = cbor_get (root, KEY_PROFILE);
	if (!v) {
		set_err (err, errlen, "no eat_profile (265)");
		return VERIFY_EAR_ERR_PROFILE_MISSING;
	}
	if (!cbor_text (v, &e->profile, &e->profile_len)) {
		set_err (err, errlen, "eat_profile (265) is not a text string");
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	rv = check_profile (e, profile, err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	if ((rv = cbor_time (root, KEY_IAT, "iat", &e->have_iat, &e->iat, err, errlen)) != 0 ||
	    (rv = cbor_time (root, KEY_EXP, "exp", &e->have_exp, &e->exp, err, errlen)) != 0 ||
	    (rv = cbor_time (root, KEY_NBF, "nbf", &e->have_nbf, &e->nbf, err, errlen)) != 0)
		return rv;
	v = cbor_get (root, KEY_NONCE);
	if (v) {
		size_t n;
		if (!cbor_isa_bytestring (v) || !cbor_bytestring_is_definite (v) ||
		    (n = cbor_bytestring_length (v)) < VERIFY_EAR_NONCE_MIN || n > VERIFY_EAR_NONCE_MAX) {
			set_err (err, errlen, "eat_nonce (10) is not a byte string of %d..%d bytes",
			         VERIFY_EAR_NONCE_MIN, VERIFY_EAR_NONCE_MAX);
			return VERIFY_EAR_ERR_NONCE;
		}
		memcpy (e->nonce, cbor_bytestring_handle (v), n);
		e->nonce_len = n;
		e->have_nonce = true;
	}
	v = cbor_get (root, KEY_VERIFIER_ID);
	if (v) {
		cbor_item_t *d, *b;
		if (cbor_check_map (v, "verifier-id", err, errlen) != VERIFY_EAR_OK ||
		    !(d = cbor_get (v, 0)) || !(b = cbor_get (v, 1)) ||
		    !cbor_text (d, &e->developer, &e->developer_len) ||
		    !cbor_text (b, &e->build, &e->build_len)) {
			set_err (err, errlen, "verifier-id (1004) is not {0: developer, 1: build}");
			e->developer = e->build = NULL;
			return VERIFY_EAR_ERR_VERIFIER_ID;
		}
	}
	subs = cbor_get (root, KEY_SUBMODS);
	if (!subs) {
		set_err (err, errlen, "no submods (266)");
		return VERIFY_EAR_ERR_SUBMODS_MISSING;
	}
	if (!cbor_isa_map (subs)) {
		set_err (err, errlen, "submods (266) is not a map");
		return VERIFY_EAR_ERR_CLAIM_TYPE;
	}
	if (cbor_map_size (subs) > VERIFY_EAR_SUBMODS_MAX) {
		set_err (err, errlen, "%zu submods (at most %d)", cbor_map_size (subs),
		         VERIFY_EAR_SUBMODS_MAX);
		return VERIFY_EAR_ERR_SUBMODS_COUNT;
	}
	rv = cbor_check_map (subs, "submods", err, errlen);
	if (rv != VERIFY_EAR_OK)
		return rv;
	p = cbor_map_handle (subs);
	for (size_t i = 0; i < cbor_map_size (subs); i++) {
		struct appraisal *a = &e->sub[e->n_sub];
		const char *s;
		size_t n;
		if (!cbor_text (p[i].key, &s, &n)) {
			set_err (err, errlen, "a submodule name is not a text string");
			return VERIFY_EAR_ERR_SUBMOD_NAME;
		}
		rv = set_name (a, s, n, err, errlen);
		if (rv != VERIFY_EAR_OK)
			return rv;
		rv = cbor_appraisal (p[i].value, nm, a, err, errlen);
		if (rv != VERIFY_EAR_OK)
			return rv;
		e->n_sub++;
	}
	return VERIFY_EAR_OK;
}

/* ---------------------------------------------------------------- checks */

/* a > b + slack, and a >= b + slack, without overflow for any int64 a, b
 * (times in a token are the signer's, but need not be sane). */
static bool
later_than (int64_t a, int64_t b, uint64_t slack)
{
	if (a <= b)
		return false;
	return (uint64_t)a - (uint64_t)b > slack;
}

static bool
at_or_after (int64_t a, int64_t b, uint64_t slack)
{
	if (a < b)
		return false;
	return (uint64_t)a - (uint64_t)b >= slack;
}

static int
check (const struct verify_ear_input *in, const struct ear *e, bool *nonce_matched, char *err,
       size_t errlen)
{
	if (!e->have_iat) {
		set_err (err, errlen, "no iat");
		return VERIFY_EAR_ERR_IAT_MISSING;
	}
	if (later_than (e->iat, in->now, in->skew)) {
		set_err (err, errlen, "iat %lld is after now (%lld) + %u s", (long long)e->iat,
		         (long long)in->now, in->skew);
		return VERIFY_EAR_ERR_IAT_FUTURE;
	}
	if (in->max_age && later_than (in->now, e->iat, (uint64_t)in->max_age + in->skew)) {
		set_err (err, errlen, "iat %lld is more than %u s (+ %u s) before now (%lld)",
		         (long long)e->iat, in->max_age, in->skew, (long long)in->now);
		return VERIFY_EAR_ERR_IAT_STALE;
	}
	/* exp is the first moment it is no longer valid (RFC 7519 4.1.4). */
	if (e->have_exp && at_or_after (in->now, e->exp, in->skew)) {
		set_err (err, errlen, "exp %lld is not after now (%lld) - %u s", (long long)e->exp,
		         (long long)in->now, in->skew);
		return VERIFY_EAR_ERR_EXPIRED;
	}
	if (e->have_nbf && later_than (e->nbf, in->now, in->skew)) {
		set_err (err, errlen, "nbf %lld is after now (%lld) + %u s", (long long)e->nbf,
		         (long long)in->now, in->skew);
		return VERIFY_EAR_ERR_NOT_YET_VALID;
	}
	if (in->nonce) {
		if (!e->have_nonce) {
			set_err (err, errlen, "no eat_nonce, and a nonce was expected");
			return VERIFY_EAR_ERR_NONCE_MISSING;
		}
		if (e->nonce_len != in->nonce_len ||
		    CRYPTO_memcmp (e->nonce, in->nonce, in->nonce_len) != 0) {
			set_err (err, errlen, "eat_nonce (%zu bytes) is not the expected nonce (%zu bytes)",
			         e->nonce_len, in->nonce_len);
			return VERIFY_EAR_ERR_NONCE;
		}
		*nonce_matched = true;
	}
	if (!e->developer || !e->build) {
		set_err (err, errlen, "no verifier-id");
		return VERIFY_EAR_ERR_VERIFIER_ID;
	}
	if (e->n_sub == 0) {
		set_err (err, errlen, "submods is empty");
		return VERIFY_EAR_ERR_SUBMODS_MISSING;
	}
	return VERIFY_EAR_OK;
}

/* ---------------------------------------------------------------- claims */

static enum claims_err
add_str (struct claim_set *cs, const char *prefix, const char *name, const char *s, size_t len)
{
	char full[CLAIM_NAME_MAX + 1];
	if ((size_t)snprintf (full, sizeof full, "%s%s", prefix, name) >= sizeof full)
		return CLAIMS_BAD_NAME;
	return claim_set_add_string (cs, full, s, len);
}

static enum claims_err
add_int (struct claim_set *cs, const char *prefix, const char *name, int64_t v)
{
	char full[CLAIM_NAME_MAX + 1];
	if ((size_t)snprintf (full, sizeof full, "%s%s", prefix, name) >= sizeof full)
		return CLAIMS_BAD_NAME;
	return claim_set_add_int (cs, full, v);
}

static enum claims_err
add_appraisal (struct claim_set *cs, const char *prefix, const struct appraisal *a)
{
	enum claims_err cr;
	cr = add_str (cs, prefix, "status", tiers[a->tier].name, strlen (tiers[a->tier].name));
	for (size_t i = 0; i < TV_COUNT && cr == CLAIMS_OK; i++) {
		char name[32];
		if (!a->have_tv[i])
			continue;
		snprintf (name, sizeof name, "tv.%s", tv_names[i]);
		cr = add_int (cs, prefix, name, a->tv[i]);
	}
	if (cr == CLAIMS_OK && a->policy_id)
		cr = add_str (cs, prefix, "policy-id", a->policy_id, a->policy_id_len);
	return cr;
}

static enum claims_err
build_claims (const struct verify_ear_input *in, const struct ear *e, const char *anchor,
              struct claim_set *cs)
{
	enum claims_err cr;

	cr = add_str (cs, "ear.", "profile", e->profile, e->profile_len);
	if (cr == CLAIMS_OK)
		cr = add_int (cs, "ear.", "iat", e->iat);
	if (cr == CLAIMS_OK)
		cr = add_str (cs, "ear.", "verifier-id.developer", e->developer, e->developer_len);
	if (cr == CLAIMS_OK)
		cr = add_str (cs, "ear.", "verifier-id.build", e->build, e->build_len);
	for (size_t i = 0; i < e->n_sub && cr == CLAIMS_OK; i++) {
		char prefix[CLAIM_NAME_MAX + 1];
		snprintf (prefix, sizeof prefix, "ear.submod.%s.", e->sub[i].name);
		cr = add_appraisal (cs, prefix, &e->sub[i]);
	}
	/* One attester: its appraisal is the result's, under the short names
	 * simple policies use. */
	if (cr == CLAIMS_OK && e->n_sub == 1)
		cr = add_appraisal (cs, "ear.", &e->sub[0]);
	if (cr == CLAIMS_OK)
		cr = claim_set_add_string (cs, "evidence.format", "ear", 3);
	if (cr == CLAIMS_OK)
		cr = claim_set_add_string (cs, "evidence.anchor", anchor, strlen (anchor));
	return cr;
}

/* Copy every claim of @from into @to, or none if one is there already. */
static enum claims_err
merge_claims (struct claim_set *to, const struct claim_set *from)
{
	enum claims_err cr = CLAIMS_OK;
	for (size_t i = 0; i < claim_set_count (from); i++) {
		if (claim_set_find (to, claim_set_at (from, i)->name))
			return CLAIMS_DUPLICATE;
	}
	for (size_t i = 0; i < claim_set_count (from) && cr == CLAIMS_OK; i++) {
		const struct claim *c = claim_set_at (from, i);
		switch (c->v.type) {
		case CLAIM_INT:
			cr = claim_set_add_int (to, c->name, c->v.i);
			break;
		case CLAIM_BOOL:
			cr = claim_set_add_bool (to, c->name, c->v.b);
			break;
		case CLAIM_STRING:
			cr = claim_set_add_string (to, c->name, (const char *)c->v.data, c->v.len);
			break;
		case CLAIM_BYTES:
			cr = claim_set_add_bytes (to, c->name, c->v.data, c->v.len);
			break;
		case CLAIM_UNKNOWN:
			cr = CLAIMS_WRONG_TYPE;
			break;
		}
	}
	return cr;
}

/* ---------------------------------------------------------------- entry */

int
verify_ear (const struct verify_ear_input *in, struct claim_set *out, size_t *key_index,
            bool *nonce_matched, char *err, size_t errlen)
{
	static const int64_t algs[] = { COSE_ALG_ES256, COSE_ALG_ES384 };
	const struct names *nm;
	struct cose_sign1 cs;
	struct jws_result jr;
	struct ear *e = NULL;
	struct claim_set *tmp = NULL;
	json_object *json = NULL;
	cbor_item_t *cbor = NULL;
	char sub_err[256];
	bool matched = false, is_cose;
	size_t kidx = 0;
	enum claims_err cr;
	int rv;

	memset (&cs, 0, sizeof cs);
	memset (&jr, 0, sizeof jr);
	set_err (err, errlen, "ok");
	if (nonce_matched)
		*nonce_matched = false;
	if (!in || !out || !in->token || !in->profile || !in->anchor_names || !in->keys ||
	    in->n_keys == 0) {
		set_err (err, errlen, "missing input");
		return VERIFY_EAR_ERR_ARGS;
	}
	if (!strcmp (in->profile, VERIFY_EAR_PROFILE_VERAISON)) {
		nm = &veraison_names;
	} else if (!strcmp (in->profile, VERIFY_EAR_PROFILE_IETF_03) ||
	           !strcmp (in->profile, VERIFY_EAR_PROFILE_IETF_04)) {
		nm = &ietf_names;
	} else {
		set_err (err, errlen, "profile \"%.80s\" not supported", in->profile);
		return VERIFY_EAR_ERR_ARGS;
	}
	if (in->nonce && (in->nonce_len < VERIFY_EAR_NONCE_MIN || in->nonce_len > VERIFY_EAR_NONCE_MAX)) {
		set_err (err, errlen, "expected nonce of %zu bytes (%d..%d)", in->nonce_len,
		         VERIFY_EAR_NONCE_MIN, VERIFY_EAR_NONCE_MAX);
		return VERIFY_EAR_ERR_ARGS;
	}
	if (in->len == 0 || in->len > VERIFY_EAR_MAX_SIZE) {
		set_err (err, errlen, "token of %zu bytes (1..%d)", in->len, VERIFY_EAR_MAX_SIZE);
		return VERIFY_EAR_ERR_SIZE;
	}

	/* Nothing in the payload is read before its signature checks out. */
	is_cose = in->token[0] == 0xd2 || in->token[0] == 0xd8;
	if (is_cose) {
		rv = cose_sign1_verify (in->token, in->len, COSE_ALLOW_CWT_TAG, in->keys, in->n_keys, NULL,
		                        0, algs, N_ELEMENTS (algs), &cs, sub_err, sizeof sub_err);
		if (rv != COSE_OK) {
			set_err (err, errlen, "COSE: %s", sub_err);
			rv = rv < 0 && rv > -100 ? VERIFY_EAR_ERR_COSE (rv) : VERIFY_EAR_ERR_CRYPTO;
			goto out;
		}
		kidx = cs.key_index;
	} else {
		rv = jws_verify ((const char *)in->token, in->len, in->keys, in->n_keys, &jr, sub_err,
		                 sizeof sub_err);
		if (rv != JWS_OK) {
			set_err (err, errlen, "JWS: %s", sub_err);
			rv = rv < 0 && rv > -100 ? VERIFY_EAR_ERR_JWS (rv) : VERIFY_EAR_ERR_CRYPTO;
			goto out;
		}
		kidx = jr.key_index;
	}
	if (kidx >= in->n_keys || !in->anchor_names[kidx]) {
		rv = VERIFY_EAR_ERR_ARGS;
		set_err (err, errlen, "no anchor name for key %zu", kidx);
		goto out;
	}

	e = calloc (1, sizeof *e);
	if (!e) {
		rv = VERIFY_EAR_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", verify_ear_strerror (rv));
		goto out;
	}
	if (is_cose) {
		cbor = cose_cbor_load (cs.payload, cs.payload_len, sub_err, sizeof sub_err);
		if (!cbor) {
			rv = VERIFY_EAR_ERR_PAYLOAD;
			set_err (err, errlen, "claims: %s", sub_err);
			goto out;
		}
		rv = cbor_read (cbor, in->profile, nm, e, err, errlen);
	} else {
		json = jws_json_parse (jr.payload, jr.payload_len, sub_err, sizeof sub_err);
		if (!json) {
			rv = VERIFY_EAR_ERR_PAYLOAD;
			set_err (err, errlen, "claims: %s", sub_err);
			goto out;
		}
		rv = json_read (json, in->profile, nm, e, err, errlen);
	}
	if (rv != VERIFY_EAR_OK)
		goto out;
	rv = check (in, e, &matched, err, errlen);
	if (rv != VERIFY_EAR_OK)
		goto out;

	/* Built aside and copied: a claim refused half-way, or one @out has
	 * already, leaves @out as it was. */
	tmp = claim_set_new ();
	cr = tmp ? build_claims (in, e, in->anchor_names[kidx], tmp) : CLAIMS_NO_MEMORY;
	if (cr == CLAIMS_OK)
		cr = merge_claims (out, tmp);
	if (cr != CLAIMS_OK) {
		set_err (err, errlen, "claim refused: %s", claims_strerror (cr));
		rv = cr == CLAIMS_NO_MEMORY ? VERIFY_EAR_ERR_NO_MEMORY : VERIFY_EAR_ERR_CLAIMS;
		goto out;
	}
	if (key_index)
		*key_index = kidx;
	if (nonce_matched)
		*nonce_matched = matched;
	rv = VERIFY_EAR_OK;
out:
	claim_set_free (tmp);
	free (e);
	if (cbor)
		cbor_decref (&cbor);
	json_object_put (json);
	cose_sign1_clear (&cs);
	jws_result_clear (&jr);
	return rv;
}
