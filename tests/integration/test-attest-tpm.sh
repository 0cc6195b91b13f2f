#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The attestation gate end to end, pull model, through real clients:
# swtpm on a private Unix socket (an EK, an RSA AK at 0x81010002 and an
# ECC AK at 0x81010003, both persistent), PCR 16 extended with a known
# value, and p11-warden over SoftHSM with [collector:] sections quoting
# PCR 16 on each gated call.  Policies bind PCR 16's value.
#
# Checked with pkcs11-tool and OpenSSL's libp11 engine: while PCR 16 holds
# the expected value a gated RSA key decrypts (PKCS#1 v1.5, OAEP) and a
# gated AES key unwraps (what openssl wrapped under its known value); once
# PCR 16 is extended again the same calls are refused with 0x200 and the
# log names the failing predicate; a policy rewritten with the new value
# releases again in the next process; the ECC AK's collector and anchor
# release a key bound to their policy; a policy naming an AK that did not
# quote refuses; a gated key with no policy refuses; an ungated key works
# without evidence; and with swtpm stopped a gated call is refused at
# once, the collector's error in the log.
#
# swtpm and tpm2-tools hang with the sanitizer runtimes preloaded (the
# sanitizer build's make check sets LD_PRELOAD), so they run without it;
# the clients that load the module keep it (client ...).
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrextend \
	tpm2_pcrread pkcs11-tool openssl od timeout
softhsm_setup
cd "$W"

# client CMD...: run a client that loads the module, with the sanitizer
# runtimes preloaded when the build has them.
client() {
	if [ -n "$P11W_SAN_PRELOAD" ]; then
		LD_PRELOAD=$P11W_SAN_PRELOAD "$@"
	else
		"$@"
	fi
}
# crun CMD...: `run` (common.sh) for a client.
crun() { run env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} "$@"; }

# ---------------------------------------------------------------- swtpm
mkdir -p tpm
start_swtpm() {
	swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
		--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
		--flags not-need-init,startup-clear --log file="$W/tpm/log" &
	SWTPM_PID=$!
	P11W_CLEANUP+=("kill $SWTPM_PID")
	for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
	[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; cat "$W/tpm/log" >&2; exit 99; }
}
start_swtpm
TCTI="swtpm:path=$W/tpm/sock"
export TPM2TOOLS_TCTI=$TCTI
# The module gets its TCTI from the configuration only.
unset TSS2_TCTI

