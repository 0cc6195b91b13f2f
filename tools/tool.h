/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the p11-warden tool's command files share (tools/p11-warden.c has
 * main, policy, evidence and audit; tools/cmd-*.c the administration
 * commands).  Exit codes, p11-warden(1): 0 success, 1 a negative answer,
 * 2 usage, 3 the environment (a configuration, file or backend problem).
 */
#ifndef P11W_TOOL_H
#define P11W_TOOL_H

#include "conf.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_NO 1
#define EXIT_USAGE 2
#define EXIT_ENV 3

extern bool json_out;    /* --json: one JSON value (or JSON lines) on stdout */

/* "p11-warden: " + the message (a printf format with one %s, @arg) + a
 * hint; returns EXIT_USAGE. */
int usage_error (const char *fmt, const char *arg) __attribute__ ((format (printf, 1, 0)));
/* Print @o on one line and release it. */
void print_json (struct json_object *o);
/* --conf, else P11_WARDEN_CONF, else the module's default path. */
const char *conf_path_default (const char *given);
/* conf_load with the error on stderr: 0 or EXIT_ENV. */
int load_conf (const char *path, struct conf *conf);
void hex (const unsigned char *b, size_t n, char *out, size_t len);
/* Add a string member when @v is not NULL. */
void json_str (struct json_object *o, const char *k, const char *v);
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
void iso_time (int64_t ms, char *out, size_t len);

/*
 * The PIN on the first line of @path (tools/pin-file.c): a regular file,
 * not a link, owned by the caller and readable by nobody else, one line
 * of 1 to 255 bytes without control characters.  0, or EXIT_ENV with the
 * reason on stderr (never the PIN).  @pin gets @len bytes, no NUL.
 */
int tool_read_pin_file (const char *path, char *pin, size_t max, size_t *len);

/*
 * The administration commands, each in its own file; weak, so that the
 * tool builds with whichever groups exist.  ARGV[0] is the subcommand
 * ("add", "list", ...).
 */
int cmd_slot (int argc, char **argv) __attribute__ ((weak));          /* cmd-config.c */
int cmd_anchor (int argc, char **argv) __attribute__ ((weak));        /* cmd-config.c */
int cmd_token (int argc, char **argv) __attribute__ ((weak));         /* cmd-config.c */
int cmd_policy_admin (int argc, char **argv) __attribute__ ((weak));  /* cmd-config.c */
int cmd_collector (int argc, char **argv) __attribute__ ((weak));     /* cmd-config.c */
int cmd_module (int argc, char **argv) __attribute__ ((weak));        /* cmd-config.c */
int cmd_key (int argc, char **argv) __attribute__ ((weak));           /* cmd-status.c */
int cmd_status (int argc, char **argv) __attribute__ ((weak));        /* cmd-status.c */
int cmd_doctor (int argc, char **argv) __attribute__ ((weak));        /* cmd-status.c */

#endif /* P11W_TOOL_H */
