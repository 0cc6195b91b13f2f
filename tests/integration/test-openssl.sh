#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OpenSSL through the libp11 engine (libengine-pkcs11-openssl) with
# p11-warden as its module: signing with a gated key works, decryption with an
# ungated key works, and every decryption path of a gated key (PKCS#1 v1.5,
# OAEP, libp11's silent fallback to raw RSA, explicit raw RSA) is refused
# cleanly (an error, never a crash) with the denial logged.
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need openssl pkcs11-tool
softhsm_setup
warden_conf 'ungated = pkcs11:object=rsa-open;type=private'
cd "$W"

export PKCS11_MODULE_PATH=$P11W_MODULE
if ! openssl engine pkcs11 -t 2>/dev/null | grep -q available; then
	skip_all "the OpenSSL pkcs11 engine (libengine-pkcs11-openssl) is not available"
fi

warden_init
for k in "01 rsa-gated rsa:2048" "02 rsa-open rsa:2048" "03 ec-gated EC:prime256v1"; do
	set -- $k
	warden_tool --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN" \
		--keypairgen --key-type "$3" --id "$1" --label "$2" >/dev/null
	warden_tool --token-label "$WARDEN_LABEL" --read-object --type pubkey --id "$1" \
		-o "pub$1.der" >/dev/null 2>&1
done

# Key URIs carry the PIN: a key-load failure crashes the engine (see
# ENVIRONMENT.md), so the denials are tested at the operation.
key() { printf 'pkcs11:token=%s;object=%s;type=private?pin-value=%s' "$WARDEN_LABEL" "$1" "$WARDEN_PIN"; }
E=(openssl pkeyutl -engine pkcs11 -keyform engine)
OAEP1=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1)
OAEP256=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256)

printf 'the plaintext\n' >msg
openssl dgst -sha256 -binary msg >msg.sha256
for id in 01 02; do
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out pkcs1.$id
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out oaep1.$id "${OAEP1[@]}"
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out oaep256.$id "${OAEP256[@]}"
done
# A raw RSA block: PKCS#1 v1.5 type 2 padding done by hand is not needed, any
# value below the modulus will do.
{ printf '\000'; head -c 255 /dev/urandom; } >raw
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -pkeyopt rsa_padding_mode:none -in raw -out raw.01
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub02.der -pkeyopt rsa_padding_mode:none -in raw -out raw.02

# spy_init_returns LOG MECHANISM RV: pkcs11-spy's LOG has a C_DecryptInit with
# MECHANISM (CKM_ name) that returned RV (decimal).
spy_init_returns() {
	awk -v mech="$2" -v want="$3" '
		/^[0-9]+: C_/ { init = ($2 == "C_DecryptInit"); m = 0 }
		init && index($0, "pMechanism->type = " mech " ") { m = 1 }
		init && m && /^Returned:/ && $2 == want { found = 1 }
		END { exit !found }' "$1"
}

# ---------------------------------------------------------------- signing
run "${E[@]}" -sign -inkey "$(key rsa-gated)" -pkeyopt digest:sha256 -in msg.sha256 -out sig.pkcs1
t "pkeyutl -sign (PKCS#1 v1.5) with the gated key works" succeeded
t "... and logs no denial" no_denial
run openssl pkeyutl -verify -pubin -keyform DER -inkey pub01.der -pkeyopt digest:sha256 \
	-in msg.sha256 -sigfile sig.pkcs1
t "... the signature verifies" in_out 'Signature Verified Successfully'

run "${E[@]}" -sign -inkey "$(key rsa-gated)" -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 \
	-pkeyopt rsa_pss_saltlen:32 -in msg.sha256 -out sig.pss
t "pkeyutl -sign (RSA-PSS) with the gated key works" succeeded
run openssl pkeyutl -verify -pubin -keyform DER -inkey pub01.der -pkeyopt rsa_padding_mode:pss \
	-pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:32 -in msg.sha256 -sigfile sig.pss
