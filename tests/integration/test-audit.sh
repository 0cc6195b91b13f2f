#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The audit ledger end to end: p11-warden.so loaded by real clients
# (pkcs11-tool, tests/integration/push-client, OpenSSL's libp11 engine,
# and a Python ctypes client for C_Logout, which pkcs11-tool never calls)
# over SoftHSM, the slot's keys gated under a PCR 16 policy, evidence from
# swtpm both pulled (a tpm2-quote collector) and pushed (push-client), and
# the ledger read back with `p11-warden audit verify|show` only.
# (tests/unit/test-ledger.c and test-ledger-storm.sh test the library.)
#
#  1. What is recorded: token and PIN initialisation, a wrong PIN, a
#     release and a denial of the gated key, an ungated key's decrypt:
#     `audit verify` exits 0; gated-allow carries the key's label and
#     CKA_ID, the operation, mechanism, policy and the policy file's
#     SHA-256; gated-deny the failing predicate; evidence-appraised the
#     SHA-256 of the pushed evidence; policy-loaded, login-failed,
#     token-init, pin-init, pin-change, login, logout, initialize,
#     finalize with slot, pid and uid; no PIN and no plaintext anywhere
#     in the ledger bytes.
#  2. `audit show` filters: --event, --key-label by label and by hex
#     CKA_ID, --since/--until, --json.
#  3. Tampering seen by the tool: a flipped byte, the last batches cut
#     off (head kept), the head deleted (unless --no-head), the wrong
#     public key (exit 1); a missing ledger, a malformed PEM (exit 3).
#  4. Fail closed on a full file system (a 64 KiB tmpfs in a private mount
#     namespace; root only): audit-fsync always and batch refuse the gated
#     decrypt with 0x200 and log why; with room again the next process
#     releases and the ledger verifies.  Two regressions of bugs this
#     test found: a refused release whose record still reached the ledger
#     (the frame fit, the head did not), and batch mode releasing when the
#     disk filled while nothing was pending.
#  5. Four processes decrypting at once, rounds of it, one ledger: it
#     verifies, one gated-allow per successful decrypt.
#  6. kill -9 of a client (before and after a release): the ledger
#     verifies, the next writer continues the chain; the records lost are
#     counted (a TAP comment).
#  7. openssl pkeyutl through the libp11 engine, which exits without
#     C_Finalize: its gated-allow is written at exit.
#  8. audit-fsync always (with an Ed25519 audit key) and none (P-256)
#     produce verifiable ledgers.
#
# swtpm and tpm2-tools hang with the sanitizer runtimes preloaded, so they
# run without them; the clients keep them (client, crun).
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrextend \
	tpm2_pcrread tpm2_pcrreset tpm2_quote pkcs11-tool openssl python3 sha256sum od timeout
PC=$P11W_BUILDDIR/tests/integration/push-client
: "${P11W_TOOL:=$P11W_BUILDDIR/p11-warden}"
[ -x "$PC" ] || { echo "Bail out! $PC not built"; exit 99; }
[ -x "$P11W_TOOL" ] || { echo "Bail out! $P11W_TOOL not built"; exit 99; }

# PINs long and odd enough that finding one in the ledger's bytes cannot
# be a coincidence.
BACKEND_PIN=Backend-Pin-7rq2
WARDEN_PIN=User-Pin-4kx9
WARDEN_SO_PIN=SO-Pin-8vw3
WRONG_PIN=Wrong-Pin-2zj5
softhsm_setup
cd "$W"
T_START=$(date +%s)

client() {
	if [ -n "$P11W_SAN_PRELOAD" ]; then
		LD_PRELOAD=$P11W_SAN_PRELOAD "$@"
	else
		"$@"
	fi
}
crun() { run env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} "$@"; }

# ---------------------------------------------------------------- swtpm
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
SWTPM_PID=$!
P11W_CLEANUP+=("kill $SWTPM_PID")
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; cat "$W/tpm/log" >&2; exit 99; }
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
chmod 0644 ak.pem
set_pcr16() { tpm tpm2_pcrreset 16; tpm tpm2_pcrextend "16:sha256=$(sha256hex "$1")"; }
set_pcr16 'p11-warden audit e2e'
PCR16=$(pcr16)
[ ${#PCR16} -eq 64 ] || { echo "Bail out! cannot read PCR 16"; exit 99; }

# The quote maker push-client runs with the nonce: OUT NONCE (as in
# test-attest-push.sh, good quotes only).
cat >mkquote.sh <<'EOF'
#!/bin/bash
unset LD_PRELOAD
set -euo pipefail
out=$1 nonce=$2
d=$(mktemp -d "$out.XXXXXX")
tpm2_quote -c "$MKQ_AK" -l sha256:16 -q "$nonce" -m "$d/attest" -s "$d/sig" -o "$d/pcrs" \
	-F values -g sha256 >/dev/null
tpm2_flushcontext -t >/dev/null
tpm2_flushcontext -s >/dev/null
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
printf '{"attest": "%s", "signature": "%s", "pcrs": {"sha256": {"16": "%s"}}}\n' \
	"$(hex "$d/attest")" "$(hex "$d/sig")" "$(hex "$d/pcrs")" >"$out"
rm -rf "$d"
EOF
chmod 0755 mkquote.sh
export MKQ_AK=$AK

# ---------------------------------------------------------------- audit keys
(
	umask 077
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out audit-p256.pem 2>/dev/null
	openssl genpkey -algorithm ED25519 -out audit-ed25519.pem 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-p256.pem 2>/dev/null
)
for k in p256 ed25519; do openssl pkey -in audit-$k.pem -pubout -out pub-$k.pem; done
openssl pkey -in other-p256.pem -pubout -out pub-other.pem
[ -s pub-p256.pem ] && [ -s pub-ed25519.pem ] || { echo "Bail out! cannot make audit keys"; exit 99; }

# ---------------------------------------------------------------- configurations
mkdir -p pol audit
cat >pol/pcr16.json <<EOF
{"version": 1, "max-age": 300, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak"],
  "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "$PCR16"},
             {"claim": "tpm.clock.safe", "equals": true}]}}
