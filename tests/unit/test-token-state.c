/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of PIN hashing and the token state file (src/token-state.c). */
#include "config.h"

#include "token-state.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define PIN(s) (CK_UTF8CHAR_PTR)(s), (CK_ULONG)strlen (s)

static char dir[] = "/tmp/p11w-state-XXXXXX";
static char sdir[600];

static int
setup (void **state)
{
	assert_non_null (mkdtemp (dir));
	snprintf (sdir, sizeof sdir, "%s/state", dir);
	return 0;
}

static int
teardown (void **state)
{
	char cmd[700];
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system (cmd) == 0 ? 0 : -1;
}

static void
test_hash_verify (void **state)
{
	char h1[PIN_HASH_MAX], h2[PIN_HASH_MAX];
	assert_int_equal (pin_hash (PIN ("1234"), 1000, h1), CKR_OK);
	assert_int_equal (pin_hash (PIN ("1234"), 1000, h2), CKR_OK);
	assert_true (strncmp (h1, "pbkdf2-sha256$1000$", 19) == 0);
	/* Salted: the same PIN hashes differently. */
	assert_string_not_equal (h1, h2);
	assert_true (pin_verify (PIN ("1234"), h1));
	assert_true (pin_verify (PIN ("1234"), h2));
	assert_false (pin_verify (PIN ("1235"), h1));
	assert_false (pin_verify (PIN ("123"), h1));
	assert_false (pin_verify (PIN ("12345"), h1));
	assert_false (pin_verify (PIN (""), h1));
}

static void
test_verify_malformed (void **state)
{
	char h[PIN_HASH_MAX], bad[PIN_HASH_MAX + 8];
	assert_int_equal (pin_hash (PIN ("1234"), 1000, h), CKR_OK);
	assert_false (pin_verify (PIN ("1234"), ""));
	assert_false (pin_verify (PIN ("1234"), "plain$1234"));
	assert_false (pin_verify (PIN ("1234"), "pbkdf2-sha256$"));
	assert_false (pin_verify (PIN ("1234"), "pbkdf2-sha256$0$00$00"));
	assert_false (pin_verify (PIN ("1234"), "pbkdf2-sha256$1000$zz$00"));
	/* Truncated hash, wrong salt length, non-hex digits. */
	snprintf (bad, sizeof bad, "%.*s", (int)strlen (h) - 2, h);
	assert_false (pin_verify (PIN ("1234"), bad));
	snprintf (bad, sizeof bad, "%s", h);
	bad[20] = 'x';
	assert_false (pin_verify (PIN ("1234"), bad));
	snprintf (bad, sizeof bad, "%s", h);
	bad[strlen (bad) - 1] = bad[strlen (bad) - 1] == '0' ? '1' : '0';
	assert_false (pin_verify (PIN ("1234"), bad));
	/* A PIN longer than the maximum is never accepted. */
	{
		char longpin[PIN_MAX_LEN + 2];
		memset (longpin, '1', sizeof longpin - 1);
		longpin[sizeof longpin - 1] = '\0';
		assert_int_not_equal (pin_hash (PIN (longpin), 1000, h), CKR_OK);
	}
}

static void
test_store_load (void **state)
{
	struct token_state_file f;
	struct token_state st, back;

	/* No directory, no file: an uninitialised token, nothing created. */
	assert_int_equal (token_state_read (sdir, "s1", &st), CKR_OK);
	assert_false (st.initialized);
	assert_int_equal (access (sdir, F_OK), -1);

	assert_int_equal (token_state_open (sdir, "s1", true, &f, &st), CKR_OK);
	assert_false (st.initialized);
	memcpy (st.label, "label with = and ; and #        ", 32);
	assert_int_equal (pin_hash (PIN ("87654321"), 1000, st.so_pin), CKR_OK);
	assert_int_equal (pin_hash (PIN ("1234"), 1000, st.user_pin), CKR_OK);
	st.user_failures = 2;
	assert_int_equal (token_state_store (&f, &st), CKR_OK);
	token_state_close (&f);

	assert_int_equal (token_state_read (sdir, "s1", &back), CKR_OK);
	assert_true (back.initialized);
	assert_memory_equal (back.label, st.label, 32);
	assert_string_equal (back.so_pin, st.so_pin);
	assert_string_equal (back.user_pin, st.user_pin);
	assert_int_equal (back.user_failures, 2);
	assert_int_equal (back.so_failures, 0);

	/* The directory and the file are private. */
	{
		struct stat sb;
		char p[700];
		assert_int_equal (stat (sdir, &sb), 0);
		assert_int_equal (sb.st_mode & 077, 0);
		snprintf (p, sizeof p, "%s/s1.token", sdir);
		assert_int_equal (stat (p, &sb), 0);
		assert_int_equal (sb.st_mode & 077, 0);
	}
}

static void
write_state (const char *text)
{
	char p[700];
	FILE *fp;
	snprintf (p, sizeof p, "%s/s2.token", sdir);
	mkdir (sdir, 0700);
	fp = fopen (p, "w");
	assert_non_null (fp);
	fputs (text, fp);
	fclose (fp);
}

