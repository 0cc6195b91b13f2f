/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11-warden: the administrator's tool (p11-warden(1)).  It uses the same
 * code as the module (configuration, policies, anchors, verifiers,
 * collectors), so that what it answers is what the gate would decide.
 *
 * Exit codes: 0 success (a policy that loads, evidence that passes),
 * 1 a negative answer (a policy with errors, evidence that fails, a
 * collector that fails), 2 usage errors, 3 the environment (a
 * configuration, anchor or file that cannot be used).
 */
#include "config.h"

#include "anchors.h"
#include "claims.h"
#include "collector.h"
#include "conf.h"
#include "evidence.h"
#include "ledger.h"
#include "log.h"
#include "policy.h"
#include "util.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#ifndef P11W_SYSCONF_FILE
#define P11W_SYSCONF_FILE "/etc/p11-warden/p11-warden.conf"
#endif

bool json_out;

static const char usage_text[] =
	"usage: p11-warden [--json] COMMAND ...\n"
	"\n"
	"  policy check FILE...           load and lint policies\n"
	"  policy test --policy FILE --evidence FILE --format FORMAT [--nonce HEX]\n"
	"              [--conf FILE | --anchor NAME:FORMAT:PEMFILE ...] [--now EPOCH]\n"
	"                                 would this evidence pass this policy?\n"
	"  evidence collect --slot NAME [--conf FILE]\n"
	"                                 run the slot's collectors, print the claims and\n"
	"                                 the verdict of the slot's policy\n"
	"  slot add NAME --module PATH --token URI --pin-file PATH [--policy NAME]\n"
	"                [--gated yes|no] | slot list | slot remove NAME\n"
	"  anchor enrol NAME --format tpm2-quote|eat|ear --file PEM|TPM2B_PUBLIC [--kid HEX]\n"
	"                [--profile P] | anchor list | anchor remove NAME\n"
	"  policy add NAME --file FILE | policy remove NAME | policy list\n"
	"  policy bind POLICY --slot SLOT [--key URI]\n"
	"  token init --slot NAME --label L --so-pin-file F | token init-pin --slot NAME\n"
	"                --so-pin-file F --pin-file F | token set-pin --slot NAME\n"
	"                (--pin-file OLD | --so-pin-file OLD) --new-pin-file NEW\n"
	"  collector add NAME --type tpm2-quote --ak-handle H --pcrs SEL [--tcti T] |\n"
	"                --type command --command \"PATH ARGS\" | collector list | remove NAME\n"
	"  slot set NAME [--collectors A,B] [--policy P] [--gated yes|no] [--ungated URI]...\n"
	"  module set KEY=VALUE... | module show\n"
	"                                 change the configuration (atomic, comments kept,\n"
	"                                 recorded in the audit ledger) or the token\n"
	"  key list --slot NAME [--module PATH] [--pin-file FILE]\n"
	"                                 the slot's keys and whether (and how) each is gated\n"
	"  status [--module PATH] [--last N]\n"
	"                                 slots, backends, anchors, policies, collectors, the\n"
	"                                 ledger and the last decisions\n"
	"  doctor --slot NAME [--key LABEL|HEXID] [--module PATH] [--pin-file FILE]\n"
	"                                 why a gated operation would be refused now, and fixes\n"
	"  audit verify LEDGER --key PUB.pem [--head FILE | --no-head]\n"
	"                                 check the audit ledger offline\n"
	"  audit show LEDGER [--key PUB.pem] [--since T] [--until T] [--event E]\n"
	"             [--key-label LABEL|HEXID]\n"
	"                                 print its records (with --json: JSON lines)\n"
	"\n"
	"  --json          machine-readable output (one JSON object)\n"
	"  --help          this text; COMMAND --help for a command's\n"
	"  --version       the version\n"
	"\n"
	"Exit status: 0 yes/success, 1 no (invalid policy, failing evidence),\n"
	"2 usage error, 3 configuration or file error.  See p11-warden(1).\n";

