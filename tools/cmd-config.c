/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The administration commands that change the configuration
 * (p11-warden(1)): slot add/list/remove/set, anchor enrol/list/remove,
 * policy add/remove/bind/list, collector add/list/remove, module set/show,
 * and token init/init-pin/set-pin.
 *
 * Every change goes through conf-edit.h: under the configuration's lock,
 * checked by the module's own parser before it is written, written
 * atomically, with the administrator's comments kept.  When the
 * configuration has an audit ledger, the change is recorded there before
 * the new file replaces the old one; a change that cannot be recorded is
 * not made.  Token changes go through the module itself (dlopen), so that
 * they are what pkcs11-tool --init-token would do, and the module records
 * them as it records any C_InitToken.
 */
#include "config.h"

#include "anchors.h"
#include "conf-edit.h"
#include "conf.h"
#include "evidence.h"
#include "ledger.h"
#include "log.h"
#include "pkcs11.h"
#include "policy.h"
#include "util.h"
#include "tool.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <p11-kit/uri.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#ifndef P11W_MODULE_FILE
#define P11W_MODULE_FILE "/usr/lib/x86_64-linux-gnu/pkcs11/p11-warden.so"
#endif

#define PIN_FILE_MAX 256
#define ANCHOR_WHY "a trust anchor decides which evidence is believed"

/* ------------------------------------------------------------ shared */

static void
fail_msg (const char *msg)
{
	fprintf (stderr, "p11-warden: %s\n", msg);
}

/* The account to name in the ledger: the login name (the person behind
 * sudo), else the uid. */
static void
admin_user (char *out, size_t len)
{
	if (getlogin_r (out, len) == 0 && out[0])
		return;
	snprintf (out, len, "uid %lu", (unsigned long)getuid ());
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

struct record {
	const char *slot;
	char reason[256];
	bool made;        /* the change is made already (a token's, through the module) */
	bool recorded;    /* record_admin wrote it (to the ledger below) */
	const struct conf *old; /* the configuration before (module set): a change
	                         * of the ledger itself goes to the old one too */
	char *ledger, *key; /* that ledger and its key, to say if it was not made */
	int fsync;
};

/*
 * conf_edit_commit()'s hook: record the change in the ledger the new
 * configuration names, before the file is replaced.  A ledger that cannot
 * be written refuses the change: an administrative action nobody can
 * audit is not made.
 */
static bool record_admin (const struct conf *conf, void *user, char *err, size_t errlen);

/* Moving or dropping the audit ledger is recorded in the one auditors
 * watch now, as well as in the new one (refused if it cannot be). */
static bool
record_in_old_ledger (const struct conf *conf, struct record *r, char *err, size_t errlen)
{
	const struct conf *old = r->old;
	struct record again;
	bool ok;
	if (!old || !old->audit_ledger)
		return true;
	if (conf->audit_ledger && !strcmp (conf->audit_ledger, old->audit_ledger) &&
	    conf->audit_key && old->audit_key && !strcmp (conf->audit_key, old->audit_key))
		return true;
	again = *r;
	again.old = NULL;
	again.made = true; /* its state is not the one the rename hangs on */
	ok = record_admin (old, &again, err, errlen);
	if (!ok)
		snprintf (err + strlen (err), errlen - strlen (err),
		          " (the ledger in use now must record its own replacement)");
	return ok;
}

static bool
record_admin (const struct conf *conf, void *user, char *err, size_t errlen)
{
	struct record *r = user;
	if (!record_in_old_ledger (conf, r, err, errlen))
		return false;
	struct ledger_options opt;
	struct ledger_record rec;
	char who[64], msg[512];
	int rc;

	if (!conf->audit_ledger)
		return true;
	memset (&opt, 0, sizeof opt);
	opt.path = conf->audit_ledger;
	opt.key_file = conf->audit_key;
	opt.fsync = (enum ledger_fsync)conf->audit_fsync;
	opt.batch_ms = conf->audit_batch_ms;
	opt.batch_max = conf->audit_batch_max;
	opt.flusher_thread = false;
	if (ledger_open (&opt, msg, sizeof msg) != 0) {
		snprintf (err, errlen, "audit ledger %s: %s; %s", conf->audit_ledger, msg,
		          r->made ? "the change is not recorded" : "the change is refused (every "
		          "administrative change is recorded); nothing was changed");
		return false;
	}
	admin_user (who, sizeof who);
	memset (&rec, 0, sizeof rec);
	rec.event = "admin";
	rec.slot = r->slot;
	rec.reason = r->reason;
	rec.user = who;
	rc = ledger_append (&rec);
	if (rc == 0)
		rc = ledger_flush ();
	if (rc == 0 && !r->made) {
		r->recorded = true;
		r->ledger = strdup (conf->audit_ledger);
		r->key = strdup (conf->audit_key);
		r->fsync = conf->audit_fsync;
	}
	if (rc != 0) {
		ledger_last_error (msg, sizeof msg);
		snprintf (err, errlen, "audit ledger %s: cannot record the change: %s; %s",
		          conf->audit_ledger, msg[0] ? msg : strerror (-rc),
		          r->made ? "the change is not recorded" : "the change is refused; nothing was "
		          "changed");
	}
	ledger_close ();
	return rc == 0;
}

/*
 * Open the configuration for editing (locked) and parse it as it is now,
 * so that the commands can check names against it with clear messages.
 * A file that does not exist yet is an empty configuration.
 */
static int
edit_begin (const char *path, struct conf_edit **e, struct conf *cur)
{
	char err[1024];
	char *text;

	conf_init_defaults (cur);
	*e = conf_edit_open (path, CONF_EDIT_WAIT_MS, err, sizeof err);
	if (!*e) {
		fail_msg (err);
		return EXIT_ENV;
	}
	text = conf_edit_text (*e, NULL);
	if (!text) {
		fail_msg ("out of memory");
		goto fail;
	}
	if (!conf_parse (conf_edit_path (*e), text, cur, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s\np11-warden: the configuration is not valid as it is; "
		         "fix it first (nothing was changed)\n", err);
		free (text);
		goto fail;
	}
	free (text);
	return 0;
fail:
	conf_free (cur);
	conf_edit_close (*e);
	*e = NULL;
	return EXIT_ENV;
}

/* The change was recorded, then could not be made (the rename failed: a
 * bind-mounted or immutable file): the ledger must not say it was. */
static void
record_not_made (struct record *r, const char *why)
{
	struct ledger_options opt;
	struct ledger_record rec;
	char who[64], msg[512], reason[768];

	memset (&opt, 0, sizeof opt);
	opt.path = r->ledger;
	opt.key_file = r->key;
	opt.fsync = (enum ledger_fsync)r->fsync;
	opt.batch_ms = LEDGER_DEFAULT_BATCH_MS;
	opt.batch_max = LEDGER_DEFAULT_BATCH_MAX;
	if (ledger_open (&opt, msg, sizeof msg) != 0) {
		fprintf (stderr, "p11-warden: audit ledger %s: %s: it records '%s', which was NOT made\n",
		         r->ledger, msg, r->reason);
		return;
	}
	admin_user (who, sizeof who);
	snprintf (reason, sizeof reason, "NOT MADE: %s: %.400s", r->reason, why);
	memset (&rec, 0, sizeof rec);
	rec.event = "admin";
	rec.slot = r->slot;
	rec.reason = reason;
	rec.user = who;
	rec.verdict = "fail";
	if (ledger_append (&rec) != 0 || ledger_flush () != 0)
		fprintf (stderr, "p11-warden: audit ledger %s: it records '%s', which was NOT made\n",
		         r->ledger, r->reason);
	ledger_close ();
}

static int
edit_commit (struct conf_edit *e, struct record *r)
{
	char err[1536];
	bool ok = conf_edit_commit (e, record_admin, r, NULL, err, sizeof err);
	if (!ok && r->recorded)
		record_not_made (r, err);
	free (r->ledger);
	free (r->key);
	r->ledger = r->key = NULL;
	r->recorded = false;
	if (!ok) {
		fail_msg (err);
		return EXIT_ENV;
	}
	return 0;
}

/* A change done: one line for people, one object for scripts. */
static void
report_change (const char *path, const char *what, const char *detail)
{
	if (json_out) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "changed", json_object_new_boolean (true));
		json_str (o, "conf", path);
		json_str (o, "action", what);
		json_str (o, "detail", detail);
		print_json (o);
	} else {
		printf ("%s: %s%s%s\n", path, what, detail ? ": " : "", detail ? detail : "");
	}
}

/* An RFC 7512 URI as the configuration takes it (conf.c's parse_uri):
 * 0, or a usage error naming the problem. */
static int
check_uri (const char *opt, const char *text, int flags)
{
	P11KitUri *u = p11_kit_uri_new ();
	int r, rc = 0;
	if (!u)
		return EXIT_ENV;
	r = p11_kit_uri_parse (text, flags, u);
	if (r != P11_KIT_URI_OK) {
		fprintf (stderr, "p11-warden: %s '%s': not a valid PKCS#11 URI: %s\n", opt, text,
		         p11_kit_uri_message (r));
		rc = EXIT_USAGE;
	} else if (p11_kit_uri_any_unrecognized (u)) {
		fprintf (stderr, "p11-warden: %s '%s': attributes p11-warden does not know\n", opt, text);
		rc = EXIT_USAGE;
	} else if (p11_kit_uri_get_pin_value (u) || p11_kit_uri_get_pin_source (u)) {
		fprintf (stderr, "p11-warden: %s '%s': a PIN does not belong in the configuration\n",
		         opt, text);
		rc = EXIT_USAGE;
	} else if (p11_kit_uri_get_module_name (u) || p11_kit_uri_get_module_path (u)) {
		fprintf (stderr, "p11-warden: %s '%s': names a module; the backend module is "
		         "--module\n", opt, text);
		rc = EXIT_USAGE;
	}
	p11_kit_uri_free (u);
	return rc;
}

/* The options of a command that takes only --conf (and --help): -1 to go
 * on, or the exit status. */
static int
conf_only_options (int argc, char **argv, const char *usage, const char *what,
                   const char **conf_file)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *conf_file = optarg; break;
		case 'h': fputs (usage, stdout); return 0;
		default: return usage_error ("%s: bad option", what);
		}
	}
	return -1;
}

/* Exactly one positional argument after the options. */
static const char *
one_name (int argc, char **argv, const char *what)
{
	if (optind != argc - 1) {
		usage_error ("%s needs exactly one NAME", what);
		return NULL;
	}
	return argv[optind];
}

/* ------------------------------------------------------------ slot */

