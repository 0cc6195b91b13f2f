/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Evidence collectors for the pull model (DESIGN.md "Evidence"): on a gated
 * call without a live verdict the module makes a fresh nonce and runs the
 * slot's collectors; each returns a format name and the evidence bytes,
 * which the module then appraises.  Collectors only gather: nothing here
 * trusts or checks what it returns beyond its shape and size.
 *
 * Kinds (one file each):
 *   tpm2-quote  collect-tpm.c: a quote of a PCR selection by a persistent
 *               attestation key, through tpm2-tss (ESAPI over a TCTI), plus
 *               the values of the quoted PCRs, as a JSON envelope.
 *   command     collect-command.c: an external program (a GPU verifier, an
 *               attestation agent's client) that gets the nonce on stdin
 *               and prints "FORMAT\n" and the evidence on stdout.
 *
 * The module is loaded into arbitrary multi-threaded host processes: a
 * collector never changes process-wide state (signal dispositions, the
 * environment, the working directory) and leaks no descriptor into a child
 * the host starts.  One collector may be run from several threads at once;
 * runs that share a device are serialised inside.
 */
#ifndef P11W_COLLECTOR_H
#define P11W_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

/* Longest collector name, without the NUL. */
#define COLLECTOR_NAME_MAX 63
/* Nonces: TPM2B_DATA holds at most one TPMU_HA, so 64 bytes; the module
 * uses 32. */
#define COLLECTOR_NONCE_MAX 64
/* Command collectors: the time limit and the evidence cap. */
#define COLLECTOR_TIMEOUT_MAX_MS 60000u
#define COLLECTOR_OUTPUT_MAX ((size_t)1 << 20)
/* Arguments of a command, argv[0] included. */
#define COLLECTOR_ARGV_MAX 64

enum collector_err {
	COLLECTOR_OK = 0,
	COLLECTOR_ERR_ARGS = -1,         /* bad argument to a constructor or to run */
	COLLECTOR_ERR_NO_MEMORY = -2,
	COLLECTOR_ERR_TCTI = -3,         /* the TPM cannot be reached (TCTI or ESYS init) */
	COLLECTOR_ERR_AK_MISSING = -4,   /* nothing at the AK's persistent handle */
	COLLECTOR_ERR_AK_UNSUITABLE = -5, /* the handle holds no restricted signing key,
	                                  * or one with a scheme we cannot quote with */
	COLLECTOR_ERR_TPM = -6,          /* a TPM command failed (message: Tss2_RC_Decode) */
	COLLECTOR_ERR_PCR_UNSTABLE = -7, /* PCRs kept changing between quote and read */
	COLLECTOR_ERR_PROGRAM = -8,      /* the program is missing, not executable,
	                                  * or writable by others */
	COLLECTOR_ERR_SPAWN = -9,        /* pipes or posix_spawn failed */
	COLLECTOR_ERR_TIMEOUT = -10,     /* no complete answer in time; child killed */
	COLLECTOR_ERR_EXIT = -11,        /* child exited non-zero or died of a signal */
	COLLECTOR_ERR_TOO_LARGE = -12,   /* more evidence than max_output */
	COLLECTOR_ERR_MALFORMED = -13,   /* no "format\n" line, bad format name, no evidence */
	COLLECTOR_ERR_IO = -14,          /* poll/read/waitpid failed */
	COLLECTOR_ERR_ENCODE = -15,      /* the TPM's answer could not be encoded */
};

/* One run's result.  @format is a NUL-terminated name ([a-z0-9-]{1,31});
 * @data is malloc'd, @len >= 1 bytes, owned by the caller until
 * collected_clear(). */
struct collected {
	char format[32];
	unsigned char *data;
	size_t len;
};

/* Free @c->data and empty @c; safe on an already empty struct. */
void collected_clear (struct collected *c);

struct collector; /* opaque */

/*
 * A TPM 2.0 quote collector.  @tcti is a tss2 TCTI configuration string
 * ("device:/dev/tpmrm0", "swtpm:path=/run/swtpm.sock"); NULL lets tctildr
 * pick its default.  @ak_handle is a persistent handle (0x81000000 to
 * 0x81ffffff) holding a restricted signing key with an empty user auth
 * (tpm2_createak + tpm2_evictcontrol).  @pcrs is a selection such as
 * "sha256:0,1,16" or "sha256:0,1+sha1:7" (banks sha1, sha256, sha384,
 * sha512; PCRs 0..23; each bank once).  The constructor checks arguments
 * only; the TPM is first touched by collector_run.  NULL on error, with a
 * message in @err.
 *
 * Its output, format "tpm2-quote", is JSON (lower-case hex):
 *   {"attest": "<TPMS_ATTEST bytes>", "signature": "<marshalled TPMT_SIGNATURE>",
 *    "pcrs": {"sha256": {"0": "<hex>", "16": "<hex>"}, "sha1": {...}}}
 */
struct collector *collector_tpm2_new (const char *name, const char *tcti, uint32_t ak_handle,
                                      const char *pcrs, char *err, size_t errlen);

/*
 * An external-command collector.  @argv is NULL-terminated, argv[0] an
 * absolute path to a regular, executable file owned by root or by the
 * effective user and writable by nobody else (checked here and again on
 * each run).  @timeout_ms is 1..60000; @max_output (1..1 MiB) caps the
 * evidence bytes after the format line.  The arguments are copied.
 *
 * A run: the program starts with posix_spawn (no shell) in its own process
 * group, with "/" as working directory, PATH=/usr/bin:/bin as its whole
 * environment, default signal dispositions and an empty signal mask, and
 * descriptors 0 (a socket carrying the nonce as lower-case hex and "\n",
 * then end of file), 1 (a pipe: its output), 2 (a pipe: its first KiB goes
 * into error messages) and nothing else.  It must print the format name
 * ([a-z0-9-]{1,31}), "\n" and at least one byte of evidence (binary
 * allowed), and exit 0, within the time limit; otherwise its whole process
 * group gets SIGKILL and the run fails.
 */
struct collector *collector_command_new (const char *name, const char *const *argv,
                                         unsigned int timeout_ms, size_t max_output, char *err,
                                         size_t errlen);

/*
 * Collect evidence bound to @nonce (1..COLLECTOR_NONCE_MAX bytes) into
 * @out (emptied first).  Returns COLLECTOR_OK or a negative enum
 * collector_err; @err (if @errlen > 0) always receives a NUL-terminated
 * message, on success too ("" then).  Safe to call from several threads
 * at once.
 */
int collector_run (struct collector *c, const unsigned char *nonce, size_t nonce_len,
                   struct collected *out, char *err, size_t errlen);

const char *collector_name (const struct collector *c);
/* "tpm2-quote" or "command". */
const char *collector_kind (const struct collector *c);
const char *collector_strerror (int rv);
/* Must not race a collector_run on the same collector.  NULL is a no-op. */
void collector_free (struct collector *c);

#endif /* P11W_COLLECTOR_H */
