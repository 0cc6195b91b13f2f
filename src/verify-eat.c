/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "verify-eat.h"
#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CWT (RFC 8392) and EAT (RFC 9711) claim keys. */
enum {
	KEY_ISS = 1,
	KEY_SUB = 2,
	KEY_AUD = 3,
	KEY_EXP = 4,
	KEY_NBF = 5,
	KEY_IAT = 6,
	KEY_CTI = 7,
	KEY_CNF = 8,
	KEY_NONCE = 10,
	KEY_DRAFT_UEID = 11,
	KEY_DRAFT_DBGSTAT = 16,
	KEY_UEID = 256,
	KEY_SUEIDS = 257,
	KEY_OEMID = 258,
	KEY_HWMODEL = 259,
	KEY_HWVERSION = 260,
	KEY_UPTIME = 261,
	KEY_OEMBOOT = 262,
	KEY_DBGSTAT = 263,
	KEY_LOCATION = 264,
	KEY_PROFILE = 265,
	KEY_SUBMODS = 266,
	KEY_BOOTCOUNT = 267,
	KEY_BOOTSEED = 268,
	KEY_DLOAS = 269,
	KEY_SWNAME = 270,
	KEY_SWVERSION = 271,
	KEY_MANIFESTS = 272,
	KEY_MEASUREMENTS = 273,
	KEY_MEASRES = 274,
	KEY_INTUSE = 275,
};

#define NAME_PART_MAX 64   /* bytes of a submodule, system or result name */
#define OID_MAX 64         /* bytes of an OID profile */

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
verify_eat_strerror (int rv)
{
	switch (rv) {
	case VERIFY_EAT_OK: return "ok";
	case VERIFY_EAT_ERR_ARGS: return "invalid arguments";
	case VERIFY_EAT_ERR_SIZE: return "token empty or too large";
	case VERIFY_EAT_ERR_COSE: return "token is not a valid COSE_Sign1";
	case VERIFY_EAT_ERR_ALG: return "signature algorithm missing, unsupported or not allowed";
	case VERIFY_EAT_ERR_NO_KEY: return "no pinned key fits the token";
	case VERIFY_EAT_ERR_SIGNATURE: return "signature does not verify";
	case VERIFY_EAT_ERR_PAYLOAD: return "payload is not a CBOR claims map";
	case VERIFY_EAT_ERR_CLAIM_KEY: return "claim key refused";
	case VERIFY_EAT_ERR_DUPLICATE: return "duplicate key";
	case VERIFY_EAT_ERR_CLAIM_TYPE: return "claim of the wrong type or out of range";
	case VERIFY_EAT_ERR_EARLY_DRAFT: return "early-draft claim key";
	case VERIFY_EAT_ERR_IAT_MISSING: return "no iat";
	case VERIFY_EAT_ERR_IAT_FUTURE: return "iat in the future";
	case VERIFY_EAT_ERR_IAT_STALE: return "iat too old";
	case VERIFY_EAT_ERR_EXPIRED: return "token expired";
	case VERIFY_EAT_ERR_NOT_YET_VALID: return "token not yet valid";
	case VERIFY_EAT_ERR_NONCE_MISSING: return "no eat_nonce";
	case VERIFY_EAT_ERR_NONCE: return "eat_nonce is not the challenge";
	case VERIFY_EAT_ERR_PROFILE: return "eat_profile missing or not the expected one";
	case VERIFY_EAT_ERR_UEID: return "bad ueid";
	case VERIFY_EAT_ERR_DBGSTAT: return "bad dbgstat";
	case VERIFY_EAT_ERR_MEASRES: return "bad measres";
	case VERIFY_EAT_ERR_SUBMOD: return "bad submods";
	case VERIFY_EAT_ERR_NESTED_TOKEN: return "nested tokens not supported";
	case VERIFY_EAT_ERR_NAME: return "name not usable in a claim name";
	case VERIFY_EAT_ERR_LIMIT: return "too many entries";
	case VERIFY_EAT_ERR_NO_MEMORY: return "out of memory";
	case VERIFY_EAT_ERR_CLAIMS: return "claim refused";
	case VERIFY_EAT_ERR_CRYPTO: return "cryptographic library failure";
	}
	return "unknown error";
}

/* ---------------------------------------------------------------- helpers */

struct ctx {
	const struct verify_eat_input *in;
	struct claim_set *claims;  /* collected aside, copied out on success */
	char *err;
	size_t errlen;
};

/* What one claims map said about time, nonce and profile. */
struct level {
	bool has_iat, has_exp, has_nbf;
	int64_t iat, exp, nbf;
	const cbor_item_t *nonce;
	bool has_profile;
	char profile[4 * OID_MAX + 8];
};

static bool
is_text (const cbor_item_t *it)
{
	return cbor_isa_string (it) && cbor_string_is_definite (it);
}

static bool
is_bytes (const cbor_item_t *it)
{
	return cbor_isa_bytestring (it) && cbor_bytestring_is_definite (it);
}

static const unsigned char *
bytes_of (const cbor_item_t *it)
{
	static const unsigned char empty[1];
	const unsigned char *p = is_text (it) ? cbor_string_handle (it) : cbor_bytestring_handle (it);
	return p ? p : empty;
}

static size_t
len_of (const cbor_item_t *it)
{
	return is_text (it) ? cbor_string_length (it) : cbor_bytestring_length (it);
}


