/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reporting commands of p11-warden(1): key list, status and doctor.
 * They change nothing.  What they say about a key (gated or not, under
 * which policy) is decided by the rules of src/gate.c, applied to the
 * same facts the gate reads (class, label, id) and to the token
 * information the module reports, so that the answer is the module's.
 * Keys are seen through the p11-warden module itself (dlopened), logged
 * in with the user PIN, as an application would see them.
 */
#include "config.h"

#include "anchors.h"
#include "claims.h"
#include "collector.h"
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
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef P11W_P11KIT_MODULE_PATH
#define P11W_P11KIT_MODULE_PATH "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif

/* The installed module: $(p11moduledir)/p11-warden.so when the build says
 * (tools/config.mk), else p11-kit's module directory. */
#ifndef P11W_MODULE_FILE
#define P11W_MODULE_FILE P11W_P11KIT_MODULE_PATH "/p11-warden.so"
#endif

#define NAME_MAX_BYTES 256    /* as the gate (GATE_LABEL_MAX, GATE_ID_MAX) */
#define PIN_MAX 256
#define MAX_KEYS 4096
#define DEFAULT_RECENT 10
#define MAX_RECENT 1000

/* ------------------------------------------------------------ arguments */

/*
 * main() hands a command the words after its name: for `key` ARGV[0] is
 * the subcommand, for `status` and `doctor` it is already an option.
 * getopt_long skips ARGV[0], so the latter get a copy with the command's
 * name in front.  Free the result.
 */
static char **
with_name (const char *name, int argc, char **argv, int *out_argc)
{
	char **v = calloc ((size_t)argc + 2, sizeof *v);
	if (!v)
		return NULL;
	v[0] = (char *)name;
	for (int i = 0; i < argc; i++)
		v[i + 1] = argv[i];
	*out_argc = argc + 1;
	return v;
}

static const struct conf_slot *
find_slot (const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_slots; i++) {
		if (!strcmp (conf->slots[i].name, name))
			return &conf->slots[i];
	}
	return NULL;
}

static void
unknown_slot (const struct conf *conf, const char *name)
{
	fprintf (stderr, "p11-warden: %s: no [slot:%s]; configured slots:", conf->path, name);
	for (size_t i = 0; i < conf->n_slots; i++)
		fprintf (stderr, " %s", conf->slots[i].name);
	fprintf (stderr, "%s\n", conf->n_slots ? "" : " none");
}