static const char slot_usage[] =
	"usage: p11-warden slot add NAME --module PATH --token URI --pin-file PATH\n"
	"                           [--policy NAME] [--gated yes|no] [--conf FILE]\n"
	"       p11-warden slot list [--conf FILE]\n"
	"       p11-warden slot remove NAME [--conf FILE]\n"
	"       p11-warden slot set NAME [--collectors NAME,...] [--policy NAME]\n"
	"                           [--gated yes|no] [--ungated URI]... [--conf FILE]\n"
	"add: a [slot:NAME] section fronting the backend token URI selects (pkcs11:\n"
	"token=...) in the backend's PKCS#11 module, logged in with the PIN in\n"
	"--pin-file (a file others cannot read).  remove: the section (and the comment\n"
	"lines directly above it); the slot's token state stays in the state\n"
	"directory.  The change is checked by the module's parser, written\n"
	"atomically, and recorded in the audit ledger when there is one.\n"
	"set: change a slot: collectors = (replaced; --collectors '' removes the line:\n"
	"pushed evidence only), policy =, gated =, and an ungated = line per --ungated\n"
	"(repeatable; a URI already there is not added twice).\n";

static int slot_set (int argc, char **argv);

/* The backend PIN file: it must exist and stay private (conf(5)), but
 * the tool never reads it. */
static int
check_pin_file_mode (const char *path)
{
	struct stat st;
	if (path[0] != '/')
		return usage_error ("--pin-file must be an absolute path, not '%s'", path);
	if (stat (path, &st) != 0) {
		fprintf (stderr, "p11-warden: --pin-file %s: %s\n", path, strerror (errno));
		return EXIT_ENV;
	}
	if (!S_ISREG (st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH | S_IROTH))) {
		fprintf (stderr, "p11-warden: --pin-file %s: must be a regular file that others cannot "
		         "read and group and others cannot write (mode %03o; chmod 600)\n", path,
		         (unsigned)(st.st_mode & 0777));
		return EXIT_ENV;
	}
	return 0;
}

