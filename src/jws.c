/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "jws.h"
#include "util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
jws_strerror (int rv)
{
	switch (rv) {
	case JWS_OK: return "ok";
	case JWS_ERR_ARGS: return "invalid arguments";
	case JWS_ERR_SIZE: return "token size out of range";
	case JWS_ERR_FORMAT: return "not a compact JWS (header.payload.signature)";
	case JWS_ERR_BASE64: return "invalid base64url";
	case JWS_ERR_HEADER_JSON: return "protected header is not one JSON object";
	case JWS_ERR_HEADER: return "bad header parameter";
	case JWS_ERR_CRIT: return "critical header parameters not supported";
	case JWS_ERR_ALG_MISSING: return "no alg in the header";
	case JWS_ERR_ALG_NONE: return "unsigned token (alg none) refused";
	case JWS_ERR_ALG_HMAC: return "HMAC token refused";
	case JWS_ERR_ALG_RSA: return "RSA token refused (ES256 and ES384 only)";
	case JWS_ERR_ALG_UNSUPPORTED: return "alg not supported (ES256 and ES384 only)";
	case JWS_ERR_NO_KEY: return "no pinned key for the token's kid";
	case JWS_ERR_KEY_MISMATCH: return "pinned key does not fit the token's alg";
	case JWS_ERR_SIG_LENGTH: return "signature of the wrong length for the alg";
	case JWS_ERR_SIGNATURE: return "signature does not verify";
	case JWS_ERR_NO_MEMORY: return "out of memory";
	case JWS_ERR_CRYPTO: return "cryptographic library failure";
	}
	return "unknown error";
}

const char *
jws_alg_name (enum jws_alg alg)
{
	switch (alg) {
	case JWS_ALG_ES256: return "ES256";
	case JWS_ALG_ES384: return "ES384";
	}
	return NULL;
}

