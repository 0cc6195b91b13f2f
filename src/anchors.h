/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trust anchors: the public keys an administrator enrols ([anchor:NAME] in
 * p11-warden.conf(5)), each verifying one evidence format: a TPM
 * attestation key for tpm2-quote, a signing key for eat, a verifier's key
 * for ear.  Read once, at C_Initialize (or by the admin tool), from PEM
 * files that only their owner can change; nothing is ever fetched.
 */
#ifndef P11W_ANCHORS_H
#define P11W_ANCHORS_H

#include "conf.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define ANCHOR_FILE_MAX (64 * 1024)

struct anchor {
	const struct conf_anchor *conf;    /* name, format, kid, profile */
	EVP_PKEY *pkey;
	unsigned char fingerprint[32];     /* SHA-256 of the SubjectPublicKeyInfo */
};

struct anchor_set {
	struct anchor *a;
	size_t n;
};

/*
 * Load the public key in @path: a PEM "PUBLIC KEY" or "CERTIFICATE" (its
 * subject key), in a regular file of at most ANCHOR_FILE_MAX bytes, owned
 * by this account or root and writable by nobody else.  NULL with the
 * reason in @err.
 */
EVP_PKEY *anchor_load_key (const char *path, char *err, size_t errlen);
/* SHA-256 of @pkey's DER SubjectPublicKeyInfo. */
bool anchor_fingerprint (EVP_PKEY *pkey, unsigned char out[32]);

/* Every anchor of @conf; false with "PATH:LINE: anchor 'NAME': why". */
bool anchors_load (const struct conf *conf, struct anchor_set *out, char *err, size_t errlen);
void anchors_free (struct anchor_set *set);
const struct anchor *anchors_find (const struct anchor_set *set, const char *name);

#endif /* P11W_ANCHORS_H */
