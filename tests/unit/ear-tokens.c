/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "ear-tokens.h"

#include <cbor.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *
et_keygen (const char *curve)
{
	if (!strcmp (curve, "RSA"))
		return EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t)2048);
	return EVP_PKEY_Q_keygen (NULL, NULL, "EC", curve);
}

char *
et_read_data (const char *name, size_t *len)
{
	const char *src = getenv ("P11W_SRCDIR");
	char path[4096];
	char *buf = NULL;
	FILE *f;
	long n;

	snprintf (path, sizeof path, "%s/tests/data/ear/%s", src ? src : ".", name);
	f = fopen (path, "rb");
	if (!f)
		return NULL;
	if (fseek (f, 0, SEEK_END) == 0 && (n = ftell (f)) >= 0 && fseek (f, 0, SEEK_SET) == 0) {
		buf = malloc ((size_t)n + 1);
		if (buf && fread (buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			if (len)
				*len = (size_t)n;
		} else {
			free (buf);
			buf = NULL;
		}
	}
	fclose (f);
	return buf;
}

char *
et_b64url (const unsigned char *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc (len / 3 * 4 + 5), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		*o++ = abc[v & 63];
	}
	if (len - i == 1) {
		*o++ = abc[data[i] >> 2];
		*o++ = abc[(data[i] & 3) << 4];
	} else if (len - i == 2) {
		*o++ = abc[data[i] >> 2];
		*o++ = abc[((data[i] & 3) << 4) | data[i + 1] >> 4];
		*o++ = abc[(data[i + 1] & 15) << 2];
	}
	*o = '\0';
	return out;
}

static unsigned char *
b64url_dec (const char *s, size_t *len)
{
	size_t n = strlen (s), o = 0;
	unsigned char *out = malloc (n + 1);
	uint32_t acc = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr (abc, s[i]);
		if (!p || !s[i] || s[i] == '=') {
			free (out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)(p - abc);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*len = o;
	return out;
}

EVP_PKEY *
et_jwk_parse (const char *text, size_t len)
{
	json_object *root = json_tokener_parse (text), *v;
	unsigned char *x = NULL, *y = NULL, *d = NULL, pub[133];
	size_t xl = 0, yl = 0, dl = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *priv = NULL;
	const char *crv;

	(void)len;
	if (!root || !json_object_object_get_ex (root, "crv", &v))
		goto out;
	crv = json_object_get_string (v);
	if (!json_object_object_get_ex (root, "x", &v) ||
	    !(x = b64url_dec (json_object_get_string (v), &xl)) ||
	    !json_object_object_get_ex (root, "y", &v) ||
	    !(y = b64url_dec (json_object_get_string (v), &yl)) || xl != yl || xl > 66)
		goto out;
	if (json_object_object_get_ex (root, "d", &v) &&
	    !(d = b64url_dec (json_object_get_string (v), &dl)))
		goto out;
	pub[0] = 4;
	memcpy (pub + 1, x, xl);
	memcpy (pub + 1 + xl, y, yl);
	bld = OSSL_PARAM_BLD_new ();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string (bld, OSSL_PKEY_PARAM_GROUP_NAME,
	                                      !strcmp (crv, "P-256") ? "prime256v1"
	                                      : !strcmp (crv, "P-384") ? "secp384r1" : "secp521r1",
	                                      0) ||
	    !OSSL_PARAM_BLD_push_octet_string (bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * xl))
		goto out;
	if (d) {
		priv = BN_bin2bn (d, (int)dl, NULL);
		if (!priv || !OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))
			goto out;
	}
	params = OSSL_PARAM_BLD_to_param (bld);
	ctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init (ctx) != 1 ||
	    EVP_PKEY_fromdata (ctx, &pk, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
out:
	EVP_PKEY_CTX_free (ctx);
	OSSL_PARAM_free (params);
	OSSL_PARAM_BLD_free (bld);
	BN_clear_free (priv);
	free (x);
	free (y);
	free (d);
	json_object_put (root);
	return pk;
}