static bool
text_ok (const cbor_item_t *it)
{
	return is_text (it) && cbor_string_length (it) <= CLAIM_VALUE_MAX &&
	       (util_utf8_valid (bytes_of (it), cbor_string_length (it)) &&
	        !memchr (bytes_of (it), 0, cbor_string_length (it)));
}

static int fail (struct ctx *c, int rv, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static int
fail (struct ctx *c, int rv, const char *fmt, ...)
{
	va_list ap;
	if (c->err && c->errlen) {
		va_start (ap, fmt);
		vsnprintf (c->err, c->errlen, fmt, ap);
		va_end (ap);
	}
	return rv;
}

static int
claims_fail (struct ctx *c, enum claims_err cr, const char *name)
{
	return fail (c, cr == CLAIMS_NO_MEMORY ? VERIFY_EAT_ERR_NO_MEMORY : VERIFY_EAT_ERR_CLAIMS,
	             "claim %s refused: %s", name, claims_strerror (cr));
}

/* @prefix + @leaf into @name; false (with the error set) if too long. */
static bool
make_name (struct ctx *c, char *name, const char *prefix, const char *leaf)
{
	int n = snprintf (name, CLAIM_NAME_MAX + 1, "%s%s", prefix, leaf);
	if (n < 0 || n > CLAIM_NAME_MAX) {
		fail (c, VERIFY_EAT_ERR_NAME, "claim name %s%s longer than %d", prefix, leaf,
		      CLAIM_NAME_MAX);
		return false;
	}
	return true;
}

static int
add_int (struct ctx *c, const char *prefix, const char *leaf, int64_t v)
{
	char name[CLAIM_NAME_MAX + 1];
	enum claims_err cr;
	if (!make_name (c, name, prefix, leaf))
		return VERIFY_EAT_ERR_NAME;
	cr = claim_set_add_int (c->claims, name, v);
	return cr == CLAIMS_OK ? VERIFY_EAT_OK : claims_fail (c, cr, name);
}

static int
add_bool (struct ctx *c, const char *prefix, const char *leaf, bool v)
{
	char name[CLAIM_NAME_MAX + 1];
	enum claims_err cr;
	if (!make_name (c, name, prefix, leaf))
		return VERIFY_EAT_ERR_NAME;
	cr = claim_set_add_bool (c->claims, name, v);
	return cr == CLAIMS_OK ? VERIFY_EAT_OK : claims_fail (c, cr, name);
}

static int
add_string (struct ctx *c, const char *prefix, const char *leaf, const void *v, size_t len)
{
	char name[CLAIM_NAME_MAX + 1];
	enum claims_err cr;
	if (!make_name (c, name, prefix, leaf))
		return VERIFY_EAT_ERR_NAME;
	cr = claim_set_add_string (c->claims, name, v, len);
	return cr == CLAIMS_OK ? VERIFY_EAT_OK : claims_fail (c, cr, name);
}

static int
add_bytes (struct ctx *c, const char *prefix, const char *leaf, const void *v, size_t len)
{
	char name[CLAIM_NAME_MAX + 1];
	enum claims_err cr;
	if (!make_name (c, name, prefix, leaf))
		return VERIFY_EAT_ERR_NAME;
	cr = claim_set_add_bytes (c->claims, name, v, len);
	return cr == CLAIMS_OK ? VERIFY_EAT_OK : claims_fail (c, cr, name);
}

/* true or false into @b.  By width first: libcbor 0.8's cbor_is_bool()
 * asserts, and so aborts the host, when handed a float. */
static bool
get_bool (const cbor_item_t *it, bool *b)
{
	uint8_t v;
	if (!cbor_isa_float_ctrl (it) || cbor_float_get_width (it) != CBOR_FLOAT_0)
		return false;
	v = cbor_ctrl_value (it);
	*b = v == CBOR_CTRL_TRUE;
	return v == CBOR_CTRL_TRUE || v == CBOR_CTRL_FALSE;
}

/* A non-negative integer that fits int64. */
static bool
get_uint (const cbor_item_t *it, int64_t *v)
{
	return cbor_isa_uint (it) && cose_cbor_get_int (it, v);
}

/* NumericDate (RFC 8392 section 2): an int or a float, here within
 * 0..VERIFY_EAT_TIME_MAX.  A float rounds down, or up with @up (nbf), so
 * that rounding never widens the validity window. */
static bool
numeric_date (const cbor_item_t *it, bool up, int64_t *t)
{
	if (cbor_is_int (it))
		return cose_cbor_get_int (it, t) && *t >= 0 && *t <= VERIFY_EAT_TIME_MAX;
	if (cbor_is_float (it)) {
		double d = cbor_float_get_float (it);
		if (!isfinite (d) || d < 0 || d > (double)VERIFY_EAT_TIME_MAX)
			return false;
		*t = (int64_t)d;
		if (up && (double)*t < d)
			(*t)++;
		return *t <= VERIFY_EAT_TIME_MAX;
	}
	return false;
}

/* Submodule, measurement system and result names become part of claim
 * names, so they must be what the registry can read back: 1..64 of
 * [A-Za-z0-9._-]. */
static bool
name_ok (const unsigned char *s, size_t n)
{
	if (n == 0 || n > NAME_PART_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* Keys of one map: each an int64 or a text string (else @key_rv), no two
 * equal.  Quadratic, on at most VERIFY_EAT_MAP_MAX entries. */
static int
check_keys (struct ctx *c, const cbor_item_t *map, const char *what, int key_rv)
{
	struct cbor_pair *p = cbor_map_handle (map);
	size_t n = cbor_map_size (map);

	if (n > VERIFY_EAT_MAP_MAX)
		return fail (c, VERIFY_EAT_ERR_LIMIT, "%s: %zu entries (at most %d)", what, n,
		             VERIFY_EAT_MAP_MAX);
	for (size_t i = 0; i < n; i++) {
		int64_t a, b;
		bool ia = cbor_is_int (p[i].key);
		if (ia ? !cose_cbor_get_int (p[i].key, &a) : !is_text (p[i].key))
			return fail (c, key_rv, "%s: key %zu is neither an int64 nor text", what, i);
		for (size_t j = 0; j < i; j++) {
			bool same;
			if (ia != cbor_is_int (p[j].key))
				continue;
			if (ia)
				same = cose_cbor_get_int (p[j].key, &b) && a == b;
			else
				same = len_of (p[i].key) == len_of (p[j].key) &&
				       !memcmp (bytes_of (p[i].key), bytes_of (p[j].key), len_of (p[i].key));
			if (same) {
				if (ia)
					return fail (c, VERIFY_EAT_ERR_DUPLICATE, "%s: key %" PRId64 " twice", what, a);
				return fail (c, VERIFY_EAT_ERR_DUPLICATE, "%s: a text key twice", what);
			}
		}
	}
	return VERIFY_EAT_OK;
}

/* JSON names (RFC 8392, RFC 9711) of the claims this code checks: as
 * text keys in a CBOR token they would be read by some and not others. */
static const char *const json_names[] = {
	"iss", "sub", "aud", "exp", "nbf", "iat", "cti", "cnf", "eat_nonce", "ueid", "sueids",
	"oemid", "hwmodel", "hwversion", "uptime", "oemboot", "dbgstat", "location", "eat_profile",
	"submods", "bootcount", "bootseed", "dloas", "swname", "swversion", "manifests",
	"measurements", "measres", "intuse",
};

static bool
json_name (const cbor_item_t *key)
{
	size_t n = cbor_string_length (key);
	for (size_t i = 0; i < sizeof json_names / sizeof json_names[0]; i++) {
		if (strlen (json_names[i]) == n && !memcmp (json_names[i], bytes_of (key), n))
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- claim values */

/* eat_nonce: a bstr of 8..64 bytes, or an array of 2..16 of them. */
static bool
nonce_one_ok (const cbor_item_t *it)
{
	return is_bytes (it) && cbor_bytestring_length (it) >= VERIFY_EAT_NONCE_MIN &&
	       cbor_bytestring_length (it) <= VERIFY_EAT_NONCE_MAX;
}

static int
check_nonce_claim (struct ctx *c, const cbor_item_t *v)
{
	if (cbor_isa_array (v)) {
		size_t n = cbor_array_size (v);
		if (n < 2 || n > VERIFY_EAT_NONCES_MAX)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "eat_nonce array of %zu (2..%d)", n,
			             VERIFY_EAT_NONCES_MAX);
		for (size_t i = 0; i < n; i++) {
			if (!nonce_one_ok (cbor_array_handle (v)[i]))
				return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "eat_nonce %zu is not a bstr of %d..%d bytes",
				             i, VERIFY_EAT_NONCE_MIN, VERIFY_EAT_NONCE_MAX);
		}
		return VERIFY_EAT_OK;
	}
	if (!nonce_one_ok (v))
		return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "eat_nonce is not a bstr of %d..%d bytes",
		             VERIFY_EAT_NONCE_MIN, VERIFY_EAT_NONCE_MAX);
	return VERIFY_EAT_OK;
}

static bool
nonce_equal (const cbor_item_t *it, const unsigned char *nonce, size_t len)
{
	return cbor_bytestring_length (it) == len && CRYPTO_memcmp (bytes_of (it), nonce, len) == 0;
}

static bool
nonce_matches (const cbor_item_t *v, const unsigned char *nonce, size_t len)
{
	bool any = false;
	if (!cbor_isa_array (v))
		return nonce_equal (v, nonce, len);
	/* Every element is looked at: the time taken says nothing about
	 * which one matched. */
	for (size_t i = 0; i < cbor_array_size (v); i++)
		any |= nonce_equal (cbor_array_handle (v)[i], nonce, len);
	return any;
}

/* ueid (RFC 9711 section 4.2.1): type byte 0x01 RAND + 16/24/32 bytes,
 * 0x02 IEEE EUI + 6/8 (EUI-48/64), 0x03 IMEI + 6 (48-bit integer). */
static int
check_ueid (struct ctx *c, const cbor_item_t *v, const char *what)
{
	const unsigned char *b;
	size_t n;
	bool ok;

	if (!is_bytes (v))
		return fail (c, VERIFY_EAT_ERR_UEID, "%s is not a bstr", what);
	b = bytes_of (v);
	n = cbor_bytestring_length (v);
	if (n < 7 || n > 33)
		return fail (c, VERIFY_EAT_ERR_UEID, "%s of %zu bytes (7..33)", what, n);
	switch (b[0]) {
	case 0x01: ok = n == 17 || n == 25 || n == 33; break;
	case 0x02: ok = n == 7 || n == 9; break;
	case 0x03: ok = n == 7; break;
	default:
		return fail (c, VERIFY_EAT_ERR_UEID, "%s type byte 0x%02x unknown", what, b[0]);
	}
	if (!ok)
		return fail (c, VERIFY_EAT_ERR_UEID, "%s of type 0x%02x has %zu bytes", what, b[0], n);
	return VERIFY_EAT_OK;
}

/* An OID profile (the DER content octets of the OID, RFC 9711 section
 * 4.3.2) in dotted form. */
static bool
oid_text (const unsigned char *b, size_t n, char *out, size_t outlen)
{
	size_t o = 0, i = 0;
	bool first = true;

	if (n == 0 || n > OID_MAX || b[n - 1] & 0x80)
		return false;
	while (i < n) {
		uint64_t v = 0;
		int w;
		if (b[i] == 0x80) /* not minimal */
			return false;
		do {
			if (v > (UINT64_MAX >> 7))
				return false;
			v = v << 7 | (b[i] & 0x7f);
		} while (b[i++] & 0x80);
		if (first) {
			unsigned int arc = v < 40 ? 0 : v < 80 ? 1 : 2;
			w = snprintf (out + o, outlen - o, "%u.%" PRIu64, arc, v - 40 * arc);
			first = false;
		} else {
			w = snprintf (out + o, outlen - o, ".%" PRIu64, v);
		}
		if (w < 0 || (size_t)w >= outlen - o)
			return false;
		o += (size_t)w;
	}
	return true;
}

/* hwversion and swversion: [version tstr, ?scheme int] -> the version. */
static const cbor_item_t *
version_text (const cbor_item_t *v)
{
	cbor_item_t **e;
	size_t n;
	if (!cbor_isa_array (v))
		return NULL;
	n = cbor_array_size (v);
	e = cbor_array_handle (v);
	if (n < 1 || n > 2 || !text_ok (e[0]) || (n == 2 && !cbor_is_int (e[1])))
		return NULL;
	return e[0];
}

/* measres: [+ [system tstr, [+ [result-id tstr/bstr, result 1..4]]]],
 * one claim PREFIXmeasres.SYSTEM.RESULT-ID each (a bstr id in hex). */
static int
do_measres (struct ctx *c, const cbor_item_t *v, const char *prefix)
{
	static const char hex[] = "0123456789abcdef";
	char leaf[2 * CLAIM_NAME_MAX];
	size_t n;

	if (!cbor_isa_array (v) || (n = cbor_array_size (v)) == 0)
		return fail (c, VERIFY_EAT_ERR_MEASRES, "measres is not a non-empty array");
	if (n > VERIFY_EAT_MAP_MAX)
		return fail (c, VERIFY_EAT_ERR_LIMIT, "measres: %zu systems", n);
	for (size_t i = 0; i < n; i++) {
		const cbor_item_t *g = cbor_array_handle (v)[i], *sys, *res;
		size_t m;
		if (!cbor_isa_array (g) || cbor_array_size (g) != 2)
			return fail (c, VERIFY_EAT_ERR_MEASRES, "measres group %zu is not [system, results]", i);
		sys = cbor_array_handle (g)[0];
		res = cbor_array_handle (g)[1];
		if (!is_text (sys) || !cbor_isa_array (res) || (m = cbor_array_size (res)) == 0)
			return fail (c, VERIFY_EAT_ERR_MEASRES, "measres group %zu is not [tstr, [+ result]]", i);
		if (!name_ok (bytes_of (sys), len_of (sys)))
			return fail (c, VERIFY_EAT_ERR_NAME, "measres system %zu: name not of [A-Za-z0-9._-]{1,%d}",
			             i, NAME_PART_MAX);
		if (m > VERIFY_EAT_MAP_MAX)
			return fail (c, VERIFY_EAT_ERR_LIMIT, "measres group %zu: %zu results", i, m);
		for (size_t j = 0; j < m; j++) {
			const cbor_item_t *r = cbor_array_handle (res)[j], *id, *val;
			char idtext[2 * NAME_PART_MAX + 1];
			int64_t result;
			int rv;
			if (!cbor_isa_array (r) || cbor_array_size (r) != 2)
				return fail (c, VERIFY_EAT_ERR_MEASRES, "measres %zu.%zu is not [id, result]", i, j);
			id = cbor_array_handle (r)[0];
			val = cbor_array_handle (r)[1];
			if (is_text (id)) {
				if (!name_ok (bytes_of (id), len_of (id)))
					return fail (c, VERIFY_EAT_ERR_NAME,
					             "measres %zu.%zu: result id not of [A-Za-z0-9._-]{1,%d}", i, j,
					             NAME_PART_MAX);
				memcpy (idtext, bytes_of (id), len_of (id));
				idtext[len_of (id)] = '\0';
			} else if (is_bytes (id) && len_of (id) > 0 && len_of (id) <= NAME_PART_MAX / 2) {
				for (size_t k = 0; k < len_of (id); k++) {
					idtext[2 * k] = hex[bytes_of (id)[k] >> 4];
					idtext[2 * k + 1] = hex[bytes_of (id)[k] & 0xf];
				}
				idtext[2 * len_of (id)] = '\0';
			} else {
				return fail (c, VERIFY_EAT_ERR_MEASRES,
				             "measres %zu.%zu: result id is not a name or 1..%d bytes", i, j,
				             NAME_PART_MAX / 2);
			}
			/* 1 success, 2 fail, 3 not run, 4 absent. */
			if (!get_uint (val, &result) || result < 1 || result > 4)
				return fail (c, VERIFY_EAT_ERR_MEASRES, "measres %zu.%zu: result not 1..4", i, j);
			/* Both parts are at most NAME_PART_MAX: it fits, and
			 * add_int checks the whole name's length. */
			snprintf (leaf, sizeof leaf, "measres.%.*s.%s", (int)len_of (sys),
			          (const char *)bytes_of (sys), idtext);
			rv = add_int (c, prefix, leaf, result);
			if (rv != VERIFY_EAT_OK)
				return rv;
		}
	}
	return VERIFY_EAT_OK;
}

/* measurements: [+ [content-format uint, bstr]]. */
static bool
measurements_ok (const cbor_item_t *v)
{
	size_t n;
	if (!cbor_isa_array (v) || (n = cbor_array_size (v)) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		const cbor_item_t *m = cbor_array_handle (v)[i];
		int64_t cf;
		if (!cbor_isa_array (m) || cbor_array_size (m) != 2 || !get_uint (cbor_array_handle (m)[0], &cf) ||
		    !is_bytes (cbor_array_handle (m)[1]))
			return false;
	}
	return true;
}

static int check_claims (struct ctx *c, const cbor_item_t *map, const char *prefix,
                         unsigned int depth, struct level *lv);
static int check_time (struct ctx *c, const struct level *lv, const char *where);

/* submods: {+ tstr => claims map / nested token / detached digest}. */
static int
do_submods (struct ctx *c, const cbor_item_t *v, const char *prefix, unsigned int depth)
{
	struct cbor_pair *p;
	size_t n;
	int rv;

	if (!cbor_isa_map (v))
		return fail (c, VERIFY_EAT_ERR_SUBMOD, "submods is not a map");
	if (depth >= VERIFY_EAT_SUBMOD_DEPTH)
		return fail (c, VERIFY_EAT_ERR_SUBMOD, "submodules nested deeper than %d",
		             VERIFY_EAT_SUBMOD_DEPTH);
	rv = check_keys (c, v, "submods", VERIFY_EAT_ERR_SUBMOD);
	if (rv != VERIFY_EAT_OK)
		return rv;
	p = cbor_map_handle (v);
	n = cbor_map_size (v);
	for (size_t i = 0; i < n; i++) {
		char sub[CLAIM_NAME_MAX + 1];
		struct level lv;
		int w;
		if (!is_text (p[i].key))
			return fail (c, VERIFY_EAT_ERR_SUBMOD, "submodule %zu: name is not text", i);
		if (!name_ok (bytes_of (p[i].key), len_of (p[i].key)))
			return fail (c, VERIFY_EAT_ERR_NAME, "submodule %zu: name not of [A-Za-z0-9._-]{1,%d}",
			             i, NAME_PART_MAX);
		w = snprintf (sub, sizeof sub, "%ssubmod.%.*s.", prefix, (int)len_of (p[i].key),
		              (const char *)bytes_of (p[i].key));
		if (w < 0 || (size_t)w >= sizeof sub)
			return fail (c, VERIFY_EAT_ERR_NAME, "submodule %zu: claim names too long", i);
		if (cbor_isa_map (p[i].value)) {
			memset (&lv, 0, sizeof lv);
			rv = check_claims (c, p[i].value, sub, depth + 1, &lv);
			if (rv == VERIFY_EAT_OK)
				rv = check_time (c, &lv, sub);
			if (rv != VERIFY_EAT_OK)
				return rv;
		} else if (is_bytes (p[i].value) || is_text (p[i].value)) {
			/* A nested token carries its own signature, keys and
			 * freshness: taking its claims unchecked would let an
			 * unsigned submodule speak. */
			return fail (c, VERIFY_EAT_ERR_NESTED_TOKEN, "submodule %s is a nested token", sub);
		} else if (cbor_isa_array (p[i].value)) {
			/* Detached-Submodule-Digest [hash-alg, digest]: it
			 * claims nothing by itself. */
			cbor_item_t **e = cbor_array_handle (p[i].value);
			if (cbor_array_size (p[i].value) != 2 || !(cbor_is_int (e[0]) || is_text (e[0])) ||
			    !is_bytes (e[1]))
				return fail (c, VERIFY_EAT_ERR_SUBMOD, "submodule %s: bad detached digest", sub);
		} else {
			return fail (c, VERIFY_EAT_ERR_SUBMOD, "submodule %s is neither claims nor a digest", sub);
		}
	}
	return VERIFY_EAT_OK;
}

/* Check one claim; @key is the int key, @v its value. */
static int
do_claim (struct ctx *c, int64_t key, const cbor_item_t *v, const char *prefix,
          unsigned int depth, struct level *lv)
{
	const cbor_item_t *t;
	int64_t i;
	bool b;

	switch (key) {
	case KEY_ISS:
	case KEY_SUB:
		if (!text_ok (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not text", key == KEY_ISS ? "iss" : "sub");
		return VERIFY_EAT_OK;
	case KEY_AUD:
		if (cbor_isa_array (v)) {
			for (size_t k = 0; k < cbor_array_size (v); k++) {
				if (!text_ok (cbor_array_handle (v)[k]))
					return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "aud %zu is not text", k);
			}
			return VERIFY_EAT_OK;
		}
		if (!text_ok (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "aud is not text");
		return VERIFY_EAT_OK;
	case KEY_EXP:
		lv->has_exp = numeric_date (v, false, &lv->exp);
		if (!lv->has_exp)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "exp is not a NumericDate in range");
		return VERIFY_EAT_OK;
	case KEY_NBF:
		lv->has_nbf = numeric_date (v, true, &lv->nbf);
		if (!lv->has_nbf)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "nbf is not a NumericDate in range");
		return VERIFY_EAT_OK;
	case KEY_IAT:
		lv->has_iat = numeric_date (v, false, &lv->iat);
		if (!lv->has_iat)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "iat is not a NumericDate in range");
		return add_int (c, prefix, "iat", lv->iat);
	case KEY_CTI:
	case KEY_BOOTSEED:
		if (!is_bytes (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not a bstr",
			             key == KEY_CTI ? "cti" : "bootseed");
		if (key == KEY_BOOTSEED)
			return add_bytes (c, prefix, "bootseed", bytes_of (v), len_of (v));
		return VERIFY_EAT_OK;
	case KEY_CNF:
	case KEY_LOCATION:
		if (!cbor_isa_map (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not a map",
			             key == KEY_CNF ? "cnf" : "location");
		return VERIFY_EAT_OK;
	case KEY_NONCE:
		lv->nonce = v;
		return check_nonce_claim (c, v);
	case KEY_DRAFT_UEID:
	case KEY_DRAFT_DBGSTAT:
		/* RFC 9711 moved these to 256 and 263; 11 and 16 now mean
		 * other things, so a token using them is from a draft. */
		return fail (c, VERIFY_EAT_ERR_EARLY_DRAFT, "claim key %" PRId64 " (early-draft %s)", key,
		             key == KEY_DRAFT_UEID ? "ueid" : "dbgstat");
	case KEY_UEID: {
		int rv = check_ueid (c, v, "ueid");
		return rv != VERIFY_EAT_OK ? rv : add_bytes (c, prefix, "ueid", bytes_of (v), len_of (v));
	}
	case KEY_SUEIDS: {
		struct cbor_pair *p;
		int rv;
		if (!cbor_isa_map (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "sueids is not a map");
		rv = check_keys (c, v, "sueids", VERIFY_EAT_ERR_CLAIM_TYPE);
		if (rv != VERIFY_EAT_OK)
			return rv;
		p = cbor_map_handle (v);
		for (size_t k = 0; k < cbor_map_size (v); k++) {
			if (!is_text (p[k].key))
				return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "sueids key %zu is not text", k);
			rv = check_ueid (c, p[k].value, "sueid");
			if (rv != VERIFY_EAT_OK)
				return rv;
		}
		return VERIFY_EAT_OK;
	}
	case KEY_OEMID:
		/* IEEE OUI (3 bytes), random (16 bytes), or an IANA PEN. */
		if (is_bytes (v) && (len_of (v) == 3 || len_of (v) == 16))
			return add_bytes (c, prefix, "oemid", bytes_of (v), len_of (v));
		if (get_uint (v, &i))
			return add_int (c, prefix, "oemid-pen", i);
		return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "oemid is neither 3 or 16 bytes nor a PEN");
	case KEY_HWMODEL:
		if (!is_bytes (v) || len_of (v) < 1 || len_of (v) > 32)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "hwmodel is not a bstr of 1..32 bytes");
		return add_bytes (c, prefix, "hwmodel", bytes_of (v), len_of (v));
	case KEY_HWVERSION:
	case KEY_SWVERSION:
		t = version_text (v);
		if (!t)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not [tstr, ?int]",
			             key == KEY_HWVERSION ? "hwversion" : "swversion");
		return add_string (c, prefix, key == KEY_HWVERSION ? "hwversion" : "swversion",
		                   bytes_of (t), len_of (t));
	case KEY_UPTIME:
	case KEY_BOOTCOUNT:
		if (!get_uint (v, &i))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not a uint",
			             key == KEY_UPTIME ? "uptime" : "bootcount");
		return add_int (c, prefix, key == KEY_UPTIME ? "uptime" : "bootcount", i);
	case KEY_OEMBOOT:
		if (!get_bool (v, &b))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "oemboot is not a bool");
		return add_bool (c, prefix, "oemboot", b);
	case KEY_DBGSTAT:
		/* 0 enabled, 1 disabled, 2 since boot, 3 permanently, 4 fully
		 * and permanently (RFC 9711 section 4.2.9). */
		if (!get_uint (v, &i) || i > 4)
			return fail (c, VERIFY_EAT_ERR_DBGSTAT, "dbgstat is not 0..4");
		return add_int (c, prefix, "dbgstat", i);
	case KEY_PROFILE:
		if (text_ok (v) && len_of (v) > 0 && len_of (v) < sizeof lv->profile) {
			memcpy (lv->profile, bytes_of (v), len_of (v));
			lv->profile[len_of (v)] = '\0';
		} else if (!is_bytes (v) ||
		           !oid_text (bytes_of (v), len_of (v), lv->profile, sizeof lv->profile)) {
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "eat_profile is neither a URI nor an OID");
		}
		lv->has_profile = true;
		return add_string (c, prefix, "profile", lv->profile, strlen (lv->profile));
	case KEY_SUBMODS:
		return do_submods (c, v, prefix, depth);
	case KEY_DLOAS:
	case KEY_MANIFESTS:
		if (!cbor_isa_array (v) || cbor_array_size (v) == 0)
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "%s is not a non-empty array",
			             key == KEY_DLOAS ? "dloas" : "manifests");
		return VERIFY_EAT_OK;
	case KEY_SWNAME:
		if (!text_ok (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "swname is not text");
		return add_string (c, prefix, "swname", bytes_of (v), len_of (v));
	case KEY_MEASUREMENTS:
		if (!measurements_ok (v))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "measurements is not [+ [uint, bstr]]");
		return VERIFY_EAT_OK;
	case KEY_MEASRES:
		return do_measres (c, v, prefix);
	case KEY_INTUSE:
		if (!get_uint (v, &i))
			return fail (c, VERIFY_EAT_ERR_CLAIM_TYPE, "intuse is not a uint");
		return VERIFY_EAT_OK;
	}
	/* Not understood: ignored (RFC 8392 section 3). */
	return VERIFY_EAT_OK;
}