EK=0x81010001 AK_RSA=0x81010002 AK_ECC=0x81010003
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
tpm() { "$@" >"$W/tpm.out" || { echo "Bail out! $* failed"; exit 99; }; flush; }
pcr16() { tpm2_pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p' | tr A-F a-f; }
sha256hex() { printf '%s' "$1" | sha256sum | cut -c1-64; }

tpm tpm2_createek -c $EK -G rsa -u ek.pub
tpm tpm2_createak -C $EK -c ak-rsa.ctx -G rsa -g sha256 -s rsassa -u ak-rsa.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-rsa.ctx $AK_RSA
tpm tpm2_createak -C $EK -c ak-ecc.ctx -G ecc -g sha256 -s ecdsa -u ak-ecc.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-ecc.ctx $AK_ECC
# A third AK, left transient: a real AK public key that never quotes here.
tpm tpm2_createak -C $EK -c ak-other.ctx -G rsa -g sha256 -s rsassa -u ak-other.pem -f pem
tpm tpm2_pcrextend "16:sha256=$(sha256hex 'p11-warden attest e2e')"
PCR16=$(pcr16)
[ ${#PCR16} -eq 64 ] || { echo "Bail out! cannot read PCR 16"; exit 99; }

# ---------------------------------------------------------------- policies
# policy FILE ANCHOR PCR16: a policy binding PCR 16 of the sha256 bank.
policy() {
	cat >"$1.new" <<-EOF
	{"version": 1, "max-age": 300, "nonce": "required",
	 "rule": {"format": "tpm2-quote", "anchors": ["$2"],
	  "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "$3"},
	             {"claim": "tpm.clock.safe", "equals": true}]}}
	EOF
	chmod 0644 "$1.new"
	mv "$1.new" "$1"
}
mkdir -p pol
policy pol/pcr16.json ak "$PCR16"
policy pol/pcr16-ecc.json ak-ecc "$PCR16"
policy pol/wrong-ak.json ak-other "$PCR16"

# Keys and their policies: rsa-gated and aes-gated under pcr16 (RSA AK),
# rsa-ecc under pcr16-ecc (ECC AK), rsa-wrongak under wrong-ak, rsa-nopol
# gated with no policy, rsa-open and the unwrapped key ungated.
warden_conf \
	"key-policy = pcr16 pkcs11:object=rsa-gated;type=private" \
	"key-policy = pcr16 pkcs11:object=aes-gated;type=secret-key" \
	"key-policy = pcr16-ecc pkcs11:object=rsa-ecc;type=private" \
	"key-policy = wrong-ak pkcs11:object=rsa-wrongak;type=private" \
	"key-policy = pcr16 pkcs11:id=%07;type=private" \
	"collectors = tpm, tpm-ecc" \
	"ungated = pkcs11:object=rsa-open;type=private" \
	"ungated = pkcs11:object=unwrapped-open"
cat >>"$W/p11-warden.conf" <<EOF
[anchor:ak]
format = tpm2-quote
file = $W/ak-rsa.pem
[anchor:ak-ecc]
format = tpm2-quote
file = $W/ak-ecc.pem
[anchor:ak-other]
format = tpm2-quote
file = $W/ak-other.pem
[policy:pcr16]
file = $W/pol/pcr16.json
[policy:pcr16-ecc]
file = $W/pol/pcr16-ecc.json
[policy:wrong-ak]
file = $W/pol/wrong-ak.json
[collector:tpm]
type = tpm2-quote
tcti = $TCTI
ak-handle = $AK_RSA
pcrs = sha256:16
[collector:tpm-ecc]
type = tpm2-quote
tcti = $TCTI
ak-handle = $AK_ECC
pcrs = sha256:16
EOF
chmod 0644 ak-rsa.pem ak-ecc.pem ak-other.pem
client warden_init 2>"$W/init.err" || { echo "Bail out! warden_init failed"; cat "$W/init.err" >&2; exit 99; }

U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
for k in "01 rsa-gated" "02 rsa-open" "03 rsa-ecc" "05 rsa-wrongak" "06 rsa-nopol" "07 rsa-byid"; do
	set -- $k
	client "${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1 ||
		{ echo "Bail out! cannot generate $2"; exit 99; }
	client "${U[@]}" --read-object --type pubkey --id "$1" -o "pub$1.der" >/dev/null 2>&1 ||
		{ echo "Bail out! cannot export $2"; exit 99; }
done
# The gated AES key is imported with a value known here, so that openssl
# can wrap under it independently of the module.
head -c 32 /dev/urandom >aes-gated.key
client "${U[@]}" --write-object aes-gated.key --type secrkey --key-type AES:32 --id 04 \
	--label aes-gated --usage-wrap --sensitive >/dev/null 2>&1 ||
	{ echo "Bail out! cannot import aes-gated"; exit 99; }
hex() { od -An -tx1 "$1" | tr -d ' \n'; }

printf 'released under attestation\n' >msg
OAEP=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1)
for id in 01 02 03 05 06; do
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out ct$id
	openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub$id.der -in msg -out oaep$id "${OAEP[@]}"
done
# A secret, wrapped (RFC 3394) under aes-gated's value; and a message
# encrypted under the secret, which the unwrapped key must decrypt.
IV=000102030405060708090a0b0c0d0e0f
head -c 32 /dev/urandom >secret.key
openssl enc -id-aes256-wrap -K "$(hex aes-gated.key)" -iv A6A6A6A6A6A6A6A6 \
	-in secret.key -out secret.wrapped
openssl enc -aes-256-cbc -K "$(hex secret.key)" -iv $IV -in msg -out msg.cbc

key() { printf 'pkcs11:token=%s;object=%s;type=private?pin-value=%s' "$WARDEN_LABEL" "$1" "$WARDEN_PIN"; }
E=(openssl pkeyutl -engine pkcs11 -keyform engine)
export PKCS11_MODULE_PATH=$P11W_MODULE
have_engine=0
client openssl engine pkcs11 -t 2>/dev/null | grep -q available && have_engine=1

# denied_by LABEL USE POLICY DETAIL: the last run's log holds the denial of
# USE of LABEL under POLICY with DETAIL (an extended regular expression).
denied_by() {
	in_err "denied $2 \\(mechanism 0x[0-9a-f]+( CKM_[A-Z0-9_]+)?\\) of key label '$1': policy '$3': $4"
}
# show_denial: the last run's denial as a TAP comment, for the reader.
show_denial() { grep -h -m1 'denied ' "$err" | cut -c1-400 | sed 's/^/# log: /'; }
rejected() { in_err "C_(Decrypt|Unwrap)[A-Za-z]* failed: rv = .*\\(0x200\\)"; }
nth=0
unwrap_gated() {
	nth=$((nth + 1))
	crun "${U[@]}" --unwrap -m AES-KEY-WRAP --id 04 -i secret.wrapped --key-type AES: \
		--application-id $((20 + nth)) --application-label unwrapped-open
}
decrypt_unwrapped() {
	crun "${U[@]}" --decrypt -m AES-CBC-PAD --iv $IV --id $((20 + nth)) -i msg.cbc -o "$1"
}

# ---------------------------------------------------------------- PCR 16 as expected
t0=$(date +%s)
crun "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01
t "PCR 16 as expected: pkcs11-tool decrypt (RSA-PKCS) with the gated key works" succeeded
t "... and returns the plaintext" same_file pt01 msg
t "... no denial logged" no_denial
crun "${U[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 01 -i oaep01 -o opt01
t "PCR 16 as expected: decrypt (RSA-PKCS-OAEP) with the gated key returns the plaintext" same_file opt01 msg
unwrap_gated
t "PCR 16 as expected: C_UnwrapKey (AES-KEY-WRAP) with the gated AES key as unwrapping key works" succeeded
decrypt_unwrapped pt.unwrapped
t "... the unwrapped key is the secret openssl wrapped (decrypts what it encrypted)" same_file pt.unwrapped msg
if [ $have_engine = 1 ]; then
	crun "${E[@]}" -decrypt -inkey "$(key rsa-gated)" -in ct01 -out pt.engine
	t "PCR 16 as expected: openssl pkeyutl -decrypt (libp11 engine) with the gated key works" same_file pt.engine msg
	crun "${E[@]}" -decrypt -inkey "$(key rsa-gated)" "${OAEP[@]}" -in oaep01 -out pt.engine.oaep
	t "... and with OAEP" same_file pt.engine.oaep msg
else
	for i in 1 2; do ok "# SKIP the OpenSSL pkcs11 engine is not installed"; done
fi
crun "${U[@]}" --decrypt -m RSA-PKCS --id 03 -i ct03 -o pt03
t "ECC AK: a key under the policy anchored on the ECC AK decrypts" same_file pt03 msg

crun "${U[@]}" --decrypt -m RSA-PKCS --id 05 -i ct05 -o pt05
t "policy naming an AK that did not quote (ak-other): decrypt fails cleanly" failed_cleanly
t "... with 0x200" rejected
t "... logged as a denial under policy 'wrong-ak'" denied_by rsa-wrongak decrypt wrong-ak '.*ak-other'
show_denial
t "... no plaintext" empty_or_absent pt05
crun "${U[@]}" --decrypt -m RSA-PKCS --id 06 -i ct06 -o pt06
t "gated key with no policy bound: decrypt refused with 0x200" rejected
t "... logged as gated with no policy" denial_logged decrypt rsa-nopol 0x1
t "... no plaintext" empty_or_absent pt06

# ---------------------------------------------------------------- PCR 16 moves on
tpm tpm2_pcrextend "16:sha256=$(sha256hex 'something else ran')"
PCR16_NEW=$(pcr16)
t "PCR 16 changed" test "$PCR16_NEW" != "$PCR16"
crun "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01.after
t "PCR 16 changed: decrypt (RSA-PKCS) with the gated key fails cleanly" failed_cleanly
t "... at C_DecryptInit with CKR_FUNCTION_REJECTED (0x200)" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... the log names policy 'pcr16' and the failing predicate \$.rule.claims[0]" \
	denied_by rsa-gated decrypt pcr16 "\\\$\\.rule\\.claims\\[0\\]: tpm\\.pcr\\.sha256\\.16 is ${PCR16_NEW:0:6}"
t "... no plaintext" empty_or_absent pt01.after
show_denial
crun "${U[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 01 -i oaep01 -o opt01.after
t "PCR 16 changed: decrypt (RSA-PKCS-OAEP) refused with 0x200" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... logged with the predicate" denied_by rsa-gated decrypt pcr16 '\$\.rule\.claims\[0\]'
t "... no plaintext" empty_or_absent opt01.after
unwrap_gated
t "PCR 16 changed: C_UnwrapKey with the gated AES key refused with 0x200" in_err 'C_UnwrapKey failed: rv = .*\(0x200\)'
t "... logged as a denied unwrap with the predicate" denied_by aes-gated unwrap pcr16 '\$\.rule\.claims\[0\]'
crun "${U[@]}" -O --type secrkey
t "... no key was made" not_in_out "ID: +$(printf %02x $((20 + nth)))\$"
if [ $have_engine = 1 ]; then
	crun "${E[@]}" -decrypt -inkey "$(key rsa-gated)" -in ct01 -out pt.engine.after
	t "PCR 16 changed: openssl pkeyutl -decrypt with the gated key fails cleanly (no crash)" failed_cleanly
	t "... openssl reports the PKCS#11 error 0x200 (reason 512)" in_err 'reason\(512\)'
	t "... logged with the predicate" denied_by rsa-gated decrypt pcr16 '\$\.rule\.claims\[0\]'
	t "... no plaintext" empty_or_absent pt.engine.after
else
	for i in 1 2 3 4; do ok "# SKIP the OpenSSL pkcs11 engine is not installed"; done
fi
crun "${U[@]}" --decrypt -m RSA-PKCS --id 03 -i ct03 -o pt03.after
t "PCR 16 changed: the ECC AK's policy refuses too (0x200)" rejected
t "... logged under 'pcr16-ecc' with the predicate" denied_by rsa-ecc decrypt pcr16-ecc '\$\.rule\.claims\[0\]'
crun "${U[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt02
t "the ungated key decrypts without evidence" same_file pt02 msg
t "... with no denial" no_denial

# ---------------------------------------------------------------- policy follows
policy pol/pcr16.json ak "$PCR16_NEW"
crun "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01.new
t "policy rewritten with the new PCR 16: decrypt in a new process works" same_file pt01.new msg
t "... no denial" no_denial
unwrap_gated
t "... unwrap with the gated AES key works again" succeeded
decrypt_unwrapped pt.unwrapped.new
t "... and the unwrapped key decrypts" same_file pt.unwrapped.new msg
if [ $have_engine = 1 ]; then
	crun "${E[@]}" -decrypt -inkey "$(key rsa-gated)" -in ct01 -out pt.engine.new
	t "... openssl pkeyutl -decrypt works again" same_file pt.engine.new msg
else
	ok "# SKIP the OpenSSL pkcs11 engine is not installed"
fi
crun "${U[@]}" --decrypt -m RSA-PKCS --id 03 -i ct03 -o pt03.new
t "... the ECC AK's policy (not rewritten) still refuses" rejected
policy pol/pcr16-ecc.json ak-ecc "$PCR16_NEW"
crun "${U[@]}" --decrypt -m RSA-PKCS --id 03 -i ct03 -o pt03.new
t "ECC AK: policy rewritten, decrypt works" same_file pt03.new msg

# ---------------------------------------------------------------- swtpm stopped
kill "$SWTPM_PID"
wait "$SWTPM_PID" 2>/dev/null || true
s0=$(date +%s)
crun "${U[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt01.dead
s1=$(date +%s)
t "swtpm stopped: decrypt with the gated key fails cleanly" failed_cleanly
t "... with 0x200" rejected
t "... without hanging ($((s1 - s0)) s)" test $((s1 - s0)) -lt 10
t "... the collector's error is logged" in_err "collector 'tpm': "
t "... and the denial names it" denied_by rsa-gated decrypt pcr16 ".*collector 'tpm'"
t "... no plaintext" empty_or_absent pt01.dead
show_denial
grep -h -m1 "collector 'tpm'" "$err" | cut -c1-300 | sed 's/^/# log: /'
crun "${U[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt02.dead
t "swtpm stopped: the ungated key still decrypts" same_file pt02.dead msg

echo "# $(($(date +%s) - t0)) s for the checks"
# ---------------------------------------------------------------- renames
# rsa-byid is bound to pcr16 by its id; a new id would leave it with no
# policy (or, in general, another one): the rename is refused, the key
# keeps its id (security review: renames moved keys to weaker policies).
crun "${U[@]}" --set-id 08 --id 07 --type privkey
t "renaming a key out of its key-policy binding (--set-id) is refused with 0x200" \
	in_err "0x200|CKR_FUNCTION_REJECTED"
t "... logged as a rebinding" in_err "denied change-identity of key label 'rsa-byid': the new label, id or class would bind the key to another policy \\('pcr16' -> '\\(none\\)'\\)"
crun "${U[@]}" --list-objects --type privkey --id 07
t "... and the key still has its id" in_out "label: +rsa-byid"

done_testing
