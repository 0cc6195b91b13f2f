/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the external-command collector (src/collect-command.c).
 * The "programs" are small shell scripts written into a private temporary
 * directory; the collector runs them through their #! line, as it would a
 * real collector binary.
 */
#include "config.h"

#include "collector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256];
static const unsigned char nonce[32] = {
	0x00, 0x01, 0x02, 0x03, 0xfc, 0xfd, 0xfe, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,
	0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
};
static const char nonce_hex[] = "00010203fcfdfeff1020304050607080deadbeefcafebabe0f1e2d3c4b5a6978";

/* ---------------------------------------------------------------- helpers */

/* Write DIR/NAME with #!/bin/sh and BODY, mode MODE; returns its path
 * (static storage, one per name slot). */
static const char *
script (const char *name, mode_t mode, const char *body)
{
	static char paths[32][512];
	static unsigned next;
	char *path = paths[next++ % 32];
	FILE *f;

	snprintf (path, 512, "%s/%s", dir, name);
	f = fopen (path, "w");
	assert_non_null (f);
	fprintf (f, "#!/bin/sh\n%s\n", body);
	assert_int_equal (fclose (f), 0);
	assert_int_equal (chmod (path, mode), 0);
	return path;
}

static struct collector *
make (const char *path, unsigned int timeout_ms, size_t max_output)
{
	const char *argv[] = { path, NULL };
	char err[256];
	struct collector *c = collector_command_new ("test", argv, timeout_ms, max_output, err,
	                                             sizeof err);
	if (!c)
		fail_msg ("collector_command_new(%s): %s", path, err);
	return c;
}

/* Run @c once; the result code, with @out filled and @err the message. */
static int
run (struct collector *c, struct collected *out, char *err, size_t errlen)
{
	return collector_run (c, nonce, sizeof nonce, out, err, errlen);
}

