#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: p11-warden in front of a SoftHSM token, with a software TPM
# (swtpm) as the platform whose state decides, driven by stock clients.
# An ungated key always decrypts.  A gated key is refused while there is no
# evidence, refused while PCR 16 holds a value its policy does not allow,
# and released when the TPM's quote shows the expected value.  Every
# decision goes to a signed audit ledger, verified offline at the end.
# Runs in a temporary directory and leaves nothing behind.  The last line is a
# one-line summary: `demo: ...`.
set -uo pipefail

: "${P11W_MODULE:?P11W_MODULE must point at the built p11-warden.so}"
: "${P11W_TOOL:?P11W_TOOL must point at the built p11-warden tool}"
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

for t in softhsm2-util pkcs11-tool openssl swtpm tpm2_createek tpm2_createak tpm2_evictcontrol \
	tpm2_flushcontext tpm2_pcrreset tpm2_pcrextend tpm2_pcrread sha256sum; do
	command -v "$t" >/dev/null || { echo "demo: FAILED: $t is not installed (run scripts/install-deps)"; exit 1; }
done
[ -e "$SOFTHSM2_MODULE" ] || { echo "demo: FAILED: no SoftHSM module at $SOFTHSM2_MODULE"; exit 1; }

W=$(mktemp -d /tmp/p11w-demo.XXXXXX)
SWTPM_PID=
trap '[ -n "$SWTPM_PID" ] && kill "$SWTPM_PID" 2>/dev/null; rm -rf "$W"' EXIT
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

step "2. The platform's TPM (swtpm here): an attestation key, and PCR 16 holding the platform's measurement"
mkdir -p "$W/tpm"
swtpm socket --tpm2 --tpmstate dir="$W/tpm" --server type=unixio,path="$W/tpm/sock" \
	--ctrl type=unixio,path="$W/tpm/sock.ctrl" --flags not-need-init,startup-clear \
	--log file="$W/tpm/log" &
SWTPM_PID=$!
export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock"
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
tpm2_createek -c 0x81010001 -G rsa -u "$W/ek.pub" >/dev/null && flush
tpm2_createak -C 0x81010001 -c "$W/ak.ctx" -G rsa -g sha256 -s rsassa -u "$W/ak.pem" -f pem >/dev/null && flush
tpm2_evictcontrol -C o -c "$W/ak.ctx" 0x81010002 >/dev/null && flush
echo "attestation key persisted at 0x81010002; its public key is the trust anchor:"
sed -n 1,2p "$W/ak.pem"
# measure NAME: PCR 16 := extend(0, SHA-256(NAME)), as a boot chain would
measure() {
	tpm2_pcrreset 16 >/dev/null
	tpm2_pcrextend "16:sha256=$(printf '%s' "$1" | sha256sum | cut -c1-64)" >/dev/null
}
measure "demo platform, known good"
GOOD=$(tpm2_pcrread sha256:16 | awk '$1 == "16:" { print tolower(substr($2, 3)) }')
echo "PCR 16 of the known-good platform: $GOOD"

step "3. The organisation's policy: release only when PCR 16 is the known-good value"
chmod 644 "$W/ak.pem"
cat >"$W/pcr16.json" <<POLICY
{
  "version": 1,
  "max-age": 60,
  "nonce": "required",
  "rule": {
    "format": "tpm2-quote",
    "anchors": ["platform-ak"],
    "claims": [
      { "claim": "tpm.pcr.sha256.16", "equals": "$GOOD" },
      { "claim": "tpm.clock.safe", "equals": true }
    ]
  }
}
POLICY
chmod 644 "$W/pcr16.json"
run "$P11W_TOOL" policy check "$W/pcr16.json"

step "4. p11-warden configuration: one slot over the HSM token; open-key is ungated, the rest need a verdict"
printf '1234\n' >"$W/hsm.pin"
chmod 600 "$W/hsm.pin"
# The audit key: P-256, its private half readable by the service only.
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/audit-key.pem" 2>/dev/null)
openssl pkey -in "$W/audit-key.pem" -pubout -out "$W/audit-pub.pem"
# conf [COLLECTORS-LINE]
conf() {
	cat >"$W/p11-warden.conf" <<CONF
[module]
log = stderr
log-level = warning
state-dir = $W/state
audit-ledger = $W/audit.ledger
audit-key = $W/audit-key.pem

[slot:hsm]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=hsm
pin-file = $W/hsm.pin
# every key is gated unless named here
ungated = pkcs11:object=open-key
policy = pcr16
$1

[anchor:platform-ak]
format = tpm2-quote
file = $W/ak.pem

[policy:pcr16]
file = $W/pcr16.json

[collector:tpm]
type = tpm2-quote
tcti = swtpm:path=$W/tpm/sock
ak-handle = 0x81010002
pcrs = sha256:16
CONF
	chmod 644 "$W/p11-warden.conf"
}
conf "# no collectors yet: nothing can attest the platform"
cat "$W/p11-warden.conf"
export P11_WARDEN_CONF=$W/p11-warden.conf