t "... the PSS signature verifies" in_out 'Signature Verified Successfully'

run "${E[@]}" -sign -inkey "$(key ec-gated)" -in msg.sha256 -out sig.ec
t "pkeyutl -sign (ECDSA) with the gated EC key works" succeeded
run openssl pkeyutl -verify -pubin -keyform DER -inkey pub03.der -in msg.sha256 -sigfile sig.ec
t "... the ECDSA signature verifies" in_out 'Signature Verified Successfully'

# ---------------------------------------------------------------- ungated decryption
run "${E[@]}" -decrypt -inkey "$(key rsa-open)" -in pkcs1.02 -out pt.pkcs1
t "pkeyutl -decrypt (PKCS#1 v1.5) with the ungated key works" succeeded
t "... and returns the plaintext" same_file pt.pkcs1 msg
run "${E[@]}" -decrypt -inkey "$(key rsa-open)" "${OAEP1[@]}" -in oaep1.02 -out pt.oaep1
t "pkeyutl -decrypt (OAEP, SHA-1) with the ungated key works" same_file pt.oaep1 msg
run "${E[@]}" -decrypt -inkey "$(key rsa-open)" "${OAEP256[@]}" -in oaep256.02 -out pt.oaep256
t "pkeyutl -decrypt (OAEP, SHA-256) with the ungated key works" same_file pt.oaep256 msg
run "${E[@]}" -decrypt -inkey "$(key rsa-open)" -pkeyopt rsa_padding_mode:none -in raw.02 -out pt.raw
t "pkeyutl -decrypt (raw RSA) with the ungated key works" same_file pt.raw raw