bool
et_ecdsa_sign (EVP_PKEY *key, size_t half, const unsigned char *msg, size_t len,
               unsigned char *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
	unsigned char der[160];
	const unsigned char *p = der;
	size_t der_len = sizeof der;
	ECDSA_SIG *es = NULL;
	bool ok = false;
	const EVP_MD *md = half == 32 ? EVP_sha256 () : half == 48 ? EVP_sha384 () : EVP_sha512 ();

	if (!ctx || EVP_DigestSignInit (ctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestSign (ctx, der, &der_len, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG (NULL, &p, (long)der_len);
	if (!es)
		goto out;
	ok = BN_bn2binpad (ECDSA_SIG_get0_r (es), sig, (int)half) == (int)half &&
	     BN_bn2binpad (ECDSA_SIG_get0_s (es), sig + half, (int)half) == (int)half;
out:
	ECDSA_SIG_free (es);
	EVP_MD_CTX_free (ctx);
	return ok;
}

/* The size of r or s for @key's curve. */
static size_t
key_half (EVP_PKEY *key)
{
	int bits = EVP_PKEY_get_bits (key);
	return bits <= 256 ? 32 : bits <= 384 ? 48 : 66;
}

char *
et_jws (const char *header_json, const unsigned char *payload, size_t len, const char *alg,
        EVP_PKEY *key, const unsigned char *hmac_secret, size_t secret_len)
{
	char *h = et_b64url ((const unsigned char *)header_json, strlen (header_json));
	char *p = et_b64url (payload, len), *input = NULL, *s = NULL, *out = NULL;
	unsigned char sig[600];
	size_t sig_len = 0, n;

	if (!h || !p)
		goto done;
	n = strlen (h) + 1 + strlen (p);
	input = malloc (n + 1);
	if (!input)
		goto done;
	snprintf (input, n + 1, "%s.%s", h, p);
	if (!strncmp (alg, "ES", 2) && key) {
		size_t half = !strcmp (alg, "ES256") ? 32 : !strcmp (alg, "ES384") ? 48 : 66;
		/* The key's own size: an ES256 header over a P-384 key gives a
		 * P-384 signature, which is the mismatch being tested. */
		if (key_half (key) != half)
			half = key_half (key);
		if (!et_ecdsa_sign (key, half, (unsigned char *)input, n, sig))
			goto done;
		sig_len = 2 * half;
	} else if ((!strcmp (alg, "RS256") || !strcmp (alg, "PS256")) && key) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
		EVP_PKEY_CTX *pctx = NULL;
		sig_len = sizeof sig;
		if (!ctx || EVP_DigestSignInit (ctx, &pctx, EVP_sha256 (), NULL, key) != 1 ||
		    (alg[0] == 'P' && EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1) ||
		    EVP_DigestSign (ctx, sig, &sig_len, (unsigned char *)input, n) != 1) {
			EVP_MD_CTX_free (ctx);
			goto done;
		}
		EVP_MD_CTX_free (ctx);
	} else if (!strcmp (alg, "HS256")) {
		unsigned int l = 0;
		if (!HMAC (EVP_sha256 (), hmac_secret, (int)secret_len, (unsigned char *)input, n, sig, &l))
			goto done;
		sig_len = l;
	}
	s = et_b64url (sig, sig_len);
	if (!s)
		goto done;
	out = malloc (n + 1 + strlen (s) + 1);
	if (out)
		sprintf (out, "%s.%s", input, s);
done:
	free (h);
	free (p);
	free (input);
	free (s);
	return out;
}

static unsigned char *
serialize (cbor_item_t *it, size_t *out_len)
{
	unsigned char *buf = NULL;
	size_t cap = 0;
	*out_len = cbor_serialize_alloc (it, &buf, &cap);
	if (*out_len == 0) {
		free (buf);
		return NULL;
	}
	return buf;
}

/* Integers in their shortest head, as real encoders write them. */
static cbor_item_t *
int_item (int64_t v)
{
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-1 - v);
	cbor_item_t *it;
	if (u <= UINT8_MAX)
		it = v >= 0 ? cbor_build_uint8 ((uint8_t)u) : cbor_build_negint8 ((uint8_t)u);
	else if (u <= UINT16_MAX)
		it = v >= 0 ? cbor_build_uint16 ((uint16_t)u) : cbor_build_negint16 ((uint16_t)u);
	else if (u <= UINT32_MAX)
		it = v >= 0 ? cbor_build_uint32 ((uint32_t)u) : cbor_build_negint32 ((uint32_t)u);
	else
		it = v >= 0 ? cbor_build_uint64 (u) : cbor_build_negint64 (u);
	return it;
}

static bool
map_add (cbor_item_t *m, cbor_item_t *k, cbor_item_t *v)
{
	bool ok = k && v && cbor_map_add (m, (struct cbor_pair){ .key = k, .value = v });
	if (k)
		cbor_decref (&k);
	if (v)
		cbor_decref (&v);
	return ok;
}

unsigned char *
et_cose (EVP_PKEY *key, int64_t alg, const unsigned char *kid, size_t kid_len,
         const unsigned char *payload, size_t len, bool cwt, size_t *out_len)
{
	cbor_item_t *prot_map = cbor_new_definite_map (1), *unprot = cbor_new_definite_map (kid ? 1 : 0);
	cbor_item_t *arr = cbor_new_definite_array (4), *tbs = cbor_new_definite_array (4);
	cbor_item_t *tag = NULL, *outer = NULL;
	unsigned char *prot = NULL, *tbs_buf = NULL, sig[132], *out = NULL;
	size_t prot_len = 0, tbs_len = 0, half = key ? key_half (key) : 32;

	(void)alg;
	if (!prot_map || !unprot || !arr || !tbs)
		goto done;
	if (!map_add (prot_map, cbor_build_uint8 (1), int_item (alg)))
		goto done;
	if (kid && !map_add (unprot, cbor_build_uint8 (4), cbor_build_bytestring (kid, kid_len)))
		goto done;
	prot = serialize (prot_map, &prot_len);
	if (!prot)
		goto done;
	{
		cbor_item_t *ctx = cbor_build_string ("Signature1"), *p = cbor_build_bytestring (prot, prot_len);
		cbor_item_t *aad = cbor_build_bytestring (NULL, 0), *pl = cbor_build_bytestring (payload, len);
		bool ok = ctx && p && aad && pl && cbor_array_push (tbs, ctx) && cbor_array_push (tbs, p) &&
		          cbor_array_push (tbs, aad) && cbor_array_push (tbs, pl);
		cbor_decref (&ctx);
		cbor_decref (&p);
		cbor_decref (&aad);
		cbor_decref (&pl);
		if (!ok)
			goto done;
	}
	tbs_buf = serialize (tbs, &tbs_len);
	if (!tbs_buf || !key || !et_ecdsa_sign (key, half, tbs_buf, tbs_len, sig))
		goto done;
	{
		cbor_item_t *p = cbor_build_bytestring (prot, prot_len), *pl = cbor_build_bytestring (payload, len);
		cbor_item_t *s = cbor_build_bytestring (sig, 2 * half);
		bool ok = p && pl && s && cbor_array_push (arr, p) && cbor_array_push (arr, unprot) &&
		          cbor_array_push (arr, pl) && cbor_array_push (arr, s);
		cbor_decref (&p);
		cbor_decref (&pl);
		cbor_decref (&s);
		if (!ok)
			goto done;
	}
	tag = cbor_build_tag (18, arr);
	outer = cwt ? cbor_build_tag (61, tag) : NULL;
	if (!tag || (cwt && !outer))
		goto done;
	out = serialize (cwt ? outer : tag, out_len);
done:
	if (prot_map)
		cbor_decref (&prot_map);
	if (unprot)
		cbor_decref (&unprot);
	if (arr)
		cbor_decref (&arr);
	if (tbs)
		cbor_decref (&tbs);
	if (tag)
		cbor_decref (&tag);
	if (outer)
		cbor_decref (&outer);
	free (prot);
	free (tbs_buf);
	return out;
}

/* ---------------------------------------------------------------- JSON -> CBOR */

static cbor_item_t *generic (json_object *v);

static cbor_item_t *
text (const char *s)
{
	return cbor_build_string (s);
}

static cbor_item_t *
generic (json_object *v)
{
	cbor_item_t *it = NULL;
	switch (json_object_get_type (v)) {
	case json_type_int:
		return int_item (json_object_get_int64 (v));
	case json_type_boolean:
		return cbor_build_bool (json_object_get_boolean (v));
	case json_type_string:
		return text (json_object_get_string (v));
	case json_type_double:
		return cbor_build_float8 (json_object_get_double (v));
	case json_type_null:
		return cbor_new_null ();
	case json_type_array:
		it = cbor_new_definite_array (json_object_array_length (v));
		for (size_t i = 0; it && i < json_object_array_length (v); i++) {
			cbor_item_t *e = generic (json_object_array_get_idx (v, i));
			bool ok = e && cbor_array_push (it, e);
			if (e)
				cbor_decref (&e);
			if (!ok) {
				cbor_decref (&it);
				return NULL;
			}
		}
		return it;
	case json_type_object:
		it = cbor_new_definite_map ((size_t)json_object_object_length (v));
		if (!it)
			return NULL;
		json_object_object_foreach (v, k, val) {
			if (!map_add (it, text (k), generic (val))) {
				cbor_decref (&it);
				return NULL;
			}
		}
		return it;
	}
	return NULL;
}

static const char *const tv_names[] = { "instance-identity", "configuration", "executables",
	                                "file-system", "hardware", "runtime-opaque",
	                                "storage-opaque", "sourced-data" };

static cbor_item_t *
appraisal (json_object *o)
{
	cbor_item_t *m;
	if (!json_object_is_type (o, json_type_object))
		return generic (o);
	m = cbor_new_definite_map ((size_t)json_object_object_length (o));
	if (!m)
		return NULL;
	json_object_object_foreach (o, k, v) {
		cbor_item_t *key, *val;
		if (!strcmp (k, "ear.status") || !strcmp (k, "ear_status")) {
			const char *s = json_object_get_string (v);
			int64_t t = !strcmp (s, "none") ? 0 : !strcmp (s, "affirming") ? 2
			          : !strcmp (s, "warning") ? 32 : !strcmp (s, "contraindicated") ? 96 : -1;
			key = int_item (1000);
			val = json_object_is_type (v, json_type_string) && t >= 0 ? int_item (t) : generic (v);
		} else if ((!strcmp (k, "ear.trustworthiness-vector") ||
		            !strcmp (k, "ear_trustworthiness_vector")) &&
		           !json_object_is_type (v, json_type_object)) {
			key = int_item (1001);
			val = generic (v);
		} else if (!strcmp (k, "ear.trustworthiness-vector") ||
		           !strcmp (k, "ear_trustworthiness_vector")) {
			key = int_item (1001);
			val = cbor_new_definite_map ((size_t)json_object_object_length (v));
			json_object_object_foreach (v, tk, tvv) {
				int64_t idx = -1;
				for (size_t i = 0; i < 8; i++) {
					if (!strcmp (tk, tv_names[i]))
						idx = (int64_t)i;
				}
				if (!val || !map_add (val, idx >= 0 ? int_item (idx) : text (tk), generic (tvv))) {
					if (val)
						cbor_decref (&val);
					val = NULL;
					break;
				}
			}
		} else if (!strcmp (k, "ear.appraisal-policy-id") || !strcmp (k, "ear_appraisal_policy_ids")) {
			key = int_item (1003);
			val = generic (v);
		} else {
			key = text (k);
			val = generic (v);
		}
		if (!map_add (m, key, val)) {
			cbor_decref (&m);
			return NULL;
		}
	}
	return m;
}

unsigned char *
et_json_to_cbor (const char *json, size_t *out_len)
{
	json_object *root = json_tokener_parse (json);
	cbor_item_t *m = NULL;
	unsigned char *out = NULL;

	if (!root || !json_object_is_type (root, json_type_object))
		goto done;
	m = cbor_new_definite_map ((size_t)json_object_object_length (root));
	if (!m)
		goto done;
	json_object_object_foreach (root, k, v) {
		cbor_item_t *key = NULL, *val = NULL;
		if (!strcmp (k, "eat_profile")) {
			key = int_item (265);
			val = generic (v);
		} else if (!strcmp (k, "iat") || !strcmp (k, "exp") || !strcmp (k, "nbf")) {
			key = int_item (k[0] == 'i' ? 6 : k[0] == 'e' ? 4 : 5);
			val = generic (v);
		} else if (!strcmp (k, "eat_nonce") && !json_object_is_type (v, json_type_string)) {
			key = int_item (10);
			val = generic (v);
		} else if (!strcmp (k, "eat_nonce")) {
			size_t n = 0;
			unsigned char *b = b64url_dec (json_object_get_string (v), &n);
			/* Not base64url: kept as text, which is no nonce either. */
			key = int_item (10);
			val = b ? cbor_build_bytestring (b, n) : generic (v);
			free (b);
		} else if ((!strcmp (k, "ear.verifier-id") || !strcmp (k, "ear_verifier_id")) &&
		           !json_object_is_type (v, json_type_object)) {
			key = int_item (1004);
			val = generic (v);
		} else if (!strcmp (k, "ear.verifier-id") || !strcmp (k, "ear_verifier_id")) {
			key = int_item (1004);
			val = cbor_new_definite_map ((size_t)json_object_object_length (v));
			json_object_object_foreach (v, vk, vv) {
				bool known = !strcmp (vk, "developer") || !strcmp (vk, "build");
				if (!val || !map_add (val, known ? int_item (vk[0] == 'd' ? 0 : 1) : text (vk),
				                      generic (vv))) {
					if (val)
						cbor_decref (&val);
					val = NULL;
					break;
				}
			}
		} else if (!strcmp (k, "submods") && !json_object_is_type (v, json_type_object)) {
			key = int_item (266);
			val = generic (v);
		} else if (!strcmp (k, "submods")) {
			key = int_item (266);
			val = cbor_new_definite_map ((size_t)json_object_object_length (v));
			json_object_object_foreach (v, sk, sv) {
				if (!val || !map_add (val, text (sk), appraisal (sv))) {
					if (val)
						cbor_decref (&val);
					val = NULL;
					break;
				}
			}
		} else {
			key = text (k);
			val = generic (v);
		}
		if (!map_add (m, key, val))
			goto done;
	}
	out = serialize (m, out_len);
done:
	if (m)
		cbor_decref (&m);
	json_object_put (root);
	return out;
}
