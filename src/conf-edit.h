/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Editing p11-warden.conf as an administrator would with a text editor:
 * the file is changed line by line, so that comments, blank lines, the
 * order of sections and keys and the spelling of untouched lines stay
 * byte for byte what the administrator wrote.
 *
 *   - an edit session holds an exclusive flock on PATH.lock (next to the
 *     file; created if missing) from conf_edit_open() to
 *     conf_edit_close(), and reads the file only once it holds it, so
 *     that two administrators changing the file at the same time are
 *     serialised and neither loses the other's change;
 *   - the file is read with the module's own checks (util_read_file: a
 *     regular file, at most CONF_MAX_SIZE bytes, not writable by group or
 *     others, no NUL); a file that does not exist starts empty (and is
 *     created with mode 0644);
 *   - conf_edit_commit() parses the result with conf_parse() and refuses
 *     to write a file the module would refuse; otherwise it writes a
 *     temporary file in the same directory (O_EXCL), gives it the
 *     original's mode, owner and group, fsyncs it, calls the caller's
 *     hook (the audit record: a change that cannot be recorded is not
 *     made), renames it over the file and fsyncs the directory.  Readers
 *     (the module at C_Initialize) see the old file or the new one, never
 *     a mix.
 *
 * A section is the header line up to the next header.  The comment lines
 * directly above a header (no blank line between) belong to that header:
 * they go when the section is removed, and a key added to the section
 * before them goes above them.
 */
#ifndef P11W_CONF_EDIT_H
#define P11W_CONF_EDIT_H

#include "conf.h"

#include <stdbool.h>
#include <stddef.h>

#define CONF_EDIT_WAIT_MS 5000   /* how long to wait for another administrator */

struct conf_edit;

/*
 * Take PATH.lock (waiting at most @wait_ms for another editor), then read
 * @path.  A symbolic link is followed: the file it names is edited (and
 * locked).  NULL with the reason in @err.
 */
struct conf_edit *conf_edit_open (const char *path, unsigned int wait_ms, char *err, size_t errlen);
/* Release the lock and everything else; nothing is written. */
void conf_edit_close (struct conf_edit *e);

/* The file being edited (the link's target when @path was a link). */
const char *conf_edit_path (const struct conf_edit *e);
/* Did the file exist when it was opened? */
bool conf_edit_existed (const struct conf_edit *e);
/* The text with the edits so far (malloc'd), and its length. */
char *conf_edit_text (const struct conf_edit *e, size_t *len);

/* Is there a [@section] header (e.g. "slot:hsm")?  Its line (1-based) in
 * @line when not NULL. */
bool conf_edit_has_section (const struct conf_edit *e, const char *section, int *line);

/*
 * The value of the @nth (from 0) line "@key = value" of [@section], as
 * the module would read it (without an inline comment), into @out.
 * False when there is no such line (or the value does not fit).
 */
bool conf_edit_get (const struct conf_edit *e, const char *section, const char *key, size_t nth,
                    char *out, size_t len);

/*
 * The edits.  Each checks what it is given (a value that would not read
 * back as given, such as one with a newline, leading or trailing blanks,
 * or a ';' after a blank, and lines over CONF_MAX_LINE - 1 bytes, are
 * refused) and returns false with the reason in @err, leaving the text as
 * it was.  None is checked against the rest of the configuration: that is
 * conf_edit_commit()'s job.
 */
/* Append "[@section]" and its "key = value" lines at the end of the file,
 * after a blank line.  @section must not exist yet. */
bool conf_edit_add_section (struct conf_edit *e, const char *section, const char *const *keys,
                            const char *const *values, size_t n, char *err, size_t errlen);
/* Remove [@section]: its header, its lines and the comment lines directly
 * above it. */
bool conf_edit_remove_section (struct conf_edit *e, const char *section, char *err, size_t errlen);
/* Set @key of [@section]: its one line gets @value in place (keeping the
 * line's spacing and an inline comment), or, if the key is not there, a
 * line is added at the end of the section.  Refused when the key is there
 * more than once (say which with conf_edit_replace). */
bool conf_edit_set (struct conf_edit *e, const char *section, const char *key, const char *value,
                    char *err, size_t errlen);
/* Add a "@key = @value" line at the end of [@section] (repeatable keys). */
bool conf_edit_add (struct conf_edit *e, const char *section, const char *key, const char *value,
                    char *err, size_t errlen);
/* Give the @nth "@key" line of [@section] the value @value, in place. */
bool conf_edit_replace (struct conf_edit *e, const char *section, const char *key, size_t nth,
                        const char *value, char *err, size_t errlen);
/* Remove the @nth "@key" line of [@section]. */
bool conf_edit_remove (struct conf_edit *e, const char *section, const char *key, size_t nth,
                       char *err, size_t errlen);

/*
 * Check the edited text with conf_parse() (refused: "the change would
 * make PATH invalid: PATH:LINE: why"), write it to a temporary file, then
 * call @hook (may be NULL) with the configuration as parsed; when the hook
 * returns false (its reason in @err) the temporary file is removed and
 * nothing changes.  Otherwise the temporary file replaces @path.  On
 * success *@out (may be NULL) holds the new configuration, for
 * conf_free().  The lock is kept until conf_edit_close().
 */
typedef bool (*conf_edit_hook) (const struct conf *conf, void *user, char *err, size_t errlen);
bool conf_edit_commit (struct conf_edit *e, conf_edit_hook hook, void *user, struct conf *out,
                       char *err, size_t errlen);

#endif /* P11W_CONF_EDIT_H */