void
jws_result_clear (struct jws_result *r)
{
	if (!r)
		return;
	free (r->payload);
	free (r->kid);
	memset (r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- base64url */

static int
b64url_value (unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* One text, one byte string: spare bits must be zero, or "AB" and "AC"
 * would decode alike and a token could be altered without touching its
 * signature's meaning. */
bool
jws_base64url_decode (const char *in, size_t len, unsigned char *out, size_t *out_len)
{
	uint32_t acc = 0;
	size_t o = 0;
	unsigned int bits = 0;

	if (!in || !out || !out_len || len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value ((unsigned char)in[i]);
		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return false;
	*out_len = o;
	return true;
}

/* ---------------------------------------------------------------- strict JSON */

/*
 * One pass over the text before json-c builds the tree: the RFC 8259
 * grammar, the caps, member names decoded and compared per object.  json-c
 * then parses a document known to be well formed, so it cannot silently
 * read it differently (last duplicate wins, a name cut at \u0000, an
 * integer saturated).
 */
struct jframe {
	bool is_obj;
	size_t keys_begin;
	size_t arena_begin;
};

struct jkey {
	size_t off, len;
};

struct jscan {
	const unsigned char *t;
	size_t len, pos;
	struct jframe st[JWS_JSON_MAX_DEPTH];
	size_t depth;
	unsigned char *arena;  /* decoded names of the open objects */
	size_t arena_used;
	struct jkey keys[JWS_JSON_MAX_DEPTH * JWS_JSON_MAX_MEMBERS];
	size_t n_keys;
	size_t err_pos;
	const char *msg;
};

static bool
jfail (struct jscan *sc, size_t pos, const char *msg)
{
	sc->err_pos = pos;
	sc->msg = msg;
	return false;
}


static long
jhex4 (const struct jscan *sc, size_t pos)
{
	long v = 0;
	if (pos > sc->len || sc->len - pos < 4)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		unsigned char c = sc->t[pos + i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		                                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static size_t
put_utf8 (unsigned char *out, long cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The string at sc->pos (its opening quote), decoded into @out when that
 * is not NULL; decoding never makes it longer than its text. */
static bool
jstring (struct jscan *sc, unsigned char *out, size_t *out_len)
{
	size_t start = sc->pos, o = 0;

	sc->pos++;
	for (;;) {
		unsigned char c;
		long cp;
		size_t k;
		if (sc->pos >= sc->len)
			return jfail (sc, start, "unterminated string");
		c = sc->t[sc->pos];
		if (c == '"') {
			sc->pos++;
			break;
		}
		if (c < 0x20)
			return jfail (sc, sc->pos, "control character in a string");
		if (c != '\\') {
			k = util_utf8_seq (sc->t + sc->pos, sc->len - sc->pos);
			if (k == 0)
				return jfail (sc, sc->pos, "invalid UTF-8");
			if (out)
				memcpy (out + o, sc->t + sc->pos, k);
			o += k;
			sc->pos += k;
			continue;
		}
		if (sc->pos + 1 >= sc->len)
			return jfail (sc, start, "unterminated string");
		c = sc->t[sc->pos + 1];
		if (c != 'u') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *e = memchr (from, c, sizeof from - 1);
			if (!e)
				return jfail (sc, sc->pos, "invalid escape in a string");
			if (out)
				out[o] = (unsigned char)to[e - from];
			o++;
			sc->pos += 2;
			continue;
		}
		cp = jhex4 (sc, sc->pos + 2);
		if (cp < 0)
			return jfail (sc, sc->pos, "invalid \\u escape");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			long lo = -1;
			if (sc->pos + 7 < sc->len && sc->t[sc->pos + 6] == '\\' && sc->t[sc->pos + 7] == 'u')
				lo = jhex4 (sc, sc->pos + 8);
			if (lo < 0xdc00 || lo > 0xdfff)
				return jfail (sc, sc->pos, "unpaired UTF-16 surrogate");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			sc->pos += 6;
		} else if (cp >= 0xdc00 && cp <= 0xdfff) {
			return jfail (sc, sc->pos, "unpaired UTF-16 surrogate");
		}
		/* json-c cuts a member name at NUL, and a claim never holds one. */
		if (cp == 0)
			return jfail (sc, sc->pos, "\\u0000 in a string");
		sc->pos += 6;
		if (out)
			o += put_utf8 (out + o, cp);
		else
			o += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	}
	if (out_len)
		*out_len = o;
	return true;
}

static bool
jdelim (const struct jscan *sc)
{
	unsigned char c;
	if (sc->pos >= sc->len)
		return true;
	c = sc->t[sc->pos];
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ']' || c == '}';
}

static bool
jdigit (unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
jnumber (struct jscan *sc)
{
	size_t start = sc->pos;
	bool neg = false, integer = true, overflow = false;
	uint64_t v = 0, limit;

	if (sc->t[sc->pos] == '-') {
		neg = true;
		sc->pos++;
	}
	if (sc->pos >= sc->len || !jdigit (sc->t[sc->pos]))
		return jfail (sc, start, "invalid number");
	if (sc->t[sc->pos] == '0' && sc->pos + 1 < sc->len && jdigit (sc->t[sc->pos + 1]))
		return jfail (sc, start, "number with a leading zero");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; sc->pos < sc->len && jdigit (sc->t[sc->pos]); sc->pos++) {
		unsigned int d = (unsigned int)(sc->t[sc->pos] - '0');
		if (v > (limit - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	if (sc->pos < sc->len && sc->t[sc->pos] == '.') {
		integer = false;
		sc->pos++;
		if (sc->pos >= sc->len || !jdigit (sc->t[sc->pos]))
			return jfail (sc, start, "invalid number");
		while (sc->pos < sc->len && jdigit (sc->t[sc->pos]))
			sc->pos++;
	}
	if (sc->pos < sc->len && (sc->t[sc->pos] == 'e' || sc->t[sc->pos] == 'E')) {
		integer = false;
		sc->pos++;
		if (sc->pos < sc->len && (sc->t[sc->pos] == '+' || sc->t[sc->pos] == '-'))
			sc->pos++;
		if (sc->pos >= sc->len || !jdigit (sc->t[sc->pos]))
			return jfail (sc, start, "invalid number");
		while (sc->pos < sc->len && jdigit (sc->t[sc->pos]))
			sc->pos++;
	}
	/* A fraction is a double to json-c and never an integer claim; an
	 * integer json-c would clamp to INT64_MAX is refused here. */
	if (integer && overflow)
		return jfail (sc, start, "integer outside the 64-bit range");
	if (!jdelim (sc))
		return jfail (sc, start, "invalid number");
	return true;
}

static bool
jliteral (struct jscan *sc)
{
	static const char *const words[] = { "true", "false", "null" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		size_t n = strlen (words[i]);
		if (sc->len - sc->pos >= n && !memcmp (sc->t + sc->pos, words[i], n)) {
			sc->pos += n;
			if (jdelim (sc))
				return true;
			sc->pos -= n;
			break;
		}
	}
	return jfail (sc, sc->pos, "unexpected word");
}

static bool
jkey (struct jscan *sc)
{
	struct jframe *f = &sc->st[sc->depth - 1];
	size_t start = sc->pos, off = sc->arena_used, n;

	if (!jstring (sc, sc->arena + off, &n))
		return false;
	for (size_t i = f->keys_begin; i < sc->n_keys; i++) {
		if (sc->keys[i].len == n && !memcmp (sc->arena + sc->keys[i].off, sc->arena + off, n))
			return jfail (sc, start, "duplicate member name");
	}
	if (sc->n_keys - f->keys_begin >= JWS_JSON_MAX_MEMBERS)
		return jfail (sc, start, "too many members in one object");
	sc->keys[sc->n_keys].off = off;
	sc->keys[sc->n_keys].len = n;
	sc->n_keys++;
	sc->arena_used += n;
	return true;
}

static bool
jscan (struct jscan *sc)
{
	enum { E_VALUE, E_VALUE_OR_END, E_KEY, E_KEY_OR_END, E_COLON, E_COMMA_OR_END, E_DONE } e = E_VALUE;

	if (sc->len >= 3 && !memcmp (sc->t, "\xef\xbb\xbf", 3))
		return jfail (sc, 0, "byte-order mark");
	for (;;) {
		struct jframe *f;
		unsigned char c;

		while (sc->pos < sc->len && (sc->t[sc->pos] == ' ' || sc->t[sc->pos] == '\t' ||
		                             sc->t[sc->pos] == '\r' || sc->t[sc->pos] == '\n'))
			sc->pos++;
		if (sc->pos >= sc->len)
			return e == E_DONE ? true : jfail (sc, sc->pos, "unexpected end");
		c = sc->t[sc->pos];
		f = sc->depth ? &sc->st[sc->depth - 1] : NULL;
		switch (e) {
		case E_DONE:
			return jfail (sc, sc->pos, "text after the end");
		case E_COLON:
			if (c != ':')
				return jfail (sc, sc->pos, "expected ':'");
			sc->pos++;
			e = E_VALUE;
			continue;
		case E_KEY_OR_END:
			if (c == '}')
				goto close;
			/* fall through */
		case E_KEY:
			if (c != '"')
				return jfail (sc, sc->pos, "expected a member name");
			if (!jkey (sc))
				return false;
			e = E_COLON;
			continue;
		case E_COMMA_OR_END:
			if (c == ',') {
				sc->pos++;
				e = f->is_obj ? E_KEY : E_VALUE;
				continue;
			}
			if (c == (f->is_obj ? '}' : ']'))
				goto close;
			return jfail (sc, sc->pos, "expected ',' or the end of a container");
		case E_VALUE_OR_END:
			if (c == ']')
				goto close;
			/* fall through */
		case E_VALUE:
			if (c == '{' || c == '[') {
				struct jframe *n;
				if (sc->depth >= JWS_JSON_MAX_DEPTH)
					return jfail (sc, sc->pos, "nested too deep");
				n = &sc->st[sc->depth++];
				n->is_obj = c == '{';
				n->keys_begin = sc->n_keys;
				n->arena_begin = sc->arena_used;
				sc->pos++;
				e = c == '{' ? E_KEY_OR_END : E_VALUE_OR_END;
				continue;
			}
			if (c == '"') {
				if (!jstring (sc, NULL, NULL))
					return false;
			} else if (c == '-' || jdigit (c)) {
				if (!jnumber (sc))
					return false;
			} else if (c >= 'a' && c <= 'z') {
				if (!jliteral (sc))
					return false;
			} else {
				return jfail (sc, sc->pos, "expected a value");
			}
			e = sc->depth ? E_COMMA_OR_END : E_DONE;
			continue;
		}
		continue;
	close:
		sc->n_keys = f->keys_begin;
		sc->arena_used = f->arena_begin;
		sc->depth--;
		sc->pos++;
		e = sc->depth ? E_COMMA_OR_END : E_DONE;
	}
}

json_object *
jws_json_parse (const unsigned char *text, size_t len, char *err, size_t errlen)
{
	struct jscan *sc = NULL;
	struct json_tokener *tok = NULL;
	json_object *root = NULL;

	set_err (err, errlen, "ok");
	if (!text || len == 0 || len > JWS_MAX_SIZE) {
		set_err (err, errlen, "JSON of %zu bytes (1..%d)", len, JWS_MAX_SIZE);
		return NULL;
	}
	sc = calloc (1, sizeof *sc);
	if (sc)
		sc->arena = malloc (len + 1);
	if (!sc || !sc->arena) {
		set_err (err, errlen, "out of memory");
		goto out;
	}
	sc->t = text;
	sc->len = len;
	if (!jscan (sc)) {
		set_err (err, errlen, "JSON: %s at offset %zu", sc->msg, sc->err_pos);
		goto out;
	}
	/* One level more than the scanner's cap: json-c counts the value
	 * inside the innermost container as a level. */
	tok = json_tokener_new_ex (JWS_JSON_MAX_DEPTH + 1);
	if (!tok) {
		set_err (err, errlen, "out of memory");
		goto out;
	}
	json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* With the NUL: a number at the very end is otherwise "to be
	 * continued" for json-c.  The arena is free again by now. */
	memcpy (sc->arena, text, len);
	sc->arena[len] = '\0';
	root = json_tokener_parse_ex (tok, (const char *)sc->arena, (int)len + 1);
	if (!root || json_tokener_get_error (tok) != json_tokener_success) {
		set_err (err, errlen, "JSON not accepted (%s)",
		         json_tokener_error_desc (json_tokener_get_error (tok)));
		json_object_put (root);
		root = NULL;
	}
out:
	/* json-c 0.16 dereferences a NULL tokener. */
	if (tok)
		json_tokener_free (tok);
	if (sc)
		free (sc->arena);
	free (sc);
	return root;
}

/* ---------------------------------------------------------------- JWS */

/* The alg, or the specific refusal: an attacker's first move is to name
 * an alg that needs no private key, so each is told apart in the log. */
static int
parse_alg (const char *s, enum jws_alg *alg)
{
	if (!strcmp (s, "ES256")) {
		*alg = JWS_ALG_ES256;
		return JWS_OK;
	}
	if (!strcmp (s, "ES384")) {
		*alg = JWS_ALG_ES384;
		return JWS_OK;
	}
	if (!strcmp (s, "none"))
		return JWS_ERR_ALG_NONE;
	if (!strncmp (s, "HS", 2))
		return JWS_ERR_ALG_HMAC;
	if (!strncmp (s, "RS", 2) || !strncmp (s, "PS", 2))
		return JWS_ERR_ALG_RSA;
	return JWS_ERR_ALG_UNSUPPORTED;
}

static int
parse_header (const unsigned char *text, size_t len, enum jws_alg *alg, char **kid,
              size_t *kid_len, char *err, size_t errlen)
{
	char jerr[128];
	json_object *h = jws_json_parse (text, len, jerr, sizeof jerr), *v;
	const char *s;
	int rv;

	if (!h || !json_object_is_type (h, json_type_object)) {
		set_err (err, errlen, "protected header: %s", h ? "not a JSON object" : jerr);
		rv = JWS_ERR_HEADER_JSON;
		goto out;
	}
	/* crit names extensions the receiver must understand; this code
	 * understands none.  An empty list asks for nothing. */
	if (json_object_object_get_ex (h, "crit", &v)) {
		if (!json_object_is_type (v, json_type_array) || json_object_array_length (v) != 0) {
			set_err (err, errlen, "crit present: %.64s", json_object_to_json_string (v));
			rv = JWS_ERR_CRIT;
			goto out;
		}
	}
	/* b64 false (RFC 7797) changes what is signed; it needs crit, which
	 * is refused, but a header naming it at all is not one of ours. */
	if (json_object_object_get_ex (h, "b64", NULL)) {
		set_err (err, errlen, "b64 header parameter (RFC 7797) not supported");
		rv = JWS_ERR_HEADER;
		goto out;
	}
	if (!json_object_object_get_ex (h, "alg", &v)) {
		set_err (err, errlen, "no alg in the protected header");
		rv = JWS_ERR_ALG_MISSING;
		goto out;
	}
	if (!json_object_is_type (v, json_type_string)) {
		set_err (err, errlen, "alg is not a string");
		rv = JWS_ERR_HEADER;
		goto out;
	}
	s = json_object_get_string (v);
	rv = parse_alg (s, alg);
	if (rv != JWS_OK) {
		set_err (err, errlen, "alg \"%.32s\": %s", s, jws_strerror (rv));
		goto out;
	}
	if (json_object_object_get_ex (h, "kid", &v)) {
		size_t n;
		if (!json_object_is_type (v, json_type_string) ||
		    (n = (size_t)json_object_get_string_len (v)) == 0 || n > JWS_KID_MAX) {
			set_err (err, errlen, "kid is not a string of 1..%d bytes", JWS_KID_MAX);
			rv = JWS_ERR_HEADER;
			goto out;
		}
		*kid = malloc (n + 1);
		if (!*kid) {
			rv = JWS_ERR_NO_MEMORY;
			set_err (err, errlen, "%s", jws_strerror (rv));
			goto out;
		}
		memcpy (*kid, json_object_get_string (v), n + 1);
		*kid_len = n;
	}
	rv = JWS_OK;
out:
	json_object_put (h);
	return rv;
}

/* Is @pk an EC key on the curve @alg signs with? */
static bool
key_fits (EVP_PKEY *pk, enum jws_alg alg)
{
	char group[64];
	size_t glen = 0;
	int nid;

	if (!pk || !EVP_PKEY_is_a (pk, "EC"))
		return false;
	if (EVP_PKEY_get_group_name (pk, group, sizeof group, &glen) != 1)
		return false;
	nid = OBJ_sn2nid (group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid (group);
	return alg == JWS_ALG_ES256 ? nid == NID_X9_62_prime256v1 : nid == NID_secp384r1;
}

/* As in cose.c: a token naming a kid is checked only under keys with that
 * kid or none; a token without one under every key.  The kid is a hint
 * for choosing keys, never a reason to trust one: all are pinned. */
static bool
kid_matches (const struct cose_key *k, const char *kid, size_t kid_len)
{
	if (!kid || !k->kid || k->kid_len == 0)
		return true;
	return k->kid_len == kid_len && !memcmp (k->kid, kid, kid_len);
}

static int
verify_with (EVP_PKEY *pk, enum jws_alg alg, const unsigned char *der, size_t der_len,
             const char *input, size_t input_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	int rv = JWS_ERR_CRYPTO, ok;

	if (!ctx)
		return JWS_ERR_NO_MEMORY;
	if (EVP_DigestVerifyInit (ctx, NULL, alg == JWS_ALG_ES256 ? EVP_sha256 () : EVP_sha384 (),
	                          NULL, pk) != 1)
		goto out;
	ok = EVP_DigestVerify (ctx, der, der_len, (const unsigned char *)input, input_len);
	rv = ok == 1 ? JWS_OK : JWS_ERR_SIGNATURE;
out:
	/* A bad signature leaves OpenSSL errors queued; they are not news. */
	ERR_clear_error ();
	EVP_MD_CTX_free (ctx);
	return rv;
}

int
jws_verify (const char *token, size_t len, const struct cose_key *keys, size_t n_keys,
            struct jws_result *out, char *err, size_t errlen)
{
	const char *dot1, *dot2, *p;
	unsigned char *header = NULL, sig[96], der[128];
	size_t hlen_b64, plen_b64, slen_b64, header_len = 0, sig_len = 0, der_len, half;
	size_t n_kid = 0, n_fit = 0;
	int rv;

	set_err (err, errlen, "ok");
	if (out)
		memset (out, 0, sizeof *out);
	if (!token || !out || (n_keys && !keys)) {
		set_err (err, errlen, "missing input");
		return JWS_ERR_ARGS;
	}
	if (len == 0 || len > JWS_MAX_SIZE) {
		set_err (err, errlen, "token of %zu bytes (1..%d)", len, JWS_MAX_SIZE);
		return JWS_ERR_SIZE;
	}
	dot1 = memchr (token, '.', len);
	dot2 = dot1 ? memchr (dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2) {
		set_err (err, errlen, "fewer than three dot-separated parts");
		return JWS_ERR_FORMAT;
	}
	p = dot2 + 1;
	if (memchr (p, '.', len - (size_t)(p - token))) {
		set_err (err, errlen, "more than three dot-separated parts (a JWE, or a JSON "
		         "serialization, is not accepted)");
		return JWS_ERR_FORMAT;
	}
	hlen_b64 = (size_t)(dot1 - token);
	plen_b64 = (size_t)(dot2 - dot1 - 1);
	slen_b64 = len - (size_t)(p - token);
	/* An empty signature is left to the alg check: "none" tokens have
	 * one, and deserve their own refusal. */
	if (hlen_b64 == 0 || plen_b64 == 0) {
		set_err (err, errlen, "empty %s part", hlen_b64 == 0 ? "header"
		         : "payload (detached content is not supported)");
		return JWS_ERR_FORMAT;
	}
	if (hlen_b64 > JWS_HEADER_MAX / 3 * 4 + 4) {
		set_err (err, errlen, "protected header over %d bytes", JWS_HEADER_MAX);
		return JWS_ERR_HEADER_JSON;
	}

	header = malloc (hlen_b64);
	out->payload = malloc (plen_b64 + 1);
	if (!header || !out->payload) {
		rv = JWS_ERR_NO_MEMORY;
		set_err (err, errlen, "%s", jws_strerror (rv));
		goto out;
	}
	if (!jws_base64url_decode (token, hlen_b64, header, &header_len)) {
		rv = JWS_ERR_BASE64;
		set_err (err, errlen, "header part is not strict base64url");
		goto out;
	}
	rv = parse_header (header, header_len, &out->alg, &out->kid, &out->kid_len, err, errlen);
	if (rv != JWS_OK)
		goto out;
	if (!jws_base64url_decode (dot1 + 1, plen_b64, out->payload, &out->payload_len)) {
		rv = JWS_ERR_BASE64;
		set_err (err, errlen, "payload part is not strict base64url");
		goto out;
	}
	out->payload[out->payload_len] = '\0';
	/* Both ES256 and ES384 signatures fit in 128 base64url characters;
	 * a longer one is decoded no further. */
	if (slen_b64 > 128) {
		rv = JWS_ERR_SIG_LENGTH;
		set_err (err, errlen, "signature of %zu base64url characters", slen_b64);
		goto out;
	}
	if (!jws_base64url_decode (p, slen_b64, sig, &sig_len)) {
		rv = JWS_ERR_BASE64;
		set_err (err, errlen, "signature part is not strict base64url");
		goto out;
	}

	half = out->alg == JWS_ALG_ES256 ? 32 : 48;
	if (sig_len != 2 * half) {
		rv = JWS_ERR_SIG_LENGTH;
		set_err (err, errlen, "%s signature of %zu bytes (must be %zu)", jws_alg_name (out->alg),
		         sig_len, 2 * half);
		goto out;
	}
	der_len = cose_ecdsa_raw_to_der (sig, half, der, sizeof der);
	if (der_len == 0) {
		rv = JWS_ERR_CRYPTO;
		set_err (err, errlen, "cannot convert the signature to DER");
		goto out;
	}

	rv = JWS_ERR_SIGNATURE;
	for (size_t i = 0; i < n_keys; i++) {
		int r;
		if (!kid_matches (&keys[i], out->kid, out->kid_len))
			continue;
		n_kid++;
		if (!key_fits (keys[i].pkey, out->alg))
			continue;
		n_fit++;
		r = verify_with (keys[i].pkey, out->alg, der, der_len, token, (size_t)(dot2 - token));
		if (r == JWS_OK) {
			out->key_index = i;
			rv = JWS_OK;
			break;
		}
		if (r != JWS_ERR_SIGNATURE) {
			rv = r;
			break;
		}
	}
	if (rv == JWS_OK)
		goto out;
	if (n_kid == 0) {
		rv = JWS_ERR_NO_KEY;
		set_err (err, errlen, "no pinned key for kid \"%.64s\"", out->kid ? out->kid : "");
	} else if (n_fit == 0) {
		rv = JWS_ERR_KEY_MISMATCH;
		set_err (err, errlen, "%zu pinned key(s) for this token, none on the curve of %s", n_kid,
		         jws_alg_name (out->alg));
	} else {
		set_err (err, errlen, "%s (%zu key(s) tried)", jws_strerror (rv), n_fit);
	}
out:
	free (header);
	if (rv != JWS_OK)
		jws_result_clear (out);
	return rv;
}
