/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "conf.h"
#include "ledger.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef P11W_STATE_DIR
#define P11W_STATE_DIR "/var/lib/p11-warden"
#endif

/* A section header as found by prescan(): inih does not tell its handler
 * where a section starts, nor that a header repeats the one before it. */
struct section_line {
	char name[80];
	int line;
};

struct parse_ctx {
	struct conf *conf;
	struct conf_slot *slot;   /* current [slot:NAME], or NULL */
	struct conf_anchor *anchor;       /* current [anchor:NAME], or NULL */
	struct conf_policy *policy;       /* current [policy:NAME], or NULL */
	struct conf_collector *collector; /* current [collector:NAME], or NULL */
	unsigned int entity_keys;         /* bit per key already set in the current section */
	bool in_module;           /* current section is [module] */
	unsigned int module_keys; /* bit per [module] key already set */
	char msg[512];            /* first semantic error */
	char section[80];         /* last section seen, to detect a new one */
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
valid_name (const char *name, size_t max)
{
	size_t n = strlen (name);
	if (n == 0 || n > max)
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
		                            "pin-kdf-iterations", "gate-cache-ms", "clock-skew",
		                            "audit-ledger", "audit-key", "audit-fsync", "audit-batch-ms",
		                            "audit-batch-max" };
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
	} else if (!strcmp (name, "audit-ledger")) {
		return set_path (ctx, &c->audit_ledger, name, value);
	} else if (!strcmp (name, "audit-key")) {
		return set_path (ctx, &c->audit_key, name, value);
	} else if (!strcmp (name, "audit-fsync")) {
		if (!strcmp (value, "always"))
			c->audit_fsync = LEDGER_FSYNC_ALWAYS;
		else if (!strcmp (value, "batch"))
			c->audit_fsync = LEDGER_FSYNC_BATCH;
		else if (!strcmp (value, "none"))
			c->audit_fsync = LEDGER_FSYNC_NONE;
		else
			return fail (ctx, "'audit-fsync' must be always, batch or none, not '%s'", value);
	} else if (!strcmp (name, "audit-batch-ms")) {
		if (!parse_uint (value, 10000, &c->audit_batch_ms) || c->audit_batch_ms == 0)
			return fail (ctx, "'audit-batch-ms' must be an integer from 1 to 10000, not '%s'", value);
	} else if (!strcmp (name, "audit-batch-max")) {
		if (!parse_uint (value, 65536, &c->audit_batch_max) || c->audit_batch_max == 0)
			return fail (ctx, "'audit-batch-max' must be an integer from 1 to 65536, not '%s'",
			             value);
	} else if (!strcmp (name, "clock-skew")) {
		if (!parse_uint (value, CONF_MAX_CLOCK_SKEW, &c->clock_skew))
			return fail (ctx, "'clock-skew' must be an integer from 0 to %d (seconds), not '%s'",
			             CONF_MAX_CLOCK_SKEW, value);
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
	} else if (!strcmp (name, "policy")) {
		if (!valid_name (value, CONF_NAME_MAX))
			return fail (ctx, "'policy' must name a [policy:NAME] section, not '%s'", value);
		return set_string (ctx, &s->policy, name, value);
	} else if (!strcmp (name, "key-policy")) {
		/* key-policy = POLICY pkcs11:URI */
		const char *sp = strpbrk (value, " \t");
		const char *uri = sp;
		struct conf_binding *n;
		if (!sp)
			return fail (ctx, "'key-policy' must be 'POLICY pkcs11:URI', not '%s'", value);
		while (*uri == ' ' || *uri == '\t')
			uri++;
		if (s->n_bindings >= CONF_MAX_BINDINGS)
			return fail (ctx, "more than %d 'key-policy' lines", CONF_MAX_BINDINGS);
		n = realloc (s->bindings, (s->n_bindings + 1) * sizeof *n);
		if (!n)
			return fail (ctx, "out of memory");
		s->bindings = n;
		memset (&n[s->n_bindings], 0, sizeof *n);
		s->n_bindings++;
		n[s->n_bindings - 1].policy = strndup (value, (size_t)(sp - value));
		if (!n[s->n_bindings - 1].policy)
			return fail (ctx, "out of memory");
		if (!valid_name (n[s->n_bindings - 1].policy, CONF_NAME_MAX))
			return fail (ctx, "'key-policy': '%s' is not a policy name",
			             n[s->n_bindings - 1].policy);
		return parse_uri (ctx, &n[s->n_bindings - 1].uri, name, uri,
		                  P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
	} else if (!strcmp (name, "collectors")) {
		char *copy, *save = NULL;
		if (s->collectors)
			return fail (ctx, "'collectors' is set twice");
		copy = strdup (value);
		if (!copy)
			return fail (ctx, "out of memory");
		for (char *w = strtok_r (copy, " \t,", &save); w; w = strtok_r (NULL, " \t,", &save)) {
			char **n;
			if (!valid_name (w, CONF_NAME_MAX) || s->n_collectors >= CONF_MAX_COLLECTORS) {
				free (copy);
				return fail (ctx, "'collectors' must list at most %d collector names",
				             CONF_MAX_COLLECTORS);
			}
			n = realloc (s->collectors, (s->n_collectors + 1) * sizeof *n);
			if (!n || !(n[s->n_collectors] = strdup (w))) {
				if (n)
					s->collectors = n;
				free (copy);
				return fail (ctx, "out of memory");
			}
			s->collectors = n;
			s->n_collectors++;
		}
		free (copy);
		if (s->n_collectors == 0)
			return fail (ctx, "'collectors' is empty");
	} else {
		return fail (ctx, "unknown key '%s' in [slot:%s]", name, s->name);
	}
	return 1;
}

