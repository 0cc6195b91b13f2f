/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module configuration: one INI file, parsed by libinih, read once at
 * C_Initialize.  Every key is documented in p11-warden.conf(5).
 */
#ifndef P11W_CONF_H
#define P11W_CONF_H

#include "log.h"

#include <p11-kit/uri.h>
#include <stdbool.h>
#include <stddef.h>

#define CONF_MAX_SIZE (256 * 1024)
#define CONF_MAX_LINE 199 /* libinih (Debian) reads lines into 200 bytes */
#define CONF_MAX_SLOTS 64
#define CONF_SLOT_NAME_MAX 31
#define CONF_NAME_MAX 63          /* anchors, policies, collectors */
#define CONF_MAX_ANCHORS 64
#define CONF_MAX_POLICIES 64
#define CONF_MAX_COLLECTORS 16
#define CONF_MAX_SECTIONS (1 + CONF_MAX_SLOTS + CONF_MAX_ANCHORS + CONF_MAX_POLICIES + \
                           CONF_MAX_COLLECTORS)
#define CONF_MAX_BINDINGS 64      /* key-policy lines of one slot */
#define CONF_MAX_ARGS 16          /* words of a collector's command */
#define CONF_KID_MAX 64

enum conf_backend { CONF_BACKEND_PKCS11 = 1 };

struct conf_uri {
	char *text;   /* as written, for logs */
	P11KitUri *uri;
};

/* [anchor:NAME]: a public key that verifies one evidence format. */
struct conf_anchor {
	char name[CONF_NAME_MAX + 1];
	int line;
	char *format;                /* "tpm2-quote", "eat", "ear" */
	char *file;                  /* PEM public key or certificate */
	unsigned char kid[CONF_KID_MAX];
	size_t kid_len;              /* 0: no kid */
	char *profile;               /* eat/ear: the profile its tokens must carry */
};

/* [policy:NAME]: a policy document. */
struct conf_policy {
	char name[CONF_NAME_MAX + 1];
	int line;
	char *file;
};

enum conf_collector_type { CONF_COLLECTOR_TPM2_QUOTE = 1, CONF_COLLECTOR_COMMAND };

/* [collector:NAME]: where pulled evidence comes from. */
struct conf_collector {
	char name[CONF_NAME_MAX + 1];
	int line;
	enum conf_collector_type type;
	/* tpm2-quote */
	char *tcti;                  /* NULL: tctildr's default */
	unsigned long ak_handle;     /* 0 until set */
	char *pcrs;                  /* "sha256:0,1,16" */
	/* command */
	char *argv[CONF_MAX_ARGS + 1];  /* NULL-terminated; argv[0] absolute */
	size_t argc;
	unsigned int timeout_ms;
	unsigned int max_output;
};

/* key-policy = POLICY URI */
struct conf_binding {
	char *policy;
	struct conf_uri uri;
};

struct conf_slot {
	char name[CONF_SLOT_NAME_MAX + 1];
	int line;                    /* of the section header, for messages */
	enum conf_backend backend;   /* 0 until set */
	char *module;                /* backend module path */
	struct conf_uri token;       /* selects the backend token */
	char *pin_file;              /* backend user PIN */
	bool gated;                  /* default for the slot's keys: true */
	bool gated_set;
	struct conf_uri *ungated;    /* keys released without a verdict */
	size_t n_ungated;
	char *policy;                /* default policy of the slot's gated keys */
	struct conf_binding *bindings; /* key-policy, first match wins */
	size_t n_bindings;
	char **collectors;           /* names, in the order they run */
	size_t n_collectors;
};

struct conf {
	char *path;
	enum log_sink log_sink;
	enum log_level log_level;
	char *state_dir;
	unsigned int pin_max_failures;   /* 0: no lockout */
	unsigned int pin_kdf_iterations;
	unsigned int gate_cache_ms;      /* how long an ungated decision is kept */
	unsigned int clock_skew;         /* seconds allowed between clocks (EAT/EAR) */
	char *audit_ledger;              /* the audit ledger, or NULL: none */
	char *audit_key;                 /* its signing key (PEM) */
	int audit_fsync;                 /* enum ledger_fsync */
	unsigned int audit_batch_ms;
	unsigned int audit_batch_max;
	struct conf_slot *slots;
	size_t n_slots;
	struct conf_anchor *anchors;
	size_t n_anchors;
	struct conf_policy *policies;
	size_t n_policies;
	struct conf_collector *collectors;
	size_t n_collectors;
};

/* Defaults used for values the file does not set. */
#define CONF_DEFAULT_PIN_MAX_FAILURES 10
#define CONF_DEFAULT_PIN_KDF_ITERATIONS 200000
#define CONF_MIN_PIN_KDF_ITERATIONS 1000
#define CONF_DEFAULT_GATE_CACHE_MS 1000
#define CONF_MAX_GATE_CACHE_MS 60000
#define CONF_DEFAULT_CLOCK_SKEW 60
#define CONF_MAX_CLOCK_SKEW 3600
#define CONF_DEFAULT_COLLECT_TIMEOUT_MS 5000
#define CONF_MAX_COLLECT_TIMEOUT_MS 60000
#define CONF_DEFAULT_COLLECT_MAX_OUTPUT (64 * 1024)
#define CONF_MAX_COLLECT_MAX_OUTPUT (1024 * 1024)

const struct conf_anchor *conf_find_anchor (const struct conf *conf, const char *name);
const struct conf_policy *conf_find_policy (const struct conf *conf, const char *name);
const struct conf_collector *conf_find_collector (const struct conf *conf, const char *name);

/*
 * Load and validate @path.  On failure returns false and writes
 * "PATH:LINE: problem" into @err.  @missing_ok: a file that does not exist
 * is not an error; *@out then holds an empty configuration (no slots) and
 * *@missing is set.
 */
bool conf_load (const char *path, bool missing_ok, struct conf *out, bool *missing,
                char *err, size_t errlen);
/* Parse a NUL-terminated configuration text; @path is used in messages.
 * Always leaves *@out ready for conf_free(). */
bool conf_parse (const char *path, const char *text, struct conf *out, char *err, size_t errlen);
void conf_init_defaults (struct conf *conf);
void conf_free (struct conf *conf);

#endif /* P11W_CONF_H */
