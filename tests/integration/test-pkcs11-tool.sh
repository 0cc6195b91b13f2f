#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OpenSC's pkcs11-tool through p11-warden over SoftHSM: token and PIN
# administration, key generation, and every release path a real client can
# reach, for a gated and an ungated key.
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need pkcs11-tool openssl
softhsm_setup
# Ungated by label with the token named, by label and class, and by id and
# class: three forms of RFC 7512 URI.
warden_conf \
	"ungated = pkcs11:token=$WARDEN_LABEL;object=rsa-open" \
	'ungated = pkcs11:object=ec-open;type=private' \
	'ungated = pkcs11:id=%05;type=secret-key' \
	'ungated = pkcs11:object=unwrapped-open' \
	'ungated = pkcs11:id=%0e;type=private' \
	'ungated = pkcs11:object=combo-open;id=%0c'
warden_module_conf 'pin-max-failures = 3'
cd "$W"

T=(pkcs11-tool --module "$P11W_MODULE")
U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
IV=000102030405060708090a0b0c0d0e0f
printf 'attack at dawn\n' >msg

# ---------------------------------------------------------------- token and PINs
run "${T[@]}" -L
t "-L lists the p11-warden slot" in_out 'Slot 0 \(0x0\): p11-warden slot hsm'
t "-L shows the token uninitialised" in_out 'token state: +uninitialized'

run "${T[@]}" --init-token --label "$WARDEN_LABEL" --so-pin "$WARDEN_SO_PIN"
t "--init-token succeeds" succeeded
run "${T[@]}" -L
t "-L shows the new label" in_out "token label +: $WARDEN_LABEL\$"
t "-L shows the token initialised, no user PIN yet" \
	bash -c "grep -E 'token flags' '$out' | grep -q 'token initialized' && ! grep -q 'PIN initialized' '$out'"
t "-L shows p11-warden as the token manufacturer" in_out 'token manufacturer +: p11-warden'

run "${U[@]}" -O
t "user login before C_InitPIN: CKR_USER_PIN_NOT_INITIALIZED" in_err 'C_Login failed: rv = CKR_USER_PIN_NOT_INITIALIZED'

run "${T[@]}" --token-label "$WARDEN_LABEL" --login --login-type so --so-pin "$WARDEN_SO_PIN" \
	--init-pin --pin "$WARDEN_PIN"
t "SO sets the user PIN (C_InitPIN)" succeeded
run "${T[@]}" -L
t "-L: PIN initialized" in_out 'token flags.*PIN initialized'

run "${U[@]}" -O
t "user login with the right PIN" succeeded

run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin 0000 -O
t "wrong PIN: C_Login fails with CKR_PIN_INCORRECT" in_err 'C_Login failed: rv = CKR_PIN_INCORRECT \(0xa0\)'
t "wrong PIN: the module logs it" in_err "wrong user PIN \(1 consecutive failure\)"
run "${T[@]}" -L
t "after one failure: user PIN count low" in_out 'user PIN count low'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin 0001 -O
t "second wrong PIN: CKR_PIN_INCORRECT" in_err 'CKR_PIN_INCORRECT'
run "${T[@]}" -L
t "after two failures of three: final user PIN try" in_out 'final user PIN try'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin 0002 -O
t "third wrong PIN: CKR_PIN_INCORRECT" in_err 'CKR_PIN_INCORRECT'
run "${T[@]}" -L
t "after pin-max-failures = 3: user PIN locked" in_out 'user PIN locked'
run "${U[@]}" -O
t "locked: even the right PIN gets CKR_PIN_LOCKED" in_err 'C_Login failed: rv = CKR_PIN_LOCKED \(0xa4\)'
t "locked: the module logs the lockout" in_err 'user PIN locked after 3 failures'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --login-type so --so-pin "$WARDEN_SO_PIN" \
	--init-pin --pin "$WARDEN_PIN"
t "the SO resets the locked user PIN" succeeded
run "${U[@]}" -O
t "unlocked: user login works again" succeeded
run "${T[@]}" -L
t "unlocked: no PIN warning flags left" not_in_out 'PIN count low|final user PIN try|PIN locked'