static void
test_damaged (void **state)
{
	struct token_state st;
	/* A damaged file must not read as an uninitialised (claimable) token. */
	write_state ("[token]\nversion = 1\nlabel = zz\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[token]\nversion = 2\nso-pin = pbkdf2-sha256$1000$00$00\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[token]\nversion = 1\nuser-failures = lots\nso-pin = x\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[token]\nversion = 1\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[other]\nso-pin = x\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[token]\nversion = 1\nso-pin = x\nextra = 1\n");
	assert_int_not_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	write_state ("[token]\nversion = 1\nso-pin = pbkdf2-sha256$1000$00$00\n");
	assert_int_equal (token_state_read (sdir, "s2", &st), CKR_OK);
	assert_true (st.initialized);
}

/* The state lock excludes another process until it is released. */
static void
test_lock (void **state)
{
	struct token_state_file f;
	struct token_state st;
	int fds[2];
	pid_t pid;
	char c;

	assert_int_equal (token_state_open (sdir, "s3", true, &f, &st), CKR_OK);
	assert_int_equal (pipe (fds), 0);
	pid = fork ();
	assert_true (pid >= 0);
	if (pid == 0) {
		struct token_state_file g;
		struct token_state s2;
		close (fds[0]);
		/* Blocks until the parent closes. */
		if (token_state_open (sdir, "s3", true, &g, &s2) != CKR_OK)
			_exit (2);
		if (write (fds[1], "x", 1) != 1)
			_exit (3);
		token_state_close (&g);
		_exit (0);
	}
	close (fds[1]);
	{
		fd_set set;
		struct timeval tv = { 0, 300000 };
		FD_ZERO (&set);
		FD_SET (fds[0], &set);
		/* The child must still be waiting. */
		assert_int_equal (select (fds[0] + 1, &set, NULL, NULL, &tv), 0);
	}
	token_state_close (&f);
	assert_int_equal (read (fds[0], &c, 1), 1);
	{
		int status;
		assert_int_equal (waitpid (pid, &status, 0), pid);
		assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
	}
	close (fds[0]);
}

/* A process that keeps the lock does not freeze others: they give up with
 * CKR_DEVICE_ERROR after the configured wait. */
static void
test_lock_bounded (void **state)
{
	struct token_state_file f;
	struct token_state st;
	int fds[2];
	pid_t pid;
	char c;

	assert_int_equal (pipe (fds), 0);
	pid = fork ();
	assert_true (pid >= 0);
	if (pid == 0) {
		struct token_state_file g;
		struct token_state s2;
		close (fds[0]);
		if (token_state_open (sdir, "s4", true, &g, &s2) != CKR_OK)
			_exit (2);
		if (write (fds[1], "x", 1) != 1)
			_exit (3);
		sleep (3); /* hold it */
		token_state_close (&g);
		_exit (0);
	}
	close (fds[1]);
	assert_int_equal (read (fds[0], &c, 1), 1);
	token_state_set_lock_wait (200);
	assert_int_equal (token_state_open (sdir, "s4", true, &f, &st), CKR_DEVICE_ERROR);
	token_state_set_lock_wait (10000);
	kill (pid, SIGKILL);
	waitpid (pid, NULL, 0);
	close (fds[0]);
	/* Released with its holder: the lock is available again. */
	assert_int_equal (token_state_open (sdir, "s4", true, &f, &st), CKR_OK);
	token_state_close (&f);
}

/* State others can write is not trusted: a PIN reset would be one unlink
 * away. */
static void
test_not_private (void **state)
{
	struct token_state_file f;
	struct token_state st;
	char d[700], p[760];

	snprintf (d, sizeof d, "%s/shared", dir);
	assert_int_equal (mkdir (d, 0700), 0);
	assert_int_equal (token_state_open (d, "s5", true, &f, &st), CKR_OK);
	assert_int_equal (pin_hash ((CK_UTF8CHAR_PTR) "1234", 4, 1000, st.so_pin), CKR_OK);
	assert_int_equal (token_state_store (&f, &st), CKR_OK);
	token_state_close (&f);
	assert_int_equal (chmod (d, 0777), 0);
	assert_int_equal (token_state_read (d, "s5", &st), CKR_DEVICE_ERROR);
	assert_int_equal (chmod (d, 0700), 0);
	assert_int_equal (token_state_read (d, "s5", &st), CKR_OK);
	snprintf (p, sizeof p, "%s/s5.token", d);
	assert_int_equal (chmod (p, 0620), 0);
	assert_int_equal (token_state_read (d, "s5", &st), CKR_DEVICE_ERROR);
	assert_int_equal (chmod (p, 0600), 0);
	/* A symbolic link in place of the directory is refused too. */
	snprintf (p, sizeof p, "%s/link", dir);
	assert_int_equal (symlink (d, p), 0);
	assert_int_equal (token_state_read (p, "s5", &st), CKR_DEVICE_ERROR);
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_hash_verify),
		cmocka_unit_test (test_verify_malformed),
		cmocka_unit_test (test_store_load),
		cmocka_unit_test (test_damaged),
		cmocka_unit_test (test_lock),
		cmocka_unit_test (test_lock_bounded),
		cmocka_unit_test (test_not_private),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