static double
now_s (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Not one child of ours is left, running or zombie. */
static void
assert_no_children (void)
{
	errno = 0;
	assert_int_equal (waitpid (-1, NULL, WNOHANG), -1);
	assert_int_equal (errno, ECHILD);
}

/* The state letter of process @pid from /proc, or 0 when it is gone. */
static char
proc_state (pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen (path, "r");
	if (!f)
		return 0;
	n = fread (buf, 1, sizeof buf - 1, f);
	fclose (f);
	buf[n] = '\0';
	p = strrchr (buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int
setup (void **state)
{
	snprintf (dir, sizeof dir, "%s/p11w-collect.XXXXXX", getenv ("TMPDIR") ? getenv ("TMPDIR") :
	                                                      "/tmp");
	if (!mkdtemp (dir))
		return -1;
	chmod (dir, 0755);
	return 0;
}

static int
teardown (void **state)
{
	char cmd[512];
	snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system (cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

/* Format line, then binary evidence that includes the nonce the child read
 * from stdin; the child sees only PATH in its environment, and "/" as its
 * working directory. */
static void
test_good (void **state)
{
	const char *p = script ("good", 0755,
	                        "read n\n"
	                        "printf 'eat\\n%s|%s|%s|' \"$n\" \"$PATH\" \"$(pwd)\"\n"
	                        "[ -z \"${HOME:-}\" ] && [ -z \"${LD_PRELOAD:-}\" ] && printf 'clean'\n"
	                        "printf '\\000\\001\\377'");
	struct collector *c = make (p, 5000, 4096);
	struct collected out;
	char err[256], expect[256];
	size_t n;

	assert_string_equal (collector_name (c), "test");
	assert_string_equal (collector_kind (c), "command");
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	assert_string_equal (err, "");
	assert_string_equal (out.format, "eat");
	n = (size_t)snprintf (expect, sizeof expect, "%s|/usr/bin:/bin|/|clean", nonce_hex);
	memcpy (expect + n, "\0\1\377", 3);
	n += 3;
	assert_int_equal (out.len, n);
	assert_memory_equal (out.data, expect, n);
	collected_clear (&out);
	assert_null (out.data);
	assert_int_equal (out.len, 0);
	collected_clear (&out);
	collector_free (c);
	assert_no_children ();
}

/* Evidence that is exactly the cap passes; one byte more does not. */
static void
test_cap_exact (void **state)
{
	struct collector *c = make (script ("cap", 0755, "printf 'ear\\n0123456789'"), 5000, 10);
	struct collector *d = make (script ("cap1", 0755, "printf 'ear\\n0123456789A'"), 5000, 10);
	struct collected out;
	char err[256];

	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	assert_int_equal (out.len, 10);
	collected_clear (&out);
	assert_int_equal (run (d, &out, err, sizeof err), COLLECTOR_ERR_TOO_LARGE);
	assert_null (out.data);
	collector_free (c);
	collector_free (d);
	assert_no_children ();
}

/* A program that hangs is killed at the deadline, with what it started:
 * the call returns promptly and leaves no zombie behind. */
static void
test_timeout (void **state)
{
	char pidfile[300], err[256];
	char body[600];
	struct collected out;
	struct collector *c;
	double t0, dt;
	FILE *f;
	int gpid = 0;

	snprintf (pidfile, sizeof pidfile, "%s/sleep.pid", dir);
	snprintf (body, sizeof body, "sleep 10 &\necho $! > '%s'\nwait", pidfile);
	c = make (script ("hang", 0755, body), 200, 4096);
	t0 = now_s ();
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_TIMEOUT);
	dt = now_s () - t0;
	print_message ("# timeout run took %.3f s: %s\n", dt, err);
	assert_true (dt < 1.0);
	assert_true (dt >= 0.19);
	assert_null (out.data);
	assert_no_children ();
	/* The grandchild (sleep) got SIGKILL too: gone, or a zombie waiting
	 * for init, within a moment. */
	f = fopen (pidfile, "r");
	assert_non_null (f);
	assert_int_equal (fscanf (f, "%d", &gpid), 1);
	fclose (f);
	for (int i = 0; i < 100; i++) {
		char s = proc_state (gpid);
		if (s == 0 || s == 'Z' || s == 'X')
			break;
		usleep (10000);
	}
	{
		char s = proc_state (gpid);
		assert_true (s == 0 || s == 'Z' || s == 'X');
	}
	collector_free (c);
}

/* A program that closes its output but does not exit also times out. */
static void
test_timeout_after_eof (void **state)
{
	struct collector *c = make (script ("linger", 0755,
	                                    "printf 'eat\\nx'\nexec >&- 2>&-\nsleep 10"), 200, 4096);
	struct collected out;
	char err[256];
	double t0 = now_s ();

	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_TIMEOUT);
	assert_true (now_s () - t0 < 1.0);
	assert_no_children ();
	collector_free (c);
}

static void
test_exit_status (void **state)
{
	struct collector *c = make (script ("exit3", 0755,
	                                    "printf 'eat\\nevidence'\necho 'no device' >&2\nexit 3"),
	                            5000, 4096);
	struct collector *k = make (script ("killed", 0755, "printf 'eat\\nx'\nkill -TERM $$"),
	                            5000, 4096);
	struct collected out;
	char err[256];

	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_EXIT);
	print_message ("# %s\n", err);
	assert_non_null (strstr (err, "status 3"));
	assert_non_null (strstr (err, "no device"));
	assert_null (out.data);
	assert_int_equal (run (k, &out, err, sizeof err), COLLECTOR_ERR_EXIT);
	assert_non_null (strstr (err, "signal 15"));
	collector_free (c);
	collector_free (k);
	assert_no_children ();
}

static void
expect_malformed (const char *name, const char *body)
{
	struct collector *c = make (script (name, 0755, body), 5000, 4096);
	struct collected out;
	char err[256];

	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_MALFORMED);
	print_message ("# %s: %s\n", name, err);
	assert_true (err[0] != '\0');
	assert_null (out.data);
	assert_int_equal (out.len, 0);
	collector_free (c);
}

static void
test_malformed (void **state)
{
	expect_malformed ("empty", "printf 'eat\\n'");
	expect_malformed ("nothing", "true");
	expect_malformed ("nonewline", "printf 'eat'");
	expect_malformed ("upper", "printf 'EAT\\nx'");
	expect_malformed ("space", "printf 'e t\\nx'");
	expect_malformed ("emptyname", "printf '\\nx'");
	expect_malformed ("longname", "printf 'abcdefghijklmnopqrstuvwxyz012345\\nx'");
	/* 31 characters of binary garbage and no newline is refused early. */
	expect_malformed ("binary", "head -c 100 /dev/zero");
	assert_no_children ();
}

/* yes | head -c 2M against the 1 MiB cap: refused, and not by waiting for
 * all of it. */
static void
test_too_large (void **state)
{
	struct collector *c = make (script ("big", 0755, "yes | head -c 2097152"), 5000,
	                            COLLECTOR_OUTPUT_MAX);
	struct collected out;
	char err[256];

	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_TOO_LARGE);
	print_message ("# %s\n", err);
	assert_null (out.data);
	collector_free (c);
	assert_no_children ();
}

