/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "anchors.h"
#include "util.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *
anchor_load_key (const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	size_t len = 0;
	char *text = util_read_file (path, ANCHOR_FILE_MAX, UTIL_FILE_OWNED,
	                             "a trust anchor decides which evidence is believed", &len, NULL,
	                             err, errlen);
	BIO *bio;

	if (!text)
		return NULL;
	bio = BIO_new_mem_buf (text, (int)len);
	if (bio) {
		pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
		if (!pkey) {
			X509 *x;
			(void)BIO_reset (bio);
			x = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
			if (x) {
				pkey = X509_get_pubkey (x);
				X509_free (x);
			}
		}
		BIO_free (bio);
	}
	free (text);
	if (!pkey)
		snprintf (err, errlen, "%s: no PEM public key (\"PUBLIC KEY\") or certificate in it",
		          path);
	return pkey;
}

bool
anchor_fingerprint (EVP_PKEY *pkey, unsigned char out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY (pkey, &der);
	if (n <= 0)
		return false;
	SHA256 (der, (size_t)n, out);
	OPENSSL_free (der);
	return true;
}

/* The key types each format's verifier can use. */
static bool
fits_format (const char *format, EVP_PKEY *pkey)
{
	int id = EVP_PKEY_get_base_id (pkey);
	if (!strcmp (format, "tpm2-quote"))
		return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
	if (!strcmp (format, "ear"))
		return id == EVP_PKEY_EC;
	return id == EVP_PKEY_EC || id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS ||
	       id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448;
}

bool
anchors_load (const struct conf *conf, struct anchor_set *out, char *err, size_t errlen)
{
	memset (out, 0, sizeof *out);
	if (conf->n_anchors == 0)
		return true;
	out->a = calloc (conf->n_anchors, sizeof *out->a);
	if (!out->a) {
		snprintf (err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < conf->n_anchors; i++) {
		const struct conf_anchor *c = &conf->anchors[i];
		struct anchor *a = &out->a[out->n];
		char msg[512];
		a->conf = c;
		a->pkey = anchor_load_key (c->file, msg, sizeof msg);
		if (!a->pkey) {
			snprintf (err, errlen, "%s:%d: anchor '%s': %s", conf->path, c->line, c->name, msg);
			anchors_free (out);
			return false;
		}
		out->n++;
		if (!fits_format (c->format, a->pkey)) {
			snprintf (err, errlen, "%s:%d: anchor '%s': a %s key cannot verify %s evidence "
			          "(tpm2-quote: RSA or EC; eat: EC, RSA, Ed25519, Ed448; ear: EC)",
			          conf->path, c->line, c->name, EVP_PKEY_get0_type_name (a->pkey),
			          c->format);
			anchors_free (out);
			return false;
		}
		if (!anchor_fingerprint (a->pkey, a->fingerprint)) {
			snprintf (err, errlen, "%s:%d: anchor '%s': cannot encode the key", conf->path,
			          c->line, c->name);
			anchors_free (out);
			return false;
		}
	}
	return true;
}

void
anchors_free (struct anchor_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		EVP_PKEY_free (set->a[i].pkey);
	free (set->a);
	memset (set, 0, sizeof *set);
}

const struct anchor *
anchors_find (const struct anchor_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++) {
		if (!strcmp (set->a[i].conf->name, name))
			return &set->a[i];
	}
	return NULL;
}
