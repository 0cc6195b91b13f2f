#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# NSS (libnss3-tools) with p11-warden added to a database by modutil: the
# module and its token are listed, keys are listed, a gated key signs a
# certificate request, and CMS decryption works with an ungated key and is
# refused, cleanly and logged, with a gated one.
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need certutil modutil cmsutil pkcs11-tool openssl
softhsm_setup
warden_conf 'ungated = pkcs11:object=rsa-open'
warden_init
cd "$W"

U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
NSS=sql:$W/nss
printf '%s\n' "$WARDEN_PIN" >pwfile
printf '0000\n' >badpw
head -c 2048 /dev/urandom >noise   # certutil reads its noise file to the end

# Two keys, each with a certificate on the token under the same CKA_ID (how
# NSS pairs a certificate with its private key), issued by a software CA.
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -subj /CN=test-ca -days 2 \
	-out ca.pem 2>/dev/null
openssl req -new -key ca.key -subj /CN=unused -out unused.csr
for k in "01 rsa-gated" "02 rsa-open"; do
	set -- $k
	"${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1
	"${U[@]}" --read-object --type pubkey --id "$1" -o "pub$1.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "pub$1.der" -out "pub$1.pem"
	openssl x509 -req -in unused.csr -CA ca.pem -CAkey ca.key -set_serial "0x$1" -subj "/CN=$2" \
		-force_pubkey "pub$1.pem" -days 2 -out "cert$1.pem" 2>/dev/null
	openssl x509 -in "cert$1.pem" -outform DER -out "cert$1.der"
	"${U[@]}" --write-object "cert$1.der" --type cert --id "$1" --label "$2" >/dev/null 2>&1
done

# ---------------------------------------------------------------- the database
mkdir -p nss
run certutil -N -d "$NSS" --empty-password
t "certutil -N creates a database" succeeded
run modutil -dbdir "$NSS" -add p11-warden -libfile "$P11W_MODULE" -force
t "modutil -add registers p11-warden" succeeded
t "... and says so" in_out 'Module "p11-warden" added to database'
run modutil -dbdir "$NSS" -list
t "modutil -list succeeds" succeeded
t "... lists p11-warden by its library path" in_out "library name: $P11W_MODULE\$"
t "... loaded, with its slot" bash -c "grep -A6 '[0-9]\\. p11-warden\$' '$out' | grep -q 'status: loaded' && grep -q 'slot: p11-warden slot hsm' '$out'"
t "... and the token" in_out "token: $WARDEN_LABEL\$"
t "... with p11-warden's PKCS#11 URI" in_out "uri: pkcs11:token=$WARDEN_LABEL;manufacturer=p11-warden;serial=hsm"

# ---------------------------------------------------------------- keys and certificates
run certutil -K -d "$NSS" -h "$WARDEN_LABEL" -f pwfile
t "certutil -K lists the keys through p11-warden" succeeded
t "... the gated key (id 01)" in_out '<[ 0-9]+> rsa +01 +.*rsa-gated'
t "... the ungated key (id 02)" in_out '<[ 0-9]+> rsa +02 +.*rsa-open'
run certutil -K -d "$NSS" -h "$WARDEN_LABEL" -f badpw
t "certutil -K with a wrong PIN fails cleanly" failed_cleanly
t "... NSS reports a bad password" in_err 'SEC_ERROR_BAD_PASSWORD'
t "... and p11-warden logs the wrong PIN" in_err 'wrong user PIN'
run certutil -L -d "$NSS" -h "$WARDEN_LABEL" -f pwfile
t "certutil -L lists the token's certificates" \
	bash -c "grep -q '$WARDEN_LABEL:rsa-gated' '$out' && grep -q '$WARDEN_LABEL:rsa-open' '$out'"

# ---------------------------------------------------------------- signing with a gated key
run certutil -R -d "$NSS" -h "$WARDEN_LABEL" -f pwfile -k 01 -s 'CN=signed by a gated key' -a -o req.pem
t "certutil -R: NSS signs a request with the gated key" succeeded
t "... logging no denial" no_denial
run openssl req -in req.pem -verify -noout
t "... openssl verifies the request's signature" in_err 'verify OK|self-signature ok'
openssl req -in req.pem -noout -pubkey | openssl pkey -pubin -outform DER -out req.pub.der
t "... made with the gated key" same_file req.pub.der pub01.der

# ---------------------------------------------------------------- CMS decryption
printf 'for the recipient only\n' >msg
openssl cms -encrypt -binary -aes256 -in msg -outform DER -out env01.der cert01.pem
openssl cms -encrypt -binary -aes256 -in msg -outform DER -out env02.der cert02.pem

run cmsutil -D -d "$NSS" -f pwfile -i env01.der -o out01
t "cmsutil -D for the gated key fails cleanly" failed_cleanly
t "... NSS's C_UnwrapKey of the content key is refused and logged" denial_logged unwrap rsa-gated 0x1
t "... so is its fallback, C_Decrypt of the content key" denial_logged decrypt rsa-gated 0x1
t "... no plaintext" empty_or_absent out01

run certutil -R -d "$NSS" -h "$WARDEN_LABEL" -f pwfile -k 01 -s 'CN=again' -a -o req2.pem
t "the gated key signs again after the denial" succeeded

run cmsutil -D -d "$NSS" -f pwfile -i env02.der -o out02
# Regression: NSS unwraps the CMS content key with the ungated RSA key, then
# decrypts with that unlabelled session key; a key unwrapped by an ungated key
# is ungated too (it used to be gated, and CMS decryption failed).
t "cmsutil -D for the ungated key returns the plaintext" same_file out02 msg

# ---------------------------------------------------------------- key generation by NSS
# Regression: NSS generates a key pair without CKA_ID, then sets it with
# C_SetAttributeValue; a rename under which the key stays gated is allowed
# (it used to be refused, and NSS could not generate keys).
run certutil -G -d "$NSS" -h "$WARDEN_LABEL" -f pwfile -k rsa -g 2048 -z noise
t "certutil -G generates an RSA key pair on the p11-warden token" succeeded
t "... without a denial" no_denial
run certutil -K -d "$NSS" -h "$WARDEN_LABEL" -f pwfile
t "... and certutil -K lists it with its NSS-style CKA_ID (no key without an id)" \
	bash -c "[ \$(grep -c '> rsa ' '$out') -eq 3 ] && grep -Eq '> rsa +[0-9a-f]{40} ' '$out' && ! grep -q '> rsa *\"\"' '$out'"

done_testing
