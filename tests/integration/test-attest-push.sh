#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Pushed evidence end to end: tests/integration/push-client (an
# application with standard PKCS#11 calls only) creates a challenge, has
# swtpm quote PCR 16 over its nonce with tpm2_quote (the helper below,
# run while the session stays open), pushes the tpm2-quote envelope as a
# CKO_P11W_EVIDENCE, reads the verdict and decrypts with a gated key in
# the same session.  The slot has no collectors: pushed evidence is the
# only way in.  Run twice: with p11-warden.so loaded directly, and through
# `p11-kit server` (which loads p11-warden.so) with the client loading
# p11-kit-client.so.
#
# Checked each way: a good quote passes (status, reason, policy, expiry,
# the PCR 16 claim) and the gated key decrypts (PKCS#1 v1.5 and OAEP);
# a quote over another nonce fails naming the nonce; the same evidence
# pushed twice fails the second time (replay); a quote after PCR 16
# changed fails naming $.rule.claims[0]; a verdict in one session does
# not release in another; a flipped signature byte fails; evidence
# pushed without a challenge fails (the policy requires a nonce); a
# destroyed verdict's handle is CKR_OBJECT_HANDLE_INVALID; each refused
# decryption is 0x200 with the denial logged; an ungated key needs no
# evidence.
#
# swtpm and tpm2-tools hang with the sanitizer runtimes preloaded, so they
# run without them; the clients and the server keep them.
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrextend \
	tpm2_pcrread tpm2_pcrreset tpm2_quote pkcs11-tool openssl p11-kit od timeout
PC=$P11W_BUILDDIR/tests/integration/push-client
[ -x "$PC" ] || { echo "Bail out! $PC not built"; exit 99; }
MULTIARCH_LIB=$(pkg-config --variable=libdir p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
MODDIR=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo "$MULTIARCH_LIB/pkcs11")
CLIENT=$MODDIR/p11-kit-client.so
need "$CLIENT"
softhsm_setup
cd "$W"