int
usage_error (const char *fmt, const char *arg)
{
	fprintf (stderr, "p11-warden: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf (stderr, fmt, arg ? arg : "");
#pragma GCC diagnostic pop
	fprintf (stderr, "\nTry 'p11-warden --help'.\n");
	return EXIT_USAGE;
}

void
print_json (struct json_object *o)
{
	printf ("%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN |
	                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put (o);
}

/* ------------------------------------------------------------ files */

static unsigned char *
read_file (const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t have = 0;
	int fd = !strcmp (path, "-") ? dup (0) : open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf (err, errlen, "%s: cannot open: %s", path, strerror (errno));
		return NULL;
	}
	if (fstat (fd, &st) != 0 || S_ISDIR (st.st_mode)) {
		snprintf (err, errlen, "%s: not a file", path);
		close (fd);
		return NULL;
	}
	buf = malloc (max + 1); /* reads stop at max bytes: the caller judges the size */
	if (!buf) {
		snprintf (err, errlen, "out of memory");
		close (fd);
		return NULL;
	}
	for (;;) {
		ssize_t r = read (fd, buf + have, max + 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf (err, errlen, "%s: read error: %s", path, strerror (errno));
			free (buf);
			close (fd);
			return NULL;
		}
		if (r == 0)
			break;
		have += (size_t)r;
		if (have > max)
			break;
	}
	close (fd);
	*len = have;
	return buf;
}

/* ------------------------------------------------------------ claims */

static void
print_claims (const struct claim_set *set, struct json_object *into)
{
	for (size_t i = 0; i < claim_set_count (set); i++) {
		const struct claim *c = claim_set_at (set, i);
		char v[1024];
		claim_value_format (&c->v, 256, v, sizeof v);
		if (into) {
			struct json_object *jv;
			switch (c->v.type) {
			case CLAIM_INT: jv = json_object_new_int64 (c->v.i); break;
			case CLAIM_BOOL: jv = json_object_new_boolean (c->v.b); break;
			case CLAIM_STRING:
				jv = json_object_new_string_len ((const char *)c->v.data, (int)c->v.len);
				break;
			default: jv = json_object_new_string (v); break;
			}
			json_object_object_add (into, c->name, jv);
		} else {
			printf ("  %s = %s\n", c->name, v);
		}
	}
}

/* ------------------------------------------------------------ anchors */

/* Anchors given on the command line live in a configuration of their own. */
struct cli_anchors {
	struct conf conf;
	struct anchor_set set;
	bool loaded;
};

static int
add_cli_anchor (struct conf *conf, const char *spec)
{
	char *copy = strdup (spec), *name, *format, *file;
	struct conf_anchor *a;
	if (!copy)
		return EXIT_ENV;
	name = copy;
	format = strchr (name, ':');
	file = format ? strchr (format + 1, ':') : NULL;
	if (!format || !file) {
		free (copy);
		return usage_error ("--anchor wants NAME:FORMAT:PEMFILE, not '%s'", spec);
	}
	*format++ = '\0';
	*file++ = '\0';
	if (!evidence_format_known (format) || !*name || strlen (name) > CONF_NAME_MAX ||
	    *file != '/') {
		free (copy);
		return usage_error ("--anchor '%s': NAME (1-63 characters), FORMAT (tpm2-quote, eat, "
		                    "ear) and an absolute PEMFILE", spec);
	}
	a = realloc (conf->anchors, (conf->n_anchors + 1) * sizeof *a);
	if (!a) {
		free (copy);
		return EXIT_ENV;
	}
	conf->anchors = a;
	a = &conf->anchors[conf->n_anchors++];
	memset (a, 0, sizeof *a);
	snprintf (a->name, sizeof a->name, "%s", name);
	a->format = strdup (format);
	a->file = strdup (file);
	free (copy);
	return a->format && a->file ? 0 : EXIT_ENV;
}

const char *
conf_path_default (const char *given)
{
	const char *env;
	if (given)
		return given;
	env = getenv ("P11_WARDEN_CONF");
	return env && *env ? env : P11W_SYSCONF_FILE;
}

int
load_conf (const char *path, struct conf *conf)
{
	char err[1024];
	bool missing = false;
	if (!conf_load (path, false, conf, &missing, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s\n", err);
		return EXIT_ENV;
	}
	return 0;
}

/* ------------------------------------------------------------ policy check */

static void
policy_summary (const struct policy *p, char *out, size_t len)
{
	size_t o = (size_t)snprintf (out, len, "max-age %u s, nonce %s, gates", policy_max_age (p),
	                             policy_nonce_required (p) ? "required" : "optional");
	for (int op = 0; op < POLICY_OP_COUNT && o < len; op++) {
		if (policy_gates (p, (enum policy_op)op))
			o += (size_t)snprintf (out + o, len - o, " %s", policy_op_name ((enum policy_op)op));
	}
}

static int
cmd_policy_check (int argc, char **argv)
{
	int rc = 0;
	struct json_object *results = json_out ? json_object_new_array () : NULL;

	if (argc < 1 || !strcmp (argv[0], "--help")) {
		printf ("usage: p11-warden policy check FILE...\n"
		        "Load each policy as the module would and report errors with their JSON path.\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	for (int i = 0; i < argc; i++) {
		char err[1024], summary[256];
		struct policy *p = policy_load_file (argv[i], err, sizeof err);
		struct json_object *r = NULL;
		if (results) {
			r = json_object_new_object ();
			json_object_object_add (r, "file", json_object_new_string (argv[i]));
			json_object_object_add (r, "ok", json_object_new_boolean (p != NULL));
		}
		if (!p) {
			rc = EXIT_NO;
			if (r)
				json_object_object_add (r, "error", json_object_new_string (err));
			else
				printf ("%s\n", err);
		} else {
			policy_summary (p, summary, sizeof summary);
			if (r) {
				json_object_object_add (r, "summary", json_object_new_string (summary));
			} else {
				printf ("%s: ok (%s)\n", argv[i], summary);
				if (!policy_nonce_required (p))
					printf ("%s: warning: no nonce required: replayed evidence is accepted "
					        "within max-age\n", argv[i]);
				if (policy_max_age (p) > 3600)
					printf ("%s: warning: max-age over an hour keeps a verdict long after "
					        "the platform may have changed\n", argv[i]);
			}
			policy_free (p);
		}
		if (r)
			json_object_array_add (results, r);
	}
	if (results)
		print_json (results);
	return rc;
}

/* ------------------------------------------------------------ policy test */

static int
cmd_policy_test (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "evidence", required_argument, NULL, 'e' },
		{ "format", required_argument, NULL, 'f' },
		{ "nonce", required_argument, NULL, 'n' },
		{ "conf", required_argument, NULL, 'c' },
		{ "anchor", required_argument, NULL, 'a' },
		{ "now", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *policy_file = NULL, *evidence_file = NULL, *format = NULL, *conf_file = NULL;
	unsigned char nonce[64];
	size_t nonce_len = 0;
	bool have_nonce = false, cli = false;
	time_t now = time (NULL);
	struct conf conf;
	struct anchor_set anchors = { 0 };
	struct policy *p = NULL;
	unsigned char *evidence = NULL;
	size_t evidence_len = 0;
	struct appraisal a;
	struct evidence_claims ev;
	struct policy_result res;
	char err[1024];
	int c, rc;

	conf_init_defaults (&conf);
	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': policy_file = optarg; break;
		case 'e': evidence_file = optarg; break;
		case 'f': format = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'n':
			if (!util_hex_decode (optarg, strlen (optarg), nonce, sizeof nonce, &nonce_len)) {
				conf_free (&conf);
				return usage_error ("--nonce must be 1 to 64 bytes in hex, not '%s'", optarg);
			}
			have_nonce = true;
			break;
		case 'a':
			cli = true;
			if ((rc = add_cli_anchor (&conf, optarg)) != 0) {
				conf_free (&conf);
				return rc;
			}
			break;
		case 't': {
			char *end = NULL;
			long long v = strtoll (optarg, &end, 10);
			if (!*optarg || *end || v <= 0) {
				conf_free (&conf);
				return usage_error ("--now wants seconds since the epoch, not '%s'", optarg);
			}
			now = (time_t)v;
			break;
		}
		case 'h':
			conf_free (&conf);
			printf ("usage: p11-warden policy test --policy FILE --evidence FILE --format FORMAT\n"
			        "       [--nonce HEX] [--conf FILE | --anchor NAME:FORMAT:PEMFILE ...]\n"
			        "       [--now EPOCH]\n"
			        "Appraise the evidence (FORMAT: tpm2-quote, eat, ear) against the enrolled\n"
			        "anchors (of --conf, default the module's configuration, or those given\n"
			        "with --anchor), then evaluate the policy.  Without --nonce the evidence's\n"
			        "nonce is not checked, and a policy that requires one fails.\n"
			        "Exit 0 when it passes, 1 when it does not (the first failing predicate\n"
			        "is printed).\n");
			return 0;
		default:
			conf_free (&conf);
			return usage_error ("policy test: bad option%s", NULL);
		}
	}
	if (!policy_file || !evidence_file || !format) {
		conf_free (&conf);
		return usage_error ("policy test needs --policy, --evidence and --format%s", NULL);
	}
	if (!evidence_format_known (format)) {
		conf_free (&conf);
		return usage_error ("unknown format '%s' (tpm2-quote, eat, ear)", format);
	}
	if (cli && conf_file) {
		conf_free (&conf);
		return usage_error ("--anchor and --conf do not go together%s", NULL);
	}
	if (!cli) {
		conf_free (&conf);
		if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
			conf_free (&conf);
			return rc;
		}
	} else {
		conf.path = strdup ("(command line)");
	}
	rc = EXIT_ENV;
	if (!anchors_load (&conf, &anchors, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s\n", err);
		goto out;
	}
	p = policy_load_file (policy_file, err, sizeof err);
	if (!p) {
		fprintf (stderr, "p11-warden: %s\n", err);
		rc = EXIT_NO;
		goto out;
	}
	/* One byte more than the verifiers take, so that they say it is too
	 * large, like the module would. */
	evidence = read_file (evidence_file, EVIDENCE_MAX_SIZE + 1, &evidence_len, err, sizeof err);
	if (!evidence) {
		fprintf (stderr, "p11-warden: %s\n", err);
		goto out;
	}
	rc = EXIT_NO;
	if (evidence_appraise (&anchors, format, evidence, evidence_len, have_nonce ? nonce : NULL,
	                       nonce_len, now, conf.clock_skew, &a, err, sizeof err) != 0) {
		if (json_out) {
			struct json_object *o = json_object_new_object ();
			json_object_object_add (o, "pass", json_object_new_boolean (false));
			json_object_object_add (o, "stage", json_object_new_string ("verifier"));
			json_object_object_add (o, "reason", json_object_new_string (err));
			print_json (o);
		} else {
			printf ("FAIL: %s evidence refused by the verifier: %s\n", format, err);
		}
		goto out;
	}
	appraisal_as_evidence (&a, &ev);
	policy_evaluate (p, &ev, 1, now, &res);
	if (json_out) {
		struct json_object *o = json_object_new_object (), *claims = json_object_new_object ();
		json_object_object_add (o, "pass", json_object_new_boolean (res.pass));
		json_object_object_add (o, "policy", json_object_new_string (policy_name (p)));
		json_object_object_add (o, "anchor", json_object_new_string (a.anchor));
		json_object_object_add (o, "nonce-checked", json_object_new_boolean (a.nonce_matched));
		if (res.pass)
			json_object_object_add (o, "expires", json_object_new_int64 ((int64_t)res.expires));
		else
			json_object_object_add (o, "path", json_object_new_string (res.path));
		json_object_object_add (o, "reason", json_object_new_string (res.reason));
		print_claims (a.claims, claims);
		json_object_object_add (o, "claims", claims);
		print_json (o);
	} else {
		printf ("%s evidence verified by anchor '%s'%s; claims:\n", format, a.anchor,
		        a.nonce_matched ? ", nonce matched" : " (nonce not checked)");
		print_claims (a.claims, NULL);
		if (res.pass)
			printf ("PASS: policy '%s' (verdict would hold until %lld)\n", policy_name (p),
			        (long long)res.expires);
		else
			printf ("FAIL: policy '%s': %s\n", policy_name (p), res.reason);
	}
	rc = res.pass ? 0 : EXIT_NO;
	appraisal_clear (&a);
out:
	free (evidence);
	policy_free (p);
	anchors_free (&anchors);
	conf_free (&conf);
	return rc;
}

/* ------------------------------------------------------------ evidence collect */

static int
cmd_evidence_collect (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "slot", required_argument, NULL, 's' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *slot_name = NULL, *conf_file = NULL;
	const struct conf_slot *slot = NULL;
	struct conf conf;
	struct anchor_set anchors = { 0 };
	struct appraisal got[CONF_MAX_COLLECTORS];
	struct evidence_claims ev[CONF_MAX_COLLECTORS];
	unsigned char nonce[32];
	struct json_object *out = json_out ? json_object_new_object () : NULL;
	struct json_object *jcoll = out ? json_object_new_array () : NULL;
	size_t n = 0;
	char err[1024];
	int c, rc;
	bool all_ok = true;

	memset (got, 0, sizeof got);
	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': slot_name = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'h':
			printf ("usage: p11-warden evidence collect --slot NAME [--conf FILE]\n"
			        "Run the slot's collectors over a fresh nonce as the module would on a\n"
			        "gated call, appraise what they return, print the claims and the verdict\n"
			        "of the slot's default policy.  Exit 0 when every collector's evidence\n"
			        "verifies (and the policy, if any, passes), 1 otherwise.\n");
			json_object_put (out);
			json_object_put (jcoll);
			return 0;
		default:
			json_object_put (out);
			json_object_put (jcoll);
			return usage_error ("evidence collect: bad option%s", NULL);
		}
	}
	if (!slot_name) {
		json_object_put (out);
		json_object_put (jcoll);
		return usage_error ("evidence collect needs --slot NAME%s", NULL);
	}
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		json_object_put (out);
		json_object_put (jcoll);
		return rc;
	}
	rc = EXIT_ENV;
	for (size_t i = 0; i < conf.n_slots; i++) {
		if (!strcmp (conf.slots[i].name, slot_name))
			slot = &conf.slots[i];
	}
	if (!slot) {
		fprintf (stderr, "p11-warden: %s: no [slot:%s]\n", conf.path, slot_name);
		goto out;
	}
	if (slot->n_collectors == 0) {
		fprintf (stderr, "p11-warden: slot '%s' has no collectors ('collectors = ...')\n",
		         slot_name);
		goto out;
	}
	if (!anchors_load (&conf, &anchors, err, sizeof err)) {
		fprintf (stderr, "p11-warden: %s\n", err);
		goto out;
	}
	if (RAND_bytes (nonce, sizeof nonce) != 1) {
		fprintf (stderr, "p11-warden: cannot make a nonce\n");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < slot->n_collectors; i++) {
		const struct conf_collector *k = conf_find_collector (&conf, slot->collectors[i]);
		struct collector *col;
		struct collected cd = { 0 };
		struct json_object *jc = jcoll ? json_object_new_object () : NULL;
		struct timespec t0, t1;
		char fmt[sizeof cd.format];
		double ms;
		int r;

		if (jc) {
			json_object_object_add (jc, "collector", json_object_new_string (k->name));
			json_object_array_add (jcoll, jc);
		}
		if (k->type == CONF_COLLECTOR_TPM2_QUOTE)
			col = collector_tpm2_new (k->name, k->tcti, (uint32_t)k->ak_handle, k->pcrs, err,
			                          sizeof err);
		else
			col = collector_command_new (k->name, (const char *const *)k->argv, k->timeout_ms,
			                             k->max_output, err, sizeof err);
		if (!col) {
			fprintf (stderr, "p11-warden: collector '%s': %s\n", k->name, err);
			rc = EXIT_ENV;
			goto out;
		}
		clock_gettime (CLOCK_MONOTONIC, &t0);
		r = collector_run (col, nonce, sizeof nonce, &cd, err, sizeof err);
		clock_gettime (CLOCK_MONOTONIC, &t1);
		collector_free (col);
		ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (r != COLLECTOR_OK) {
			all_ok = false;
			if (jc)
				json_object_object_add (jc, "error", json_object_new_string (err));
			else
				printf ("collector '%s': FAILED after %.1f ms: %s\n", k->name, ms, err);
			continue;
		}
		snprintf (fmt, sizeof fmt, "%s", cd.format);
		r = evidence_appraise (&anchors, cd.format, cd.data, cd.len, nonce, sizeof nonce,
		                       time (NULL), conf.clock_skew, &got[n], err, sizeof err);
		if (jc) {
			json_object_object_add (jc, "format", json_object_new_string (cd.format));
			json_object_object_add (jc, "bytes", json_object_new_int64 ((int64_t)cd.len));
			json_object_object_add (jc, "ms", json_object_new_double (ms));
		}
		collected_clear (&cd);
		if (r != 0) {
			all_ok = false;
			if (jc)
				json_object_object_add (jc, "error", json_object_new_string (err));
			else
				printf ("collector '%s': %s evidence in %.1f ms, REFUSED: %s\n", k->name, fmt,
				        ms, err);
			continue;
		}
		if (jc) {
			struct json_object *claims = json_object_new_object ();
			json_object_object_add (jc, "anchor", json_object_new_string (got[n].anchor));
			print_claims (got[n].claims, claims);
			json_object_object_add (jc, "claims", claims);
		} else {
			printf ("collector '%s': %s evidence in %.1f ms, verified by anchor '%s'; claims:\n",
			        k->name, got[n].format, ms, got[n].anchor);
			print_claims (got[n].claims, NULL);
		}
		appraisal_as_evidence (&got[n], &ev[n]);
		n++;
	}
	if (out)
		json_object_object_add (out, "collectors", jcoll), jcoll = NULL;
	if (slot->policy) {
		const struct conf_policy *cp = conf_find_policy (&conf, slot->policy);
		struct policy *p = policy_load_file (cp->file, err, sizeof err);
		struct policy_result res;
		if (!p) {
			fprintf (stderr, "p11-warden: policy '%s': %s\n", cp->name, err);
			rc = EXIT_ENV;
			goto out;
		}
		policy_evaluate (p, ev, n, time (NULL), &res);
		if (out) {
			json_object_object_add (out, "policy", json_object_new_string (cp->name));
			json_object_object_add (out, "pass", json_object_new_boolean (res.pass));
			json_object_object_add (out, "reason", json_object_new_string (res.reason));
		} else if (res.pass) {
			printf ("PASS: policy '%s' (verdict would hold until %lld)\n", cp->name,
			        (long long)res.expires);
		} else {
			printf ("FAIL: policy '%s': %s\n", cp->name, res.reason);
		}
		all_ok &= res.pass;
		policy_free (p);
	}
	if (rc == 0 && !all_ok)
		rc = EXIT_NO;
