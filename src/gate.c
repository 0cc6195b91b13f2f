/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "gate.h"
#include "attest.h"
#include "audit.h"
#include "handles.h"
#include "log.h"
#include "ungated.h"

#include <p11-warden/p11-warden.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATE_LABEL_MAX 256
#define GATE_ID_MAX 256

#define BACKEND_FL(s) ((s)->slot->backend.fl)

/* What the gate reads of a key; enough for RFC 7512 matching. */
struct key_facts {
	CK_OBJECT_CLASS klass;
	CK_BBOOL sensitive;
	CK_BYTE label[GATE_LABEL_MAX];
	CK_BYTE id[GATE_ID_MAX];
	CK_ATTRIBUTE attrs[3];       /* class, label, id: for p11_kit_uri_match_attributes */
	bool label_ok, id_ok;        /* read (or set) whole */
	bool class_ok;
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
	case GATE_WRAPPING: return "wrap-with";
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

/*
 * Signature mechanisms that never apply a key to a value the caller
 * chooses whole: they pad (PKCS#1 v1.5 type 1, PSS) or hash first, or are
 * (EC)DSA and EdDSA, whose output is no function an attacker can invert.
 * With them a gated private key may sign and a public key verify.  Every
 * other mechanism is a release path for a gated key: raw RSA
 * (CKM_RSA_X_509) is decryption by another name (libp11 falls back to it
 * when OAEP is refused), and any use of a secret key can serve as an
 * oracle (encrypting in CTR/GCM/OFB/CFB mode decrypts; ECB, CBC, CMAC or
 * wrapping under the key give the block function).
 */
static bool
signature_mechanism (CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_RSA_PKCS:
	case CKM_RSA_PKCS_PSS:
	case CKM_SHA1_RSA_PKCS:
	case CKM_SHA224_RSA_PKCS:
	case CKM_SHA256_RSA_PKCS:
	case CKM_SHA384_RSA_PKCS:
	case CKM_SHA512_RSA_PKCS:
	case CKM_SHA1_RSA_PKCS_PSS:
	case CKM_SHA224_RSA_PKCS_PSS:
	case CKM_SHA256_RSA_PKCS_PSS:
	case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_SHA512_RSA_PKCS_PSS:
	case CKM_ECDSA:
	case CKM_ECDSA_SHA1:
	case CKM_ECDSA_SHA224:
	case CKM_ECDSA_SHA256:
	case CKM_ECDSA_SHA384:
	case CKM_ECDSA_SHA512:
	case CKM_EDDSA:
	case CKM_DSA:
	case CKM_DSA_SHA1:
		return true;
	default:
		return false;
	}
}

/* The key type a signature or public-key encryption mechanism needs. */
static CK_KEY_TYPE
mechanism_key_type (CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_ECDSA:
	case CKM_ECDSA_SHA1:
	case CKM_ECDSA_SHA224:
	case CKM_ECDSA_SHA256:
	case CKM_ECDSA_SHA384:
	case CKM_ECDSA_SHA512:
		return CKK_EC;
	case CKM_EDDSA:
		return CKK_EC_EDWARDS;
	case CKM_DSA:
	case CKM_DSA_SHA1:
		return CKK_DSA;
	default:
		return CKK_RSA;
	}
}

/*
 * A use the gate lets through without asking about the key (a signature,
 * a verification, a public-key encryption) still needs the right kind of
 * key: SoftHSM 2.6 accepts C_SignInit with PSS or DSA on a secret key and
 * then crashes in C_Sign.  The class and key type are read once per handle
 * (they never change) and kept with it (handles.c).
 */
static CK_RV
key_fits_mechanism (struct session *s, CK_OBJECT_HANDLE key, enum gate_use use,
                    CK_MECHANISM_TYPE mechanism, CK_RV invalid_rv)
{
	CK_OBJECT_CLASS klass = 0, want;
	CK_KEY_TYPE type = 0;
	CK_RV rv;

	if (!handles_type (s->slot->id, key, &klass, &type)) {
		CK_ATTRIBUTE t[2] = {
			{ CKA_CLASS, &klass, sizeof klass },
			{ CKA_KEY_TYPE, &type, sizeof type },
		};
		rv = s->slot->backend.fl->C_GetAttributeValue (s->bs, key, t, 2);
		if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID)
			return invalid_rv;
		if (rv != CKR_OK || t[0].ulValueLen != sizeof klass || t[1].ulValueLen != sizeof type)
			return CKR_KEY_TYPE_INCONSISTENT; /* not a key */
		handles_set_type (s->slot->id, key, klass, type);
	}
	want = (use == GATE_SIGN || use == GATE_SIGN_RECOVER) ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
	if (klass != want || type != mechanism_key_type (mechanism))
		return CKR_KEY_TYPE_INCONSISTENT;
	return CKR_OK;
}

