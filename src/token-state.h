/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent state of a p11-warden token: its label and the salted,
 * slow hashes of its SO and user PINs, with the failure counters that drive
 * the lockout.  One file per slot in the state directory, replaced
 * atomically; a lock file serialises readers and writers across processes.
 */
#ifndef P11W_TOKEN_STATE_H
#define P11W_TOKEN_STATE_H

#include "pkcs11.h"

#include <stdbool.h>

#define PIN_HASH_MAX 160
#define PIN_MIN_LEN 4
#define PIN_MAX_LEN 255

struct token_state {
	bool initialized;
	CK_UTF8CHAR label[32];        /* blank padded, as in CK_TOKEN_INFO */
	char so_pin[PIN_HASH_MAX];    /* "pbkdf2-sha256$ITER$SALT$HASH", "" if unset */
	char user_pin[PIN_HASH_MAX];
	unsigned int so_failures;
	unsigned int user_failures;
};

/* A handle on the slot's state file, held locked between open and close. */
struct token_state_file {
	int lock_fd;
	char *path;
	char *lock_path;
};

/* Lock the slot's state (exclusively, across processes) and read it.  A
 * missing file is an uninitialised token.  The state directory is created
 * (mode 0700) when @create is set.  The lock is a process-owned record
 * lock: callers in one process must serialise among themselves (the slot
 * lock), since closing any descriptor of the lock file releases it. */
CK_RV token_state_open (const char *dir, const char *slot, bool create,
                        struct token_state_file *f, struct token_state *st);
/* For tests: how long token_state_open waits for the lock (default 10 s);
 * it fails with CKR_DEVICE_ERROR after that. */
void token_state_set_lock_wait (unsigned int ms);
/* Write @st atomically (temporary file, fsync, rename). */
CK_RV token_state_store (struct token_state_file *f, const struct token_state *st);
/* Unlock and release. */
void token_state_close (struct token_state_file *f);

/* Read without keeping the lock (for C_GetTokenInfo); same serialisation
 * rule as token_state_open. */
CK_RV token_state_read (const char *dir, const char *slot, struct token_state *st);

/* Parse the text of a state file; false if it is damaged. */
bool token_state_parse (const char *text, struct token_state *st);

/* Hash a PIN with a fresh salt into @out ("" on failure). */
CK_RV pin_hash (const CK_UTF8CHAR *pin, CK_ULONG len, unsigned int iterations,
                char out[PIN_HASH_MAX]);
/* Compare a PIN with an encoded hash in constant time. */
bool pin_verify (const CK_UTF8CHAR *pin, CK_ULONG len, const char *encoded);

#endif /* P11W_TOKEN_STATE_H */