out:
	if (out) {
		if (rc != EXIT_ENV)
			print_json (out);
		else
			json_object_put (out);
	}
	json_object_put (jcoll);
	for (size_t i = 0; i < n; i++)
		appraisal_clear (&got[i]);
	OPENSSL_cleanse (nonce, sizeof nonce);
	anchors_free (&anchors);
	conf_free (&conf);
	return rc;
}

/* ------------------------------------------------------------ audit */

void
hex (const unsigned char *b, size_t n, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 3 <= len; i++)
		o += (size_t)snprintf (out + o, len - o, "%02x", b[i]);
	if (len)
		out[o < len ? o : len - 1] = '\0';
}

/* "2026-11-27T22:50:09.123Z" */
void
iso_time (int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r (&t, &tm)) {
		snprintf (out, len, "%lld", (long long)ms);
		return;
	}
	/* Bounded fields: gmtime_r gives small numbers; the year is cut to
	 * four digits for the format's sake. */
	snprintf (out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
	          (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
	          tm.tm_sec % 100, (int)(ms % 1000 + 1000) % 1000);
}

/* Seconds since the epoch, or an ISO date "YYYY-MM-DD[THH:MM:SS]" (UTC). */
static bool
parse_time (const char *s, int64_t *ms)
{
	struct tm tm;
	char *end = NULL;
	long long v;
	memset (&tm, 0, sizeof tm);
	end = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || *end) {
		memset (&tm, 0, sizeof tm);
		end = strptime (s, "%Y-%m-%d", &tm);
	}
	if (end && !*end) {
		*ms = (int64_t)timegm (&tm) * 1000;
		return true;
	}
	v = strtoll (s, &end, 10);
	if (!*s || *end || v < 0)
		return false;
	*ms = (int64_t)v * 1000;
	return true;
}