# client CMD...: a client that loads the module, with the sanitizer
# runtimes when the build has them; crun: the same through `run`.
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
export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock"
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
# set_pcr16 TEXT: PCR 16 = extend(reset, sha256(TEXT)).
set_pcr16() { tpm tpm2_pcrreset 16; tpm tpm2_pcrextend "16:sha256=$(sha256hex "$1")"; }
set_pcr16 'p11-warden push e2e'
PCR16=$(pcr16)
[ ${#PCR16} -eq 64 ] || { echo "Bail out! cannot read PCR 16"; exit 99; }

# The evidence maker push-client runs with the nonce: MODE OUT NONCE.
# MODE good: a quote of sha256:16 over NONCE; other-nonce: over a fresh
# random nonce instead; flip-sig: the last byte of the signature inverted.
cat >mkquote.sh <<'EOF'
#!/bin/bash
unset LD_PRELOAD
set -euo pipefail
mode=$1 out=$2 nonce=$3
d=$(mktemp -d "$out.XXXXXX")
[ "$mode" = other-nonce ] && nonce=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
tpm2_quote -c "$MKQ_AK" -l sha256:16 -q "$nonce" -m "$d/attest" -s "$d/sig" -o "$d/pcrs" \
	-F values -g sha256 >/dev/null
tpm2_flushcontext -t >/dev/null
tpm2_flushcontext -s >/dev/null
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
sig=$(hex "$d/sig")
if [ "$mode" = flip-sig ]; then
	last=$(printf %02x $((0x${sig: -2} ^ 0xff)))
	sig=${sig:0:${#sig}-2}$last
fi
printf '{"attest": "%s", "signature": "%s", "pcrs": {"sha256": {"16": "%s"}}}\n' \
	"$(hex "$d/attest")" "$sig" "$(hex "$d/pcrs")" >"$out"
rm -rf "$d"
EOF
chmod 0755 mkquote.sh
export MKQ_AK=$AK

# ---------------------------------------------------------------- p11-warden
mkdir -p pol
cat >pol/pcr16.json <<EOF
{"version": 1, "max-age": 300, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak"],
  "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "$PCR16"},
             {"claim": "tpm.clock.safe", "equals": true}]}}
EOF
chmod 0644 pol/pcr16.json
# At log level info the module also logs each pushed evidence's verdict.
P11W_LOG_LEVEL=info warden_conf 'policy = pcr16' 'ungated = pkcs11:object=rsa-open;type=private'
cat >>"$W/p11-warden.conf" <<EOF
[anchor:ak]
format = tpm2-quote
file = $W/ak.pem
[policy:pcr16]
file = $W/pol/pcr16.json
EOF
client warden_init 2>init.err || { echo "Bail out! warden_init failed"; cat init.err >&2; exit 99; }
U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
for k in "01 rsa-gated" "02 rsa-open"; do
	set -- $k
	client "${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1 &&
		client "${U[@]}" --read-object --type pubkey --id "$1" -o "pub$1.der" >/dev/null 2>&1 ||
		{ echo "Bail out! cannot make $2"; exit 99; }
done
printf 'pushed, appraised, released\n' >msg
for id in 01 02; do
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out ct$id
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out oaep$id \
		-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1
done

# ---------------------------------------------------------------- helpers
# val NAME: push-client's NAME= line in the last run.
val() { sed -n "s/^$1=//p" "$out" | head -1; }
is() { [ "$(val "$1")" = "$2" ]; }
val_matches() { val "$1" | grep -Eq -e "$2"; }
decrypt_ok() { is decrypt.rv '0x0 CKR_OK'; }
decrypt_denied() { is decrypt.rv '0x200 CKR_FUNCTION_REJECTED'; }
expires_sane() {
	local e now
	e=$(val verdict1.expires)
	now=$(date +%s)
	[ -n "$e" ] && [ "$e" -gt "$now" ] && [ "$e" -le $((now + 300 + 60)) ]
}
# denial_in FILE: a denial of decrypt of rsa-gated under policy pcr16 is
# logged in FILE (the client's stderr, or the server's).
denial_in() {
	grep -Eq "denied decrypt \\(mechanism 0x1 CKM_RSA_PKCS\\) of key label 'rsa-gated': .*policy 'pcr16'" "$1"
}
n_ev=0
# pc [push-client OPTIONS...] [--run ...]: run push-client on $MOD.
pc() { crun "$PC" "$MOD" --token "$WARDEN_LABEL" --pin "$WARDEN_PIN" "$@"; }
# pcq MODE [OPTIONS...]: push-client with a fresh quote made by mkquote.sh MODE.
pcq() {
	local mode=$1
	shift
	n_ev=$((n_ev + 1))
	EV=$W/ev$n_ev.json
	pc --key rsa-gated --in ct01 --out "$W/pt$n_ev" --evidence "$EV" "$@" \
		--run "$W/mkquote.sh" "$mode" "$EV"
}

# scenarios WHERE LOG: every check, against $MOD; LOG is where the module's
# log lands (a file name, evaluated after each run).
scenarios() {
	local where=$1 logf=$2
	pcq good
	t "$where: good quote: push-client runs every step" succeeded
	t "$where: ... the nonce is 32 bytes" test "$(val nonce | tr -d '\n' | wc -c)" -eq 64
	t "$where: ... verdict status pass" is verdict1.status pass
	t "$where: ... reason names the policy" is verdict1.reason "pass: policy 'pcr16'"
	t "$where: ... CKA_P11W_POLICY is the slot's policy" is verdict1.policy pcr16
	t "$where: ... CKA_P11W_FORMAT" is verdict1.format tpm2-quote
	t "$where: ... CKA_P11W_EXPIRES within max-age (300 s) from now" expires_sane
	t "$where: ... CKA_P11W_CLAIMS has PCR 16 (as tpm2_pcrread reads it)" \
		in_out "^verdict1\\.claim=tpm\\.pcr\\.sha256\\.16=$PCR16\$"
	t "$where: ... and the anchor" in_out '^verdict1\.claim=evidence\.anchor="?ak"?$'
	t "$where: ... C_Decrypt with the gated key in the same session: CKR_OK" decrypt_ok
	t "$where: ... the plaintext" same_file "$W/pt$n_ev" msg
	GOOD_EV=$EV

	pcq good --oaep --in oaep01
	t "$where: good quote, OAEP: decrypt returns the plaintext" same_file "$W/pt$n_ev" msg

	pcq other-nonce
	t "$where: quote over another nonce: verdict fail" is verdict1.status fail
	t "$where: ... the reason names the nonce" val_matches verdict1.reason '[Nn]once'
	t "$where: ... CKA_P11W_EXPIRES is 0" is verdict1.expires 0
	t "$where: ... decrypt refused (0x200)" decrypt_denied
	t "$where: ... the denial is logged" denial_in "$(eval echo "$logf")"
	t "$where: ... no plaintext" empty_or_absent "$W/pt$n_ev"
	sed -n 's/^verdict1.reason=/# reason: /p' "$out"

	pcq good --push-twice
	t "$where: the same evidence pushed twice: the first passes" is verdict1.status pass
	t "$where: ... the second fails" is verdict2.status fail
	t "$where: ... as a replay" val_matches verdict2.reason 'replay'
	sed -n 's/^verdict2.reason=/# reason: /p' "$out"

	pcq good --other-session
	t "$where: verdict in session A: pass" is verdict1.status pass
	t "$where: ... decrypt in session B (same login, no evidence) refused (0x200)" \
		is decrypt.other.rv '0x200 CKR_FUNCTION_REJECTED'
	t "$where: ... while session A decrypts" decrypt_ok

	pcq flip-sig
	t "$where: evidence with a flipped signature byte: verdict fail" is verdict1.status fail
	t "$where: ... the reason names the signature" val_matches verdict1.reason 'signature'
	t "$where: ... decrypt refused (0x200)" decrypt_denied
	sed -n 's/^verdict1.reason=/# reason: /p' "$out"

	n_ev=$((n_ev + 1))
	pc --key rsa-gated --in ct01 --out "$W/pt$n_ev" --evidence "$GOOD_EV" --no-challenge
	t "$where: evidence pushed without a challenge (policy: nonce required): verdict fail" \
		is verdict1.status fail
	t "$where: ... the reason names the nonce" val_matches verdict1.reason '[Nn]once'
	t "$where: ... decrypt refused (0x200)" decrypt_denied
	t "$where: ... no plaintext" empty_or_absent "$W/pt$n_ev"
	sed -n 's/^verdict1.reason=/# reason: /p' "$out"

	pcq good --destroy-verdict
	t "$where: a destroyed verdict: CKA_P11W_STATUS is CKR_OBJECT_HANDLE_INVALID" \
		is destroyed.status.rv '0x82 CKR_OBJECT_HANDLE_INVALID'

	set_pcr16 'another boot'
	pcq good
	t "$where: quote after PCR 16 changed: verdict fail" is verdict1.status fail
	t "$where: ... naming the predicate \$.rule.claims[0]" \
		val_matches verdict1.reason "^policy 'pcr16': \\\$\\.rule\\.claims\\[0\\]: tpm\\.pcr\\.sha256\\.16 is "
	t "$where: ... decrypt refused (0x200)" decrypt_denied
	t "$where: ... the denial is logged" denial_in "$(eval echo "$logf")"
	t "$where: ... the pushed evidence's failure is logged (info) with the predicate" \
		grep -q "pushed tpm2-quote evidence: policy 'pcr16': \$.rule.claims\[0\]" "$(eval echo "$logf")"
	sed -n 's/^verdict1.reason=/# reason: /p' "$out"
	set_pcr16 'p11-warden push e2e'
	t "$where: (PCR 16 restored)" test "$(pcr16)" = "$PCR16"

	n_ev=$((n_ev + 1))
	pc --key rsa-open --in ct02 --out "$W/pt$n_ev" --no-challenge
	t "$where: the ungated key decrypts without evidence" same_file "$W/pt$n_ev" msg
}


# ---------------------------------------------------------------- (a) direct
t0=$(date +%s)
MOD=$P11W_MODULE
scenarios direct '$err'

# The policy file changes while a session holds a passing pushed verdict
# (the module looks at the file at most once a second, hence the sleep).
cp pol/pcr16.json pol/orig.json
sed "s/$PCR16/$(sha256hex 'not this platform')/" pol/orig.json >pol/other.json
sed 's/"max-age": 300/"max-age": 200/' pol/orig.json >pol/same.json
pcq good --after-push "sleep 1.1; cp '$W/pol/other.json' '$W/pol/pcr16.json'"
t "direct: policy changed to another PCR 16 after a pass: the verdict was pass" is verdict1.status pass
t "... decrypt in that session is refused (0x200)" decrypt_denied
t "... the reload is logged" in_err "policy 'pcr16' .* changed: reloaded; every verdict under it is dropped"
cp pol/orig.json pol/pcr16.json
pcq good --after-push "sleep 1.1; cp '$W/pol/same.json' '$W/pol/pcr16.json'"
t "direct: policy changed (max-age 300 -> 200) after a pass: the verdict was pass" is verdict1.status pass
t "... the reload is logged ('every verdict under it is dropped')" \
	in_err "policy 'pcr16' .* changed: reloaded; every verdict under it is dropped"
# p11-warden.h: "Verdicts and nonces end ... when the policy changes"; the
# gate re-judges the session's pushed evidence under the new policy instead.
t "... decrypt in that session is refused: the verdict ended with the policy" decrypt_denied
cp pol/orig.json pol/pcr16.json
t1=$(date +%s)

# ---------------------------------------------------------------- (b) p11-kit server
mkdir -p run
env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} \
	p11-kit server -f --provider "$P11W_MODULE" -n "$W/run/p11.sock" "pkcs11:token=$WARDEN_LABEL" \
	>server.out 2>server.err &
server=$!
P11W_CLEANUP+=("kill $server")
for _ in $(seq 100); do
	[ -S run/p11.sock ] && break
	kill -0 $server 2>/dev/null || break
	sleep 0.1
done
t "p11-kit server is listening" test -S run/p11.sock
export P11_KIT_SERVER_ADDRESS=unix:path=$W/run/p11.sock
MOD=$CLIENT
scenarios "p11-kit server" "$W/server.err"
kill $server 2>/dev/null || true
wait $server 2>/dev/null || true
t2=$(date +%s)

echo "# direct: $((t1 - t0)) s; through p11-kit server: $((t2 - t1)) s"
done_testing