static int
slot_add (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "token", required_argument, NULL, 't' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "policy", required_argument, NULL, 'P' },
		{ "gated", required_argument, NULL, 'g' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *module = NULL, *token = NULL, *pin_file = NULL, *policy = NULL, *gated = NULL;
	const char *conf_file = NULL, *name;
	const char *keys[6], *values[6];
	char section[64], err[1024];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct stat st;
	struct record r = { 0 };
	size_t n = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': module = optarg; break;
		case 't': token = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'P': policy = optarg; break;
		case 'g': gated = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (slot_usage, stdout); return 0;
		default: return usage_error ("slot add: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "slot add")))
		return EXIT_USAGE;
	if (!valid_name (name, CONF_SLOT_NAME_MAX))
		return usage_error ("invalid slot name '%s': 1 to 31 of A-Z a-z 0-9 . _ -", name);
	if (!module || !token || !pin_file)
		return usage_error ("slot add needs --module, --token and --pin-file%s", NULL);
	if (gated && strcmp (gated, "yes") && strcmp (gated, "no"))
		return usage_error ("--gated must be yes or no, not '%s'", gated);
	if (policy && !valid_name (policy, CONF_NAME_MAX))
		return usage_error ("invalid policy name '%s'", policy);
	if (module[0] != '/')
		return usage_error ("--module must be an absolute path, not '%s'", module);
	if (stat (module, &st) != 0 || !S_ISREG (st.st_mode)) {
		fprintf (stderr, "p11-warden: --module %s: %s\n", module,
		         errno ? strerror (errno) : "not a regular file");
		return EXIT_ENV;
	}
	if ((rc = check_uri ("--token", token, P11_KIT_URI_FOR_TOKEN)) != 0)
		return rc;
	if ((rc = check_pin_file_mode (pin_file)) != 0)
		return rc;

	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	snprintf (section, sizeof section, "slot:%s", name);
	for (size_t i = 0; i < cur.n_slots; i++) {
		if (!strcmp (cur.slots[i].name, name)) {
			fprintf (stderr, "p11-warden: %s:%d: slot '%s' exists already; nothing was "
			         "changed\n", conf_edit_path (e), cur.slots[i].line, name);
			goto out;
		}
	}
	if (policy && !conf_find_policy (&cur, policy)) {
		fprintf (stderr, "p11-warden: %s: there is no [policy:%s] (add it first: p11-warden "
		         "policy add %s --file FILE); nothing was changed\n", conf_edit_path (e), policy,
		         policy);
		goto out;
	}
	keys[n] = "backend", values[n++] = "pkcs11";
	keys[n] = "module", values[n++] = module;
	keys[n] = "token", values[n++] = token;
	keys[n] = "pin-file", values[n++] = pin_file;
	if (gated)
		keys[n] = "gated", values[n++] = gated;
	if (policy)
		keys[n] = "policy", values[n++] = policy;
	if (!conf_edit_add_section (e, section, keys, values, n, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
		goto out;
	}
	r.slot = name;
	/* What the module will load and log in to, for the auditor. */
	snprintf (r.reason, sizeof r.reason, "slot add %s module=%.90s token=%.90s", name, module,
	          token);
	if ((rc = edit_commit (e, &r)) == 0) {
		char detail[128];
		snprintf (detail, sizeof detail, "slot '%s'", name);
		report_change (conf_edit_path (e), "slot added", detail);
	}
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
slot_remove (int argc, char **argv)
{
	const char *conf_file = NULL, *name;
	char section[64], err[1024];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	int c, rc;

	if ((c = conf_only_options (argc, argv, slot_usage, "slot remove", &conf_file)) >= 0)
		return c;
	if (!(name = one_name (argc, argv, "slot remove")))
		return EXIT_USAGE;
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	snprintf (section, sizeof section, "slot:%.40s", name);
	if (!valid_name (name, CONF_SLOT_NAME_MAX) || !conf_edit_has_section (e, section, NULL)) {
		fprintf (stderr, "p11-warden: %s: unknown slot '%s'; nothing was changed\n",
		         conf_edit_path (e), name);
		goto out;
	}
	if (!conf_edit_remove_section (e, section, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s\n", conf_edit_path (e), err);
		goto out;
	}
	r.slot = name;
	snprintf (r.reason, sizeof r.reason, "slot remove %s", name);
	if ((rc = edit_commit (e, &r)) == 0) {
		char detail[PATH_MAX + 160];
		snprintf (detail, sizeof detail, "slot '%s' (its token state %s/%s.token is kept; "
		          "remove it to forget the token)", name, cur.state_dir, name);
		report_change (conf_edit_path (e), "slot removed", detail);
	}
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
slot_list (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_file = NULL;
	struct json_object *arr = json_out ? json_object_new_array () : NULL;
	struct conf conf;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf_file = optarg; break;
		case 'h': fputs (slot_usage, stdout); json_object_put (arr); return 0;
		default: json_object_put (arr); return usage_error ("slot list: bad option%s", NULL);
		}
	}
	if (optind != argc) {
		json_object_put (arr);
		return usage_error ("slot list takes no arguments%s", NULL);
	}
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		json_object_put (arr);
		conf_free (&conf);
		return rc;
	}
	for (size_t i = 0; i < conf.n_slots; i++) {
		const struct conf_slot *s = &conf.slots[i];
		if (arr) {
			struct json_object *o = json_object_new_object (), *b = json_object_new_array ();
			json_str (o, "name", s->name);
			json_object_object_add (o, "slot-id", json_object_new_int64 ((int64_t)i));
			json_str (o, "backend", "pkcs11");
			json_str (o, "module", s->module);
			json_str (o, "token", s->token.text);
			json_str (o, "pin-file", s->pin_file);
			json_object_object_add (o, "gated", json_object_new_boolean (s->gated));
			json_str (o, "policy", s->policy);
			for (size_t j = 0; j < s->n_bindings; j++) {
				struct json_object *k = json_object_new_object ();
				json_str (k, "policy", s->bindings[j].policy);
				json_str (k, "uri", s->bindings[j].uri.text);
				json_object_array_add (b, k);
			}
			json_object_object_add (o, "key-policy", b);
			json_object_object_add (o, "ungated", json_object_new_int64 ((int64_t)s->n_ungated));
			json_object_array_add (arr, o);
			continue;
		}
		printf ("%zu %s: %s, policy %s; backend %s in %s (PIN %s)\n", i, s->name,
		        s->gated ? "gated" : "NOT gated", s->policy ? s->policy : "(none)", s->token.text,
		        s->module, s->pin_file);
		for (size_t j = 0; j < s->n_bindings; j++)
			printf ("    key-policy %s %s\n", s->bindings[j].policy, s->bindings[j].uri.text);
		for (size_t j = 0; j < s->n_ungated; j++)
			printf ("    ungated %s\n", s->ungated[j].text);
	}
	if (arr)
		print_json (arr);
	else if (conf.n_slots == 0)
		printf ("%s: no slots\n", conf.path);
	conf_free (&conf);
	return 0;
}

int
cmd_slot (int argc, char **argv)
{
	if (!strcmp (argv[0], "add"))
		return slot_add (argc, argv);
	if (!strcmp (argv[0], "list"))
		return slot_list (argc, argv);
	if (!strcmp (argv[0], "remove"))
		return slot_remove (argc, argv);
	if (!strcmp (argv[0], "set"))
		return slot_set (argc, argv);
	if (!strcmp (argv[0], "--help")) {
		fputs (slot_usage, stdout);
		return 0;
	}
	return usage_error ("unknown slot command '%s' (add, list, remove, set)", argv[0]);
}

/* ------------------------------------------------------------ anchor */

static const char anchor_usage[] =
	"usage: p11-warden anchor enrol NAME --format tpm2-quote|eat|ear --file FILE\n"
	"                               [--kid HEX] [--profile P] [--conf FILE]\n"
	"       p11-warden anchor list [--conf FILE]\n"
	"       p11-warden anchor remove NAME [--conf FILE]\n"
	"enrol: FILE is a PEM public key or certificate, or (tpm2-quote) a\n"
	"TPM2B_PUBLIC as tpm2_createak -u writes it; its public key is copied to\n"
	"DIR/anchors/NAME.pem beside the configuration and an [anchor:NAME] section\n"
	"names it.  Key types: tpm2-quote RSA or EC (a restricted signing key);\n"
	"eat EC, RSA, Ed25519, Ed448; ear EC.  --kid and --profile: eat and ear.\n"
	"The SHA-256 fingerprint of the key (SubjectPublicKeyInfo) is printed:\n"
	"compare it with the one the key's owner gives.\n"
	"remove: refused while a policy names the anchor.\n";

/* anchors.c's rule (fits_format): the key types each verifier uses. */
static bool
fits_format (const char *format, EVP_PKEY *pkey)
{
	int id = EVP_PKEY_get_base_id (pkey);
	if (!strcmp (format, "tpm2-quote"))
		return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
	if (!strcmp (format, "ear"))
		return id == EVP_PKEY_EC;
	return id == EVP_PKEY_EC || id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS ||
	       id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448;
}

static void
key_desc (EVP_PKEY *pkey, char *out, size_t len)
{
	char group[64] = "";
	size_t glen = 0;
	if (EVP_PKEY_get_base_id (pkey) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param (pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
	                                    &glen))
		snprintf (out, len, "EC %s", group);
	else
		snprintf (out, len, "%s %d", EVP_PKEY_get0_type_name (pkey), EVP_PKEY_get_bits (pkey));
}

/* A TPM2B_PUBLIC (tpm2_createak -u, the "tss" format) as a public key.
 * Only a restricted signing key: one that is not restricted signs any
 * digest, including that of a forged quote. */
static EVP_PKEY *
tpm2b_public_key (const unsigned char *buf, size_t len, const char *path, char *err,
                  size_t errlen)
{
	TPM2B_PUBLIC pub;
	const TPMT_PUBLIC *t = &pub.publicArea;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	/* The builder keeps a pointer to the point until OSSL_PARAM_BLD_to_param. */
	unsigned char point[1 + 2 * 66];
	size_t off = 0;

	memset (&pub, 0, sizeof pub);
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal (buf, len, &off, &pub) != TSS2_RC_SUCCESS || off != len) {
		snprintf (err, errlen, "%s: neither PEM nor a TPM2B_PUBLIC (tpm2_createak -u)", path);
		return NULL;
	}
	if (!(t->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) ||
	    !(t->objectAttributes & TPMA_OBJECT_RESTRICTED)) {
		snprintf (err, errlen, "%s: not a restricted signing key (an attestation key, as "
		          "tpm2_createak makes): a key that is not restricted can sign a forged quote",
		          path);
		return NULL;
	}
	bld = OSSL_PARAM_BLD_new ();
	if (!bld)
		goto oom;
	if (t->type == TPM2_ALG_RSA) {
		UINT32 exp = t->parameters.rsaDetail.exponent ? t->parameters.rsaDetail.exponent : 65537;
		n = BN_bin2bn (t->unique.rsa.buffer, t->unique.rsa.size, NULL);
		e = BN_new ();
		if (!n || !e || !BN_set_word (e, exp) ||
		    !OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto oom;
		ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL);
	} else if (t->type == TPM2_ALG_ECC) {
		const char *group;
		size_t fl;
		switch (t->parameters.eccDetail.curveID) {
		case TPM2_ECC_NIST_P256: group = "prime256v1"; fl = 32; break;
		case TPM2_ECC_NIST_P384: group = "secp384r1"; fl = 48; break;
		case TPM2_ECC_NIST_P521: group = "secp521r1"; fl = 66; break;
		default:
			snprintf (err, errlen, "%s: TPM curve 0x%x is not P-256, P-384 or P-521", path,
			          (unsigned)t->parameters.eccDetail.curveID);
			goto out;
		}
		if (t->unique.ecc.x.size > fl || t->unique.ecc.y.size > fl) {
			snprintf (err, errlen, "%s: EC point larger than its curve", path);
			goto out;
		}
		/* Uncompressed point; the TPM may drop leading zero bytes. */
		memset (point, 0, sizeof point);
		point[0] = 0x04;
		memcpy (point + 1 + fl - t->unique.ecc.x.size, t->unique.ecc.x.buffer, t->unique.ecc.x.size);
		memcpy (point + 1 + 2 * fl - t->unique.ecc.y.size, t->unique.ecc.y.buffer,
		        t->unique.ecc.y.size);
		if (!OSSL_PARAM_BLD_push_utf8_string (bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string (bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * fl))
			goto oom;
		ctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
	} else {
		snprintf (err, errlen, "%s: a TPM key of type 0x%x; a tpm2-quote anchor is RSA or ECC",
		          path, (unsigned)t->type);
		goto out;
	}
	params = OSSL_PARAM_BLD_to_param (bld);
	if (!ctx || !params || EVP_PKEY_fromdata_init (ctx) <= 0 ||
	    EVP_PKEY_fromdata (ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		snprintf (err, errlen, "%s: the TPM public key is not a valid key", path);
		pkey = NULL;
	}
	goto out;
oom:
	snprintf (err, errlen, "out of memory");
out:
	OSSL_PARAM_free (params);
	OSSL_PARAM_BLD_free (bld);
	EVP_PKEY_CTX_free (ctx);
	BN_free (n);
	BN_free (e);
	return pkey;
}

/* The public key in @path: PEM (a public key or a certificate's subject
 * key), or, for tpm2-quote, a TPM2B_PUBLIC. */
static EVP_PKEY *
read_anchor_source (const char *path, const char *format, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = util_read_file (path, ANCHOR_FILE_MAX, 0, ANCHOR_WHY, &len, NULL, err, errlen);
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if (!buf)
		return NULL;
	if (memmem (buf, len, "-----BEGIN ", 11)) {
		bio = BIO_new_mem_buf (buf, (int)len);
		if (bio) {
			pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
			if (!pkey) {
				X509 *x;
				(void)BIO_reset (bio);
				x = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
				if (x) {
					pkey = X509_get_pubkey (x);
					X509_free (x);
				}
			}
			BIO_free (bio);
		}
		if (!pkey)
			snprintf (err, errlen, "%s: no PEM public key (\"PUBLIC KEY\") or certificate in it",
			          path);
	} else if (!strcmp (format, "tpm2-quote")) {
		pkey = tpm2b_public_key ((const unsigned char *)buf, len, path, err, errlen);
	} else {
		snprintf (err, errlen, "%s: not PEM (a %s anchor is a PEM public key or certificate)",
		          path, format);
	}
	free (buf);
	return pkey;
}

/* DIR/anchors beside the configuration: created 0755 if missing; a
 * directory (not a link) that only its owner (this account or root) can
 * write, since whoever can write it can replace the anchors. */
static int
anchors_dir (const char *conf_path, char *out, size_t len)
{
	const char *slash = strrchr (conf_path, '/');
	struct stat st;
	int n = snprintf (out, len, "%.*s/anchors", slash ? (int)(slash - conf_path) : 1,
	                  slash ? conf_path : ".");
	if (n < 0 || (size_t)n >= len) {
		fprintf (stderr, "p11-warden: %s: path too long\n", conf_path);
		return EXIT_ENV;
	}
	if (mkdir (out, 0755) != 0 && errno != EEXIST) {
		fprintf (stderr, "p11-warden: %s: cannot create: %s\n", out, strerror (errno));
		return EXIT_ENV;
	}
	if (lstat (out, &st) != 0 || !S_ISDIR (st.st_mode) ||
	    (st.st_uid != geteuid () && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		fprintf (stderr, "p11-warden: %s: must be a directory (not a link) owned by this "
		         "account or root and writable by no one else; %s\n", out, ANCHOR_WHY);
		return EXIT_ENV;
	}
	return 0;
}

/* Write @pkey's SubjectPublicKeyInfo as PEM to @path (mode 0644), through
 * a temporary file and rename; then load it back as the module will. */
static int
write_anchor_file (EVP_PKEY *pkey, const char *path)
{
	char tmp[PATH_MAX], err[1024];
	BIO *bio = BIO_new (BIO_s_mem ());
	EVP_PKEY *back = NULL;
	char *pem;
	long n;
	int fd = -1, rc = EXIT_ENV;

	if (!bio || !PEM_write_bio_PUBKEY (bio, pkey)) {
		fail_msg ("cannot encode the public key");
		BIO_free (bio);
		return EXIT_ENV;
	}
	n = BIO_get_mem_data (bio, &pem);
	if ((size_t)snprintf (tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp) {
		fail_msg ("anchor path too long");
		goto out;
	}
	fd = mkostemp (tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf (stderr, "p11-warden: %s: %s\n", tmp, strerror (errno));
		goto out;
	}
	if (write (fd, pem, (size_t)n) != n || fchmod (fd, 0644) != 0 || fsync (fd) != 0 ||
	    close (fd) != 0) {
		fprintf (stderr, "p11-warden: %s: cannot write: %s\n", tmp, strerror (errno));
		fd = -1;
		unlink (tmp);
		goto out;
	}
	fd = -1;
	back = anchor_load_key (tmp, err, sizeof err);
	if (!back || EVP_PKEY_eq (back, pkey) != 1) {
		fprintf (stderr, "p11-warden: the anchor does not read back: %s\n",
		         back ? "a different key" : err);
		unlink (tmp);
		goto out;
	}
	if (rename (tmp, path) != 0) {
		fprintf (stderr, "p11-warden: %s: %s\n", path, strerror (errno));
		unlink (tmp);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		close (fd);
		unlink (tmp);
	}
	EVP_PKEY_free (back);
	BIO_free (bio);
	return rc;
}

static int
anchor_enrol (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "file", required_argument, NULL, 'F' },
		{ "kid", required_argument, NULL, 'k' },
		{ "profile", required_argument, NULL, 'p' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL, *file = NULL, *kid = NULL, *profile = NULL, *conf_file = NULL;
	const char *name, *keys[4], *values[4];
	char section[80], err[1024], dir[PATH_MAX], dest[PATH_MAX], desc[64];
	char fp_hex[65], detail[PATH_MAX + 256];
	unsigned char kid_bin[CONF_KID_MAX], fp[32];
	size_t kid_len, n = 0;
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	EVP_PKEY *pkey = NULL;
	bool written = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'F': file = optarg; break;
		case 'k': kid = optarg; break;
		case 'p': profile = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (anchor_usage, stdout); return 0;
		default: return usage_error ("anchor enrol: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "anchor enrol")))
		return EXIT_USAGE;
	if (!valid_name (name, CONF_NAME_MAX))
		return usage_error ("invalid anchor name '%s': 1 to 63 of A-Z a-z 0-9 . _ -", name);
	if (!format || !file)
		return usage_error ("anchor enrol needs --format and --file%s", NULL);
	if (!evidence_format_known (format))
		return usage_error ("unknown format '%s' (tpm2-quote, eat, ear)", format);
	if ((kid || profile) && !strcmp (format, "tpm2-quote"))
		return usage_error ("--kid and --profile are for eat and ear anchors%s", NULL);
	if (kid && !util_hex_decode (kid, strlen (kid), kid_bin, sizeof kid_bin, &kid_len))
		return usage_error ("--kid must be 1 to 64 bytes in hex, not '%s'", kid);

	/* Check the key before taking the lock: nothing to undo. */
	pkey = read_anchor_source (file, format, err, sizeof err);
	if (!pkey) {
		fail_msg (err);
		return EXIT_ENV;
	}
	key_desc (pkey, desc, sizeof desc);
	if (!fits_format (format, pkey)) {
		fprintf (stderr, "p11-warden: %s: a %s key cannot verify %s evidence (tpm2-quote: RSA "
		         "or EC; eat: EC, RSA, Ed25519, Ed448; ear: EC)\n", file, desc, format);
		EVP_PKEY_free (pkey);
		return EXIT_ENV;
	}
	if (!anchor_fingerprint (pkey, fp)) {
		fail_msg ("cannot encode the key");
		EVP_PKEY_free (pkey);
		return EXIT_ENV;
	}
	hex (fp, sizeof fp, fp_hex, sizeof fp_hex);

	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0) {
		EVP_PKEY_free (pkey);
		return rc;
	}
	rc = EXIT_ENV;
	if (conf_find_anchor (&cur, name)) {
		fprintf (stderr, "p11-warden: %s:%d: anchor '%s' exists already (remove it first to "
		         "replace it); nothing was changed\n", conf_edit_path (e),
		         conf_find_anchor (&cur, name)->line, name);
		goto out;
	}
	if ((rc = anchors_dir (conf_edit_path (e), dir, sizeof dir)) != 0)
		goto out;
	rc = EXIT_ENV;
	if ((size_t)snprintf (dest, sizeof dest, "%s/%s.pem", dir, name) >= sizeof dest) {
		fail_msg ("anchor path too long");
		goto out;
	}
	for (size_t i = 0; i < cur.n_anchors; i++) {
		if (!strcmp (cur.anchors[i].file, dest)) {
			fprintf (stderr, "p11-warden: %s:%d: anchor '%s' uses %s; nothing was changed\n",
			         conf_edit_path (e), cur.anchors[i].line, cur.anchors[i].name, dest);
			goto out;
		}
	}
	{
		/* A file there that no anchor uses is not this command's to
		 * replace (or to remove if the change then fails). */
		struct stat st;
		if (lstat (dest, &st) == 0) {
			fprintf (stderr, "p11-warden: %s exists already (no anchor uses it): remove it or "
			         "choose another name; nothing was changed\n", dest);
			goto out;
		}
	}
	snprintf (section, sizeof section, "anchor:%s", name);
	keys[n] = "format", values[n++] = format;
	keys[n] = "file", values[n++] = dest;
	if (kid)
		keys[n] = "kid", values[n++] = kid;
	if (profile)
		keys[n] = "profile", values[n++] = profile;
	if (!conf_edit_add_section (e, section, keys, values, n, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
		goto out;
	}
	/* The configuration names a copy nobody else can change, not the
	 * file it came from. */
	if ((rc = write_anchor_file (pkey, dest)) != 0)
		goto out;
	written = true;
	snprintf (r.reason, sizeof r.reason, "anchor enrol %s %s sha256:%s", name, format, fp_hex);
	if ((rc = edit_commit (e, &r)) != 0)
		goto out;
	if (json_out) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "changed", json_object_new_boolean (true));
		json_str (o, "conf", conf_edit_path (e));
		json_str (o, "action", "anchor enrolled");
		json_str (o, "anchor", name);
		json_str (o, "format", format);
		json_str (o, "file", dest);
		json_str (o, "key", desc);
		json_str (o, "fingerprint", fp_hex);
		json_str (o, "kid", kid);
		print_json (o);
	} else {
		snprintf (detail, sizeof detail, "anchor '%s' (%s, %s) in %s\n  fingerprint sha256:%s",
		          name, format, desc, dest, fp_hex);
		report_change (conf_edit_path (e), "anchor enrolled", detail);
	}
out:
	if (rc != 0 && written)
		unlink (dest);
	EVP_PKEY_free (pkey);
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
anchor_list (int argc, char **argv)
{
	const char *conf_file = NULL;
	struct json_object *arr;
	struct conf conf;
	int c, rc = 0;

	if ((c = conf_only_options (argc, argv, anchor_usage, "anchor list", &conf_file)) >= 0)
		return c;
	if (optind != argc)
		return usage_error ("anchor list takes no arguments%s", NULL);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	arr = json_out ? json_object_new_array () : NULL;
	for (size_t i = 0; i < conf.n_anchors; i++) {
		const struct conf_anchor *a = &conf.anchors[i];
		char err[1024], fp_hex[65] = "", kid[2 * CONF_KID_MAX + 1] = "", desc[64] = "";
		unsigned char fp[32];
		EVP_PKEY *pkey = anchor_load_key (a->file, err, sizeof err);
		if (pkey) {
			key_desc (pkey, desc, sizeof desc);
			if (!fits_format (a->format, pkey)) {
				snprintf (err, sizeof err, "a %s key cannot verify %s evidence", desc, a->format);
				EVP_PKEY_free (pkey);
				pkey = NULL;
			} else if (anchor_fingerprint (pkey, fp)) {
				hex (fp, sizeof fp, fp_hex, sizeof fp_hex);
			}
		}
		if (!pkey)
			rc = EXIT_ENV; /* the module would not start */
		if (a->kid_len)
			hex (a->kid, a->kid_len, kid, sizeof kid);
		if (arr) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "name", a->name);
			json_str (o, "format", a->format);
			json_str (o, "file", a->file);
			json_object_object_add (o, "ok", json_object_new_boolean (pkey != NULL));
			if (pkey) {
				json_str (o, "key", desc);
				json_str (o, "fingerprint", fp_hex);
			} else {
				json_str (o, "error", err);
			}
			json_str (o, "kid", a->kid_len ? kid : NULL);
			json_str (o, "profile", a->profile);
			json_object_array_add (arr, o);
		} else {
			printf ("%s: %s, %s\n", a->name, a->format, a->file);
			if (pkey)
				printf ("    %s, fingerprint sha256:%s\n", desc, fp_hex);
			else
				printf ("    ERROR: %s\n", err);
			if (a->kid_len)
				printf ("    kid %s\n", kid);
			if (a->profile)
				printf ("    profile %s\n", a->profile);
		}
		EVP_PKEY_free (pkey);
	}
	if (arr)
		print_json (arr);
	else if (conf.n_anchors == 0)
		printf ("%s: no anchors\n", conf.path);
	conf_free (&conf);
	return rc;
}

struct anchor_use {
	const char *anchor;
	char path[256];
	bool found;
};

static bool
names_anchor (const char *format, const char *anchor, const char *path, void *user)
{
	struct anchor_use *u = user;
	(void)format;
	if (strcmp (anchor, u->anchor) != 0)
		return true;
	snprintf (u->path, sizeof u->path, "%s", path);
	u->found = true;
	return false;
}

static int
anchor_remove (int argc, char **argv)
{
	const char *conf_file = NULL, *name;
	char section[80], err[1024], dir[PATH_MAX], managed[PATH_MAX] = "";
	const struct conf_anchor *a;
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	int c, rc;

	if ((c = conf_only_options (argc, argv, anchor_usage, "anchor remove", &conf_file)) >= 0)
		return c;
	if (!(name = one_name (argc, argv, "anchor remove")))
		return EXIT_USAGE;
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	a = conf_find_anchor (&cur, name);
	if (!a) {
		fprintf (stderr, "p11-warden: %s: unknown anchor '%s'; nothing was changed\n",
		         conf_edit_path (e), name);
		goto out;
	}
	/* A policy naming a missing anchor makes C_Initialize fail: refuse
	 * while any does, or might (one that does not load). */
	for (size_t i = 0; i < cur.n_policies; i++) {
		struct anchor_use u = { .anchor = name };
		struct policy *p = policy_load_file (cur.policies[i].file, err, sizeof err);
		if (!p) {
			fprintf (stderr, "p11-warden: policy '%s' does not load, so whether it names anchor "
			         "'%s' is not known: %s; nothing was changed\n", cur.policies[i].name, name,
			         err);
			goto out;
		}
		policy_for_each_anchor (p, names_anchor, &u);
		policy_free (p);
		if (u.found) {
			fprintf (stderr, "p11-warden: anchor '%s' is named by policy '%s' (%s, at %s); "
			         "change the policy first; nothing was changed\n", name,
			         cur.policies[i].name, cur.policies[i].file, u.path);
			goto out;
		}
	}
	/* The copy enrol made goes with it; a file enrolled by hand stays. */
	if (anchors_dir (conf_edit_path (e), dir, sizeof dir) == 0) {
		char mine[PATH_MAX];
		if ((size_t)snprintf (mine, sizeof mine, "%s/%s.pem", dir, name) < sizeof mine &&
		    !strcmp (mine, a->file))
			snprintf (managed, sizeof managed, "%s", mine);
	}
	snprintf (section, sizeof section, "anchor:%s", name);
	if (!conf_edit_remove_section (e, section, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s\n", conf_edit_path (e), err);
		goto out;
	}
	snprintf (r.reason, sizeof r.reason, "anchor remove %s", name);
	if ((rc = edit_commit (e, &r)) != 0)
		goto out;
	if (managed[0] && unlink (managed) != 0)
		fprintf (stderr, "p11-warden: warning: %s: %s\n", managed, strerror (errno));
	report_change (conf_edit_path (e), "anchor removed", name);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

int
cmd_anchor (int argc, char **argv)
{
	if (!strcmp (argv[0], "enrol") || !strcmp (argv[0], "enroll"))
		return anchor_enrol (argc, argv);
	if (!strcmp (argv[0], "list"))
		return anchor_list (argc, argv);
	if (!strcmp (argv[0], "remove"))
		return anchor_remove (argc, argv);
	if (!strcmp (argv[0], "--help")) {
		fputs (anchor_usage, stdout);
		return 0;
	}
	return usage_error ("unknown anchor command '%s' (enrol, list, remove)", argv[0]);
}

/* ------------------------------------------------------------ policy */

static const char policy_usage[] =
	"usage: p11-warden policy add NAME --file FILE [--conf FILE]\n"
	"       p11-warden policy remove NAME [--conf FILE]\n"
	"       p11-warden policy bind POLICY --slot SLOT [--key URI] [--conf FILE]\n"
	"       p11-warden policy list [--conf FILE]\n"
	"add: a [policy:NAME] section for the policy document FILE (absolute; it must\n"
	"load, and every anchor it names must be enrolled for its rule's format).\n"
	"remove: refused while a slot or key binds it.\n"
	"bind: without --key, POLICY becomes the slot's default (policy =); with\n"
	"--key, the gated keys the pkcs11: URI names use it (key-policy = POLICY URI;\n"
	"a binding of the same URI is changed in place).\n"
	"list: each policy, its file, whether it loads, its digest, what binds it.\n";

struct anchor_check {
	const struct conf *conf;
	char msg[512];
};

static bool
anchor_enrolled (const char *format, const char *anchor, const char *path, void *user)
{
	struct anchor_check *k = user;
	const struct conf_anchor *a = conf_find_anchor (k->conf, anchor);
	if (!a) {
		snprintf (k->msg, sizeof k->msg, "%s names anchor '%s', which is not enrolled "
		          "(p11-warden anchor enrol %s --format %s --file ...)", path, anchor, anchor,
		          format);
		return false;
	}
	if (strcmp (a->format, format) != 0) {
		snprintf (k->msg, sizeof k->msg, "%s names anchor '%s' for %s evidence, but it is a "
		          "%s anchor", path, anchor, format, a->format);
		return false;
	}
	return true;
}

/* The policy at @file loads, and names only anchors @conf has for its
 * formats (what the module checks at C_Initialize). */
static int
check_policy_file (const struct conf *conf, const char *file)
{
	char err[1024];
	struct anchor_check k = { .conf = conf };
	struct policy *p = policy_load_file (file, err, sizeof err);
	if (!p) {
		fprintf (stderr, "p11-warden: %s; nothing was changed\n", err);
		return EXIT_ENV;
	}
	if (!policy_for_each_anchor (p, anchor_enrolled, &k)) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", file, k.msg);
		policy_free (p);
		return EXIT_ENV;
	}
	policy_free (p);
	return 0;
}

static int
policy_add (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'F' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *conf_file = NULL, *name, *key = "file";
	char section[80], err[1024];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'F': file = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (policy_usage, stdout); return 0;
		default: return usage_error ("policy add: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "policy add")))
		return EXIT_USAGE;
	if (!valid_name (name, CONF_NAME_MAX))
		return usage_error ("invalid policy name '%s': 1 to 63 of A-Z a-z 0-9 . _ -", name);
	if (!file || file[0] != '/')
		return usage_error ("policy add needs --file with an absolute path%s", NULL);
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	if (conf_find_policy (&cur, name)) {
		fprintf (stderr, "p11-warden: %s:%d: policy '%s' exists already; nothing was changed\n",
		         conf_edit_path (e), conf_find_policy (&cur, name)->line, name);
		goto out;
	}
	if ((rc = check_policy_file (&cur, file)) != 0)
		goto out;
	rc = EXIT_ENV;
	snprintf (section, sizeof section, "policy:%s", name);
	if (!conf_edit_add_section (e, section, &key, &file, 1, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
		goto out;
	}
	snprintf (r.reason, sizeof r.reason, "policy add %s", name);
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "policy added", name);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
policy_remove (int argc, char **argv)
{
	const char *conf_file = NULL, *name;
	char section[80], err[1024];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	int c, rc;

	if ((c = conf_only_options (argc, argv, policy_usage, "policy remove", &conf_file)) >= 0)
		return c;
	if (!(name = one_name (argc, argv, "policy remove")))
		return EXIT_USAGE;
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	if (!conf_find_policy (&cur, name)) {
		fprintf (stderr, "p11-warden: %s: unknown policy '%s'; nothing was changed\n",
		         conf_edit_path (e), name);
		goto out;
	}
	for (size_t i = 0; i < cur.n_slots; i++) {
		const struct conf_slot *s = &cur.slots[i];
		bool bound = s->policy && !strcmp (s->policy, name);
		for (size_t j = 0; j < s->n_bindings && !bound; j++)
			bound = !strcmp (s->bindings[j].policy, name);
		if (bound) {
			fprintf (stderr, "p11-warden: policy '%s' is bound by slot '%s' (%s:%d); bind "
			         "another first; nothing was changed\n", name, s->name, conf_edit_path (e),
			         s->line);
			goto out;
		}
	}
	snprintf (section, sizeof section, "policy:%s", name);
	if (!conf_edit_remove_section (e, section, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s\n", conf_edit_path (e), err);
		goto out;
	}
	snprintf (r.reason, sizeof r.reason, "policy remove %s", name);
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "policy removed", name);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
policy_bind (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "slot", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *slot = NULL, *key = NULL, *conf_file = NULL, *name;
	const struct conf_policy *cp;
	const struct conf_slot *s = NULL;
	char section[80], err[1024], value[CONF_MAX_LINE + 1], was[CONF_MAX_LINE + 1] = "";
	char detail[CONF_MAX_LINE + 128];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	bool done = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': slot = optarg; break;
		case 'k': key = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (policy_usage, stdout); return 0;
		default: return usage_error ("policy bind: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "policy bind")))
		return EXIT_USAGE;
	if (!slot)
		return usage_error ("policy bind needs --slot%s", NULL);
	if (key && (rc = check_uri ("--key", key, P11_KIT_URI_FOR_OBJECT_ON_TOKEN)) != 0)
		return rc;
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	cp = conf_find_policy (&cur, name);
	if (!cp) {
		fprintf (stderr, "p11-warden: %s: unknown policy '%s' (add it first: p11-warden policy "
		         "add %s --file FILE); nothing was changed\n", conf_edit_path (e), name, name);
		goto out;
	}
	for (size_t i = 0; i < cur.n_slots; i++) {
		if (!strcmp (cur.slots[i].name, slot))
			s = &cur.slots[i];
	}
	if (!s) {
		fprintf (stderr, "p11-warden: %s: unknown slot '%s'; nothing was changed\n",
		         conf_edit_path (e), slot);
		goto out;
	}
	/* A binding to a policy that refuses everything is no binding. */
	if ((rc = check_policy_file (&cur, cp->file)) != 0)
		goto out;
	rc = EXIT_ENV;
	snprintf (section, sizeof section, "slot:%s", slot);
	if (!key) {
		if (s->policy)
			snprintf (was, sizeof was, "%s", s->policy);
		done = conf_edit_set (e, section, "policy", name, err, sizeof err);
		snprintf (detail, sizeof detail, "slot '%s': default policy '%s'%s%s%s", slot, name,
		          was[0] ? " (was '" : "", was, was[0] ? "')" : "");
	} else {
		if ((size_t)snprintf (value, sizeof value, "%s %s", name, key) >= sizeof value) {
			fprintf (stderr, "p11-warden: --key '%s': too long for one configuration line "
			         "(at most %d bytes)\n", key, CONF_MAX_LINE - 1);
			goto out;
		}
		/* The same URI bound again: change its line, not add a second
		 * one that would never match (the first match wins). */
		for (size_t i = 0; ; i++) {
			char line[CONF_MAX_LINE + 1];
			const char *sp;
			if (!conf_edit_get (e, section, "key-policy", i, line, sizeof line)) {
				done = conf_edit_add (e, section, "key-policy", value, err, sizeof err);
				break;
			}
			sp = strpbrk (line, " \t");
			if (!sp)
				continue;
			while (*sp == ' ' || *sp == '\t')
				sp++;
			if (!strcmp (sp, key)) {
				snprintf (was, sizeof was, "%.*s", (int)strcspn (line, " \t"), line);
				done = conf_edit_replace (e, section, "key-policy", i, value, err, sizeof err);
				break;
			}
		}
		snprintf (detail, sizeof detail, "slot '%s': keys %s use policy '%s'%s%s%s", slot, key,
		          name, was[0] ? " (was '" : "", was, was[0] ? "')" : "");
	}
	if (!done) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
		goto out;
	}
	r.slot = slot;
	snprintf (r.reason, sizeof r.reason, "policy bind %s slot %s%s%.160s", name, slot,
	          key ? " key " : "", key ? key : "");
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "policy bound", detail);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
policy_list (int argc, char **argv)
{
	const char *conf_file = NULL;
	struct json_object *arr;
	struct conf conf;
	int c, rc = 0;

	if ((c = conf_only_options (argc, argv, policy_usage, "policy list", &conf_file)) >= 0)
		return c;
	if (optind != argc)
		return usage_error ("policy list takes no arguments%s", NULL);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	arr = json_out ? json_object_new_array () : NULL;
	for (size_t i = 0; i < conf.n_policies; i++) {
		const struct conf_policy *cp = &conf.policies[i];
		char err[1024], digest[65] = "";
		struct policy *p = policy_load_file (cp->file, err, sizeof err);
		struct json_object *o = NULL, *bound = NULL;
		if (p)
			hex (policy_digest (p), 32, digest, sizeof digest);
		else
			rc = EXIT_NO; /* the policy refuses everything until it loads */
		if (arr) {
			o = json_object_new_object ();
			bound = json_object_new_array ();
			json_str (o, "name", cp->name);
			json_str (o, "file", cp->file);
			json_object_object_add (o, "loads", json_object_new_boolean (p != NULL));
			if (p)
				json_str (o, "digest", digest);
			else
				json_str (o, "error", err);
		} else {
			printf ("%s: %s\n", cp->name, cp->file);
			if (p)
				printf ("    loads, sha256:%s\n", digest);
			else
				printf ("    DOES NOT LOAD: %s\n", err);
		}
		for (size_t j = 0; j < conf.n_slots; j++) {
			const struct conf_slot *s = &conf.slots[j];
			if (s->policy && !strcmp (s->policy, cp->name)) {
				if (bound) {
					struct json_object *b = json_object_new_object ();
					json_str (b, "slot", s->name);
					json_object_array_add (bound, b);
				} else {
					printf ("    slot %s (default)\n", s->name);
				}
			}
			for (size_t k = 0; k < s->n_bindings; k++) {
				if (strcmp (s->bindings[k].policy, cp->name) != 0)
					continue;
				if (bound) {
					struct json_object *b = json_object_new_object ();
					json_str (b, "slot", s->name);
					json_str (b, "key", s->bindings[k].uri.text);
					json_object_array_add (bound, b);
				} else {
					printf ("    slot %s key %s\n", s->name, s->bindings[k].uri.text);
				}
			}
		}
		if (o) {
			json_object_object_add (o, "bound", bound);
			json_object_array_add (arr, o);
		}
		policy_free (p);
	}
	if (arr)
		print_json (arr);
	else if (conf.n_policies == 0)
		printf ("%s: no policies\n", conf.path);
	conf_free (&conf);
	return rc;
}

int
cmd_policy_admin (int argc, char **argv)
{
	if (!strcmp (argv[0], "add"))
		return policy_add (argc, argv);
	if (!strcmp (argv[0], "remove"))
		return policy_remove (argc, argv);
	if (!strcmp (argv[0], "bind"))
		return policy_bind (argc, argv);
	if (!strcmp (argv[0], "list"))
		return policy_list (argc, argv);
	if (!strcmp (argv[0], "--help")) {
		fputs (policy_usage, stdout);
		return 0;
	}
	return usage_error ("unknown policy command '%s' (check, test, add, remove, bind, list)",
	                    argv[0]);
}

/* ------------------------------------------------------------ slot set */

/* Append @s to the NUL-terminated @buf, truncating. */
static void
append (char *buf, size_t len, const char *s)
{
	size_t o = strlen (buf);
	if (o + 1 < len)
		snprintf (buf + o, len - o, "%s", s);
}

#define SLOT_SET_MAX_UNGATED 64

static int
slot_set (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "collectors", required_argument, NULL, 'C' },
		{ "policy", required_argument, NULL, 'P' },
		{ "gated", required_argument, NULL, 'g' },
		{ "ungated", required_argument, NULL, 'u' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *collectors = NULL, *policy = NULL, *gated = NULL, *conf_file = NULL, *name;
	const char *ungated[SLOT_SET_MAX_UNGATED];
	char names[CONF_MAX_COLLECTORS][CONF_NAME_MAX + 1];
	char copy[CONF_MAX_LINE + 1], list[CONF_MAX_LINE + 1] = "", section[64], err[1024];
	char detail[1024] = "", line[CONF_MAX_LINE + 1];
	const struct conf_slot *s = NULL;
	const struct conf_policy *cp = NULL;
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	size_t n_ungated = 0, n_names = 0, changes = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'C': collectors = optarg; break;
		case 'P': policy = optarg; break;
		case 'g': gated = optarg; break;
		case 'u':
			if (n_ungated >= SLOT_SET_MAX_UNGATED)
				return usage_error ("at most 64 --ungated at once%s", NULL);
			ungated[n_ungated++] = optarg;
			break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (slot_usage, stdout); return 0;
		default: return usage_error ("slot set: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "slot set")))
		return EXIT_USAGE;
	if (!collectors && !policy && !gated && n_ungated == 0)
		return usage_error ("slot set needs --collectors, --policy, --gated or --ungated%s",
		                    NULL);
	if (gated && strcmp (gated, "yes") && strcmp (gated, "no"))
		return usage_error ("--gated must be yes or no, not '%s'", gated);
	if (policy && !valid_name (policy, CONF_NAME_MAX))
		return usage_error ("invalid policy name '%s'", policy);
	if (collectors) {
		/* Names separated by commas or blanks, as conf.c reads the line;
		 * written back separated by blanks (p11-warden.conf(5)). */
		char *save = NULL;
		if (strlen (collectors) >= sizeof copy)
			return usage_error ("--collectors '%s': too long", collectors);
		snprintf (copy, sizeof copy, "%s", collectors);
		for (char *w = strtok_r (copy, " \t,", &save); w; w = strtok_r (NULL, " \t,", &save)) {
			if (!valid_name (w, CONF_NAME_MAX))
				return usage_error ("--collectors: invalid collector name '%s'", w);
			for (size_t i = 0; i < n_names; i++) {
				if (!strcmp (names[i], w))
					return usage_error ("--collectors: '%s' is listed twice", w);
			}
			if (n_names >= CONF_MAX_COLLECTORS)
				return usage_error ("--collectors: at most 16 collectors%s", NULL);
			snprintf (names[n_names++], sizeof names[0], "%s", w);
			if (list[0])
				append (list, sizeof list, " ");
			append (list, sizeof list, w);
		}
	}
	for (size_t i = 0; i < n_ungated; i++) {
		if ((rc = check_uri ("--ungated", ungated[i], P11_KIT_URI_FOR_OBJECT_ON_TOKEN)) != 0)
			return rc;
	}

	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	for (size_t i = 0; i < cur.n_slots; i++) {
		if (!strcmp (cur.slots[i].name, name))
			s = &cur.slots[i];
	}
	if (!s) {
		fprintf (stderr, "p11-warden: %s: unknown slot '%s'; nothing was changed\n",
		         conf_edit_path (e), name);
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		if (!conf_find_collector (&cur, names[i])) {
			fprintf (stderr, "p11-warden: %s: there is no [collector:%s] (add it first: "
			         "p11-warden collector add %s --type ...); nothing was changed\n",
			         conf_edit_path (e), names[i], names[i]);
			goto out;
		}
	}
	if (policy) {
		cp = conf_find_policy (&cur, policy);
		if (!cp) {
			fprintf (stderr, "p11-warden: %s: there is no [policy:%s] (add it first: p11-warden "
			         "policy add %s --file FILE); nothing was changed\n", conf_edit_path (e),
			         policy, policy);
			goto out;
		}
		/* A slot bound to a policy that refuses everything: as policy bind. */
		if ((rc = check_policy_file (&cur, cp->file)) != 0)
			goto out;
		rc = EXIT_ENV;
	}

	snprintf (section, sizeof section, "slot:%s", name);
	snprintf (r.reason, sizeof r.reason, "slot set %s", name);
	snprintf (detail, sizeof detail, "slot '%s':", name);
	if (collectors && list[0]) {
		if (!conf_edit_set (e, section, "collectors", list, err, sizeof err))
			goto edit_failed;
		append (r.reason, sizeof r.reason, " collectors=");
		for (size_t i = 0; i < n_names; i++) {
			append (r.reason, sizeof r.reason, i ? "," : "");
			append (r.reason, sizeof r.reason, names[i]);
		}
		append (detail, sizeof detail, " collectors ");
		append (detail, sizeof detail, list);
		append (detail, sizeof detail, ";");
		changes++;
	} else if (collectors) {
		/* --collectors '': the line goes (pushed evidence only). */
		if (conf_edit_get (e, section, "collectors", 0, line, sizeof line)) {
			if (!conf_edit_remove (e, section, "collectors", 0, err, sizeof err))
				goto edit_failed;
			append (r.reason, sizeof r.reason, " collectors=");
			append (detail, sizeof detail, " no collectors (was ");
			append (detail, sizeof detail, line);
			append (detail, sizeof detail, ");");
			changes++;
		}
	}
	if (policy) {
		if (!s->policy || strcmp (s->policy, policy) != 0) {
			if (!conf_edit_set (e, section, "policy", policy, err, sizeof err))
				goto edit_failed;
			append (r.reason, sizeof r.reason, " policy=");
			append (r.reason, sizeof r.reason, policy);
			append (detail, sizeof detail, " policy ");
			append (detail, sizeof detail, policy);
			append (detail, sizeof detail, ";");
			changes++;
		}
	}
	if (gated) {
		if (!s->gated_set || s->gated != !strcmp (gated, "yes")) {
			if (!conf_edit_set (e, section, "gated", gated, err, sizeof err))
				goto edit_failed;
			append (r.reason, sizeof r.reason, " gated=");
			append (r.reason, sizeof r.reason, gated);
			append (detail, sizeof detail, " gated ");
			append (detail, sizeof detail, gated);
			append (detail, sizeof detail, ";");
			changes++;
		}
	}
	for (size_t i = 0; i < n_ungated; i++) {
		bool have = false;
		/* The same URI again (in the file, or twice here) is one line. */
		for (size_t k = 0; !have && conf_edit_get (e, section, "ungated", k, line, sizeof line);
		     k++)
			have = !strcmp (line, ungated[i]);
		if (have)
			continue;
		if (!conf_edit_add (e, section, "ungated", ungated[i], err, sizeof err))
			goto edit_failed;
		append (r.reason, sizeof r.reason, " ungated=");
		append (r.reason, sizeof r.reason, ungated[i]);
		append (detail, sizeof detail, " ungated ");
		append (detail, sizeof detail, ungated[i]);
		append (detail, sizeof detail, ";");
		changes++;
	}
	if (changes == 0) {
		rc = 0;
		if (json_out) {
			struct json_object *o = json_object_new_object ();
			json_object_object_add (o, "changed", json_object_new_boolean (false));
			json_str (o, "conf", conf_edit_path (e));
			print_json (o);
		} else {
			printf ("%s: slot '%s' is already so; nothing to change\n", conf_edit_path (e), name);
		}
		goto out;
	}
	detail[strlen (detail) - 1] = '\0'; /* the last ';' */
	r.slot = name;
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "slot changed", detail);
	goto out;
edit_failed:
	fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

/* ------------------------------------------------------------ collector */

static const char collector_usage[] =
	"usage: p11-warden collector add NAME --type tpm2-quote --ak-handle 0x81xxxxxx\n"
	"                                --pcrs SELECTION [--tcti TCTI] [--conf FILE]\n"
	"       p11-warden collector add NAME --type command --command \"PATH ARG...\"\n"
	"                                [--timeout-ms N] [--max-output BYTES] [--conf FILE]\n"
	"       p11-warden collector list [--conf FILE]\n"
	"       p11-warden collector remove NAME [--conf FILE]\n"
	"add: a [collector:NAME] section (p11-warden.conf(5)): a TPM quote by the\n"
	"attestation key at the persistent handle, over the PCRs in SELECTION (such as\n"
	"sha256:0,1,7,16), through TCTI (default: tpm2-tss's choice); or a program\n"
	"(absolute path, arguments separated by blanks, no shell) that prints the\n"
	"evidence.  A slot runs it once listed: p11-warden slot set SLOT --collectors.\n"
	"remove: refused while a slot lists it.\n";

static int
collector_add (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "tcti", required_argument, NULL, 'T' },
		{ "ak-handle", required_argument, NULL, 'a' },
		{ "pcrs", required_argument, NULL, 'p' },
		{ "command", required_argument, NULL, 'x' },
		{ "timeout-ms", required_argument, NULL, 'o' },
		{ "max-output", required_argument, NULL, 'm' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *tcti = NULL, *ak = NULL, *pcrs = NULL, *command = NULL;
	const char *timeout = NULL, *max_output = NULL, *conf_file = NULL, *name;
	const char *keys[4], *values[4];
	char section[80], err[1024], detail[128];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	size_t n = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': type = optarg; break;
		case 'T': tcti = optarg; break;
		case 'a': ak = optarg; break;
		case 'p': pcrs = optarg; break;
		case 'x': command = optarg; break;
		case 'o': timeout = optarg; break;
		case 'm': max_output = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (collector_usage, stdout); return 0;
		default: return usage_error ("collector add: bad option%s", NULL);
		}
	}
	if (!(name = one_name (argc, argv, "collector add")))
		return EXIT_USAGE;
	if (!valid_name (name, CONF_NAME_MAX))
		return usage_error ("invalid collector name '%s': 1 to 63 of A-Z a-z 0-9 . _ -", name);
	if (!type)
		return usage_error ("collector add needs --type (tpm2-quote or command)%s", NULL);
	if (!strcmp (type, "tpm2-quote")) {
		unsigned long h;
		char *end = NULL;
		if (!ak || !pcrs)
			return usage_error ("a tpm2-quote collector needs --ak-handle and --pcrs%s", NULL);
		if (command || timeout || max_output)
			return usage_error ("--command, --timeout-ms and --max-output are for command "
			                    "collectors%s", NULL);
		/* conf.c's rule: a persistent handle, written in hex with 0x. */
		errno = 0;
		h = strtoul (ak, &end, 16);
		if (errno || !end || *end || strncmp (ak, "0x", 2) || h < 0x81000000UL ||
		    h > 0x81ffffffUL)
			return usage_error ("--ak-handle must be a persistent handle 0x81000000..0x81ffffff, "
			                    "not '%s'", ak);
		keys[n] = "type", values[n++] = type;
		if (tcti)
			keys[n] = "tcti", values[n++] = tcti;
		keys[n] = "ak-handle", values[n++] = ak;
		keys[n] = "pcrs", values[n++] = pcrs;
	} else if (!strcmp (type, "command")) {
		size_t plen = strcspn (command ? command : "", " \t");
		char prog[PATH_MAX];
		struct stat st;
		if (!command)
			return usage_error ("a command collector needs --command \"PATH ARG...\"%s", NULL);
		if (tcti || ak || pcrs)
			return usage_error ("--tcti, --ak-handle and --pcrs are for tpm2-quote "
			                    "collectors%s", NULL);
		if (command[0] != '/' || plen >= sizeof prog)
			return usage_error ("--command must start with an absolute program path, not '%s'",
			                    command);
		memcpy (prog, command, plen);
		prog[plen] = '\0';
		errno = 0;
		if (stat (prog, &st) != 0 || !S_ISREG (st.st_mode) || access (prog, X_OK) != 0) {
			fprintf (stderr, "p11-warden: --command %s: %s\n", prog,
			         errno ? strerror (errno) : "not an executable regular file");
			return EXIT_ENV;
		}
		keys[n] = "type", values[n++] = type;
		keys[n] = "command", values[n++] = command;
		if (timeout)
			keys[n] = "timeout-ms", values[n++] = timeout;
		if (max_output)
			keys[n] = "max-output", values[n++] = max_output;
	} else {
		return usage_error ("--type must be tpm2-quote or command, not '%s'", type);
	}

	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	if (conf_find_collector (&cur, name)) {
		fprintf (stderr, "p11-warden: %s:%d: collector '%s' exists already; nothing was "
		         "changed\n", conf_edit_path (e), conf_find_collector (&cur, name)->line, name);
		goto out;
	}
	snprintf (section, sizeof section, "collector:%s", name);
	if (!conf_edit_add_section (e, section, keys, values, n, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
		goto out;
	}
	/* What the module will run (or ask), for the auditor. */
	snprintf (r.reason, sizeof r.reason, "collector add %s", name);
	for (size_t i = 0; i < n; i++) {
		append (r.reason, sizeof r.reason, " ");
		append (r.reason, sizeof r.reason, keys[i]);
		append (r.reason, sizeof r.reason, "=");
		append (r.reason, sizeof r.reason, values[i]);
	}
	if ((rc = edit_commit (e, &r)) == 0) {
		snprintf (detail, sizeof detail, "collector '%s' (%s)", name, type);
		report_change (conf_edit_path (e), "collector added", detail);
	}
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
collector_list (int argc, char **argv)
{
	const char *conf_file = NULL;
	struct json_object *arr;
	struct conf conf;
	int c, rc;

	if ((c = conf_only_options (argc, argv, collector_usage, "collector list", &conf_file)) >= 0)
		return c;
	if (optind != argc)
		return usage_error ("collector list takes no arguments%s", NULL);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	arr = json_out ? json_object_new_array () : NULL;
	for (size_t i = 0; i < conf.n_collectors; i++) {
		const struct conf_collector *k = &conf.collectors[i];
		bool tpm = k->type == CONF_COLLECTOR_TPM2_QUOTE;
		struct json_object *o = NULL, *used = NULL;
		char handle[16];
		snprintf (handle, sizeof handle, "0x%08lx", k->ak_handle);
		if (arr) {
			o = json_object_new_object ();
			used = json_object_new_array ();
			json_str (o, "name", k->name);
			json_str (o, "type", tpm ? "tpm2-quote" : "command");
			if (tpm) {
				json_str (o, "tcti", k->tcti);
				json_str (o, "ak-handle", handle);
				json_str (o, "pcrs", k->pcrs);
			} else {
				struct json_object *a = json_object_new_array ();
				for (size_t j = 0; j < k->argc; j++)
					json_object_array_add (a, json_object_new_string (k->argv[j]));
				json_object_object_add (o, "command", a);
				json_object_object_add (o, "timeout-ms", json_object_new_int64 (k->timeout_ms));
				json_object_object_add (o, "max-output", json_object_new_int64 (k->max_output));
			}
		} else if (tpm) {
			printf ("%s: tpm2-quote, ak-handle %s, pcrs %s, tcti %s\n", k->name, handle, k->pcrs,
			        k->tcti ? k->tcti : "(tpm2-tss default)");
		} else {
			printf ("%s: command", k->name);
			for (size_t j = 0; j < k->argc; j++)
				printf (" %s", k->argv[j]);
			printf (", timeout %u ms, max-output %u bytes\n", k->timeout_ms, k->max_output);
		}
		for (size_t j = 0; j < conf.n_slots; j++) {
			const struct conf_slot *s = &conf.slots[j];
			for (size_t m = 0; m < s->n_collectors; m++) {
				if (strcmp (s->collectors[m], k->name) != 0)
					continue;
				if (used)
					json_object_array_add (used, json_object_new_string (s->name));
				else
					printf ("    slot %s\n", s->name);
			}
		}
		if (o) {
			json_object_object_add (o, "slots", used);
			json_object_array_add (arr, o);
		}
	}
	if (arr)
		print_json (arr);
	else if (conf.n_collectors == 0)
		printf ("%s: no collectors\n", conf.path);
	conf_free (&conf);
	return 0;
}

static int
collector_remove (int argc, char **argv)
{
	const char *conf_file = NULL, *name;
	char section[80], err[1024];
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	int c, rc;

	if ((c = conf_only_options (argc, argv, collector_usage, "collector remove", &conf_file)) >= 0)
		return c;
	if (!(name = one_name (argc, argv, "collector remove")))
		return EXIT_USAGE;
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	if (!conf_find_collector (&cur, name)) {
		fprintf (stderr, "p11-warden: %s: unknown collector '%s'; nothing was changed\n",
		         conf_edit_path (e), name);
		goto out;
	}
	/* A slot listing a missing collector makes the file invalid. */
	for (size_t i = 0; i < cur.n_slots; i++) {
		const struct conf_slot *s = &cur.slots[i];
		for (size_t j = 0; j < s->n_collectors; j++) {
			if (strcmp (s->collectors[j], name) != 0)
				continue;
			fprintf (stderr, "p11-warden: collector '%s' is listed by slot '%s' (%s:%d); change "
			         "the slot's collectors first (p11-warden slot set %s --collectors ...); "
			         "nothing was changed\n", name, s->name, conf_edit_path (e), s->line,
			         s->name);
			goto out;
		}
	}
	snprintf (section, sizeof section, "collector:%s", name);
	if (!conf_edit_remove_section (e, section, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s: %s\n", conf_edit_path (e), err);
		goto out;
	}
	snprintf (r.reason, sizeof r.reason, "collector remove %s", name);
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "collector removed", name);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

int
cmd_collector (int argc, char **argv)
{
	if (!strcmp (argv[0], "add"))
		return collector_add (argc, argv);
	if (!strcmp (argv[0], "list"))
		return collector_list (argc, argv);
	if (!strcmp (argv[0], "remove"))
		return collector_remove (argc, argv);
	if (!strcmp (argv[0], "--help")) {
		fputs (collector_usage, stdout);
		return 0;
	}
	return usage_error ("unknown collector command '%s' (add, list, remove)", argv[0]);
}

/* ------------------------------------------------------------ module */

static const char module_usage[] =
	"usage: p11-warden module set KEY=VALUE [KEY=VALUE...] [--conf FILE]\n"
	"       p11-warden module show [--conf FILE]\n"
	"set: the [module] keys of p11-warden.conf(5), all in one change (so that keys\n"
	"that go together, audit-ledger and audit-key, are set together); a key that is\n"
	"there changes in place, one that is not is added; [module] is created when\n"
	"missing.  The module's parser decides which keys and values are valid.  The\n"
	"change is recorded in the audit ledger the new configuration names.\n"
	"show: every [module] key with the value the module uses (defaults included).\n";

#define MODULE_SET_MAX 32

static int
module_set (int argc, char **argv)
{
	const char *conf_file = NULL, *keys[MODULE_SET_MAX], *values[MODULE_SET_MAX];
	char names[MODULE_SET_MAX][64], err[1024], detail[1024] = "";
	struct conf_edit *e = NULL;
	struct conf cur;
	struct record r = { 0 };
	size_t n = 0;
	int c, rc;

	if ((c = conf_only_options (argc, argv, module_usage, "module set", &conf_file)) >= 0)
		return c;
	if (optind >= argc)
		return usage_error ("module set needs KEY=VALUE ...%s", NULL);
	for (int i = optind; i < argc; i++) {
		const char *eq = strchr (argv[i], '=');
		size_t klen = eq ? (size_t)(eq - argv[i]) : 0;
		if (!eq || klen == 0 || klen >= sizeof names[0])
			return usage_error ("module set: '%s' is not KEY=VALUE", argv[i]);
		if (n >= MODULE_SET_MAX)
			return usage_error ("module set: too many keys%s", NULL);
		memcpy (names[n], argv[i], klen);
		names[n][klen] = '\0';
		for (size_t j = 0; j < n; j++) {
			if (!strcmp (names[j], names[n]))
				return usage_error ("module set: '%s' is given twice", names[n]);
		}
		keys[n] = names[n];
		values[n++] = eq + 1;
	}
	if ((rc = edit_begin (conf_path_default (conf_file), &e, &cur)) != 0)
		return rc;
	rc = EXIT_ENV;
	if (!conf_edit_has_section (e, "module", NULL)) {
		/* conf-edit.h adds a section at the end of the file; it has no
		 * edit that inserts one before the others.  The parser takes
		 * [module] anywhere. */
		if (!conf_edit_add_section (e, "module", keys, values, n, err, sizeof err))
			goto edit_failed;
	} else {
		for (size_t i = 0; i < n; i++) {
			if (!conf_edit_set (e, "module", keys[i], values[i], err, sizeof err))
				goto edit_failed;
		}
	}
	r.old = &cur;
	snprintf (r.reason, sizeof r.reason, "module set");
	for (size_t i = 0; i < n; i++) {
		append (r.reason, sizeof r.reason, " ");
		append (r.reason, sizeof r.reason, keys[i]);
		append (detail, sizeof detail, i ? "; " : "");
		append (detail, sizeof detail, keys[i]);
		append (detail, sizeof detail, " = ");
		append (detail, sizeof detail, values[i]);
	}
	if ((rc = edit_commit (e, &r)) == 0)
		report_change (conf_edit_path (e), "[module] set", detail);
	goto out;
edit_failed:
	fprintf (stderr, "p11-warden: %s: %s; nothing was changed\n", conf_edit_path (e), err);
out:
	conf_free (&cur);
	conf_edit_close (e);
	return rc;
}

static int
module_show (int argc, char **argv)
{
	static const char *const sinks[] = { "syslog", "stderr", "none" };
	static const char *const levels[] = { "error", "warning", "info", "debug" };
	static const char *const fsyncs[] = { "always", "batch", "none" };
	const char *conf_file = NULL;
	char num[7][16];
	struct conf conf;
	int c, rc;

	if ((c = conf_only_options (argc, argv, module_usage, "module show", &conf_file)) >= 0)
		return c;
	if (optind != argc)
		return usage_error ("module show takes no arguments%s", NULL);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	snprintf (num[0], sizeof num[0], "%u", conf.pin_max_failures);
	snprintf (num[1], sizeof num[1], "%u", conf.pin_kdf_iterations);
	snprintf (num[2], sizeof num[2], "%u", conf.gate_cache_ms);
	snprintf (num[3], sizeof num[3], "%u", conf.clock_skew);
	snprintf (num[4], sizeof num[4], "%u", conf.audit_batch_ms);
	snprintf (num[5], sizeof num[5], "%u", conf.audit_batch_max);
	{
		const char *k[] = { "log", "log-level", "state-dir", "pin-max-failures",
			            "pin-kdf-iterations", "gate-cache-ms", "clock-skew", "audit-ledger",
			            "audit-key", "audit-fsync", "audit-batch-ms", "audit-batch-max" };
		const char *v[] = {
			(unsigned)conf.log_sink < 3 ? sinks[conf.log_sink] : "?",
			(unsigned)conf.log_level < 4 ? levels[conf.log_level] : "?",
			conf.state_dir, num[0], num[1], num[2], num[3], conf.audit_ledger, conf.audit_key,
			(unsigned)conf.audit_fsync < 3 ? fsyncs[conf.audit_fsync] : "?", num[4], num[5],
		};
		struct json_object *o = json_out ? json_object_new_object () : NULL;
		if (!o)
			printf ("# %s: [module] as the module reads it (defaults included)\n[module]\n",
			        conf.path);
		for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
			if (o)
				json_str (o, k[i], v[i]);
			else if (v[i])
				printf ("%s = %s\n", k[i], v[i]);
			else
				printf ("# %s: not set\n", k[i]);
		}
		if (o)
			print_json (o);
	}
	conf_free (&conf);
	return 0;
}

int
cmd_module (int argc, char **argv)
{
	if (!strcmp (argv[0], "set"))
		return module_set (argc, argv);
	if (!strcmp (argv[0], "show"))
		return module_show (argc, argv);
	if (!strcmp (argv[0], "--help")) {
		fputs (module_usage, stdout);
		return 0;
	}
	return usage_error ("unknown module command '%s' (set, show)", argv[0]);
}

/* ------------------------------------------------------------ token */

static const char token_usage[] =
	"usage: p11-warden token init --slot NAME --label LABEL --so-pin-file FILE\n"
	"       p11-warden token init-pin --slot NAME --so-pin-file FILE --pin-file FILE\n"
	"       p11-warden token set-pin --slot NAME (--pin-file OLD | --so-pin-file OLD)\n"
	"                                --new-pin-file NEW\n"
	"       (each also [--module PATH] [--conf FILE])\n"
	"Through the module itself (C_InitToken, C_InitPIN, C_SetPIN), as pkcs11-tool\n"
	"would: --module, else $P11W_MODULE, else the installed p11-warden.so; the\n"
	"configuration is --conf, else $P11_WARDEN_CONF, else the default.\n"
	"init: (re)initialise the slot's token with LABEL and the SO PIN; init-pin: set\n"
	"the user PIN (as the SO); set-pin: change the user PIN (--pin-file) or the SO\n"
	"PIN (--so-pin-file).  PINs are read up to the first newline from files only\n"
	"their owner can read (mode 0600 or 0400); no PIN is ever printed.\n";

struct pin {
	char *v;
	size_t len;
};

static void
pin_clear (struct pin *p)
{
	if (p->v) {
		OPENSSL_cleanse (p->v, p->len);
		free (p->v);
	}
	p->v = NULL;
	p->len = 0;
}

static int
read_pin (const char *opt, const char *path, struct pin *out)
{
	char *buf = malloc (PIN_FILE_MAX);
	size_t len = 0;
	if (!buf) {
		fprintf (stderr, "p11-warden: %s: out of memory\n", opt);
		return EXIT_ENV;
	}
	/* The same rules as every other PIN file the tool reads. */
	if (tool_read_pin_file (path, buf, PIN_FILE_MAX, &len) != 0) {
		free (buf);
		return EXIT_ENV;
	}
	out->v = buf;
	out->len = len;
	return 0;
}

struct module {
	void *dl;
	CK_FUNCTION_LIST *f;
	bool initialized;
};

static void
module_close (struct module *m)
{
	if (m->initialized)
		m->f->C_Finalize (NULL);
	m->initialized = false;
	if (m->dl)
		dlclose (m->dl);
	m->dl = NULL;
}

static void
ckr_msg (const char *what, CK_RV rv)
{
	const char *name = log_ckr_name (rv);
	fprintf (stderr, "p11-warden: %s: %s (0x%lx)\n", what, name ? name : "error",
	         (unsigned long)rv);
}

/* Load the module with @conf_path as its configuration and find the slot
 * presented for [slot:@name] (its description names it). */
static int
module_open (const char *module_path, const char *conf_path, const char *name, struct module *m,
             CK_SLOT_ID *slot)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID ids[CONF_MAX_SLOTS];
	CK_ULONG n = CONF_MAX_SLOTS;
	char want[64];
	CK_RV rv;

	memset (m, 0, sizeof *m);
	if (setenv ("P11_WARDEN_CONF", conf_path, 1) != 0) {
		fail_msg ("cannot set P11_WARDEN_CONF");
		return EXIT_ENV;
	}
	m->dl = dlopen (module_path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		fprintf (stderr, "p11-warden: cannot load the module %s: %s (give --module or "
		         "P11W_MODULE)\n", module_path, dlerror ());
		return EXIT_ENV;
	}
	*(void **)&get = dlsym (m->dl, "C_GetFunctionList");
	if (!get || get (&m->f) != CKR_OK || !m->f) {
		fprintf (stderr, "p11-warden: %s: not a PKCS#11 module\n", module_path);
		module_close (m);
		return EXIT_ENV;
	}
	memset (&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize (&args);
	if (rv != CKR_OK) {
		ckr_msg ("C_Initialize (the module logged why, above)", rv);
		module_close (m);
		return EXIT_ENV;
	}
	m->initialized = true;
	rv = m->f->C_GetSlotList (CK_FALSE, ids, &n);
	if (rv != CKR_OK) {
		ckr_msg ("C_GetSlotList", rv);
		module_close (m);
		return EXIT_ENV;
	}
	snprintf (want, sizeof want, "p11-warden slot %s", name);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_SLOT_INFO info;
		size_t len = sizeof info.slotDescription;
		if (m->f->C_GetSlotInfo (ids[i], &info) != CKR_OK)
			continue;
		while (len > 0 && info.slotDescription[len - 1] == ' ')
			len--;
		if (len == strlen (want) && !memcmp (info.slotDescription, want, len)) {
			if (!(info.flags & CKF_TOKEN_PRESENT)) {
				fprintf (stderr, "p11-warden: slot '%s': the backend token is not there (its "
				         "'token' URI matches no token, or several)\n", name);
				module_close (m);
				return EXIT_ENV;
			}
			*slot = ids[i];
			return 0;
		}
	}
	fprintf (stderr, "p11-warden: the module presents no slot '%s'\n", name);
	module_close (m);
	return EXIT_ENV;
}

static int
token_cmd (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "slot", required_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'l' },
		{ "so-pin-file", required_argument, NULL, 'S' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "new-pin-file", required_argument, NULL, 'n' },
		{ "module", required_argument, NULL, 'm' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0], *slot_name = NULL, *label = NULL, *so_file = NULL;
	const char *pin_file = NULL, *new_file = NULL, *module = NULL, *conf_file = NULL, *conf_path;
	bool init = !strcmp (cmd, "init"), init_pin = !strcmp (cmd, "init-pin");
	bool set_pin = !strcmp (cmd, "set-pin");
	struct pin so = { 0 }, pin = { 0 }, npin = { 0 };
	struct module m = { 0 };
	struct conf conf;
	struct record r = { 0 };
	CK_SESSION_HANDLE sh = CK_INVALID_HANDLE;
	CK_SLOT_ID slot = 0;
	CK_RV rv = CKR_OK;
	char err[1536], what[64] = "";
	bool found = false;
	int c, rc;

	if (!init && !init_pin && !set_pin) {
		if (!strcmp (cmd, "--help")) {
			fputs (token_usage, stdout);
			return 0;
		}
		return usage_error ("unknown token command '%s' (init, init-pin, set-pin)", cmd);
	}
	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': slot_name = optarg; break;
		case 'l': label = optarg; break;
		case 'S': so_file = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'n': new_file = optarg; break;
		case 'm': module = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h': fputs (token_usage, stdout); return 0;
		default: return usage_error ("token: bad option%s", NULL);
		}
	}
	if (optind != argc)
		return usage_error ("token %s: unexpected argument", cmd);
	if (!slot_name)
		return usage_error ("token %s needs --slot", cmd);
	if (init && (!label || !so_file || pin_file || new_file))
		return usage_error ("token init needs --label and --so-pin-file (and no other PIN)%s",
		                    NULL);
	if (init && (strlen (label) == 0 || strlen (label) > 32))
		return usage_error ("--label must be 1 to 32 bytes, not '%s'", label);
	if (init_pin && (!so_file || !pin_file || new_file || label))
		return usage_error ("token init-pin needs --so-pin-file and --pin-file%s", NULL);
	if (set_pin && (!new_file || !so_file == !pin_file || label))
		return usage_error ("token set-pin needs --new-pin-file and one of --pin-file (the user "
		                    "PIN) or --so-pin-file (the SO PIN)%s", NULL);
	if (!module)
		module = getenv ("P11W_MODULE");
	if (!module || !*module)
		module = P11W_MODULE_FILE;

	conf_path = conf_path_default (conf_file);
	if ((rc = load_conf (conf_path, &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	for (size_t i = 0; i < conf.n_slots; i++)
		found |= !strcmp (conf.slots[i].name, slot_name);
	rc = EXIT_ENV;
	if (!found) {
		fprintf (stderr, "p11-warden: %s: unknown slot '%s'\n", conf_path, slot_name);
		goto out;
	}
	if ((so_file && read_pin ("--so-pin-file", so_file, &so) != 0) ||
	    (pin_file && read_pin ("--pin-file", pin_file, &pin) != 0) ||
	    (new_file && read_pin ("--new-pin-file", new_file, &npin) != 0))
		goto out;
	if (module_open (module, conf_path, slot_name, &m, &slot) != 0)
		goto out;
	if (init) {
		CK_UTF8CHAR lab[32];
		util_pad (lab, sizeof lab, label);
		rv = m.f->C_InitToken (slot, (CK_UTF8CHAR_PTR)so.v, so.len, lab);
		snprintf (what, sizeof what, "C_InitToken");
	} else {
		rv = m.f->C_OpenSession (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
		snprintf (what, sizeof what, "C_OpenSession");
		if (rv == CKR_OK) {
			bool as_so = init_pin || so_file;
			struct pin *old = as_so ? &so : &pin;
			rv = m.f->C_Login (sh, as_so ? CKU_SO : CKU_USER, (CK_UTF8CHAR_PTR)old->v, old->len);
			snprintf (what, sizeof what, "C_Login as %s", as_so ? "SO" : "user");
			if (rv == CKR_OK && init_pin) {
				rv = m.f->C_InitPIN (sh, (CK_UTF8CHAR_PTR)pin.v, pin.len);
				snprintf (what, sizeof what, "C_InitPIN");
			} else if (rv == CKR_OK) {
				rv = m.f->C_SetPIN (sh, (CK_UTF8CHAR_PTR)old->v, old->len,
				                    (CK_UTF8CHAR_PTR)npin.v, npin.len);
				snprintf (what, sizeof what, "C_SetPIN");
			}
			m.f->C_CloseSession (sh);
		}
	}
	/* Finalize before the tool opens the ledger: the module wrote its own
	 * record (token-init, pin-init, pin-change) through its own handle. */
	module_close (&m);
	if (rv != CKR_OK) {
		ckr_msg (what, rv);
		goto out;
	}
	r.slot = slot_name;
	r.made = true;
	snprintf (r.reason, sizeof r.reason, "token %s %s%s", cmd, slot_name,
	          set_pin ? (so_file ? " so" : " user") : "");
	if (!record_admin (&conf, &r, err, sizeof err)) {
		fprintf (stderr, "p11-warden: the token was changed (%s), but: %s\n", what, err);
		goto out;
	}
	rc = 0;
	{
		char detail[128];
		snprintf (detail, sizeof detail, "slot '%s'%s%s%s", slot_name, init ? ": label '" : "",
		          init ? label : "", init ? "'" : "");
		report_change (conf_path, init ? "token initialised" : init_pin ? "user PIN set" :
		               so_file ? "SO PIN changed" : "user PIN changed", detail);
	}
out:
	pin_clear (&so);
	pin_clear (&pin);
	pin_clear (&npin);
	conf_free (&conf);
	return rc;
}

int
cmd_token (int argc, char **argv)
{
	return token_cmd (argc, argv);
}
