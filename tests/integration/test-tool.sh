#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The admin tool, p11-warden(1): policy check, policy test (with the public
# Azure vTPM quote of tests/data/tpm and its tampered forms) and evidence
# collect (with command collectors), in text and JSON, with the exit codes
# the man page gives.  Nothing here loads the module.
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need python3
TOOL=${P11W_TOOL:-$P11W_BUILDDIR/p11-warden}
[ -x "$TOOL" ] || { echo "Bail out! $TOOL not built"; exit 99; }
D=$P11W_SRCDIR/tests/data/tpm
cd "$W"
install -m 644 "$D/ak.pem" ak.pem
install -m 644 "$D/ak-2023.pem" ak-2023.pem
NONCE=$(printf challenge | od -An -tx1 | tr -d ' \n')

# The quote with its raw signature's scheme named (the form evidence.h reads).
python3 - "$D/tpm-quote-v1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["signature-scheme"] = "rsassa"; d["signature-hash"] = "sha256"
json.dump(d, open("quote.json", "w"))
pcr0 = d["pcrs"][0]
pol = {"version": 1, "max-age": 300, "nonce": "required",
       "rule": {"format": "tpm2-quote", "anchors": ["azure"],
                "claims": [{"claim": "tpm.pcr.sha256.0", "equals": pcr0.upper()},
                           {"claim": "tpm.clock.safe", "equals": True}]}}
