/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "util.h"
#include "token-state.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAX_SIZE 8192
/* How long a login waits for another process's hold on the state lock. */
static unsigned int lock_wait_ms = 10000;

void
token_state_set_lock_wait (unsigned int ms)
{
	lock_wait_ms = ms;
}
#define SALT_LEN 16
#define HASH_LEN 32

static bool private_owner (const char *path, const struct stat *sb);

static void
hex_encode (const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* Decode exactly @len bytes from @in, which must hold exactly 2*len digits. */
static bool
hex_decode (const char *in, size_t in_len, unsigned char *out, size_t len)
{
	size_t n = 0;
	return in_len == 2 * len && util_hex_decode (in, in_len, out, len, &n) && n == len;
}

static bool
derive (const CK_UTF8CHAR *pin, CK_ULONG len, const unsigned char *salt, unsigned int iterations,
        unsigned char out[HASH_LEN])
{
	if (len > PIN_MAX_LEN)
		return false;
	return PKCS5_PBKDF2_HMAC ((const char *)pin, (int)len, salt, SALT_LEN, (int)iterations,
	                          EVP_sha256 (), HASH_LEN, out) == 1;
}

CK_RV
pin_hash (const CK_UTF8CHAR *pin, CK_ULONG len, unsigned int iterations, char out[PIN_HASH_MAX])
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
	CK_RV rv = CKR_FUNCTION_FAILED;

	out[0] = '\0';
	if (RAND_bytes (salt, sizeof salt) != 1 || !derive (pin, len, salt, iterations, hash))
		goto out;
	hex_encode (salt, sizeof salt, salt_hex);
	hex_encode (hash, sizeof hash, hash_hex);
	snprintf (out, PIN_HASH_MAX, "pbkdf2-sha256$%u$%s$%s", iterations, salt_hex, hash_hex);
	rv = CKR_OK;
out:
	OPENSSL_cleanse (hash, sizeof hash);
	OPENSSL_cleanse (hash_hex, sizeof hash_hex);
	return rv;
}

bool
pin_verify (const CK_UTF8CHAR *pin, CK_ULONG len, const char *encoded)
{
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	const char *p, *salt_s, *hash_s;
	unsigned long iterations;
	char *end = NULL;
	bool ok = false;

	if (strncmp (encoded, "pbkdf2-sha256$", 14) != 0)
		return false;
	p = encoded + 14;
	iterations = strtoul (p, &end, 10);
	if (end == p || *end != '$' || iterations < 1 || iterations > 100000000UL)
		return false;
	salt_s = end + 1;
	hash_s = strchr (salt_s, '$');
	if (!hash_s || !hex_decode (salt_s, (size_t)(hash_s - salt_s), salt, sizeof salt) ||
	    !hex_decode (hash_s + 1, strlen (hash_s + 1), want, sizeof want))
		return false;
	if (derive (pin, len, salt, (unsigned int)iterations, got))
		ok = CRYPTO_memcmp (got, want, HASH_LEN) == 0;
	OPENSSL_cleanse (got, sizeof got);
	OPENSSL_cleanse (want, sizeof want);
	OPENSSL_cleanse (salt, sizeof salt);
	return ok;
}

static int
state_handler (void *user, const char *section, const char *name, const char *value)
{
	struct token_state *st = user;
	char *end = NULL;

	if (strcmp (section, "token") != 0)
		return 0;
	if (!strcmp (name, "label")) {
		if (!hex_decode (value, strlen (value), st->label, sizeof st->label))
			return 0;
	} else if (!strcmp (name, "so-pin") || !strcmp (name, "user-pin")) {
		char *dst = name[0] == 's' ? st->so_pin : st->user_pin;
		if (strlen (value) >= PIN_HASH_MAX)
			return 0;
		memcpy (dst, value, strlen (value) + 1);
	} else if (!strcmp (name, "so-failures") || !strcmp (name, "user-failures")) {
		unsigned long n = strtoul (value, &end, 10);
		if (end == value || *end != '\0' || n > 1000000)
			return 0;
		if (name[0] == 's')
			st->so_failures = (unsigned int)n;
		else
			st->user_failures = (unsigned int)n;
	} else if (!strcmp (name, "version")) {
		if (strcmp (value, "1") != 0)
			return 0;
	} else {
		return 0;
	}
	return 1;
}