struct show_filter {
	int64_t since, until;
	const char *event;
	const char *key;
	unsigned char key_id[LEDGER_ID_MAX];
	size_t key_id_len;
	bool key_is_hex;
	unsigned long shown;
};

static bool
wanted (const struct ledger_entry *e, const struct show_filter *f)
{
	if (e->time_ms < f->since || e->time_ms > f->until)
		return false;
	if (f->event && (!e->event || strcmp (e->event, f->event) != 0))
		return false;
	if (f->key) {
		bool label = e->key_label && strlen (f->key) == e->key_label_len &&
		             !memcmp (e->key_label, f->key, e->key_label_len);
		bool id = f->key_is_hex && e->key_id && e->key_id_len == f->key_id_len &&
		          !memcmp (e->key_id, f->key_id, f->key_id_len);
		if (!label && !id)
			return false;
	}
	return true;
}

void
json_str (struct json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add (o, k, json_object_new_string (v));
}

static int
show_entry (const struct ledger_entry *e, void *user)
{
	struct show_filter *f = user;
	char when[40], id[LEDGER_ID_MAX * 2 + 1] = "", label[LEDGER_ID_MAX + 1] = "";
	char pd[65] = "", ed[65] = "";

	if (!wanted (e, f))
		return 0;
	f->shown++;
	iso_time (e->time_ms, when, sizeof when);
	if (e->key_id)
		hex (e->key_id, e->key_id_len, id, sizeof id);
	if (e->key_label) {
		size_t n = e->key_label_len < LEDGER_ID_MAX ? e->key_label_len : LEDGER_ID_MAX;
		for (size_t i = 0; i < n; i++)
			label[i] = e->key_label[i] >= 0x20 && e->key_label[i] < 0x7f ? (char)e->key_label[i] : '?';
		label[n] = '\0';
	}
	if (e->policy_digest)
		hex (e->policy_digest, 32, pd, sizeof pd);
	if (e->evidence_digest)
		hex (e->evidence_digest, 32, ed, sizeof ed);
	if (json_out) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "seq", json_object_new_int64 ((int64_t)e->seq));
		json_object_object_add (o, "time", json_object_new_string (when));
		json_str (o, "event", e->checkpoint ? "checkpoint" : e->event);
		json_str (o, "slot", e->slot);
		if (e->key_id)
			json_str (o, "key-id", id);
		if (e->key_label)
			json_str (o, "key-label", label);
		if (e->has_mechanism)
			json_object_object_add (o, "mechanism", json_object_new_int64 ((int64_t)e->mechanism));
		json_str (o, "operation", e->operation);
		json_str (o, "verdict", e->verdict);
		json_str (o, "reason", e->reason);
		json_str (o, "policy", e->policy);
		if (e->policy_digest)
			json_str (o, "policy-digest", pd);
		json_str (o, "format", e->format);
		json_str (o, "anchor", e->anchor);
		if (e->evidence_digest)
			json_str (o, "evidence-digest", ed);
		json_str (o, "user", e->user);
		if (e->pid >= 0)
			json_object_object_add (o, "pid", json_object_new_int64 (e->pid));
		if (e->uid >= 0)
			json_object_object_add (o, "uid", json_object_new_int64 (e->uid));
		print_json (o);
		return 0;
	}
	printf ("%6llu %s %-18s", (unsigned long long)e->seq, when,
	        e->checkpoint ? "checkpoint" : e->event ? e->event : "?");
	if (e->slot)
		printf (" slot=%s", e->slot);
	if (e->key_label)
		printf (" key='%s'", label);
	if (e->key_id)
		printf (" id=%s", id);
	if (e->operation)
		printf (" op=%s", e->operation);
	if (e->has_mechanism)
		printf (" mech=0x%lx", e->mechanism);
	if (e->verdict)
		printf (" %s", e->verdict);
	if (e->policy)
		printf (" policy=%s", e->policy);
	if (e->format)
		printf (" format=%s", e->format);
	if (e->anchor)
		printf (" anchor=%s", e->anchor);
	if (e->user)
		printf (" user=%s", e->user);
	if (e->pid >= 0)
		printf (" pid=%lld", (long long)e->pid);
	if (e->reason)
		printf (" reason=\"%s\"", e->reason);
	printf ("\n");
	return 0;
}