json.dump(pol, open("pcr0.json", "w"))
pol["rule"]["claims"][0]["equals"] = "00" * 32
json.dump(pol, open("pcr0-other.json", "w"))
pol["nonce"] = "optional"
pol["rule"]["claims"][0]["equals"] = pcr0
json.dump(pol, open("pcr0-nononce.json", "w"))
# Tampered forms: a PCR value, a signature byte, the attest's magic,
# trailing bytes, the clock's safe flag (re-signed? no: the signature breaks).
t = dict(d); t["pcrs"] = list(d["pcrs"]); t["pcrs"][5] = "11" * 32
json.dump(t, open("bad-pcr.json", "w"))
t = dict(d); s = bytearray.fromhex(d["signature"]); s[10] ^= 1; t["signature"] = s.hex()
json.dump(t, open("bad-sig.json", "w"))
t = dict(d); t["message"] = "00" + d["message"][2:]
json.dump(t, open("bad-magic.json", "w"))
t = dict(d); t["message"] = d["message"] + "00"
json.dump(t, open("trailing.json", "w"))
t = dict(d); t["pcrs"] = d["pcrs"][:23]
json.dump(t, open("short-pcrs.json", "w"))
t = dict(d); t["extra"] = 1
json.dump(t, open("unknown-member.json", "w"))
t = dict(d); t["message"] = "zz" + d["message"][2:]
json.dump(t, open("bad-hex.json", "w"))
open("oversized.json", "w").write(" " * 70000)
PY
chmod 644 ./*.json
printf '{"version": 1, "rule": {"format": "tpm2-quote", "anchors": ["a"], "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "abcd"}]}}\n' >bad-policy.json
printf '{"version": 1, "rule": {"format": "tpm2-quote", "anchors": ["a"], "claims": [], "bogus": 1}}\n' >unknown-key.json
chmod 644 bad-policy.json unknown-key.json

A=(--anchor "azure:tpm2-quote:$W/ak.pem")

# ---------------------------------------------------------------- policy check
run "$TOOL" policy check "$P11W_SRCDIR"/conf/policies/*.json
t "policy check: the shipped example policies load" succeeded
t "policy check: prints a summary per policy" in_out 'tpm-pcr16.json: ok \(max-age 300 s, nonce required, gates decrypt unwrap derive wrap raw-sign read-secret digest-key\)'
run "$TOOL" policy check bad-policy.json
t "policy check: a PCR value of the wrong length exits 1" bash -c "[ $rc -eq 1 ]"
t "policy check: ... naming the JSON path and the reason" in_out 'bad-policy.json.*\$\.rule\.claims\[0\]\.equals.*32 bytes'
run "$TOOL" policy check unknown-key.json
t "policy check: an unknown member is refused with its path" in_out '\$\.rule.*bogus'
run "$TOOL" policy check pcr0-nononce.json
t "policy check: warns about a policy without a nonce" in_out 'warning: no nonce required'
run "$TOOL" --json policy check "$P11W_SRCDIR/conf/policies/tpm-pcr16.json" bad-policy.json
t "policy check --json: one array, ok and error" in_out '^\[\{"file":.*"ok":true.*\},\{"file":"bad-policy.json","ok":false,"error":'
run "$TOOL" policy check
t "policy check without a file: usage error (2)" bash -c "[ $rc -eq 2 ]"

# ---------------------------------------------------------------- policy test
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote "${A[@]}" --nonce "$NONCE"
t "policy test: the Azure quote passes PCR 0's policy" succeeded
t "... verified by the named anchor, nonce matched" in_out "verified by anchor 'azure', nonce matched"
t "... PCR claims printed" in_out 'tpm.pcr.sha256.23 = 0{64}'
t "... PASS line" in_out "^PASS: policy 'pcr0.json'"
run "$TOOL" --json policy test --policy pcr0.json --evidence quote.json --format tpm2-quote "${A[@]}" --nonce "$NONCE"
t "policy test --json: pass, anchor and claims" in_out '"pass":true,"policy":"pcr0.json","anchor":"azure".*"tpm.clock.safe":true'
run "$TOOL" policy test --policy pcr0-other.json --evidence quote.json --format tpm2-quote "${A[@]}" --nonce "$NONCE"
t "policy test: PCR value off policy exits 1" bash -c "[ $rc -eq 1 ]"
t "... naming the failing predicate" in_out "FAIL: policy 'pcr0-other.json': \\\$\\.rule\\.claims\\[0\\]"
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote "${A[@]}"
t "policy test: without --nonce, a policy requiring one fails" in_out 'carries no fresh nonce; the policy requires one'
run "$TOOL" policy test --policy pcr0-nononce.json --evidence quote.json --format tpm2-quote "${A[@]}"
t "policy test: ... and one not requiring it passes" succeeded
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote "${A[@]}" --nonce 00112233445566778899
t "policy test: wrong nonce refused by the verifier" in_out 'FAIL: tpm2-quote evidence refused by the verifier: .*nonce'
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote \
	--anchor "azure:tpm2-quote:$W/ak-2023.pem" --nonce "$NONCE"
t "policy test: wrong anchor (the other vTPM's AK) refused" in_out 'no enrolled tpm2-quote anchor verifies it'
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote \
	--anchor "other:tpm2-quote:$W/ak.pem" --nonce "$NONCE"
t "policy test: an anchor the policy does not name fails the policy" in_out "FAIL: policy 'pcr0.json': .*anchor"
for c in "bad-pcr:PCR digest|pcrDigest" "bad-sig:signature does not verify|no enrolled" \
	"bad-magic:magic" "trailing:trailing|after the TPMS_ATTEST" "short-pcrs:24 sha256" \
	"unknown-member:unknown member .extra." "bad-hex:.attest. must be" "oversized:1 to 65536 accepted"; do
	f=${c%%:*} pat=${c#*:}
	run "$TOOL" policy test --policy pcr0.json --evidence "$f.json" --format tpm2-quote "${A[@]}" --nonce "$NONCE"
	t "policy test: $f evidence refused ($pat)" bash -c "[ $rc -eq 1 ] && grep -Eq -e '$pat' '$out'"
done
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format sev-snp "${A[@]}"
t "policy test: unknown format is a usage error (2)" bash -c "[ $rc -eq 2 ]"
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote --anchor "azure:tpm2-quote:$W/nope.pem"
t "policy test: a missing anchor file exits 3" bash -c "[ $rc -eq 3 ] && grep -q 'nope.pem: cannot open' '$err'"
chmod 666 ak.pem
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote "${A[@]}"
t "policy test: a world-writable anchor is refused (3)" bash -c "[ $rc -eq 3 ] && grep -q 'writable by others' '$err'"
chmod 644 ak.pem
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote --anchor "azure:eat:$W/ak.pem" --nonce "$NONCE"
t "policy test: the AK enrolled as an eat anchor verifies no quote" bash -c "[ $rc -eq 1 ] && grep -q 'no tpm2-quote anchor is enrolled' '$out'"
run "$TOOL" policy test --policy pcr0.json --evidence quote.json --format tpm2-quote --anchor "azure:ear:$W/ak.pem"
t "policy test: an RSA key cannot be an ear anchor (3)" bash -c "[ $rc -eq 3 ] && grep -q 'cannot verify ear evidence' '$err'"

# ---------------------------------------------------------------- evidence collect
mkdir -p bin
cat >bin/replay-quote <<SH
#!/bin/sh
# Ignores the nonce and replays a recorded quote: must be refused.
cat >/dev/null
echo tpm2-quote
cat "$W/quote.json"
SH
cat >bin/fail <<'SH'
#!/bin/sh
echo "no TPM here" >&2
exit 3
SH
cat >bin/slow <<'SH'
#!/bin/sh
sleep 5
SH
chmod 755 bin/replay-quote bin/fail bin/slow
warden_conf 'collectors = replay, broken, slow' 'policy = pcr0'
cat >>p11-warden.conf <<EOF
[anchor:azure]
format = tpm2-quote
file = $W/ak.pem
[policy:pcr0]
file = $W/pcr0.json
[collector:replay]
type = command
command = $W/bin/replay-quote
[collector:broken]
type = command
command = $W/bin/fail
[collector:slow]
type = command
command = $W/bin/slow
timeout-ms = 300
EOF
run "$TOOL" evidence collect --slot hsm --conf "$W/p11-warden.conf"
t "evidence collect: exits 1 when no evidence passes" bash -c "[ $rc -eq 1 ]"
t "... a replayed quote is refused for its nonce" in_out "collector 'replay': tpm2-quote evidence in .* ms, REFUSED: .*nonce"
t "... a failing program's exit and stderr are reported" in_out "collector 'broken': FAILED .*no TPM here"
t "... a slow program is killed at its timeout" in_out "collector 'slow': FAILED after [0-9.]+ ms: no complete answer .* within 300 ms"
t "... and the slot's policy fails" in_out "^FAIL: policy 'pcr0'"
run "$TOOL" --json evidence collect --slot hsm --conf "$W/p11-warden.conf"
t "evidence collect --json: collectors and verdict" in_out '^\{"collectors":\[\{"collector":"replay".*"pass":false'
run "$TOOL" evidence collect --slot nope --conf "$W/p11-warden.conf"
t "evidence collect: unknown slot exits 3" bash -c "[ $rc -eq 3 ] && grep -q 'no \[slot:nope\]' '$err'"
run "$TOOL" evidence collect --conf "$W/p11-warden.conf"
t "evidence collect without --slot: usage error (2)" bash -c "[ $rc -eq 2 ]"
run "$TOOL" frobnicate now
t "unknown command: usage error (2)" bash -c "[ $rc -eq 2 ]"
run "$TOOL" --version
t "--version" in_out '^p11-warden [0-9]'

done_testing