/* Each key of an anchor, policy or collector section once. */
static int
once (struct parse_ctx *ctx, const char *name, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp (name, keys[i])) {
			if (ctx->entity_keys & (1u << i))
				return fail (ctx, "'%s' is set twice", name);
			ctx->entity_keys |= 1u << i;
			return 1;
		}
	}
	return 1;
}

static int
anchor_key (struct parse_ctx *ctx, const char *name, const char *value)
{
	static const char *const keys[] = { "format", "file", "kid", "profile" };
	struct conf_anchor *a = ctx->anchor;
	if (!once (ctx, name, keys, sizeof keys / sizeof keys[0]))
		return 0;
	if (!strcmp (name, "format")) {
		if (strcmp (value, "tpm2-quote") && strcmp (value, "eat") && strcmp (value, "ear"))
			return fail (ctx, "'format' must be tpm2-quote, eat or ear, not '%s'", value);
		return set_string (ctx, &a->format, name, value);
	} else if (!strcmp (name, "file")) {
		return set_path (ctx, &a->file, name, value);
	} else if (!strcmp (name, "kid")) {
		if (!util_hex_decode (value, strlen (value), a->kid, sizeof a->kid, &a->kid_len))
			return fail (ctx, "'kid' must be 1 to %d bytes in hex, not '%s'", CONF_KID_MAX, value);
	} else if (!strcmp (name, "profile")) {
		return set_string (ctx, &a->profile, name, value);
	} else {
		return fail (ctx, "unknown key '%s' in [anchor:%s]", name, a->name);
	}
	return 1;
}

static int
policy_key (struct parse_ctx *ctx, const char *name, const char *value)
{
	struct conf_policy *p = ctx->policy;
	if (!strcmp (name, "file"))
		return set_path (ctx, &p->file, name, value);
	return fail (ctx, "unknown key '%s' in [policy:%s]", name, p->name);
}