static int
cmd_audit (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "head", required_argument, NULL, 'H' },
		{ "no-head", no_argument, NULL, 'N' },
		{ "allow-unsigned-tail", no_argument, NULL, 'U' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "event", required_argument, NULL, 'e' },
		{ "key-label", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool verify = !strcmp (argv[0], "verify"), no_head = false, allow_tail = false;
	bool intact;
	char last[2 * 32 + 1];
	const char *key_file = NULL, *head = NULL, *ledger = NULL;
	struct show_filter f;
	struct ledger_verify_result res;
	enum ledger_verify_status st;
	EVP_PKEY *pub = NULL;
	char err[512];
	int c;

	if (strcmp (argv[0], "verify") && strcmp (argv[0], "show"))
		return usage_error ("unknown audit command '%s' (verify, show)", argv[0]);
	memset (&f, 0, sizeof f);
	f.since = INT64_MIN;
	f.until = INT64_MAX;
	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 'H': head = optarg; break;
		case 'N': no_head = true; break;
		case 'U': allow_tail = true; break;
		case 's':
			if (!parse_time (optarg, &f.since))
				return usage_error ("--since wants seconds since the epoch or YYYY-MM-DD[THH:MM:SS], "
				                    "not '%s'", optarg);
			break;
		case 'u':
			if (!parse_time (optarg, &f.until))
				return usage_error ("--until wants seconds since the epoch or YYYY-MM-DD[THH:MM:SS], "
				                    "not '%s'", optarg);
			break;
		case 'e': f.event = optarg; break;
		case 'K':
			f.key = optarg;
			f.key_is_hex = util_hex_decode (optarg, strlen (optarg), f.key_id, sizeof f.key_id,
			                                &f.key_id_len);
			break;
		case 'h':
			printf ("usage: p11-warden audit verify LEDGER --key PUB.pem [--head FILE | --no-head]\n"
			        "                                  [--allow-unsigned-tail]\n"
			        "       p11-warden audit show LEDGER [--key PUB.pem] [--since T] [--until T]\n"
			        "                                  [--event EVENT] [--key-label L]\n"
			        "verify: exit 0 when every record is intact, chained and signed, and the\n"
			        "head (LEDGER.head) agrees; otherwise 1, naming the first bad record.\n"
			        "show: the records, one line each (--json: JSON lines); T is seconds since\n"
			        "the epoch or YYYY-MM-DD[THH:MM:SS] UTC; filters by event and key\n"
			        "(--key-label: a label, or a CKA_ID in hex).\n");
			return 0;
		default:
			return usage_error ("audit: bad option%s", NULL);
		}
	}
	if (optind != argc - 1)
		return usage_error ("audit %s needs exactly one LEDGER file", argv[0]);
	ledger = argv[optind];
	if (verify && !key_file)
		return usage_error ("audit verify needs --key PUB.pem (the audit key's public half)%s",
		                    NULL);
	if (key_file) {
		pub = anchor_load_key (key_file, err, sizeof err);
		if (!pub) {
			fprintf (stderr, "p11-warden: %s\n", err);
			return EXIT_ENV;
		}
	}
	st = ledger_verify_file (ledger, pub, head, no_head || !verify, verify ? NULL : show_entry, &f,
	                         &res);
	EVP_PKEY_free (pub);
	if (st == LEDGER_VERIFY_IO) {
		fprintf (stderr, "p11-warden: %s\n", res.reason);
		return EXIT_ENV;
	}
	/* Records after the last checkpoint are not authenticated: anyone who
	 * can write the file can append such records.  A crash can leave them
	 * too (the next writer removes them); --allow-unsigned-tail accepts
	 * them as that. */
	intact = st == LEDGER_VERIFY_OK &&
	         (allow_tail || (res.unsigned_tail == 0 && !res.torn_tail));
	hex (res.last_checkpoint_hash, 32, last, sizeof last);
	if (!verify) {
		/* The verdict on what was shown, on stderr (stdout has the records). */
		if (!key_file)
			fprintf (stderr, "p11-warden: %llu record(s) read, chain %s; signatures not checked "
			         "(no --key): nothing shown is authenticated\n",
			         (unsigned long long)res.records,
			         st == LEDGER_VERIFY_OK ? "unbroken" : "BROKEN");
		else if (st != LEDGER_VERIFY_OK)
			fprintf (stderr, "p11-warden: NOT intact: %s%s\n",
			         res.first_bad >= 0 ? "first bad record: " : "", res.reason);
		else if (res.unsigned_tail || res.torn_tail)
			fprintf (stderr, "p11-warden: signed up to record %llu; %llu record(s) after it are "
			         "NOT authenticated\n", (unsigned long long)res.last_checkpoint_seq,
			         (unsigned long long)res.unsigned_tail);
		if (st != LEDGER_VERIFY_OK && st != LEDGER_VERIFY_BAD)
			return EXIT_ENV;
		return !key_file ? (st == LEDGER_VERIFY_OK ? 0 : EXIT_NO) : (intact ? 0 : EXIT_NO);
	}
	if (json_out) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "intact", json_object_new_boolean (intact));
		json_object_object_add (o, "records", json_object_new_int64 ((int64_t)res.records));
		json_object_object_add (o, "checkpoints", json_object_new_int64 ((int64_t)res.checkpoints));
		json_object_object_add (o, "unsigned-tail", json_object_new_int64 ((int64_t)res.unsigned_tail));
		json_object_object_add (o, "torn-tail", json_object_new_boolean (res.torn_tail));
		if (res.checkpoints) {
			json_object_object_add (o, "last-checkpoint",
			                        json_object_new_int64 ((int64_t)res.last_checkpoint_seq));
			json_str (o, "last-checkpoint-hash", last);
		}
		if (st != LEDGER_VERIFY_OK) {
			json_object_object_add (o, "first-bad", json_object_new_int64 (res.first_bad));
			json_object_object_add (o, "offset", json_object_new_int64 ((int64_t)res.first_bad_offset));
			json_str (o, "reason", res.reason);
		}
		print_json (o);
	} else if (st == LEDGER_VERIFY_OK) {
		if (res.unsigned_tail || res.torn_tail)
			printf ("%s: %s: %llu records, %llu checkpoints; after the last checkpoint (record "
			        "%llu): %llu unsigned record(s)%s, NOT authenticated (a write cut short by a "
			        "crash, which the next writer removes, or records appended by someone "
			        "without the key)\n", ledger,
			        allow_tail ? "intact up to its last checkpoint" : "NOT intact",
			        (unsigned long long)res.records, (unsigned long long)res.checkpoints,
			        (unsigned long long)res.last_checkpoint_seq,
			        (unsigned long long)res.unsigned_tail, res.torn_tail ? " and a torn frame" : "");
		else
			printf ("%s: intact: %llu records, %llu checkpoints, all signed\n", ledger,
			        (unsigned long long)res.records, (unsigned long long)res.checkpoints);
		printf ("last checkpoint: %llu %s (compare with the last \"checkpoint\" line the module "
		        "logged: a ledger cut back together with its head shows there)\n",
		        (unsigned long long)res.last_checkpoint_seq, last);
	} else if (res.first_bad >= 0) {
		printf ("%s: NOT intact: record %lld (offset %llu): %s\n", ledger, (long long)res.first_bad,
		        (unsigned long long)res.first_bad_offset, res.reason);
	} else {
		printf ("%s: NOT intact: %s\n", ledger, res.reason);
	}
	return intact ? 0 : EXIT_NO;
}

