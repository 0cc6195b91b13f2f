/* SPDX-License-Identifier: Apache-2.0 */
/* PIN files, for the tool's commands that log in or administer a token. */
#include "config.h"

#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN_MAX 256

/*
 * The user PIN, from the first line of @path: a regular file owned by the
 * caller that nobody else can read or write (a PIN on the command line
 * would be in ps and the shell's history).  The PIN is never printed.
 */
int
tool_read_pin_file (const char *path, char *pin, size_t max, size_t *len)
{
	unsigned char buf[PIN_MAX + 2];
	struct stat st;
	size_t have = 0, n;
	int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);

	if (fd < 0) {
		fprintf (stderr, "p11-warden: PIN file %s: cannot open: %s\n", path, strerror (errno));
		return EXIT_ENV;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		fprintf (stderr, "p11-warden: PIN file %s: not a regular file\n", path);
		close (fd);
		return EXIT_ENV;
	}
	if (st.st_uid != geteuid () || (st.st_mode & 077)) {
		fprintf (stderr, "p11-warden: PIN file %s: must be yours and readable by you only "
		         "(chown, chmod 0600)\n", path);
		close (fd);
		return EXIT_ENV;
	}
	for (;;) {
		ssize_t r = read (fd, buf + have, sizeof buf - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		if (have == sizeof buf)
			break;
	}
	close (fd);
	for (n = 0; n < have && buf[n] != '\n'; n++)
		;
	/* One line: the PIN, then at most a newline.  Anything else is a
	 * file that is not what the administrator thinks it is. */
	if (n == 0 || n > PIN_MAX - 1 || n >= max || (n < have && n + 1 != have)) {
		fprintf (stderr, "p11-warden: PIN file %s: malformed (one line holding the PIN, 1 to %d "
		         "bytes)\n", path, PIN_MAX - 1);
		OPENSSL_cleanse (buf, sizeof buf);
		return EXIT_ENV;
	}
	for (size_t i = 0; i < n; i++) {
		if (buf[i] < 0x20 || buf[i] == 0x7f) {
			fprintf (stderr, "p11-warden: PIN file %s: malformed (a control character in the "
			         "PIN)\n", path);
			OPENSSL_cleanse (buf, sizeof buf);
			return EXIT_ENV;
		}
	}
	memcpy (pin, buf, n);
	*len = n;
	OPENSSL_cleanse (buf, sizeof buf);
	return 0;
}
