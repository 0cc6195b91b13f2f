#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The commands of p11-warden(1) that change the configuration, against
# SoftHSM and swtpm: slot add/list/remove, anchor enrol/list/remove (an AK
# from swtpm as TPM2B_PUBLIC, RSA and ECC, its fingerprint equal to the
# PEM's), policy add/bind/list/remove, token init/init-pin/set-pin through
# the module; bad input (unknown slot, malformed PEM, an anchor of the
# wrong type, a policy that does not parse, a duplicate name, a bad URI, a
# PIN file others can read, a ledger that cannot be written, a second
# administrator holding the lock): a clear message, a non-zero exit and the
# file unchanged; two administrators at once: both changes land; the
# administrator's comments survive every change; collector add/list/remove,
# slot set and module set/show, with refusals (an unknown collector in
# --collectors, a bad ak-handle, audit-ledger without audit-key, a collector
# a slot still lists: file unchanged); pkcs11-tool works through
# the edited configuration, and `audit verify|show` has the admin records.
#
# swtpm and tpm2-tools hang with the sanitizer runtimes preloaded (the
# sanitizer build's make check sets LD_PRELOAD), so they run without it;
# the tool and the clients that load the module keep it (crun, client).
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

: "${P11W_TOOL:?P11W_TOOL must point at the built p11-warden tool}"
need swtpm tpm2_createek tpm2_createak tpm2_flushcontext pkcs11-tool openssl python3 flock \
	timeout
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
C=$W/etc/p11-warden.conf
# tool ARGS...: the admin tool on $C, through run.
tool() { crun "$P11W_TOOL" "$@"; }
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$out"; }
exited() { [ "$rc" -eq "$1" ]; }
# unchanged: $C is byte for byte the copy taken by snap.
snap() { cp -p "$C" "$W/snap.conf"; }
unchanged() { cmp -s "$C" "$W/snap.conf"; }
# refused CODE PATTERN: the last run exited CODE, said PATTERN on stderr,
# and left $C as it was.
refused() { exited "$1" && in_err "$2" && unchanged; }
# fpr PEM: the SHA-256 of the key's SubjectPublicKeyInfo.
fpr() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -c1-64; }

# ---------------------------------------------------------------- swtpm
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
SWTPM_PID=$!
P11W_CLEANUP+=("kill $SWTPM_PID")
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; exit 99; }
export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock"
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
tpm() { "$@" >"$W/tpm.out" || { echo "Bail out! $* failed"; exit 99; }; flush; }
tpm tpm2_createek -c ek.ctx -G rsa -u ek.pub
# tpm2_createak -u writes a TPM2B_PUBLIC by default; -f pem the same key as PEM.
tpm tpm2_createak -C ek.ctx -c ak-rsa.ctx -G rsa -g sha256 -s rsassa -u ak-rsa.pub -f tss
tpm tpm2_readpublic -c ak-rsa.ctx -o ak-rsa.pem -f pem
tpm tpm2_createak -C ek.ctx -c ak-ecc.ctx -G ecc -g sha256 -s ecdsa -u ak-ecc.pub
tpm tpm2_readpublic -c ak-ecc.ctx -o ak-ecc.pem -f pem
[ -s ak-rsa.pub ] && [ -s ak-rsa.pem ] && [ -s ak-ecc.pub ] && [ -s ak-ecc.pem ] ||
	{ echo "Bail out! no AK from swtpm"; exit 99; }

