/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the configuration editor (src/conf-edit.c): every kind of
 * edit, comments and untouched lines kept byte for byte, an edit the
 * parser refuses (or the hook refuses) leaving the file untouched, the
 * lock (concurrent editors in four processes all land; a held lock times
 * out), and the file's mode and owner kept.
 */
#include "config.h"

#include "conf-edit.h"
#include "conf.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/p11w-conf-edit-XXXXXX";
static char path[512];

#define SLOT_KEYS(name) \
	"[slot:" name "]\nbackend = pkcs11\nmodule = /usr/lib/softhsm/libsofthsm2.so\n" \
	"token = pkcs11:token=" name "\npin-file = /tmp/x.pin\n"

static const char *const slot_keys[] = { "backend", "module", "token", "pin-file" };
static const char *const slot_values[] = { "pkcs11", "/usr/lib/softhsm/libsofthsm2.so",
	                                   "pkcs11:token=new", "/tmp/x.pin" };

/* The administrator's file: comments everywhere, odd spacing, an inline
 * comment, a header comment, a trailing comment. */
#define ORIGINAL \
	"# p11-warden configuration of host A\n" \
	"; owner: hsm-team\n" \
	"\n" \
	"[module]\n" \
	"log = stderr   ; for now\n" \
	"state-dir=/var/lib/p11-warden\n" \
	"\n" \
	"# the production HSM\n" \
	"# (second comment line)\n" \
	SLOT_KEYS ("hsm") \
	"# ungated = pkcs11:object=old\n" \
	"\n" \
	"# policies\n" \
	"[policy:pcr]\n" \
	"file = /etc/p11-warden/pcr.json\n" \
	"\n" \
	"[slot:other]\n" \
	"backend = pkcs11\n" \
	"module = /usr/lib/softhsm/libsofthsm2.so\n" \
	"token = pkcs11:token=other\n" \
	"pin-file = /tmp/y.pin\n" \
	"; end of file\n"
static const char original[] = ORIGINAL;

static void
write_file (const char *text, mode_t mode)
{
	FILE *f = fopen (path, "w");
	assert_non_null (f);
	fputs (text, f);
	fclose (f);
	assert_int_equal (chmod (path, mode), 0);
}

static char *
read_back (void)
{
	static char buf[65536];
	FILE *f = fopen (path, "r");
	size_t n;
	assert_non_null (f);
	n = fread (buf, 1, sizeof buf - 1, f);
	fclose (f);
	buf[n] = '\0';
	return buf;
}

static int
setup (void **state)
{
	(void)state;
	write_file (original, 0644);
	return 0;
}

static struct conf_edit *
open_edit (void)
{
	char err[1024];
	struct conf_edit *e = conf_edit_open (path, 1000, err, sizeof err);
	if (!e)
		fail_msg ("open: %s", err);
	return e;
}

static void
commit (struct conf_edit *e)
{
	char err[2048];
	if (!conf_edit_commit (e, NULL, NULL, NULL, err, sizeof err))
		fail_msg ("commit: %s", err);
}

/* Nothing but PATH and its lock in the directory (no temporary left). */
static void
no_leftovers (void)
{
	char cmd[1100];
	snprintf (cmd, sizeof cmd, "test $(ls -A '%s' | grep -v -e '^p11-warden.conf$' "
	          "-e '^p11-warden.conf.lock$' | wc -l) -eq 0", dir);
	assert_int_equal (system (cmd), 0);
}

static void
test_add_section (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024];
	(void)state;
	assert_true (conf_edit_add_section (e, "slot:new", slot_keys,
	                                    slot_values, 4, err, sizeof err));
	commit (e);
	conf_edit_close (e);
	/* The old text, byte for byte, then a blank line and the section. */
	assert_string_equal (read_back (), ORIGINAL
	                     "\n[slot:new]\nbackend = pkcs11\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
	                     "token = pkcs11:token=new\npin-file = /tmp/x.pin\n");
	no_leftovers ();
}

static void
test_add_section_exists (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024];
	(void)state;
	assert_false (conf_edit_add_section (e, "slot:hsm", slot_keys,
	                                     slot_values, 4, err, sizeof err));
	assert_non_null (strstr (err, "exists already"));
	conf_edit_close (e);
	assert_string_equal (read_back (), original);
}

