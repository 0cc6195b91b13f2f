/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "gate.h"
#include "log.h"

#include <p11-warden/p11-warden.h>

#include <stdio.h>
#include <string.h>

#define GATE_LABEL_MAX 256
#define GATE_ID_MAX 256

/* What the gate reads of a key; enough for RFC 7512 matching. */
struct key_facts {
	CK_OBJECT_CLASS klass;
	CK_BBOOL sensitive;
	CK_BYTE label[GATE_LABEL_MAX];
	CK_BYTE id[GATE_ID_MAX];
	CK_ATTRIBUTE attrs[3];       /* class, label, id: for p11_kit_uri_match_attributes */
	bool complete;               /* class, label and id all read */
	bool have_sensitive;
};

const char *
gate_use_name (enum gate_use use)
{
	switch (use) {
	case GATE_DECRYPT: return "decrypt";
	case GATE_UNWRAP: return "unwrap";
	case GATE_DERIVE: return "derive";
	case GATE_WRAP: return "wrap";
	case GATE_DIGEST_KEY: return "digest-key";
	case GATE_READ_SECRET: return "read-secret";
	case GATE_SIGN: return "sign";
	case GATE_SIGN_RECOVER: return "sign-recover";
	case GATE_ENCRYPT: return "encrypt";
	case GATE_VERIFY: return "verify";
	case GATE_VERIFY_RECOVER: return "verify-recover";
	case GATE_CHANGE_IDENTITY: return "change-identity";
	case GATE_COPY: return "copy";
	}
	return "?";
}

bool
gate_is_secret_attribute (CK_ATTRIBUTE_TYPE type)
{
	switch (type) {
	case CKA_VALUE:            /* secret keys, EC/DSA/DH private keys, data objects */
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return true;
	default:
		return false;
	}
}

/* Does this use, with this mechanism, release plaintext or key material
 * (or could it change which keys are gated)?  Decided without the backend
 * where possible: signing with a PKCS#1 or PSS mechanism never releases. */
static bool
may_release (enum gate_use use, CK_MECHANISM_TYPE mechanism)
{
	switch (use) {
	case GATE_DECRYPT:
	case GATE_UNWRAP:
	case GATE_DERIVE:
	case GATE_WRAP:
	case GATE_DIGEST_KEY:
	case GATE_READ_SECRET:
	case GATE_CHANGE_IDENTITY:
	case GATE_COPY:
		return true;
	case GATE_SIGN:
	case GATE_SIGN_RECOVER:
	case GATE_ENCRYPT:
	case GATE_VERIFY:
	case GATE_VERIFY_RECOVER:
		/* Raw RSA with a private key is decryption by another name (libp11
		 * falls back to it when OAEP is refused). */
		return mechanism == CKM_RSA_X_509;
	}
	return true;
}

static CK_RV
read_facts (struct session *s, CK_OBJECT_HANDLE key, struct key_facts *f)
{
	CK_ATTRIBUTE t[4] = {
		{ CKA_CLASS, &f->klass, sizeof f->klass },
		{ CKA_LABEL, f->label, sizeof f->label },
		{ CKA_ID, f->id, sizeof f->id },
		{ CKA_SENSITIVE, &f->sensitive, sizeof f->sensitive },
	};
	CK_RV rv;

	memset (f, 0, sizeof *f);
	rv = s->slot->backend.fl->C_GetAttributeValue (s->bs, key, t, 4);
	/* These three leave every readable attribute filled in and the others
	 * marked unavailable (3.0, 5.7 C_GetAttributeValue). */
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE &&
	    rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	if (t[0].ulValueLen != sizeof f->klass)
		return CKR_GENERAL_ERROR; /* every object has a class */
	f->complete = t[1].ulValueLen <= sizeof f->label && t[2].ulValueLen <= sizeof f->id;
	f->have_sensitive = t[3].ulValueLen == sizeof f->sensitive;
	memcpy (f->attrs, t, sizeof f->attrs);
	return CKR_OK;
}

