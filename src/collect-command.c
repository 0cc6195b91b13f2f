/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The external-command collector (collector.h): run a program with the
 * nonce on stdin and take "FORMAT\n" + evidence from its stdout.
 *
 * It runs inside a host process we know nothing about: other threads may
 * fork, exec, hold descriptors without FD_CLOEXEC, ignore or handle
 * SIGCHLD and SIGPIPE.  Hence:
 * - posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no atfork handlers,
 *   no copy of a large address space) rather than fork;
 * - every descriptor we make is O_CLOEXEC from birth, so a concurrent
 *   fork+exec elsewhere in the host cannot carry it off, and the child
 *   closes everything above 2 before exec, so it cannot inherit the host's
 *   descriptors that lack FD_CLOEXEC;
 * - stdin is one end of a socketpair and the nonce goes out with
 *   send(MSG_NOSIGNAL): a child that closes stdin early makes send fail
 *   with EPIPE instead of raising SIGPIPE, with no change to the thread's
 *   signal mask (blocking SIGPIPE around a pipe write works too, but needs
 *   sigtimedwait to drop the pending signal and cannot tell ours from one
 *   the host raised);
 * - the child gets an empty signal mask and default dispositions (the host
 *   may ignore SIGPIPE or block SIGTERM in this thread), and its own
 *   process group, so a timeout kills what it started too;
 * - we reap our child with waitpid(pid) and nothing else: no waitpid(-1),
 *   no change to SIGCHLD.  If the host ignores SIGCHLD or reaps children
 *   itself, waitpid says ECHILD: the child is gone and its status unknown;
 *   the output must then still pass every check (see wait_child).
 */
#include "config.h"

#include "collector-impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARG_MAX_LEN 4096         /* one argument, path included */
#define FORMAT_MAX 31            /* format name, without "\n" */
#define STDERR_KEEP 1024         /* stderr bytes kept for the message */
#define REAP_POLL_NS 1000000L    /* 1 ms between waitpid(WNOHANG) tries */

struct command {
	char **argv;                 /* NULL-terminated copy */
	unsigned int timeout_ms;
	size_t max_output;
};

static void
command_free (void *impl)
{
	struct command *cmd = impl;
	if (!cmd)
		return;
	if (cmd->argv) {
		for (size_t i = 0; cmd->argv[i]; i++)
			free (cmd->argv[i]);
		free (cmd->argv);
	}
	free (cmd);
}

/* The program must be what an administrator put there: an absolute path
 * (no PATH search, no dependence on the host's working directory) to a
 * regular executable file that no one but root or us can rewrite. */
static int
check_program (const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (path[0] != '/') {
		collector_set_err (err, errlen, "program '%s' is not an absolute path", path);
		return COLLECTOR_ERR_PROGRAM;
	}
	if (stat (path, &st) != 0) {
		collector_set_err (err, errlen, "program %s: %s", path, strerror (errno));
		return COLLECTOR_ERR_PROGRAM;
	}
	if (!S_ISREG (st.st_mode)) {
		collector_set_err (err, errlen, "program %s is not a regular file", path);
		return COLLECTOR_ERR_PROGRAM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		collector_set_err (err, errlen, "program %s is group- or world-writable (mode %04o)",
		                   path, (unsigned)(st.st_mode & 07777));
		return COLLECTOR_ERR_PROGRAM;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid ()) {
		collector_set_err (err, errlen, "program %s belongs to uid %u, not root or uid %u",
		                   path, (unsigned)st.st_uid, (unsigned)geteuid ());
		return COLLECTOR_ERR_PROGRAM;
	}
	if (faccessat (AT_FDCWD, path, X_OK, AT_EACCESS) != 0) {
		collector_set_err (err, errlen, "program %s is not executable: %s", path,
		                   strerror (errno));
		return COLLECTOR_ERR_PROGRAM;
	}
	return COLLECTOR_OK;
}

static int
command_run (void *impl, const unsigned char *nonce, size_t nonce_len, struct collected *out,
             char *err, size_t errlen);

static const struct collector_ops command_ops = {
	.kind = "command",
	.run = command_run,
	.free = command_free,
};

