#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The reporting commands of p11-warden(1) against SoftHSM and swtpm:
# `key list` (each key's gate status as the configuration decides it:
# gated under a key-policy, ungated by URI, gated with no policy, a name
# too long to read whole, public keys), `status` (slots, backends,
# collectors, anchors, policies, the audit ledger and its last gated
# decisions; a stopped swtpm collector fails) and `doctor` (PASS with PCR
# 16 as the policy wants; the failing predicate once PCR 16 moves on; no
# policy; no collectors; a policy that does not parse; an unknown slot; a
# malformed PIN file), with --json output parsed by python3.
#
# swtpm and tpm2-tools hang with the sanitizer runtimes preloaded (the
# sanitizer build's make check sets LD_PRELOAD), so they run without it;
# the tool and the clients that load the module keep it (client, crun).
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

: "${P11W_TOOL:?P11W_TOOL must point at the built p11-warden tool}"
need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrextend \
	tpm2_pcrread pkcs11-tool openssl python3 timeout
softhsm_setup
cd "$W"

client() {
	if [ -n "$P11W_SAN_PRELOAD" ]; then
		LD_PRELOAD=$P11W_SAN_PRELOAD "$@"
	else
		"$@"
	fi
}
crun() { run env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} "$@"; }
# tool ARGS...: the admin tool, through run.
tool() { crun "$P11W_TOOL" "$@"; }
# json PYTHON-EXPRESSION: the last run's stdout parses as JSON, and the
# expression (over `j`) is true.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$out"; }
exited() { [ "$rc" -eq "$1" ]; }

# ---------------------------------------------------------------- swtpm
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
SWTPM_PID=$!
P11W_CLEANUP+=("kill $SWTPM_PID")
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; exit 99; }
TCTI="swtpm:path=$W/tpm/sock"
export TPM2TOOLS_TCTI=$TCTI
unset TSS2_TCTI

