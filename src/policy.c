/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "util.h"
#include "policy.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ELEMENTS(a) (sizeof (a) / sizeof (a)[0])

/* An "in" list and an anchor list are checked for repeats pairwise: cap
 * them so that a 64 KiB document cannot make loading quadratic in its
 * size. */
#define POLICY_MAX_IN_VALUES 1024
#define POLICY_MAX_ANCHORS 32

enum rule_kind { RULE_ANY_OF, RULE_ALL_OF, RULE_EVIDENCE };
enum pred_op { OP_EQUALS, OP_IN, OP_GTE, OP_LTE, OP_PRESENT };

static const char *const op_keys[] = { "equals", "in", "gte", "lte", "present" };

/* Evidence formats a rule can name, and the namespace of their claims. */
static const struct {
	const char *name;
	const char *ns;
} formats[] = {
	{ "tpm2-quote", "tpm." },
	{ "eat", "eat." },
	{ "ear", "ear." },
};

static const char *const op_names[POLICY_OP_COUNT] = {
	"decrypt", "unwrap", "derive", "wrap", "raw-sign", "read-secret", "digest-key", "encrypt", "sign",
};
#define RELEASE_OPS 0x7fu /* bits of the first seven: every policy gates them */

struct predicate {
	char *path;                  /* "$.rule.claims[0]", for reasons */
	char *claim;
	enum pred_op op;
	struct claim_value *values;  /* equals: 1; in: n; gte, lte: 1 integer; present: 0 */
	size_t n_values;
};

struct rule {
	enum rule_kind kind;
	char *path;
	size_t *children;            /* anyOf, allOf: indices into policy.rules */
	size_t n_children;
	size_t format;               /* evidence: index into formats[] */
	char **anchors;
	size_t n_anchors;
	size_t first_pred, n_preds;  /* evidence: its predicates in policy.preds */
};

struct policy {
	char *name;
	unsigned int max_age;
	bool nonce_required;
	unsigned int gates;          /* bit per enum policy_op */
	unsigned char digest[POLICY_DIGEST_LEN];
	struct rule rules[POLICY_MAX_RULES]; /* rules[0] is the root */
	size_t n_rules;
	struct predicate preds[POLICY_MAX_PREDICATES];
	size_t n_preds;
};

/* ---------------------------------------------------------------- paths */

/* A JSON path as messages print it: $.rule.anyOf[1].claims[0].equals */
struct path {
	char s[POLICY_PATH_MAX];
	size_t len;
	bool cut;
};

static void
path_init (struct path *p)
{
	p->s[0] = '$';
	p->s[1] = '\0';
	p->len = 1;
	p->cut = false;
}

static void
path_append (struct path *p, const char *text, size_t n)
{
	/* A path that does not fit ends in "..."; only hostile documents get
	 * there, since the depth is bounded and known keys are short. */
	if (p->cut)
		return;
	if (p->len + n + 4 > sizeof p->s) {
		memcpy (p->s + p->len, "...", 4);
		p->len += 3;
		p->cut = true;
		return;
	}
	memcpy (p->s + p->len, text, n);
	p->len += n;
	p->s[p->len] = '\0';
}

static bool
plain_key (const unsigned char *k, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-'))
			return false;
	}
	return true;
}

/* Other keys are printed as ['...'] with anything outside printable ASCII
 * escaped and at most 32 bytes shown: they come from untrusted text and
 * end up in logs. */
static size_t
path_push_key (struct path *p, const char *key, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *k = (const unsigned char *)key;
	size_t old = p->len;
	char buf[32 * 4 + 16];
	size_t o = 0;

	if (plain_key (k, n)) {
		path_append (p, ".", 1);
		path_append (p, key, n);
		return old;
	}
	buf[o++] = '[';
	buf[o++] = '\'';
	for (size_t i = 0; i < n && i < 32; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\'' && k[i] != '\\') {
			buf[o++] = (char)k[i];
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = digits[k[i] >> 4];
			buf[o++] = digits[k[i] & 0xf];
		}
	}
	if (n > 32) {
		memcpy (buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o++] = ']';
	path_append (p, buf, o);
	return old;
}

static size_t
path_push_index (struct path *p, size_t i)
{
	size_t old = p->len;
	char buf[32];
	int n = snprintf (buf, sizeof buf, "[%zu]", i);
	path_append (p, buf, (size_t)n);
	return old;
}

static void
path_pop (struct path *p, size_t old)
{
	p->len = old;
	p->s[old] = '\0';
	p->cut = false;
}

/* A string from a document or from evidence, quoted and escaped for a
 * message, at most POLICY_SHOW_MAX characters of it. */
static void
show_str (const char *s, size_t n, char *out, size_t outlen)
{
	struct claim_value v = { .type = CLAIM_STRING, .data = (unsigned char *)s, .len = n };
	claim_value_format (&v, POLICY_SHOW_MAX, out, outlen);
}

/* ---------------------------------------------------------------- pre-scan */

/*
 * json-c 0.16 has no option to refuse duplicate keys (it keeps the last
 * value), accepts what RFC 8259 does not (single quotes, leading zeros,
 * "1.", Infinity, NaN, raw control characters in strings), cuts a key at
 * an escaped NUL, and saturates integers that do not fit in 64 bits
 * instead of failing.  Each of these can make a policy mean something
 * other than what its author reads.  So before json-c sees the text, this
 * strict scanner walks it once: RFC 8259 grammar, depth and member caps,
 * keys decoded and compared per object, integers range-checked; it knows
 * where it is, so every refusal names a line, a column and a JSON path.
 * json-c then only builds the tree of a document already known to be
 * well formed.
 */
struct scan_frame {
	bool is_obj;
	bool have_key;     /* object: a key was read, its value is current */
	size_t index;      /* array: the current element */
	size_t key_off;    /* object: the current key in the arena */
	size_t key_len;
	size_t keys_begin; /* object: its first key in keys[] */
	size_t arena_begin;
};

struct scan_key {
	size_t off, len;
};

struct scan {
	const unsigned char *t;
	size_t len, pos;
	struct scan_frame st[POLICY_MAX_DEPTH];
	size_t depth;
	unsigned char *arena; /* decoded keys of the open objects; never longer
	                       * than the text, since decoding only shrinks */
	size_t arena_used;
	struct scan_key keys[POLICY_MAX_DEPTH * POLICY_MAX_MEMBERS];
	size_t n_keys;
	size_t err_pos;
	char msg[256];
};