static void
expect_refused (const char *const *argv, unsigned int timeout_ms, size_t max_output,
                const char *why)
{
	char err[256] = "untouched";
	struct collector *c = collector_command_new ("test", argv, timeout_ms, max_output, err,
	                                             sizeof err);
	assert_null (c);
	print_message ("# %s: %s\n", why, err);
	assert_true (err[0] != '\0' && strcmp (err, "untouched") != 0);
}

static void
test_bad_programs (void **state)
{
	const char *noexec = script ("noexec", 0644, "printf 'eat\\nx'");
	const char *world = script ("world", 0757, "printf 'eat\\nx'");
	const char *group = script ("group", 0775, "printf 'eat\\nx'");
	const char *a_noexec[] = { noexec, NULL };
	const char *a_world[] = { world, NULL };
	const char *a_group[] = { group, NULL };
	const char *a_rel[] = { "bin/sh", NULL };
	const char *a_rel2[] = { "sh", NULL };
	const char *a_missing[] = { "/nonexistent/collector", NULL };
	const char *a_dir[] = { "/usr/bin", NULL };
	const char *a_empty[] = { NULL };
	const char *a_ok[] = { "/bin/true", NULL };
	char err[64];

	expect_refused (a_noexec, 1000, 100, "not executable");
	expect_refused (a_world, 1000, 100, "world-writable");
	expect_refused (a_group, 1000, 100, "group-writable");
	expect_refused (a_rel, 1000, 100, "relative path");
	expect_refused (a_rel2, 1000, 100, "bare name");
	expect_refused (a_missing, 1000, 100, "missing");
	expect_refused (a_dir, 1000, 100, "directory");
	expect_refused (a_empty, 1000, 100, "no program");
	expect_refused (NULL, 1000, 100, "no argv");
	expect_refused (a_ok, 0, 100, "timeout 0");
	expect_refused (a_ok, 60001, 100, "timeout over 60 s");
	expect_refused (a_ok, 1000, 0, "cap 0");
	expect_refused (a_ok, 1000, COLLECTOR_OUTPUT_MAX + 1, "cap over 1 MiB");
	assert_null (collector_command_new ("", a_ok, 1000, 100, err, sizeof err));
	assert_null (collector_command_new ("a b", a_ok, 1000, 100, err, sizeof err));
	assert_null (collector_command_new (NULL, a_ok, 1000, 100, err, sizeof err));
	/* ... and errlen 0 is no crash. */
	assert_null (collector_command_new ("x", a_rel, 1000, 100, NULL, 0));
}

/* A program that became world-writable after configuration is refused at
 * run time, and never started. */