static int
collector_key (struct parse_ctx *ctx, const char *name, const char *value)
{
	static const char *const keys[] = { "type", "tcti", "ak-handle", "pcrs", "command",
		                            "timeout-ms", "max-output" };
	struct conf_collector *k = ctx->collector;
	if (!once (ctx, name, keys, sizeof keys / sizeof keys[0]))
		return 0;
	if (!strcmp (name, "type")) {
		if (!strcmp (value, "tpm2-quote"))
			k->type = CONF_COLLECTOR_TPM2_QUOTE;
		else if (!strcmp (value, "command"))
			k->type = CONF_COLLECTOR_COMMAND;
		else
			return fail (ctx, "'type' must be tpm2-quote or command, not '%s'", value);
	} else if (!strcmp (name, "tcti")) {
		return set_string (ctx, &k->tcti, name, value);
	} else if (!strcmp (name, "ak-handle")) {
		char *end = NULL;
		errno = 0;
		k->ak_handle = strtoul (value, &end, 16);
		if (errno || !end || *end || strncmp (value, "0x", 2) || k->ak_handle < 0x81000000UL ||
		    k->ak_handle > 0x81ffffffUL)
			return fail (ctx, "'ak-handle' must be a persistent handle 0x81000000..0x81ffffff, "
			                  "not '%s'", value);
	} else if (!strcmp (name, "pcrs")) {
		return set_string (ctx, &k->pcrs, name, value);
	} else if (!strcmp (name, "command")) {
		/* Words separated by blanks; no shell, no quoting. */
		char *copy = strdup (value), *save = NULL;
		if (!copy)
			return fail (ctx, "out of memory");
		for (char *w = strtok_r (copy, " \t", &save); w; w = strtok_r (NULL, " \t", &save)) {
			if (k->argc >= CONF_MAX_ARGS) {
				free (copy);
				return fail (ctx, "'command' has more than %d words", CONF_MAX_ARGS);
			}
			if (!(k->argv[k->argc++] = strdup (w))) {
				free (copy);
				return fail (ctx, "out of memory");
			}
		}
		free (copy);
		if (k->argc == 0 || k->argv[0][0] != '/')
			return fail (ctx, "'command' must start with an absolute program path, not '%s'",
			             value);
	} else if (!strcmp (name, "timeout-ms")) {
		if (!parse_uint (value, CONF_MAX_COLLECT_TIMEOUT_MS, &k->timeout_ms) || k->timeout_ms == 0)
			return fail (ctx, "'timeout-ms' must be an integer from 1 to %d, not '%s'",
			             CONF_MAX_COLLECT_TIMEOUT_MS, value);
	} else if (!strcmp (name, "max-output")) {
		if (!parse_uint (value, CONF_MAX_COLLECT_MAX_OUTPUT, &k->max_output) || k->max_output == 0)
			return fail (ctx, "'max-output' must be an integer from 1 to %d (bytes), not '%s'",
			             CONF_MAX_COLLECT_MAX_OUTPUT, value);
	} else {
		return fail (ctx, "unknown key '%s' in [collector:%s]", name, k->name);
	}
	return 1;
}

/* Append a zeroed element to a named-entity array. */
static void *
grow (struct parse_ctx *ctx, void **array, size_t *n, size_t size, size_t max, const char *what)
{
	char *a;
	if (*n >= max) {
		fail (ctx, "more than %zu %s", max, what);
		return NULL;
	}
	a = realloc (*array, (*n + 1) * size);
	if (!a) {
		fail (ctx, "out of memory");
		return NULL;
	}
	*array = a;
	memset (a + *n * size, 0, size);
	return a + (*n)++ * size;
}

static int
begin_section (struct parse_ctx *ctx, const char *section)
{
	struct conf *c = ctx->conf;
	const char *colon = strchr (section, ':');
	ctx->slot = NULL;
	ctx->anchor = NULL;
	ctx->policy = NULL;
	ctx->collector = NULL;
	ctx->entity_keys = 0;
	ctx->in_module = false;
	if (!strcmp (section, "module")) {
		ctx->in_module = true;
		return 1;
	}
	if (colon && strncmp (section, "slot:", 5) != 0) {
		const char *name = colon + 1;
		char *dst;
		if (!valid_name (name, CONF_NAME_MAX))
			return fail (ctx, "invalid name '%s': 1 to %d of A-Z a-z 0-9 . _ -", name,
			             CONF_NAME_MAX);
		if (!strncmp (section, "anchor:", 7)) {
			ctx->anchor = grow (ctx, (void **)&c->anchors, &c->n_anchors, sizeof *c->anchors,
			                    CONF_MAX_ANCHORS, "anchors");
			dst = ctx->anchor ? ctx->anchor->name : NULL;
		} else if (!strncmp (section, "policy:", 7)) {
			ctx->policy = grow (ctx, (void **)&c->policies, &c->n_policies, sizeof *c->policies,
			                    CONF_MAX_POLICIES, "policies");
			dst = ctx->policy ? ctx->policy->name : NULL;
		} else if (!strncmp (section, "collector:", 10)) {
			ctx->collector = grow (ctx, (void **)&c->collectors, &c->n_collectors,
			                       sizeof *c->collectors, CONF_MAX_COLLECTORS, "collectors");
			if (ctx->collector) {
				ctx->collector->timeout_ms = CONF_DEFAULT_COLLECT_TIMEOUT_MS;
				ctx->collector->max_output = CONF_DEFAULT_COLLECT_MAX_OUTPUT;
			}
			dst = ctx->collector ? ctx->collector->name : NULL;
		} else {
			return fail (ctx, "unknown section [%s] (expected [module], [slot:NAME], "
			                  "[anchor:NAME], [policy:NAME] or [collector:NAME])", section);
		}
		if (!dst)
			return 0;
		snprintf (dst, CONF_NAME_MAX + 1, "%s", name);
		return 1;
	}
	if (strncmp (section, "slot:", 5) != 0)
		return fail (ctx, "unknown section [%s] (expected [module], [slot:NAME], [anchor:NAME], "
		                  "[policy:NAME] or [collector:NAME])", section);
	if (!valid_name (section + 5, CONF_SLOT_NAME_MAX))
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
	if (ctx->anchor)
		return anchor_key (ctx, name, value);
	if (ctx->policy)
		return policy_key (ctx, name, value);
	if (ctx->collector)
		return collector_key (ctx, name, value);
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
	conf->clock_skew = CONF_DEFAULT_CLOCK_SKEW;
	conf->audit_fsync = LEDGER_FSYNC_BATCH;
	conf->audit_batch_ms = LEDGER_DEFAULT_BATCH_MS;
	conf->audit_batch_max = LEDGER_DEFAULT_BATCH_MAX;
}