/* ------------------------------------------------------------ main */

static const struct {
	const char *name;
	int (*run) (int argc, char **argv);
} admin_commands[] = {
	{ "slot", cmd_slot },
	{ "anchor", cmd_anchor },
	{ "token", cmd_token },
	{ "collector", cmd_collector },
	{ "module", cmd_module },
	{ "key", cmd_key },
	{ "status", cmd_status },
	{ "doctor", cmd_doctor },
};

int
main (int argc, char **argv)
{
	int i = 1;

	log_configure (LOG_SINK_STDERR, LOG_LEVEL_WARNING);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp (argv[i], "--json")) {
			json_out = true;
		} else if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h")) {
			fputs (usage_text, stdout);
			return 0;
		} else if (!strcmp (argv[i], "--version")) {
			printf ("p11-warden %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			return usage_error ("unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc || (i + 1 >= argc && strcmp (argv[i], "status") != 0)) {
		fputs (usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp (argv[i], "policy") && !strcmp (argv[i + 1], "check"))
		return cmd_policy_check (argc - i - 2, argv + i + 2);
	if (!strcmp (argv[i], "policy") && !strcmp (argv[i + 1], "test"))
		return cmd_policy_test (argc - i - 1, argv + i + 1);
	if (!strcmp (argv[i], "evidence") && !strcmp (argv[i + 1], "collect"))
		return cmd_evidence_collect (argc - i - 1, argv + i + 1);
	if (!strcmp (argv[i], "audit"))
		return cmd_audit (argc - i - 1, argv + i + 1);
	if (!strcmp (argv[i], "policy") && cmd_policy_admin)
		return cmd_policy_admin (argc - i - 1, argv + i + 1); /* bind, list */
	/* The administration commands (tools/cmd-*.c); weak, so that the
	 * tool builds with the groups it has. */
	for (size_t c = 0; c < sizeof admin_commands / sizeof admin_commands[0]; c++) {
		if (!strcmp (argv[i], admin_commands[c].name) && admin_commands[c].run)
			return admin_commands[c].run (argc - i - 1, argv + i + 1);
	}
	return usage_error ("unknown command '%s' (see --help)", argv[i]);
}