static void
test_recheck_at_run (void **state)
{
	const char *p = script ("later", 0755, "printf 'eat\\nx'");
	struct collector *c = make (p, 1000, 100);
	struct collected out;
	char err[256];

	assert_int_equal (chmod (p, 0777), 0);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_PROGRAM);
	assert_int_equal (chmod (p, 0755), 0);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	collected_clear (&out);
	assert_int_equal (unlink (p), 0);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_PROGRAM);
	collector_free (c);
}

/* A child that closes stdin before reading: no SIGPIPE for us (SIGPIPE is
 * at its default here, which would kill the test), and the run succeeds
 * on what it printed.  Repeated, since whether the nonce is sent before
 * or after the close is a race. */
static void
test_stdin_closed (void **state)
{
	struct collector *c = make (script ("noinput", 0755, "exec 0<&-\nprintf 'eat\\nx'"), 5000,
	                            100);
	struct collected out;
	char err[256];

	signal (SIGPIPE, SIG_DFL);
	for (int i = 0; i < 20; i++) {
		assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
		assert_int_equal (out.len, 1);
		collected_clear (&out);
	}
	collector_free (c);
	assert_no_children ();
}

/* An fd the host opened without O_CLOEXEC does not reach the child, and
 * neither do the collector's own: the child's descriptors are 0 (a
 * socket), 1 and 2 (pipes), plus what its shell opens for itself (the
 * script, the directory it globs), none of them the test's marker file. */