# ---------------------------------------------------------------- key generation
run "${U[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa-gated
t "RSA key pair generated through p11-warden (rsa-gated)" succeeded
run "${U[@]}" --keypairgen --key-type rsa:2048 --id 02 --label rsa-open
t "RSA key pair generated (rsa-open)" succeeded
run "${U[@]}" --keypairgen --key-type EC:prime256v1 --id 03 --label ec-gated --usage-derive
t "EC key pair generated (ec-gated)" succeeded
run "${U[@]}" --keypairgen --key-type EC:prime256v1 --id 06 --label ec-open --usage-derive
t "EC key pair generated (ec-open)" succeeded
run "${U[@]}" --keygen --key-type AES:32 --id 04 --label aes-gated --extractable
t "AES key generated (aes-gated, extractable)" succeeded
t "generation output withholds the gated key's value" not_in_out 'VALUE'
run "${U[@]}" --keygen --key-type AES:32 --id 05 --label aes-open --extractable
t "AES key generated (aes-open, extractable)" succeeded

run "${U[@]}" -O
t "-O lists the generated keys" bash -c "for l in rsa-gated rsa-open ec-gated ec-open aes-gated aes-open; do grep -q \"label: *\$l\$\" '$out' || exit 1; done"
t "-O goes on listing after the read-secret denial of aes-gated (same session)" \
	bash -c "grep -q 'denied read-secret (mechanism 0x0) of key label .aes-gated.' '$err' && grep -q 'label: *aes-open' '$out'"

for id in 01 02 03 06; do
	run "${T[@]}" --token-label "$WARDEN_LABEL" --read-object --type pubkey --id $id -o pub$id.der
	t "public key $id exported" succeeded
done

# ---------------------------------------------------------------- signing (never gated)
run "${U[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig01
t "sign (SHA256-RSA-PKCS) with the gated RSA key works" succeeded
t "sign logs no denial" no_denial
run openssl dgst -sha256 -verify pub01.der -keyform DER -signature sig01 msg
t "openssl verifies that signature" in_out 'Verified OK'

run "${U[@]}" --sign -m SHA256-RSA-PKCS-PSS --id 01 -i msg -o pss01
t "sign (SHA256-RSA-PKCS-PSS) with the gated RSA key works" succeeded
run openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 \
	-verify pub01.der -keyform DER -signature pss01 msg
t "openssl verifies the PSS signature" in_out 'Verified OK'

openssl dgst -sha256 -binary msg >msg.sha256
run "${U[@]}" --sign -m ECDSA --signature-format openssl --id 03 -i msg.sha256 -o sig03
t "sign (ECDSA) with the gated EC key works" succeeded
run openssl pkeyutl -verify -pubin -keyform DER -inkey pub03.der -in msg.sha256 -sigfile sig03
t "openssl verifies the ECDSA signature" in_out 'Signature Verified Successfully'

# ---------------------------------------------------------------- RSA decryption
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub02.der -in msg -out ct02
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -in msg -out ct01
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub02.der -in msg -out oaep02 \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -in msg -out oaep01 \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1

run "${U[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt02
t "decrypt (RSA-PKCS) with the ungated key works" succeeded
t "... and returns the plaintext" same_file pt02 msg
run "${U[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 02 -i oaep02 -o opt02
t "decrypt (RSA-PKCS-OAEP, SHA-1) with the ungated key works" succeeded
t "... and returns the plaintext" same_file opt02 msg

run "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01
t "decrypt (RSA-PKCS) with the gated key fails cleanly" failed_cleanly
t "... at C_DecryptInit with CKR_FUNCTION_REJECTED (0x200)" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... the denial and its reason are logged" denial_logged decrypt rsa-gated 0x1
t "... no plaintext is written" empty_or_absent pt01
run "${U[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 01 -i oaep01 -o opt01
t "decrypt (RSA-PKCS-OAEP) with the gated key is refused (0x200)" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... logged with its reason" denial_logged decrypt rsa-gated 0x9
t "... no plaintext is written" empty_or_absent opt01

run "${U[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig01b
t "the gated key signs again in the next call after the denial" succeeded
t "... and the signature is the same (PKCS#1 v1.5 is deterministic)" same_file sig01b sig01