static void
test_add_key (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024], *want;
	const char *at;
	(void)state;
	/* After the slot's last line (the commented-out key), before the blank
	 * line and the next section's comment. */
	assert_true (conf_edit_add (e, "slot:hsm", "ungated", "pkcs11:object=a", err, sizeof err));
	/* At the end of the last section, after its trailing comment. */
	assert_true (conf_edit_add (e, "slot:other", "gated", "no", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	at = strstr (original, "# ungated = pkcs11:object=old\n") + strlen ("# ungated = pkcs11:object=old\n");
	want = malloc (sizeof original + 100);
	assert_non_null (want);
	sprintf (want, "%.*sungated = pkcs11:object=a\n%sgated = no\n", (int)(at - original), original, at);
	assert_string_equal (read_back (), want);
	free (want);
}

static void
test_add_key_before_next_comment (void **state)
{
	struct conf_edit *e;
	char err[1024];
	(void)state;
	write_file ("[policy:a]\nfile = /a.json\n# about b\n[policy:b]\nfile = /b.json\n", 0644);
	e = open_edit ();
	assert_false (conf_edit_add (e, "policy:c", "file", "/c", err, sizeof err));
	assert_non_null (strstr (err, "there is no [policy:c]"));
	assert_true (conf_edit_set (e, "module", "log", "none", err, sizeof err) == false);
	commit (e);
	conf_edit_close (e);
	e = open_edit ();
	assert_true (conf_edit_add_section (e, "module", (const char *[]){ "log" },
	                                    (const char *[]){ "none" }, 1, err, sizeof err));
	assert_true (conf_edit_set (e, "policy:a", "file", "/a2.json", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_string_equal (read_back (), "[policy:a]\nfile = /a2.json\n# about b\n[policy:b]\n"
	                                   "file = /b.json\n\n[module]\nlog = none\n");
}

static void
test_set_in_place (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024], *want, value[256];
	(void)state;
	assert_true (conf_edit_get (e, "module", "log", 0, value, sizeof value));
	assert_string_equal (value, "stderr");
	assert_true (conf_edit_set (e, "module", "log", "none", err, sizeof err));
	assert_true (conf_edit_set (e, "module", "state-dir", "/srv/state", err, sizeof err));
	assert_true (conf_edit_set (e, "slot:hsm", "policy", "pcr", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	want = strdup (original);
	assert_non_null (want);
	{
		/* The inline comment and the spacing stay; a new key goes at the
		 * end of its section. */
		char buf[4096];
		const char *p = strstr (want, "# ungated = pkcs11:object=old\n") +
		                strlen ("# ungated = pkcs11:object=old\n");
		snprintf (buf, sizeof buf, "%.*spolicy = pcr\n%s", (int)(p - want), want, p);
		free (want);
		want = strdup (buf);
	}
	{
		char buf[4096], *p = strstr (want, "log = stderr   ; for now");
		snprintf (buf, sizeof buf, "%.*slog = none   ; for now%s", (int)(p - want), want,
		          p + strlen ("log = stderr   ; for now"));
		free (want);
		want = strdup (buf);
		p = strstr (want, "state-dir=/var/lib/p11-warden");
		snprintf (buf, sizeof buf, "%.*sstate-dir=/srv/state%s", (int)(p - want), want,
		          p + strlen ("state-dir=/var/lib/p11-warden"));
		free (want);
		want = strdup (buf);
	}
	assert_string_equal (read_back (), want);
	free (want);
}

static void
test_repeated_key (void **state)
{
	struct conf_edit *e;
	char err[1024], value[256];
	(void)state;
	write_file (SLOT_KEYS ("a") "ungated = pkcs11:object=x\nungated = pkcs11:object=y\n", 0644);
	e = open_edit ();
	assert_false (conf_edit_set (e, "slot:a", "ungated", "pkcs11:object=z", err, sizeof err));
	assert_non_null (strstr (err, "more than once"));
	assert_true (conf_edit_get (e, "slot:a", "ungated", 1, value, sizeof value));
	assert_string_equal (value, "pkcs11:object=y");
	assert_false (conf_edit_get (e, "slot:a", "ungated", 2, value, sizeof value));
	assert_true (conf_edit_replace (e, "slot:a", "ungated", 1, "pkcs11:object=z", err, sizeof err));
	assert_true (conf_edit_remove (e, "slot:a", "ungated", 0, err, sizeof err));
	assert_false (conf_edit_remove (e, "slot:a", "ungated", 1, err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_string_equal (read_back (), SLOT_KEYS ("a") "ungated = pkcs11:object=z\n");
}

static void
test_remove_section (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024], want[4096];
	const char *from, *to;
	(void)state;
	assert_true (conf_edit_remove_section (e, "slot:hsm", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	/* Its two comment lines go; the blank line before them and the next
	 * section's comment stay. */
	from = strstr (original, "# the production HSM");
	to = strstr (original, "# policies");
	snprintf (want, sizeof want, "%.*s%s", (int)(from - original), original, to);
	assert_string_equal (read_back (), want);
}

static void
test_remove_last_section (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024], want[4096];
	const char *from;
	(void)state;
	assert_true (conf_edit_remove_section (e, "slot:other", err, sizeof err));
	assert_false (conf_edit_remove_section (e, "slot:other", err, sizeof err));
	assert_non_null (strstr (err, "there is no [slot:other]"));
	commit (e);
	conf_edit_close (e);
	/* With its trailing comment, and the blank line that separated it. */
	from = strstr (original, "\n[slot:other]");
	snprintf (want, sizeof want, "%.*s", (int)(from - original), original);
	assert_string_equal (read_back (), want);
}

static void
test_no_final_newline (void **state)
{
	struct conf_edit *e;
	char err[1024];
	(void)state;
	write_file ("[policy:a]\nfile = /a.json", 0644);
	e = open_edit ();
	assert_true (conf_edit_set (e, "policy:a", "file", "/b.json", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_string_equal (read_back (), "[policy:a]\nfile = /b.json");
	e = open_edit ();
	assert_true (conf_edit_add_section (e, "policy:b", (const char *[]){ "file" },
	                                    (const char *[]){ "/c.json" }, 1, err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_string_equal (read_back (), "[policy:a]\nfile = /b.json\n\n[policy:b]\nfile = /c.json\n");
}

/* Values that would not read back as given, and over-long lines. */
static void
test_bad_values (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[1024], big[300];
	(void)state;
	assert_false (conf_edit_set (e, "module", "log", "a\nb", err, sizeof err));
	assert_non_null (strstr (err, "control character"));
	assert_false (conf_edit_set (e, "module", "log", "x ; y", err, sizeof err));
	assert_non_null (strstr (err, "comment"));
	assert_false (conf_edit_set (e, "module", "log", " x", err, sizeof err));
	assert_false (conf_edit_set (e, "module", "log", "", err, sizeof err));
	assert_false (conf_edit_set (e, "module", "log", "\xff", err, sizeof err));
	memset (big, 'a', sizeof big - 1);
	big[0] = '/';
	big[sizeof big - 1] = '\0';
	assert_false (conf_edit_set (e, "module", "state-dir", big, err, sizeof err));
	assert_non_null (strstr (err, "at most 198"));
	assert_false (conf_edit_add (e, "slot:hsm", "ungated", big, err, sizeof err));
	assert_non_null (strstr (err, "at most 198"));
	assert_false (conf_edit_add_section (e, "slot:x]", NULL, NULL, 0, err, sizeof err));
	/* 198 bytes is allowed: "state-dir=" is 10, so 188 of value. */
	big[188] = '\0';
	assert_true (conf_edit_set (e, "module", "state-dir", big, err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_non_null (strstr (read_back (), big));
}

/* An edit the parser refuses: the file and its inode stay. */
static void
test_invalid_refused (void **state)
{
	struct conf_edit *e = open_edit ();
	char err[2048];
	struct stat before, after;
	(void)state;
	assert_int_equal (stat (path, &before), 0);
	/* A slot without its required keys. */
	assert_true (conf_edit_add_section (e, "slot:bad", slot_keys,
	                                    slot_values, 2, err, sizeof err));
	assert_false (conf_edit_commit (e, NULL, NULL, NULL, err, sizeof err));
	assert_non_null (strstr (err, "would make"));
	assert_non_null (strstr (err, "slot 'bad': 'token'"));
	conf_edit_close (e);
	/* A policy a slot refers to, removed. */
	e = open_edit ();
	assert_true (conf_edit_set (e, "slot:hsm", "policy", "pcr", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_int_equal (stat (path, &before), 0);
	{
		char *copy = strdup (read_back ());
		assert_non_null (copy);
		e = open_edit ();
		assert_true (conf_edit_remove_section (e, "policy:pcr", err, sizeof err));
		assert_false (conf_edit_commit (e, NULL, NULL, NULL, err, sizeof err));
		assert_non_null (strstr (err, "there is no [policy:pcr]"));
		conf_edit_close (e);
		assert_string_equal (read_back (), copy);
		free (copy);
	}
	/* A bad value for the parser (not for the editor). */
	e = open_edit ();
	assert_true (conf_edit_set (e, "slot:hsm", "token", "nonsense", err, sizeof err));
	assert_false (conf_edit_commit (e, NULL, NULL, NULL, err, sizeof err));
	assert_non_null (strstr (err, "not a valid PKCS#11 URI"));
	conf_edit_close (e);
	assert_int_equal (stat (path, &after), 0);
	assert_int_equal (before.st_ino, after.st_ino);
	assert_int_equal (before.st_mtime, after.st_mtime);
	no_leftovers ();
}

static bool
refuse (const struct conf *conf, void *user, char *err, size_t errlen)
{
	int *calls = user;
	(*calls)++;
	/* The hook sees the new configuration. */
	assert_int_equal (conf->n_slots, 3);
	snprintf (err, errlen, "the ledger said no");
	return false;
}

static bool
accept (const struct conf *conf, void *user, char *err, size_t errlen)
{
	int *calls = user;
	(void)conf;
	(void)err;
	(void)errlen;
	(*calls)++;
	return true;
}

static void
test_hook (void **state)
{
	struct conf_edit *e = open_edit ();
	struct conf out;
	char err[1024];
	int calls = 0;
	(void)state;
	assert_true (conf_edit_add_section (e, "slot:new", slot_keys,
	                                    slot_values, 4, err, sizeof err));
	assert_false (conf_edit_commit (e, refuse, &calls, NULL, err, sizeof err));
	assert_string_equal (err, "the ledger said no");
	assert_int_equal (calls, 1);
	assert_string_equal (read_back (), original);
	no_leftovers ();
	assert_true (conf_edit_commit (e, accept, &calls, &out, err, sizeof err));
	assert_int_equal (calls, 2);
	assert_int_equal (out.n_slots, 3);
	assert_string_equal (out.slots[2].name, "new");
	conf_free (&out);
	conf_edit_close (e);
}

/* Mode, owner and group of the original stay (as root: another owner). */
static void
test_permissions_kept (void **state)
{
	struct conf_edit *e;
	struct stat st;
	char err[1024];
	uid_t uid = geteuid () == 0 ? 65534 : geteuid ();
	gid_t gid = geteuid () == 0 ? 65534 : getegid ();
	(void)state;
	assert_int_equal (chmod (path, 0640), 0);
	if (geteuid () == 0)
		assert_int_equal (chown (path, uid, gid), 0);
	e = open_edit ();
	assert_true (conf_edit_set (e, "module", "log", "none", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_int_equal (stat (path, &st), 0);
	assert_int_equal (st.st_mode & 07777, 0640);
	assert_int_equal (st.st_uid, uid);
	assert_int_equal (st.st_gid, gid);
	/* A group-writable file is refused, as the module refuses it. */
	assert_int_equal (chmod (path, 0664), 0);
	assert_null (conf_edit_open (path, 1000, err, sizeof err));
	assert_non_null (strstr (err, "writable by its group"));
}

static void
test_new_file (void **state)
{
	struct conf_edit *e;
	struct stat st;
	char err[1024];
	mode_t old = umask (077);
	(void)state;
	unlink (path);
	e = open_edit ();
	assert_false (conf_edit_existed (e));
	assert_true (conf_edit_add_section (e, "slot:new", slot_keys,
	                                    slot_values, 4, err, sizeof err));
	commit (e);
	conf_edit_close (e);
	umask (old);
	assert_int_equal (stat (path, &st), 0);
	assert_int_equal (st.st_mode & 07777, 0644);
	assert_string_equal (read_back (), "[slot:new]\nbackend = pkcs11\nmodule = "
	                                   "/usr/lib/softhsm/libsofthsm2.so\ntoken = pkcs11:token=new\n"
	                                   "pin-file = /tmp/x.pin\n");
}

/* A symbolic link: the file it names is edited, the link stays. */
static void
test_symlink (void **state)
{
	char link[600], err[1024];
	struct conf_edit *e;
	struct stat st;
	(void)state;
	snprintf (link, sizeof link, "%s/link.conf", dir);
	assert_int_equal (symlink (path, link), 0);
	e = conf_edit_open (link, 1000, err, sizeof err);
	assert_non_null (e);
	assert_string_equal (conf_edit_path (e), path);
	assert_true (conf_edit_set (e, "module", "log", "none", err, sizeof err));
	commit (e);
	conf_edit_close (e);
	assert_int_equal (lstat (link, &st), 0);
	assert_true (S_ISLNK (st.st_mode));
	assert_non_null (strstr (read_back (), "log = none   ; for now"));
	unlink (link);
}

/* Another administrator holds the lock: a bounded wait, then a clear
 * refusal. */
static void
test_lock_timeout (void **state)
{
	char lock[600], err[1024];
	int fd;
	(void)state;
	snprintf (lock, sizeof lock, "%s.lock", path);
	fd = open (lock, O_RDONLY | O_CREAT, 0600);
	assert_true (fd >= 0);
	assert_int_equal (flock (fd, LOCK_EX), 0);
	/* flock locks belong to the open file description: a second open in
	 * this process conflicts like another process would. */
	assert_null (conf_edit_open (path, 200, err, sizeof err));
	assert_non_null (strstr (err, "another administrator"));
	close (fd);
	assert_string_equal (read_back (), original);
}

/* Four processes each add a slot at the same time: all four land. */
static void
test_concurrent (void **state)
{
	pid_t pids[4];
	struct conf c;
	char err[1024];
	bool missing;
	(void)state;
	for (int i = 0; i < 4; i++) {
		pids[i] = fork ();
		assert_true (pids[i] >= 0);
		if (pids[i] == 0) {
			char name[32], token[64];
			const char *values[4];
			struct conf_edit *e = conf_edit_open (path, 10000, err, sizeof err);
			if (!e)
				_exit (1);
			snprintf (name, sizeof name, "slot:c%d", i);
			snprintf (token, sizeof token, "pkcs11:token=c%d", i);
			memcpy (values, slot_values, sizeof values);
			values[2] = token;
			/* Hold the lock a while, so that the others wait for it. */
			usleep (50 * 1000);
			if (!conf_edit_add_section (e, name, slot_keys, values, 4, err,
			                            sizeof err) ||
			    !conf_edit_commit (e, NULL, NULL, NULL, err, sizeof err))
				_exit (2);
			conf_edit_close (e);
			_exit (0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int status;
		assert_int_equal (waitpid (pids[i], &status, 0), pids[i]);
		assert_true (WIFEXITED (status));
		assert_int_equal (WEXITSTATUS (status), 0);
	}
	assert_true (conf_load (path, false, &c, &missing, err, sizeof err));
	assert_int_equal (c.n_slots, 6);
	for (int i = 0; i < 4; i++) {
		char name[32];
		bool found = false;
		snprintf (name, sizeof name, "c%d", i);
		for (size_t j = 0; j < c.n_slots; j++)
			found |= !strcmp (c.slots[j].name, name);
		assert_true (found);
	}
	conf_free (&c);
	/* And the administrator's text is still the start of the file. */
	assert_memory_equal (read_back (), original, strlen (original));
	no_leftovers ();
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup (test_add_section, setup),
		cmocka_unit_test_setup (test_add_section_exists, setup),
		cmocka_unit_test_setup (test_add_key, setup),
		cmocka_unit_test_setup (test_add_key_before_next_comment, setup),
		cmocka_unit_test_setup (test_set_in_place, setup),
		cmocka_unit_test_setup (test_repeated_key, setup),
		cmocka_unit_test_setup (test_remove_section, setup),
		cmocka_unit_test_setup (test_remove_last_section, setup),
		cmocka_unit_test_setup (test_no_final_newline, setup),
		cmocka_unit_test_setup (test_bad_values, setup),
		cmocka_unit_test_setup (test_invalid_refused, setup),
		cmocka_unit_test_setup (test_hook, setup),
		cmocka_unit_test_setup (test_permissions_kept, setup),
		cmocka_unit_test_setup (test_new_file, setup),
		cmocka_unit_test_setup (test_symlink, setup),
		cmocka_unit_test_setup (test_lock_timeout, setup),
		cmocka_unit_test_setup (test_concurrent, setup),
	};
	int rc;
	char cmd[600];
	if (!mkdtemp (dir))
		return 1;
	snprintf (path, sizeof path, "%s/p11-warden.conf", dir);
	rc = cmocka_run_group_tests (tests, NULL, NULL);
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system (cmd) != 0)
		fprintf (stderr, "cannot remove %s\n", dir);
	return rc;
}