static void
test_fds_not_inherited (void **state)
{
	struct collector *c = make (script ("fds", 0755,
	                                    "printf 'fds\\n'\n"
	                                    "for f in /proc/$$/fd/*; do\n"
	                                    "\tprintf '%s=%s\\n' \"${f##*/}\" \"$(readlink \"$f\")\"\n"
	                                    "done"),
	                            5000, 8192);
	struct collected out;
	char err[256], list[8192], marker[300], *line, *save = NULL;
	int fd, high, seen[3] = { 0, 0, 0 };
	FILE *f;

	snprintf (marker, sizeof marker, "%s/marker-fd", dir);
	f = fopen (marker, "w");
	assert_non_null (f);
	fclose (f);
	fd = open (marker, O_RDONLY);   /* no O_CLOEXEC, on purpose */
	high = fcntl (fd, F_DUPFD, 100); /* nor here */
	assert_true (fd >= 0 && high >= 100);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	assert_true (out.len < sizeof list);
	memcpy (list, out.data, out.len);
	list[out.len] = '\0';
	print_message ("# child fds (test opened %d and %d):\n%s\n", fd, high, list);
	for (line = strtok_r (list, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
		int n = atoi (line);
		assert_null (strstr (line, "marker-fd"));
		assert_int_not_equal (n, high);
		if (n == 0)
			seen[0] = strstr (line, "socket:[") != NULL;
		else if (n == 1 || n == 2)
			seen[n] = strstr (line, "pipe:[") != NULL;
	}
	assert_true (seen[0] && seen[1] && seen[2]);
	collected_clear (&out);
	close (fd);
	close (high);
	collector_free (c);
}

/* With the host's stdin, stdout and stderr closed, the pipes land on fds
 * 0..2 in the parent; the child must still get them right. */
static void
test_host_stdio_closed (void **state)
{
	struct collector *c = make (script ("stdio", 0755, "read n\nprintf 'eat\\n%s' \"$n\""),
	                            5000, 4096);
	struct collected out;
	char err[256];
	int save[3];
	int rv;

	for (int i = 0; i < 3; i++)
		save[i] = fcntl (i, F_DUPFD_CLOEXEC, 20);
	close (0);
	close (1);
	close (2);
	rv = run (c, &out, err, sizeof err);
	for (int i = 0; i < 3; i++) {
		dup2 (save[i], i);
		close (save[i]);
	}
	assert_int_equal (rv, COLLECTOR_OK);
	assert_int_equal (out.len, 64);
	assert_memory_equal (out.data, nonce_hex, 64);
	collected_clear (&out);
	collector_free (c);
}

/* A host that ignores SIGCHLD: children are reaped by the kernel, waitpid
 * says ECHILD, and the collector goes by the output alone, still strictly. */
static void
test_sigchld_ignored (void **state)
{
	struct collector *good = make (script ("ig-good", 0755, "printf 'eat\\nx'"), 5000, 100);
	struct collector *bad = make (script ("ig-bad", 0755, "printf 'eat'"), 5000, 100);
	struct collector *slow = make (script ("ig-slow", 0755, "sleep 10"), 200, 100);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct collected out;
	char err[256];

	sigemptyset (&ign.sa_mask);
	assert_int_equal (sigaction (SIGCHLD, &ign, &old), 0);
	assert_int_equal (run (good, &out, err, sizeof err), COLLECTOR_OK);
	collected_clear (&out);
	assert_int_equal (run (bad, &out, err, sizeof err), COLLECTOR_ERR_MALFORMED);
	assert_int_equal (run (slow, &out, err, sizeof err), COLLECTOR_ERR_TIMEOUT);
	assert_int_equal (sigaction (SIGCHLD, &old, NULL), 0);
	collector_free (good);
	collector_free (bad);
	collector_free (slow);
}

/* The host blocks signals in the calling thread and ignores SIGTERM: the
 * child still starts with an empty mask and default dispositions. */
static void
test_child_signals (void **state)
{
	struct collector *c = make (script ("sig", 0755,
	                                    "printf 'eat\\n'\n"
	                                    "grep -E '^(SigBlk|SigIgn):' /proc/$$/status | tr '\\n' ' '"),
	                            5000, 4096);
	struct collected out;
	sigset_t block, old;
	struct sigaction ign = { .sa_handler = SIG_IGN }, oldterm;
	char err[256], text[512];

	sigemptyset (&block);
	sigaddset (&block, SIGTERM);
	sigaddset (&block, SIGUSR1);
	sigemptyset (&ign.sa_mask);
	assert_int_equal (pthread_sigmask (SIG_BLOCK, &block, &old), 0);
	assert_int_equal (sigaction (SIGTERM, &ign, &oldterm), 0);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	assert_int_equal (sigaction (SIGTERM, &oldterm, NULL), 0);
	assert_int_equal (pthread_sigmask (SIG_SETMASK, &old, NULL), 0);
	assert_true (out.len < sizeof text);
	memcpy (text, out.data, out.len);
	text[out.len] = '\0';
	print_message ("# child: %s\n", text);
	assert_non_null (strstr (text, "SigBlk:\t0000000000000000"));
	/* SIGTERM is bit 14 (value 0x4000) of SigIgn: not ignored. */
	{
		char *p = strstr (text, "SigIgn:\t");
		unsigned long long ignmask;
		assert_non_null (p);
		ignmask = strtoull (p + 8, NULL, 16);
		assert_int_equal (ignmask & (1ull << (SIGTERM - 1)), 0);
	}
	collected_clear (&out);
	collector_free (c);
}

static void
test_run_args (void **state)
{
	struct collector *c = make (script ("args", 0755, "printf 'eat\\nx'"), 1000, 100);
	struct collected out = { .len = 99 };
	unsigned char big[COLLECTOR_NONCE_MAX + 1] = { 0 };
	char err[128];

	assert_int_equal (collector_run (c, NULL, 32, &out, err, sizeof err), COLLECTOR_ERR_ARGS);
	assert_int_equal (out.len, 0);
	assert_true (err[0] != '\0');
	assert_int_equal (collector_run (c, nonce, 0, &out, err, sizeof err), COLLECTOR_ERR_ARGS);
	assert_int_equal (collector_run (c, big, sizeof big, &out, err, sizeof err),
	                  COLLECTOR_ERR_ARGS);
	assert_int_equal (collector_run (NULL, nonce, 32, &out, err, sizeof err),
	                  COLLECTOR_ERR_ARGS);
	assert_int_equal (collector_run (c, nonce, 32, NULL, err, sizeof err), COLLECTOR_ERR_ARGS);
	/* A 64-byte nonce is the most, and it goes through whole. */
	assert_int_equal (collector_run (c, big, COLLECTOR_NONCE_MAX, &out, NULL, 0), COLLECTOR_OK);
	collected_clear (&out);
	assert_null (collector_name (NULL));
	collector_free (NULL);
	collected_clear (NULL);
	collector_free (c);
}

/* Arguments reach the program as given, one word each, no shell. */
static void
test_argv (void **state)
{
	const char *p = script ("argv", 0755, "printf 'eat\\n'\nprintf '%s|' \"$@\"");
	const char *argv[] = { p, "a b", "$HOME", "*", "", NULL };
	char err[256];
	struct collector *c = collector_command_new ("argv", argv, 1000, 100, err, sizeof err);
	struct collected out;

	assert_non_null (c);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_OK);
	assert_int_equal (out.len, strlen ("a b|$HOME|*||"));
	assert_memory_equal (out.data, "a b|$HOME|*||", out.len);
	collected_clear (&out);
	collector_free (c);
}