/*
 * Derivation mechanisms whose parameters hold no key handle.  Others
 * (CKM_CONCATENATE_BASE_AND_KEY, the MQV and hybrid DH derivations, KIP,
 * SP 800-108 with key-handle data, HKDF with a salt key, vendor ones) take
 * a second key the gate would not see, and are refused in a gated slot.
 */
static bool
derive_mechanism_known (CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_ECDH1_DERIVE:
	case CKM_ECDH1_COFACTOR_DERIVE:
	case CKM_DH_PKCS_DERIVE:
	case CKM_CONCATENATE_BASE_AND_DATA:
	case CKM_CONCATENATE_DATA_AND_BASE:
	case CKM_XOR_BASE_AND_DATA:
	case CKM_EXTRACT_KEY_FROM_KEY:
	case CKM_AES_ECB_ENCRYPT_DATA:
	case CKM_AES_CBC_ENCRYPT_DATA:
	case CKM_DES3_ECB_ENCRYPT_DATA:
	case CKM_DES3_CBC_ENCRYPT_DATA:
	case CKM_SHA1_KEY_DERIVATION:
	case CKM_SHA256_KEY_DERIVATION:
	case CKM_SHA384_KEY_DERIVATION:
	case CKM_SHA512_KEY_DERIVATION:
		return true;
	default:
		return false;
	}
}

/* Does this use, with this mechanism, release plaintext or key material
 * (or could it change which keys are gated)?  Decided without the backend
 * where possible: signing with a padded or hashed mechanism never
 * releases. */