static int
check_claims (struct ctx *c, const cbor_item_t *map, const char *prefix, unsigned int depth,
              struct level *lv)
{
	struct cbor_pair *p = cbor_map_handle (map);
	size_t n = cbor_map_size (map);
	int rv = check_keys (c, map, prefix, VERIFY_EAT_ERR_CLAIM_KEY);

	if (rv != VERIFY_EAT_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		int64_t key;
		if (is_text (p[i].key)) {
			if (json_name (p[i].key))
				return fail (c, VERIFY_EAT_ERR_CLAIM_KEY, "%s: text key \"%.*s\" names a CWT/EAT claim",
				             prefix, (int)len_of (p[i].key), (const char *)bytes_of (p[i].key));
			continue;
		}
		(void)cose_cbor_get_int (p[i].key, &key); /* checked by check_keys */
		rv = do_claim (c, key, p[i].value, prefix, depth, lv);
		if (rv != VERIFY_EAT_OK)
			return rv;
	}
	return VERIFY_EAT_OK;
}

/* exp, nbf and iat against the clock, at any level. */
static int
check_time (struct ctx *c, const struct level *lv, const char *where)
{
	const struct verify_eat_input *in = c->in;
	int64_t skew = (int64_t)in->skew;

	if (lv->has_iat && lv->iat > in->now + skew)
		return fail (c, VERIFY_EAT_ERR_IAT_FUTURE, "%s: iat %" PRId64 " is %" PRId64 " s in the future",
		             where, lv->iat, lv->iat - in->now);
	if (lv->has_exp && in->now > lv->exp + skew)
		return fail (c, VERIFY_EAT_ERR_EXPIRED, "%s: expired at %" PRId64 " (now %" PRId64 ")", where,
		             lv->exp, in->now);
	if (lv->has_nbf && in->now + skew < lv->nbf)
		return fail (c, VERIFY_EAT_ERR_NOT_YET_VALID, "%s: not valid before %" PRId64 " (now %" PRId64 ")",
		             where, lv->nbf, in->now);
	return VERIFY_EAT_OK;
}