bool
token_state_parse (const char *text, struct token_state *st)
{
	memset (st, 0, sizeof *st);
	memset (st->label, ' ', sizeof st->label);
	if (ini_parse_string (text, state_handler, st) != 0 || !st->so_pin[0]) {
		memset (st, 0, sizeof *st);
		return false;
	}
	st->initialized = true;
	return true;
}

static char *
join (const char *dir, const char *slot, const char *suffix)
{
	size_t n = strlen (dir) + strlen (slot) + strlen (suffix) + 2;
	char *p = malloc (n);
	if (p)
		snprintf (p, n, "%s/%s%s", dir, slot, suffix);
	return p;
}

static CK_RV
read_state (const char *path, struct token_state *st)
{
	char buf[STATE_MAX_SIZE + 1];
	size_t have = 0;
	struct stat sb;
	CK_RV rv = CKR_DEVICE_ERROR;
	int fd;

	memset (st, 0, sizeof *st);
	memset (st->label, ' ', sizeof st->label);
	fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return CKR_OK; /* not initialised */
		log_error ("token state %s: cannot open: %s", path, strerror (errno));
		return CKR_DEVICE_ERROR;
	}
	if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode) || sb.st_size > STATE_MAX_SIZE) {
		log_error ("token state %s: not a regular file of at most %d bytes", path, STATE_MAX_SIZE);
		goto out;
	}
	if (!private_owner (path, &sb))
		goto out;
	while (have < (size_t)sb.st_size) {
		ssize_t r = read (fd, buf + have, (size_t)sb.st_size - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	buf[have] = '\0';
	if (have != (size_t)sb.st_size || strlen (buf) != have) {
		log_error ("token state %s: short read", path);
		goto out;
	}
	if (!token_state_parse (buf, st)) {
		/* A damaged state file must not turn into an uninitialised token
		 * that anyone may claim with C_InitToken: fail closed. */
		log_error ("token state %s: damaged; the token is unusable until an administrator "
		           "repairs or removes it", path);
		goto out;
	}
	rv = CKR_OK;
out:
	OPENSSL_cleanse (buf, sizeof buf);
	close (fd);
	return rv;
}

/* Whoever can write the state can reset PINs (remove the file, claim the
 * token): it must belong to this account (or root) and be writable by no
 * one else.  A directory that does not exist yet passes (no state). */
static bool
private_dir (const char *dir)
{
	struct stat sb;
	if (lstat (dir, &sb) != 0)
		return errno == ENOENT;
	if (!S_ISDIR (sb.st_mode)) {
		log_error ("state directory %s: not a directory (or a symbolic link)", dir);
		return false;
	}
	return private_owner (dir, &sb);
}

static bool
private_owner (const char *path, const struct stat *sb)
{
	if (sb->st_uid != geteuid () && sb->st_uid != 0) {
		log_error ("%s: owned by uid %lu, not by this account (uid %lu) or root; refusing "
		           "token state others control", path, (unsigned long)sb->st_uid,
		           (unsigned long)geteuid ());
		return false;
	}
	if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
		log_error ("%s: mode %03o lets others write it; refusing (chmod go-w)", path,
		           (unsigned)(sb->st_mode & 0777));
		return false;
	}
	return true;
}

CK_RV
token_state_open (const char *dir, const char *slot, bool create, struct token_state_file *f,
                  struct token_state *st)
{
	CK_RV rv = CKR_HOST_MEMORY;