static double
ms_since (const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime (CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A CKR value for messages: "CKR_PIN_INCORRECT (0xa0)". */
static const char *
ckr (CK_RV rv, char *buf, size_t len)
{
	const char *n = log_ckr_name (rv);
	snprintf (buf, len, "%s (0x%lx)", n ? n : "CKR_?", (unsigned long)rv);
	return buf;
}

/* A PKCS#11 blank-padded field without its padding. */
static void
unpad (const CK_UTF8CHAR *f, size_t n, char *out, size_t len)
{
	while (n > 0 && f[n - 1] == ' ')
		n--;
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = f[i] >= 0x20 && f[i] < 0x7f ? (char)f[i] : '?';
	out[n] = '\0';
}

/* ------------------------------------------------------------ PIN file */


/* ------------------------------------------------------------ the module */

struct module {
	char path[PATH_MAX];
	void *dl;
	CK_FUNCTION_LIST *fl;
	bool initialized;
	CK_RV init_rv;
};

/*
 * Load the p11-warden module (@given, else $P11W_MODULE, else the
 * installed one) and initialise it with configuration @conf_path, the
 * file this tool reads, so that both see the same slots.  EXIT_ENV with
 * the reason in @err when it cannot be loaded; when it loads but does not
 * initialise, 0 with m->initialized false (the reason is in its log).
 */
static int
module_open (const char *given, const char *conf_path, struct module *m, char *err, size_t errlen)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get;
	const char *env = getenv ("P11W_MODULE");

	memset (m, 0, sizeof *m);
	if (given)
		snprintf (m->path, sizeof m->path, "%s", given);
	else if (env && *env)
		snprintf (m->path, sizeof m->path, "%s", env);
	else
		snprintf (m->path, sizeof m->path, "%s", P11W_MODULE_FILE);
	m->dl = dlopen (m->path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		snprintf (err, errlen, "cannot load the p11-warden module %.512s: %.256s%s", m->path,
		          dlerror (), given || (env && *env) ? "" : " (the installed path; give "
		          "--module PATH or set P11W_MODULE)");
		return EXIT_ENV;
	}
	get = (CK_C_GetFunctionList)dlsym (m->dl, "C_GetFunctionList");
	if (!get || get (&m->fl) != CKR_OK || !m->fl) {
		snprintf (err, errlen, "%.512s: not a PKCS#11 module (no C_GetFunctionList)", m->path);
		dlclose (m->dl);
		m->dl = NULL;
		return EXIT_ENV;
	}
	/* The module reads its configuration from P11_WARDEN_CONF only. */
	if (setenv ("P11_WARDEN_CONF", conf_path, 1) != 0) {
		snprintf (err, errlen, "cannot set P11_WARDEN_CONF: %s", strerror (errno));
		dlclose (m->dl);
		m->dl = NULL;
		return EXIT_ENV;
	}
	m->init_rv = m->fl->C_Initialize (&args);
	m->initialized = m->init_rv == CKR_OK;
	return 0;
}

static void
module_close (struct module *m)
{
	if (m->initialized)
		m->fl->C_Finalize (NULL);
	if (m->dl)
		dlclose (m->dl);
	memset (m, 0, sizeof *m);
}

/* The module's slot presenting [slot:@name] (its description names it). */
static bool
module_find_slot (struct module *m, const char *name, CK_SLOT_ID *id, CK_SLOT_INFO *info)
{
	CK_SLOT_ID ids[CONF_MAX_SLOTS];
	CK_ULONG n = CONF_MAX_SLOTS;
	char want[80], have[sizeof info->slotDescription + 1];

	if (!m->initialized || m->fl->C_GetSlotList (CK_FALSE, ids, &n) != CKR_OK)
		return false;
	snprintf (want, sizeof want, "p11-warden slot %s", name);
	for (CK_ULONG i = 0; i < n; i++) {
		if (m->fl->C_GetSlotInfo (ids[i], info) != CKR_OK)
			continue;
		unpad (info->slotDescription, sizeof info->slotDescription, have, sizeof have);
		if (!strcmp (have, want)) {
			*id = ids[i];
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ key facts */

/* What the gate reads of a key (gate.c, struct key_facts). */
struct key_facts {
	CK_OBJECT_HANDLE handle;
	CK_OBJECT_CLASS klass;
	CK_KEY_TYPE type;
	CK_BYTE label[NAME_MAX_BYTES];
	CK_BYTE id[NAME_MAX_BYTES];
	CK_ATTRIBUTE attrs[3];       /* class, label, id */
	bool class_ok, label_ok, id_ok, type_ok;
};

static CK_RV
read_facts (CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, struct key_facts *f)
{
	CK_ATTRIBUTE t[4] = {
		{ CKA_CLASS, &f->klass, sizeof f->klass },
		{ CKA_LABEL, f->label, sizeof f->label },
		{ CKA_ID, f->id, sizeof f->id },
		{ CKA_KEY_TYPE, &f->type, sizeof f->type },
	};
	CK_RV rv;

	memset (f, 0, sizeof *f);
	f->handle = h;
	rv = fl->C_GetAttributeValue (s, h, t, 4);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE &&
	    rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	f->class_ok = t[0].ulValueLen == sizeof f->klass;
	/* As the gate: a name longer than it reads counts as unreadable. */
	f->label_ok = t[1].ulValueLen <= sizeof f->label;
	f->id_ok = t[2].ulValueLen <= sizeof f->id;
	f->type_ok = t[3].ulValueLen == sizeof f->type;
	memcpy (f->attrs, t, sizeof f->attrs);
	return CKR_OK;
}

static bool
facts_complete (const struct key_facts *f)
{
	return f->class_ok && f->label_ok && f->id_ok;
}

static void
facts_label (const struct key_facts *f, char *out, size_t len)
{
	size_t o = 0;
	if (!f->label_ok) {
		snprintf (out, len, "(unreadable)");
		return;
	}
	for (CK_ULONG i = 0; i < f->attrs[1].ulValueLen && o + 5 < len; i++) {
		unsigned char c = f->label[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf (out + o, len - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

static void
facts_id (const struct key_facts *f, char *out, size_t len)
{
	if (!f->id_ok)
		snprintf (out, len, "(unreadable)");
	else
		hex (f->id, f->attrs[2].ulValueLen, out, len);
}

static const char *
class_name (const struct key_facts *f)
{
	if (!f->class_ok)
		return "?";
	switch (f->klass) {
	case CKO_PRIVATE_KEY: return "private";
	case CKO_SECRET_KEY: return "secret-key";
	case CKO_PUBLIC_KEY: return "public";
	case CKO_CERTIFICATE: return "cert";
	case CKO_DATA: return "data";
	default: return "other";
	}
}

static const char *
key_type_name (const struct key_facts *f)
{
	if (!f->type_ok)
		return "?";
	switch (f->type) {
	case CKK_RSA: return "RSA";
	case CKK_DSA: return "DSA";
	case CKK_DH: return "DH";
	case CKK_EC: return "EC";
	case CKK_GENERIC_SECRET: return "generic";
	case CKK_DES3: return "DES3";
	case CKK_AES: return "AES";
#ifdef CKK_EC_EDWARDS
	case CKK_EC_EDWARDS: return "EC-Edwards";
#endif
#ifdef CKK_EC_MONTGOMERY
	case CKK_EC_MONTGOMERY: return "EC-Montgomery";
#endif
	default: return "other";
	}
}

/* ------------------------------------------------------------ the gate's rules */

enum key_gate {
	KEY_PUBLIC,          /* public material: never gated */
	KEY_UNGATED_SLOT,    /* gated = no */
	KEY_UNGATED_URI,     /* an `ungated` URI names it */
	KEY_GATED,           /* under @policy (NULL: none, always refused) */
};

struct key_status {
	enum key_gate gate;
	const char *policy;          /* the bound policy, or NULL */
	const char *uri;             /* the `ungated` or `key-policy` URI, as written */
	bool by_binding;             /* a key-policy line (else the slot's `policy`) */
	bool unreadable;             /* label, id or class not readable whole */
};

static bool
uri_names (const struct conf_uri *u, const CK_TOKEN_INFO *ti, const struct key_facts *f)
{
	return p11_kit_uri_match_token_info (u->uri, ti) == 1 &&
	       p11_kit_uri_match_attributes (u->uri, f->attrs, 3) == 1;
}

/*
 * gate.c's decision for a key with facts @f in slot @c whose token the
 * module reports as @ti (the gate matches URIs against the same label,
 * manufacturer, model and serial): public material first; a slot with
 * gated = no; then `ungated` URIs (a key whose name cannot be read whole
 * stays gated); then the first matching `key-policy`, else the slot's
 * `policy` (with key-policy lines, an unreadable name matches none and
 * gets no policy: it could be any key).
 */
static void
key_decide (const struct conf_slot *c, const CK_TOKEN_INFO *ti, const struct key_facts *f,
            struct key_status *out)
{
	memset (out, 0, sizeof *out);
	if (f->class_ok && (f->klass == CKO_PUBLIC_KEY || f->klass == CKO_CERTIFICATE ||
	                    f->klass == CKO_DOMAIN_PARAMETERS)) {
		out->gate = KEY_PUBLIC;
		return;
	}
	if (!c->gated) {
		out->gate = KEY_UNGATED_SLOT;
		return;
	}
	out->unreadable = !facts_complete (f);
	if (!out->unreadable) {
		for (size_t i = 0; i < c->n_ungated; i++) {
			if (uri_names (&c->ungated[i], ti, f)) {
				out->gate = KEY_UNGATED_URI;
				out->uri = c->ungated[i].text;
				return;
			}
		}
	}
	out->gate = KEY_GATED;
	if (c->n_bindings == 0) {
		out->policy = c->policy;
		return;
	}
	if (out->unreadable)
		return;
	for (size_t i = 0; i < c->n_bindings; i++) {
		if (uri_names (&c->bindings[i].uri, ti, f)) {
			out->policy = c->bindings[i].policy;
			out->uri = c->bindings[i].uri.text;
			out->by_binding = true;
			return;
		}
	}
	out->policy = c->policy;
}

static void
key_status_text (const struct key_status *k, char *out, size_t len)
{
	switch (k->gate) {
	case KEY_PUBLIC:
		snprintf (out, len, "public (never gated)");
		return;
	case KEY_UNGATED_SLOT:
		snprintf (out, len, "ungated (slot: gated = no)");
		return;
	case KEY_UNGATED_URI:
		snprintf (out, len, "ungated (%s)", k->uri);
		return;
	case KEY_GATED:
		break;
	}
	if (!k->policy)
		snprintf (out, len, "%sgated: NO POLICY (always refused)",
		          k->unreadable ? "name unreadable: " : "");
	else if (k->by_binding)
		snprintf (out, len, "gated: policy %s (key-policy %s)", k->policy, k->uri);
	else
		snprintf (out, len, "%sgated: policy %s (slot default)",
		          k->unreadable ? "name unreadable: " : "", k->policy);
}

/* ------------------------------------------------------------ a slot's keys */

struct session {
	struct module *m;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	bool open, logged_in;
};

/*
 * Open a session on [slot:@name] through the module and log in with the
 * PIN in @pin_file (NULL: not logged in; private keys are not seen).
 * 0, EXIT_NO with the problem on stderr (no token, PIN refused), or
 * EXIT_ENV.
 */
static int
session_open (struct module *m, const char *name, const char *pin_file, struct session *s)
{
	CK_SLOT_INFO si;
	char pin[PIN_MAX], b[64];
	size_t pin_len = 0;
	CK_RV rv;
	int rc;

	memset (s, 0, sizeof *s);
	s->m = m;
	if (!m->initialized) {
		fprintf (stderr, "p11-warden: the module %s does not initialise: %s (its log says "
		         "why; `p11-warden doctor` checks each part)\n", m->path,
		         ckr (m->init_rv, b, sizeof b));
		return EXIT_ENV;
	}
	if (!module_find_slot (m, name, &s->slot, &si)) {
		fprintf (stderr, "p11-warden: the module presents no slot '%s'\n", name);
		return EXIT_ENV;
	}
	if (!(si.flags & CKF_TOKEN_PRESENT) ||
	    (rv = m->fl->C_GetTokenInfo (s->slot, &s->ti)) != CKR_OK) {
		fprintf (stderr, "p11-warden: slot '%s': no token: its backend token cannot be "
		         "reached (module and token URI in [slot:%s])\n", name, name);
		return EXIT_NO;
	}
	if (!(s->ti.flags & CKF_TOKEN_INITIALIZED)) {
		fprintf (stderr, "p11-warden: slot '%s': the token is not initialised "
		         "(p11-warden token init, or pkcs11-tool --init-token)\n", name);
		return EXIT_NO;
	}
	rv = m->fl->C_OpenSession (s->slot, CKF_SERIAL_SESSION, NULL, NULL, &s->h);
	if (rv != CKR_OK) {
		fprintf (stderr, "p11-warden: slot '%s': cannot open a session: %s\n", name,
		         ckr (rv, b, sizeof b));
		return EXIT_ENV;
	}
	s->open = true;
	if (!pin_file)
		return 0;
	if ((rc = tool_read_pin_file (pin_file, pin, sizeof pin, &pin_len)) != 0)
		return rc;
	rv = m->fl->C_Login (s->h, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
	OPENSSL_cleanse (pin, sizeof pin);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fprintf (stderr, "p11-warden: slot '%s': login with the PIN in %s refused: %s\n", name,
		         pin_file, ckr (rv, b, sizeof b));
		return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ? EXIT_NO : EXIT_ENV;
	}
	s->logged_in = true;
	return 0;
}

static void
session_close (struct session *s)
{
	if (s->logged_in)
		s->m->fl->C_Logout (s->h);
	if (s->open)
		s->m->fl->C_CloseSession (s->h);
	s->open = s->logged_in = false;
}

/* Every private, secret and public key of the session's token. */
static int
find_keys (struct session *s, CK_OBJECT_HANDLE **out, size_t *n)
{
	static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_SECRET_KEY, CKO_PUBLIC_KEY };
	CK_FUNCTION_LIST *fl = s->m->fl;
	CK_OBJECT_HANDLE *h = calloc (MAX_KEYS, sizeof *h);
	char b[64];

	*n = 0;
	if (!h) {
		fprintf (stderr, "p11-warden: out of memory\n");
		return EXIT_ENV;
	}
	for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
		CK_OBJECT_CLASS k = classes[c];
		CK_ATTRIBUTE t = { CKA_CLASS, &k, sizeof k };
		CK_ULONG got = 0;
		CK_RV rv = fl->C_FindObjectsInit (s->h, &t, 1);
		if (rv != CKR_OK) {
			fprintf (stderr, "p11-warden: cannot search the token: %s\n", ckr (rv, b, sizeof b));
			free (h);
			return EXIT_ENV;
		}
		do {
			rv = fl->C_FindObjects (s->h, h + *n, (CK_ULONG)(MAX_KEYS - *n), &got);
			if (rv != CKR_OK)
				break;
			*n += got;
		} while (got > 0 && *n < MAX_KEYS);
		fl->C_FindObjectsFinal (s->h);
		if (rv != CKR_OK) {
			fprintf (stderr, "p11-warden: cannot search the token: %s\n", ckr (rv, b, sizeof b));
			free (h);
			return EXIT_ENV;
		}
	}
	if (*n == MAX_KEYS)
		fprintf (stderr, "p11-warden: only the first %d keys are shown\n", MAX_KEYS);
	*out = h;
	return 0;
}

/* ------------------------------------------------------------ key list */

static int
key_list (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "slot", required_argument, NULL, 's' },
		{ "conf", required_argument, NULL, 'c' },
		{ "module", required_argument, NULL, 'm' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *slot_name = NULL, *conf_file = NULL, *module_path = NULL, *pin_file = NULL;
	const struct conf_slot *slot;
	struct conf conf;
	struct module m;
	struct session s;
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	struct json_object *out = NULL, *keys = NULL;
	char err[1024], tl[64];
	int c, rc;

	optind = 1;
	while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': slot_name = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'm': module_path = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'h':
			printf ("usage: p11-warden key list --slot NAME [--conf FILE] [--module PATH]\n"
			        "                           [--pin-file FILE]\n"
			        "List the slot's keys through the p11-warden module (--module, else\n"
			        "$P11W_MODULE, else the installed one), logged in with the user PIN in\n"
			        "FILE (yours, mode 0600; without it only public keys are seen), each with\n"
			        "its label, CKA_ID, class, key type and gate status as the configuration\n"
			        "decides it.\n");
			return 0;
		default:
			return usage_error ("key list: bad option%s", NULL);
		}
	}
	if (optind != argc)
		return usage_error ("key list: unexpected '%s'", argv[optind]);
	if (!slot_name)
		return usage_error ("key list needs --slot NAME%s", NULL);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	if (!(slot = find_slot (&conf, slot_name))) {
		unknown_slot (&conf, slot_name);
		conf_free (&conf);
		return EXIT_ENV;
	}
	if ((rc = module_open (module_path, conf.path, &m, err, sizeof err)) != 0) {
		fprintf (stderr, "p11-warden: %s\n", err);
		conf_free (&conf);
		return rc;
	}
	if ((rc = session_open (&m, slot_name, pin_file, &s)) != 0)
		goto out;
	if (!pin_file)
		fprintf (stderr, "p11-warden: not logged in (no --pin-file): private and secret keys "
		         "are not listed\n");
	if ((rc = find_keys (&s, &h, &n)) != 0)
		goto out;
	unpad (s.ti.label, sizeof s.ti.label, tl, sizeof tl);
	if (json_out) {
		out = json_object_new_object ();
		keys = json_object_new_array ();
		json_str (out, "slot", slot_name);
		json_str (out, "token", tl);
		json_object_object_add (out, "logged-in", json_object_new_boolean (s.logged_in));
	} else {
		printf ("slot '%s', token '%s': %zu key(s)\n", slot_name, tl, n);
	}
	for (size_t i = 0; i < n; i++) {
		struct key_facts f;
		struct key_status k;
		char label[NAME_MAX_BYTES * 4 + 1], id[NAME_MAX_BYTES * 2 + 16], st[1024];
		CK_RV rv = read_facts (m.fl, s.h, h[i], &f);
		if (rv != CKR_OK) {
			/* The gate refuses a key it cannot read (fail closed). */
			if (keys) {
				struct json_object *o = json_object_new_object ();
				json_object_object_add (o, "handle", json_object_new_int64 ((int64_t)h[i]));
				json_str (o, "status", "attributes unreadable: gated (refused)");
				json_object_array_add (keys, o);
			} else {
				printf ("  handle %lu: attributes unreadable (0x%lx): gated (refused)\n",
				        (unsigned long)h[i], (unsigned long)rv);
			}
			continue;
		}
		key_decide (slot, &s.ti, &f, &k);
		key_status_text (&k, st, sizeof st);
		facts_label (&f, label, sizeof label);
		facts_id (&f, id, sizeof id);
		if (keys) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "label", label);
			json_str (o, "id", id);
			json_str (o, "class", class_name (&f));
			json_str (o, "key-type", key_type_name (&f));
			json_object_object_add (o, "gated", json_object_new_boolean (k.gate == KEY_GATED));
			json_str (o, "policy", k.policy);
			if (k.gate == KEY_GATED)
				json_str (o, "binding", !k.policy ? "none" : k.by_binding ? "key-policy" :
				                                            "slot");
			json_str (o, "uri", k.uri);
			json_object_object_add (o, "name-readable", json_object_new_boolean (!k.unreadable));
			json_str (o, "status", st);
			json_object_array_add (keys, o);
		} else {
			printf ("  %-24s id=%-16s %-10s %-8s %s\n", label, id[0] ? id : "-", class_name (&f),
			        key_type_name (&f), st);
		}
	}
	if (out) {
		json_object_object_add (out, "keys", keys);
		keys = NULL;
		print_json (out);
		out = NULL;
	}
	rc = 0;
out:
	json_object_put (keys);
	json_object_put (out);
	free (h);
	session_close (&s);
	module_close (&m);
	conf_free (&conf);
	return rc;
}

int
cmd_key (int argc, char **argv)
{
	if (argc < 1 || !strcmp (argv[0], "--help") || !strcmp (argv[0], "-h")) {
		printf ("usage: p11-warden key list --slot NAME [--conf FILE] [--module PATH]\n"
		        "                           [--pin-file FILE]\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	if (!strcmp (argv[0], "list"))
		return key_list (argc, argv);
	return usage_error ("unknown key command '%s' (list)", argv[0]);
}

/* ------------------------------------------------------------ anchors */

/*
 * Each anchor of @conf on its own, so that one that does not load does
 * not hide the others (the module refuses to start with any of them
 * broken).  @set receives those that load; @errs[i] is "" or anchor i's
 * problem.
 */
static size_t
load_anchors_each (const struct conf *conf, struct anchor_set *set, char (*errs)[512])
{
	size_t bad = 0;

	memset (set, 0, sizeof *set);
	set->a = calloc (conf->n_anchors ? conf->n_anchors : 1, sizeof *set->a);
	for (size_t i = 0; i < conf->n_anchors; i++) {
		struct conf one;
		struct anchor_set s1;
		memset (&one, 0, sizeof one);
		one.path = conf->path;
		one.anchors = &conf->anchors[i];
		one.n_anchors = 1;
		errs[i][0] = '\0';
		/* anchors_load checks the key against the format too. */
		if (!anchors_load (&one, &s1, errs[i], sizeof errs[i])) {
			bad++;
			continue;
		}
		if (set->a)
			set->a[set->n++] = s1.a[0];
		else
			EVP_PKEY_free (s1.a[0].pkey);
		free (s1.a);
	}
	return bad;
}

/* ------------------------------------------------------------ collectors */

struct run {
	double ms;
	bool collected, verified;
	char format[32];
	char err[1024];
};

/* Run @k once over @nonce as the module would and appraise what it gives;
 * @a receives the appraisal when r->verified (appraisal_clear it). */
static void
run_collector (const struct conf *conf, const struct conf_collector *k,
               const struct anchor_set *anchors, const unsigned char *nonce, size_t nonce_len,
               struct appraisal *a, struct run *r)
{
	struct collector *col;
	struct collected cd = { 0 };
	struct timespec t0;

	memset (r, 0, sizeof *r);
	if (k->type == CONF_COLLECTOR_TPM2_QUOTE)
		col = collector_tpm2_new (k->name, k->tcti, (uint32_t)k->ak_handle, k->pcrs, r->err,
		                          sizeof r->err);
	else
		col = collector_command_new (k->name, (const char *const *)k->argv, k->timeout_ms,
		                             k->max_output, r->err, sizeof r->err);
	if (!col)
		return;
	clock_gettime (CLOCK_MONOTONIC, &t0);
	if (collector_run (col, nonce, nonce_len, &cd, r->err, sizeof r->err) != COLLECTOR_OK) {
		r->ms = ms_since (&t0);
		collector_free (col);
		return;
	}
	r->ms = ms_since (&t0);
	collector_free (col);
	r->collected = true;
	snprintf (r->format, sizeof r->format, "%s", cd.format);
	r->verified = evidence_appraise (anchors, cd.format, cd.data, cd.len, nonce, nonce_len,
	                                 time (NULL), conf->clock_skew, a, r->err,
	                                 sizeof r->err) == 0;
	collected_clear (&cd);
}

/* ------------------------------------------------------------ the ledger */

struct recent {
	unsigned long want;
	unsigned long n;               /* kept so far (ring) */
	struct recent_entry {
		uint64_t seq;
		int64_t time_ms;
		char event[16];
		char slot[CONF_SLOT_NAME_MAX + 1];
		char key[96];
		char op[24];
		char policy[CONF_NAME_MAX + 1];
		char reason[256];
	} *e;
};

static void
copy_text (char *dst, size_t len, const unsigned char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; s && i < n && o + 1 < len; i++)
		dst[o++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	dst[o] = '\0';
}

static int
keep_recent (const struct ledger_entry *e, void *user)
{
	struct recent *r = user;
	struct recent_entry *x;

	if (e->checkpoint || !e->event ||
	    (strcmp (e->event, "gated-allow") != 0 && strcmp (e->event, "gated-deny") != 0))
		return 0;
	x = &r->e[r->n % r->want];
	r->n++;
	memset (x, 0, sizeof *x);
	x->seq = e->seq;
	x->time_ms = e->time_ms;
	snprintf (x->event, sizeof x->event, "%s", e->event);
	if (e->slot)
		snprintf (x->slot, sizeof x->slot, "%s", e->slot);
	if (e->key_label)
		copy_text (x->key, sizeof x->key, e->key_label, e->key_label_len);
	else if (e->key_id)
		hex (e->key_id, e->key_id_len, x->key, sizeof x->key);
	if (e->operation)
		snprintf (x->op, sizeof x->op, "%s", e->operation);
	if (e->policy)
		snprintf (x->policy, sizeof x->policy, "%s", e->policy);
	if (e->reason)
		copy_text (x->reason, sizeof x->reason, (const unsigned char *)e->reason,
		           strlen (e->reason));
	return 0;
}

/* The audit key's public half, when the caller can read the key. */
static EVP_PKEY *
audit_public_key (const char *path, char *err, size_t errlen)
{
	FILE *f = fopen (path, "re");
	EVP_PKEY *priv, *pub = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	if (!f) {
		snprintf (err, errlen, "%s", errno == EACCES ? "key not readable by you" :
		          strerror (errno));
		return NULL;
	}
	priv = PEM_read_PrivateKey (f, NULL, NULL, NULL);
	fclose (f);
	if (!priv) {
		snprintf (err, errlen, "%s: not a PEM private key", path);
		return NULL;
	}
	len = i2d_PUBKEY (priv, &der);
	EVP_PKEY_free (priv);
	if (len <= 0) {
		snprintf (err, errlen, "%s: cannot encode its public key", path);
		return NULL;
	}
	p = der;
	pub = d2i_PUBKEY (NULL, &p, len);
	OPENSSL_free (der);
	if (!pub)
		snprintf (err, errlen, "%s: cannot decode its public key", path);
	return pub;
}

/* Can this account append to the ledger at @path (the module refuses
 * gated operations when it cannot record them)? */
static bool
ledger_writable (const char *path, const char *key, char *why, size_t len)
{
	char dir[PATH_MAX], *slash;

	if (access (path, F_OK) == 0) {
		if (access (path, W_OK) != 0) {
			snprintf (why, len, "%s is not writable by you", path);
			return false;
		}
	} else {
		snprintf (dir, sizeof dir, "%s", path);
		slash = strrchr (dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		if (access (slash ? dir : ".", W_OK) != 0) {
			snprintf (why, len, "%s does not exist and its directory is not writable by you",
			          path);
			return false;
		}
	}
	if (key && access (key, R_OK) != 0) {
		snprintf (why, len, "the audit key %s is not readable by you", key);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ status */

static bool
policy_bound_somewhere (const struct conf *conf, const char *name, struct json_object *jb,
                        char *text, size_t len)
{
	size_t o = 0;
	bool any = false;

	text[0] = '\0';
	for (size_t i = 0; i < conf->n_slots; i++) {
		const struct conf_slot *s = &conf->slots[i];
		if (s->policy && !strcmp (s->policy, name)) {
			char b[128];
			snprintf (b, sizeof b, "slot %s (default)", s->name);
			if (jb)
				json_object_array_add (jb, json_object_new_string (b));
			if (o < len)
				o += (size_t)snprintf (text + o, len - o, "%s%s", any ? ", " : "", b);
			any = true;
		}
		for (size_t j = 0; j < s->n_bindings; j++) {
			char b[1024];
			if (strcmp (s->bindings[j].policy, name) != 0)
				continue;
			snprintf (b, sizeof b, "slot %s key-policy %s", s->name, s->bindings[j].uri.text);
			if (jb)
				json_object_array_add (jb, json_object_new_string (b));
			if (o < len)
				o += (size_t)snprintf (text + o, len - o, "%s%s", any ? ", " : "", b);
			any = true;
		}
	}
	return any;
}

int
cmd_status (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "module", required_argument, NULL, 'm' },
		{ "last", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_file = NULL, *module_path = NULL;
	unsigned long last = DEFAULT_RECENT;
	struct conf conf;
	struct module m;
	struct anchor_set anchors = { 0 };
	char (*anchor_errs)[512] = NULL;
	unsigned char nonce[32];
	struct json_object *out = NULL, *arr;
	char err[1024], b[64];
	bool healthy = true, module_ok = false;
	char **v;
	int c, rc, vc;

	if (argc > 0 && argv[0][0] != '-')
		return usage_error ("status: unexpected '%s' (it takes options only)", argv[0]);
	if (!(v = with_name ("status", argc, argv, &vc)))
		return EXIT_ENV;
	optind = 1;
	while ((c = getopt_long (vc, v, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf_file = optarg; break;
		case 'm': module_path = optarg; break;
		case 'n': {
			char *end = NULL;
			unsigned long x = strtoul (optarg, &end, 10);
			if (!*optarg || *end || x > MAX_RECENT || optarg[0] == '-') {
				free (v);
				return usage_error ("--last wants 0 to 1000, not '%s'", optarg);
			}
			last = x;
			break;
		}
		case 'h':
			free (v);
			printf ("usage: p11-warden status [--conf FILE] [--module PATH] [--last N]\n"
			        "The configuration's slots (and, through the p11-warden module, whether\n"
			        "their tokens are present and initialised), whether each backend module\n"
			        "loads, each collector answers (run once over a fresh nonce; its evidence\n"
			        "appraised), each anchor and policy loads, the audit ledger is intact,\n"
			        "and its last N (default 10) gated decisions.  Exit 0 when everything\n"
			        "answers, 1 when something does not.\n");
			return 0;
		default:
			free (v);
			return usage_error ("status: bad option%s", NULL);
		}
	}
	if (optind != vc) {
		rc = usage_error ("status: unexpected '%s'", v[optind]);
		free (v);
		return rc;
	}
	free (v);
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	if (json_out) {
		out = json_object_new_object ();
		json_str (out, "conf", conf.path);
	} else {
		printf ("configuration: %s: %zu slot(s), %zu anchor(s), %zu polic%s, %zu collector(s)\n",
		        conf.path, conf.n_slots, conf.n_anchors, conf.n_policies,
		        conf.n_policies == 1 ? "y" : "ies", conf.n_collectors);
	}

	/* The module, as applications load it. */
	if (module_open (module_path, conf.path, &m, err, sizeof err) != 0) {
		healthy = false;
		if (out) {
			struct json_object *o = json_object_new_object ();
			json_object_object_add (o, "loaded", json_object_new_boolean (false));
			json_str (o, "error", err);
			json_object_object_add (out, "module", o);
		} else {
			printf ("module: %s\n", err);
		}
	} else {
		module_ok = m.initialized;
		healthy &= module_ok;
		if (out) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "path", m.path);
			json_object_object_add (o, "loaded", json_object_new_boolean (true));
			json_object_object_add (o, "initialized", json_object_new_boolean (m.initialized));
			if (!m.initialized)
				json_str (o, "error", ckr (m.init_rv, b, sizeof b));
			json_object_object_add (out, "module", o);
		} else if (m.initialized) {
			printf ("module: %s: initialised\n", m.path);
		} else {
			printf ("module: %s: C_Initialize fails: %s (its log says why; see the anchors, "
			        "policies, collectors and ledger below)\n", m.path, ckr (m.init_rv, b,
			                                                                    sizeof b));
		}
	}

	/* Slots. */
	arr = out ? json_object_new_array () : NULL;
	if (!out)
		printf ("slots:\n");
	for (size_t i = 0; i < conf.n_slots; i++) {
		const struct conf_slot *s = &conf.slots[i];
		CK_FUNCTION_LIST *bfl = p11_kit_module_load (s->module, P11_KIT_MODULE_UNMANAGED |
		                                                         P11_KIT_MODULE_CRITICAL);
		const char *lmsg = bfl ? NULL : p11_kit_message ();
		char bmsg[512] = "", tl[64] = "", state[160];
		bool present = false, initialised = false;
		CK_SLOT_ID sid;
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;

		if (!bfl)
			snprintf (bmsg, sizeof bmsg, "%s", lmsg ? lmsg : "cannot be loaded");
		else
			p11_kit_module_release (bfl);
		healthy &= bfl != NULL;
		if (module_ok && module_find_slot (&m, s->name, &sid, &si)) {
			present = (si.flags & CKF_TOKEN_PRESENT) && m.fl->C_GetTokenInfo (sid, &ti) == CKR_OK;
			if (present) {
				initialised = ti.flags & CKF_TOKEN_INITIALIZED;
				unpad (ti.label, sizeof ti.label, tl, sizeof tl);
			}
			healthy &= present;
			snprintf (state, sizeof state, "%s", !present ? "NO TOKEN (the backend token is not "
			          "reachable)" : initialised ? "token present, initialised" :
			          "token present, NOT initialised");
		} else {
			snprintf (state, sizeof state, "token not checked (the module is not initialised)");
		}
		if (arr) {
			struct json_object *o = json_object_new_object (), *jc = json_object_new_array ();
			json_str (o, "name", s->name);
			json_str (o, "backend-module", s->module);
			json_object_object_add (o, "backend-loads", json_object_new_boolean (bfl != NULL));
			if (!bfl)
				json_str (o, "backend-error", bmsg);
			json_str (o, "token-uri", s->token.text);
			if (module_ok) {
				json_object_object_add (o, "token-present", json_object_new_boolean (present));
				if (present) {
					json_object_object_add (o, "initialized",
					                        json_object_new_boolean (initialised));
					json_str (o, "label", tl);
				}
			}
			json_object_object_add (o, "gated", json_object_new_boolean (s->gated));
			json_str (o, "policy", s->policy);
			json_object_object_add (o, "key-policies",
			                        json_object_new_int64 ((int64_t)s->n_bindings));
			json_object_object_add (o, "ungated",
			                        json_object_new_int64 ((int64_t)s->n_ungated));
			for (size_t j = 0; j < s->n_collectors; j++)
				json_object_array_add (jc, json_object_new_string (s->collectors[j]));
			json_object_object_add (o, "collectors", jc);
			json_object_array_add (arr, o);
		} else {
			printf ("  %s: backend %s %s%s%s, token %s\n", s->name, s->module,
			        bfl ? "(loads)" : "(DOES NOT LOAD: ", bmsg, bfl ? "" : ")", s->token.text);
			printf ("    %s%s%s%s\n", state, tl[0] ? ", label '" : "", tl, tl[0] ? "'" : "");
			printf ("    %s, policy %s, %zu key-policy line(s), %zu ungated URI(s), collectors:",
			        s->gated ? "gated" : "NOT gated (gated = no)", s->policy ? s->policy : "(none)",
			        s->n_bindings, s->n_ungated);
			for (size_t j = 0; j < s->n_collectors; j++)
				printf (" %s", s->collectors[j]);
			printf ("%s\n", s->n_collectors ? "" : " none");
		}
	}
	if (out)
		json_object_object_add (out, "slots", arr);
	/* Done with the module: finalising it flushes what it recorded, so
	 * that the ledger is read whole below. */
	module_close (&m);

	/* Anchors, each on its own. */
	anchor_errs = calloc (conf.n_anchors ? conf.n_anchors : 1, sizeof *anchor_errs);
	if (!anchor_errs) {
		rc = EXIT_ENV;
		goto out;
	}
	if (load_anchors_each (&conf, &anchors, anchor_errs))
		healthy = false;
	arr = out ? json_object_new_array () : NULL;
	if (!out)
		printf ("anchors:\n");
	for (size_t i = 0; i < conf.n_anchors; i++) {
		const struct conf_anchor *ca = &conf.anchors[i];
		const struct anchor *a = anchors_find (&anchors, ca->name);
		char fp[65] = "";
		if (a)
			hex (a->fingerprint, sizeof a->fingerprint, fp, sizeof fp);
		if (arr) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "name", ca->name);
			json_str (o, "format", ca->format);
			json_str (o, "file", ca->file);
			json_object_object_add (o, "loads", json_object_new_boolean (a != NULL));
			if (a)
				json_str (o, "fingerprint", fp);
			else
				json_str (o, "error", anchor_errs[i]);
			json_object_array_add (arr, o);
		} else if (a) {
			printf ("  %s: %s, SHA-256 %s, loads\n", ca->name, ca->format, fp);
		} else {
			printf ("  %s: %s, DOES NOT LOAD: %s\n", ca->name, ca->format, anchor_errs[i]);
		}
	}
	if (out)
		json_object_object_add (out, "anchors", arr);
	else if (!conf.n_anchors)
		printf ("  none\n");

	/* Policies. */
	arr = out ? json_object_new_array () : NULL;
	if (!out)
		printf ("policies:\n");
	for (size_t i = 0; i < conf.n_policies; i++) {
		const struct conf_policy *cp = &conf.policies[i];
		struct policy *p = policy_load_file (cp->file, err, sizeof err);
		struct json_object *jb = arr ? json_object_new_array () : NULL;
		char bound[2048], dg[65] = "";
		bool any = policy_bound_somewhere (&conf, cp->name, jb, bound, sizeof bound);
		if (p)
			hex (policy_digest (p), POLICY_DIGEST_LEN, dg, sizeof dg);
		healthy &= p != NULL;
		if (arr) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "name", cp->name);
			json_str (o, "file", cp->file);
			json_object_object_add (o, "loads", json_object_new_boolean (p != NULL));
			if (p)
				json_str (o, "digest", dg);
			else
				json_str (o, "error", err);
			json_object_object_add (o, "bound-by", jb);
			json_object_array_add (arr, o);
		} else if (p) {
			printf ("  %s: loads, SHA-256 %s; bound by %s\n", cp->name, dg,
			        any ? bound : "nothing");
		} else {
			printf ("  %s: DOES NOT LOAD: %s; bound by %s\n", cp->name, err,
			        any ? bound : "nothing");
		}
		policy_free (p);
	}
	if (out)
		json_object_object_add (out, "policies", arr);
	else if (!conf.n_policies)
		printf ("  none\n");

	/* Collectors: each once, over one fresh nonce. */
	if (RAND_bytes (nonce, sizeof nonce) != 1) {
		fprintf (stderr, "p11-warden: cannot make a nonce\n");
		rc = EXIT_ENV;
		goto out;
	}
	arr = out ? json_object_new_array () : NULL;
	if (!out)
		printf ("collectors:\n");
	for (size_t i = 0; i < conf.n_collectors; i++) {
		const struct conf_collector *k = &conf.collectors[i];
		struct appraisal a;
		struct run r;
		memset (&a, 0, sizeof a);
		run_collector (&conf, k, &anchors, nonce, sizeof nonce, &a, &r);
		healthy &= r.verified;
		if (arr) {
			struct json_object *o = json_object_new_object ();
			json_str (o, "name", k->name);
			json_str (o, "type", k->type == CONF_COLLECTOR_TPM2_QUOTE ? "tpm2-quote" : "command");
			json_object_object_add (o, "ok", json_object_new_boolean (r.collected));
			json_object_object_add (o, "verified", json_object_new_boolean (r.verified));
			json_object_object_add (o, "ms", json_object_new_double (r.ms));
			if (r.collected)
				json_str (o, "format", r.format);
			if (r.verified)
				json_str (o, "anchor", a.anchor);
			else
				json_str (o, "error", r.err);
			json_object_array_add (arr, o);
		} else if (r.verified) {
			printf ("  %s: OK, %s evidence in %.1f ms, verified by anchor '%s'\n", k->name,
			        r.format, r.ms, a.anchor);
		} else if (r.collected) {
			printf ("  %s: answers (%s evidence in %.1f ms) but its evidence is REFUSED: %s\n",
			        k->name, r.format, r.ms, r.err);
		} else {
			printf ("  %s: FAILED after %.1f ms: %s\n", k->name, r.ms, r.err);
		}
		if (r.verified)
			appraisal_clear (&a);
	}
	OPENSSL_cleanse (nonce, sizeof nonce);
	if (out)
		json_object_object_add (out, "collectors", arr);
	else if (!conf.n_collectors)
		printf ("  none\n");

	/* The audit ledger and its last decisions. */
	{
		struct json_object *o = out ? json_object_new_object () : NULL;
		struct recent rec = { last ? last : 1, 0, NULL };
		struct ledger_verify_result res;
		enum ledger_verify_status st;
		EVP_PKEY *pub = NULL;
		char kerr[512] = "", why[512], hash[65];
		bool head;

		if (!conf.audit_ledger) {
			if (o) {
				json_object_object_add (o, "configured", json_object_new_boolean (false));
				json_object_object_add (out, "audit", o);
			} else {
				printf ("audit ledger: not configured (decisions go to the log only)\n");
			}
			goto done;
		}
		rec.e = calloc (rec.want, sizeof *rec.e);
		if (!rec.e) {
			json_object_put (o);
			rc = EXIT_ENV;
			goto out;
		}
		pub = audit_public_key (conf.audit_key, kerr, sizeof kerr);
		snprintf (why, sizeof why, "%s.head", conf.audit_ledger);
		head = access (why, F_OK) == 0;
		/* With the key: is it intact (signatures, head)?  Then the
		 * records again without it, which is what show does. */
		st = ledger_verify_file (conf.audit_ledger, pub, NULL, !head, NULL, NULL, &res);
		if (pub && st == LEDGER_VERIFY_OK)
			st = ledger_verify_file (conf.audit_ledger, NULL, NULL, true, keep_recent, &rec,
			                         &res);
		else if (!pub)
			(void)ledger_verify_file (conf.audit_ledger, NULL, NULL, true, keep_recent, &rec,
			                          &res);
		hex (res.last_checkpoint_hash, 32, hash, sizeof hash);
		if (st != LEDGER_VERIFY_OK || res.unsigned_tail || res.torn_tail)
			healthy = false;
		if (ledger_writable (conf.audit_ledger, conf.audit_key, why, sizeof why))
			why[0] = '\0';
		if (o) {
			struct json_object *jr = json_object_new_array ();
			json_object_object_add (o, "configured", json_object_new_boolean (true));
			json_str (o, "path", conf.audit_ledger);
			json_object_object_add (o, "signatures-checked", json_object_new_boolean (pub != NULL));
			if (!pub)
				json_str (o, "key-error", kerr);
			if (st == LEDGER_VERIFY_IO) {
				json_str (o, "error", res.reason);
			} else {
				json_object_object_add (o, "intact", json_object_new_boolean (
					st == LEDGER_VERIFY_OK && !res.unsigned_tail && !res.torn_tail));
				json_object_object_add (o, "records", json_object_new_int64 ((int64_t)res.records));
				json_object_object_add (o, "last-checkpoint",
				                        json_object_new_int64 ((int64_t)res.last_checkpoint_seq));
				json_str (o, "last-checkpoint-hash", hash);
				if (st != LEDGER_VERIFY_OK)
					json_str (o, "reason", res.reason);
			}
			json_object_object_add (o, "writable", json_object_new_boolean (!why[0]));
			if (why[0])
				json_str (o, "not-writable", why);
			for (unsigned long i = rec.n > last ? rec.n - last : 0; last && i < rec.n; i++) {
				const struct recent_entry *x = &rec.e[i % rec.want];
				struct json_object *jx = json_object_new_object ();
				char when[40];
				iso_time (x->time_ms, when, sizeof when);
				json_object_object_add (jx, "seq", json_object_new_int64 ((int64_t)x->seq));
				json_str (jx, "time", when);
				json_str (jx, "event", x->event);
				json_str (jx, "slot", x->slot);
				json_str (jx, "key", x->key);
				json_str (jx, "operation", x->op);
				json_str (jx, "policy", x->policy[0] ? x->policy : NULL);
				json_str (jx, "reason", x->reason);
				json_object_array_add (jr, jx);
			}
			json_object_object_add (o, "recent", jr);
			json_object_object_add (out, "audit", o);
		} else {
			printf ("audit ledger: %s: ", conf.audit_ledger);
			if (st == LEDGER_VERIFY_IO)
				printf ("CANNOT BE READ: %s\n", res.reason);
			else if (st != LEDGER_VERIFY_OK)
				printf ("NOT intact: %s\n", res.reason);
			else if (!pub)
				printf ("chain unbroken, %llu records, last checkpoint %llu (signatures not "
				        "checked: audit key %s: %s)\n", (unsigned long long)res.records,
				        (unsigned long long)res.last_checkpoint_seq, conf.audit_key, kerr);
			else if (res.unsigned_tail || res.torn_tail)
				printf ("NOT intact: %llu records, %llu unsigned after the last checkpoint "
				        "(%llu)\n", (unsigned long long)res.records,
				        (unsigned long long)res.unsigned_tail,
				        (unsigned long long)res.last_checkpoint_seq);
			else
				printf ("intact, %llu records, last checkpoint %llu %s\n",
				        (unsigned long long)res.records,
				        (unsigned long long)res.last_checkpoint_seq, hash);
			if (why[0])
				printf ("  %s: this account's processes cannot record decisions, and are "
				        "refused gated operations\n", why);
			printf ("recent decisions (last %lu of %lu gated ones%s):\n",
			        rec.n < last ? rec.n : last, rec.n,
			        pub ? "" : ", not authenticated");
			for (unsigned long i = rec.n > last ? rec.n - last : 0; last && i < rec.n; i++) {
				const struct recent_entry *x = &rec.e[i % rec.want];
				char when[40];
				iso_time (x->time_ms, when, sizeof when);
				printf ("  %6llu %s %-11s slot=%s key='%s' op=%s%s%s%s%s%s\n",
				        (unsigned long long)x->seq, when, x->event, x->slot, x->key, x->op,
				        x->policy[0] ? " policy=" : "", x->policy,
				        x->reason[0] && strcmp (x->event, "gated-deny") == 0 ? " reason=\"" : "",
				        strcmp (x->event, "gated-deny") == 0 ? x->reason : "",
				        x->reason[0] && strcmp (x->event, "gated-deny") == 0 ? "\"" : "");
			}
		}
		EVP_PKEY_free (pub);
		free (rec.e);
	}
done:
	if (out) {
		json_object_object_add (out, "healthy", json_object_new_boolean (healthy));
		print_json (out);
		out = NULL;
	} else {
		printf ("%s\n", healthy ? "everything answers" : "SOMETHING FAILS (see above; "
		        "`p11-warden doctor --slot NAME` explains a slot)");
	}
	rc = healthy ? 0 : EXIT_NO;
out:
	json_object_put (out);
	free (anchor_errs);
	anchors_free (&anchors);
	module_close (&m);
	conf_free (&conf);
	return rc;
}

/* ------------------------------------------------------------ doctor */

#define MAX_PROBLEMS 32

struct diagnosis {
	size_t n;
	struct {
		char what[1024];
		char fix[512];
	} p[MAX_PROBLEMS];
	struct json_object *checks;  /* --json: what was checked */
};

/* Something that makes a gated operation fail now, and its fix. */
static void __attribute__ ((format (printf, 3, 4)))
problem (struct diagnosis *d, const char *fix, const char *fmt, ...)
{
	va_list ap;
	if (d->n == MAX_PROBLEMS)
		return;
	va_start (ap, fmt);
	vsnprintf (d->p[d->n].what, sizeof d->p[d->n].what, fmt, ap);
	va_end (ap);
	snprintf (d->p[d->n].fix, sizeof d->p[d->n].fix, "%s", fix);
	if (d->checks) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "ok", json_object_new_boolean (false));
		json_str (o, "check", d->p[d->n].what);
		json_object_array_add (d->checks, o);
	} else {
		printf ("  FAIL  %s\n", d->p[d->n].what);
	}
	d->n++;
}