# ---------------------------------------------------------------- raw RSA
printf '\000' >raw
head -c 255 /dev/urandom >>raw
run "${U[@]}" --sign -m RSA-X-509 --id 01 -i raw -o rawsig01
t "raw RSA (RSA-X-509 sign) with the gated key is refused (0x200)" in_err 'C_SignInit failed: rv = .*\(0x200\)'
t "... logged as a denied sign with mechanism 0x3" denial_logged sign rsa-gated 0x3
t "... no output" empty_or_absent rawsig01
run "${U[@]}" --sign -m RSA-X-509 --id 02 -i raw -o rawsig02
t "raw RSA with the ungated key works" succeeded
run openssl pkeyutl -verifyrecover -pubin -keyform DER -inkey pub02.der -pkeyopt rsa_padding_mode:none \
	-in rawsig02 -out rawrec02
t "... and is the raw private-key operation (openssl recovers the input)" same_file rawrec02 raw

# ---------------------------------------------------------------- unwrap
head -c 32 /dev/urandom >aeskey
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -in aeskey -out wrapped01
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub02.der -in aeskey -out wrapped02
run "${U[@]}" --unwrap -m RSA-PKCS --id 01 -i wrapped01 --key-type AES: \
	--application-id 11 --application-label unwrapped-gated
t "unwrap with the gated RSA key fails cleanly" failed_cleanly
t "... at C_UnwrapKey with 0x200" in_err 'C_UnwrapKey failed: rv = .*\(0x200\)'
t "... logged with its reason" denial_logged unwrap rsa-gated 0x1
run "${U[@]}" -O --type secrkey
t "... no key was created" not_in_out 'unwrapped-gated|ID: +11$'
run "${U[@]}" --unwrap -m RSA-PKCS --id 02 -i wrapped02 --key-type AES: \
	--application-id 10 --application-label unwrapped-open
t "unwrap with the ungated RSA key works" succeeded
openssl enc -aes-256-cbc -K "$(od -An -tx1 aeskey | tr -d ' \n')" -iv $IV -in msg -out ct10
run "${U[@]}" --decrypt -m AES-CBC-PAD --iv $IV --id 10 -i ct10 -o pt10
t "... the unwrapped key (ungated by its name) decrypts what openssl encrypted under the wrapped value" \
	same_file pt10 msg

# ---------------------------------------------------------------- ECDH derive
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.pem 2>/dev/null
openssl pkey -in peer.pem -pubout -outform DER -out peerpub.der
run "${U[@]}" --derive -m ECDH1-DERIVE --id 03 -i peerpub.der -o shared03
t "ECDH derive with the gated EC key fails cleanly" failed_cleanly
t "... at C_DeriveKey with 0x200" in_err 'C_DeriveKey failed: rv = .*\(0x200\)'
t "... logged with its reason" denial_logged derive ec-gated 0x1050
t "... no shared secret is written" empty_or_absent shared03
run "${U[@]}" --derive -m ECDH1-DERIVE --id 06 -i peerpub.der -o shared06
t "ECDH derive with the ungated EC key: C_DeriveKey is not denied" not_in_err 'denied derive'
openssl pkeyutl -derive -inkey peer.pem -peerkey <(openssl pkey -pubin -inform DER -in pub06.der) \
	-out shared06.ref
# Regression: the secret C_DeriveKey makes from an ungated base key is ungated
# too (it used to be gated: its CKA_VALUE could not be read).
t "... and returns the ECDH shared secret (the same as openssl's)" same_file shared06 shared06.ref