const struct conf_anchor *
conf_find_anchor (const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_anchors; i++) {
		if (!strcmp (conf->anchors[i].name, name))
			return &conf->anchors[i];
	}
	return NULL;
}

const struct conf_policy *
conf_find_policy (const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_policies; i++) {
		if (!strcmp (conf->policies[i].name, name))
			return &conf->policies[i];
	}
	return NULL;
}

const struct conf_collector *
conf_find_collector (const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_collectors; i++) {
		if (!strcmp (conf->collectors[i].name, name))
			return &conf->collectors[i];
	}
	return NULL;
}

/* A section's name after its "kind:", and whether it is of @kind. */
static bool
section_is (const char *section, const char *kind, const char **name)
{
	size_t n = strlen (kind);
	if (strncmp (section, kind, n) != 0 || section[n] != ':')
		return false;
	*name = section + n + 1;
	return true;
}

static bool
check_anchor (const struct conf_anchor *a, char *msg, size_t len)
{
	if (!a->format) {
		snprintf (msg, len, "anchor '%s': 'format' (tpm2-quote, eat or ear) is required", a->name);
		return false;
	}
	if (!a->file) {
		snprintf (msg, len, "anchor '%s': 'file' (a PEM public key or certificate) is required",
		          a->name);
		return false;
	}
	if (a->profile && !strcmp (a->format, "tpm2-quote")) {
		snprintf (msg, len, "anchor '%s': 'profile' is for eat and ear anchors", a->name);
		return false;
	}
	return true;
}

static bool
check_collector (const struct conf_collector *k, char *msg, size_t len)
{
	if (!k->type) {
		snprintf (msg, len, "collector '%s': 'type' (tpm2-quote or command) is required", k->name);
		return false;
	}
	if (k->type == CONF_COLLECTOR_TPM2_QUOTE) {
		if (!k->ak_handle || !k->pcrs) {
			snprintf (msg, len, "collector '%s': a tpm2-quote collector needs 'ak-handle' and "
			          "'pcrs'", k->name);
			return false;
		}
		if (k->argc) {
			snprintf (msg, len, "collector '%s': 'command' is for command collectors", k->name);
			return false;
		}
	} else {
		if (!k->argc) {
			snprintf (msg, len, "collector '%s': a command collector needs 'command'", k->name);
			return false;
		}
		if (k->tcti || k->ak_handle || k->pcrs) {
			snprintf (msg, len, "collector '%s': 'tcti', 'ak-handle' and 'pcrs' are for "
			          "tpm2-quote collectors", k->name);
			return false;
		}
	}
	return true;
}