/* What was checked and holds (@ok), or is worth knowing. */
static void __attribute__ ((format (printf, 3, 4)))
note (struct diagnosis *d, bool ok, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start (ap, fmt);
	vsnprintf (text, sizeof text, fmt, ap);
	va_end (ap);
	if (d->checks) {
		struct json_object *o = json_object_new_object ();
		json_object_object_add (o, "ok", json_object_new_boolean (ok));
		json_str (o, "check", text);
		json_object_array_add (d->checks, o);
	} else {
		printf ("  %s  %s\n", ok ? "ok  " : "note", text);
	}
}

struct anchor_ref {
	const struct conf *conf;
	const struct anchor_set *loaded;
	const char *policy;
	struct diagnosis *d;
	size_t refs;
};

/* Is each anchor a policy's rule names enrolled, for that format, and
 * does it load? */
static bool
check_ref (const char *format, const char *anchor, const char *path, void *user)
{
	struct anchor_ref *r = user;
	const struct conf_anchor *ca = conf_find_anchor (r->conf, anchor);
	char fix[512];

	r->refs++;
	if (!ca) {
		snprintf (fix, sizeof fix, "enrol it: p11-warden anchor enrol %s --format %s FILE "
		          "(the AK's or verifier's public key)", anchor, format);
		problem (r->d, fix, "policy '%s' (%s) names anchor '%s', which is not enrolled (no "
		         "[anchor:%s])", r->policy, path, anchor, anchor);
	} else if (strcmp (ca->format, format) != 0) {
		snprintf (fix, sizeof fix, "enrol the %s key under another name and name that in the "
		          "policy", format);
		problem (r->d, fix, "policy '%s' (%s) wants %s evidence from anchor '%s', which "
		         "verifies %s", r->policy, path, format, anchor, ca->format);
	} else if (anchors_find (r->loaded, anchor)) {
		note (r->d, true, "policy '%s' (%s): anchor '%s' enrolled for %s", r->policy, path,
		      anchor, format);
	}
	return true;
}

