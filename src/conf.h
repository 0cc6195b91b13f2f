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

enum conf_backend { CONF_BACKEND_PKCS11 = 1 };

struct conf_uri {
	char *text;   /* as written, for logs */
	P11KitUri *uri;
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
};

struct conf {
	char *path;
	enum log_sink log_sink;
	enum log_level log_level;
	char *state_dir;
	unsigned int pin_max_failures;   /* 0: no lockout */
	unsigned int pin_kdf_iterations;
	unsigned int gate_cache_ms;      /* how long an ungated decision is kept */
	struct conf_slot *slots;
	size_t n_slots;
};

/* Defaults used for values the file does not set. */
#define CONF_DEFAULT_PIN_MAX_FAILURES 10
#define CONF_DEFAULT_PIN_KDF_ITERATIONS 200000
#define CONF_MIN_PIN_KDF_ITERATIONS 1000
#define CONF_DEFAULT_GATE_CACHE_MS 1000
#define CONF_MAX_GATE_CACHE_MS 60000

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