	f->lock_fd = -1;
	f->path = join (dir, slot, ".token");
	f->lock_path = join (dir, slot, ".lock");
	if (!f->path || !f->lock_path)
		goto fail;
	if (create && mkdir (dir, 0700) != 0 && errno != EEXIST) {
		log_error ("state directory %s: cannot create: %s", dir, strerror (errno));
		rv = CKR_DEVICE_ERROR;
		goto fail;
	}
	if (!private_dir (dir)) {
		rv = CKR_DEVICE_ERROR;
		goto fail;
	}
	f->lock_fd = open (f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f->lock_fd < 0) {
		if (errno == ENOENT && !create) {
			/* No state directory yet: an uninitialised token. */
			rv = read_state (f->path, st);
			if (rv == CKR_OK)
				return CKR_OK;
		}
		log_error ("state lock %s: %s", f->lock_path, strerror (errno));
		rv = CKR_DEVICE_ERROR;
		goto fail;
	}
	/* A POSIX record lock, not flock(): it belongs to this process and is
	 * not inherited by a child forked while it is held (an flock would be,
	 * and would stay held for as long as the child lives).  Threads of one
	 * process are serialised by the slot lock, which every caller holds. */
	{
		/* Bounded: a process that holds the lock for ever (or anyone who
		 * can open the lock file) must not freeze logins everywhere. */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		struct timespec pause = { 0, 10 * 1000 * 1000 };
		int tries = (int)(lock_wait_ms / 10) + 1;
		while (fcntl (f->lock_fd, F_SETLK, &fl) != 0) {
			if ((errno != EACCES && errno != EAGAIN && errno != EINTR) || --tries <= 0) {
				log_error ("state lock %s: %s", f->lock_path,
				           tries <= 0 ? "held by another process for too long"
				                      : strerror (errno));
				rv = CKR_DEVICE_ERROR;
				goto fail;
			}
			nanosleep (&pause, NULL);
		}
	}
	rv = read_state (f->path, st);
	if (rv == CKR_OK)
		return CKR_OK;
fail:
	token_state_close (f);
	return rv;
}

CK_RV
token_state_store (struct token_state_file *f, const struct token_state *st)
{
	char label_hex[2 * sizeof st->label + 1];
	char buf[STATE_MAX_SIZE];
	char *tmp = NULL;
	int fd = -1, n;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (f->lock_fd < 0)
		return CKR_DEVICE_ERROR; /* never write without the lock */
	hex_encode (st->label, sizeof st->label, label_hex);
	n = snprintf (buf, sizeof buf,
	              "# p11-warden token state: written by the module, do not edit\n"
	              "[token]\nversion = 1\nlabel = %s\nso-pin = %s\nuser-pin = %s\n"
	              "so-failures = %u\nuser-failures = %u\n",
	              label_hex, st->so_pin, st->user_pin, st->so_failures, st->user_failures);
	if (n < 0 || (size_t)n >= sizeof buf)
		goto out;
	tmp = malloc (strlen (f->path) + sizeof ".tmp");
	if (!tmp) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	snprintf (tmp, strlen (f->path) + sizeof ".tmp", "%s.tmp", f->path);
	/* A fresh file: never truncate or follow what may have been planted at
	 * the temporary name (a link to another file). */
	(void)unlink (tmp);
	fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	if (write (fd, buf, (size_t)n) != n || fsync (fd) != 0) {
		unlink (tmp);
		goto out;
	}
	if (close (fd) != 0) {
		fd = -1;
		unlink (tmp);
		goto out;
	}
	fd = -1;
	if (rename (tmp, f->path) != 0) {
		unlink (tmp);
		goto out;
	}
	/* Make the rename itself durable: the directory entry. */
	{
		char *slash = strrchr (tmp, '/');
		if (slash) {
			*slash = '\0';
			fd = open (*tmp ? tmp : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0)
				(void)fsync (fd);
		}
	}
	rv = CKR_OK;
out:
	if (rv != CKR_OK)
		log_error ("token state %s: cannot write: %s", f->path, strerror (errno));
	if (fd >= 0)
		close (fd);
	free (tmp);
	OPENSSL_cleanse (buf, sizeof buf);
	return rv;
}

void
token_state_close (struct token_state_file *f)
{
	if (f->lock_fd >= 0)
		close (f->lock_fd); /* releases the lock */
	free (f->path);
	free (f->lock_path);
	f->lock_fd = -1;
	f->path = f->lock_path = NULL;
}

CK_RV
token_state_read (const char *dir, const char *slot, struct token_state *st)
{
	struct token_state_file f;
	CK_RV rv = token_state_open (dir, slot, false, &f, st);
	if (rv == CKR_OK)
		token_state_close (&f);
	return rv;
}