EK=0x81010001 AK=0x81010002
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
tpm() { "$@" >"$W/tpm.out" || { echo "Bail out! $* failed"; exit 99; }; flush; }
pcr16() { tpm2_pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p' | tr A-F a-f; }
sha256hex() { printf '%s' "$1" | sha256sum | cut -c1-64; }

tpm tpm2_createek -c $EK -G rsa -u ek.pub
tpm tpm2_createak -C $EK -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pem -f pem
tpm tpm2_evictcontrol -C o -c ak.ctx $AK
tpm tpm2_pcrextend "16:sha256=$(sha256hex 'p11-warden admin status')"
PCR16=$(pcr16)
[ ${#PCR16} -eq 64 ] || { echo "Bail out! cannot read PCR 16"; exit 99; }
chmod 0644 ak.pem

mkdir -p pol
cat >pol/pcr16.json <<EOP
{"version": 1, "max-age": 300, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak"],
  "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "$PCR16"}]}}
EOP
chmod 0644 pol/pcr16.json

# A second backend token for slot `bare` (two slots never front one token);
# not "backend2": pkcs11-tool --token-label matches a prefix.
softhsm2-util --init-token --free --label spare --so-pin "$BACKEND_SO_PIN" \
	--pin "$BACKEND_PIN" >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out audit-key.pem 2>/dev/null
chmod 0600 audit-key.pem

# Slot hsm: rsa-gated under pcr16 by key-policy, rsa-open ungated, every
# other gated key with no policy (no slot `policy`), collector tpm.  Slot
# bare: policy pcr16 and no collectors.
warden_conf \
	"key-policy = pcr16 pkcs11:object=rsa-gated;type=private" \
	"ungated = pkcs11:object=rsa-open;type=private" \
	"collectors = tpm"
warden_module_conf "audit-ledger = $W/audit.ledger" "audit-key = $W/audit-key.pem"
cat >>"$W/p11-warden.conf" <<EOF
[slot:bare]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=spare
pin-file = $W/backend.pin
policy = pcr16
[anchor:ak]
format = tpm2-quote
file = $W/ak.pem
[policy:pcr16]
file = $W/pol/pcr16.json
[collector:tpm]
type = tpm2-quote
tcti = $TCTI
ak-handle = $AK
pcrs = sha256:16
EOF
client warden_tool --slot-index 0 --init-token --label "$WARDEN_LABEL" --so-pin "$WARDEN_SO_PIN" \
	>/dev/null 2>"$W/init.err" &&
client warden_tool --token-label "$WARDEN_LABEL" --login --login-type so --so-pin "$WARDEN_SO_PIN" \
	--init-pin --pin "$WARDEN_PIN" >/dev/null 2>>"$W/init.err" ||
	{ echo "Bail out! cannot initialise the token"; cat "$W/init.err" >&2; exit 99; }

U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
for k in "01 rsa-gated" "02 rsa-open" "03 rsa-nopol"; do
	set -- $k
	client "${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1 ||
		{ echo "Bail out! cannot generate $2"; exit 99; }
done
# A label longer than the gate reads (256 bytes), made on the backend.
LONG=$(printf 'L%.0s' $(seq 300))
backend_tool --login --pin "$BACKEND_PIN" --keypairgen --key-type rsa:1024 --id 09 \
	--label "$LONG" >/dev/null 2>&1 || { echo "Bail out! cannot generate the long-label key"; exit 99; }
client "${U[@]}" --read-object --type pubkey --id 01 -o pub01.der >/dev/null 2>&1 ||
	{ echo "Bail out! cannot export rsa-gated"; exit 99; }
client "${U[@]}" --read-object --type pubkey --id 03 -o pub03.der >/dev/null 2>&1 ||
	{ echo "Bail out! cannot export rsa-nopol"; exit 99; }
printf 'status\n' >msg
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -in msg -out ct01
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub03.der -in msg -out ct03
# One release and one refusal for the ledger's recent decisions.
client "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01 >/dev/null 2>&1 || true
cmp -s pt01 msg || { echo "Bail out! the gated key does not decrypt with PCR 16 as expected"; exit 99; }
client "${U[@]}" --decrypt -m RSA-PKCS --id 03 -i ct03 -o pt03 >/dev/null 2>&1 || true

printf '%s\n' "$WARDEN_PIN" >pin
chmod 0600 pin
t0=$(date +%s)

# ---------------------------------------------------------------- --help
for c in "key list" "status" "doctor"; do
	tool $c --help
	t "$c --help: exit 0 and a usage line" eval 'succeeded && in_out "^usage: p11-warden $c"'
done

# ---------------------------------------------------------------- key list
tool key list --slot hsm --pin-file pin
t "key list: exit 0" succeeded
t "... rsa-gated: gated under pcr16 by its key-policy line" \
	in_out "^  rsa-gated +id=01 +private +RSA +gated: policy pcr16 \\(key-policy pkcs11:object=rsa-gated;type=private\\)$"
t "... rsa-open: ungated by its URI" \
	in_out "^  rsa-open +id=02 +private +RSA +ungated \\(pkcs11:object=rsa-open;type=private\\)$"
t "... rsa-nopol: gated with no policy" \
	in_out "^  rsa-nopol +id=03 +private +RSA +gated: NO POLICY \\(always refused\\)$"
t "... the 300-byte label: name unreadable, gated, no policy" \
	in_out "^  \\(unreadable\\) +id=09 +private +RSA +name unreadable: gated: NO POLICY"
t "... public keys: never gated" in_out "^  rsa-gated +id=01 +public +RSA +public \\(never gated\\)$"
t "... four private and four public keys" \
	eval '[ "$(grep -c " private " "$out")" -eq 4 ] && [ "$(grep -c " public " "$out")" -eq 4 ]'
t "... the PIN is not printed" eval '! grep -q "$WARDEN_PIN" "$out" "$err"'
tool --json key list --slot hsm --pin-file pin
t "key list --json: parses; rsa-gated is gated under pcr16 by key-policy" \
	json '[k for k in j["keys"] if k["label"]=="rsa-gated" and k["class"]=="private" and k["gated"] and k["policy"]=="pcr16" and k["binding"]=="key-policy"]'
t "... rsa-open is not gated, rsa-nopol has no policy, public keys are not gated" \
	json '[k for k in j["keys"] if k["label"]=="rsa-open" and k["class"]=="private" and not k["gated"]] and [k for k in j["keys"] if k["label"]=="rsa-nopol" and k["class"]=="private" and k["binding"]=="none"] and all(not k["gated"] for k in j["keys"] if k["class"]=="public")'
tool key list --slot hsm
t "key list without --pin-file: public keys only, and says why" \
	eval 'succeeded && ! in_out " private " && in_out " public " && in_err "not logged in"'
tool key list --slot nope --pin-file pin
t "key list --slot nope: exit 3, names the slot and the configured ones" \
	eval 'exited 3 && in_err "no \\[slot:nope\\]; configured slots: hsm bare"'
tool key list --pin-file pin
t "key list without --slot: usage error (2)" exited 2
printf '%s\n' "$WARDEN_PIN" >pin.open
chmod 0644 pin.open
tool key list --slot hsm --pin-file pin.open
t "key list with a PIN file others can read: exit 3, a clear message, the PIN not shown" \
	eval 'exited 3 && in_err "must be yours and readable by you only" && ! grep -q "$WARDEN_PIN" "$out" "$err"'
printf '%s\nsecond line\n' "$WARDEN_PIN" >pin.two
: >pin.empty
chmod 0600 pin.two pin.empty
tool key list --slot hsm --pin-file pin.two
t "key list with a two-line PIN file: exit 3, malformed" eval 'exited 3 && in_err "pin.two: malformed"'
tool key list --slot hsm --pin-file pin.empty
t "key list with an empty PIN file: exit 3, malformed" eval 'exited 3 && in_err "pin.empty: malformed"'
printf '0000\n' >pin.bad
chmod 0600 pin.bad
tool key list --slot hsm --pin-file pin.bad
t "key list with a wrong PIN: exit 1, login refused" \
	eval 'exited 1 && in_err "login with the PIN in .* refused: CKR_PIN_INCORRECT"'

# ---------------------------------------------------------------- status
tool status --conf "$W/p11-warden.conf"
t "status: exit 0 with everything answering" succeeded
t "... the slots, their backends and tokens" \
	eval 'in_out "^  hsm: backend .* \\(loads\\), token pkcs11:token=backend" && in_out "token present, initialised, label .warden." && in_out "^  bare: " && in_out "token present, NOT initialised"'
t "... the collector answers, its evidence verified by anchor ak" \
	in_out "^  tpm: OK, tpm2-quote evidence in [0-9.]+ ms, verified by anchor 'ak'"
t "... the anchor loads, with its fingerprint" in_out "^  ak: tpm2-quote, SHA-256 [0-9a-f]{64}, loads$"
t "... the policy loads and who binds it" \
	in_out "^  pcr16: loads, SHA-256 [0-9a-f]{64}; bound by slot hsm key-policy pkcs11:object=rsa-gated;type=private, slot bare \\(default\\)"
t "... the ledger is intact" in_out "^audit ledger: .*audit.ledger: intact, [0-9]+ records"
t "... recent decisions: the release of rsa-gated and the refusal of rsa-nopol" \
	eval 'in_out "gated-allow +slot=hsm key=.rsa-gated. op=decrypt policy=pcr16" && in_out "gated-deny +slot=hsm key=.rsa-nopol. op=decrypt reason=\"the key is gated and no policy"'
tool --json status --last 1
t "status --json --last 1: parses; healthy, collector ok, ledger intact, the last decision only" \
	json 'j["healthy"] and j["collectors"][0]["ok"] and j["collectors"][0]["anchor"]=="ak" and j["audit"]["intact"] and len(j["audit"]["recent"])==1 and j["audit"]["recent"][0]["event"]=="gated-deny"'

# ---------------------------------------------------------------- doctor
tool doctor --slot hsm --key rsa-gated --pin-file pin
t "doctor, PCR 16 as expected: exit 0, RELEASED, the policy passes" \
	eval 'succeeded && in_out "policy .pcr16.: PASS" && in_out "^RELEASED"'
t "... names the key's binding" in_out "key 'rsa-gated' \\(private\\): gated: policy pcr16 \\(key-policy"
tool doctor --slot hsm --key 02 --pin-file pin
t "doctor --key 02 (the ungated key, by CKA_ID): exit 0" \
	eval 'succeeded && in_out "ungated \\(pkcs11:object=rsa-open"'
tool doctor --slot hsm --key rsa-nopol --pin-file pin
t "doctor, a key with no policy: exit 1, says so and how to bind one" \
	eval 'exited 1 && in_out "1\\. key .rsa-nopol. is gated and no policy is bound to it" && in_out "fix: bind one: p11-warden policy bind POLICY --slot hsm --key rsa-nopol"'
tool doctor --slot bare
t "doctor, a slot without collectors: exit 1, says so" \
	eval 'exited 1 && in_out "slot .bare. has no collectors" && in_out "fix: push evidence .* or add collectors"'
tool doctor --slot nope
t "doctor, an unknown slot: exit 3 and a clear message" eval 'exited 3 && in_err "no \\[slot:nope\\]"'
tool doctor --slot hsm --key rsa-gated --pin-file pin.two
t "doctor with a malformed --pin-file: exit 3" eval 'exited 3 && in_err "malformed"'
tool doctor --slot hsm --key rsa-gated
t "doctor --key without --pin-file: usage error (2)" exited 2

tpm tpm2_pcrextend "16:sha256=$(sha256hex 'something else ran')"
PCR16_NEW=$(pcr16)
tool doctor --slot hsm --key rsa-gated --pin-file pin
t "doctor, PCR 16 changed: exit 1, REFUSED, the failing predicate with the actual and wanted values" \
	eval 'exited 1 && in_out "^REFUSED" && in_out "policy .pcr16.: FAIL: \\\$\\.rule\\.claims\\[0\\]: tpm\\.pcr\\.sha256\\.16 is ${PCR16_NEW:0:8}.*policy wants .*${PCR16:0:8}"'
tool --json doctor --slot hsm --key rsa-gated --pin-file pin
t "doctor --json: parses; not released, the predicate among the problems" \
	json 'not j["released"] and j["policy"]=="pcr16" and any("claims[0]" in p["problem"] and p["fix"] for p in j["problems"])'

# ---------------------------------------------------------------- swtpm stopped
kill "$SWTPM_PID"
wait "$SWTPM_PID" 2>/dev/null || true
# (with an option: main() wants a word after the command name)
tool status --last 10
t "status, swtpm stopped: exit 1, the collector FAILED" \
	eval 'exited 1 && in_out "^  tpm: FAILED after [0-9.]+ ms: "'
tool --json status --last 10
t "status --json, swtpm stopped: parses; the collector not ok, not healthy" \
	json 'not j["healthy"] and not j["collectors"][0]["ok"] and j["collectors"][0]["error"]'
tool doctor --slot hsm --key rsa-gated --pin-file pin
t "doctor, swtpm stopped: exit 1, the collector fails" eval 'exited 1 && in_out "collector .tpm. fails after"'

# ---------------------------------------------------------------- a policy that does not parse
printf '{"version": 1, "rule": \n' >pol/pcr16.json
tool doctor --slot hsm
t "doctor, a policy that does not parse: exit 1, names the policy and the error" \
	eval 'exited 1 && in_out "policy .pcr16. does not load: .*pcr16\\.json" && in_out "fix: correct .*pcr16\\.json"'
t "... and that the module does not initialise" in_out "the p11-warden module does not initialise"
tool status --last 10
t "status, a policy that does not parse: exit 1, DOES NOT LOAD" \
	eval 'exited 1 && in_out "^  pcr16: DOES NOT LOAD: "'
tool --json doctor --slot hsm
t "doctor --json: parses; the policy among the problems" \
	json 'not j["released"] and any("does not load" in p["problem"] for p in j["problems"])'

echo "# $(($(date +%s) - t0)) s for the checks"
done_testing