/* The key @want names (a label, else a CKA_ID in hex); private and secret
 * keys before public ones.  false when there is none. */
static bool
doctor_find_key (struct session *s, const char *want, struct key_facts *out, size_t *matches)
{
	unsigned char id[NAME_MAX_BYTES];
	size_t id_len = 0, n = 0;
	bool is_hex = util_hex_decode (want, strlen (want), id, sizeof id, &id_len);
	CK_OBJECT_HANDLE *h = NULL;
	bool found = false;

	*matches = 0;
	if (find_keys (s, &h, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct key_facts f;
		bool label, byid;
		if (read_facts (s->m->fl, s->h, h[i], &f) != CKR_OK)
			continue;
		label = f.label_ok && f.attrs[1].ulValueLen == strlen (want) &&
		        !memcmp (f.label, want, strlen (want));
		byid = is_hex && f.id_ok && f.attrs[2].ulValueLen == id_len &&
		       !memcmp (f.id, id, id_len);
		if (!label && !byid)
			continue;
		/* find_keys lists private and secret keys first; a key pair's
		 * public half shares its name and is no second match. */
		if (!found) {
			*out = f;
			found = true;
		}
		if ((f.klass == CKO_PUBLIC_KEY) == (out->klass == CKO_PUBLIC_KEY))
			(*matches)++;
	}
	if (found) {
		/* The attribute array pointed into the loop's copy. */
		out->attrs[0].pValue = &out->klass;
		out->attrs[1].pValue = out->label;
		out->attrs[2].pValue = out->id;
	}
	free (h);
	return found;
}

int
cmd_doctor (int argc, char **argv)
{
	static const struct option opts[] = {
		{ "slot", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "conf", required_argument, NULL, 'c' },
		{ "module", required_argument, NULL, 'm' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *slot_name = NULL, *key = NULL, *conf_file = NULL, *module_path = NULL;
	const char *pin_file = NULL, *policy_name = NULL;
	const struct conf_slot *slot;
	struct conf conf;
	struct module m;
	struct session s;
	struct diagnosis *d = NULL;
	struct anchor_set anchors = { 0 };
	char (*anchor_errs)[512] = NULL;
	struct appraisal got[CONF_MAX_COLLECTORS];
	struct evidence_claims ev[CONF_MAX_COLLECTORS];
	size_t n_got = 0;
	struct policy *pol = NULL;
	unsigned char nonce[32];
	char err[1024], fix[512], b[64];
	bool gated = true, module_loaded = false;
	char **v;
	int c, rc, vc;

	memset (&s, 0, sizeof s);
	memset (&m, 0, sizeof m);
	memset (got, 0, sizeof got);
	if (argc > 0 && argv[0][0] != '-')
		return usage_error ("doctor: unexpected '%s' (it takes options only)", argv[0]);
	if (!(v = with_name ("doctor", argc, argv, &vc)))
		return EXIT_ENV;
	optind = 1;
	while ((c = getopt_long (vc, v, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': slot_name = optarg; break;
		case 'k': key = optarg; break;
		case 'c': conf_file = optarg; break;
		case 'm': module_path = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'h':
			free (v);
			printf ("usage: p11-warden doctor --slot NAME [--key LABEL|HEXID] [--conf FILE]\n"
			        "                         [--module PATH] [--pin-file FILE]\n"
			        "Explain why a gated operation on the slot's keys (or on KEY, found by\n"
			        "label or CKA_ID through the module, logged in with the user PIN in\n"
			        "FILE) would be refused now, and what would fix it: the slot and its\n"
			        "backend, the key's gate status and policy, the policy and its anchors,\n"
			        "the collectors (run once over a fresh nonce, their evidence appraised\n"
			        "and the policy evaluated: PASS, or the first failing predicate), and\n"
			        "the audit ledger.  Exit 0 when a gated operation would be released\n"
			        "now, 1 when it would be refused (the problems are listed, each with a\n"
			        "fix), 3 when the configuration, slot, module or PIN file cannot be\n"
			        "used.\n");
			return 0;
		default:
			free (v);
			return usage_error ("doctor: bad option%s", NULL);
		}
	}
	if (optind != vc) {
		rc = usage_error ("doctor: unexpected '%s'", v[optind]);
		free (v);
		return rc;
	}
	free (v);
	if (!slot_name)
		return usage_error ("doctor needs --slot NAME%s", NULL);
	if (key && !pin_file)
		return usage_error ("doctor --key needs --pin-file FILE (keys are found by logging "
		                    "in)%s", NULL);
	if (pin_file) {
		/* A PIN file that cannot be used is the caller's problem, not
		 * the slot's: say so before anything else. */
		char pin[PIN_MAX];
		size_t pin_len;
		rc = tool_read_pin_file (pin_file, pin, sizeof pin, &pin_len);
		OPENSSL_cleanse (pin, sizeof pin);
		if (rc != 0)
			return rc;
	}
	if ((rc = load_conf (conf_path_default (conf_file), &conf)) != 0) {
		conf_free (&conf);
		return rc;
	}
	if (!(slot = find_slot (&conf, slot_name))) {
		unknown_slot (&conf, slot_name);
		conf_free (&conf);
		return EXIT_ENV;
	}
	d = calloc (1, sizeof *d);
	anchor_errs = calloc (conf.n_anchors ? conf.n_anchors : 1, sizeof *anchor_errs);
	if (!d || !anchor_errs) {
		fprintf (stderr, "p11-warden: out of memory\n");
		rc = EXIT_ENV;
		goto out;
	}
	if (json_out)
		d->checks = json_object_new_array ();
	else
		printf ("slot '%s'%s%s%s (%s):\n", slot_name, key ? ", key '" : "", key ? key : "",
		        key ? "'" : "", conf.path);

	/* The slot and its backend. */
	note (d, true, "slot '%s' is configured (%s:%d)", slot_name, conf.path, slot->line);
	{
		CK_FUNCTION_LIST *bfl = p11_kit_module_load (slot->module, P11_KIT_MODULE_UNMANAGED |
		                                                            P11_KIT_MODULE_CRITICAL);
		if (bfl) {
			p11_kit_module_release (bfl);
			note (d, true, "backend module %s loads", slot->module);
		} else {
			const char *msg = p11_kit_message ();
			snprintf (fix, sizeof fix, "install it, or correct 'module =' in [slot:%s]",
			          slot_name);
			problem (d, fix, "backend module %s does not load: %s", slot->module,
			         msg ? msg : "unknown error");
		}
	}
	if (!slot->gated) {
		gated = false;
		note (d, true, "the slot is not gated (gated = no): its keys are released without "
		      "evidence");
	}

	/* The module: the slot's token, and the key. */
	if (module_open (module_path, conf.path, &m, err, sizeof err) != 0) {
		if (key) {
			fprintf (stderr, "p11-warden: %s\n", err);
			rc = EXIT_ENV;
			goto out;
		}
		note (d, false, "the token was not checked: %s", err);
	} else if (!m.initialized) {
		module_loaded = true;
		problem (d, "fix what the other problems name; the module's log (stderr or syslog, "
		         "'log =' in [module]) has its reason", "the p11-warden module does not "
		         "initialise with this configuration (%s): applications get no slot at all",
		         ckr (m.init_rv, b, sizeof b));
	} else {
		CK_SLOT_ID sid;
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		module_loaded = true;
		if (!module_find_slot (&m, slot_name, &sid, &si)) {
			problem (d, "report this: the module and the tool disagree about the slots",
			         "the module presents no slot '%s'", slot_name);
		} else if (!(si.flags & CKF_TOKEN_PRESENT) || m.fl->C_GetTokenInfo (sid, &ti) != CKR_OK) {
			snprintf (fix, sizeof fix, "check 'module' and 'token' in [slot:%s] and that the "
			          "HSM answers (p11-warden status)", slot_name);
			problem (d, fix, "the slot's backend token (%s) is not reachable: the slot shows no "
			         "token", slot->token.text);
		} else if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			snprintf (fix, sizeof fix, "p11-warden token init --slot %s (or pkcs11-tool "
			          "--init-token, then --init-pin)", slot_name);
			problem (d, fix, "the p11-warden token of slot '%s' is not initialised", slot_name);
		} else {
			char tl[64];
			unpad (ti.label, sizeof ti.label, tl, sizeof tl);
			note (d, true, "the backend token answers; the slot's token '%s' is initialised",
			      tl);
		}
	}
	if (key && module_loaded && m.initialized && d->n == 0) {
		struct key_facts f;
		struct key_status k;
		size_t matches = 0;
		char st[1024];
		rc = session_open (&m, slot_name, pin_file, &s);
		if (rc == EXIT_ENV)
			goto out;
		if (rc != 0) {
			snprintf (fix, sizeof fix, "put the user PIN of the slot's p11-warden token in %s",
			          pin_file);
			problem (d, fix, "cannot log in to slot '%s' (above)", slot_name);
		} else if (!doctor_find_key (&s, key, &f, &matches)) {
			snprintf (fix, sizeof fix, "p11-warden key list --slot %s --pin-file %s shows the "
			          "keys", slot_name, pin_file);
			problem (d, fix, "no key with label or CKA_ID '%s' in slot '%s'", key, slot_name);
		} else {
			key_decide (slot, &s.ti, &f, &k);
			key_status_text (&k, st, sizeof st);
			note (d, true, "key '%s' (%s%s): %s", key, class_name (&f),
			      matches > 1 ? ", the first of several keys with that name" : "", st);
			if (k.gate != KEY_GATED) {
				gated = false;
			} else if (!k.policy) {
				snprintf (fix, sizeof fix, "bind one: p11-warden policy bind POLICY --slot %s "
				          "--key %s (or 'policy = POLICY' in [slot:%s])", slot_name, key,
				          slot_name);
				problem (d, fix, "key '%s' is gated and no policy is bound to it%s: it is always "
				         "refused", key, k.unreadable ? " (its label or id cannot be read "
				         "whole, so no key-policy line can name it)" : "");
			} else {
				policy_name = k.policy;
			}
		}
		session_close (&s);
	} else if (!key && gated) {
		policy_name = slot->policy;
		if (!policy_name && slot->n_bindings == 0) {
			snprintf (fix, sizeof fix, "bind one: p11-warden policy bind POLICY --slot %s (or "
			          "'policy = POLICY' in [slot:%s])", slot_name, slot_name);
			problem (d, fix, "slot '%s' has no policy: its gated keys are always refused",
			         slot_name);
		} else if (!policy_name) {
			policy_name = slot->bindings[0].policy;
			note (d, false, "the slot has no default policy (keys no key-policy line names are "
			      "refused); checking '%s' of the first key-policy line (--key checks a key)",
			      policy_name);
		} else if (slot->n_bindings) {
			note (d, false, "checking the slot's default policy '%s'; %zu key-policy line(s) "
			      "bind other keys (--key checks a key)", policy_name, slot->n_bindings);
		}
	}
	/* The module's log goes to stderr; the module's own records (its
	 * initialize and finalize) reach the ledger before it is read. */
	module_close (&m);

	/* Policies and anchors: the module does not start while one of them
	 * does not load. */
	for (size_t i = 0; i < conf.n_policies; i++) {
		const struct conf_policy *cp = &conf.policies[i];
		struct policy *p = policy_load_file (cp->file, err, sizeof err);
		if (!p) {
			snprintf (fix, sizeof fix, "correct %s (p11-warden policy check %s shows the "
			          "error); no key is released while a policy does not load", cp->file,
			          cp->file);
			problem (d, fix, "policy '%s' does not load: %s", cp->name, err);
			continue;
		}
		if (policy_name && !strcmp (cp->name, policy_name)) {
			char dg[65];
			hex (policy_digest (p), POLICY_DIGEST_LEN, dg, sizeof dg);
			note (d, true, "policy '%s' loads (SHA-256 %.16s...)", cp->name, dg);
			pol = p;
		} else {
			policy_free (p);
		}
	}
	load_anchors_each (&conf, &anchors, anchor_errs);
	for (size_t i = 0; i < conf.n_anchors; i++) {
		if (anchor_errs[i][0]) {
			snprintf (fix, sizeof fix, "enrol the right public key again (p11-warden anchor "
			          "enrol %s --format %s FILE), or remove the anchor", conf.anchors[i].name,
			          conf.anchors[i].format);
			problem (d, fix, "%s", anchor_errs[i]);
		}
	}
	if (pol) {
		struct anchor_ref r = { &conf, &anchors, policy_name, d, 0 };
		policy_for_each_anchor (pol, check_ref, &r);
	}

	/* Evidence: the slot's collectors, as the module would run them on a
	 * gated call without a live verdict. */
	if (gated && policy_name) {
		if (slot->n_collectors == 0) {
			snprintf (fix, sizeof fix, "push evidence (the application, before the operation) "
			          "or add collectors ('collectors = NAME' in [slot:%s], with a "
			          "[collector:NAME])", slot_name);
			problem (d, fix, "slot '%s' has no collectors: nothing is collected on a gated "
			         "call; only evidence the application pushes can release its keys",
			         slot_name);
		} else if (RAND_bytes (nonce, sizeof nonce) != 1) {
			fprintf (stderr, "p11-warden: cannot make a nonce\n");
			rc = EXIT_ENV;
			goto out;
		} else {
			struct run runs[CONF_MAX_COLLECTORS];
			struct policy_result res;
			size_t n_runs = slot->n_collectors < CONF_MAX_COLLECTORS ? slot->n_collectors :
			                CONF_MAX_COLLECTORS;
			memset (runs, 0, sizeof runs);
			for (size_t i = 0; i < n_runs; i++) {
				const struct conf_collector *k = conf_find_collector (&conf, slot->collectors[i]);
				if (!k) {
					runs[i].collected = runs[i].verified = false;
					snprintf (runs[i].err, sizeof runs[i].err, "no [collector:%s]",
					          slot->collectors[i]);
					continue;
				}
				run_collector (&conf, k, &anchors, nonce, sizeof nonce, &got[n_got], &runs[i]);
				if (runs[i].verified) {
					note (d, true, "collector '%s': %s evidence in %.1f ms, verified by anchor "
					      "'%s'", k->name, runs[i].format, runs[i].ms, got[n_got].anchor);
					appraisal_as_evidence (&got[n_got], &ev[n_got]);
					n_got++;
				}
			}
			OPENSSL_cleanse (nonce, sizeof nonce);
			if (pol) {
				policy_evaluate (pol, ev, n_got, time (NULL), &res);
				if (res.pass) {
					note (d, true, "policy '%s': PASS with the evidence collected now",
					      policy_name);
				}
			}
			/* A collector that fails matters when nothing else makes the
			 * policy pass (the module uses every answer it gets). */
			for (size_t i = 0; i < n_runs; i++) {
				const char *name = slot->collectors[i];
				if (runs[i].verified)
					continue;
				if (pol && res.pass) {
					note (d, false, "collector '%s' fails (%s), but is not needed now", name,
					      runs[i].err);
					continue;
				}
				if (runs[i].collected) {
					snprintf (fix, sizeof fix, "enrol the anchor that verifies it (p11-warden "
					          "anchor enrol NAME --format %s FILE), or correct the collector",
					          runs[i].format);
					problem (d, fix, "collector '%s': %s evidence refused: %s", name,
					         runs[i].format, runs[i].err);
				} else {
					snprintf (fix, sizeof fix, "make it answer: check [collector:%s] (the TPM "
					          "or the program it runs; p11-warden evidence collect --slot %s)",
					          name, slot_name);
					problem (d, fix, "collector '%s' fails after %.1f ms: %s", name, runs[i].ms,
					         runs[i].err);
				}
			}
			if (pol && !res.pass && n_got > 0)
				problem (d, "if the platform's new state is legitimate, update the policy (try "
				         "it first: p11-warden policy test); otherwise find out what changed",
				         "policy '%s': FAIL: %s", policy_name, res.reason);
		}
	}

	/* The audit ledger: a release that cannot be recorded is refused. */
	if (gated && !conf.audit_ledger) {
		note (d, false, "no audit ledger: decisions go to the log only ('audit-ledger' and "
		      "'audit-key' in [module])");
	} else if (gated) {
		struct ledger_verify_result res;
		enum ledger_verify_status st;
		EVP_PKEY *pub;
		char why[512], kerr[512];
		bool head;
		if (!ledger_writable (conf.audit_ledger, conf.audit_key, why, sizeof why))
			problem (d, "run the application as the account that owns the ledger, or give it "
			         "the ledger (chown; mode 0600) and the audit key",
			         "audit ledger: %s: this account's processes cannot record a release, and "
			         "are refused", why);
		pub = audit_public_key (conf.audit_key, kerr, sizeof kerr);
		snprintf (why, sizeof why, "%s.head", conf.audit_ledger);
		head = access (why, F_OK) == 0;
		st = access (conf.audit_ledger, F_OK) == 0 ?
		     ledger_verify_file (conf.audit_ledger, pub, NULL, !head, NULL, NULL, &res) :
		     LEDGER_VERIFY_OK;
		if (st == LEDGER_VERIFY_BAD) {
			snprintf (fix, sizeof fix, "p11-warden audit verify %s --key PUB.pem shows where; "
			          "keep it as evidence and move it and its .head aside to start anew",
			          conf.audit_ledger);
			problem (d, fix, "audit ledger %s is NOT intact: %s", conf.audit_ledger, res.reason);
		} else if (st == LEDGER_VERIFY_IO) {
			problem (d, "check the file's permissions", "audit ledger %s cannot be read: %s",
			         conf.audit_ledger, res.reason);
		} else {
			note (d, true, "audit ledger %s: %s", conf.audit_ledger,
			      pub ? "intact" : "chain unbroken (signatures not checked: audit key not "
			      "readable by you)");
		}
		EVP_PKEY_free (pub);
	}

	/* The verdict. */
	if (d->checks) {
		struct json_object *o = json_object_new_object (), *jp = json_object_new_array ();
		json_str (o, "slot", slot_name);
		json_str (o, "key", key);
		json_object_object_add (o, "gated", json_object_new_boolean (gated));
		json_str (o, "policy", policy_name);
		json_object_object_add (o, "released", json_object_new_boolean (d->n == 0));
		for (size_t i = 0; i < d->n; i++) {
			struct json_object *x = json_object_new_object ();
			json_str (x, "problem", d->p[i].what);
			json_str (x, "fix", d->p[i].fix);
			json_object_array_add (jp, x);
		}
		json_object_object_add (o, "problems", jp);
		json_object_object_add (o, "checks", d->checks);
		d->checks = NULL;
		print_json (o);
	} else if (d->n == 0) {
		printf ("RELEASED: a gated operation would be allowed now%s\n",
		        gated ? "" : " (no evidence needed)");
	} else {
		printf ("REFUSED: %zu problem(s):\n", d->n);
		for (size_t i = 0; i < d->n; i++)
			printf ("  %zu. %s\n     fix: %s\n", i + 1, d->p[i].what, d->p[i].fix);
	}
	rc = d->n == 0 ? 0 : EXIT_NO;
out:
	for (size_t i = 0; i < n_got; i++)
		appraisal_clear (&got[i]);
	policy_free (pol);
	anchors_free (&anchors);
	free (anchor_errs);
	if (d)
		json_object_put (d->checks);
	free (d);
	session_close (&s);
	module_close (&m);
	conf_free (&conf);
	return rc;
}