/* Several threads run one collector at once. */
struct thread_arg {
	struct collector *c;
	int failures;
};

static void *
thread_main (void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 10; i++) {
		struct collected out;
		char err[256];
		if (collector_run (a->c, nonce, sizeof nonce, &out, err, sizeof err) != COLLECTOR_OK ||
		    out.len != 64 || memcmp (out.data, nonce_hex, 64) != 0)
			a->failures++;
		collected_clear (&out);
	}
	return NULL;
}

static void
test_threads (void **state)
{
	struct collector *c = make (script ("thr", 0755, "read n\nprintf 'eat\\n%s' \"$n\""), 10000,
	                            4096);
	pthread_t th[4];
	struct thread_arg args[4];

	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .c = c };
		assert_int_equal (pthread_create (&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal (pthread_join (th[i], NULL), 0);
		assert_int_equal (args[i].failures, 0);
	}
	collector_free (c);
	assert_no_children ();
}

/* A bad interpreter line: posix_spawn's exec fails and says so. */
static void
test_exec_fails (void **state)
{
	char path[300];
	FILE *f;
	struct collector *c;
	struct collected out;
	char err[256];

	snprintf (path, sizeof path, "%s/badinterp", dir);
	f = fopen (path, "w");
	assert_non_null (f);
	fputs ("#!/nonexistent/interpreter\n", f);
	fclose (f);
	chmod (path, 0755);
	c = make (path, 1000, 100);
	assert_int_equal (run (c, &out, err, sizeof err), COLLECTOR_ERR_SPAWN);
	print_message ("# %s\n", err);
	collector_free (c);
	assert_no_children ();
}

int
main (void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test (test_good),
		cmocka_unit_test (test_cap_exact),
		cmocka_unit_test (test_timeout),
		cmocka_unit_test (test_timeout_after_eof),
		cmocka_unit_test (test_exit_status),
		cmocka_unit_test (test_malformed),
		cmocka_unit_test (test_too_large),
		cmocka_unit_test (test_bad_programs),
		cmocka_unit_test (test_recheck_at_run),
		cmocka_unit_test (test_stdin_closed),
		cmocka_unit_test (test_fds_not_inherited),
		cmocka_unit_test (test_host_stdio_closed),
		cmocka_unit_test (test_sigchld_ignored),
		cmocka_unit_test (test_child_signals),
		cmocka_unit_test (test_run_args),
		cmocka_unit_test (test_argv),
		cmocka_unit_test (test_threads),
		cmocka_unit_test (test_exec_fails),
	};
	return cmocka_run_group_tests (tests, setup, teardown);
}
