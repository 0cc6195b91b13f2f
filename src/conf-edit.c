/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "conf-edit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WHY "the configuration decides which keys are gated"

struct line {
	char *s;        /* without its newline; NUL-terminated */
	size_t len;
};

struct conf_edit {
	char *path;               /* the file edited (a link resolved) */
	char *lock_path;
	int lock_fd;
	bool existed;
	struct stat st;           /* of the original, when it existed */
	struct line *lines;
	size_t n, cap;
	bool final_newline;       /* the text ends with a newline */
};

/* ------------------------------------------------------------ lines */

static bool
is_blank (const struct line *l)
{
	for (size_t i = 0; i < l->len; i++) {
		if (l->s[i] != ' ' && l->s[i] != '\t' && l->s[i] != '\r')
			return false;
	}
	return true;
}

static bool
is_comment (const struct line *l)
{
	return l->len > 0 && (l->s[0] == ';' || l->s[0] == '#');
}

static bool
is_header (const struct line *l)
{
	return l->len > 0 && l->s[0] == '[';
}

/* Is @l the header of [@name]?  As prescan() reads it: the bytes between
 * '[' and the first ']'. */
static bool
header_is (const struct line *l, const char *name)
{
	const char *close;
	size_t n = strlen (name);
	if (!is_header (l))
		return false;
	close = memchr (l->s, ']', l->len);
	return close && (size_t)(close - l->s - 1) == n && !memcmp (l->s + 1, name, n);
}

/* Is @l a "@key = value" line (inih: the name is what comes before the
 * first '=' or ':', without trailing blanks)?  Where its value starts and
 * ends (an inline comment, after a blank, and trailing blanks excluded). */
static bool
key_line (const struct line *l, const char *key, size_t *vstart, size_t *vend)
{
	size_t n = strlen (key), d = 0, k, v, end;
	if (l->len == 0 || is_comment (l) || is_header (l) || is_blank (l))
		return false;
	while (d < l->len && l->s[d] != '=' && l->s[d] != ':')
		d++;
	if (d == l->len)
		return false;
	k = d;
	while (k > 0 && (l->s[k - 1] == ' ' || l->s[k - 1] == '\t'))
		k--;
	if (k != n || memcmp (l->s, key, n) != 0)
		return false;
	v = d + 1;
	while (v < l->len && (l->s[v] == ' ' || l->s[v] == '\t'))
		v++;
	/* inih ends a value at a ';' that follows a blank: the comment stays. */
	end = v;
	while (end < l->len && !(l->s[end] == ';' && end > 0 &&
	                         (l->s[end - 1] == ' ' || l->s[end - 1] == '\t')))
		end++;
	while (end > v && (l->s[end - 1] == ' ' || l->s[end - 1] == '\t' || l->s[end - 1] == '\r'))
		end--;
	if (vstart)
		*vstart = v;
	if (vend)
		*vend = end;
	return true;
}

static bool
insert_line (struct conf_edit *e, size_t at, const char *s, size_t len, char *err, size_t errlen)
{
	char *copy;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		struct line *n = realloc (e->lines, cap * sizeof *n);
		if (!n) {
			snprintf (err, errlen, "out of memory");
			return false;
		}
		e->lines = n;
		e->cap = cap;
	}
	copy = malloc (len + 1);
	if (!copy) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	memcpy (copy, s, len);
	copy[len] = '\0';
	memmove (&e->lines[at + 1], &e->lines[at], (e->n - at) * sizeof *e->lines);
	e->lines[at].s = copy;
	e->lines[at].len = len;
	e->n++;
	return true;
}

static void
remove_lines (struct conf_edit *e, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		free (e->lines[i].s);
	memmove (&e->lines[from], &e->lines[to], (e->n - to) * sizeof *e->lines);
	e->n -= to - from;
}

/* [@section]'s header line and the next header (or the end). */
static bool
find_section (const struct conf_edit *e, const char *section, size_t *header, size_t *next)
{
	for (size_t i = 0; i < e->n; i++) {
		if (!header_is (&e->lines[i], section))
			continue;
		*header = i;
		for (*next = i + 1; *next < e->n && !is_header (&e->lines[*next]); (*next)++)
			;
		return true;
	}
	return false;
}