static bool
may_release (enum gate_use use, CK_MECHANISM_TYPE mechanism)
{
	switch (use) {
	case GATE_DECRYPT:
	case GATE_UNWRAP:
	case GATE_DERIVE:
	case GATE_WRAP:
	case GATE_WRAPPING:
	case GATE_DIGEST_KEY:
	case GATE_READ_SECRET:
	case GATE_CHANGE_IDENTITY:
	case GATE_COPY:
		return true;
	case GATE_SIGN:
	case GATE_SIGN_RECOVER:
	case GATE_VERIFY:
	case GATE_VERIFY_RECOVER:
		return !signature_mechanism (mechanism);
	case GATE_ENCRYPT:
		/* Public-key encryption; a private or secret key is checked. */
		return !(mechanism == CKM_RSA_PKCS || mechanism == CKM_RSA_PKCS_OAEP);
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
	f->class_ok = true;
	f->label_ok = t[1].ulValueLen <= sizeof f->label;
	f->id_ok = t[2].ulValueLen <= sizeof f->id;
	f->have_sensitive = t[3].ulValueLen == sizeof f->sensitive;
	memcpy (f->attrs, t, sizeof f->attrs);
	return CKR_OK;
}

/* ------------------------------------------------------------ memory */

void
gate_configure (const struct conf *conf)
{
	ungated_configure (conf->gate_cache_ms);
}

void
gate_forget_object (struct slot *slot, CK_OBJECT_HANDLE object)
{
	ungated_forget_object (slot->id, object);
}

void
gate_renamed (struct session *s, CK_OBJECT_HANDLE object)
{
	ungated_renamed (s->slot->id, object);
}

void
gate_forget_session (struct slot *slot, CK_SESSION_HANDLE session)
{
	ungated_forget_session (slot->id, session);
	attest_forget_session (session);
}

void
gate_reset (bool after_fork)
{
	ungated_reset (after_fork);
}

static bool
facts_complete (const struct key_facts *f)
{
	return f->class_ok && f->label_ok && f->id_ok;
}

static bool uri_ungated (struct session *s, const struct key_facts *f);

/* Is this key gated by the slot's configuration?  A key is gated unless an
 * `ungated` URI names it; a key whose label or id cannot be read whole is
 * gated (it cannot be matched reliably). */
static bool
configured_gated (struct session *s, const struct key_facts *f)
{
	const struct conf_slot *c = s->slot->conf;

	if (!c->gated)
		return false;
	if (!facts_complete (f) || c->n_ungated == 0)
		return true;
	return !uri_ungated (s, f);
}

/* Does an `ungated` URI name a key with these facts? */
static bool
uri_ungated (struct session *s, const struct key_facts *f)
{
	const struct conf_slot *c = s->slot->conf;
	CK_TOKEN_INFO ti;

	slot_match_info (s->slot, &ti);
	for (size_t i = 0; i < c->n_ungated; i++) {
		if (p11_kit_uri_match_token_info (c->ungated[i].uri, &ti) == 1 &&
		    p11_kit_uri_match_attributes (c->ungated[i].uri, f->attrs, 3) == 1)
			return true;
	}
	return false;
}

/* Printable form of a label for the log: non-printable bytes escaped. */
static void
describe_key (const struct key_facts *f, char *out, size_t len)
{
	size_t o = 0;
	CK_ULONG n = f->attrs[1].ulValueLen;

	if (!f->label_ok || n > sizeof f->label) {
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

/* The policy operation a gated use falls under.  Every use that reaches
 * the gate of a gated private or secret key releases something, except a
 * padded or hashed signature (which reaches it only when a policy gates
 * "sign"): encryption, MACs and raw signatures with a secret key are
 * oracles, so they count as decryption. */
static enum policy_op
policy_op_of (enum gate_use use, CK_MECHANISM_TYPE mechanism)
{
	switch (use) {
	case GATE_DECRYPT: return POLICY_OP_DECRYPT;
	case GATE_UNWRAP: return POLICY_OP_UNWRAP;
	case GATE_DERIVE: return POLICY_OP_DERIVE;
	case GATE_WRAP:
	case GATE_WRAPPING: return POLICY_OP_WRAP;
	case GATE_DIGEST_KEY: return POLICY_OP_DIGEST_KEY;
	case GATE_READ_SECRET: return POLICY_OP_READ_SECRET;
	case GATE_SIGN:
	case GATE_SIGN_RECOVER:
		if (signature_mechanism (mechanism))
			return POLICY_OP_SIGN;
		return mechanism == CKM_RSA_X_509 ? POLICY_OP_RAW_SIGN : POLICY_OP_DECRYPT;
	case GATE_ENCRYPT:
	case GATE_VERIFY:
	case GATE_VERIFY_RECOVER:
	case GATE_CHANGE_IDENTITY:
	case GATE_COPY:
		return POLICY_OP_DECRYPT;
	}
	return POLICY_OP_DECRYPT;
}

#define BINDING_DEFAULT ((size_t)-1)  /* the slot's `policy` */
#define BINDING_UNKNOWN ((size_t)-2)  /* the key's name cannot be read whole */

/* Which binding names a key: the index of the first `key-policy` whose URI
 * matches it, BINDING_DEFAULT, or BINDING_UNKNOWN when bindings exist
 * and the key's label, id or class cannot be read whole (it could be any
 * of them: falling to the default would let an unreadable name choose a
 * weaker policy). */
static size_t
key_binding (struct session *s, const struct key_facts *f)
{
	const struct conf_slot *c = s->slot->conf;
	CK_TOKEN_INFO ti;

	if (c->n_bindings == 0)
		return BINDING_DEFAULT;
	if (!facts_complete (f))
		return BINDING_UNKNOWN;
	slot_match_info (s->slot, &ti);
	for (size_t i = 0; i < c->n_bindings; i++) {
		if (p11_kit_uri_match_token_info (c->bindings[i].uri.uri, &ti) == 1 &&
		    p11_kit_uri_match_attributes (c->bindings[i].uri.uri, f->attrs, 3) == 1)
			return i;
	}
	return BINDING_DEFAULT;
}

/* The policy name binding @b stands for (NULL: none). */
static const char *
binding_policy (const struct conf_slot *c, size_t b)
{
	if (b == BINDING_UNKNOWN)
		return NULL;
	return b == BINDING_DEFAULT ? c->policy : c->bindings[b].policy;
}

/* The policy a gated key is bound to (key_binding); -1 when there is none. */
static int
key_policy (struct session *s, const struct key_facts *f, const char **name)
{
	*name = binding_policy (s->slot->conf, key_binding (s, f));
	return *name ? attest_policy_index (*name) : -1;
}

/* A gated key bound to policy @policy: is there a live verdict?  Every
 * decision goes to the audit ledger; a release that cannot be recorded
 * is refused. */
static CK_RV
check_verdict (struct session *s, int policy, enum gate_use use, CK_MECHANISM_TYPE mechanism,
               enum policy_op op, const char *what, const struct ungated_names *names)
{
	char reason[ATTEST_REASON_MAX], pname[CONF_NAME_MAX + 1] = "";
	unsigned char digest[POLICY_DIGEST_LEN];
	bool have_digest = false;
	struct audit_key key = { names->id, names->id_len, names->label, names->label_len };
	const char *op_name = policy_op_name (op);
	CK_RV rv;

	if (policy < 0) {
		snprintf (reason, sizeof reason, "the key is gated and no policy is bound to it (set "
		          "'policy' or 'key-policy' for the slot; with 'key-policy' lines, a key whose "
		          "name cannot be read whole matches none)");
		goto deny;
	}
	have_digest = attest_policy_about (policy, pname, sizeof pname, digest);
	if (op >= POLICY_OP_ENCRYPT && !attest_policy_gates (policy, op))
		return CKR_OK;
	if (!audit_ready (reason, sizeof reason))
		goto deny;
	rv = attest_check (s, policy, reason, sizeof reason);
	if (rv == CKR_OK) {
		if (!audit_decision (s->slot->conf->name, true, op_name, true, mechanism, &key, pname,
		                     have_digest ? digest : NULL, "live verdict")) {
			snprintf (reason, sizeof reason, "the release could not be recorded in the audit "
			          "ledger");
			goto deny_unrecorded;
		}
		log_debug ("slot '%s': %s of key %s: released under policy '%s'", s->slot->conf->name,
		           gate_use_name (use), what, pname);
		return CKR_OK;
	}
deny:
	(void)audit_decision (s->slot->conf->name, false, op_name, true, mechanism, &key,
	                      pname[0] ? pname : NULL, have_digest ? digest : NULL, reason);
deny_unrecorded:
	log_warning ("slot '%s': denied %s (mechanism 0x%lx%s%s) of key %s: %s", s->slot->conf->name,
	             gate_use_name (use), (unsigned long)mechanism, log_ckm_name (mechanism) ? " " : "",
	             log_ckm_name (mechanism) ? log_ckm_name (mechanism) : "", what, reason);
	return P11W_CKR_DENIED;
}

/* The names the audit records carry, from what the gate read. */
static void
names_of (const struct key_facts *f, struct ungated_names *n)
{
	memset (n, 0, sizeof *n);
	if (f->id_ok && f->attrs[2].ulValueLen <= sizeof n->id) {
		n->id_len = f->attrs[2].ulValueLen;
		memcpy (n->id, f->id, n->id_len);
	}
	if (f->label_ok && f->attrs[1].ulValueLen <= sizeof n->label) {
		n->label_len = f->attrs[1].ulValueLen;
		memcpy (n->label, f->label, n->label_len);
	}
}

CK_RV
gate_authorize (struct session *s, CK_OBJECT_HANDLE key, enum gate_use use,
                CK_MECHANISM_TYPE mechanism, CK_RV invalid_rv, bool *ungated)
{
	struct key_facts f;
	char what[GATE_LABEL_MAX * 4 + 32];
	const char *policy_name = NULL;
	struct ungated_names names;
	unsigned long epoch;
	int policy;
	CK_RV rv;

	if (ungated)
		*ungated = false;
	if (key == CK_INVALID_HANDLE)
		return invalid_rv;
	if (!may_release (use, mechanism)) {
		rv = key_fits_mechanism (s, key, use, mechanism, invalid_rv);
		/* Signatures pass, unless a policy gates them too: then a
		 * gated key's signature needs a verdict like a release. */
		if (rv != CKR_OK || !s->slot->conf->gated ||
		    (use != GATE_SIGN && use != GATE_SIGN_RECOVER) || !attest_any_policy_gates_sign ())
			return rv;
	}
	/* In every slot, gated or not: a key handle in the parameters is
	 * checked by no one (the backend may even take one of another slot's
	 * keys, see handles.h). */
	if (use == GATE_DERIVE && !derive_mechanism_known (mechanism)) {
		log_warning ("slot '%s': denied derive (mechanism 0x%lx%s%s): its parameters may name "
		             "a second key, which p11-warden does not allow", s->slot->conf->name,
		             (unsigned long)mechanism, log_ckm_name (mechanism) ? " " : "",
		             log_ckm_name (mechanism) ? log_ckm_name (mechanism) : "");
		return P11W_CKR_DENIED;
	}
	if (!s->slot->conf->gated) {
		/* The whole slot is ungated by configuration (its children need
		 * no record: they are in the same slot). */
		return CKR_OK;
	}
	if (ungated_lookup (s->slot->id, key)) {
		/* Found ungated recently, or made from an ungated key. */
		if (ungated)
			*ungated = true;
		return CKR_OK;
	}
	if (ungated_lookup_policy (s->slot->id, key, &policy, &names)) {
		/* Found gated recently, bound to this policy. */
		snprintf (what, sizeof what, "handle %lu", (unsigned long)key);
		return check_verdict (s, policy, use, mechanism, policy_op_of (use, mechanism), what,
		                      &names);
	}

	epoch = ungated_epoch ();
	rv = read_facts (s, key, &f);
	if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID)
		return invalid_rv;
	if (rv != CKR_OK) {
		log_warning ("slot '%s': denied %s: cannot read the key's attributes (0x%lx)",
		             s->slot->conf->name, gate_use_name (use), (unsigned long)rv);
		return P11W_CKR_DENIED;
	}

	/* Public material is public, whatever is done with it. */
	if (f.klass == CKO_PUBLIC_KEY || f.klass == CKO_CERTIFICATE ||
	    f.klass == CKO_DOMAIN_PARAMETERS)
		return CKR_OK;
	/* A sensitive attribute is refused by the backend itself
	 * (CKR_ATTRIBUTE_SENSITIVE). */
	if (use == GATE_READ_SECRET && f.have_sensitive && f.sensitive == CK_TRUE)
		return CKR_OK;

	describe_key (&f, what, sizeof what);
	if (!configured_gated (s, &f)) {
		log_debug ("slot '%s': %s of key %s: ungated by configuration", s->slot->conf->name,
		           gate_use_name (use), what);
		ungated_note_decision (s->slot->id, key, epoch);
		if (ungated)
			*ungated = true;
		return CKR_OK;
	}

	/* A gated key: released only under a live verdict for its policy. */
	policy = key_policy (s, &f, &policy_name);
	names_of (&f, &names);
	ungated_note_policy (s->slot->id, key, epoch, policy, &names);
	return check_verdict (s, policy, use, mechanism, policy_op_of (use, mechanism), what, &names);
}

/* Is @key released without evidence: by configuration, or as the child of
 * such a key?  Any doubt (unreadable attributes) answers no. */
bool
gate_key_is_ungated (struct session *s, CK_OBJECT_HANDLE key)
{
	struct key_facts f;
	if (!s->slot->conf->gated)
		return true;
	if (read_facts (s, key, &f) != CKR_OK)
		return false;
	return !configured_gated (s, &f) || ungated_lookup (s->slot->id, key);
}

void
gate_note_child (struct session *s, CK_OBJECT_HANDLE child, int is_token)
{
	CK_BBOOL token = CK_TRUE;
	CK_ATTRIBUTE a = { CKA_TOKEN, &token, sizeof token };
	if (!s->slot->conf->gated || child == CK_INVALID_HANDLE)
		return;
	/* A session object dies with its session; a token object is recorded
	 * without an owner (and forgotten when destroyed through us).  In
	 * doubt, a token object: its record outlives the key, never the
	 * reverse. */
	if (is_token >= 0)
		token = is_token ? CK_TRUE : CK_FALSE;
	else if (BACKEND_FL (s)->C_GetAttributeValue (s->bs, child, &a, 1) != CKR_OK)
		token = CK_TRUE;
	if (!ungated_note_child (s->slot->id, child, token == CK_TRUE ? 0 : s->handle))
		log_warning ("slot '%s': cannot record a key made from an ungated key (too many); "
		             "it stays gated", s->slot->conf->name);
}

/* Apply a template's naming attributes to @f (a copy of the object's
 * facts): the facts the object, or its copy, would have afterwards. */
static void
apply_names (struct key_facts *f, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	/* The copy's attribute array must point into the copy. */
	f->attrs[0].pValue = &f->klass;
	f->attrs[1].pValue = f->label;
	f->attrs[2].pValue = f->id;
	for (CK_ULONG i = 0; i < count; i++) {
		const CK_ATTRIBUTE *t = &templ[i];
		if (t->type != CKA_LABEL && t->type != CKA_ID && t->type != CKA_CLASS)
			continue;
		bool *ok = t->type == CKA_CLASS ? &f->class_ok : t->type == CKA_LABEL ? &f->label_ok : &f->id_ok;
		/* Each attribute the template sets is known afterwards exactly
		 * when the template's value can be read whole; a later setting
		 * of the same attribute replaces an earlier one. */
		if ((!t->pValue && t->ulValueLen) ||
		    (t->type == CKA_CLASS && t->ulValueLen != sizeof f->klass) ||
		    (t->type != CKA_CLASS && t->ulValueLen > GATE_LABEL_MAX)) {
			*ok = false;
			continue;
		}
		if (t->type == CKA_CLASS) {
			memcpy (&f->klass, t->pValue, sizeof f->klass);
		} else {
			CK_BYTE *dst = t->type == CKA_LABEL ? f->label : f->id;
			CK_ATTRIBUTE *a = &f->attrs[t->type == CKA_LABEL ? 1 : 2];
			if (t->ulValueLen)
				memcpy (dst, t->pValue, t->ulValueLen);
			a->ulValueLen = t->ulValueLen;
		}
		*ok = true;
	}
}

/*
 * Could the names this template sets bind the key to another policy,
 * together with some other rename?  As names_could_ungate, for the
 * `key-policy` URIs: a binding to another policy than @current's that
 * constrains a name the template sets, and matches the new names alone.
 */
static bool
names_could_rebind (struct session *s, const struct key_facts *after, const CK_ATTRIBUTE *templ,
                    CK_ULONG count, size_t current)
{
	const struct conf_slot *c = s->slot->conf;
	const char *cur = binding_policy (c, current);
	CK_ATTRIBUTE set[3];
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	bool label = false, id = false;

	for (CK_ULONG i = 0; i < count; i++) {
		label = label || templ[i].type == CKA_LABEL;
		id = id || templ[i].type == CKA_ID;
	}
	set[n++] = after->attrs[0];
	if (label)
		set[n++] = after->attrs[1];
	if (id)
		set[n++] = after->attrs[2];
	slot_match_info (s->slot, &ti);
	for (size_t i = 0; i < c->n_bindings; i++) {
		P11KitUri *uri = c->bindings[i].uri.uri;
		if (cur && !strcmp (c->bindings[i].policy, cur))
			continue;
		if (!(label && p11_kit_uri_get_attribute (uri, CKA_LABEL)) &&
		    !(id && p11_kit_uri_get_attribute (uri, CKA_ID)))
			continue;
		if (p11_kit_uri_match_token_info (uri, &ti) == 1 &&
		    p11_kit_uri_match_attributes (uri, set, n) == 1)
			return true;
	}
	return false;
}

/*
 * Could the names this template sets ungate the key together with some
 * other rename?  Two renames can run at once (one setting the label,
 * another the id, in two sessions or processes), and each alone may leave
 * the key gated while together they ungate it.  So the names a template
 * sets are matched against the `ungated` URIs on their own, with the
 * class the key will have, ignoring the attributes it leaves alone:
 * whichever rename lands last is then refused.
 */
static bool
names_could_ungate (struct session *s, const struct key_facts *after, const CK_ATTRIBUTE *templ,
                    CK_ULONG count)
{
	const struct conf_slot *c = s->slot->conf;
	CK_ATTRIBUTE set[3];
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	bool label = false, id = false;

	for (CK_ULONG i = 0; i < count; i++) {
		label = label || templ[i].type == CKA_LABEL;
		id = id || templ[i].type == CKA_ID;
	}
	set[n++] = after->attrs[0];
	if (label)
		set[n++] = after->attrs[1];
	if (id)
		set[n++] = after->attrs[2];
	slot_match_info (s->slot, &ti);
	for (size_t i = 0; i < c->n_ungated; i++) {
		P11KitUri *uri = c->ungated[i].uri;
		/* A URI that constrains none of the names this template sets
		 * does not depend on this rename (a rename that does set them
		 * is checked when it comes). */
		if (!(label && p11_kit_uri_get_attribute (uri, CKA_LABEL)) &&
		    !(id && p11_kit_uri_get_attribute (uri, CKA_ID)))
			continue;
		if (p11_kit_uri_match_token_info (uri, &ti) == 1 &&
		    p11_kit_uri_match_attributes (uri, set, n) == 1)
			return true;
	}
	return false;
}

CK_RV
gate_authorize_rename (struct session *s, CK_OBJECT_HANDLE object, enum gate_use use,
                       CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	struct key_facts now, after;
	char what[GATE_LABEL_MAX * 4 + 32];
	CK_RV rv;

	if (!s->slot->conf->gated)
		return CKR_OK;
	if (object == CK_INVALID_HANDLE)
		return CKR_OBJECT_HANDLE_INVALID;
	rv = read_facts (s, object, &now);
	if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID)
		return CKR_OBJECT_HANDLE_INVALID;
	if (rv != CKR_OK) {
		log_warning ("slot '%s': denied %s: cannot read the object's attributes (0x%lx)",
		             s->slot->conf->name, gate_use_name (use), (unsigned long)rv);
		return P11W_CKR_DENIED;
	}
	if (!configured_gated (s, &now) || ungated_is_child (s->slot->id, object))
		return CKR_OK; /* ungated now: its name does not matter to the gate */
	after = now;
	apply_names (&after, templ, count);
	/* Allowed only when the new name is known whole and still gated: a
	 * name the gate cannot read whole counts as gated when the key is
	 * used, so accepting one here would let a second rename start from a
	 * "gated" key the gate cannot see the name of. */
	if (facts_complete (&after) && configured_gated (s, &after) &&
	    !names_could_ungate (s, &after, templ, count)) {
		/* Gated before and after, whatever else renames it; and under
		 * the same policy: a new name must not move a key from a strict
		 * `key-policy` to a weaker one (nor may a copy be made under
		 * one). */
		const struct conf_slot *c = s->slot->conf;
		size_t b_now, b_after;
		const char *p_now, *p_after;
		if (c->n_bindings == 0)
			return CKR_OK;
		b_now = key_binding (s, &now);
		b_after = key_binding (s, &after);
		p_now = binding_policy (c, b_now);
		p_after = binding_policy (c, b_after);
		if (b_now != BINDING_UNKNOWN &&
		    (p_now == p_after || (p_now && p_after && !strcmp (p_now, p_after))) &&
		    !names_could_rebind (s, &after, templ, count, b_now))
			return CKR_OK;
		describe_key (&now, what, sizeof what);
		log_warning ("slot '%s': denied %s of key %s: the new label, id or class would bind "
		             "the key to another policy ('%s' -> '%s')", s->slot->conf->name,
		             gate_use_name (use), what, p_now ? p_now : "(none)",
		             p_after ? p_after : "(none)");
		return P11W_CKR_DENIED;
	}
	describe_key (&now, what, sizeof what);
	if (!facts_complete (&after))
		log_warning ("slot '%s': denied %s of key %s: the new label, id or class cannot be "
		             "checked (malformed, or longer than %d bytes)", s->slot->conf->name,
		             gate_use_name (use), what, GATE_LABEL_MAX);
	else
		log_warning ("slot '%s': denied %s of key %s: the new label, id or class would move a "
		             "gated key under an ungated name", s->slot->conf->name,
		             gate_use_name (use), what);
	return P11W_CKR_DENIED;
}

CK_RV
gate_authorize_find (struct session *s, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	bool secret = false, public_class = false, other_class = false;

	if (!s->slot->conf->gated)
		return CKR_OK;
	for (CK_ULONG i = 0; i < count; i++) {
		if (gate_is_secret_attribute (templ[i].type))
			secret = true;
		if (templ[i].type == CKA_CLASS && templ[i].pValue &&
		    templ[i].ulValueLen == sizeof (CK_OBJECT_CLASS)) {
			CK_OBJECT_CLASS c;
			memcpy (&c, templ[i].pValue, sizeof c);
			if (c == CKO_CERTIFICATE || c == CKO_PUBLIC_KEY || c == CKO_DOMAIN_PARAMETERS)
				public_class = true;
			else
				other_class = true;
		} else if (templ[i].type == CKA_CLASS) {
			other_class = true;
		}
	}
	/* Every class the template names must be public. */
	if (!secret || (public_class && !other_class))
		return CKR_OK;
	log_warning ("slot '%s': denied find: the search template holds a secret attribute "
	             "(a search by key value would test guesses of gated keys)",
	             s->slot->conf->name);
	return P11W_CKR_DENIED;
}
