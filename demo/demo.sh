#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: p11-warden in front of a SoftHSM token, driven by stock
# clients.  An ungated key decrypts; a gated key is refused, because no
# attestation verdict exists for it.  Runs in a temporary directory and
# leaves nothing behind.  The last line is a one-line summary: `demo: ...`.
set -uo pipefail

: "${P11W_MODULE:?P11W_MODULE must point at the built p11-warden.so}"
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

for t in softhsm2-util pkcs11-tool openssl; do
	command -v "$t" >/dev/null || { echo "demo: FAILED: $t is not installed (run scripts/install-deps)"; exit 1; }
done
[ -e "$SOFTHSM2_MODULE" ] || { echo "demo: FAILED: no SoftHSM module at $SOFTHSM2_MODULE"; exit 1; }

W=$(mktemp -d /tmp/p11w-demo.XXXXXX)
trap 'rm -rf "$W"' EXIT
export HOME=$W

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

released=0 refused=0 unexpected=0

step "1. An HSM token (SoftHSMv2) with two RSA-2048 keys"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$W/softhsm2.conf"
mkdir -p "$W/tokens"
export SOFTHSM2_CONF=$W/softhsm2.conf
softhsm2-util --init-token --free --label hsm --so-pin 12345678 --pin 1234 >/dev/null
for k in 01:open-key 02:sealed-key; do
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label hsm --login --pin 1234 \
		--keypairgen --key-type rsa:2048 --id "${k%%:*}" --label "${k#*:}" >/dev/null
	echo "key ${k#*:} (id ${k%%:*}) generated on the HSM"
done

step "2. p11-warden configuration: one slot over that token; only open-key is ungated"
printf '1234\n' >"$W/hsm.pin"
chmod 600 "$W/hsm.pin"
cat >"$W/p11-warden.conf" <<CONF
[module]
log = stderr
log-level = warning
state-dir = $W/state

[slot:hsm]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=hsm
pin-file = $W/hsm.pin
# every key is gated unless named here
ungated = pkcs11:object=open-key
CONF
cat "$W/p11-warden.conf"
export P11_WARDEN_CONF=$W/p11-warden.conf

step "3. The administrator initialises p11-warden's own token and user PIN"
run pkcs11-tool --module "$P11W_MODULE" --init-token --label warden --so-pin 87654321 >/dev/null
run pkcs11-tool --module "$P11W_MODULE" --token-label warden --login --login-type so \
	--so-pin 87654321 --init-pin --pin 5678 >/dev/null
run pkcs11-tool --module "$P11W_MODULE" -L

step "4. A message is encrypted to each key's public half (encryption is never gated)"
echo "attested release only" >"$W/message"
for k in 01:open 02:sealed; do
	pkcs11-tool --module "$P11W_MODULE" --token-label warden --read-object --type pubkey \
		--id "${k%%:*}" -o "$W/${k#*:}.der" >/dev/null
	openssl pkey -pubin -inform DER -in "$W/${k#*:}.der" -out "$W/${k#*:}.pem"
	openssl pkeyutl -encrypt -pubin -inkey "$W/${k#*:}.pem" -in "$W/message" -out "$W/${k#*:}.ct"
done
echo "ciphertexts written"

decrypt() { # decrypt ID NAME: through p11-warden with pkcs11-tool
	pkcs11-tool --module "$P11W_MODULE" --token-label warden --login --pin 5678 \
		--decrypt -m RSA-PKCS --id "$1" -i "$W/$2.ct" -o "$W/$2.pt" 2>"$W/$2.err"
}

step "5. pkcs11-tool decrypts with the ungated key: released"
if decrypt 01 open && cmp -s "$W/message" "$W/open.pt"; then
	echo "plaintext: $(cat "$W/open.pt")"
	released=$((released + 1))
else
	echo "UNEXPECTED: the ungated key did not decrypt"; cat "$W/open.err"
	unexpected=$((unexpected + 1))
fi

step "6. pkcs11-tool decrypts with the gated key: refused"
if decrypt 02 sealed; then
	echo "UNEXPECTED: the gated key decrypted"
	unexpected=$((unexpected + 1))
else
	grep -E 'p11-warden|0x200|CKR_FUNCTION_REJECTED' "$W/sealed.err" || cat "$W/sealed.err"
	if grep -q 'denied decrypt' "$W/sealed.err" && [ ! -s "$W/sealed.pt" ]; then
		refused=$((refused + 1))
	else
		echo "UNEXPECTED: refused without the documented reason"; unexpected=$((unexpected + 1))
	fi
fi

if [ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || [ -e /usr/lib/x86_64-linux-gnu/engines-3/libpkcs11.so ]; then
	step "7. OpenSSL (libp11 engine) with the same keys"
	for k in open-key:open sealed-key:sealed; do
		if PKCS11_MODULE_PATH=$P11W_MODULE openssl pkeyutl -decrypt -engine pkcs11 -keyform engine \
			-inkey "pkcs11:token=warden;object=${k%%:*};type=private?pin-value=5678" \
			-in "$W/${k#*:}.ct" -out "$W/${k#*:}.ossl" 2>"$W/${k#*:}.ossl.err"; then
			echo "openssl: ${k%%:*} released: $(cat "$W/${k#*:}.ossl")"
			[ "${k#*:}" = open ] && released=$((released + 1)) || unexpected=$((unexpected + 1))
		else
			echo "openssl: ${k%%:*} refused: $(grep -m1 'denied' "$W/${k#*:}.ossl.err" || echo 'error')"
			[ "${k#*:}" = sealed ] && refused=$((refused + 1)) || unexpected=$((unexpected + 1))
		fi
	done
fi

echo
if [ "$unexpected" -eq 0 ] && [ "$released" -ge 1 ] && [ "$refused" -ge 1 ]; then
	echo "demo: OK: $released release(s) of the ungated key, $refused refusal(s) of the gated key (no attestation verdict)"
else
	echo "demo: FAILED: $released released, $refused refused, $unexpected unexpected"
	exit 1
fi