struct collector *
collector_command_new (const char *name, const char *const *argv, unsigned int timeout_ms,
                       size_t max_output, char *err, size_t errlen)
{
	struct command *cmd;
	size_t n = 0;

	if (collector_check_name (name, err, errlen) != COLLECTOR_OK)
		return NULL;
	if (!argv || !argv[0]) {
		collector_set_err (err, errlen, "collector %s: no program", name);
		return NULL;
	}
	while (argv[n]) {
		if (n + 1 >= COLLECTOR_ARGV_MAX) {
			collector_set_err (err, errlen, "collector %s: more than %d arguments", name,
			                   COLLECTOR_ARGV_MAX - 1);
			return NULL;
		}
		if (strnlen (argv[n], ARG_MAX_LEN) >= ARG_MAX_LEN) {
			collector_set_err (err, errlen, "collector %s: argument %zu longer than %d bytes",
			                   name, n, ARG_MAX_LEN - 1);
			return NULL;
		}
		n++;
	}
	if (timeout_ms < 1 || timeout_ms > COLLECTOR_TIMEOUT_MAX_MS) {
		collector_set_err (err, errlen, "collector %s: timeout %u ms not in 1..%u", name,
		                   timeout_ms, COLLECTOR_TIMEOUT_MAX_MS);
		return NULL;
	}
	if (max_output < 1 || max_output > COLLECTOR_OUTPUT_MAX) {
		collector_set_err (err, errlen, "collector %s: output cap %zu not in 1..%zu", name,
		                   max_output, COLLECTOR_OUTPUT_MAX);
		return NULL;
	}
	if (check_program (argv[0], err, errlen) != COLLECTOR_OK)
		return NULL;

	cmd = calloc (1, sizeof *cmd);
	if (!cmd || !(cmd->argv = calloc (n + 1, sizeof *cmd->argv))) {
		free (cmd);
		collector_set_err (err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		cmd->argv[i] = strdup (argv[i]);
		if (!cmd->argv[i]) {
			command_free (cmd);
			collector_set_err (err, errlen, "out of memory");
			return NULL;
		}
	}
	cmd->timeout_ms = timeout_ms;
	cmd->max_output = max_output;
	return collector_wrap (name, &command_ops, cmd, err, errlen);
}

/* ---------------------------------------------------------------- running */

static int64_t
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_fd (int *fd)
{
	if (*fd >= 0) {
		close (*fd);
		*fd = -1;
	}
}

/* The child's ends must not sit on 0, 1 or 2 (possible when the host has
 * closed its standard descriptors), or one dup2 onto 0..2 in the child
 * would clobber the source of another. */
static int
move_above_stdio (int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl (*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -1;
	close (*fd);
	*fd = nfd;
	return 0;
}

static int
set_nonblock (int fd)
{
	int fl = fcntl (fd, F_GETFL);
	return fl < 0 ? -1 : fcntl (fd, F_SETFL, fl | O_NONBLOCK);
}

/* Kill the child's process group and reap the child.  The group is only
 * signalled while the child is known unreaped: until then its pid (and so
 * its group id) cannot belong to anyone else.  A host thread reaping it in
 * the instant between our WNOHANG check and kill() is the one race left. */
static void
kill_and_reap (pid_t pid)
{
	int st;
	pid_t r;

	do
		r = waitpid (pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != 0)
		return; /* reaped just now, or not ours to reap any more (ECHILD) */
	kill (-pid, SIGKILL);
	kill (pid, SIGKILL); /* in case setpgid failed in the child */
	do
		r = waitpid (pid, &st, 0);
	while (r < 0 && errno == EINTR);
}

/* Wait for the child to exit, until @deadline (CLOCK_MONOTONIC ms).
 * Returns 1 with *status set, 0 when the host reaped it first (status
 * unknown), -1 on timeout (the child is then killed and reaped). */
static int
wait_child (pid_t pid, int64_t deadline, int *status)
{
	const struct timespec pause = { 0, REAP_POLL_NS };

	for (;;) {
		pid_t r = waitpid (pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno == ECHILD)
			return 0;
		if (r < 0 && errno != EINTR)
			return 0; /* EINVAL cannot happen; treat like ECHILD */
		if (now_ms () >= deadline) {
			kill_and_reap (pid);
			return -1;
		}
		nanosleep (&pause, NULL);
	}
}

/* Printable text of the child's stderr for a message: controls become '?'. */
static void
sanitize_text (char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n' || ch == '\t')
			s[i] = ' ';
		else if (ch < 0x20 || ch >= 0x7f)
			s[i] = '?';
	}
	s[len] = '\0';
}

/* What the child wrote: stdout (capped) and the head of stderr. */
struct capture {
	unsigned char *buf;
	size_t len, cap;
	size_t limit;                /* most stdout bytes allowed so far */
	ssize_t nl;                  /* offset of the format line's "\n", or -1 */
	char errtext[STDERR_KEEP + 1];
	size_t errlen;
};

/* Read what is there on stdout.  Returns 1 at end of file, 0 for more
 * later, or a negative collector_err. */
static int
read_stdout (int fd, struct capture *c, size_t max_output, char *err, size_t errlen)
{
	for (;;) {
		ssize_t r;
		/* One byte over the limit tells "too large" from "exactly full". */
		size_t want = c->limit + 1;

		if (c->len == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 4096;
			unsigned char *nb;
			if (ncap > want)
				ncap = want;
			if (ncap <= c->cap) {
				/* Unreachable: the limit check below fires first. */
				collector_set_err (err, errlen, "evidence over %zu bytes", max_output);
				return COLLECTOR_ERR_TOO_LARGE;
			}
			nb = realloc (c->buf, ncap);
			if (!nb) {
				collector_set_err (err, errlen, "out of memory");
				return COLLECTOR_ERR_NO_MEMORY;
			}
			c->buf = nb;
			c->cap = ncap;
		}
		r = read (fd, c->buf + c->len, c->cap - c->len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			collector_set_err (err, errlen, "reading the program's output: %s",
			                   strerror (errno));
			return COLLECTOR_ERR_IO;
		}
		if (r == 0)
			return 1;
		if (c->nl < 0) {
			/* Look for the end of the format line in the new bytes. */
			for (size_t i = c->len; i < c->len + (size_t)r; i++) {
				if (c->buf[i] == '\n') {
					c->nl = (ssize_t)i;
					c->limit = i + 1 + max_output;
					break;
				}
			}
		}
		c->len += (size_t)r;
		if (c->nl < 0 && c->len > FORMAT_MAX) {
			collector_set_err (err, errlen, "the program's output does not start with "
			                   "a format name of at most %d characters and a newline",
			                   FORMAT_MAX);
			return COLLECTOR_ERR_MALFORMED;
		}
		if (c->len > c->limit) {
			collector_set_err (err, errlen, "the program wrote more than %zu bytes of "
			                   "evidence", max_output);
			return COLLECTOR_ERR_TOO_LARGE;
		}
	}
}

/* Keep the first STDERR_KEEP bytes of stderr, drop the rest (it must still
 * be drained, or a chatty child blocks on a full pipe).  1 at end of file,
 * 0 for more later, -1 on error (stderr only informs: the caller stops
 * listening). */
static int
read_stderr (int fd, struct capture *c)
{
	char scratch[4096];

	for (;;) {
		ssize_t r;
		if (c->errlen < STDERR_KEEP)
			r = read (fd, c->errtext + c->errlen, STDERR_KEEP - c->errlen);
		else
			r = read (fd, scratch, sizeof scratch);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (r == 0)
			return 1;
		if (c->errlen < STDERR_KEEP)
			c->errlen += (size_t)r;
	}
}

/* The nonce as the child reads it: lower-case hex and "\n".  The send
 * cannot block: a fresh socket's buffer holds far more than 129 bytes. */
static int
send_nonce (int fd, const unsigned char *nonce, size_t nonce_len, char *err, size_t errlen)
{
	char line[2 * COLLECTOR_NONCE_MAX + 2];
	size_t n = 2 * nonce_len + 1;
	ssize_t r;

	collector_hex (line, nonce, nonce_len);
	line[n - 1] = '\n';
	do
		r = send (fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EPIPE || errno == ECONNRESET))
		return COLLECTOR_OK; /* it closed stdin unread: its evidence will lack the nonce */
	if (r < 0 || (size_t)r != n) {
		collector_set_err (err, errlen, "sending the nonce: %s",
		                   r < 0 ? strerror (errno) : "short write");
		return COLLECTOR_ERR_IO;
	}
	return COLLECTOR_OK;
}