/* Is this key gated by the slot's configuration?  A key is gated unless an
 * `ungated` URI names it; a key whose label or id cannot be read whole is
 * gated (it cannot be matched reliably). */
static bool
configured_gated (struct session *s, const struct key_facts *f)
{
	const struct conf_slot *c = s->slot->conf;
	CK_TOKEN_INFO ti;

	if (!c->gated)
		return false;
	if (!f->complete || c->n_ungated == 0)
		return true;
	slot_match_info (s->slot, &ti);
	for (size_t i = 0; i < c->n_ungated; i++) {
		if (p11_kit_uri_match_token_info (c->ungated[i].uri, &ti) == 1 &&
		    p11_kit_uri_match_attributes (c->ungated[i].uri, f->attrs, 3) == 1)
			return false;
	}
	return true;
}

/* Printable form of a label for the log: non-printable bytes escaped. */
static void
describe_key (const struct key_facts *f, char *out, size_t len)
{
	size_t o = 0;
	CK_ULONG n = f->attrs[1].ulValueLen;

	if (!f->complete || n > sizeof f->label) {
		snprintf (out, len, "(label unreadable)");
		return;
	}
	o += (size_t)snprintf (out, len, "label '");
	for (CK_ULONG i = 0; i < n && o + 6 < len; i++) {
		unsigned char c = f->label[i];
		if (c >= 0x20 && c < 0x7f && c != '\'')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf (out + o, len - o, "\\x%02x", c);
	}
	snprintf (out + o, len - o, "'");
}

CK_RV
gate_authorize (struct session *s, CK_OBJECT_HANDLE key, enum gate_use use,
                CK_MECHANISM_TYPE mechanism, CK_RV invalid_rv)
{
	struct key_facts f;
	char what[GATE_LABEL_MAX * 4 + 32];
	CK_RV rv;

	if (!may_release (use, mechanism))
		return CKR_OK;
	if (key == CK_INVALID_HANDLE)
		return invalid_rv;
	if (!s->slot->conf->gated)
		return CKR_OK; /* the whole slot is ungated by configuration */

	rv = read_facts (s, key, &f);
	if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID)
		return invalid_rv;
	if (rv != CKR_OK) {
		log_warning ("slot '%s': denied %s: cannot read the key's attributes (0x%lx)",
		             s->slot->conf->name, gate_use_name (use), (unsigned long)rv);
		return P11W_CKR_DENIED;
	}

	switch (use) {
	case GATE_READ_SECRET:
		/* Public material is public; a sensitive attribute is refused by
		 * the backend itself (CKR_ATTRIBUTE_SENSITIVE). */
		if (f.klass == CKO_PUBLIC_KEY || f.klass == CKO_CERTIFICATE ||
		    f.klass == CKO_DOMAIN_PARAMETERS)
			return CKR_OK;
		if (f.have_sensitive && f.sensitive == CK_TRUE)
			return CKR_OK;
		break;
	case GATE_SIGN:
	case GATE_SIGN_RECOVER:
	case GATE_ENCRYPT:
	case GATE_VERIFY:
	case GATE_VERIFY_RECOVER:
		if (f.klass != CKO_PRIVATE_KEY)
			return CKR_OK;
		break;
	default:
		break;
	}

	describe_key (&f, what, sizeof what);
	if (!configured_gated (s, &f)) {
		log_debug ("slot '%s': %s of key %s: ungated by configuration", s->slot->conf->name,
		           gate_use_name (use), what);
		return CKR_OK;
	}

	/* A gated key.  No evidence path exists in this version, so nothing
	 * can be released: the attestation issue adds the verdict check here. */
	log_warning ("slot '%s': denied %s (mechanism 0x%lx) of key %s: the key is gated and no "
	             "attestation verdict is available", s->slot->conf->name, gate_use_name (use),
	             (unsigned long)mechanism, what);
	return P11W_CKR_DENIED;
}