/* ---------------------------------------------------------------- entry */

static int
from_cose (int rv)
{
	switch (rv) {
	case COSE_ERR_ARGS: return VERIFY_EAT_ERR_ARGS;
	case COSE_ERR_SIZE: return VERIFY_EAT_ERR_SIZE;
	case COSE_ERR_ALG_MISSING:
	case COSE_ERR_ALG_UNKNOWN:
	case COSE_ERR_ALG_NOT_ALLOWED: return VERIFY_EAT_ERR_ALG;
	case COSE_ERR_NO_KEY:
	case COSE_ERR_KEY_MISMATCH: return VERIFY_EAT_ERR_NO_KEY;
	case COSE_ERR_SIG_LENGTH:
	case COSE_ERR_SIGNATURE: return VERIFY_EAT_ERR_SIGNATURE;
	case COSE_ERR_NO_MEMORY: return VERIFY_EAT_ERR_NO_MEMORY;
	case COSE_ERR_CRYPTO: return VERIFY_EAT_ERR_CRYPTO;
	}
	return VERIFY_EAT_ERR_COSE;
}

/* Copy the collected claims into @out. */
static int
copy_claims (struct ctx *c, const struct claim_set *from, struct claim_set *out)
{
	for (size_t i = 0; i < claim_set_count (from); i++) {
		const struct claim *cl = claim_set_at (from, i);
		enum claims_err cr = CLAIMS_OK;
		switch (cl->v.type) {
		case CLAIM_INT: cr = claim_set_add_int (out, cl->name, cl->v.i); break;
		case CLAIM_BOOL: cr = claim_set_add_bool (out, cl->name, cl->v.b); break;
		case CLAIM_STRING:
			cr = claim_set_add_string (out, cl->name, (const char *)cl->v.data, cl->v.len);
			break;
		case CLAIM_BYTES: cr = claim_set_add_bytes (out, cl->name, cl->v.data, cl->v.len); break;
		case CLAIM_UNKNOWN: cr = CLAIMS_WRONG_TYPE; break;
		}
		if (cr != CLAIMS_OK)
			return claims_fail (c, cr, cl->name);
	}
	return VERIFY_EAT_OK;
}