EOF
chmod 0644 pol/pcr16.json
POLICY_SHA=$(sha256sum pol/pcr16.json | cut -c1-64)
warden_conf 'policy = pcr16' 'ungated = pkcs11:object=rsa-open;type=private' 'collectors = tpm'
cat >>"$W/p11-warden.conf" <<EOF
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
mv p11-warden.conf base.conf
unset P11_WARDEN_CONF
# mkconf NAME pull|push LEDGER KEY [MODULE LINE...]: $W/NAME.conf, the
# slot with the tpm collector (pull) or none (push: pushed evidence only),
# the ledger LEDGER signed with KEY, and more [module] lines.
mkconf() {
	local name=$1 how=$2 ledger=$3 key=$4 l
	shift 4
	while IFS= read -r l; do
		[ "$how" = push ] && [ "$l" = "collectors = tpm" ] && continue
		printf '%s\n' "$l"
		if [ "$l" = "[module]" ]; then
			printf 'audit-ledger = %s\naudit-key = %s\n' "$ledger" "$key"
			for l in "$@"; do printf '%s\n' "$l"; done
		fi
	done <base.conf >"$name.conf"
}
L1=$W/audit/main.ledger
mkconf pull pull "$L1" "$W/audit-p256.pem"
mkconf push push "$L1" "$W/audit-p256.pem"

# with CONF CMD...: a client (through `run`) with $W/CONF.conf; prefixed
# with ${NS[@]} (nsenter into the disk-full test's mount namespace).
NS=()
with() {
	local c=$1
	shift
	run "${NS[@]}" env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} P11_WARDEN_CONF="$W/$c.conf" "$@"
}
U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
GID=a1b2c3d4 OID=02
dec_gated() { with "$1" "${U[@]}" --decrypt -m RSA-PKCS --id $GID -i ct.gated -o "$2"; }
n_ev=0
# pcq CONF OUT [push-client OPTIONS...]: push-client with a fresh quote
# (made by $W/$MKQ, default mkquote.sh); $EV is the evidence it pushed.
pcq() {
	local c=$1 o=$2
	shift 2
	n_ev=$((n_ev + 1))
	EV=$W/ev$n_ev.json
	with "$c" "$PC" "$P11W_MODULE" --token "$WARDEN_LABEL" --pin "$WARDEN_PIN" --key rsa-gated \
		--in ct.gated --out "$o" --evidence "$EV" "$@" --run "$W/${MKQ:-mkquote.sh}" "$EV"
}
val() { sed -n "s/^$1=//p" "$out" | head -1; }
is() { [ "$(val "$1")" = "$2" ]; }
decrypt_ok() { is decrypt.rv '0x0 CKR_OK'; }
decrypt_denied() { is decrypt.rv '0x200 CKR_FUNCTION_REJECTED'; }

# ---------------------------------------------------------------- ledger readers
cat >jl.py <<'EOF'
# jl.py FILE EXPR: the JSON lines of FILE as R (a list of dicts), EXPR
# evaluated over them: exit 0 if true, 1 if false; other values printed.
import json, sys
R = []
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if line.strip():
        try:
            R.append(json.loads(line))
        except ValueError as e:
            print("line %d: not JSON: %s" % (n, e), file=sys.stderr)
            sys.exit(2)
def batches():  # the records each checkpoint closes
    out, cur = [], []
    for r in R:
        if r["event"] == "checkpoint":
            out.append(cur) if cur else None
            cur = []
        elif r["event"] != "genesis":
            cur.append(r)
    return out
def ev(name, **kw):
    return [r for r in R if r.get("event") == name and all(r.get(k) == v for k, v in kw.items())]
v = eval(sys.argv[2])
if isinstance(v, bool):
    sys.exit(0 if v else 1)
print(v)
EOF
# frames.py LEDGER: "INDEX OFFSET LENGTH KIND" per frame (KIND checkpoint
# for a COSE_Sign1, tag 18, else record); frames.py LEDGER flip N: invert
# a byte in the middle of frame N's record.
cat >frames.py <<'EOF'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
frames, off = [], 0
while off + 4 <= len(data):
    (n,) = struct.unpack(">I", data[off:off + 4])
    if off + 8 + n > len(data):
        break
    frames.append((off, n, "checkpoint" if data[off + 4] == 0xd2 else "record"))
    off += 8 + n