/* Close everything above 2 in the child, whatever the host left without
 * FD_CLOEXEC.  glibc 2.34 has a file action for it (close_range in the
 * child).  Before that: one close action per descriptor open now; one the
 * host opens in another thread between this listing and the spawn slips
 * through, and glibc ignores EBADF from a close action, so one closed
 * meanwhile does no harm. */
static int
add_closefrom (posix_spawn_file_actions_t *fa)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
	return posix_spawn_file_actions_addclosefrom_np (fa, 3);
#else
	DIR *d = opendir ("/proc/self/fd");
	struct dirent *de;
	int e = 0;

	if (!d)
		return errno;
	while (e == 0 && (de = readdir (d))) {
		char *end;
		long fd = strtol (de->d_name, &end, 10);
		if (*end || end == de->d_name || fd < 3 || fd == dirfd (d))
			continue;
		e = posix_spawn_file_actions_addclose (fa, (int)fd);
	}
	closedir (d);
	return e;
#endif
}

static int
spawn_child (char *const *argv, int in_fd, int out_fd, int err_fd, pid_t *pid, char *err,
             size_t errlen)
{
	static char *const envp[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int e, rv = COLLECTOR_ERR_SPAWN;

	if ((e = posix_spawn_file_actions_init (&fa)) != 0) {
		collector_set_err (err, errlen, "posix_spawn_file_actions_init: %s", strerror (e));
		return COLLECTOR_ERR_SPAWN;
	}
	if ((e = posix_spawnattr_init (&attr)) != 0) {
		posix_spawn_file_actions_destroy (&fa);
		collector_set_err (err, errlen, "posix_spawnattr_init: %s", strerror (e));
		return COLLECTOR_ERR_SPAWN;
	}
	sigemptyset (&none);
	sigfillset (&all);
	if ((e = posix_spawn_file_actions_adddup2 (&fa, in_fd, 0)) != 0 ||
	    (e = posix_spawn_file_actions_adddup2 (&fa, out_fd, 1)) != 0 ||
	    (e = posix_spawn_file_actions_adddup2 (&fa, err_fd, 2)) != 0 ||
	    (e = posix_spawn_file_actions_addchdir_np (&fa, "/")) != 0 ||
	    (e = add_closefrom (&fa)) != 0 ||
	    (e = posix_spawnattr_setsigmask (&attr, &none)) != 0 ||
	    (e = posix_spawnattr_setsigdefault (&attr, &all)) != 0 ||
	    (e = posix_spawnattr_setpgroup (&attr, 0)) != 0 ||
	    (e = posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                              POSIX_SPAWN_SETPGROUP)) != 0) {
		collector_set_err (err, errlen, "posix_spawn setup: %s", strerror (e));
		goto out;
	}
	e = posix_spawn (pid, argv[0], &fa, &attr, argv, envp);
	if (e != 0) {
		collector_set_err (err, errlen, "cannot run %s: %s", argv[0], strerror (e));
		goto out;
	}
	rv = COLLECTOR_OK;
out:
	posix_spawnattr_destroy (&attr);
	posix_spawn_file_actions_destroy (&fa);
	return rv;
}