static bool scan_fail (struct scan *sc, size_t pos, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static bool
scan_fail (struct scan *sc, size_t pos, const char *fmt, ...)
{
	va_list ap;
	sc->err_pos = pos;
	va_start (ap, fmt);
	vsnprintf (sc->msg, sizeof sc->msg, fmt, ap);
	va_end (ap);
	return false;
}

static void
scan_path (const struct scan *sc, struct path *p)
{
	path_init (p);
	for (size_t i = 0; i < sc->depth; i++) {
		const struct scan_frame *f = &sc->st[i];
		if (!f->is_obj)
			path_push_index (p, f->index);
		else if (f->have_key)
			path_push_key (p, (const char *)sc->arena + f->key_off, f->key_len);
	}
}

/* Four hex digits at @pos (after "\u"), or -1. */
static long
scan_hex4 (const struct scan *sc, size_t pos)
{
	long v = 0;
	if (pos > sc->len || sc->len - pos < 4)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		int d = util_hex_digit (sc->t[pos + i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A string at sc->pos (the opening quote); decoded into @out (room for
 * as many bytes as the string's text) when @out is not NULL. */
static bool
scan_string (struct scan *sc, unsigned char *out, size_t *out_len)
{
	size_t start = sc->pos, o = 0;

	sc->pos++;
	for (;;) {
		unsigned char c;
		long cp;
		if (sc->pos >= sc->len)
			return scan_fail (sc, start, "unterminated string");
		c = sc->t[sc->pos];
		if (c == '"') {
			sc->pos++;
			break;
		}
		if (c < 0x20)
			return scan_fail (sc, sc->pos, "control character in a string (write it as an "
			                  "escape)");
		if (c != '\\') {
			if (out)
				out[o++] = c;
			sc->pos++;
			continue;
		}
		if (sc->pos + 1 >= sc->len)
			return scan_fail (sc, start, "unterminated string");
		c = sc->t[sc->pos + 1];
		if (c != 'u') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *e = memchr (from, c, sizeof from - 1);
			if (!e)
				return scan_fail (sc, sc->pos, "invalid escape in a string");
			if (out)
				out[o++] = (unsigned char)to[e - from];
			sc->pos += 2;
			continue;
		}
		cp = scan_hex4 (sc, sc->pos + 2);
		if (cp < 0)
			return scan_fail (sc, sc->pos, "invalid \\u escape (four hex digits)");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			long lo = -1;
			if (sc->pos + 7 < sc->len && sc->t[sc->pos + 6] == '\\' && sc->t[sc->pos + 7] == 'u')
				lo = scan_hex4 (sc, sc->pos + 8);
			if (lo < 0xdc00 || lo > 0xdfff)
				return scan_fail (sc, sc->pos, "unpaired UTF-16 surrogate in a \\u escape");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			sc->pos += 6;
		} else if (cp >= 0xdc00 && cp <= 0xdfff) {
			return scan_fail (sc, sc->pos, "unpaired UTF-16 surrogate in a \\u escape");
		}
		if (cp == 0)
			return scan_fail (sc, sc->pos, "\\u0000 (NUL) is not allowed in a policy");
		sc->pos += 6;
		if (!out)
			continue;
		if (cp < 0x80) {
			out[o++] = (unsigned char)cp;
		} else if (cp < 0x800) {
			out[o++] = (unsigned char)(0xc0 | cp >> 6);
			out[o++] = (unsigned char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[o++] = (unsigned char)(0xe0 | cp >> 12);
			out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (unsigned char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (unsigned char)(0xf0 | cp >> 18);
			out[o++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
			out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (unsigned char)(0x80 | (cp & 0x3f));
		}
	}
	if (out_len)
		*out_len = o;
	return true;
}

static bool
delimiter (const struct scan *sc)
{
	if (sc->pos >= sc->len)
		return true;
	return strchr (" \t\r\n,]}", sc->t[sc->pos]) != NULL && sc->t[sc->pos] != '\0';
}

static bool
is_digit (unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 8259 numbers; a policy has only integers, and they fit in int64. */
static bool
scan_number (struct scan *sc)
{
	size_t start = sc->pos;
	bool neg = false;
	uint64_t v = 0, limit;

	if (sc->t[sc->pos] == '-') {
		neg = true;
		sc->pos++;
	}
	if (sc->pos >= sc->len || !is_digit (sc->t[sc->pos]))
		return scan_fail (sc, start, "invalid number");
	if (sc->t[sc->pos] == '0' && sc->pos + 1 < sc->len && is_digit (sc->t[sc->pos + 1]))
		return scan_fail (sc, start, "number with a leading zero");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; sc->pos < sc->len && is_digit (sc->t[sc->pos]); sc->pos++) {
		unsigned int d = (unsigned int)(sc->t[sc->pos] - '0');
		if (v > (limit - d) / 10)
			return scan_fail (sc, start, "integer out of range (a policy's integers are "
			                  "64-bit signed)");
		v = v * 10 + d;
	}
	if (sc->pos < sc->len && (sc->t[sc->pos] == '.' || sc->t[sc->pos] == 'e' ||
	                          sc->t[sc->pos] == 'E'))
		return scan_fail (sc, start, "numbers in a policy are integers (no fraction or "
		                  "exponent)");
	if (!delimiter (sc))
		return scan_fail (sc, start, "invalid number");
	return true;
}

static bool
scan_literal (struct scan *sc)
{
	static const char *const words[] = { "true", "false", "null" };
	for (size_t i = 0; i < N_ELEMENTS (words); i++) {
		size_t n = strlen (words[i]);
		if (sc->len - sc->pos >= n && !memcmp (sc->t + sc->pos, words[i], n)) {
			sc->pos += n;
			if (delimiter (sc))
				return true;
			sc->pos -= n;
			break;
		}
	}
	return scan_fail (sc, sc->pos, "unexpected word (values are strings in double quotes, "
	                  "integers, true, false, arrays or objects)");
}

/* A key of the innermost (object) frame: decoded, then compared with the
 * object's other keys. */
static bool
scan_key (struct scan *sc)
{
	struct scan_frame *f = &sc->st[sc->depth - 1];
	size_t start = sc->pos, off = sc->arena_used, n;

	if (!scan_string (sc, sc->arena + off, &n))
		return false;
	f->key_off = off;
	f->key_len = n;
	f->have_key = true;
	for (size_t i = f->keys_begin; i < sc->n_keys; i++) {
		if (sc->keys[i].len == n && !memcmp (sc->arena + sc->keys[i].off, sc->arena + off, n))
			return scan_fail (sc, start, "duplicate key (a JSON parser would silently keep "
			                  "only one of the values)");
	}
	if (sc->n_keys - f->keys_begin >= POLICY_MAX_MEMBERS)
		return scan_fail (sc, start, "more than %d members in one object", POLICY_MAX_MEMBERS);
	sc->keys[sc->n_keys].off = off;
	sc->keys[sc->n_keys].len = n;
	sc->n_keys++;
	sc->arena_used += n;
	return true;
}

static bool
prescan (struct scan *sc)
{
	enum { E_VALUE, E_VALUE_OR_END, E_KEY, E_KEY_OR_END, E_COLON, E_COMMA_OR_END, E_DONE } e = E_VALUE;

	if (sc->len >= 3 && !memcmp (sc->t, "\xef\xbb\xbf", 3))
		return scan_fail (sc, 0, "starts with a byte-order mark; save it as plain UTF-8");
	for (;;) {
		struct scan_frame *f;
		unsigned char c;

		while (sc->pos < sc->len && strchr (" \t\r\n", sc->t[sc->pos]) && sc->t[sc->pos])
			sc->pos++;
		if (sc->pos >= sc->len) {
			if (e == E_DONE)
				return true;
			return scan_fail (sc, sc->pos, "unexpected end of the document");
		}
		c = sc->t[sc->pos];
		f = sc->depth ? &sc->st[sc->depth - 1] : NULL;
		switch (e) {
		case E_DONE:
			return scan_fail (sc, sc->pos, "text after the end of the document");
		case E_COLON:
			if (c != ':')
				return scan_fail (sc, sc->pos, "expected ':' after the key");
			sc->pos++;
			e = E_VALUE;
			continue;
		case E_KEY_OR_END:
			if (c == '}')
				goto close;
			/* fall through */
		case E_KEY:
			if (c != '"')
				return scan_fail (sc, sc->pos, c == '}' ? "a comma before '}'" :
				                  "expected a key in double quotes");
			if (!scan_key (sc))
				return false;
			e = E_COLON;
			continue;
		case E_COMMA_OR_END:
			if (c == ',') {
				sc->pos++;
				if (f->is_obj) {
					f->have_key = false;
					e = E_KEY;
				} else {
					f->index++;
					e = E_VALUE;
				}
				continue;
			}
			if (c == (f->is_obj ? '}' : ']'))
				goto close;
			return scan_fail (sc, sc->pos, f->is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
		case E_VALUE_OR_END:
			if (c == ']')
				goto close;
			/* fall through */
		case E_VALUE:
			if (sc->depth == 0 && c != '{')
				return scan_fail (sc, sc->pos, "a policy is a JSON object ({...})");
			if (c == '{' || c == '[') {
				struct scan_frame *n;
				if (sc->depth >= POLICY_MAX_DEPTH)
					return scan_fail (sc, sc->pos, "nested deeper than %d arrays and objects",
					                  POLICY_MAX_DEPTH);
				n = &sc->st[sc->depth++];
				memset (n, 0, sizeof *n);
				n->is_obj = c == '{';
				n->keys_begin = sc->n_keys;
				n->arena_begin = sc->arena_used;
				sc->pos++;
				e = c == '{' ? E_KEY_OR_END : E_VALUE_OR_END;
				continue;
			}
			if (c == '"') {
				if (!scan_string (sc, NULL, NULL))
					return false;
			} else if (c == '-' || is_digit (c)) {
				if (!scan_number (sc))
					return false;
			} else if (c >= 'a' && c <= 'z') {
				if (!scan_literal (sc))
					return false;
			} else if (c == '\'') {
				return scan_fail (sc, sc->pos, "strings are written in double quotes");
			} else if (c == ']' || c == '}') {
				return scan_fail (sc, sc->pos, "expected a value (a comma before '%c'?)", c);
			} else {
				return scan_fail (sc, sc->pos, "unexpected character (expected a value)");
			}
			e = sc->depth ? E_COMMA_OR_END : E_DONE;
			continue;
		}
		continue;
	close:
		/* The object's keys are done with: its parent's stay. */
		sc->n_keys = f->keys_begin;
		sc->arena_used = f->arena_begin;
		sc->depth--;
		sc->pos++;
		e = sc->depth ? E_COMMA_OR_END : E_DONE;
	}
}


static void
line_col (const char *text, size_t pos, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < pos; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* ---------------------------------------------------------------- schema */

struct pctx {
	struct policy *p;
	const char *name;
	char *err;
	size_t errlen;
	struct path path;
};

static bool perr (struct pctx *c, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* "NAME: $.path: reason"; returns false for `return perr (...)`. */
static bool
perr (struct pctx *c, const char *fmt, ...)
{
	char msg[POLICY_REASON_MAX];
	va_list ap;
	va_start (ap, fmt);
	vsnprintf (msg, sizeof msg, fmt, ap);
	va_end (ap);
	if (c->errlen)
		snprintf (c->err, c->errlen, "%s: %s: %s", c->name, c->path.s, msg);
	return false;
}

static const char *
jtype (struct json_object *o)
{
	switch (json_object_get_type (o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "a value of unknown type";
}

static bool
in_list (const char *key, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp (key, list[i]))
			return true;
	}
	return false;
}

/* Every member of @obj is one of @allowed; the first that is not (in
 * document order: json-c keeps insertion order) is named. */
static bool
check_keys (struct pctx *c, struct json_object *obj, const char *const *allowed, size_t n,
            const char *what)
{
	struct json_object_iterator it = json_object_iter_begin (obj);
	struct json_object_iterator end = json_object_iter_end (obj);
	for (; !json_object_iter_equal (&it, &end); json_object_iter_next (&it)) {
		const char *key = json_object_iter_peek_name (&it);
		if (!in_list (key, allowed, n)) {
			char list[256];
			size_t o = 0;
			list[0] = '\0';
			for (size_t i = 0; i < n && o < sizeof list; i++)
				o += (size_t)snprintf (list + o, sizeof list - o, "%s%s", i ? ", " : "", allowed[i]);
			path_push_key (&c->path, key, strlen (key));
			return perr (c, "unknown key in %s (expected: %s)", what, list);
		}
	}
	return true;
}

/* Is @key a member of @obj?  Its value (NULL for a JSON null, which is
 * present: "max-age": null must not quietly mean the default) in *@v. */
static bool
member (struct json_object *obj, const char *key, struct json_object **v)
{
	*v = NULL;
	return json_object_object_get_ex (obj, key, v);
}

static bool
valid_anchor_name (const char *s, size_t n)
{
	if (n == 0 || n > POLICY_ANCHOR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* A value for claim @claim, checked against the registry's @info. */
static bool
parse_value (struct pctx *c, struct json_object *j, const char *claim, const struct claim_info *info,
             struct claim_value *out)
{
	const char *s;
	size_t n;

	memset (out, 0, sizeof *out);
	out->type = info->type;
	switch (info->type) {
	case CLAIM_INT:
		if (!json_object_is_type (j, json_type_int))
			return perr (c, "%s is an integer claim; this is %s", claim, jtype (j));
		out->i = json_object_get_int64 (j);
		return true;
	case CLAIM_BOOL:
		if (!json_object_is_type (j, json_type_boolean))
			return perr (c, "%s is a boolean claim; this is %s", claim, jtype (j));
		out->b = json_object_get_boolean (j);
		return true;
	case CLAIM_STRING:
		if (!json_object_is_type (j, json_type_string))
			return perr (c, "%s is a string claim; this is %s", claim, jtype (j));
		s = json_object_get_string (j);
		n = (size_t)json_object_get_string_len (j);
		if (n > CLAIM_VALUE_MAX)
			return perr (c, "string longer than %d bytes", CLAIM_VALUE_MAX);
		if (memchr (s, '\0', n))
			return perr (c, "string holds a NUL");
		if (info->values) {
			char list[128], shown[POLICY_SHOW_MAX * 4 + 16];
			size_t o = 0;
			bool ok = false;
			for (const char *const *v = info->values; *v; v++) {
				if (!strcmp (*v, s))
					ok = true;
				if (o < sizeof list)
					o += (size_t)snprintf (list + o, sizeof list - o, "%s%s",
					                       v == info->values ? "" : ", ", *v);
			}
			if (!ok) {
				show_str (s, n, shown, sizeof shown);
				return perr (c, "%s is one of %s; %s is not", claim, list, shown);
			}
		}
		out->data = malloc (n + 1);
		if (!out->data)
			return perr (c, "out of memory");
		memcpy (out->data, s, n + 1);
		out->len = n;
		return true;
	case CLAIM_BYTES:
		if (!json_object_is_type (j, json_type_string))
			return perr (c, "%s holds bytes, written as a hex string; this is %s", claim, jtype (j));
		s = json_object_get_string (j);
		n = (size_t)json_object_get_string_len (j);
		if (n == 0)
			return perr (c, "empty hex string");
		if (n % 2)
			return perr (c, "hex string of odd length %zu", n);
		if (n > 2 * CLAIM_VALUE_MAX)
			return perr (c, "hex string longer than %d bytes", CLAIM_VALUE_MAX);
		for (size_t i = 0; i < n; i++) {
			if (util_hex_digit ((unsigned char)s[i]) < 0)
				return perr (c, "not a hex string: character %zu is not 0-9, a-f or A-F", i + 1);
		}
		if (info->fixed_len && n / 2 != info->fixed_len)
			return perr (c, "%s is %zu bytes (%zu hex digits); this value is %zu bytes", claim,
			             info->fixed_len, 2 * info->fixed_len, n / 2);
		out->data = malloc (n / 2 + 1);
		if (!out->data)
			return perr (c, "out of memory");
		for (size_t i = 0; i < n / 2; i++)
			out->data[i] = (unsigned char)(util_hex_digit ((unsigned char)s[2 * i]) << 4 |
			                               util_hex_digit ((unsigned char)s[2 * i + 1]));
		out->data[n / 2] = '\0';
		out->len = n / 2;
		return true;
	case CLAIM_UNKNOWN:
		break;
	}
	return perr (c, "internal error: claim %s has no type", claim);
}

static bool
parse_predicate (struct pctx *c, struct json_object *o, size_t format)
{
	static const char *const keys[] = { "claim", "equals", "in", "gte", "lte", "present" };
	struct policy *p = c->p;
	struct predicate *pr;
	struct claim_info info;
	struct json_object *jc, *arg = NULL;
	const char *name, *ns = formats[format].ns;
	char shown[POLICY_SHOW_MAX * 4 + 16];
	size_t n_ops = 0, op = 0, mark;

	if (!json_object_is_type (o, json_type_object))
		return perr (c, "a predicate is an object {\"claim\": NAME, OPERATOR: VALUE}, not %s",
		             jtype (o));
	if (p->n_preds >= POLICY_MAX_PREDICATES)
		return perr (c, "more than %d predicates in the policy", POLICY_MAX_PREDICATES);
	if (!check_keys (c, o, keys, N_ELEMENTS (keys), "a predicate"))
		return false;
	pr = &p->preds[p->n_preds++];
	if (!(pr->path = strdup (c->path.s)))
		return perr (c, "out of memory");

	if (!member (o, "claim", &jc))
		return perr (c, "'claim' is required (the name of a claim)");
	mark = path_push_key (&c->path, "claim", 5);
	if (!json_object_is_type (jc, json_type_string))
		return perr (c, "a claim name is a string, not %s", jtype (jc));
	name = json_object_get_string (jc);
	show_str (name, (size_t)json_object_get_string_len (jc), shown, sizeof shown);
	if (!claims_lookup_name (name, &info))
		return perr (c, "unknown claim %s (p11-warden-policy(5) lists the claims)", shown);
	if (strncmp (name, ns, strlen (ns)) != 0 && strncmp (name, "evidence.", 9) != 0)
		return perr (c, "a rule of format %s can name only %s* and evidence.* claims, not %s",
		             formats[format].name, ns, shown);
	if (!(pr->claim = strdup (name)))
		return perr (c, "out of memory");
	path_pop (&c->path, mark);

	for (size_t i = 0; i < N_ELEMENTS (op_keys); i++) {
		struct json_object *v;
		if (!member (o, op_keys[i], &v))
			continue;
		if (n_ops++ == 0) {
			op = i;
			arg = v;
		} else {
			return perr (c, "more than one operator ('%s' and '%s'); a predicate has exactly "
			             "one (write two predicates)", op_keys[op], op_keys[i]);
		}
	}
	if (!n_ops)
		return perr (c, "no operator: one of equals, in, gte, lte, present");
	pr->op = (enum pred_op)op;
	mark = path_push_key (&c->path, op_keys[op], strlen (op_keys[op]));
	switch (pr->op) {
	case OP_EQUALS:
		if (!(pr->values = calloc (1, sizeof *pr->values)))
			return perr (c, "out of memory");
		pr->n_values = 1;
		if (!parse_value (c, arg, pr->claim, &info, &pr->values[0]))
			return false;
		break;
	case OP_IN: {
		size_t n;
		if (!json_object_is_type (arg, json_type_array))
			return perr (c, "'in' takes an array of values, not %s", jtype (arg));
		n = json_object_array_length (arg);
		if (n == 0)
			return perr (c, "'in' needs at least one value");
		if (n > POLICY_MAX_IN_VALUES)
			return perr (c, "'in' has more than %d values", POLICY_MAX_IN_VALUES);
		if (!(pr->values = calloc (n, sizeof *pr->values)))
			return perr (c, "out of memory");
		pr->n_values = n;
		for (size_t i = 0; i < n; i++) {
			size_t m = path_push_index (&c->path, i);
			if (!parse_value (c, json_object_array_get_idx (arg, i), pr->claim, &info,
			                  &pr->values[i]))
				return false;
			/* A repeat is harmless, but it is a mistake (two spellings of
			 * one digest, say), and the author meant something else. */
			for (size_t k = 0; k < i; k++) {
				if (claim_value_equal (&pr->values[k], &pr->values[i]))
					return perr (c, "repeats value [%zu]%s", k,
					             info.type == CLAIM_BYTES ? " (hex compares regardless of case)"
					                                      : "");
			}
			path_pop (&c->path, m);
		}
		break;
	}
	case OP_GTE:
	case OP_LTE:
		if (info.type != CLAIM_INT)
			return perr (c, "'%s' compares integers; %s is %s", op_keys[op], pr->claim,
			             claim_type_name (info.type));
		if (!json_object_is_type (arg, json_type_int))
			return perr (c, "'%s' takes an integer, not %s", op_keys[op], jtype (arg));
		if (!(pr->values = calloc (1, sizeof *pr->values)))
			return perr (c, "out of memory");
		pr->n_values = 1;
		pr->values[0].type = CLAIM_INT;
		pr->values[0].i = json_object_get_int64 (arg);
		break;
	case OP_PRESENT:
		if (!json_object_is_type (arg, json_type_boolean))
			return perr (c, "'present' takes true, not %s", jtype (arg));
		/* Requiring a claim's absence would pass on evidence that merely
		 * failed to mention it: not a property worth releasing a key on. */
		if (!json_object_get_boolean (arg))
			return perr (c, "'present' takes only true (a policy cannot require a claim's "
			             "absence)");
		break;
	}
	path_pop (&c->path, mark);
	return true;
}

static bool parse_rule (struct pctx *c, struct json_object *o, size_t *index);

static bool
parse_evidence (struct pctx *c, struct json_object *o, struct rule *r, size_t index)
{
	static const char *const keys[] = { "format", "anchors", "claims" };
	struct policy *p = c->p;
	struct json_object *f, *a, *cl;
	size_t mark, n;
	char shown[POLICY_SHOW_MAX * 4 + 16];

	if (!check_keys (c, o, keys, N_ELEMENTS (keys), "an evidence rule"))
		return false;
	r->kind = RULE_EVIDENCE;

	member (o, "format", &f);
	mark = path_push_key (&c->path, "format", 6);
	if (!json_object_is_type (f, json_type_string))
		return perr (c, "the evidence format is a string, not %s", jtype (f));
	for (n = 0; n < N_ELEMENTS (formats); n++) {
		if (!strcmp (json_object_get_string (f), formats[n].name))
			break;
	}
	if (n == N_ELEMENTS (formats)) {
		show_str (json_object_get_string (f), (size_t)json_object_get_string_len (f), shown,
		          sizeof shown);
		return perr (c, "unknown evidence format %s (tpm2-quote, eat or ear)", shown);
	}
	r->format = n;
	path_pop (&c->path, mark);

	if (!member (o, "anchors", &a))
		return perr (c, "'anchors' is required (the names of the trust anchors that may have "
		             "verified the evidence)");
	mark = path_push_key (&c->path, "anchors", 7);
	if (!json_object_is_type (a, json_type_array))
		return perr (c, "'anchors' is an array of anchor names, not %s", jtype (a));
	n = json_object_array_length (a);
	if (n == 0)
		return perr (c, "'anchors' is empty: no evidence could ever satisfy this rule");
	if (n > POLICY_MAX_ANCHORS)
		return perr (c, "more than %d anchors", POLICY_MAX_ANCHORS);
	if (!(r->anchors = calloc (n, sizeof *r->anchors)))
		return perr (c, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx (a, i);
		size_t m = path_push_index (&c->path, i), len;
		const char *s;
		if (!json_object_is_type (e, json_type_string))
			return perr (c, "an anchor name is a string, not %s", jtype (e));
		s = json_object_get_string (e);
		len = (size_t)json_object_get_string_len (e);
		if (!valid_anchor_name (s, len)) {
			show_str (s, len, shown, sizeof shown);
			return perr (c, "invalid anchor name %s: 1 to %d of A-Z a-z 0-9 . _ -", shown,
			             POLICY_ANCHOR_NAME_MAX);
		}
		for (size_t k = 0; k < r->n_anchors; k++) {
			if (!strcmp (r->anchors[k], s))
				return perr (c, "anchor '%s' is listed twice", s);
		}
		if (!(r->anchors[i] = strdup (s)))
			return perr (c, "out of memory");
		r->n_anchors = i + 1;
		path_pop (&c->path, m);
	}
	path_pop (&c->path, mark);

	/* Required even when empty: "any evidence from these anchors" should
	 * be written down, not be what a forgotten key means. */
	if (!member (o, "claims", &cl))
		return perr (c, "'claims' is required (an array of predicates; [] accepts any evidence "
		             "from the anchors)");
	mark = path_push_key (&c->path, "claims", 6);
	if (!json_object_is_type (cl, json_type_array))
		return perr (c, "'claims' is an array of predicates, not %s", jtype (cl));
	n = json_object_array_length (cl);
	/* This rule's predicates are contiguous: an evidence rule holds no
	 * rules, so nothing else adds predicates while these are read. */
	p->rules[index].first_pred = p->n_preds;
	for (size_t i = 0; i < n; i++) {
		size_t m = path_push_index (&c->path, i);
		if (!parse_predicate (c, json_object_array_get_idx (cl, i), r->format))
			return false;
		path_pop (&c->path, m);
	}
	p->rules[index].n_preds = p->n_preds - p->rules[index].first_pred;
	path_pop (&c->path, mark);
	return true;
}

static bool
parse_rule (struct pctx *c, struct json_object *o, size_t *index)
{
	static const char *const keys[] = { "anyOf", "allOf", "format", "anchors", "claims" };
	struct policy *p = c->p;
	struct rule *r;
	const char *kinds[3];
	size_t n_kinds = 0, idx;

	if (!json_object_is_type (o, json_type_object))
		return perr (c, "a rule is an object ({\"anyOf\": [...]}, {\"allOf\": [...]} or "
		             "{\"format\": ...}), not %s", jtype (o));
	if (p->n_rules >= POLICY_MAX_RULES)
		return perr (c, "more than %d rules in the policy", POLICY_MAX_RULES);
	if (!check_keys (c, o, keys, N_ELEMENTS (keys), "a rule"))
		return false;
	idx = p->n_rules++;
	*index = idx;
	r = &p->rules[idx];
	if (!(r->path = strdup (c->path.s)))
		return perr (c, "out of memory");
	for (size_t i = 0; i < 3; i++) {
		struct json_object *v;
		if (member (o, keys[i], &v))
			kinds[n_kinds++] = keys[i];
	}
	if (n_kinds == 0)
		return perr (c, "a rule needs 'anyOf', 'allOf' or 'format'");
	if (n_kinds > 1)
		return perr (c, "a rule is one of anyOf, allOf or an evidence rule; this one has both "
		             "'%s' and '%s'", kinds[0], kinds[1]);
	if (kinds[0][0] == 'f')
		return parse_evidence (c, o, r, idx);

	{
		const char *kind = kinds[0];
		struct json_object *arr;
		size_t n, mark;
		member (o, kind, &arr);
		if (json_object_object_length (o) != 1) {
			static const char *const only_any[] = { "anyOf" }, *const only_all[] = { "allOf" };
			return check_keys (c, o, kind[1] == 'n' ? only_any : only_all, 1,
			                   kind[1] == 'n' ? "an anyOf rule" : "an allOf rule");
		}
		r->kind = kind[1] == 'n' ? RULE_ANY_OF : RULE_ALL_OF;
		mark = path_push_key (&c->path, kind, 5);
		if (!json_object_is_type (arr, json_type_array))
			return perr (c, "'%s' is an array of rules, not %s", kind, jtype (arr));
		n = json_object_array_length (arr);
		if (n == 0)
			return perr (c, "'%s' is empty", kind);
		if (n > POLICY_MAX_RULES)
			return perr (c, "more than %d rules in the policy", POLICY_MAX_RULES);
		if (!(r->children = calloc (n, sizeof *r->children)))
			return perr (c, "out of memory");
		for (size_t i = 0; i < n; i++) {
			size_t m = path_push_index (&c->path, i), child;
			if (!parse_rule (c, json_object_array_get_idx (arr, i), &child))
				return false;
			r->children[i] = child;
			r->n_children = i + 1;
			path_pop (&c->path, m);
		}
		path_pop (&c->path, mark);
	}
	return true;
}

static bool
parse_policy (struct pctx *c, struct json_object *root)
{
	static const char *const keys[] = { "version", "max-age", "nonce", "gated-operations", "rule" };
	struct policy *p = c->p;
	struct json_object *v;
	size_t mark, root_index;

	if (!json_object_is_type (root, json_type_object))
		return perr (c, "a policy is a JSON object, not %s", jtype (root));
	if (!check_keys (c, root, keys, N_ELEMENTS (keys), "a policy"))
		return false;

	if (!member (root, "version", &v))
		return perr (c, "'version' is required (1)");
	mark = path_push_key (&c->path, "version", 7);
	if (!json_object_is_type (v, json_type_int) || json_object_get_int64 (v) != 1)
		return perr (c, "this p11-warden reads policies of version 1 (the integer 1), not %s%s",
		             jtype (v), json_object_is_type (v, json_type_int) ? " other than 1" : "");
	path_pop (&c->path, mark);

	if (member (root, "max-age", &v)) {
		int64_t a;
		mark = path_push_key (&c->path, "max-age", 7);
		if (!json_object_is_type (v, json_type_int))
			return perr (c, "'max-age' is an integer number of seconds, not %s", jtype (v));
		a = json_object_get_int64 (v);
		if (a < 1 || a > POLICY_MAX_MAX_AGE)
			return perr (c, "'max-age' is from 1 to %d seconds, not %" PRId64, POLICY_MAX_MAX_AGE, a);
		p->max_age = (unsigned int)a;
		path_pop (&c->path, mark);
	}

	if (member (root, "nonce", &v)) {
		const char *s;
		mark = path_push_key (&c->path, "nonce", 5);
		if (!json_object_is_type (v, json_type_string))
			return perr (c, "'nonce' is \"required\" or \"optional\", not %s", jtype (v));
		s = json_object_get_string (v);
		if (!strcmp (s, "required")) {
			p->nonce_required = true;
		} else if (!strcmp (s, "optional")) {
			p->nonce_required = false;
		} else {
			char shown[POLICY_SHOW_MAX * 4 + 16];
			show_str (s, (size_t)json_object_get_string_len (v), shown, sizeof shown);
			return perr (c, "'nonce' is \"required\" or \"optional\", not %s", shown);
		}
		path_pop (&c->path, mark);
	}

	if (member (root, "gated-operations", &v)) {
		unsigned int gates = 0;
		size_t n;
		mark = path_push_key (&c->path, "gated-operations", 16);
		if (!json_object_is_type (v, json_type_array))
			return perr (c, "'gated-operations' is an array of operation names, not %s", jtype (v));
		n = json_object_array_length (v);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx (v, i);
			size_t m = path_push_index (&c->path, i), op;
			if (!json_object_is_type (e, json_type_string))
				return perr (c, "an operation name is a string, not %s", jtype (e));
			for (op = 0; op < POLICY_OP_COUNT; op++) {
				if (!strcmp (json_object_get_string (e), op_names[op]))
					break;
			}
			if (op == POLICY_OP_COUNT) {
				char shown[POLICY_SHOW_MAX * 4 + 16];
				show_str (json_object_get_string (e), (size_t)json_object_get_string_len (e), shown,
				          sizeof shown);
				return perr (c, "unknown operation %s (decrypt, unwrap, derive, wrap, raw-sign, "
				             "read-secret, digest-key, encrypt, sign)", shown);
			}
			if (gates & (1u << op))
				return perr (c, "'%s' is listed twice", op_names[op]);
			gates |= 1u << op;
			path_pop (&c->path, m);
		}
		/* A gated key's release paths are always gated (DESIGN.md, "The
		 * gate"): a list that leaves one out would let the key's material
		 * or plaintext out without evidence. */
		for (size_t op = 0; op < POLICY_OP_COUNT; op++) {
			if ((RELEASE_OPS & (1u << op)) && !(gates & (1u << op)))
				return perr (c, "'%s' is missing: decrypt, unwrap, derive, wrap, raw-sign, "
				             "read-secret and digest-key release key material or plaintext and "
				             "every policy gates them (list them all, or leave "
				             "'gated-operations' out)", op_names[op]);
		}
		p->gates = gates;
		path_pop (&c->path, mark);
	}

	if (!member (root, "rule", &v))
		return perr (c, "'rule' is required");
	mark = path_push_key (&c->path, "rule", 4);
	if (!parse_rule (c, v, &root_index))
		return false;
	path_pop (&c->path, mark);
	return root_index == 0 ? true : perr (c, "internal error: root rule is not the first");
}

/* ---------------------------------------------------------------- load */

static void set_err (char *err, size_t errlen, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static void
set_err (char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!errlen)
		return;
	va_start (ap, fmt);
	vsnprintf (err, errlen, fmt, ap);
	va_end (ap);
}

struct policy *
policy_parse (const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	struct policy *p = NULL, *ret = NULL;
	struct scan *sc = NULL;
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	struct pctx c;
	size_t bad;

	if (errlen)
		err[0] = '\0';
	if (!name)
		name = "(policy)";
	if (!text) {
		set_err (err, errlen, "%s: no text", name);
		goto out;
	}
	if (len > POLICY_MAX_SIZE) {
		set_err (err, errlen, "%s: larger than %d bytes", name, POLICY_MAX_SIZE);
		goto out;
	}
	if (memchr (text, '\0', len)) {
		size_t line, col;
		line_col (text, (size_t)((const char *)memchr (text, '\0', len) - text), &line, &col);
		set_err (err, errlen, "%s:%zu:%zu: contains a NUL byte", name, line, col);
		goto out;
	}
	bad = util_utf8_invalid_at ((const unsigned char *)text, len);
	if (bad < len) {
		size_t line, col;
		line_col (text, bad, &line, &col);
		set_err (err, errlen, "%s:%zu:%zu: not valid UTF-8", name, line, col);
		goto out;
	}

	sc = calloc (1, sizeof *sc);
	if (!sc || !(sc->arena = malloc (len + 1))) {
		set_err (err, errlen, "%s: out of memory", name);
		goto out;
	}
	sc->t = (const unsigned char *)text;
	sc->len = len;
	if (!prescan (sc)) {
		struct path at;
		size_t line, col;
		scan_path (sc, &at);
		line_col (text, sc->err_pos, &line, &col);
		set_err (err, errlen, "%s:%zu:%zu: %s: %s", name, line, col, at.s, sc->msg);
		goto out;
	}

	/* json-c counts a scalar inside the innermost container as one more
	 * level: 16 nested containers holding a value need a depth of 17. */
	tok = json_tokener_new_ex (POLICY_MAX_DEPTH + 1);
	if (!tok) {
		set_err (err, errlen, "%s: out of memory", name);
		goto out;
	}
	json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex (tok, text, (int)len);
	if (!root || json_tokener_get_error (tok) != json_tokener_success) {
		/* The pre-scan is stricter than json-c: this is a bug, and the
		 * policy is refused rather than half-understood. */
		set_err (err, errlen, "%s: internal error: json-c refused a document the pre-scan "
		         "accepted (%s)", name, json_tokener_error_desc (json_tokener_get_error (tok)));
		goto out;
	}

	p = calloc (1, sizeof *p);
	if (!p || !(p->name = strdup (name))) {
		set_err (err, errlen, "%s: out of memory", name);
		goto out;
	}
	p->max_age = POLICY_DEFAULT_MAX_AGE;
	p->nonce_required = true;
	p->gates = RELEASE_OPS;
	memset (&c, 0, sizeof c);
	c.p = p;
	c.name = name;
	c.err = err;
	c.errlen = errlen;
	path_init (&c.path);
	if (!parse_policy (&c, root))
		goto out;
	/* The digest names exactly these bytes: the ledger can tie a decision
	 * to the file an auditor holds. */
	if (EVP_Digest (text, len, p->digest, NULL, EVP_sha256 (), NULL) != 1) {
		set_err (err, errlen, "%s: cannot compute the policy's SHA-256", name);
		goto out;
	}
	ret = p;
	p = NULL;
out:
	policy_free (p);
	json_object_put (root);
	if (tok)
		json_tokener_free (tok);
	if (sc)
		free (sc->arena);
	free (sc);
	return ret;
}

struct policy *
policy_load_file (const char *path, char *err, size_t errlen)
{
	struct policy *p;
	size_t len = 0;
	char *buf;

	if (errlen)
		err[0] = '\0';
	/* Whoever can change a policy decides which platforms get keys. */
	buf = util_read_file (path, POLICY_MAX_SIZE, UTIL_FILE_OWNED,
	                      "a policy decides which platforms get keys", &len, NULL, err, errlen);
	if (!buf)
		return NULL;
	p = policy_parse (path, buf, len, err, errlen);
	if (p)
		log_debug ("policy %s loaded (%zu rules, %zu predicates, max-age %u s)", path, p->n_rules,
		           p->n_preds, p->max_age);
	free (buf);
	return p;
}

void
policy_free (struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		struct rule *r = &p->rules[i];
		free (r->path);
		free (r->children);
		for (size_t k = 0; k < r->n_anchors; k++)
			free (r->anchors[k]);
		free (r->anchors);
	}
	for (size_t i = 0; i < p->n_preds; i++) {
		struct predicate *pr = &p->preds[i];
		free (pr->path);
		free (pr->claim);
		for (size_t k = 0; k < pr->n_values; k++)
			free (pr->values[k].data);
		free (pr->values);
	}
	free (p->name);
	free (p);
}

const char *
policy_name (const struct policy *p)
{
	return p->name;
}

unsigned int
policy_max_age (const struct policy *p)
{
	return p->max_age;
}

bool
policy_nonce_required (const struct policy *p)
{
	return p->nonce_required;
}

bool
policy_gates (const struct policy *p, enum policy_op op)
{
	/* Fail closed: no policy, or an operation this build does not know,
	 * is gated. */
	if (!p || (unsigned int)op >= POLICY_OP_COUNT)
		return true;
	return (p->gates & (1u << op)) != 0;
}

const unsigned char *
policy_digest (const struct policy *p)
{
	return p->digest;
}

const char *
policy_op_name (enum policy_op op)
{
	return (unsigned int)op < POLICY_OP_COUNT ? op_names[op] : "unknown";
}

/* ---------------------------------------------------------------- evaluation */

#define TIME_T_MAX ((time_t)((((uint64_t)1 << (sizeof (time_t) * 8 - 2)) - 1) * 2 + 1))

struct eval {
	const struct policy *p;
	const struct evidence_claims *ev;
	size_t n_ev;
	time_t now;
	struct policy_result *out;
};

/* Why an evidence of the right format does not count. */
enum unfit { FIT, UNFIT_ANCHOR, UNFIT_FUTURE, UNFIT_STALE, UNFIT_NONCE, UNFIT_MISMATCH };

static enum unfit
fitness (const struct eval *e, const struct rule *r, const struct evidence_claims *ev)
{
	const struct claim *c;
	const char *fmt = formats[r->format].name;
	time_t age;
	bool listed = false;

	for (size_t i = 0; i < r->n_anchors; i++) {
		if (ev->anchor && !strcmp (ev->anchor, r->anchors[i]))
			listed = true;
	}
	if (!listed)
		return UNFIT_ANCHOR;
	if (ev->verified_at > e->now)
		return UNFIT_FUTURE;
	if (__builtin_sub_overflow (e->now, ev->verified_at, &age) || age > (time_t)e->p->max_age)
		return UNFIT_STALE;
	if (e->p->nonce_required && !ev->nonce_matched)
		return UNFIT_NONCE;
	/* The verifier also states format and anchor as claims; a set that
	 * contradicts its wrapper is a bug somewhere, and counts for nothing. */
	c = claim_set_find (ev->claims, "evidence.format");
	if (c && (c->v.len != strlen (fmt) || memcmp (c->v.data, fmt, c->v.len) != 0))
		return UNFIT_MISMATCH;
	c = claim_set_find (ev->claims, "evidence.anchor");
	if (c && (c->v.len != strlen (ev->anchor) || memcmp (c->v.data, ev->anchor, c->v.len) != 0))
		return UNFIT_MISMATCH;
	return FIT;
}

static bool
holds (const struct predicate *pr, const struct claim *c)
{
	if (!c)
		return false;
	if (pr->op == OP_PRESENT)
		return true;
	if (c->v.type != pr->values[0].type)
		return false; /* the registry makes this impossible; fail closed anyway */
	switch (pr->op) {
	case OP_EQUALS:
		return claim_value_equal (&c->v, &pr->values[0]);
	case OP_IN:
		for (size_t i = 0; i < pr->n_values; i++) {
			if (claim_value_equal (&c->v, &pr->values[i]))
				return true;
		}
		return false;
	case OP_GTE:
		return c->v.i >= pr->values[0].i;
	case OP_LTE:
		return c->v.i <= pr->values[0].i;
	case OP_PRESENT:
		break;
	}
	return true;
}

static void
set_failure (struct eval *e, const char *path, const char *fmt, ...)
	__attribute__ ((format (printf, 3, 4)));

static void
set_failure (struct eval *e, const char *path, const char *fmt, ...)
{
	/* Room for "PATH: " in the reason, so the why is never cut short. */
	char why[POLICY_REASON_MAX - POLICY_PATH_MAX - 2];
	va_list ap;
	va_start (ap, fmt);
	vsnprintf (why, sizeof why, fmt, ap);
	va_end (ap);
	snprintf (e->out->path, sizeof e->out->path, "%s", path);
	snprintf (e->out->reason, sizeof e->out->reason, "%s: %s", path, why);
}

/* "policy wants ...", values shown as claim_value_format does. */
static void
describe_want (const struct predicate *pr, char *out, size_t outlen)
{
	char v[POLICY_SHOW_MAX * 4 + 32];
	size_t o = 0;

	out[0] = '\0';
	switch (pr->op) {
	case OP_EQUALS:
		claim_value_format (&pr->values[0], POLICY_SHOW_MAX, v, sizeof v);
		snprintf (out, outlen, "%s", v);
		return;
	case OP_IN:
		o = (size_t)snprintf (out, outlen, "one of [");
		for (size_t i = 0; i < pr->n_values && i < 3 && o < outlen; i++) {
			claim_value_format (&pr->values[i], POLICY_SHOW_MAX, v, sizeof v);
			o += (size_t)snprintf (out + o, outlen - o, "%s%s", i ? ", " : "", v);
		}
		if (o < outlen && pr->n_values > 3)
			o += (size_t)snprintf (out + o, outlen - o, ", and %zu more", pr->n_values - 3);
		if (o < outlen)
			snprintf (out + o, outlen - o, "]");
		return;
	case OP_GTE:
		snprintf (out, outlen, ">= %" PRId64, pr->values[0].i);
		return;
	case OP_LTE:
		snprintf (out, outlen, "<= %" PRId64, pr->values[0].i);
		return;
	case OP_PRESENT:
		snprintf (out, outlen, "it present");
		return;
	}
}

static bool
eval_evidence (struct eval *e, const struct rule *r, bool record, time_t *expires)
{
	const char *fmt = formats[r->format].name;
	const struct evidence_claims *unfit_ev = NULL, *failed_ev = NULL;
	enum unfit why = FIT;
	size_t failed_pred = 0;
	bool found = false;
	time_t best = 0;

	for (size_t i = 0; i < e->n_ev; i++) {
		const struct evidence_claims *ev = &e->ev[i];
		enum unfit u;
		size_t k;
		if (!ev->format || strcmp (ev->format, fmt) != 0)
			continue;
		u = fitness (e, r, ev);
		if (u != FIT) {
			if (!unfit_ev) {
				unfit_ev = ev;
				why = u;
			}
			continue;
		}
		for (k = 0; k < r->n_preds; k++) {
			const struct predicate *pr = &e->p->preds[r->first_pred + k];
			if (!holds (pr, claim_set_find (ev->claims, pr->claim)))
				break;
		}
		if (k < r->n_preds) {
			if (!failed_ev) {
				failed_ev = ev;
				failed_pred = k;
			}
			continue;
		}
		{
			/* This evidence is good until verified_at + max-age; of several,
			 * the freshest lasts longest. */
			time_t until;
			if (__builtin_add_overflow (ev->verified_at, (time_t)e->p->max_age, &until))
				until = TIME_T_MAX;
			if (!found || until > best)
				best = until;
			found = true;
		}
	}
	if (found) {
		*expires = best;
		return true;
	}
	if (!record)
		return false;

	if (failed_ev) {
		const struct predicate *pr = &e->p->preds[r->first_pred + failed_pred];
		const struct claim *c = claim_set_find (failed_ev->claims, pr->claim);
		char want[POLICY_REASON_MAX / 2], have[POLICY_SHOW_MAX * 4 + 32], anchor[POLICY_SHOW_MAX * 4 + 16];
		describe_want (pr, want, sizeof want);
		show_str (failed_ev->anchor, strlen (failed_ev->anchor), anchor, sizeof anchor);
		if (!c) {
			set_failure (e, pr->path, "%s is absent, policy wants %s (%s evidence from anchor %s)",
			             pr->claim, want, fmt, anchor);
		} else if (pr->op != OP_PRESENT && c->v.type != pr->values[0].type) {
			set_failure (e, pr->path, "%s is of type %s, policy wants %s (%s evidence from "
			             "anchor %s)", pr->claim, claim_type_name (c->v.type),
			             claim_type_name (pr->values[0].type), fmt, anchor);
		} else {
			claim_value_format (&c->v, POLICY_SHOW_MAX, have, sizeof have);
			set_failure (e, pr->path, "%s is %s, policy wants %s (%s evidence from anchor %s)",
			             pr->claim, have, want, fmt, anchor);
		}
	} else if (unfit_ev) {
		char anchor[POLICY_SHOW_MAX * 4 + 16], list[POLICY_REASON_MAX / 2];
		size_t o = 0;
		if (unfit_ev->anchor)
			show_str (unfit_ev->anchor, strlen (unfit_ev->anchor), anchor, sizeof anchor);
		else
			snprintf (anchor, sizeof anchor, "(none)");
		switch (why) {
		case UNFIT_ANCHOR:
			list[0] = '\0';
			for (size_t i = 0; i < r->n_anchors && o < sizeof list; i++)
				o += (size_t)snprintf (list + o, sizeof list - o, "%s'%s'", i ? ", " : "",
				                       r->anchors[i]);
			set_failure (e, r->path, "%s evidence verified by anchor %s; this rule accepts %s",
			             fmt, anchor, list);
			break;
		case UNFIT_FUTURE:
			set_failure (e, r->path, "%s evidence from anchor %s verified in the future (at %lld, "
			             "now %lld)", fmt, anchor, (long long)unfit_ev->verified_at,
			             (long long)e->now);
			break;
		case UNFIT_STALE:
			set_failure (e, r->path, "%s evidence from anchor %s is stale (verified at %lld, now "
			             "%lld, max-age %u s)", fmt, anchor, (long long)unfit_ev->verified_at,
			             (long long)e->now, e->p->max_age);
			break;
		case UNFIT_NONCE:
			set_failure (e, r->path, "%s evidence from anchor %s carries no fresh nonce; the "
			             "policy requires one", fmt, anchor);
			break;
		case UNFIT_MISMATCH:
			set_failure (e, r->path, "%s evidence from anchor %s whose evidence.format or "
			             "evidence.anchor claim says otherwise", fmt, anchor);
			break;
		case FIT:
			break;
		}
	} else {
		set_failure (e, r->path, "no %s evidence", fmt);
	}
	return false;
}

/*
 * With @record, a false return leaves the first failure (in document
 * order) of this rule in e->out.  Only the first alternative of an anyOf
 * records: when they all fail, its failure is the first in document order.
 */
static bool
eval_rule (struct eval *e, size_t index, bool record, time_t *expires)
{
	const struct rule *r = &e->p->rules[index];
	bool any = false;
	time_t best = 0, t;

	switch (r->kind) {
	case RULE_EVIDENCE:
		return eval_evidence (e, r, record, expires);
	case RULE_ALL_OF:
		for (size_t i = 0; i < r->n_children; i++) {
			if (!eval_rule (e, r->children[i], record, &t))
				return false;
			if (i == 0 || t < best)
				best = t;
		}
		*expires = best;
		return true;
	case RULE_ANY_OF:
		/* Every alternative is tried, so the verdict lasts as long as the
		 * longest-lived one that holds allows. */
		for (size_t i = 0; i < r->n_children; i++) {
			if (eval_rule (e, r->children[i], record && i == 0, &t)) {
				if (!any || t > best)
					best = t;
				any = true;
			}
		}
		*expires = best;
		return any;
	}
	return false;
}

bool
policy_evaluate (const struct policy *p, const struct evidence_claims *ev, size_t n_ev, time_t now,
                 struct policy_result *out)
{
	struct eval e = { p, ev, n_ev, now, out };
	time_t expires = 0;

	if (!out)
		return false;
	memset (out, 0, sizeof *out);
	if (!p || p->n_rules == 0) {
		snprintf (out->reason, sizeof out->reason, "no policy");
		return false;
	}
	if (n_ev > 0 && !ev) {
		snprintf (out->reason, sizeof out->reason, "no evidence");
		return false;
	}
	if (!eval_rule (&e, 0, true, &expires)) {
		out->pass = false;
		out->expires = 0;
		if (!out->reason[0])
			snprintf (out->reason, sizeof out->reason, "$.rule: not satisfied");
		return false;
	}
	out->pass = true;
	out->expires = expires;
	out->path[0] = '\0';
	snprintf (out->reason, sizeof out->reason, "pass");
	return true;
}

bool
policy_for_each_anchor (const struct policy *p,
                        bool (*cb) (const char *format, const char *anchor, const char *path,
                                    void *user),
                        void *user)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];
		if (r->kind != RULE_EVIDENCE)
			continue;
		for (size_t j = 0; j < r->n_anchors; j++) {
			if (!cb (formats[r->format].name, r->anchors[j], r->path, user))
				return false;
		}
	}
	return true;
}