step "5. The administrator initialises p11-warden's own token and user PIN"
run pkcs11-tool --module "$P11W_MODULE" --init-token --label warden --so-pin 87654321 >/dev/null
run pkcs11-tool --module "$P11W_MODULE" --token-label warden --login --login-type so \
	--so-pin 87654321 --init-pin --pin 5678 >/dev/null
run pkcs11-tool --module "$P11W_MODULE" -L

step "6. A message is encrypted to each key's public half (encryption is never gated)"
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

# expect_refused NAME WHY: the gated key is refused, with a logged reason
expect_refused() {
	if decrypt 02 sealed; then
		echo "UNEXPECTED: the gated key decrypted ($2)"
		unexpected=$((unexpected + 1))
	elif grep -q 'denied decrypt' "$W/sealed.err" && [ ! -s "$W/sealed.pt" ]; then
		grep -m1 -o "denied decrypt.*" "$W/sealed.err"
		refused=$((refused + 1))
	else
		echo "UNEXPECTED: refused without the documented reason ($2)"; cat "$W/sealed.err"
		unexpected=$((unexpected + 1))
	fi
}
expect_released() {
	rm -f "$W/sealed.pt"
	if decrypt 02 sealed && cmp -s "$W/message" "$W/sealed.pt"; then
		echo "plaintext: $(cat "$W/sealed.pt")"
		released=$((released + 1))
	else
		echo "UNEXPECTED: the gated key was not released ($1)"; cat "$W/sealed.err"
		unexpected=$((unexpected + 1))
	fi
}

step "7. pkcs11-tool decrypts with the ungated key: released"
if decrypt 01 open && cmp -s "$W/message" "$W/open.pt"; then
	echo "plaintext: $(cat "$W/open.pt")"
	released=$((released + 1))
else
	echo "UNEXPECTED: the ungated key did not decrypt"; cat "$W/open.err"
	unexpected=$((unexpected + 1))
fi

step "8. The gated key without any evidence: refused"
expect_refused sealed "no evidence"

step "9. The slot gets its collector: p11-warden asks the TPM for a quote over a fresh nonce"
conf "collectors = tpm"
grep -n 'collectors' "$W/p11-warden.conf"
run "$P11W_TOOL" evidence collect --slot hsm

step "10. The platform is tampered with (PCR 16 measures something else): refused"
measure "demo platform, tampered"
expect_refused sealed "off-policy PCR 16"

step "11. The platform is back in its known-good state: the quote passes, the key is released"
measure "demo platform, known good"
expect_released "good evidence"

if [ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || [ -e /usr/lib/x86_64-linux-gnu/engines-3/libpkcs11.so ]; then
	step "12. OpenSSL (libp11 engine), unmodified, with the gated key on the good platform"
	if PKCS11_MODULE_PATH=$P11W_MODULE openssl pkeyutl -decrypt -engine pkcs11 -keyform engine \
		-inkey "pkcs11:token=warden;object=sealed-key;type=private?pin-value=5678" \
		-in "$W/sealed.ct" -out "$W/sealed.ossl" 2>"$W/sealed.ossl.err" &&
		cmp -s "$W/message" "$W/sealed.ossl"; then
		echo "openssl: sealed-key released: $(cat "$W/sealed.ossl")"
		released=$((released + 1))
	else
		echo "UNEXPECTED: openssl was refused"; cat "$W/sealed.ossl.err"
		unexpected=$((unexpected + 1))
	fi
fi

step "13. The auditor checks the ledger offline with the audit key's public half"
ledger=unverified
run "$P11W_TOOL" audit show "$W/audit.ledger" --key "$W/audit-pub.pem" --event gated-deny
run "$P11W_TOOL" audit show "$W/audit.ledger" --key "$W/audit-pub.pem" --event gated-allow
if run "$P11W_TOOL" audit verify "$W/audit.ledger" --key "$W/audit-pub.pem"; then
	ledger=verified
	denials=$("$P11W_TOOL" --json audit show "$W/audit.ledger" --event gated-deny |
		grep -c '"sealed-key"')
	[ "$denials" -ge "$refused" ] || { echo "UNEXPECTED: $denials denial record(s) for $refused refusal(s)"; unexpected=$((unexpected + 1)); }
else
	unexpected=$((unexpected + 1))
fi

echo
if [ "$unexpected" -eq 0 ] && [ "$released" -ge 2 ] && [ "$refused" -eq 2 ] && [ "$ledger" = verified ]; then
	echo "demo: refused $refused, released $released, ledger verified"
else
	echo "demo: FAILED: refused $refused, released $released, ledger $ledger, $unexpected unexpected"
	exit 1
fi
