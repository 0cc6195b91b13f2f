/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the configuration parser (src/conf.c). */
#include "config.h"

#include "conf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/p11w-conf-XXXXXX";
static char path[512];

static void
write_file (const char *name, const char *text, mode_t mode)
{
	char p[512];
	FILE *f;
	snprintf (p, sizeof p, "%s/%s", dir, name);
	f = fopen (p, "w");
	assert_non_null (f);
	fputs (text, f);
	fclose (f);
	assert_int_equal (chmod (p, mode), 0);
}

/* A valid slot section, with the pin file it needs. */
#define SLOT_OK(name) \
	"[slot:" name "]\nbackend = pkcs11\nmodule = /usr/lib/softhsm/libsofthsm2.so\n" \
	"token = pkcs11:token=ci\npin-file = /tmp/x.pin\n"

/* Load TEXT as the configuration; returns the loader's verdict, the error
 * in ERR. */
static bool
load (const char *text, struct conf *c, char *err, size_t len)
{
	bool missing;
	write_file ("p11-warden.conf", text, 0644);
	return conf_load (path, false, c, &missing, err, len);
}

static void
expect_error (const char *text, int line, const char *needle)
{
	struct conf c;
	char err[1024], want[600];
	bool ok = load (text, &c, err, sizeof err);
	conf_free (&c);
	if (ok)
		fail_msg ("accepted: %s", text);
	if (line > 0) {
		snprintf (want, sizeof want, "%s:%d: ", path, line);
		if (strstr (err, want) == NULL)
			fail_msg ("error '%s' does not name %s", err, want);
	}
	if (strstr (err, needle) == NULL)
		fail_msg ("error '%s' does not say '%s'", err, needle);
}

static int
setup (void **state)
{
	assert_non_null (mkdtemp (dir));
	snprintf (path, sizeof path, "%s/p11-warden.conf", dir);
	return 0;
}

static int
teardown (void **state)
{
	char cmd[600];
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system (cmd) == 0 ? 0 : -1;
}