/* Split the captured output into format and evidence. */
static int
parse_output (struct capture *c, struct collected *out, char *err, size_t errlen)
{
	size_t flen, elen;

	if (c->nl < 0) {
		collector_set_err (err, errlen, "the program's output has no format line "
		                   "(%zu bytes, no newline)", c->len);
		return COLLECTOR_ERR_MALFORMED;
	}
	flen = (size_t)c->nl;
	if (flen == 0 || flen > FORMAT_MAX) {
		collector_set_err (err, errlen, "format name of %zu characters (1..%d allowed)", flen,
		                   FORMAT_MAX);
		return COLLECTOR_ERR_MALFORMED;
	}
	for (size_t i = 0; i < flen; i++) {
		unsigned char ch = c->buf[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
			collector_set_err (err, errlen, "format name has a character outside "
			                   "[a-z0-9-] at offset %zu", i);
			return COLLECTOR_ERR_MALFORMED;
		}
	}
	elen = c->len - flen - 1;
	if (elen == 0) {
		collector_set_err (err, errlen, "the program printed a format name but no evidence");
		return COLLECTOR_ERR_MALFORMED;
	}
	memcpy (out->format, c->buf, flen);
	out->format[flen] = '\0';
	/* The evidence moves to the front of the buffer, which the caller
	 * then owns. */
	memmove (c->buf, c->buf + flen + 1, elen);
	out->data = c->buf;
	out->len = elen;
	c->buf = NULL;
	c->len = c->cap = 0;
	return COLLECTOR_OK;
}

