/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "gate.h"
#include "log.h"

#include <p11-warden/p11-warden.h>

#include <pthread.h>
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

/* ------------------------------------------------------------ children */

#define CHILD_BUCKETS 1024
#define CHILD_MAX 100000 /* beyond this, new children stay gated (fail closed) */

struct child {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE object;
	CK_SESSION_HANDLE owner;   /* session of a session object; 0 for token objects */
	struct child *next;
};

static struct {
	pthread_mutex_t lock;
	struct child *buckets[CHILD_BUCKETS];
	size_t count;
} children = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned int
child_bucket (CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	return (unsigned int)((object * 31 + slot) % CHILD_BUCKETS);
}

static bool
is_ungated_child (struct slot *slot, CK_OBJECT_HANDLE object)
{
	bool found = false;
	pthread_mutex_lock (&children.lock);
	for (struct child *c = children.buckets[child_bucket (slot->id, object)]; c; c = c->next) {
		if (c->slot == slot->id && c->object == object) {
			found = true;
			break;
		}
	}
	pthread_mutex_unlock (&children.lock);
	return found;
}

/* Remove the records matching @match (under the lock). */
static void
forget_where (bool (*match) (const struct child *, CK_SLOT_ID, CK_ULONG), CK_SLOT_ID slot,
              CK_ULONG arg)
{
	pthread_mutex_lock (&children.lock);
	for (unsigned int i = 0; i < CHILD_BUCKETS; i++) {
		struct child **p = &children.buckets[i];
		while (*p) {
			if (match (*p, slot, arg)) {
				struct child *dead = *p;
				*p = dead->next;
				free (dead);
				children.count--;
			} else {
				p = &(*p)->next;
			}
		}
	}
	pthread_mutex_unlock (&children.lock);
}

static bool
match_object (const struct child *c, CK_SLOT_ID slot, CK_ULONG object)
{
	return c->slot == slot && c->object == object;
}

static bool
match_owner (const struct child *c, CK_SLOT_ID slot, CK_ULONG session)
{
	return c->slot == slot && c->owner == session;
}

static bool
match_all (const struct child *c, CK_SLOT_ID slot, CK_ULONG unused)
{
	return true;
}

void
gate_forget_object (struct slot *slot, CK_OBJECT_HANDLE object)
{
	/* Only the bucket of this object can hold it. */
	pthread_mutex_lock (&children.lock);
	struct child **p = &children.buckets[child_bucket (slot->id, object)];
	while (*p) {
		if (match_object (*p, slot->id, object)) {
			struct child *dead = *p;
			*p = dead->next;
			free (dead);
			children.count--;
		} else {
			p = &(*p)->next;
		}
	}
	pthread_mutex_unlock (&children.lock);
}

void
gate_forget_session (struct slot *slot, CK_SESSION_HANDLE session)
{
	forget_where (match_owner, slot->id, session);
}

void
gate_reset (bool after_fork)
{
	if (after_fork) {
		/* The lock may be held by a thread that does not exist here. */
		pthread_mutex_init (&children.lock, NULL);
		memset (children.buckets, 0, sizeof children.buckets);
		children.count = 0;
		return;
	}
	forget_where (match_all, 0, 0);
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
	if (!f->complete || c->n_ungated == 0)
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
	if (is_ungated_child (s->slot, key)) {
		log_debug ("slot '%s': %s of key %s: made from an ungated key", s->slot->conf->name,
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

/* Is @key released without evidence: by configuration, or as the child of
 * such a key?  Any doubt (unreadable attributes) answers no. */
static bool
key_is_ungated (struct session *s, CK_OBJECT_HANDLE key)
{
	struct key_facts f;
	if (!s->slot->conf->gated)
		return true;
	if (read_facts (s, key, &f) != CKR_OK)
		return false;
	return !configured_gated (s, &f) || is_ungated_child (s->slot, key);
}

void
gate_note_child (struct session *s, CK_OBJECT_HANDLE parent, CK_OBJECT_HANDLE child)
{
	CK_BBOOL token = CK_TRUE;
	CK_ATTRIBUTE a = { CKA_TOKEN, &token, sizeof token };
	struct child *c;
	unsigned int b;

	if (!s->slot->conf->gated || child == CK_INVALID_HANDLE || !key_is_ungated (s, parent))
		return;
	/* A session object dies with its session; a token object is recorded
	 * without an owner (and forgotten when destroyed through us). */
	if (BACKEND_FL (s)->C_GetAttributeValue (s->bs, child, &a, 1) != CKR_OK)
		token = CK_TRUE;
	c = calloc (1, sizeof *c);
	if (!c)
		return; /* the child stays gated */
	c->slot = s->slot->id;
	c->object = child;
	c->owner = token == CK_TRUE ? 0 : s->handle;
	b = child_bucket (c->slot, child);
	pthread_mutex_lock (&children.lock);
	if (children.count >= CHILD_MAX) {
		pthread_mutex_unlock (&children.lock);
		free (c);
		log_warning ("slot '%s': more than %d keys made from ungated keys; new ones stay gated",
		             s->slot->conf->name, CHILD_MAX);
		return;
	}
	c->next = children.buckets[b];
	children.buckets[b] = c;
	children.count++;
	pthread_mutex_unlock (&children.lock);
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
		if (!t->pValue && t->ulValueLen) {
			f->complete = false;
			continue;
		}
		if (t->type == CKA_CLASS) {
			if (t->ulValueLen != sizeof f->klass) {
				f->complete = false;
				continue;
			}
			memcpy (&f->klass, t->pValue, sizeof f->klass);
		} else {
			CK_BYTE *dst = t->type == CKA_LABEL ? f->label : f->id;
			CK_ATTRIBUTE *a = &f->attrs[t->type == CKA_LABEL ? 1 : 2];
			if (t->ulValueLen > GATE_LABEL_MAX) {
				f->complete = false;
				continue;
			}
			if (t->ulValueLen)
				memcpy (dst, t->pValue, t->ulValueLen);
			a->ulValueLen = t->ulValueLen;
		}
	}
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
	if (!configured_gated (s, &now) || is_ungated_child (s->slot, object))
		return CKR_OK; /* ungated now: its name does not matter to the gate */
	after = now;
	apply_names (&after, templ, count);
	if (configured_gated (s, &after))
		return CKR_OK; /* gated before and after */
	describe_key (&now, what, sizeof what);
	log_warning ("slot '%s': denied %s of key %s: the new label, id or class would move a gated "
	             "key under an ungated name", s->slot->conf->name, gate_use_name (use), what);
	return P11W_CKR_DENIED;
}