/* Where a line added to the section [@h, @next) goes: after its last line
 * that is neither blank nor part of the comment block directly above the
 * next header. */
static size_t
section_end (const struct conf_edit *e, size_t h, size_t next)
{
	size_t k = next;
	if (next < e->n) {
		while (k - 1 > h && is_comment (&e->lines[k - 1]))
			k--;
	}
	while (k - 1 > h && is_blank (&e->lines[k - 1]))
		k--;
	return k;
}

/* ------------------------------------------------------------ checks */

static bool
check_section_name (const char *section, char *err, size_t errlen)
{
	size_t n = strlen (section);
	if (n == 0 || n >= 80) {
		snprintf (err, errlen, "section name '%s': 1 to 79 bytes", section);
		return false;
	}
	for (const char *p = section; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '[' || *p == ']' || *p == ';' ||
		    *p == '#') {
			snprintf (err, errlen, "section name '%s': no control characters, brackets, ';' "
			          "or '#'", section);
			return false;
		}
	}
	return true;
}

/* A value must read back as given: inih strips blanks around it and ends
 * it at a ';' after a blank, and a line is at most one line. */
static bool
check_value (const char *key, const char *value, char *err, size_t errlen)
{
	size_t n = strlen (value);
	if (n == 0) {
		snprintf (err, errlen, "'%s': empty value", key);
		return false;
	}
	if (!util_utf8_valid ((const unsigned char *)value, n)) {
		snprintf (err, errlen, "'%s': the value is not UTF-8", key);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c < 0x20 || c == 0x7f) {
			snprintf (err, errlen, "'%s': the value holds a control character (a newline or "
			          "a tab?)", key);
			return false;
		}
		if (c == ';' && (i == 0 || value[i - 1] == ' ')) {
			snprintf (err, errlen, "'%s' = '%s': a ';' after a blank would start a comment",
			          key, value);
			return false;
		}
	}
	if (value[0] == ' ' || value[n - 1] == ' ') {
		snprintf (err, errlen, "'%s' = '%s': leading or trailing blanks would be dropped", key,
		          value);
		return false;
	}
	/* Key names are what p11-warden.conf(5) has: [a-z0-9-], nothing a
	 * line or inih could read otherwise. */
	if (!strcmp (key, "") || strspn (key, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen (key)) {
		snprintf (err, errlen, "bad key name (the keys of p11-warden.conf(5) are a-z, 0-9, -)");
		return false;
	}
	return true;
}

static bool
check_length (const char *what, size_t len, char *err, size_t errlen)
{
	if (len >= CONF_MAX_LINE) {
		snprintf (err, errlen, "the line for %s would be %zu bytes; p11-warden.conf(5) allows "
		          "at most %d (use a shorter path or name)", what, len, CONF_MAX_LINE - 1);
		return false;
	}
	return true;
}

/* "key = value" in @buf (CONF_MAX_LINE + 1 bytes), checked. */
static bool
format_key (const char *key, const char *value, char *buf, size_t len, char *err, size_t errlen)
{
	char what[128];
	int n;
	if (!check_value (key, value, err, errlen))
		return false;
	snprintf (what, sizeof what, "'%s'", key);
	n = snprintf (buf, len, "%s = %s", key, value);
	if (n < 0)
		return false;
	return check_length (what, (size_t)n, err, errlen);
}

/* ------------------------------------------------------------ open/close */

/* @path with its link resolved; for a file that does not exist, its
 * directory's. */