# ---------------------------------------------------------------- wrap
run "${U[@]}" --wrap -m AES-KEY-WRAP --id 05 --application-id 04 -o wrapped-gated
t "wrap of the gated AES key (by the ungated one) fails cleanly" failed_cleanly
t "... at C_WrapKey with 0x200" in_err 'C_WrapKey failed: rv = .*\(0x200\)'
t "... logged as a denied wrap of aes-gated" denial_logged wrap aes-gated 0x2109
t "... nothing written" empty_or_absent wrapped-gated
run "${U[@]}" --wrap -m RSA-PKCS --id 02 --application-id 05 -o wrapped05
t "wrap of the ungated AES key by an RSA public key works" succeeded
run "${U[@]}" --read-object --type secrkey --id 05 -o aes05
t "reading the ungated AES key's value works" succeeded
run "${U[@]}" --decrypt -m RSA-PKCS --id 02 -i wrapped05 -o unwrapped05
t "... the wrapped blob decrypts (ungated RSA key) to the key's value" same_file unwrapped05 aes05
run "${U[@]}" --wrap -m AES-KEY-WRAP --id 04 --application-id 05 -o wrapped05-by-gated
t "wrapping under the gated AES key is refused (wrapping is encryption under it)" \
	in_err 'C_WrapKey failed: rv = .*\(0x200\)'
t "... logged as a denied wrap-with" denial_logged wrap-with aes-gated 0x2109
t "... nothing written" empty_or_absent wrapped05-by-gated

# ---------------------------------------------------------------- symmetric keys
# Any use of a gated secret key is a release path: in CTR, GCM, OFB or CFB
# mode encrypting a ciphertext decrypts it, and ECB/CBC/CMAC give the block
# function.
run "${U[@]}" --encrypt -m AES-CBC-PAD --iv $IV --id 04 -i msg -o ct04e
t "encrypt with the gated AES key is refused (an encryption oracle is a decryption oracle)" \
	in_err 'C_EncryptInit failed: rv = .*\(0x200\)'
t "... logged as a denied encrypt" denial_logged encrypt aes-gated 0x1085
t "... no ciphertext" empty_or_absent ct04e
head -c 48 /dev/urandom >ct04
run "${U[@]}" --decrypt -m AES-CBC-PAD --iv $IV --id 04 -i ct04 -o pt04
t "decrypt with the gated AES key fails cleanly" failed_cleanly
t "... at C_DecryptInit with 0x200" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... logged with its reason" denial_logged decrypt aes-gated 0x1085
t "... no plaintext" empty_or_absent pt04
head -c 40 /dev/urandom >wrapped-blob
run "${U[@]}" --unwrap -m AES-KEY-WRAP --id 04 -i wrapped-blob --key-type AES: \
	--application-id 12 --application-label unwrapped-open
t "unwrap with the gated AES key is refused (0x200)" in_err 'C_UnwrapKey failed: rv = .*\(0x200\)'
t "... logged with its reason" denial_logged unwrap aes-gated 0x2109
run "${U[@]}" --read-object --type secrkey --id 04 -o aes04
t "reading the gated AES key's value (CKA_VALUE, not sensitive) is refused" failed_cleanly
t "... C_GetAttributeValue returns 0x200" in_err 'C_GetAttributeValue\(VALUE\) failed: rv = .*\(0x200\)'
t "... logged as a denied read-secret" denial_logged read-secret aes-gated 0x0
t "... nothing written" empty_or_absent aes04

run "${U[@]}" --encrypt -m AES-CBC-PAD --iv $IV --id 05 -i msg -o ct05
t "encrypt with the ungated AES key works" succeeded
run "${U[@]}" --decrypt -m AES-CBC-PAD --iv $IV --id 05 -i ct05 -o pt05
t "decrypt with the ungated AES key works" same_file pt05 msg
run openssl enc -d -aes-256-cbc -K "$(od -An -tx1 aes05 | tr -d ' \n')" -iv $IV -in ct05 -out pt05.ossl
t "... and the ciphertext is AES-256-CBC under the key's value (openssl agrees)" same_file pt05.ossl msg

# ---------------------------------------------------------------- renaming
run "${U[@]}" --type privkey --id 01 --set-id 0e
t "renaming the gated key under an ungated id (C_SetAttributeValue CKA_ID) is refused (0x200)" in_err 'C_SetAttributeValue failed: rv = .*\(0x200\)'
t "... logged as a denied change-identity" in_err "denied change-identity of key label 'rsa-gated': the new label, id or class would move a gated key under an ungated name"
run "${U[@]}" -O --type privkey --id 01
t "... the key keeps its id" in_out 'label: *rsa-gated'
# An id that an ungated URI names together with a label is refused even
# though the key's label differs: another session could set that label at
# the same time, and each rename alone would look harmless.
run "${U[@]}" --type privkey --id 01 --set-id 0c
t "renaming the gated key to an id an ungated URI names (with another label) is refused" \
	in_err 'C_SetAttributeValue failed: rv = .*\(0x200\)'
