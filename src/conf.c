/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef P11W_STATE_DIR
#define P11W_STATE_DIR "/var/lib/p11-warden"
#endif

/* A section header as found by prescan(): inih does not tell its handler
 * where a section starts, nor that a header repeats the one before it. */
struct section_line {
	char name[64];
	int line;
};

struct parse_ctx {
	struct conf *conf;
	struct conf_slot *slot;   /* current [slot:NAME], or NULL */
	bool in_module;           /* current section is [module] */
	unsigned int module_keys; /* bit per [module] key already set */
	char msg[512];            /* first semantic error */
	char section[64];         /* last section seen, to detect a new one */
	bool have_section;
};

static int fail (struct parse_ctx *ctx, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
fail (struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	if (ctx->msg[0] == '\0') {
		va_start (ap, fmt);
		vsnprintf (ctx->msg, sizeof ctx->msg, fmt, ap);
		va_end (ap);
	}
	return 0; /* inih: handler error, ini_parse returns the line */
}

static bool
parse_bool (const char *v, bool *out)
{
	if (!strcmp (v, "yes") || !strcmp (v, "true") || !strcmp (v, "1")) {
		*out = true;
		return true;
	}
	if (!strcmp (v, "no") || !strcmp (v, "false") || !strcmp (v, "0")) {
		*out = false;
		return true;
	}
	return false;
}

static bool
parse_uint (const char *v, unsigned int max, unsigned int *out)
{
	char *end = NULL;
	unsigned long n;
	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoul (v, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return false;
	*out = (unsigned int)n;
	return true;
}

static bool
valid_slot_name (const char *name)
{
	size_t n = strlen (name);
	if (n == 0 || n > CONF_SLOT_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	}
	return true;
}

static int
set_string (struct parse_ctx *ctx, char **field, const char *name, const char *value)
{
	if (*field)
		return fail (ctx, "'%s' is set twice", name);
	if (*value == '\0')
		return fail (ctx, "'%s' is empty", name);
	*field = strdup (value);
	if (!*field)
		return fail (ctx, "out of memory");
	return 1;
}

static int
set_path (struct parse_ctx *ctx, char **field, const char *name, const char *value)
{
	if (*value != '/')
		return fail (ctx, "'%s' must be an absolute path, not '%s'", name, value);
	return set_string (ctx, field, name, value);
}

static int
parse_uri (struct parse_ctx *ctx, struct conf_uri *u, const char *name, const char *value, int flags)
{
	int r;
	u->uri = p11_kit_uri_new ();
	if (!u->uri)
		return fail (ctx, "out of memory");
	r = p11_kit_uri_parse (value, flags, u->uri);
	if (r != P11_KIT_URI_OK)
		return fail (ctx, "'%s': not a valid PKCS#11 URI '%s': %s", name, value,
		             p11_kit_uri_message (r));
	if (p11_kit_uri_any_unrecognized (u->uri))
		return fail (ctx, "'%s': URI '%s' has attributes p11-warden does not know; refusing "
		                  "a match that would ignore them", name, value);
	/* Query attributes: a PIN does not belong in the configuration (it
	 * would be logged with the URI), and a module name or path would be
	 * silently ignored by the match. */
	if (p11_kit_uri_get_pin_value (u->uri) || p11_kit_uri_get_pin_source (u->uri))
		return fail (ctx, "'%s': URI '%s' holds a PIN; the backend PIN goes in 'pin-file'",
		             name, value);
	if (p11_kit_uri_get_module_name (u->uri) || p11_kit_uri_get_module_path (u->uri))
		return fail (ctx, "'%s': URI '%s' names a module; the backend module is 'module'",
		             name, value);
	u->text = strdup (value);
	if (!u->text)
		return fail (ctx, "out of memory");
	return 1;
}

static int
module_key (struct parse_ctx *ctx, const char *name, const char *value)
{
	static const char *const keys[] = { "log", "log-level", "state-dir", "pin-max-failures",
		                            "pin-kdf-iterations", "gate-cache-ms" };
	struct conf *c = ctx->conf;
	for (unsigned int i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (!strcmp (name, keys[i])) {
			if (ctx->module_keys & (1u << i))
				return fail (ctx, "'%s' is set twice", name);
			ctx->module_keys |= 1u << i;
		}
	}
	if (!strcmp (name, "log")) {
		if (!strcmp (value, "syslog"))
			c->log_sink = LOG_SINK_SYSLOG;
		else if (!strcmp (value, "stderr"))
			c->log_sink = LOG_SINK_STDERR;
		else if (!strcmp (value, "none"))
			c->log_sink = LOG_SINK_NONE;
		else
			return fail (ctx, "'log' must be syslog, stderr or none, not '%s'", value);
	} else if (!strcmp (name, "log-level")) {
		if (!strcmp (value, "error"))
			c->log_level = LOG_LEVEL_ERROR;
		else if (!strcmp (value, "warning"))
			c->log_level = LOG_LEVEL_WARNING;
		else if (!strcmp (value, "info"))
			c->log_level = LOG_LEVEL_INFO;
		else if (!strcmp (value, "debug"))
			c->log_level = LOG_LEVEL_DEBUG;
		else
			return fail (ctx, "'log-level' must be error, warning, info or debug, not '%s'", value);
	} else if (!strcmp (name, "state-dir")) {
		return set_path (ctx, &c->state_dir, name, value);
	} else if (!strcmp (name, "pin-max-failures")) {
		if (!parse_uint (value, 1000, &c->pin_max_failures))
			return fail (ctx, "'pin-max-failures' must be an integer from 0 to 1000, not '%s'", value);
	} else if (!strcmp (name, "pin-kdf-iterations")) {
		if (!parse_uint (value, 100000000, &c->pin_kdf_iterations) ||
		    c->pin_kdf_iterations < CONF_MIN_PIN_KDF_ITERATIONS)
			return fail (ctx, "'pin-kdf-iterations' must be an integer from %d to 100000000, not '%s'",
			             CONF_MIN_PIN_KDF_ITERATIONS, value);
	} else if (!strcmp (name, "gate-cache-ms")) {
		if (!parse_uint (value, CONF_MAX_GATE_CACHE_MS, &c->gate_cache_ms))
			return fail (ctx, "'gate-cache-ms' must be an integer from 0 to %d, not '%s'",
			             CONF_MAX_GATE_CACHE_MS, value);
	} else {
		return fail (ctx, "unknown key '%s' in [module]", name);
	}
	return 1;
}

static int
slot_key (struct parse_ctx *ctx, const char *name, const char *value)
{
	struct conf_slot *s = ctx->slot;
	if (!strcmp (name, "backend")) {
		if (s->backend)
			return fail (ctx, "'backend' is set twice");
		if (!strcmp (value, "pkcs11"))
			s->backend = CONF_BACKEND_PKCS11;
		else
			return fail (ctx, "unknown backend '%s' (this build knows: pkcs11)", value);
	} else if (!strcmp (name, "module")) {
		return set_path (ctx, &s->module, name, value);
	} else if (!strcmp (name, "token")) {
		if (s->token.uri)
			return fail (ctx, "'token' is set twice");
		return parse_uri (ctx, &s->token, name, value, P11_KIT_URI_FOR_TOKEN);
	} else if (!strcmp (name, "pin-file")) {
		return set_path (ctx, &s->pin_file, name, value);
	} else if (!strcmp (name, "gated")) {
		if (s->gated_set)
			return fail (ctx, "'gated' is set twice");
		s->gated_set = true;
		if (!parse_bool (value, &s->gated))
			return fail (ctx, "'gated' must be yes or no, not '%s'", value);
	} else if (!strcmp (name, "ungated")) {
		struct conf_uri *n = realloc (s->ungated, (s->n_ungated + 1) * sizeof *n);
		if (!n)
			return fail (ctx, "out of memory");
		s->ungated = n;
		memset (&n[s->n_ungated], 0, sizeof *n);
		s->n_ungated++;
		return parse_uri (ctx, &n[s->n_ungated - 1], name, value,
		                  P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
	} else {
		return fail (ctx, "unknown key '%s' in [slot:%s]", name, s->name);
	}
	return 1;
}

static int
begin_section (struct parse_ctx *ctx, const char *section)
{
	struct conf *c = ctx->conf;
	ctx->slot = NULL;
	ctx->in_module = false;
	if (!strcmp (section, "module")) {
		ctx->in_module = true;
		return 1;
	}
	if (strncmp (section, "slot:", 5) != 0)
		return fail (ctx, "unknown section [%s] (expected [module] or [slot:NAME])", section);
	if (!valid_slot_name (section + 5))
		return fail (ctx, "invalid slot name '%s': 1 to %d of A-Z a-z 0-9 . _ -", section + 5,
		             CONF_SLOT_NAME_MAX);
	if (c->n_slots >= CONF_MAX_SLOTS)
		return fail (ctx, "more than %d slots", CONF_MAX_SLOTS);
	struct conf_slot *n = realloc (c->slots, (c->n_slots + 1) * sizeof *n);
	if (!n)
		return fail (ctx, "out of memory");
	c->slots = n;
	ctx->slot = &n[c->n_slots++];
	memset (ctx->slot, 0, sizeof *ctx->slot);
	snprintf (ctx->slot->name, sizeof ctx->slot->name, "%s", section + 5);
	ctx->slot->gated = true;
	return 1;
}

/* inih calls this for every name = value, in file order.  Sections are
 * validated beforehand by prescan(), so a change of section name here is a
 * new section and a repeated header has already been refused. */
static int
handler (void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	if (ctx->msg[0])
		return 0; /* stop at the first error */
	if (!ctx->have_section || strcmp (ctx->section, section) != 0) {
		if (strlen (section) >= sizeof ctx->section)
			return fail (ctx, "section name too long");
		snprintf (ctx->section, sizeof ctx->section, "%s", section);
		ctx->have_section = true;
		if (!*section)
			return fail (ctx, "key '%s' outside any section", name);
		if (!begin_section (ctx, section))
			return 0;
	}
	if (ctx->in_module)
		return module_key (ctx, name, value);
	if (ctx->slot)
		return slot_key (ctx, name, value);
	return fail (ctx, "key '%s' outside any section", name);
}

static bool
check_slot (const struct conf_slot *s, char *msg, size_t len)
{
	if (!s->backend) {
		snprintf (msg, len, "slot '%s': 'backend' is required", s->name);
		return false;
	}
	if (!s->module) {
		snprintf (msg, len, "slot '%s': 'module' is required for the pkcs11 backend", s->name);
		return false;
	}
	if (!s->token.uri) {
		snprintf (msg, len, "slot '%s': 'token' (a pkcs11: URI selecting the backend token) is required",
		          s->name);
		return false;
	}
	if (!s->pin_file) {
		snprintf (msg, len, "slot '%s': 'pin-file' (the backend user PIN) is required", s->name);
		return false;
	}
	return true;
}

void
conf_init_defaults (struct conf *conf)
{
	memset (conf, 0, sizeof *conf);
	conf->log_sink = LOG_SINK_SYSLOG;
	conf->log_level = LOG_LEVEL_INFO;
	conf->pin_max_failures = CONF_DEFAULT_PIN_MAX_FAILURES;
	conf->pin_kdf_iterations = CONF_DEFAULT_PIN_KDF_ITERATIONS;
	conf->gate_cache_ms = CONF_DEFAULT_GATE_CACHE_MS;
}

/* Read the whole file through one descriptor (so the permission check and
 * the content are of the same file), capped in size, NUL-terminated. */
static char *
read_conf_file (const char *path, bool *missing, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t have = 0;
	int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			*missing = true;
		snprintf (err, errlen, "%s: cannot open: %s", path, strerror (errno));
		return NULL;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		snprintf (err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf (err, errlen, "%s: writable by others (mode %03o); refusing a configuration "
		          "anyone can change", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_mode & S_IWGRP) {
		snprintf (err, errlen, "%s: writable by its group (mode %03o); the configuration "
		          "decides which keys are gated: chmod g-w", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size > CONF_MAX_SIZE) {
		snprintf (err, errlen, "%s: larger than %d bytes", path, CONF_MAX_SIZE);
		goto out;
	}
	buf = malloc ((size_t)st.st_size + 1);
	if (!buf) {
		snprintf (err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (have < (size_t)st.st_size) {
		ssize_t r = read (fd, buf + have, (size_t)st.st_size - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf (err, errlen, "%s: read error", path);
			free (buf);
			buf = NULL;
			goto out;
		}
		have += (size_t)r;
	}
	buf[have] = '\0';
	if (strlen (buf) != have) {
		snprintf (err, errlen, "%s: contains a NUL byte", path);
		free (buf);
		buf = NULL;
	}
out:
	close (fd);
	return buf;
}

/*
 * Check the file's lines before inih parses it: a bounded length (inih's
 * buffer would split a longer line silently), no indented continuation
 * lines (inih would append them to the previous value), and section
 * headers that are well formed and not repeated (inih would merge a header
 * that repeats the previous one into it).  Header lines are recorded so
 * that errors and empty sections can be reported with their line.
 */
static bool
prescan (const char *path, const char *text, struct section_line *sections, size_t max,
         size_t *n_sections, char *err, size_t errlen)
{
	int line = 1;
	*n_sections = 0;
	if (!strncmp (text, "\xef\xbb\xbf", 3)) {
		snprintf (err, errlen, "%s:1: starts with a byte-order mark; save it as plain UTF-8", path);
		return false;
	}
	for (const char *p = text; *p; line++) {
		const char *nl = strchr (p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen (p);
		if (n >= CONF_MAX_LINE) {
			snprintf (err, errlen, "%s:%d: line longer than %d bytes", path, line,
			          CONF_MAX_LINE - 1);
			return false;
		}
		if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			size_t k = 0;
			while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
				k++;
			if (k < n) {
				snprintf (err, errlen, "%s:%d: indented line (continuation lines are not "
				          "allowed; start every line in column 1)", path, line);
				return false;
			}
		}
		if (n > 0 && p[0] == '[') {
			const char *close = memchr (p, ']', n);
			size_t len = close ? (size_t)(close - p - 1) : 0;
			if (!close || len == 0 || len >= sizeof sections[0].name) {
				snprintf (err, errlen, "%s:%d: malformed section header", path, line);
				return false;
			}
			for (size_t i = 0; i < *n_sections; i++) {
				if (strlen (sections[i].name) == len && !memcmp (sections[i].name, p + 1, len)) {
					snprintf (err, errlen, "%s:%d: section [%s] is defined twice (first at "
					          "line %d)", path, line, sections[i].name, sections[i].line);
					return false;
				}
			}
			if (*n_sections >= max) {
				snprintf (err, errlen, "%s:%d: too many sections (at most %zu)", path, line, max);
				return false;
			}
			memcpy (sections[*n_sections].name, p + 1, len);
			sections[*n_sections].name[len] = '\0';
			sections[*n_sections].line = line;
			(*n_sections)++;
		}
		p += n + (nl ? 1 : 0);
	}
	return true;
}

bool
conf_parse (const char *path, const char *text, struct conf *out, char *err, size_t errlen)
{
	struct section_line sections[CONF_MAX_SLOTS + 1];
	size_t n_sections;
	struct parse_ctx ctx;
	int r;

	conf_init_defaults (out);
	err[0] = '\0';
	out->path = strdup (path);
	if (!out->path) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	if (!prescan (path, text, sections, sizeof sections / sizeof sections[0], &n_sections, err,
	              errlen))
		return false;

	memset (&ctx, 0, sizeof ctx);
	ctx.conf = out;
	r = ini_parse_string (text, handler, &ctx);
	if (r != 0) {
		if (r < 0)
			snprintf (err, errlen, "%s: cannot parse (error %d)", path, r);
		else if (ctx.msg[0])
			snprintf (err, errlen, "%s:%d: %s", path, r, ctx.msg);
		else
			snprintf (err, errlen, "%s:%d: syntax error (expected [section], name = value, or a "
			          "comment)", path, r);
		return false;
	}
	if (!out->state_dir && !(out->state_dir = strdup (P11W_STATE_DIR))) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	/* Every header has keys (inih skips an empty section silently), and the
	 * slots are complete; whole-section errors name the section's line. */
	size_t slot = 0;
	for (size_t i = 0; i < n_sections; i++) {
		char msg[400];
		bool is_slot = !strncmp (sections[i].name, "slot:", 5);
		if (!strcmp (sections[i].name, "module"))
			continue;
		if (!is_slot) {
			snprintf (err, errlen, "%s:%d: unknown section [%s] (expected [module] or "
			          "[slot:NAME])", path, sections[i].line, sections[i].name);
			return false;
		}
		if (slot >= out->n_slots || strcmp (out->slots[slot].name, sections[i].name + 5) != 0) {
			snprintf (err, errlen, "%s:%d: section [%s] is empty", path, sections[i].line,
			          sections[i].name);
			return false;
		}
		out->slots[slot].line = sections[i].line;
		if (!check_slot (&out->slots[slot], msg, sizeof msg)) {
			snprintf (err, errlen, "%s:%d: %s", path, sections[i].line, msg);
			return false;
		}
		slot++;
	}
	if (slot != out->n_slots) {
		snprintf (err, errlen, "%s: internal error: sections and slots disagree", path);
		return false;
	}
	return true;
}

bool
conf_load (const char *path, bool missing_ok, struct conf *out, bool *missing, char *err,
           size_t errlen)
{
	char *text;
	bool ok;

	*missing = false;
	text = read_conf_file (path, missing, err, errlen);
	if (!text) {
		conf_init_defaults (out);
		out->path = strdup (path);
		if (*missing && missing_ok && out->path) {
			err[0] = '\0';
			return true;
		}
		return false;
	}
	ok = conf_parse (path, text, out, err, errlen);
	free (text);
	return ok;
}

static void
uri_clear (struct conf_uri *u)
{
	if (u->uri)
		p11_kit_uri_free (u->uri);
	free (u->text);
	u->uri = NULL;
	u->text = NULL;
}

void
conf_free (struct conf *conf)
{
	for (size_t i = 0; i < conf->n_slots; i++) {
		struct conf_slot *s = &conf->slots[i];
		free (s->module);
		free (s->pin_file);
		uri_clear (&s->token);
		for (size_t j = 0; j < s->n_ungated; j++)
			uri_clear (&s->ungated[j]);
		free (s->ungated);
	}
	free (conf->slots);
	free (conf->state_dir);
	free (conf->path);
	memset (conf, 0, sizeof *conf);
}