/* Names a slot refers to exist. */
static bool
check_slot_refs (const struct conf *c, const struct conf_slot *s, char *msg, size_t len)
{
	if (s->policy && !conf_find_policy (c, s->policy)) {
		snprintf (msg, len, "slot '%s': 'policy' names '%s', but there is no [policy:%s]", s->name,
		          s->policy, s->policy);
		return false;
	}
	for (size_t i = 0; i < s->n_bindings; i++) {
		if (!conf_find_policy (c, s->bindings[i].policy)) {
			snprintf (msg, len, "slot '%s': 'key-policy' names '%s', but there is no [policy:%s]",
			          s->name, s->bindings[i].policy, s->bindings[i].policy);
			return false;
		}
	}
	for (size_t i = 0; i < s->n_collectors; i++) {
		if (!conf_find_collector (c, s->collectors[i])) {
			snprintf (msg, len, "slot '%s': 'collectors' names '%s', but there is no "
			          "[collector:%s]", s->name, s->collectors[i], s->collectors[i]);
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp (s->collectors[i], s->collectors[j])) {
				snprintf (msg, len, "slot '%s': collector '%s' is listed twice", s->name,
				          s->collectors[i]);
				return false;
			}
		}
	}
	return true;
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
	struct section_line sections[CONF_MAX_SECTIONS];
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
	if (!out->audit_ledger != !out->audit_key) {
		snprintf (err, errlen, "%s: 'audit-ledger' and 'audit-key' go together (the ledger is "
		          "signed with the key)", path);
		return false;
	}
	if (!out->state_dir && !(out->state_dir = strdup (P11W_STATE_DIR))) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	/* Every header has keys (inih skips an empty section silently), and the
	 * sections are complete; whole-section errors name the section's line. */
	size_t slot = 0, anchor = 0, policy = 0, collector = 0;
	for (size_t i = 0; i < n_sections; i++) {
		char msg[400];
		const char *name = NULL, *have = NULL;
		bool ok = true;
		if (!strcmp (sections[i].name, "module"))
			continue;
		if (section_is (sections[i].name, "slot", &name)) {
			if (slot < out->n_slots && !strcmp (out->slots[slot].name, name)) {
				have = name;
				out->slots[slot].line = sections[i].line;
				ok = check_slot (&out->slots[slot], msg, sizeof msg) &&
				     check_slot_refs (out, &out->slots[slot], msg, sizeof msg);
				slot++;
			}
		} else if (section_is (sections[i].name, "anchor", &name)) {
			if (anchor < out->n_anchors && !strcmp (out->anchors[anchor].name, name)) {
				have = name;
				out->anchors[anchor].line = sections[i].line;
				ok = check_anchor (&out->anchors[anchor], msg, sizeof msg);
				anchor++;
			}
		} else if (section_is (sections[i].name, "policy", &name)) {
			if (policy < out->n_policies && !strcmp (out->policies[policy].name, name)) {
				have = name;
				out->policies[policy].line = sections[i].line;
				ok = out->policies[policy].file != NULL;
				if (!ok)
					snprintf (msg, sizeof msg, "policy '%s': 'file' (the policy document) is "
					          "required", name);
				policy++;
			}
		} else if (section_is (sections[i].name, "collector", &name)) {
			if (collector < out->n_collectors && !strcmp (out->collectors[collector].name, name)) {
				have = name;
				out->collectors[collector].line = sections[i].line;
				ok = check_collector (&out->collectors[collector], msg, sizeof msg);
				collector++;
			}
		} else {
			snprintf (err, errlen, "%s:%d: unknown section [%s] (expected [module], [slot:NAME], "
			          "[anchor:NAME], [policy:NAME] or [collector:NAME])", path, sections[i].line,
			          sections[i].name);
			return false;
		}
		if (!have) {
			snprintf (err, errlen, "%s:%d: section [%s] is empty", path, sections[i].line,
			          sections[i].name);
			return false;
		}
		if (!ok) {
			snprintf (err, errlen, "%s:%d: %s", path, sections[i].line, msg);
			return false;
		}
	}
	if (slot != out->n_slots || anchor != out->n_anchors || policy != out->n_policies ||
	    collector != out->n_collectors) {
		snprintf (err, errlen, "%s: internal error: sections and entries disagree", path);
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
	text = util_read_file (path, CONF_MAX_SIZE, UTIL_FILE_TEXT,
	                       "the configuration decides which keys are gated", NULL, missing, err,
	                       errlen);
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
		free (s->policy);
		for (size_t j = 0; j < s->n_bindings; j++) {
			free (s->bindings[j].policy);
			uri_clear (&s->bindings[j].uri);
		}
		free (s->bindings);
		for (size_t j = 0; j < s->n_collectors; j++)
			free (s->collectors[j]);
		free (s->collectors);
	}
	free (conf->slots);
	for (size_t i = 0; i < conf->n_anchors; i++) {
		free (conf->anchors[i].format);
		free (conf->anchors[i].file);
		free (conf->anchors[i].profile);
	}
	free (conf->anchors);
	for (size_t i = 0; i < conf->n_policies; i++)
		free (conf->policies[i].file);
	free (conf->policies);
	for (size_t i = 0; i < conf->n_collectors; i++) {
		struct conf_collector *k = &conf->collectors[i];
		free (k->tcti);
		free (k->pcrs);
		for (size_t j = 0; j < k->argc; j++)
			free (k->argv[j]);
	}
	free (conf->collectors);
	free (conf->state_dir);
	free (conf->audit_ledger);
	free (conf->audit_key);
	free (conf->path);
	memset (conf, 0, sizeof *conf);
}