# SoftHSM refuses OAEP with SHA-256, so libp11 must have decrypted with raw
# RSA and removed the padding itself: show it with OpenSC's pkcs11-spy.
spy=
for s in /usr/lib/*/pkcs11/pkcs11-spy.so /usr/lib*/pkcs11/pkcs11-spy.so /usr/lib/*/pkcs11-spy.so; do
	[ -e "$s" ] && spy=$s && break
done
if [ -n "$spy" ]; then
	run env PKCS11_MODULE_PATH="$spy" PKCS11SPY="$P11W_MODULE" PKCS11SPY_OUTPUT="$W/spy.ok.log" \
		"${E[@]}" -decrypt -inkey "$(key rsa-open)" "${OAEP256[@]}" -in oaep256.02 -out pt.spy
	t "under pkcs11-spy, OAEP-SHA256 with the ungated key still decrypts" same_file pt.spy msg
	t "... after SoftHSM refused OAEP-SHA256 (CKR_ARGUMENTS_BAD)" \
		spy_init_returns "$W/spy.ok.log" CKM_RSA_PKCS_OAEP 7
	t "... through libp11's fallback: C_DecryptInit(CKM_RSA_X_509) succeeds" \
		spy_init_returns "$W/spy.ok.log" CKM_RSA_X_509 0
else
	for i in 1 2 3; do ok "# SKIP pkcs11-spy.so not found: the fallback is not traced"; done
fi

# ---------------------------------------------------------------- gated decryption
run "${E[@]}" -decrypt -inkey "$(key rsa-gated)" -in pkcs1.01 -out pt.gated
t "pkeyutl -decrypt (PKCS#1 v1.5) with the gated key fails cleanly (no crash)" failed_cleanly
t "... openssl reports the PKCS#11 error 0x200 (reason 512)" in_err 'PKCS#11 module.*reason\(512\)'
t "... the denial is logged with its reason" denial_logged decrypt rsa-gated 0x1
t "... no plaintext is written" empty_or_absent pt.gated

run "${E[@]}" -sign -inkey "$(key rsa-gated)" -pkeyopt digest:sha256 -in msg.sha256 -out sig.after
t "the gated key signs in the next call after the denial" succeeded
t "... the same signature as before" same_file sig.after sig.pkcs1

run "${E[@]}" -decrypt -inkey "$(key rsa-gated)" "${OAEP1[@]}" -in oaep1.01 -out pt.gated.oaep1
t "pkeyutl -decrypt (OAEP, SHA-1) with the gated key fails cleanly" failed_cleanly
t "... OAEP is refused" denial_logged decrypt rsa-gated 0x9
t "... and so is libp11's fallback to raw RSA" denial_logged decrypt rsa-gated 0x3
t "... no plaintext" empty_or_absent pt.gated.oaep1

run "${E[@]}" -decrypt -inkey "$(key rsa-gated)" "${OAEP256[@]}" -in oaep256.01 -out pt.gated.oaep256
t "pkeyutl -decrypt (OAEP, SHA-256) with the gated key fails cleanly" failed_cleanly
t "... OAEP is refused" denial_logged decrypt rsa-gated 0x9
t "... the raw RSA fallback (CKM_RSA_X_509) is refused too" denial_logged decrypt rsa-gated 0x3
t "... no plaintext" empty_or_absent pt.gated.oaep256

if [ -n "$spy" ]; then
	run env PKCS11_MODULE_PATH="$spy" PKCS11SPY="$P11W_MODULE" PKCS11SPY_OUTPUT="$W/spy.denied.log" \
		"${E[@]}" -decrypt -inkey "$(key rsa-gated)" "${OAEP256[@]}" -in oaep256.01 -out pt.spy.gated
	t "under pkcs11-spy: C_DecryptInit(CKM_RSA_PKCS_OAEP) returns 0x200" \
		spy_init_returns "$W/spy.denied.log" CKM_RSA_PKCS_OAEP 512
	t "... and the fallback C_DecryptInit(CKM_RSA_X_509) returns 0x200" \
		spy_init_returns "$W/spy.denied.log" CKM_RSA_X_509 512
	t "... and C_Decrypt is never reached" not_in_file '^[0-9]+: C_Decrypt$' "$W/spy.denied.log"
else
	for i in 1 2 3; do ok "# SKIP pkcs11-spy.so not found"; done
fi

run "${E[@]}" -decrypt -inkey "$(key rsa-gated)" -pkeyopt rsa_padding_mode:none -in raw.01 -out pt.gated.raw
t "pkeyutl -decrypt (raw RSA) with the gated key fails cleanly" failed_cleanly
t "... logged as a denied decrypt with CKM_RSA_X_509" denial_logged decrypt rsa-gated 0x3
t "... no output" empty_or_absent pt.gated.raw

# pkeyutl will not sign 256 bytes as a "hash"; the deprecated rsautl -raw will.
run openssl rsautl -engine pkcs11 -keyform engine -inkey "$(key rsa-gated)" -sign -raw -in raw -out sig.raw
t "rsautl -sign -raw (raw RSA) with the gated key fails cleanly" failed_cleanly
t "... openssl reports 0x200" in_err 'reason\(512\)'
t "... logged as a denied sign with CKM_RSA_X_509" denial_logged sign rsa-gated 0x3
t "... no output" empty_or_absent sig.raw
run openssl rsautl -engine pkcs11 -keyform engine -inkey "$(key rsa-open)" -sign -raw -in raw -out sig.raw.02
t "rsautl -sign -raw with the ungated key works" succeeded
run openssl pkeyutl -verifyrecover -pubin -keyform DER -inkey pub02.der -pkeyopt rsa_padding_mode:none \
	-in sig.raw.02 -out rec.raw.02
t "... and is the raw private-key operation" same_file rec.raw.02 raw

run "${E[@]}" -sign -inkey "$(key rsa-gated)" -pkeyopt digest:sha256 -in msg.sha256 -out sig.last
t "after all the denials the gated key still signs" same_file sig.last sig.pkcs1
run "${E[@]}" -decrypt -inkey "$(key rsa-open)" -in pkcs1.02 -out pt.last
t "... and the ungated key still decrypts" same_file pt.last msg

done_testing