# ---------------------------------------------------------------- keys, files
(
	umask 077
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out audit.pem 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out verifier-key.pem 2>/dev/null
	openssl genpkey -algorithm ED25519 -out ed-key.pem 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-key.pem 2>/dev/null
)
openssl pkey -in audit.pem -pubout -out audit-pub.pem
openssl pkey -in verifier-key.pem -pubout -out verifier.pem
openssl pkey -in ed-key.pem -pubout -out ed.pem
openssl pkey -in rsa-key.pem -pubout -out rsa.pem
printf -- '-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n' >malformed.pem
chmod 0644 verifier.pem ed.pem rsa.pem malformed.pem ak-*.pub ak-*.pem
printf '%s\n' "$BACKEND_PIN" >backend.pin
chmod 0600 backend.pin
cp backend.pin readable.pin
chmod 0644 readable.pin
printf '%s\n' "$WARDEN_SO_PIN" >so.pin
printf '%s\n' "$WARDEN_PIN" >user.pin
printf '%s\n' 24681357 >new.pin
chmod 0600 so.pin user.pin new.pin
cp so.pin open-so.pin
chmod 0644 open-so.pin
mkdir -p pol state audit etc
cat >pol/pcr16.json <<'EOF'
{"version": 1, "max-age": 300, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak"],
  "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "0000000000000000000000000000000000000000000000000000000000000000"}]}}
EOF
cat >pol/other.json <<'EOF'
{"version": 1, "max-age": 60, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak-ecc"], "claims": []}}
EOF
cat >pol/ghost.json <<'EOF'
{"version": 1, "max-age": 60, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ghost"], "claims": []}}
EOF
printf '{"version": 1, "rule": {"format": "tpm2-quote", "anchors": ["ak"], "claims": [], "bogus": 1}}\n' \
	>pol/broken.json
chmod 0644 pol/*.json

# The administrator's file, with comments that every change must keep.
cat >"$C" <<EOF
# p11-warden on this host: managed by hand and by p11-warden(1)
; do not remove the audit lines

[module]
log = stderr   ; for the tests
log-level = warning
state-dir = $W/state
pin-kdf-iterations = 1000
# every change is recorded
audit-ledger = $W/audit/ledger
audit-key = $W/audit.pem
EOF
chmod 0644 "$C"
cp "$C" original.conf
HEAD_BYTES=$(stat -c %s original.conf)
export P11_WARDEN_CONF=/nonexistent/use-conf # every command names --conf
kept_comments() { head -c "$HEAD_BYTES" "$C" | cmp -s - original.conf; }

# ---------------------------------------------------------------- slot add
tool slot add hsm --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=$BACKEND_LABEL" \
	--pin-file "$W/backend.pin"
t "slot add: exit 0" exited 0
t "slot add: says what it did" in_out "slot added: slot 'hsm'"
t "slot add: the [slot:hsm] section is at the end, with its keys" \
	in_file "^\[slot:hsm\]$" "$C"
t "slot add: the administrator's comments and lines are kept byte for byte" kept_comments
snap
tool slot add hsm --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=x" \
	--pin-file "$W/backend.pin"
t "slot add: a duplicate name is refused (exit 3, 'exists already'), file unchanged" \
	refused 3 "slot 'hsm' exists already"
tool slot add bad --conf "$C" --module "$SOFTHSM2_MODULE" --token "nonsense" \
	--pin-file "$W/backend.pin"
t "slot add: a token that is no PKCS#11 URI is a usage error (2), file unchanged" \
	refused 2 "not a valid PKCS#11 URI"
tool slot add bad --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=x" \
	--pin-file "$W/readable.pin"
t "slot add: a PIN file others can read is refused (3), file unchanged" \
	refused 3 "others cannot read"
tool slot add bad --conf "$C" --module /no/such/module.so --token "pkcs11:token=x" \
	--pin-file "$W/backend.pin"
t "slot add: a module that does not exist is refused, file unchanged" refused 3 "/no/such/module.so"
tool slot add bad --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=x" \
	--pin-file "$W/backend.pin" --policy nosuch
t "slot add: an unknown --policy is refused, file unchanged" refused 3 "there is no \[policy:nosuch\]"
tool slot add 'bad name' --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=x" \
	--pin-file "$W/backend.pin"
t "slot add: an invalid name is a usage error, file unchanged" refused 2 "invalid slot name"
long=/$(printf 'x%.0s' $(seq 200))
tool slot add long --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=x" \
	--pin-file "$W/backend.pin" --gated "$long"
t "slot add: --gated other than yes/no is a usage error" refused 2 "--gated must be yes or no"
mkdir -p "$W/${long#/}"
cp -p backend.pin "$W/${long#/}/backend.pin"
tool slot add long --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=long" \
	--pin-file "$W/${long#/}/backend.pin"
t "slot add: a line over 198 bytes is refused, file unchanged" refused 3 "at most 198"
tool slot add --help
t "slot add --help: usage on stdout, exit 0" bash -c "[ $rc -eq 0 ] && grep -q 'usage: p11-warden slot add' '$out'"

# ---------------------------------------------------------------- anchor enrol
tool anchor enrol ak --conf "$C" --format tpm2-quote --file "$W/ak-rsa.pub"
t "anchor enrol: an RSA AK as TPM2B_PUBLIC (tpm2_createak -u) is enrolled" exited 0
t "anchor enrol: ... its fingerprint is that of the AK's PEM" in_out "sha256:$(fpr ak-rsa.pem)"
t "anchor enrol: ... copied to DIR/anchors/ak.pem, mode 0644" \
	bash -c "[ \"\$(stat -c %a '$W/etc/anchors/ak.pem')\" = 644 ]"
t "anchor enrol: ... the copy is the AK's public key" \
	bash -c "[ \"\$(openssl pkey -pubin -in '$W/etc/anchors/ak.pem' -outform DER | sha256sum | cut -c1-64)\" = '$(fpr ak-rsa.pem)' ]"
t "anchor enrol: ... and the configuration names the copy" in_file "^file = $W/etc/anchors/ak.pem$" "$C"
tool --json anchor enrol ak-ecc --conf "$C" --format tpm2-quote --file "$W/ak-ecc.pub"
t "anchor enrol --json: an ECC AK as TPM2B_PUBLIC, the fingerprint of its PEM" \
	json "j['changed'] and j['fingerprint'] == '$(fpr ak-ecc.pem)' and j['key'].startswith('EC')"
tool anchor enrol verifier --conf "$C" --format ear --file "$W/verifier.pem" --kid 0a0b0c
t "anchor enrol: an EC verifier key for ear, with a kid" exited 0
t "anchor enrol: ... with its fingerprint" in_out "sha256:$(fpr verifier.pem)"
snap
tool anchor enrol ak --conf "$C" --format tpm2-quote --file "$W/ak-rsa.pem"
t "anchor enrol: a duplicate name is refused, file unchanged" refused 3 "anchor 'ak' exists already"
cp "$W/verifier.pem" "$W/etc/anchors/stale.pem"
tool anchor enrol stale --conf "$C" --format ear --file "$W/verifier.pem"
t "anchor enrol: a file already at anchors/NAME.pem that no anchor uses: refused, file unchanged" \
	refused 3 "stale.pem exists already"
t "... and that file is left alone" cmp -s "$W/verifier.pem" "$W/etc/anchors/stale.pem"
rm -f "$W/etc/anchors/stale.pem"
tool anchor enrol bad --conf "$C" --format tpm2-quote --file "$W/malformed.pem"
t "anchor enrol: a malformed PEM is refused, file unchanged" refused 3 "no PEM public key"
t "anchor enrol: ... and no anchor file is left" bash -c "[ ! -e '$W/etc/anchors/bad.pem' ]"
tool anchor enrol bad --conf "$C" --format tpm2-quote --file "$W/ed.pem"
t "anchor enrol: an Ed25519 key for tpm2-quote is refused (wrong type), file unchanged" \
	refused 3 "ED25519 .*cannot verify tpm2-quote evidence"
tool anchor enrol bad --conf "$C" --format ear --file "$W/rsa.pem"
t "anchor enrol: an RSA key for ear is refused (wrong type), file unchanged" \
	refused 3 "RSA 2048 key cannot verify ear evidence"
tool anchor enrol bad --conf "$C" --format eat --file "$W/ak-rsa.pub"
t "anchor enrol: a TPM2B_PUBLIC for eat is refused (not PEM), file unchanged" refused 3 "not PEM"
head -c 40 ak-rsa.pub >truncated.pub
chmod 0644 truncated.pub
tool anchor enrol bad --conf "$C" --format tpm2-quote --file "$W/truncated.pub"
t "anchor enrol: a truncated TPM2B_PUBLIC is refused, file unchanged" refused 3 "neither PEM nor a TPM2B_PUBLIC"
tool anchor enrol bad --conf "$C" --format tpm2-quote --file "$W/ak-rsa.pem" --kid 00
t "anchor enrol: --kid for tpm2-quote is a usage error" refused 2 "--kid and --profile are for eat and ear"
tool anchor enrol bad --conf "$C" --format nope --file "$W/ak-rsa.pem"
t "anchor enrol: an unknown format is a usage error" refused 2 "unknown format"
tool anchor list --conf "$C"
t "anchor list: each anchor with its format, file and fingerprint" \
	bash -c "[ $rc -eq 0 ] && grep -q '^ak: tpm2-quote, $W/etc/anchors/ak.pem' '$out' && grep -q 'fingerprint sha256:$(fpr ak-rsa.pem)' '$out' && grep -q 'kid 0a0b0c' '$out'"
tool --json anchor list --conf "$C"
t "anchor list --json: three anchors, ok, with fingerprints" \
	json "len(j) == 3 and all(a['ok'] for a in j) and j[2]['kid'] == '0a0b0c' and j[1]['fingerprint'] == '$(fpr ak-ecc.pem)'"

# ---------------------------------------------------------------- policy add, bind
tool policy add pcr16 --conf "$C" --file "$W/pol/pcr16.json"
t "policy add: a policy naming an enrolled anchor" exited 0
tool policy add other --conf "$C" --file "$W/pol/other.json"
t "policy add: a second one" exited 0
snap
tool policy add broken --conf "$C" --file "$W/pol/broken.json"
t "policy add: a policy that does not parse is refused with its JSON path, file unchanged" \
	refused 3 "broken.json.*bogus"
tool policy add ghost --conf "$C" --file "$W/pol/ghost.json"
t "policy add: a policy naming an anchor not enrolled is refused, file unchanged" \
	refused 3 "names anchor 'ghost', which is not enrolled"
tool policy add pcr16 --conf "$C" --file "$W/pol/other.json"
t "policy add: a duplicate name is refused, file unchanged" refused 3 "policy 'pcr16' exists already"
tool policy bind pcr16 --conf "$C" --slot nosuch
t "policy bind: an unknown slot is refused, file unchanged" refused 3 "unknown slot 'nosuch'"
tool policy bind nosuch --conf "$C" --slot hsm
t "policy bind: an unknown policy is refused, file unchanged" refused 3 "unknown policy 'nosuch'"
tool policy bind pcr16 --conf "$C" --slot hsm --key 'not a uri'
t "policy bind: a key that is no PKCS#11 URI is a usage error, file unchanged" \
	refused 2 "not a valid PKCS#11 URI"
tool policy bind pcr16 --conf "$C" --slot hsm --key 'pkcs11:object=k;pin-value=1'
t "policy bind: a URI with a PIN is refused, file unchanged" refused 2 "PIN does not belong"
tool policy bind pcr16 --conf "$C" --slot hsm
t "policy bind: the slot's default policy" exited 0
t "policy bind: ... 'policy = pcr16' in [slot:hsm]" \
	python3 -c "import sys; t=open('$C').read(); s=t[t.index('[slot:hsm]'):]; s=s[:s.find('\n[',1)] if '\n[' in s[1:] else s; sys.exit(0 if 'policy = pcr16\n' in s else 1)"
tool policy bind other --conf "$C" --slot hsm --key 'pkcs11:object=k1'
t "policy bind --key: a key-policy line" in_file "^key-policy = other pkcs11:object=k1$" "$C"
tool policy bind pcr16 --conf "$C" --slot hsm --key 'pkcs11:object=k1'
t "policy bind --key: the same URI again changes its line in place" \
	bash -c "[ \$(grep -c '^key-policy' '$C') -eq 1 ] && grep -q '^key-policy = pcr16 pkcs11:object=k1$' '$C' && grep -q \"was 'other'\" '$out'"
tool policy bind other --conf "$C" --slot hsm
t "policy bind: changing the default says what it was" in_out "default policy 'other' \(was 'pcr16'\)"
t "policy bind: ... and changes the line in place" \
	bash -c "[ \$(grep -c '^policy = ' '$C') -eq 1 ] && grep -q '^policy = other$' '$C'"
tool policy bind pcr16 --conf "$C" --slot hsm
tool policy list --conf "$C"
t "policy list: each policy loads, with its digest and what binds it" \
	bash -c "[ $rc -eq 0 ] && grep -q 'sha256:$(sha256sum pol/pcr16.json | cut -c1-64)' '$out' && grep -q 'slot hsm (default)' '$out' && grep -q 'slot hsm key pkcs11:object=k1' '$out'"
tool --json policy list --conf "$C"
t "policy list --json: loads, digest, bindings" \
	json "j[0]['name'] == 'pcr16' and j[0]['loads'] and {'slot': 'hsm'} in j[0]['bound'] and j[1]['bound'] == []"
snap
tool policy remove pcr16 --conf "$C"
t "policy remove: refused while a slot binds it" refused 3 "bound by slot 'hsm'"
tool policy remove other --conf "$C"
t "policy remove: an unbound policy goes" bash -c "[ $rc -eq 0 ] && ! grep -q 'policy:other' '$C'"

# ---------------------------------------------------------------- anchor remove
snap
tool anchor remove ak --conf "$C"
t "anchor remove: refused while a policy names it, file unchanged" \
	refused 3 "anchor 'ak' is named by policy 'pcr16' \\(.*pcr16.json, at \\$\\.rule\\)"
tool anchor remove nosuch --conf "$C"
t "anchor remove: an unknown anchor is refused" refused 3 "unknown anchor 'nosuch'"
tool anchor remove verifier --conf "$C"
t "anchor remove: an anchor no policy names goes" bash -c "[ $rc -eq 0 ] && ! grep -q 'anchor:verifier' '$C'"
t "anchor remove: ... with the copy enrol made" bash -c "[ ! -e '$W/etc/anchors/verifier.pem' ]"

# ---------------------------------------------------------------- slot list, remove
tool slot add spare --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=spare" \
	--pin-file "$W/backend.pin" --gated no
t "slot add: a second slot, not gated" exited 0
tool slot list --conf "$C"
t "slot list: both slots, gated or not, with their policy" \
	bash -c "[ $rc -eq 0 ] && grep -q '^0 hsm: gated, policy pcr16' '$out' && grep -q '^1 spare: NOT gated' '$out' && grep -q 'key-policy pcr16 pkcs11:object=k1' '$out'"
tool --json slot list --conf "$C"
t "slot list --json" json "[s['name'] for s in j] == ['hsm', 'spare'] and j[0]['policy'] == 'pcr16' and not j[1]['gated']"
tool slot remove spare --conf "$C"
t "slot remove: the slot goes" bash -c "[ $rc -eq 0 ] && ! grep -q 'slot:spare' '$C'"
snap
tool slot remove spare --conf "$C"
t "slot remove: an unknown slot is refused, file unchanged" refused 3 "unknown slot 'spare'"
t "after all changes: the administrator's comments are kept byte for byte" kept_comments

# ---------------------------------------------------------------- collector add/list/remove, slot set
# section SECTION FILE: the lines of [SECTION] in FILE (exported for bash -c).
section() { awk -v h="[$1]" '$0 == h { on = 1; next } /^\[/ { on = 0 } on' "$2"; }
export -f section
tool collector add tpm --conf "$C" --type tpm2-quote --tcti "swtpm:path=$W/tpm/sock" \
	--ak-handle 0x81010002 --pcrs sha256:0,16
t "collector add: a tpm2-quote collector" \
	bash -c "[ $rc -eq 0 ] && grep -q \"collector added: collector 'tpm' (tpm2-quote)\" '$out'"
t "collector add: ... its section, with its keys" \
	bash -c "grep -q '^\[collector:tpm\]$' '$C' && grep -q '^ak-handle = 0x81010002$' '$C' && grep -q '^pcrs = sha256:0,16$' '$C'"
tool collector add cmd --conf "$C" --type command --command "/bin/cat -" --timeout-ms 2000
t "collector add: a command collector" \
	bash -c "[ $rc -eq 0 ] && grep -q '^command = /bin/cat -$' '$C' && grep -q '^timeout-ms = 2000$' '$C'"
snap
tool collector add bad --conf "$C" --type tpm2-quote --ak-handle 0x01000000 --pcrs sha256:0
t "collector add: an ak-handle that is not persistent is a usage error, file unchanged" \
	refused 2 "--ak-handle must be a persistent handle"
tool collector add bad --conf "$C" --type tpm2-quote --ak-handle 81010002 --pcrs sha256:0
t "collector add: an ak-handle without 0x is a usage error, file unchanged" \
	refused 2 "--ak-handle must be a persistent handle"
tool collector add bad --conf "$C" --type tpm2-quote --ak-handle 0x81010002
t "collector add: tpm2-quote without --pcrs is a usage error, file unchanged" \
	refused 2 "needs --ak-handle and --pcrs"
tool collector add bad --conf "$C" --type command --command "cat -"
t "collector add: a command without an absolute path is a usage error, file unchanged" \
	refused 2 "absolute program path"
tool collector add bad --conf "$C" --type command --command "/bin/cat" --timeout-ms 999999
t "collector add: a timeout conf_parse refuses is refused, file unchanged" \
	refused 3 "'timeout-ms' must be an integer"
tool collector add bad --conf "$C" --type nfc --command /bin/cat
t "collector add: an unknown type is a usage error, file unchanged" refused 2 "--type must be"
tool collector add tpm --conf "$C" --type command --command /bin/cat
t "collector add: a duplicate name is refused, file unchanged" \
	refused 3 "collector 'tpm' exists already"
tool slot set hsm --conf "$C" --collectors tpm,nosuch
t "slot set: an unknown collector in --collectors is refused, file unchanged" \
	refused 3 "there is no \[collector:nosuch\]"
tool slot set nosuch --conf "$C" --gated yes
t "slot set: an unknown slot is refused, file unchanged" refused 3 "unknown slot 'nosuch'"
tool slot set hsm --conf "$C" --policy nosuch
t "slot set: an unknown policy is refused, file unchanged" refused 3 "there is no \[policy:nosuch\]"
tool slot set hsm --conf "$C" --gated maybe
t "slot set: --gated other than yes/no is a usage error, file unchanged" \
	refused 2 "--gated must be yes or no"
tool slot set hsm --conf "$C" --ungated 'not a uri'
t "slot set: an --ungated that is no PKCS#11 URI is a usage error, file unchanged" \
	refused 2 "not a valid PKCS#11 URI"
tool slot set hsm --conf "$C"
t "slot set: nothing to set is a usage error, file unchanged" refused 2 "slot set needs"
tool slot set hsm --conf "$C" --collectors tpm,cmd --policy pcr16 --gated yes \
	--ungated 'pkcs11:object=pub1' --ungated 'pkcs11:object=pub2'
t "slot set: collectors, gated and two ungated lines in one change" exited 0
t "slot set: ... in [slot:hsm]" bash -c "s=\$(section slot:hsm '$C'); grep -qx 'collectors = tpm cmd' <<<\"\$s\" && grep -qx 'gated = yes' <<<\"\$s\" && grep -qx 'ungated = pkcs11:object=pub1' <<<\"\$s\" && grep -qx 'ungated = pkcs11:object=pub2' <<<\"\$s\" && [ \$(grep -c '^policy = ' <<<\"\$s\") -eq 1 ]"
tool slot set hsm --conf "$C" --collectors tpm
t "slot set: --collectors replaces the line in place" \
	bash -c "[ $rc -eq 0 ] && [ \$(grep -c '^collectors' '$C') -eq 1 ] && grep -q '^collectors = tpm$' '$C'"
snap
tool slot set hsm --conf "$C" --ungated 'pkcs11:object=pub1' --gated yes
t "slot set: an ungated URI already there and the same gated: nothing to change, file unchanged" \
	bash -c "[ $rc -eq 0 ] && grep -q 'nothing to change' '$out' && cmp -s '$C' '$W/snap.conf'"
tool slot list --conf "$C"
t "slot list: the ungated lines slot set added" in_out "ungated pkcs11:object=pub2"
tool collector list --conf "$C"
t "collector list: each collector and the slots that list it" \
	bash -c "[ $rc -eq 0 ] && grep -q '^tpm: tpm2-quote, ak-handle 0x81010002, pcrs sha256:0,16' '$out' && grep -q '^cmd: command /bin/cat -, timeout 2000 ms' '$out' && grep -q '^    slot hsm' '$out'"
tool --json collector list --conf "$C"
t "collector list --json" \
	json "[k['name'] for k in j] == ['tpm', 'cmd'] and j[0]['slots'] == ['hsm'] and j[1]['slots'] == [] and j[1]['command'] == ['/bin/cat', '-']"
tool collector remove tpm --conf "$C"
t "collector remove: refused while a slot lists it, file unchanged" \
	refused 3 "collector 'tpm' is listed by slot 'hsm'"
tool collector remove nosuch --conf "$C"
t "collector remove: an unknown collector is refused, file unchanged" \
	refused 3 "unknown collector 'nosuch'"
tool collector remove cmd --conf "$C"
t "collector remove: a collector no slot lists goes" \
	bash -c "[ $rc -eq 0 ] && ! grep -q 'collector:cmd' '$C'"
tool slot set hsm --conf "$C" --collectors ''
t "slot set --collectors '': the collectors line goes" \
	bash -c "[ $rc -eq 0 ] && ! grep -q '^collectors' '$C'"
tool collector remove tpm --conf "$C"
t "collector remove: ... and then the collector it listed" \
	bash -c "[ $rc -eq 0 ] && ! grep -q 'collector:tpm' '$C'"

# ---------------------------------------------------------------- module set/show
tool module set gate-cache-ms=500 --conf "$C"
t "module set: a key not there is added to [module]" \
	bash -c "[ $rc -eq 0 ] && section module '$C' | grep -qx 'gate-cache-ms = 500'"
tool module set gate-cache-ms=400 clock-skew=30 --conf "$C"
t "module set: two keys in one change, one of them in place" \
	bash -c "[ $rc -eq 0 ] && [ \$(grep -c '^gate-cache-ms' '$C') -eq 1 ] && section module '$C' | grep -qx 'gate-cache-ms = 400' && section module '$C' | grep -qx 'clock-skew = 30'"
snap
tool module set log-level=loud --conf "$C"
t "module set: a value conf_parse refuses is refused, file unchanged" \
	refused 3 "'log-level' must be error, warning, info or debug"
tool module set nosuch=1 gate-cache-ms=1 --conf "$C"
t "module set: a key conf.c does not know is refused, file unchanged" \
	refused 3 "unknown key 'nosuch' in \[module\]"
tool module set gate-cache-ms --conf "$C"
t "module set: an argument that is not KEY=VALUE is a usage error, file unchanged" \
	refused 2 "is not KEY=VALUE"
tool module set clock-skew=1 clock-skew=2 --conf "$C"
t "module set: a key given twice is a usage error, file unchanged" refused 2 "given twice"
tool module show --conf "$C"
t "module show: the [module] keys as the module reads them" \
	bash -c "[ $rc -eq 0 ] && grep -qx 'gate-cache-ms = 400' '$out' && grep -qx 'log = stderr' '$out' && grep -qx 'audit-ledger = $W/audit/ledger' '$out' && grep -qx 'pin-max-failures = 10' '$out'"
tool --json module show --conf "$C"
t "module show --json" json "j['clock-skew'] == '30' and j['audit-key'] == '$W/audit.pem'"
# A file without [module]: the audit keys go together, in one change.
M=$W/etc/module.conf
cat >"$M" <<EOT
# a host without [module] yet

# the backend
[slot:m]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=m
pin-file = $W/backend.pin
EOT
chmod 0644 "$M"
cp -p "$M" module.snap
tool module set audit-ledger="$W/audit/module-ledger" --conf "$M"
t "module set: audit-ledger without audit-key is refused, file unchanged" \
	bash -c "[ $rc -eq 3 ] && grep -q \"'audit-ledger' and 'audit-key' go together\" '$err' && cmp -s '$M' module.snap && [ ! -e '$W/audit/module-ledger' ]"
tool module set audit-ledger="$W/audit/module-ledger" audit-key="$W/audit.pem" --conf "$M"
t "module set: audit-ledger and audit-key at once create [module]" \
	bash -c "[ $rc -eq 0 ] && grep -qx '\[module\]' '$M' && grep -qx 'audit-ledger = $W/audit/module-ledger' '$M' && grep -qx 'audit-key = $W/audit.pem' '$M'"
t "module set: ... the file's lines are kept" \
	bash -c "head -c \$(stat -c %s module.snap) '$M' | cmp -s - module.snap"
tool audit show "$W/audit/module-ledger" --key "$W/audit-pub.pem" --event admin
t "module set: ... recorded in the ledger the new configuration names" \
	in_out "admin .*reason=\"module set audit-ledger audit-key\""
tool module set audit-ledger="$W/audit/moved-ledger" audit-key="$W/audit.pem" --conf "$M"
t "module set: moving the ledger" exited 0
tool audit show "$W/audit/module-ledger" --key "$W/audit-pub.pem" --event admin
t "... is recorded in the ledger in use until then (not only in the new one)" \
	bash -c "[ \$(grep -c 'reason=\"module set audit-ledger audit-key\"' '$out') -eq 2 ]"
tool audit show "$W/audit/moved-ledger" --key "$W/audit-pub.pem" --event admin
t "... and in the new one" in_out "admin .*reason=\"module set audit-ledger audit-key\""
snap
tool module set $'\nstate-dir=/tmp' --conf "$C"
t "module set with a control character in a key name: refused, file unchanged" \
	bash -c "[ $rc -ne 0 ] && cmp -s '$C' '$W/snap.conf'"
tool module set 'Clock-Skew=5' --conf "$C"
t "module set with a key p11-warden.conf(5) does not spell so: refused, file unchanged" \
	bash -c "[ $rc -ne 0 ] && cmp -s '$C' '$W/snap.conf'"
t "after the collector, slot set and module changes: the comments are kept" kept_comments

# ---------------------------------------------------------------- two administrators
snap
flock "$C.lock" sleep 10 &
HOLDER=$!
P11W_CLEANUP+=("kill $HOLDER")
# Wait until the lock is provably held (a loaded machine may start the
# holder late).
for _ in $(seq 200); do flock -n "$C.lock" true 2>/dev/null || break; sleep 0.05; done
start=$(date +%s)
tool slot add late --conf "$C" --module "$SOFTHSM2_MODULE" --token "pkcs11:token=late" \
	--pin-file "$W/backend.pin"
waited=$(($(date +%s) - start))
t "a second administrator holding the lock: refused after a bounded wait, file unchanged" \
	refused 3 "another administrator is changing it"
t "... after about 5 s" bash -c "[ $waited -ge 4 ] && [ $waited -le 9 ]"
wait "$HOLDER" 2>/dev/null || true
pids=()
for n in a b c; do
	client "$P11W_TOOL" slot add "con-$n" --conf "$C" --module "$SOFTHSM2_MODULE" \
		--token "pkcs11:token=con-$n" --pin-file "$W/backend.pin" >"con-$n.out" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}" || true
t "administrators writing at the same time: every change lands" \
	bash -c "grep -q '^\[slot:con-a\]' '$C' && grep -q '^\[slot:con-b\]' '$C' && grep -q '^\[slot:con-c\]' '$C'"
for n in a b c; do client "$P11W_TOOL" slot remove "con-$n" --conf "$C" >/dev/null; done
t "... and they go again" bash -c "! grep -q 'slot:con-' '$C'"

# ---------------------------------------------------------------- ledger refusal
cp "$C" "$W/etc/noledger.conf"
sed -i "s|^audit-key = .*|audit-key = $W/audit-open.pem|" "$W/etc/noledger.conf"
cp audit.pem audit-open.pem
chmod 0644 audit-open.pem
cp -p "$W/etc/noledger.conf" noledger.snap
tool slot add x --conf "$W/etc/noledger.conf" --module "$SOFTHSM2_MODULE" \
	--token "pkcs11:token=x" --pin-file "$W/backend.pin"
t "a ledger that cannot be written refuses the change, file unchanged" \
	bash -c "[ $rc -eq 3 ] && grep -q 'the change is refused' '$err' && cmp -s '$W/etc/noledger.conf' noledger.snap"

# ---------------------------------------------------------------- token
snap
tool token init --conf "$C" --module "$P11W_MODULE" --slot hsm --label "$WARDEN_LABEL" \
	--so-pin-file "$W/open-so.pin"
t "token init: a PIN file others can read is refused" bash -c "[ $rc -eq 3 ] && grep -q 'readable by you only' '$err'"
tool token init --conf "$C" --module "$P11W_MODULE" --slot nosuch --label x --so-pin-file "$W/so.pin"
t "token init: an unknown slot is refused" bash -c "[ $rc -eq 3 ] && grep -q \"unknown slot 'nosuch'\" '$err'"
tool token init --conf "$C" --module "$P11W_MODULE" --slot hsm --label "$WARDEN_LABEL" \
	--so-pin-file "$W/so.pin"
t "token init: through the module" exited 0
t "token init: no PIN printed" bash -c "! grep -q -e '$WARDEN_SO_PIN' '$out' '$err'"
tool token init-pin --conf "$C" --module "$P11W_MODULE" --slot hsm --so-pin-file "$W/so.pin" \
	--pin-file "$W/user.pin"
t "token init-pin: the user PIN, as the SO" exited 0
tool token set-pin --conf "$C" --module "$P11W_MODULE" --slot hsm --pin-file "$W/so.pin" \
	--new-pin-file "$W/new.pin"
t "token set-pin: a wrong old PIN fails (CKR_PIN_INCORRECT)" bash -c "[ $rc -eq 3 ] && grep -q PIN_INCORRECT '$err'"
tool token set-pin --conf "$C" --module "$P11W_MODULE" --slot hsm --pin-file "$W/user.pin" \
	--new-pin-file "$W/new.pin"
t "token set-pin: the user PIN changed" exited 0
tool token set-pin --conf "$C" --slot hsm --pin-file "$W/user.pin"
t "token set-pin without --new-pin-file: usage error" exited 2
t "token commands leave the configuration alone" unchanged

# ---------------------------------------------------------------- the module with the edited file
export P11_WARDEN_CONF=$C
crun pkcs11-tool --module "$P11W_MODULE" -L
t "pkcs11-tool -L through the edited configuration: the token labelled by token init" \
	bash -c "[ $rc -eq 0 ] && grep -q 'token label *: $WARDEN_LABEL' '$out'"
crun pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin 24681357 \
	--keypairgen --key-type EC:prime256v1 --label k1 --id 01
t "pkcs11-tool: log in with the PIN set-pin set, and make a key" exited 0
crun pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin 24681357 -O
t "pkcs11-tool: the key is listed" bash -c "[ $rc -eq 0 ] && grep -q 'label: *k1' '$out'"
crun pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN" -O
t "pkcs11-tool: the old PIN no longer works" bash -c "[ $rc -ne 0 ]"
export P11_WARDEN_CONF=/nonexistent/use-conf

# ---------------------------------------------------------------- the ledger
tool audit verify "$W/audit/ledger" --key "$W/audit-pub.pem"
t "audit verify: the ledger with the admin records is intact" exited 0
tool audit show "$W/audit/ledger" --key "$W/audit-pub.pem" --event admin
for r in "slot add hsm" "anchor enrol ak tpm2-quote sha256:$(fpr ak-rsa.pem)" "policy add pcr16" \
	"policy bind pcr16 slot hsm key pkcs11:object=k1" "anchor remove verifier" "slot remove spare" \
	"token init hsm" "token init-pin hsm" "token set-pin hsm user" "collector add tpm" \
	"collector add cmd" \
	"slot set hsm collectors=tpm,cmd gated=yes ungated=pkcs11:object=pub1 ungated=pkcs11:object=pub2" \
	"slot set hsm collectors=tpm" "collector remove cmd" "slot set hsm collectors=" \
	"collector remove tpm" "module set gate-cache-ms" "module set gate-cache-ms clock-skew"; do
	# slot add and collector add go on with what they configure.
	case $r in
	"slot add"* | "collector add"*) t "audit show: an admin record \"$r ...\"" in_out "admin .*reason=\"$r( [^\"]*)?\"" ;;
	*) t "audit show: an admin record \"$r\"" in_out "admin .*reason=\"$r\"" ;;
	esac
done
t "... slot add records the module and the token it configures" \
	in_out "reason=\"slot add hsm module=$SOFTHSM2_MODULE token=pkcs11:token="
t "... collector add records what the module will run" in_out "reason=\"collector add cmd type=command command="
t "audit show: admin records name the administrator" in_out "admin .*slot=hsm user=[^ ]+ .*reason=\"slot add hsm( [^\"]*)?\""
t "audit show: no record of the refused changes" not_in_out "slot add (bad|late|x)\"|policy add (broken|ghost)|collector add bad|module set (log-level|nosuch|clock-skew\")|slot set (nosuch|hsm\")"
tool audit show "$W/audit/ledger" --key "$W/audit-pub.pem" --event token-init
t "audit show: the module's own token-init record" in_out "token-init .*slot=hsm"

done_testing