int
verify_eat (const struct verify_eat_input *in, struct claim_set *out, size_t *key_index,
            bool *nonce_matched, char *err, size_t errlen)
{
	struct cose_sign1 msg;
	struct level lv;
	struct ctx c;
	cbor_item_t *payload = NULL;
	const char *anchor;
	char sub[256];
	int rv;

	memset (&msg, 0, sizeof msg);
	memset (&lv, 0, sizeof lv);
	memset (&c, 0, sizeof c);
	c.in = in;
	c.err = err;
	c.errlen = errlen;
	if (key_index)
		*key_index = 0;
	if (nonce_matched)
		*nonce_matched = false;
	set_err (err, errlen, "ok");
	if (!in || !out || !in->token || in->n_keys == 0 || !in->keys || !in->anchor_names ||
	    (in->n_algs && !in->algs))
		return fail (&c, VERIFY_EAT_ERR_ARGS, "missing input");
	for (size_t i = 0; i < in->n_keys; i++) {
		if (!in->anchor_names[i])
			return fail (&c, VERIFY_EAT_ERR_ARGS, "key %zu has no anchor name", i);
	}
	if (in->nonce && (in->nonce_len < VERIFY_EAT_NONCE_MIN || in->nonce_len > VERIFY_EAT_NONCE_MAX))
		return fail (&c, VERIFY_EAT_ERR_ARGS, "expected nonce of %zu bytes (%d..%d)", in->nonce_len,
		             VERIFY_EAT_NONCE_MIN, VERIFY_EAT_NONCE_MAX);
	if (in->now < 0 || in->now > VERIFY_EAT_TIME_MAX || in->max_iat_age < 0 ||
	    in->max_iat_age > VERIFY_EAT_TIME_MAX)
		return fail (&c, VERIFY_EAT_ERR_ARGS, "now or max_iat_age out of range");
	if (in->len == 0 || in->len > VERIFY_EAT_TOKEN_MAX)
		return fail (&c, VERIFY_EAT_ERR_SIZE, "token of %zu bytes (1..%d)", in->len,
		             VERIFY_EAT_TOKEN_MAX);

	/* Nothing in the payload is looked at before the signature holds. */
	rv = cose_sign1_verify (in->token, in->len, COSE_ALLOW_CWT_TAG, in->keys, in->n_keys, NULL, 0,
	                        in->algs, in->n_algs, &msg, sub, sizeof sub);
	if (rv != COSE_OK) {
		int r = from_cose (rv);
		return fail (&c, r, "%s: %s", verify_eat_strerror (r), sub);
	}
	anchor = in->anchor_names[msg.key_index];

	payload = cose_cbor_load (msg.payload, msg.payload_len, sub, sizeof sub);
	if (!payload) {
		rv = fail (&c, VERIFY_EAT_ERR_PAYLOAD, "payload: %s", sub);
		goto out;
	}
	if (!cbor_isa_map (payload)) {
		rv = fail (&c, VERIFY_EAT_ERR_PAYLOAD, "payload is not a map");
		goto out;
	}
	c.claims = claim_set_new ();
	if (!c.claims) {
		rv = fail (&c, VERIFY_EAT_ERR_NO_MEMORY, "%s", verify_eat_strerror (VERIFY_EAT_ERR_NO_MEMORY));
		goto out;
	}
	rv = check_claims (&c, payload, "eat.", 0, &lv);
	if (rv != VERIFY_EAT_OK)
		goto out;

	if (!lv.has_iat) {
		rv = fail (&c, VERIFY_EAT_ERR_IAT_MISSING, "the token has no iat");
		goto out;
	}
	rv = check_time (&c, &lv, "token");
	if (rv != VERIFY_EAT_OK)
		goto out;
	if (in->max_iat_age > 0 && in->now - lv.iat > in->max_iat_age + (int64_t)in->skew) {
		rv = fail (&c, VERIFY_EAT_ERR_IAT_STALE, "iat %" PRId64 " is %" PRId64 " s old (at most %" PRId64 ")",
		           lv.iat, in->now - lv.iat, in->max_iat_age);
		goto out;
	}
	if (in->nonce) {
		if (!lv.nonce) {
			rv = fail (&c, VERIFY_EAT_ERR_NONCE_MISSING, "a nonce was expected; the token has none");
			goto out;
		}
		if (!nonce_matches (lv.nonce, in->nonce, in->nonce_len)) {
			rv = fail (&c, VERIFY_EAT_ERR_NONCE, "no eat_nonce equals the %zu-byte challenge",
			           in->nonce_len);
			goto out;
		}
	}
	if (in->profile) {
		if (!lv.has_profile) {
			rv = fail (&c, VERIFY_EAT_ERR_PROFILE, "no eat_profile (expected %s)", in->profile);
			goto out;
		}
		if (strcmp (lv.profile, in->profile) != 0) {
			rv = fail (&c, VERIFY_EAT_ERR_PROFILE, "eat_profile is not %s", in->profile);
			goto out;
		}
	}

	rv = add_string (&c, "evidence.", "format", "eat", 3);
	if (rv == VERIFY_EAT_OK)
		rv = add_string (&c, "evidence.", "anchor", anchor, strlen (anchor));
	if (rv == VERIFY_EAT_OK)
		rv = copy_claims (&c, c.claims, out);
	if (rv != VERIFY_EAT_OK)
		goto out;
	if (key_index)
		*key_index = msg.key_index;
	if (nonce_matched)
		*nonce_matched = in->nonce != NULL;
	set_err (err, errlen, "ok");
out:
	claim_set_free (c.claims);
	if (payload)
		cbor_decref (&payload);
	cose_sign1_clear (&msg);
	return rv;
}