static int
command_run (void *impl, const unsigned char *nonce, size_t nonce_len, struct collected *out,
             char *err, size_t errlen)
{
	struct command *cmd = impl;
	struct capture cap = { .nl = -1 };
	int sv[2] = { -1, -1 }, op[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int rv, status = 0, known, out_eof = 0, err_eof = 0;
	int64_t deadline;
	pid_t pid = -1;

	rv = check_program (cmd->argv[0], err, errlen);
	if (rv != COLLECTOR_OK)
		return rv;
	cap.limit = FORMAT_MAX + 1 + cmd->max_output;

	if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
	    pipe2 (op, O_CLOEXEC) != 0 || pipe2 (ep, O_CLOEXEC) != 0 ||
	    move_above_stdio (&sv[1]) != 0 || move_above_stdio (&op[1]) != 0 ||
	    move_above_stdio (&ep[1]) != 0 || set_nonblock (op[0]) != 0 ||
	    set_nonblock (ep[0]) != 0) {
		collector_set_err (err, errlen, "cannot make the program's pipes: %s",
		                   strerror (errno));
		rv = COLLECTOR_ERR_SPAWN;
		goto out;
	}
	deadline = now_ms () + cmd->timeout_ms;
	rv = spawn_child (cmd->argv, sv[1], op[1], ep[1], &pid, err, errlen);
	close_fd (&sv[1]);
	close_fd (&op[1]);
	close_fd (&ep[1]);
	if (rv != COLLECTOR_OK) {
		pid = -1;
		goto out;
	}
	rv = send_nonce (sv[0], nonce, nonce_len, err, errlen);
	close_fd (&sv[0]); /* end of file for the child */
	if (rv != COLLECTOR_OK)
		goto out;

	while (!out_eof || !err_eof) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		int64_t left = deadline - now_ms ();
		int pr;

		if (left <= 0) {
			collector_set_err (err, errlen, "no complete answer from %s within %u ms",
			                   cmd->argv[0], cmd->timeout_ms);
			rv = COLLECTOR_ERR_TIMEOUT;
			goto out;
		}
		if (!out_eof)
			pfd[n++] = (struct pollfd){ .fd = op[0], .events = POLLIN };
		if (!err_eof)
			pfd[n++] = (struct pollfd){ .fd = ep[0], .events = POLLIN };
		pr = poll (pfd, n, (int)left);
		if (pr < 0 && errno != EINTR) {
			collector_set_err (err, errlen, "poll: %s", strerror (errno));
			rv = COLLECTOR_ERR_IO;
			goto out;
		}
		if (pr <= 0)
			continue;
		for (nfds_t i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == op[0]) {
				int r = read_stdout (op[0], &cap, cmd->max_output, err, errlen);
				if (r < 0) {
					rv = r;
					goto out;
				}
				out_eof = r;
			} else {
				int r = read_stderr (ep[0], &cap);
				err_eof = r != 0; /* at end, or broken: stop listening */
			}
		}
	}

	known = wait_child (pid, deadline, &status);
	if (known < 0) {
		pid = -1; /* killed and reaped */
		collector_set_err (err, errlen, "%s closed its output but did not exit within %u ms",
		                   cmd->argv[0], cmd->timeout_ms);
		rv = COLLECTOR_ERR_TIMEOUT;
		goto out;
	}
	pid = -1;
	sanitize_text (cap.errtext, cap.errlen);
	if (known && !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
		if (WIFEXITED (status))
			collector_set_err (err, errlen, "%s exited with status %d%s%s", cmd->argv[0],
			                   WEXITSTATUS (status), cap.errlen ? ": " : "", cap.errtext);
		else
			collector_set_err (err, errlen, "%s died of signal %d%s%s", cmd->argv[0],
			                   WIFSIGNALED (status) ? WTERMSIG (status) : 0,
			                   cap.errlen ? ": " : "", cap.errtext);
		rv = COLLECTOR_ERR_EXIT;
		goto out;
	}
	/* known == 0: someone else reaped it.  Its output was complete (end of
	 * file on both pipes), and everything below still has to pass. */
	rv = parse_output (&cap, out, err, errlen);
out:
	if (pid > 0)
		kill_and_reap (pid);
	close_fd (&sv[0]);
	close_fd (&sv[1]);
	close_fd (&op[0]);
	close_fd (&op[1]);
	close_fd (&ep[0]);
	close_fd (&ep[1]);
	free (cap.buf);
	if (rv == COLLECTOR_OK)
		collector_set_err (err, errlen, "%s", "");
	return rv;
}