static char *
resolve (const char *path, char *err, size_t errlen)
{
	char *r = realpath (path, NULL), *copy, *slash, *dir, *out;
	const char *base;
	if (r)
		return r;
	if (errno != ENOENT) {
		snprintf (err, errlen, "%s: %s", path, strerror (errno));
		return NULL;
	}
	copy = strdup (path);
	if (!copy) {
		snprintf (err, errlen, "out of memory");
		return NULL;
	}
	slash = strrchr (copy, '/');
	if (slash) {
		*slash = '\0';
		base = slash + 1;
		dir = realpath (slash == copy ? "/" : copy, NULL);
	} else {
		base = copy;
		dir = realpath (".", NULL);
	}
	if (!dir || !*base) {
		snprintf (err, errlen, "%s: the directory does not exist (%s)", path,
		          dir ? "no file name" : strerror (errno));
		free (dir);
		free (copy);
		return NULL;
	}
	out = malloc (strlen (dir) + strlen (base) + 2);
	if (out)
		sprintf (out, "%s/%s", strcmp (dir, "/") ? dir : "", base);
	else
		snprintf (err, errlen, "out of memory");
	free (dir);
	free (copy);
	return out;
}

static bool
take_lock (struct conf_edit *e, unsigned int wait_ms, char *err, size_t errlen)
{
	struct timespec start, now, pause = { 0, 20 * 1000 * 1000 };
	/* Private to the administrators: whoever can lock it can keep the
	 * others waiting. */
	e->lock_fd = open (e->lock_path,
	                   O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
	if (e->lock_fd < 0) {
		snprintf (err, errlen, "%s: cannot open the lock file: %s", e->lock_path,
		          strerror (errno));
		return false;
	}
	{
		/* A regular file (not a FIFO someone planted, which would hang
		 * the open's users), owned like the configuration: root editing
		 * first must not lock its owner out. */
		struct stat lst, cst;
		if (fstat (e->lock_fd, &lst) != 0 || !S_ISREG (lst.st_mode)) {
			snprintf (err, errlen, "%s: not a regular file", e->lock_path);
			return false;
		}
		if (geteuid () == 0 && lst.st_uid == 0 && stat (e->path, &cst) == 0 &&
		    cst.st_uid != 0)
			if (fchown (e->lock_fd, cst.st_uid, cst.st_gid) != 0)
				fprintf (stderr, "p11-warden: warning: %s: cannot give it to the "
				         "configuration's owner: %s\n", e->lock_path, strerror (errno));
	}
	clock_gettime (CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock (e->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			snprintf (err, errlen, "%s: cannot lock: %s", e->lock_path, strerror (errno));
			return false;
		}
		clock_gettime (CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    (long)wait_ms) {
			snprintf (err, errlen, "%s: another administrator is changing it (%s is locked; "
			          "waited %u ms); nothing was changed, try again", e->path, e->lock_path,
			          wait_ms);
			return false;
		}
		nanosleep (&pause, NULL);
	}
}

struct conf_edit *
conf_edit_open (const char *path, unsigned int wait_ms, char *err, size_t errlen)
{
	struct conf_edit *e = calloc (1, sizeof *e);
	char *text = NULL;
	size_t len = 0;
	bool missing = false;

	if (!e) {
		snprintf (err, errlen, "out of memory");
		return NULL;
	}
	e->lock_fd = -1;
	e->path = resolve (path, err, errlen);
	if (!e->path)
		goto fail;
	e->lock_path = malloc (strlen (e->path) + sizeof ".lock");
	if (!e->lock_path) {
		snprintf (err, errlen, "out of memory");
		goto fail;
	}
	sprintf (e->lock_path, "%s.lock", e->path);
	if (!take_lock (e, wait_ms, err, errlen))
		goto fail;
	/* Read only now: what another administrator wrote before we got the
	 * lock is in it. */
	text = util_read_file (e->path, CONF_MAX_SIZE, UTIL_FILE_TEXT, WHY, &len, &missing, err,
	                       errlen);
	if (!text && !missing)
		goto fail;
	e->existed = text != NULL;
	if (e->existed && lstat (e->path, &e->st) != 0) {
		snprintf (err, errlen, "%s: %s", e->path, strerror (errno));
		goto fail;
	}
	err[0] = '\0';
	e->final_newline = true;
	if (text) {
		const char *p = text, *end = text + len;
		while (p < end) {
			const char *nl = memchr (p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (!insert_line (e, e->n, p, n, err, errlen))
				goto fail;
			p += n + (nl ? 1 : 0);
		}
		e->final_newline = len == 0 || text[len - 1] == '\n';
		free (text);
	}
	return e;
fail:
	free (text);
	conf_edit_close (e);
	return NULL;
}

void
conf_edit_close (struct conf_edit *e)
{
	if (!e)
		return;
	if (e->lock_fd >= 0)
		close (e->lock_fd); /* releases the flock */
	for (size_t i = 0; i < e->n; i++)
		free (e->lines[i].s);
	free (e->lines);
	free (e->lock_path);
	free (e->path);
	free (e);
}

const char *
conf_edit_path (const struct conf_edit *e)
{
	return e->path;
}

bool
conf_edit_existed (const struct conf_edit *e)
{
	return e->existed;
}

char *
conf_edit_text (const struct conf_edit *e, size_t *len)
{
	size_t n = 1, o = 0;
	char *t;
	for (size_t i = 0; i < e->n; i++)
		n += e->lines[i].len + 1;
	t = malloc (n);
	if (!t)
		return NULL;
	for (size_t i = 0; i < e->n; i++) {
		memcpy (t + o, e->lines[i].s, e->lines[i].len);
		o += e->lines[i].len;
		if (i + 1 < e->n || e->final_newline)
			t[o++] = '\n';
	}
	t[o] = '\0';
	if (len)
		*len = o;
	return t;
}

/* ------------------------------------------------------------ queries */

bool
conf_edit_has_section (const struct conf_edit *e, const char *section, int *line)
{
	size_t h, next;
	if (!find_section (e, section, &h, &next))
		return false;
	if (line)
		*line = (int)h + 1;
	return true;
}

/* The index of the @nth @key line of [@section], or false. */
static bool
find_key (const struct conf_edit *e, const char *section, const char *key, size_t nth, size_t *at,
          size_t *vstart, size_t *vend)
{
	size_t h, next, seen = 0;
	if (!find_section (e, section, &h, &next))
		return false;
	for (size_t i = h + 1; i < next; i++) {
		if (key_line (&e->lines[i], key, vstart, vend) && seen++ == nth) {
			*at = i;
			return true;
		}
	}
	return false;
}

bool
conf_edit_get (const struct conf_edit *e, const char *section, const char *key, size_t nth,
               char *out, size_t len)
{
	size_t at, vs, ve;
	if (!find_key (e, section, key, nth, &at, &vs, &ve) || ve - vs >= len)
		return false;
	memcpy (out, e->lines[at].s + vs, ve - vs);
	out[ve - vs] = '\0';
	return true;
}

/* ------------------------------------------------------------ edits */

bool
conf_edit_add_section (struct conf_edit *e, const char *section, const char *const *keys,
                       const char *const *values, size_t n, char *err, size_t errlen)
{
	char buf[CONF_MAX_LINE + 64];
	size_t at, first;
	int len;

	if (!check_section_name (section, err, errlen))
		return false;
	if (conf_edit_has_section (e, section, NULL)) {
		snprintf (err, errlen, "[%s] exists already", section);
		return false;
	}
	len = snprintf (buf, sizeof buf, "[%s]", section);
	if (len < 0 || !check_length ("the section header", (size_t)len, err, errlen))
		return false;
	/* Check every line before changing anything. */
	for (size_t i = 0; i < n; i++) {
		if (!format_key (keys[i], values[i], buf, sizeof buf, err, errlen))
			return false;
	}
	first = e->n;
	at = e->n;
	if (at > 0 && !is_blank (&e->lines[at - 1])) {
		if (!insert_line (e, at++, "", 0, err, errlen))
			goto undo;
	}
	len = snprintf (buf, sizeof buf, "[%s]", section);
	if (!insert_line (e, at++, buf, (size_t)len, err, errlen))
		goto undo;
	for (size_t i = 0; i < n; i++) {
		len = snprintf (buf, sizeof buf, "%s = %s", keys[i], values[i]);
		if (!insert_line (e, at++, buf, (size_t)len, err, errlen))
			goto undo;
	}
	e->final_newline = true;
	return true;
undo:
	remove_lines (e, first, e->n);
	return false;
}

bool
conf_edit_remove_section (struct conf_edit *e, const char *section, char *err, size_t errlen)
{
	size_t h, next, from, to;
	if (!find_section (e, section, &h, &next)) {
		snprintf (err, errlen, "there is no [%s]", section);
		return false;
	}
	from = h;
	while (from > 0 && is_comment (&e->lines[from - 1]))
		from--;
	to = next;
	if (next < e->n) {
		/* The comments directly above the next header are the next
		 * section's. */
		while (to - 1 > h && is_comment (&e->lines[to - 1]))
			to--;
	} else {
		/* The last section: the blank lines that separated it go too. */
		while (from > 0 && is_blank (&e->lines[from - 1]))
			from--;
		/* What is left ended with a newline before the section. */
		e->final_newline = true;
	}
	remove_lines (e, from, to);
	return true;
}

/* Put @value into line @at in place of bytes [@vs, @ve). */
static bool
replace_value (struct conf_edit *e, size_t at, size_t vs, size_t ve, const char *key,
               const char *value, char *err, size_t errlen)
{
	struct line *l = &e->lines[at];
	size_t vlen = strlen (value), len = l->len - (ve - vs) + vlen;
	char what[128], *s;
	if (!check_value (key, value, err, errlen))
		return false;
	snprintf (what, sizeof what, "'%s'", key);
	if (!check_length (what, len, err, errlen))
		return false;
	s = malloc (len + 1);
	if (!s) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	memcpy (s, l->s, vs);
	memcpy (s + vs, value, vlen);
	memcpy (s + vs + vlen, l->s + ve, l->len - ve);
	s[len] = '\0';
	free (l->s);
	l->s = s;
	l->len = len;
	return true;
}

bool
conf_edit_add (struct conf_edit *e, const char *section, const char *key, const char *value,
               char *err, size_t errlen)
{
	char buf[CONF_MAX_LINE + 64];
	size_t h, next, at;
	if (!find_section (e, section, &h, &next)) {
		snprintf (err, errlen, "there is no [%s]", section);
		return false;
	}
	if (!format_key (key, value, buf, sizeof buf, err, errlen))
		return false;
	at = section_end (e, h, next);
	if (!insert_line (e, at, buf, strlen (buf), err, errlen))
		return false;
	if (at == e->n - 1)
		e->final_newline = true;
	return true;
}

bool
conf_edit_replace (struct conf_edit *e, const char *section, const char *key, size_t nth,
                   const char *value, char *err, size_t errlen)
{
	size_t at, vs, ve;
	if (!find_key (e, section, key, nth, &at, &vs, &ve)) {
		snprintf (err, errlen, "[%s] has no '%s' line %zu", section, key, nth + 1);
		return false;
	}
	return replace_value (e, at, vs, ve, key, value, err, errlen);
}

bool
conf_edit_set (struct conf_edit *e, const char *section, const char *key, const char *value,
               char *err, size_t errlen)
{
	size_t at, vs, ve;
	if (!conf_edit_has_section (e, section, NULL)) {
		snprintf (err, errlen, "there is no [%s]", section);
		return false;
	}
	if (find_key (e, section, key, 1, &at, &vs, &ve)) {
		snprintf (err, errlen, "[%s] has '%s' more than once (line %zu)", section, key, at + 1);
		return false;
	}
	if (find_key (e, section, key, 0, &at, &vs, &ve))
		return replace_value (e, at, vs, ve, key, value, err, errlen);
	return conf_edit_add (e, section, key, value, err, errlen);
}

bool
conf_edit_remove (struct conf_edit *e, const char *section, const char *key, size_t nth,
                  char *err, size_t errlen)
{
	size_t at, vs, ve;
	if (!find_key (e, section, key, nth, &at, &vs, &ve)) {
		snprintf (err, errlen, "[%s] has no '%s' line %zu", section, key, nth + 1);
		return false;
	}
	remove_lines (e, at, at + 1);
	return true;
}

/* ------------------------------------------------------------ commit */

static bool
write_all (int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write (fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool
sync_dir (const char *path)
{
	char *dir = strdup (path), *slash;
	int fd;
	bool ok;
	if (!dir)
		return false;
	slash = strrchr (dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	fd = open (slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free (dir);
	if (fd < 0)
		return false;
	ok = fsync (fd) == 0;
	close (fd);
	return ok;
}

bool
conf_edit_commit (struct conf_edit *e, conf_edit_hook hook, void *user, struct conf *out,
                  char *err, size_t errlen)
{
	struct conf conf;
	char msg[1024], *tmp = NULL, *text;
	size_t len;
	int fd = -1;
	bool ok = false;

	conf_init_defaults (&conf);
	text = conf_edit_text (e, &len);
	if (!text) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	if (len > CONF_MAX_SIZE) {
		snprintf (err, errlen, "%s: the change would make it larger than %d bytes", e->path,
		          CONF_MAX_SIZE);
		goto out;
	}
	/* The module will read what is written: write nothing it would
	 * refuse. */
	if (!conf_parse (e->path, text, &conf, msg, sizeof msg)) {
		snprintf (err, errlen, "the change would make %s invalid; nothing was changed: %s",
		          e->path, msg);
		goto out;
	}
	tmp = malloc (strlen (e->path) + sizeof ".XXXXXX");
	if (!tmp) {
		snprintf (err, errlen, "out of memory");
		goto out;
	}
	sprintf (tmp, "%s.XXXXXX", e->path);
	fd = mkostemp (tmp, O_CLOEXEC); /* O_EXCL, mode 0600 */
	if (fd < 0) {
		snprintf (err, errlen, "%s: cannot create a temporary file beside it: %s", e->path,
		          strerror (errno));
		free (tmp);
		tmp = NULL;
		goto out;
	}
	if (!write_all (fd, text, len)) {
		snprintf (err, errlen, "%s: cannot write: %s", tmp, strerror (errno));
		goto out;
	}
	/* The new file is the old one with other contents: same owner, group
	 * and mode (a new file: the caller's, 0644). */
	if (e->existed && (e->st.st_uid != geteuid () || e->st.st_gid != getegid ()) &&
	    fchown (fd, e->st.st_uid, e->st.st_gid) != 0) {
		snprintf (err, errlen, "%s: cannot keep its owner and group (uid %lu, gid %lu): %s; "
		          "run this as its owner or root", e->path, (unsigned long)e->st.st_uid,
		          (unsigned long)e->st.st_gid, strerror (errno));
		goto out;
	}
	if (fchmod (fd, e->existed ? e->st.st_mode & 07777 : 0644) != 0 || fsync (fd) != 0) {
		snprintf (err, errlen, "%s: %s", tmp, strerror (errno));
		goto out;
	}
	if (close (fd) != 0) {
		fd = -1;
		snprintf (err, errlen, "%s: %s", tmp, strerror (errno));
		goto out;
	}
	fd = -1;
	if (hook && !hook (&conf, user, err, errlen))
		goto out;
	if (rename (tmp, e->path) != 0) {
		snprintf (err, errlen, "%s: cannot replace it: %s", e->path, strerror (errno));
		goto out;
	}
	free (tmp);
	tmp = NULL;
	if (!sync_dir (e->path)) {
		/* Written and in place; only its durability across a power loss
		 * is in doubt. */
		fprintf (stderr, "p11-warden: warning: %s: cannot sync its directory: %s\n", e->path,
		         strerror (errno));
	}
	/* The next commit of this session edits what is there now. */
	if (!e->existed) {
		e->existed = true;
		if (lstat (e->path, &e->st) != 0)
			memset (&e->st, 0, sizeof e->st);
	}
	ok = true;
out:
	if (fd >= 0)
		close (fd);
	if (tmp) {
		unlink (tmp);
		free (tmp);
	}
	free (text);
	if (ok && out)
		*out = conf;
	else
		conf_free (&conf);
	return ok;
}
