#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# GnuTLS's p11tool (gnutls-bin) with p11-warden as its provider: listing
# tokens, objects, private keys and mechanisms, key generation, and signing
# with gated keys (signing is not a release path).  p11tool has no decrypt.
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need p11tool pkcs11-tool openssl
softhsm_setup
warden_conf
warden_init
cd "$W"

U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
"${U[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa-gated >/dev/null 2>&1
"${U[@]}" --keypairgen --key-type EC:prime256v1 --id 03 --label ec-gated >/dev/null 2>&1
"${U[@]}" --keygen --key-type AES:32 --id 04 --label aes-gated --extractable >/dev/null 2>&1
"${U[@]}" --read-object --type pubkey --id 01 -o pub01.der >/dev/null 2>&1

P=(p11tool --provider "$P11W_MODULE")
TOKEN="pkcs11:token=$WARDEN_LABEL"
export GNUTLS_PIN=$WARDEN_PIN

run "${P[@]}" --list-tokens
t "--list-tokens succeeds" succeeded
t "... shows the p11-warden token" in_out "Label: $WARDEN_LABEL\$"
t "... with its URL" in_out "URL: pkcs11:model=pkcs11;manufacturer=p11-warden;serial=hsm;token=$WARDEN_LABEL"

run "${P[@]}" --list-all "$TOKEN"
t "--list-all (no login) succeeds" succeeded
t "... lists the public keys" \
	bash -c "grep -q 'object=rsa-gated;type=public' '$out' && grep -q 'object=ec-gated;type=public' '$out'"
t "... and no private key" not_in_out 'type=private'

run "${P[@]}" --login --list-all "$TOKEN"
t "--login --list-all succeeds" succeeded
t "... lists the private keys" \
	bash -c "grep -q 'object=rsa-gated;type=private' '$out' && grep -q 'object=ec-gated;type=private' '$out'"
t "... and the secret key" in_out 'object=aes-gated;type=secret-key'
t "... no crash on the refused CKA_VALUE of the extractable secret key" no_crash

run "${P[@]}" --login --list-privkeys "$TOKEN"
t "--login --list-privkeys succeeds" succeeded
t "... lists the gated RSA key, sensitive" \
	bash -c "grep -A4 'object=rsa-gated;type=private' '$out' | grep -q 'Private key (RSA-2048)' && grep -A4 'object=rsa-gated;type=private' '$out' | grep -q 'CKA_SENSITIVE'"
t "... and the gated EC key" in_out 'Private key \(EC/ECDSA-SECP256R1\)'

run "${P[@]}" --list-mechanisms "$TOKEN"
t "--list-mechanisms succeeds" succeeded
t "... lists RSA PKCS#1 sign and decrypt" in_out 'CKM_RSA_PKCS .*sign.*decrypt|CKM_RSA_PKCS .*decrypt.*sign'
t "... ECDSA and ECDH" bash -c "grep -q 'CKM_ECDSA ' '$out' && grep -q 'CKM_ECDH1_DERIVE' '$out'"

# ---------------------------------------------------------------- signing with gated keys
run "${P[@]}" --login --test-sign "$TOKEN;object=rsa-gated;type=private"
t "--test-sign with the gated RSA key succeeds" succeeded
t "... signs" in_err 'Signing using RSA-SHA256\.\.\. ok'
t "... and the signature verifies against the token's public key" in_err 'Verifying against public key in the token\.\.\. ok'
t "... no denial" no_denial

run "${P[@]}" --login --test-sign "$TOKEN;object=ec-gated;type=private"
t "--test-sign with the gated EC key succeeds" succeeded
t "... ECDSA signs and verifies" \
	bash -c "grep -q 'Signing using ECDSA-SHA256... ok' '$err' && grep -q 'Verifying against public key in the token... ok' '$err'"

run env GNUTLS_PIN=0000 "${P[@]}" --login --test-sign "$TOKEN;object=rsa-gated;type=private"
t "--test-sign with a wrong PIN fails cleanly" failed_cleanly
t "... GnuTLS reports the wrong PIN" in_out 'Wrong PIN has been provided'
t "... p11-warden logs it" in_err 'wrong user PIN'
run "${P[@]}" --login --test-sign "$TOKEN;object=rsa-gated;type=private"
t "the right PIN works again" succeeded

# ---------------------------------------------------------------- export and key generation
run "${P[@]}" --export-pubkey "$TOKEN;object=rsa-gated;type=public"
t "--export-pubkey of the gated key's public half works" succeeded
openssl pkey -pubin -in "$out" -outform DER -out p11tool-pub01.der 2>/dev/null || true
t "... the same key pkcs11-tool reads" same_file p11tool-pub01.der pub01.der

run "${P[@]}" --login --generate-privkey rsa --bits 2048 --label gnutls-rsa --outfile gen.pub "$TOKEN"
t "--generate-privkey rsa through p11-warden succeeds" succeeded
t "... without a denial" no_denial
run "${P[@]}" --login --test-sign "$TOKEN;object=gnutls-rsa;type=private"
t "... and the new (gated) key signs" in_err 'Verifying against public key in the token\.\.\. ok'
run "${P[@]}" --login --generate-privkey ecdsa --curve secp256r1 --label gnutls-ec --outfile gen-ec.pub "$TOKEN"
t "--generate-privkey ecdsa through p11-warden succeeds" succeeded
run "${P[@]}" --login --list-privkeys "$TOKEN"
t "... both generated keys are listed" \
	bash -c "grep -q 'object=gnutls-rsa;type=private' '$out' && grep -q 'object=gnutls-ec;type=private' '$out'"

done_testing