if len(sys.argv) > 3 and sys.argv[2] == "flip":
    o, n, _ = frames[int(sys.argv[3])]
    data[o + 4 + n // 2] ^= 0x01
    open(sys.argv[1], "wb").write(data)
else:
    for i, (o, n, k) in enumerate(frames):
        print(i, o, n, k)
EOF
# lo.py MODULE TOKEN PIN: a client that calls C_Logout (pkcs11-tool never
# does): C_Initialize, C_OpenSession on the token labelled TOKEN, C_Login
# (user), C_Logout, C_CloseSession, C_Finalize; through ctypes.
cat >lo.py <<'EOF'
import ctypes as C, sys
UL = C.c_ulong
lib = C.CDLL(sys.argv[1])
class Ver(C.Structure):
    _fields_ = [("major", C.c_ubyte), ("minor", C.c_ubyte)]
class FL(C.Structure):  # CK_FUNCTION_LIST up to C_Logout
    _fields_ = [("version", Ver)] + [("f%d" % i, C.c_void_p) for i in range(20)]
class TokenInfo(C.Structure):
    _fields_ = [("label", C.c_char * 32), ("rest", C.c_ubyte * 512)]
fl = C.POINTER(FL)()
if lib.C_GetFunctionList(C.byref(fl)) != 0:
    sys.exit("C_GetFunctionList failed")
def fn(i, *args):
    return C.CFUNCTYPE(UL, *args)(getattr(fl.contents, "f%d" % i))
def ck(name, rv):
    print("%s=0x%x" % (name, rv))
    if rv != 0:
        sys.exit(1)
ck("C_Initialize", fn(0, C.c_void_p)(None))
n = UL(0)
get_slots = fn(4, C.c_ubyte, C.c_void_p, C.POINTER(UL))
ck("C_GetSlotList", get_slots(1, None, C.byref(n)))
slots = (UL * max(n.value, 1))()
ck("C_GetSlotList", get_slots(1, slots, C.byref(n)))
slot = None
for s in slots[: n.value]:
    ti = TokenInfo()
    ck("C_GetTokenInfo", fn(6, UL, C.c_void_p)(s, C.byref(ti)))
    if ti.label.decode().rstrip() == sys.argv[2]:
        slot = s
if slot is None:
    sys.exit("no token " + sys.argv[2])
h = UL(0)
ck("C_OpenSession", fn(12, UL, UL, C.c_void_p, C.c_void_p, C.POINTER(UL))(slot, 6, None, None, C.byref(h)))
pin = sys.argv[3].encode()
ck("C_Login", fn(18, UL, UL, C.c_char_p, UL)(h, 1, pin, len(pin)))
ck("C_Logout", fn(19, UL)(h))
ck("C_CloseSession", fn(13, UL)(h))
ck("C_Finalize", fn(1, C.c_void_p)(None))
EOF
jl() { python3 "$W/jl.py" "$@"; }
# show LEDGER [ARGS...]: `audit show --json` into $out (through `run`),
# with the public key $PUB (default the P-256 one).
show() {
	local l=$1
	shift
	run "${NS[@]}" "$P11W_TOOL" --json audit show "$l" --key "${PUB:-$W/pub-p256.pem}" "$@"
}
# verify LEDGER [ARGS...]: `audit verify` with $PUB (default P-256).
verify() {
	local l=$1
	shift
	run "${NS[@]}" "$P11W_TOOL" audit verify "$l" --key "${PUB:-$W/pub-p256.pem}" "$@"
}
not() { ! "$@"; }
exit_is() { [ "$rc" -eq "$1" ]; }
# jq_out EXPR: EXPR over the last run's JSON lines.
jq_out() { jl "$out" "$1"; }

# ================================================================ 1. what is recorded
export P11_WARDEN_CONF=$W/pull.conf
client warden_init 2>init.err || { echo "Bail out! warden_init failed"; cat init.err >&2; exit 99; }
for k in "$GID rsa-gated" "$OID rsa-open"; do
	set -- $k
	client "${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1 &&
		client "${U[@]}" --read-object --type pubkey --id "$1" -o "pub-$2.der" >/dev/null 2>&1 ||
		{ echo "Bail out! cannot make $2"; exit 99; }
done
unset P11_WARDEN_CONF
PLAINTEXT='audit-e2e plaintext Qx7Lm3Vb'
printf '%s\n' "$PLAINTEXT" >msg
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub-rsa-gated.der -in msg -out ct.gated
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub-rsa-open.der -in msg -out ct.open

with pull pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login \
	--pin "$WRONG_PIN" --list-objects
t "a login with a wrong PIN fails" failed_cleanly
dec_gated pull pt.pull
t "PCR 16 as expected: pkcs11-tool decrypts with the gated key (collector quote)" same_file pt.pull msg
pcq push pt.push
t "pushed quote: push-client's verdict passes and the gated key decrypts" decrypt_ok
t "... the plaintext" same_file pt.push msg
PUSHED_EV_SHA=$(sha256sum "$EV" | cut -c1-64)
with pull "${U[@]}" --decrypt -m RSA-PKCS --id $OID -i ct.open -o pt.open
t "the ungated key decrypts" same_file pt.open msg
with pull python3 lo.py "$P11W_MODULE" "$WARDEN_LABEL" "$WARDEN_PIN"
t "a client logs in and out (C_Logout)" in_out '^C_Logout=0x0$'
NEW_PIN=New-Pin-6hd1
with pull "${U[@]}" --change-pin --new-pin "$NEW_PIN"
t "pkcs11-tool --change-pin" succeeded
with pull pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$NEW_PIN" \
	--change-pin --new-pin "$WARDEN_PIN"
t "... and back" succeeded
sleep 1 # the --since boundary below falls between release and denial
T_DENY=$(date +%s)
set_pcr16 'another boot'
dec_gated pull pt.denied
t "PCR 16 changed: the gated decrypt is refused (0x200)" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... no plaintext" empty_or_absent pt.denied
set_pcr16 'p11-warden audit e2e'
T_END=$(date +%s)

verify "$L1"
t "audit verify: the ledger is intact (exit 0)" exit_is 0
sed 's/^/# /' "$out"
show "$L1" --event gated-allow
t "audit show --json --event gated-allow: two records (pulled and pushed)" \
	jq_out 'len(R) == 2 and all(r["event"] == "gated-allow" for r in R)'
t "... key label rsa-gated and CKA_ID $GID in hex" \
	jq_out "all(r.get('key-label') == 'rsa-gated' and r.get('key-id') == '$GID' for r in R)"
t "... operation decrypt, mechanism CKM_RSA_PKCS (1), verdict allow, slot hsm" \
	jq_out "all(r.get('operation') == 'decrypt' and r.get('mechanism') == 1 and r.get('verdict') == 'allow' and r.get('slot') == 'hsm' for r in R)"
t "... policy pcr16 with the SHA-256 of its file (sha256sum)" \
	jq_out "all(r.get('policy') == 'pcr16' and r.get('policy-digest') == '$POLICY_SHA' for r in R)"
t "... pid and uid ($(id -u))" jq_out "all(r.get('pid', 0) > 0 and r.get('uid') == $(id -u) for r in R)"
t "... in two processes" jq_out 'len(set(r["pid"] for r in R)) == 2'
show "$L1" --event gated-deny
t "gated-deny: one record, key rsa-gated ($GID), decrypt, mechanism 1, policy pcr16 and its digest" \
	jq_out "len(R) == 1 and all(r.get('key-label') == 'rsa-gated' and r.get('key-id') == '$GID' and r.get('operation') == 'decrypt' and r.get('mechanism') == 1 and r.get('verdict') == 'deny' and r.get('policy') == 'pcr16' and r.get('policy-digest') == '$POLICY_SHA' for r in R)"
t "... the reason names the failing predicate \$.rule.claims[0] (PCR 16)" \
	jq_out "'\$.rule.claims[0]' in R[0].get('reason', '') and 'tpm.pcr.sha256.16' in R[0].get('reason', '')"
jl "$out" 'R[0].get("reason")' | cut -c1-200 | sed 's/^/# reason: /'
show "$L1" --event evidence-appraised
t "evidence-appraised: pulled ones pass with anchor ak and a SHA-256" \
	jq_out "any(r.get('verdict') == 'pass' and r.get('anchor') == 'ak' and r.get('format') == 'tpm2-quote' and len(r.get('evidence-digest', '')) == 64 and 'pulled' in r.get('reason', '') for r in R)"
t "... the pushed one carries the sha256sum of the file push-client pushed" \
	jq_out "any(r.get('evidence-digest') == '$PUSHED_EV_SHA' and r.get('verdict') == 'pass' and 'pushed' in r.get('reason', '') for r in R)"
t "... every evidence digest is distinct (a fresh quote each time)" \
	jq_out 'len(set(r["evidence-digest"] for r in R)) == len(R)'
show "$L1" --event policy-loaded
t "policy-loaded: pcr16 with the SHA-256 of its file" \
	jq_out "len(R) > 0 and all(r.get('policy') == 'pcr16' and r.get('policy-digest') == '$POLICY_SHA' and r.get('verdict') == 'pass' for r in R)"
show "$L1"
cp "$out" all.json
t "token-init (user so, pass, slot hsm)" \
	jq_out "len(ev('token-init', slot='hsm', user='so', verdict='pass')) == 1"
t "pin-init (user so, pass, slot hsm)" \
	jq_out "len(ev('pin-init', slot='hsm', user='so', verdict='pass')) == 1"
t "login-failed (user, slot hsm) with CKR_PIN_INCORRECT" \
	jq_out "len(ev('login-failed', slot='hsm', user='user')) == 1 and 'PIN_INCORRECT' in ev('login-failed')[0].get('reason', '')"
t "login of the user and of the SO (slot hsm, pass)" \
	jq_out "len(ev('login', slot='hsm', user='user', verdict='pass')) >= 4 and len(ev('login', slot='hsm', user='so')) >= 1"
t "logout (slot hsm, pass) by the C_Logout client's pid" \
	jq_out "len([r for r in ev('logout', slot='hsm', verdict='pass') if 'last session' not in r.get('reason', '')]) == 1"
t "... and a logout record when a logged-in process closes its last session" \
	jq_out "len([r for r in ev('logout', slot='hsm') if 'last session closed' in r.get('reason', '')]) >= 1"
t "pin-change twice (slot hsm, pass)" jq_out "len(ev('pin-change', slot='hsm', verdict='pass')) == 2"
t "initialize in every process, finalize in those that call C_Finalize (those that decrypted)" \
	jq_out "len(ev('initialize')) >= 10 and {r['pid'] for r in ev('finalize')} <= {r['pid'] for r in ev('initialize')} and {r['pid'] for r in ev('gated-allow') + ev('gated-deny') + ev('logout')} <= {r['pid'] for r in ev('finalize')}"
jl all.json "'%d process(es) without finalize: %s' % (len(ev('initialize')) - len(ev('finalize')), '; '.join(','.join(x['event'] for x in R if x.get('pid') == r['pid']) for r in ev('initialize') if r['pid'] not in {f['pid'] for f in ev('finalize')}))" |
	sed 's/^/# (pkcs11-tool --change-pin exits without C_Finalize) /'
t "every record but checkpoints has a pid and the uid" \
	jq_out "all(r.get('pid', 0) > 0 and r.get('uid') == $(id -u) for r in R if r['event'] not in ('checkpoint', 'genesis'))"
t "sequence numbers 0, 1, 2, ... and checkpoints among them" \
	jq_out "[r['seq'] for r in R] == list(range(len(R))) and len(ev('checkpoint')) > 0"
jl all.json '" ".join("%s:%d" % (e, len(ev(e))) for e in sorted(set(r["event"] for r in R)))' | sed 's/^/# events: /'
for s in "$WARDEN_PIN" "$WARDEN_SO_PIN" "$WRONG_PIN" "$NEW_PIN" "$BACKEND_PIN"; do
	check "the PIN '$s' is nowhere in the ledger's bytes" not grep -aqF -e "$s" "$L1" "$L1.head"
done
check "the plaintext is nowhere in the ledger's bytes" not grep -aqF -e "$PLAINTEXT" "$L1"
check "... nor in show's output" not grep -qF -e "$PLAINTEXT" all.json

# ================================================================ 2. audit show filters
show "$L1" --event login-failed
t "show --event login-failed: just that record" jq_out 'len(R) == 1 and R[0]["event"] == "login-failed"'
show "$L1" --key-label rsa-gated
t "show --key-label rsa-gated: the two releases and the denial, nothing else" \
	jq_out "sorted(r['event'] for r in R) == ['gated-allow', 'gated-allow', 'gated-deny'] and all(r['key-label'] == 'rsa-gated' for r in R)"
jl "$out" '[r["seq"] for r in R]' >by-label.seqs
show "$L1" --key-label $GID
jl "$out" '[r["seq"] for r in R]' >by-id.seqs
t "show --key-label $GID (CKA_ID in hex): the same records" same_file by-id.seqs by-label.seqs
show "$L1" --key-label A1B2C3D4
t "... in upper-case hex too" jq_out 'len(R) == 3'
show "$L1" --key-label rsa-open
t "show --key-label rsa-open: the ungated key's decrypt is no gate decision (no record)" \
	jq_out 'len(R) == 0'
show "$L1" --key-label 0badc0de
t "show --key-label of an unknown id: no lines, exit 0" jq_out 'len(R) == 0 and True'
show "$L1" --event gated-allow --key-label rsa-gated
t "show --event gated-allow --key-label rsa-gated: both filters apply" \
	jq_out 'len(R) == 2 and all(r["event"] == "gated-allow" for r in R)'
show "$L1" --key-label rsa-gated --since "$T_DENY"
t "show --since (epoch seconds, after the releases): only the denial" \
	jq_out 'len(R) == 1 and R[0]["event"] == "gated-deny"'
show "$L1" --key-label rsa-gated --since "$(date -u -d "@$T_DENY" +%Y-%m-%dT%H:%M:%S)"
t "show --since YYYY-MM-DDTHH:MM:SS (UTC): the same" \
	jq_out 'len(R) == 1 and R[0]["event"] == "gated-deny"'
show "$L1" --key-label rsa-gated --until "$T_DENY"
t "show --until (before the denial): only the two releases" \
	jq_out 'len(R) == 2 and all(r["event"] == "gated-allow" for r in R)'
show "$L1" --since 2001-01-01 --until 2001-01-02
t "show with a window that excludes everything (2001): no lines, exit 0" \
	test "$rc" -eq 0 -a ! -s "$out"
show "$L1" --since $((T_END + 86400))
t "show --since tomorrow: no lines" test "$rc" -eq 0 -a ! -s "$out"
show "$L1" --since "$T_START" --until $((T_END + 1))
t "show --since start --until end: every record" test "$(wc -l <"$out")" -eq "$(wc -l <all.json)"
run "$P11W_TOOL" audit show "$L1" --key "$W/pub-p256.pem" --since yesterday
t "show --since with a bad time: usage error (exit 2)" exit_is 2
t "--json: every line of the whole ledger parses as JSON" jl all.json 'len(R) > 0'
run "$P11W_TOOL" audit show "$L1" --key "$W/pub-p256.pem"
t "human-readable show: one line per record" test "$(wc -l <"$out")" -eq "$(wc -l <all.json)"
t "... a release reads key, id, op, mechanism, verdict and policy" \
	in_out "gated-allow +slot=hsm key='rsa-gated' id=$GID op=decrypt mech=0x1 allow policy=pcr16 "

# ================================================================ 3. tampering
mkdir -p tamper
# tcopy NAME: a copy of the main ledger and its head as tamper/NAME.
tcopy() { cp "$L1" "tamper/$1"; cp "$L1.head" "tamper/$1.head"; }
python3 frames.py "$L1" >frames.txt
NF=$(wc -l <frames.txt)
# The middle frame if it is a record, else the one before.
MID=$((NF / 2))
[ "$(awk -v i=$MID '$1 == i { print $4 }' frames.txt)" = record ] || MID=$((MID - 1))
tcopy flip
python3 frames.py tamper/flip flip $MID
verify tamper/flip
t "a byte flipped in record $MID of $NF: audit verify exits 1" exit_is 1
t "... naming record $MID" in_out "NOT intact: record $MID "
sed 's/^/# /' "$out"
show tamper/flip
t "... audit show --key on it exits 1 too" exit_is 1
# Cut off after an earlier checkpoint, 3 batches from the end; keep the head.
CUT=$(awk '$4 == "checkpoint" { print $2 + $3 + 8 }' frames.txt | tail -4 | head -1)
tcopy cut
truncate -s "$CUT" tamper/cut
verify tamper/cut
t "the last batches cut off at a checkpoint (offset $CUT), head kept: exit 1" exit_is 1
t "... the head names what is gone (truncation)" in_out 'NOT intact: .*(head|trunc)'
sed 's/^/# /' "$out"
verify tamper/cut --no-head
t "... --no-head does not ignore a head that is there: exit 1" exit_is 1
rm tamper/cut.head
verify tamper/cut --no-head
t "... the cut ledger without its head, --no-head: exit 0 (the head is what catches a cut)" exit_is 0
tcopy nohead
rm tamper/nohead.head
verify tamper/nohead
t "the head file deleted: exit 1" exit_is 1
sed 's/^/# /' "$out" "$err"
verify tamper/nohead --no-head
t "... with --no-head: exit 0" exit_is 0
verify tamper/nohead --head "$L1.head"
t "... with --head naming a copy of the head: exit 0" exit_is 0
run "$P11W_TOOL" audit verify "$L1" --key "$W/pub-other.pem"
t "another P-256 public key: exit 1" exit_is 1
sed 's/^/# /' "$out"
run "$P11W_TOOL" audit verify "$L1" --key "$W/pub-ed25519.pem"
t "an Ed25519 public key for a P-256 ledger: exit 1" exit_is 1
verify "$W/no-such.ledger"
t "a missing ledger: exit 3" exit_is 3
sed 's/^/# /' "$err"
{ echo '-----BEGIN PUBLIC KEY-----'; echo 'bm90IGEga2V5IGF0IGFsbA=='; echo '-----END PUBLIC KEY-----'; } >bad.pem
run "$P11W_TOOL" audit verify "$L1" --key "$W/bad.pem"
t "a malformed PEM public key: exit 3" exit_is 3
run "$P11W_TOOL" audit verify "$L1" --key "$W/no-such.pem"
t "a missing public key file: exit 3" exit_is 3
run "$P11W_TOOL" audit verify "$L1"
t "verify without --key: usage error (exit 2)" exit_is 2
verify "$L1"
t "(the original still verifies)" exit_is 0
# Without the key: forged records appended after the last checkpoint
# (chained, unsigned) are not accepted as intact...
tcopy forged
python3 "$P11W_SRCDIR/tests/integration/ledger-forge.py" append tamper/forged 0 3
verify tamper/forged
t "3 forged records appended after the last checkpoint: exit 1 (not authenticated)" exit_is 1
t "... saying so" in_out "NOT intact: .*3 unsigned record\\(s\\), NOT authenticated"
verify tamper/forged --allow-unsigned-tail
t "... --allow-unsigned-tail (a crash's leftovers): exit 0, 'intact up to its last checkpoint'" \
	bash -c "[ $rc -eq 0 ] && grep -q 'intact up to its last checkpoint' '$out'"
run "$P11W_TOOL" audit show tamper/forged --key "${PUB:-$W/pub-p256.pem}"
t "... audit show --key: exit 1, and stderr says which records are not authenticated" \
	bash -c "[ $rc -eq 1 ] && grep -q 'NOT authenticated' '$err'"
# ... and a rollback of the ledger with its head rewritten to match (all
# an attacker at the directory needs) verifies, but its last checkpoint is
# not the one the module logged: the log is the anchor out of reach.
# The head deleted and a record of the second batch damaged: a writer
# must not take what follows the first batch for a crash's tail and cut
# it (review finding 10); it refuses the ledger, which keeps every byte.
tcopy headless
rm tamper/headless.head
SECOND=$(awk '$4 == "checkpoint" { n++ } n == 1 && $4 == "record" { print $1; exit }' frames.txt)
python3 frames.py tamper/headless flip "$SECOND"
size_before=$(stat -c %s tamper/headless)
mkconf headless pull "$W/tamper/headless" "$W/audit-p256.pem"
with headless pkcs11-tool --module "$P11W_MODULE" -L
t "a headless ledger with a damaged second batch: the module refuses it (C_Initialize fails)" \
	bash -c "[ $rc -ne 0 ] && grep -q 'head is missing but the ledger holds' '$err'"
t "... and cuts nothing" test "$(stat -c %s tamper/headless)" = "$size_before"
# The last checkpoint's signature re-encoded (s -> n - s, still a valid
# ECDSA signature): refused, so that each checkpoint has one frame hash.
tcopy highs
python3 "$P11W_SRCDIR/tests/integration/ledger-forge.py" highs tamper/highs
verify tamper/highs
t "a checkpoint signature re-encoded with the high s: exit 1 (low-S only)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'low form' '$out'"
# One more process at log level info writes a batch and logs its
# checkpoint (the line syslog would keep).
sed 's/^log-level = .*/log-level = info/' pull.conf >pullinfo.conf
with pullinfo pkcs11-tool --module "$P11W_MODULE" -L
LOGGED=$(sed -n "s|.*audit ledger: $L1: checkpoint \\([0-9]* [0-9a-f]*\\)\$|\\1|p" "$err" | tail -1)
t "the module logs each checkpoint it writes (sequence number and frame hash)" test -n "$LOGGED"
tcopy rolled
python3 "$P11W_SRCDIR/tests/integration/ledger-forge.py" rollback tamper/rolled 1 0
verify tamper/rolled
t "a rollback to checkpoint 1 with a matching head: the files alone verify (exit 0)" exit_is 0
ROLLED_LAST=$(sed -n 's/^last checkpoint: \([0-9]* [0-9a-f]*\) .*/\1/p' "$out")
verify "$L1"
REAL_LAST=$(sed -n 's/^last checkpoint: \([0-9]* [0-9a-f]*\) .*/\1/p' "$out")
t "... but its last checkpoint ($ROLLED_LAST) is not the one the module logged last ($LOGGED)" \
	test "$ROLLED_LAST" != "$LOGGED"
t "... while the real ledger's is" test "$REAL_LAST" = "$LOGGED"

# ================================================================ 4. fail closed: disk full
# A 64 KiB tmpfs in a private mount namespace (a `sleep` holds it; every
# command that should see it runs through nsenter, ${NS[@]}).
DISK_CHECKS=15
disk_skip() {
	if [ "${P11W_REQUIRE_ALL:-0}" = 1 ]; then
		not_ok "disk full: $1 (P11W_REQUIRE_ALL=1)"
	else
		for _ in $(seq $DISK_CHECKS); do ok "# SKIP disk full: $1"; done
	fi
}
mkdir -p small
NSPID=
if [ "$(id -u)" != 0 ]; then
	disk_skip "needs root (a tmpfs in a private mount namespace)"
elif ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null || ! unshare -m true 2>/dev/null; then
	disk_skip "unshare -m / nsenter unavailable"
else
	unshare -m --propagation private sleep 600 &
	NSPID=$!
	P11W_CLEANUP+=("kill $NSPID")
	for _ in $(seq 100); do
		[ "$(readlink /proc/$NSPID/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && break
		sleep 0.02
	done
	if ! nsenter -t "$NSPID" -m mount -t tmpfs -o size=64k,mode=0700 tmpfs "$W/small" 2>mount.err; then
		sed 's/^/# /' mount.err
		disk_skip "cannot mount a tmpfs"
		NSPID=
	fi
fi
if [ -n "$NSPID" ]; then
	NS=(nsenter -t "$NSPID" -m --wd="$W")
	FILL="head -c 1048576 /dev/zero >'$W/small/filler' 2>/dev/null; true"
	mkconf full-always push "$W/small/always.ledger" "$W/audit-p256.pem" 'audit-fsync = always'
	mkconf full-batch push "$W/small/batch.ledger" "$W/audit-p256.pem" 'audit-fsync = batch' \
		'audit-batch-ms = 100'
	# The quote maker that fills the file system first (before the push).
	printf '#!/bin/sh\n%s\nexec "%s/mkquote.sh" "$@"\n' "$FILL" "$W" >fillq.sh
	chmod 0755 fillq.sh
	free_space() { "${NS[@]}" rm -f "$W/small/filler"; }
	# the refusal's reason in the module's log: the audit ledger cannot be written
	ledger_refusal_logged() { in_err "audit ledger.*(No space left|cannot be written)|(No space left|cannot be written).*audit ledger"; }

	pcq full-always pt.fa1
	t "disk full, fsync always: with room the gated key decrypts (ledger on the 64 KiB tmpfs)" decrypt_ok
	pcq full-always pt.fa2 --after-push "$FILL; sleep 0.2"
	t "... tmpfs filled after the push (--after-push): the verdict was pass" is verdict1.status pass
	t "... the decrypt is refused (0x200)" decrypt_denied
	t "... no plaintext" empty_or_absent pt.fa2
	t "... the module logs that the audit ledger cannot be written" ledger_refusal_logged
	grep -m2 -h 'audit ledger' "$err" | cut -c1-300 | sed 's/^/# log: /'
	free_space
	pcq full-always pt.fa3
	t "... space freed: a new process releases again" decrypt_ok
	verify "$W/small/always.ledger"
	t "... and audit verify passes (exit 0)" exit_is 0
	sed 's/^/# /' "$out"
	show "$W/small/always.ledger" --event gated-allow
	t "... its gated-allow records: the two releases, not the refused one (a batch whose head cannot be written is cut back)" \
		jq_out 'len(R) == 2'
	jl "$out" '"; ".join("seq %d pid %d" % (r["seq"], r["pid"]) for r in R)' | sed 's/^/# gated-allow records: /'

	pcq full-batch pt.fb1
	t "disk full, fsync batch (100 ms): with room the gated key decrypts" decrypt_ok
	# Filled before the push: the evidence-appraised record is pending, the
	# flusher's write fails within 100 ms, the ledger is unhealthy.
	MKQ=fillq.sh pcq full-batch pt.fb2 --after-push "sleep 0.5"
	t "... tmpfs filled, then 0.5 s: the decrypt is refused (0x200)" decrypt_denied
	t "... no plaintext" empty_or_absent pt.fb2
	t "... the module logs that the audit ledger cannot be written" ledger_refusal_logged
	grep -m2 -h 'audit ledger' "$err" | cut -c1-300 | sed 's/^/# log: /'
	free_space
	# Filled in --after-push once the flusher has written everything (0.3 s):
	# nothing is pending; the flusher's look at the room left sees it.
	pcq full-batch pt.fb3 --after-push "sleep 0.3; $FILL; sleep 0.5"
	t "... filled in --after-push with nothing pending, then 0.5 s: the decrypt is refused (the flusher watches the room left)" \
		decrypt_denied
	echo "# decrypt.rv=$(val decrypt.rv)"
	grep -m2 -h 'audit ledger' "$err" | cut -c1-300 | sed 's/^/# log: /'
	free_space
	pcq full-batch pt.fb4
	t "... space freed: a new process releases again" decrypt_ok
	verify "$W/small/batch.ledger"
	t "... and audit verify passes: the batches lost to ENOSPC did not corrupt it" exit_is 0
	sed 's/^/# /' "$out"
	show "$W/small/batch.ledger" --event gated-allow
	echo "# batch ledger: $(jl "$out" 'len(R)') gated-allow record(s) for 2 or 3 releases"
	NS=()
	kill "$NSPID" 2>/dev/null || true
fi

# ================================================================ 5. concurrency
LC=$W/audit/conc.ledger
mkconf conc pull "$LC" "$W/audit-p256.pem" 'audit-batch-max = 2' 'audit-batch-ms = 20'
ROUNDS=3 released=0 tried=0 softhsm=0
for r in $(seq $ROUNDS); do
	pids=()
	for i in 1 2 3 4; do
		client timeout 60 env P11_WARDEN_CONF="$W/conc.conf" "${U[@]}" --decrypt -m RSA-PKCS \
			--id $GID -i ct.gated -o "pt.c$r.$i" >"conc.$r.$i.out" 2>"conc.$r.$i.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	for i in 1 2 3 4; do
		tried=$((tried + 1))
		if cmp -s "pt.c$r.$i" msg; then
			released=$((released + 1))
		elif grep -q "no backend token matches" "conc.$r.$i.err"; then
			# SoftHSM 2.6 rewrites token.object at each login: a process
			# that reads it meanwhile sees no token (before any gate).
			softhsm=$((softhsm + 1))
		else
			grep -v 'also registered with p11-kit' "conc.$r.$i.err" | sed "s/^/# round $r, process $i: /"
		fi
	done
done
[ $softhsm = 0 ] || echo "# $softhsm process(es) found no backend token (SoftHSM read its token file while another process rewrote it): no gate decision there"
t "4 pkcs11-tool processes at once, $ROUNDS rounds: every decrypt released ($released of $tried; $softhsm lost to SoftHSM)" \
	test "$released" -eq $((tried - softhsm)) -a "$released" -ge $((tried - 2))
verify "$LC"
t "... the shared ledger verifies" exit_is 0
sed 's/^/# /' "$out"
show "$LC"
t "... gated-allow records: one per successful decrypt ($released)" \
	jq_out "len(ev('gated-allow')) == $released"
t "... from $released distinct processes" jq_out "len({r['pid'] for r in ev('gated-allow')}) == $released"
t "... sequence numbers 0..n-1 with no gap or repeat" jq_out "[r['seq'] for r in R] == list(range(len(R)))"
t "... each batch is one process's: no checkpoint closes records of two processes" \
	jq_out "all(len({r['pid'] for r in b}) == 1 for b in batches())"
echo "# $(jl "$out" 'len(batches())') batches; $(jl "$out" 'sum(1 for a, b in zip(batches(), batches()[1:]) if a[0]["pid"] != b[0]["pid"])') times the writer changed between consecutive batches"

# ================================================================ 6. kill -9
L6=$W/audit/crash.ledger
mkconf crash push "$L6" "$W/audit-p256.pem"
mkconf crash-slow push "$L6" "$W/audit-p256.pem" 'audit-batch-ms = 10000'
mkconf crash-next pull "$L6" "$W/audit-p256.pem"
pcq crash pt.k0
t "kill -9: a first release on a fresh ledger" decrypt_ok
# pid_events LEDGER PID: the events of PID's records, comma-separated.
pid_events() { "$P11W_TOOL" --json audit show "$1" --key "$W/pub-p256.pem" >pe.json; jl pe.json "','.join(r['event'] for r in R if r.get('pid') == $2)"; }
pcq crash pt.k1 --after-push "echo \$PPID >'$W/k1.pid'; kill -9 \$PPID"
t "push-client killed with kill -9 in --after-push (after the push, before the decrypt)" killed
t "... no plaintext" empty_or_absent pt.k1
verify "$L6"
t "... audit verify passes" exit_is 0
sed 's/^/# /' "$out"
K1=$(cat k1.pid)
left=$(pid_events "$L6" "$K1")
echo "# kill -9 before the release (batch-ms 200): pid $K1 left ${left:-nothing}: $((4 - $(tr ',' '\n' <<<"$left" | grep -vc '^checkpoint$\|^$'))) of the 4 records it had appended (initialize, policy-loaded, login, evidence-appraised) lost with its buffer"

# kill9_after_release CONF WAIT: push-client releases, then blocks opening
# --out (a FIFO nobody reads); after WAIT seconds it is killed with kill -9.
kill9_after_release() {
	local c=$1 wait=$2 pid
	n_ev=$((n_ev + 1))
	EV=$W/ev$n_ev.json
	rm -f fifo
	mkfifo fifo
	# Not through a shell function: $! must be push-client's pid (env execs it).
	env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} P11_WARDEN_CONF="$W/$c.conf" \
		"$PC" "$P11W_MODULE" --token "$WARDEN_LABEL" \
		--pin "$WARDEN_PIN" --key rsa-gated --in ct.gated --out "$W/fifo" --evidence "$EV" \
		--run "$W/mkquote.sh" "$EV" >kill.out 2>kill.err &
	pid=$!
	P11W_CLEANUP+=("kill -9 $pid")
	KPID=$pid BLOCKED=0
	for _ in $(seq 200); do
		if [ "$(cat /proc/$pid/wchan 2>/dev/null)" = wait_for_partner ] ||
			grep -q '^257 ' /proc/$pid/syscall 2>/dev/null; then
			BLOCKED=1
			break
		fi
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	[ "$BLOCKED" = 1 ] || sed 's/^/# /' kill.out kill.err
	sleep "$wait"
	kill -9 $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	rm -f fifo
}
kill9_after_release crash 0.6
t "kill -9 after a release (blocked writing the plaintext to a FIFO), batch-ms 200, 0.6 s later" \
	test "$BLOCKED" = 1
verify "$L6"
t "... audit verify passes" exit_is 0
t "... the release older than batch-ms was durable: its gated-allow is there" \
	grep -q 'gated-allow' <<<"$(pid_events "$L6" "$KPID")"
echo "# pid $KPID left: $(pid_events "$L6" "$KPID")"
kill9_after_release crash-slow 0
t "kill -9 right after a release, batch-ms 10000" test "$BLOCKED" = 1
verify "$L6"
t "... audit verify passes" exit_is 0
sed 's/^/# /' "$out"
left=$(pid_events "$L6" "$KPID")
echo "# kill -9 within batch-ms (10 s): pid $KPID left ${left:-nothing}: $((5 - $(tr ',' '\n' <<<"$left" | grep -vc '^checkpoint$\|^$'))) of its 5 records (initialize, policy-loaded, login, evidence-appraised, gated-allow) lost, as documented (the unwritten batch)"
SEQ_BEFORE=$(jl pe.json 'R[-1]["seq"]')
dec_gated crash-next pt.k3
t "the next writer (pkcs11-tool, pulled quote) releases on the same ledger" same_file pt.k3 msg
verify "$L6"
t "... audit verify passes" exit_is 0
show "$L6"
t "... it continued the chain: sequence numbers contiguous, its records after seq $SEQ_BEFORE" \
	jq_out "[r['seq'] for r in R] == list(range(len(R))) and R[-1]['seq'] > $SEQ_BEFORE and ev('gated-allow')[-1]['seq'] > $SEQ_BEFORE"

# ================================================================ 7. exit without C_Finalize
L7=$W/audit/ossl.ledger
mkconf ossl pull "$L7" "$W/audit-p256.pem" 'audit-batch-ms = 10000'
export PKCS11_MODULE_PATH=$P11W_MODULE
if client openssl engine pkcs11 -t 2>/dev/null | grep -q available; then
	with ossl openssl pkeyutl -engine pkcs11 -keyform engine -decrypt \
		-inkey "pkcs11:token=$WARDEN_LABEL;object=rsa-gated;type=private?pin-value=$WARDEN_PIN" \
		-in ct.gated -out pt.ossl
	t "openssl pkeyutl -decrypt (libp11 engine) with the gated key (batch-ms 10000)" same_file pt.ossl msg
	show "$L7"
	t "... the process never called C_Finalize (initialize, no finalize)" \
		jq_out "len(ev('initialize')) == 1 and len(ev('finalize')) == 0"
	t "... yet its gated-allow is written (the module flushes at exit)" \
		jq_out "len(ev('gated-allow', **{'key-label': 'rsa-gated'})) == 1"
	verify "$L7"
	t "... and signed: audit verify passes" exit_is 0
	check "... the PIN from the key URI is not in the ledger" not grep -aqF -e "$WARDEN_PIN" "$L7"
elif [ "${P11W_REQUIRE_ALL:-0}" = 1 ]; then
	not_ok "the OpenSSL pkcs11 engine is required (P11W_REQUIRE_ALL=1)"
else
	for _ in 1 2 3 4 5; do ok "# SKIP the OpenSSL pkcs11 engine is not installed"; done
fi

# ================================================================ 8. audit-fsync always and none
mkconf fs-always pull "$W/audit/always.ledger" "$W/audit-ed25519.pem" 'audit-fsync = always'
mkconf fs-none pull "$W/audit/none.ledger" "$W/audit-p256.pem" 'audit-fsync = none'
for m in always none; do
	k=p256
	[ $m = always ] && k=ed25519
	dec_gated fs-$m pt.fs$m.1
	t "audit-fsync = $m ($k audit key): the gated key decrypts" same_file pt.fs$m.1 msg
	dec_gated fs-$m pt.fs$m.2
	t "... twice" same_file pt.fs$m.2 msg
	PUB=$W/pub-$k.pem verify "$W/audit/$m.ledger"
	t "... audit verify passes" exit_is 0
	sed 's/^/# /' "$out"
	PUB=$W/pub-$k.pem show "$W/audit/$m.ledger"
	t "... two gated-allow records" jq_out "len(ev('gated-allow')) == 2"
	if [ $m = always ]; then
		t "... every record is followed by its own checkpoint (one batch each)" \
			jq_out "all(a['event'] == 'checkpoint' or b['event'] == 'checkpoint' for a, b in zip(R, R[1:])) and R[-1]['event'] == 'checkpoint'"
	else
		t "... records batched (fewer checkpoints than records)" \
			jq_out "2 * len(ev('checkpoint')) < len(R)"
	fi
done
verify "$W/audit/always.ledger"
t "the Ed25519 ledger with the P-256 public key: exit 1" exit_is 1

echo "# $(($(date +%s) - T_START)) s"
done_testing