# A new id under which it stays gated is fine (NSS sets CKA_ID after generating).
run "${U[@]}" --type privkey --id 01 --set-id 0f
t "renaming the gated key to an id that is still gated works" succeeded
run "${U[@]}" --decrypt -m RSA-PKCS --id 0f -i ct01 -o pt01r
t "... and under the new id it is still refused" denial_logged decrypt rsa-gated 0x1
run "${U[@]}" --type privkey --id 0f --set-id 01
t "... and back" succeeded
run "${U[@]}" --type privkey --id 02 --set-id 0e
t "renaming the ungated key works" succeeded
run "${U[@]}" --type privkey --id 0e --set-id 02
t "... and back" succeeded

# ---------------------------------------------------------------- after all the denials
run "${U[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig01c
t "after every denial the gated key still signs" same_file sig01c sig01
run "${U[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt02b
t "... and the ungated key still decrypts" same_file pt02b msg

# ---------------------------------------------------------------- C_SetPIN
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN" --change-pin --new-pin 24680
t "C_SetPIN (--change-pin) succeeds" succeeded
run "${U[@]}" -O
t "the old PIN no longer logs in (CKR_PIN_INCORRECT)" in_err 'CKR_PIN_INCORRECT'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin 24680 -O
t "the new PIN logs in" succeeded
run "${T[@]}" --token-label "$WARDEN_LABEL" --change-pin --pin 0000 --new-pin 13579
t "--change-pin with a wrong old PIN fails with CKR_PIN_INCORRECT" in_err 'CKR_PIN_INCORRECT \(0xa0\)'
run "${T[@]}" --token-label "$WARDEN_LABEL" --change-pin --pin 24680 --new-pin "$WARDEN_PIN"
t "--change-pin without --login changes it back" succeeded
run "${U[@]}" -O
t "the original PIN logs in again" succeeded

# ---------------------------------------------------------------- SO re-initialisation
run "${T[@]}" --init-token --label warden2 --so-pin 11223344
t "re-initialising with a wrong SO PIN fails with CKR_PIN_INCORRECT" in_err 'C_InitToken failed: rv = CKR_PIN_INCORRECT'
run "${T[@]}" -L
t "... and the label is unchanged" in_out "token label +: $WARDEN_LABEL\$"
run "${T[@]}" --init-token --label "$WARDEN_LABEL" --so-pin "$WARDEN_SO_PIN"
t "re-initialising with the SO PIN works" succeeded
run "${T[@]}" -L
t "... and clears the user PIN" not_in_out 'PIN initialized'
run "${U[@]}" -O
t "... so user login fails with CKR_USER_PIN_NOT_INITIALIZED" in_err 'CKR_USER_PIN_NOT_INITIALIZED'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --login-type so --so-pin "$WARDEN_SO_PIN" \
	--init-pin --pin "$WARDEN_PIN"
t "the SO sets a user PIN again" succeeded
run "${U[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig01d
t "the backend's keys survive re-initialisation (same signature)" same_file sig01d sig01
run "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01b
t "... and the gated key is still gated" denial_logged decrypt rsa-gated 0x1

# ---------------------------------------------------------------- lockout fails closed
# When the failure counter cannot be written, no PIN attempt is made at all
# (else whoever can make the write fail would guess without limit).
mkdir "$W/state/hsm.token.tmp"
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin 0000 -O
t "state not writable: a wrong PIN is not tried (CKR_DEVICE_ERROR)" in_err 'rv = CKR_DEVICE_ERROR \(0x30\)'
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN" -O
t "... nor the right one" in_err 'rv = CKR_DEVICE_ERROR \(0x30\)'
rmdir "$W/state/hsm.token.tmp"
run "${T[@]}" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN" -O
t "... writable again: the right PIN logs in" succeeded

done_testing