static void
test_full (void **state)
{
	struct conf c;
	char err[1024];
	bool ok = load ("# comment\n[module]\nlog = stderr\nlog-level = debug\n"
	                "state-dir = /var/tmp/x\npin-max-failures = 3\npin-kdf-iterations = 5000\n"
	                "gate-cache-ms = 0\n"
	                SLOT_OK ("a") "gated = no\n"
	                SLOT_OK ("b-2.x") "ungated = pkcs11:object=k1;type=private\n"
	                "ungated = pkcs11:token=w;id=%01%02\n",
	                &c, err, sizeof err);
	if (!ok)
		fail_msg ("%s", err);
	assert_int_equal (c.log_sink, LOG_SINK_STDERR);
	assert_int_equal (c.log_level, LOG_LEVEL_DEBUG);
	assert_string_equal (c.state_dir, "/var/tmp/x");
	assert_int_equal (c.pin_max_failures, 3);
	assert_int_equal (c.pin_kdf_iterations, 5000);
	assert_int_equal (c.gate_cache_ms, 0);
	assert_int_equal (c.n_slots, 2);
	assert_string_equal (c.slots[0].name, "a");
	assert_false (c.slots[0].gated);
	assert_int_equal (c.slots[0].backend, CONF_BACKEND_PKCS11);
	assert_string_equal (c.slots[0].module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal (c.slots[0].token.text, "pkcs11:token=ci");
	assert_string_equal (c.slots[1].name, "b-2.x");
	assert_true (c.slots[1].gated);
	assert_int_equal (c.slots[1].n_ungated, 2);
	assert_string_equal (c.slots[1].ungated[1].text, "pkcs11:token=w;id=%01%02");
	conf_free (&c);
}

static void
test_defaults (void **state)
{
	struct conf c;
	char err[1024];
	assert_true (load ("", &c, err, sizeof err));
	assert_int_equal (c.log_sink, LOG_SINK_SYSLOG);
	assert_int_equal (c.log_level, LOG_LEVEL_INFO);
	assert_int_equal (c.pin_max_failures, CONF_DEFAULT_PIN_MAX_FAILURES);
	assert_int_equal (c.pin_kdf_iterations, CONF_DEFAULT_PIN_KDF_ITERATIONS);
	assert_int_equal (c.gate_cache_ms, CONF_DEFAULT_GATE_CACHE_MS);
	assert_non_null (c.state_dir);
	assert_int_equal (c.n_slots, 0);
	conf_free (&c);
}

static void
test_missing (void **state)
{
	struct conf c;
	char err[1024], p[600];
	bool missing;
	snprintf (p, sizeof p, "%s/nope.conf", dir);
	/* Named by P11_WARDEN_CONF: an error naming the file. */
	assert_false (conf_load (p, false, &c, &missing, err, sizeof err));
	assert_true (missing);
	assert_non_null (strstr (err, p));
	conf_free (&c);
	/* The default path: no slots, no error. */
	assert_true (conf_load (p, true, &c, &missing, err, sizeof err));
	assert_true (missing);
	assert_int_equal (c.n_slots, 0);
	conf_free (&c);
}

static void
test_rejections (void **state)
{
	expect_error ("[module]\nlogg = stderr\n", 2, "unknown key 'logg'");
	expect_error ("[modules]\nlog = stderr\n", 2, "unknown section [modules]");
	expect_error ("[module]\nlog = file\n", 2, "'log' must be");
	expect_error ("[module]\nlog-level = loud\n", 2, "'log-level' must be");
	expect_error ("[module]\nstate-dir = relative\n", 2, "absolute path");
	expect_error ("[module]\npin-max-failures = -1\n", 2, "pin-max-failures");
	expect_error ("[module]\npin-max-failures = 3x\n", 2, "pin-max-failures");
	expect_error ("[module]\npin-kdf-iterations = 10\n", 2, "pin-kdf-iterations");
	expect_error ("[module]\ngate-cache-ms = 60001\n", 2, "'gate-cache-ms' must be");
	expect_error ("[module]\nthis line has no equals sign\n", 2, "syntax error");
	expect_error ("log = stderr\n", 1, "outside any section");
	expect_error (SLOT_OK ("a") "gated = maybe\n", 6, "'gated' must be yes or no");
	expect_error (SLOT_OK ("a") "backend = pkcs11\n", 6, "'backend' is set twice");
	expect_error (SLOT_OK ("a") "module = /x.so\n", 6, "'module' is set twice");
	expect_error (SLOT_OK ("a") "colour = blue\n", 6, "unknown key 'colour' in [slot:a]");
	expect_error ("[slot:a]\nbackend = tpm3\n", 2, "unknown backend 'tpm3'");
	expect_error ("[slot:a]\ntoken = https://example.com\n", 2, "not a valid PKCS#11 URI");
	expect_error ("[slot:a]\ntoken = pkcs11:token=x;colour=blue\n", 2, "does not know");
	expect_error (SLOT_OK ("a") "ungated = pkcs11:object=%zz\n", 6, "not a valid PKCS#11 URI");
	expect_error ("[slot:a]\ntoken = pkcs11:token=x?pin-value=1234\n", 2, "holds a PIN");
	expect_error (SLOT_OK ("a") "ungated = pkcs11:object=k?module-path=/x.so\n", 6,
	              "names a module");
	expect_error ("[slot:a b]\nbackend = pkcs11\n", 2, "invalid slot name");
	expect_error ("[slot:]\nbackend = pkcs11\n", 2, "invalid slot name");
	expect_error ("[slot:a]\nbackend = pkcs11\n[slot:b]\nbackend = pkcs11\n[slot:a]\n"
	              "backend = pkcs11\n", 5, "[slot:a] is defined twice (first at line 1)");
	/* A repeated header right after the first must not merge into it
	 * (libinih would): that could turn a slot's gate off. */
	expect_error (SLOT_OK ("a") "[slot:a]\ngated = no\n", 6, "defined twice");
	expect_error ("[module]\nlog = stderr\n[module]\nlog = none\n", 3, "defined twice");
	expect_error ("[module]\nlog = stderr\nlog = none\n", 3, "'log' is set twice");
	expect_error ("[module]\nstate-dir = /a\nstate-dir = /b\n", 3, "set twice");
	expect_error (SLOT_OK ("a") "gated = no\ngated = yes\n", 7, "'gated' is set twice");
	expect_error (SLOT_OK ("a") "ungated = pkcs11:object=x\n  ; indented comment\n", 7,
	              "indented line");
	expect_error (SLOT_OK ("a") "ungated = pkcs11:object=x\n  pkcs11:object=y\n", 7,
	              "indented line");
	expect_error ("[module]\n[slot:a]\n", 2, "[slot:a] is empty");
	expect_error ("[module]\nlog = stderr\n[slot:a\n", 3, "malformed section header");
	expect_error ("\xef\xbb\xbf[module]\nlog = stderr\n", 1, "byte-order mark");
	/* Whole-file checks name the slot. */
	expect_error ("[module]\n\n[slot:a]\nbackend = pkcs11\n", 3, "slot 'a': 'module' is required");
	expect_error ("[slot:a]\nbackend = pkcs11\nmodule = /x.so\n", 0, "'token'");
	expect_error ("[slot:a]\nbackend = pkcs11\nmodule = /x.so\ntoken = pkcs11:token=x\n", 0,
	              "'pin-file'");
	expect_error ("[slot:a]\nmodule = /x.so\n", 0, "'backend' is required");
}

static void
test_long_line (void **state)
{
	char text[600];
	int n = snprintf (text, sizeof text, "[module]\nstate-dir = /");
	memset (text + n, 'a', 300);
	text[n + 300] = '\n';
	text[n + 301] = '\0';
	expect_error (text, 2, "line longer than");
}

static void
test_nul_byte (void **state)
{
	struct conf c;
	char err[1024];
	bool missing;
	FILE *f = fopen (path, "w");
	assert_non_null (f);
	fwrite ("[module]\nlog = stderr\0\n", 1, 23, f);
	fclose (f);
	assert_int_equal (chmod (path, 0644), 0);
	assert_false (conf_load (path, false, &c, &missing, err, sizeof err));
	assert_non_null (strstr (err, "NUL"));
	conf_free (&c);
}

static void
test_world_writable (void **state)
{
	struct conf c;
	char err[1024];
	bool missing;
	write_file ("p11-warden.conf", "[module]\nlog = stderr\n", 0666);
	assert_false (conf_load (path, false, &c, &missing, err, sizeof err));
	assert_non_null (strstr (err, "writable by others"));
	conf_free (&c);
}

static void
test_group_writable (void **state)
{
	struct conf c;
	char err[1024];
	bool missing;
	write_file ("p11-warden.conf", "[module]\nlog = stderr\n", 0664);
	assert_false (conf_load (path, false, &c, &missing, err, sizeof err));
	assert_non_null (strstr (err, "writable by its group"));
	conf_free (&c);
}

static void
test_too_big (void **state)
{
	struct conf c;
	char err[1024];
	bool missing;
	FILE *f = fopen (path, "w");
	assert_non_null (f);
	for (int i = 0; i < CONF_MAX_SIZE / 10 + 10; i++)
		fputs ("# padding\n", f);
	fclose (f);
	assert_int_equal (chmod (path, 0644), 0);
	assert_false (conf_load (path, false, &c, &missing, err, sizeof err));
	assert_non_null (strstr (err, "larger than"));
	conf_free (&c);
}

static void
test_not_regular (void **state)
{
	struct conf c;
	char err[1024];
	bool missing;
	assert_false (conf_load (dir, false, &c, &missing, err, sizeof err));
	assert_non_null (strstr (err, "not a regular file"));
	conf_free (&c);
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_full),
		cmocka_unit_test (test_defaults),
		cmocka_unit_test (test_missing),
		cmocka_unit_test (test_rejections),
		cmocka_unit_test (test_long_line),
		cmocka_unit_test (test_nul_byte),
		cmocka_unit_test (test_world_writable),
		cmocka_unit_test (test_group_writable),
		cmocka_unit_test (test_too_big),
		cmocka_unit_test (test_not_regular),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
