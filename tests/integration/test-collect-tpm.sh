#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The tpm2-quote collector (src/collect-tpm.c) against swtpm on a private
# Unix socket: an RSA (RSASSA), an RSA (RSAPSS) and an ECC (ECDSA) AK made
# persistent, PCR 16 extended.  tests/integration/collect-tpm runs the
# collector with fresh nonces, decodes its JSON envelope and verifies it
# with the quote verifier (src/verify-tpm.c), printing the claims.
# Checked: every AK quotes and verifies; PCR 16's claim equals what
# tpm2_pcrread says; a selection over two banks and more than 8 PCRs (more
# than one PCR_Read); a missing AK, a key that is no AK (the EK, a storage
# key, an unrestricted signing key) and a dead TCTI fail with their own
# errors and without hanging; runs leave no transient object behind; 50
# runs in a row, and runs from several threads at once, work.  The time of
# one collector_run is printed.
#
# As in test-tpm-quote.sh: there is no resource manager, so every
# tpm2-tools step is followed by a flush; and swtpm and tpm2-tools hang
# with the sanitizer runtimes preloaded (the sanitizer build's make check
# sets LD_PRELOAD), so it is unset; collect-tpm carries its own runtime
# when instrumented.
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"

need swtpm tpm2_createek tpm2_createak tpm2_createprimary tpm2_evictcontrol tpm2_flushcontext \
	tpm2_pcrextend tpm2_pcrread tpm2_getcap timeout od
CT=$P11W_BUILDDIR/tests/integration/collect-tpm
[ -x "$CT" ] || { echo "Bail out! $CT not built"; exit 99; }

cd "$W"
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
SWTPM_PID=$!
P11W_CLEANUP+=("kill $SWTPM_PID")
TCTI="swtpm:path=$W/tpm/sock"
export TPM2TOOLS_TCTI=$TCTI
# The collector is always given its TCTI explicitly; nothing may come
# from the environment.
unset TSS2_TCTI
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; cat "$W/tpm/log" >&2; exit 99; }

EK=0x81010001 AK_RSA=0x81010002 AK_ECC=0x81010003 AK_PSS=0x81010004
SRK=0x81000001 SIGNKEY=0x81000002
SEL=sha256:0,1,16

flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
tpm() { "$@" >"$W/tpm.out" || { echo "Bail out! $* failed"; exit 99; }; flush; }
# pcr BANK N: PCR N of BANK as tpm2_pcrread prints it ("  0 : 0x..",
# "  16: 0x.."), in lower-case hex.
pcr() { tpm2_pcrread "$1:$2" | sed -n "s/^ *$2 *: *0x//p" | tr A-F a-f; }

tpm tpm2_createek -c $EK -G rsa -u ek.pub
tpm tpm2_createak -C $EK -c ak-rsa.ctx -G rsa -g sha256 -s rsassa -u ak-rsa.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-rsa.ctx $AK_RSA
tpm tpm2_createak -C $EK -c ak-ecc.ctx -G ecc -g sha256 -s ecdsa -u ak-ecc.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-ecc.ctx $AK_ECC
tpm tpm2_createak -C $EK -c ak-pss.ctx -G rsa -g sha256 -s rsapss -u ak-pss.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-pss.ctx $AK_PSS
# Persistent keys that are no AK: a storage key (restricted decrypt) and
# an unrestricted signing key.
tpm tpm2_createprimary -C o -G ecc -c srk.ctx
tpm tpm2_evictcontrol -C o -c srk.ctx $SRK
tpm tpm2_createprimary -C o -G rsa -c sign.ctx \
	-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'
tpm tpm2_evictcontrol -C o -c sign.ctx $SIGNKEY
tpm tpm2_pcrextend "16:sha256=$(printf 'p11-warden collector test' | sha256sum | cut -c1-64)"
PCR16=$(pcr sha256 16)

# ct [collect-tpm ARGS...]: run the driver with a time limit (a hang is a
# failure, not a stuck suite); output in $W/ct.out, echoed as comments.
ct() {
	local rc=0
	timeout --kill-after=5 30 "$CT" "$@" >"$W/ct.out" 2>"$W/ct.err" || rc=$?
	sed 's/^/# /' "$W/ct.out"
	grep -v '^$' "$W/ct.err" | sed 's/^/# stderr: /' | head -5
	return $rc
}
# fails_with TEXT [ARGS...]: collect-tpm exits 1 saying "error: TEXT".
fails_with() {
	local text=$1 rc=0
	shift
	ct "$@" || rc=$?
	[ "$rc" -eq 1 ] && grep -qF "error: $text" "$W/ct.out"
}
claim() { sed -n "s/^$1=//p" "$W/ct.out"; }
no_transients() {
	local h
	h=$(tpm2_getcap handles-transient)
	[ -z "$h" ] || { echo "# transient handles left: $h"; return 1; }
}

for k in rsa ecc pss; do
	case $k in rsa) h=$AK_RSA ;; ecc) h=$AK_ECC ;; pss) h=$AK_PSS ;; esac
	check "$k AK: collect and verify" ct --tcti "$TCTI" --handle $h --pcrs $SEL --ak ak-$k.pem
	check "$k AK: tpm.pcr.sha256.16 = tpm2_pcrread ($PCR16)" \
		test "$(claim tpm.pcr.sha256.16)" = "$PCR16"
	check "$k AK: tpm.pcr.sha256.0 = tpm2_pcrread" \
		test "$(claim tpm.pcr.sha256.0)" = "$(pcr sha256 0)"
	check "$k AK: evidence.format = tpm2-quote" test "$(claim evidence.format)" = tpm2-quote
	check "$k AK: another AK's public key -> refused" \
		bash -c "! '$CT' --tcti '$TCTI' --handle $h --pcrs $SEL \
			--ak $([ $k = ecc ] && echo ak-rsa.pem || echo ak-ecc.pem) >/dev/null 2>&1"
done
# The envelope itself: three members in this order, lower-case hex.
check "envelope: {\"attest\": hex, \"signature\": hex, \"pcrs\": {\"sha256\": {\"0\": hex, ...}}}" \
	bash -c "'$CT' --tcti '$TCTI' --handle $AK_RSA --pcrs sha256:16,0+sha1:7 --dump env.json >/dev/null &&
		grep -Eq '^\\{\"attest\":\"[0-9a-f]+\",\"signature\":\"[0-9a-f]+\",\"pcrs\":\\{\"sha256\":\\{\"0\":\"[0-9a-f]{64}\",\"16\":\"[0-9a-f]{64}\"\\},\"sha1\":\\{\"7\":\"[0-9a-f]{40}\"\\}\\}\\}$' env.json"
{ head -c 160 env.json; echo ...; } | sed 's/^/# /'
check "no transient objects left" no_transients

# Two banks and 13 PCRs: more than the 8 values one PCR_Read returns.
BIG=sha256:0,1,2,3,4,5,6,7,8,9,10,11,16+sha1:0,7
check "two banks, 13 + 2 PCRs: collect and verify" \
	ct --tcti "$TCTI" --handle $AK_RSA --pcrs $BIG --ak ak-rsa.pem
check "  tpm.pcr.sha256.16 = tpm2_pcrread" test "$(claim tpm.pcr.sha256.16)" = "$PCR16"
check "  tpm.pcr.sha256.11 = tpm2_pcrread" test "$(claim tpm.pcr.sha256.11)" = "$(pcr sha256 11)"
check "  tpm.pcr.sha1.7 = tpm2_pcrread" test "$(claim tpm.pcr.sha1.7)" = "$(pcr sha1 7)"
# swtpm 0.7 allocates all four banks.
tpm tpm2_pcrextend "23:sha384=$(printf x | sha384sum | cut -c1-96),sha512=$(printf y | sha512sum | cut -c1-128)"
check "sha384 and sha512 banks: collect and verify" \
	ct --tcti "$TCTI" --handle $AK_ECC --pcrs sha512:23,0+sha384:23 --ak ak-ecc.pem
check "  tpm.pcr.sha384.23 = tpm2_pcrread" test "$(claim tpm.pcr.sha384.23)" = "$(pcr sha384 23)"
check "  tpm.pcr.sha512.23 = tpm2_pcrread" test "$(claim tpm.pcr.sha512.23)" = "$(pcr sha512 23)"
check "  PCR 23 was extended" test "$(pcr sha512 23)" != "$(printf '%0128d' 0)"

# Keys that cannot quote.
check "missing AK (0x81000099) -> attestation key missing" \
	fails_with "attestation key missing" --tcti "$TCTI" --handle 0x81000099 --pcrs $SEL
check "the EK -> not a usable attestation key" \
	fails_with "not a usable attestation key" --tcti "$TCTI" --handle $EK --pcrs $SEL
check "a storage key -> not a usable attestation key" \
	fails_with "not a usable attestation key" --tcti "$TCTI" --handle $SRK --pcrs $SEL
check "an unrestricted signing key -> not a usable attestation key" \
	fails_with "not a usable attestation key" --tcti "$TCTI" --handle $SIGNKEY --pcrs $SEL
check "no transient objects left after the failures" no_transients

# Arguments the constructor refuses.
check "handle outside the persistent range -> refused" \
	fails_with "new:" --tcti "$TCTI" --handle 0x80000001 --pcrs $SEL
for bad in "" "sha256" "sha256:" "sha256:24" "sha256:1,,2" "md5:0" "sha256:0+sha256:1" \
	"sha256:0,0" "sha256:0+" "+sha256:0" "sha256:-1" "sha256:0001"; do
	check "PCR selection '$bad' -> refused" \
		fails_with "new:" --tcti "$TCTI" --handle $AK_RSA --pcrs "$bad"
done

# 50 runs in a row on one collector, then 4 threads x 10 runs on one.
check "50 runs in a row, each verified" \
	ct --tcti "$TCTI" --handle $AK_ECC --pcrs $SEL --ak ak-ecc.pem --runs 50
check "4 threads x 10 runs on one collector, each verified" \
	ct --tcti "$TCTI" --handle $AK_RSA --pcrs $SEL --ak ak-rsa.pem --runs 10 --threads 4
check "no transient objects left after 90 runs" no_transients

# The time of one run (TCTI load, ESYS init, AK lookup, quote, PCR read,
# teardown), without verification.
ct --tcti "$TCTI" --handle $AK_RSA --pcrs $SEL --runs 50 || true
check "timing run (RSA)" grep -q '^# time' "$W/ct.out"
ct --tcti "$TCTI" --handle $AK_ECC --pcrs $SEL --runs 50 || true
check "timing run (ECC)" grep -q '^# time' "$W/ct.out"

# A TCTI that leads nowhere: a socket path that does not exist, then
# swtpm gone.  Both fail at once, cleanly.
check "TCTI to a missing socket -> TPM unavailable" \
	fails_with "TPM unavailable" --tcti "swtpm:path=$W/nonexistent/sock" --handle $AK_RSA --pcrs $SEL
check "unknown TCTI -> TPM unavailable" \
	fails_with "TPM unavailable" --tcti "nosuchtcti:x" --handle $AK_RSA --pcrs $SEL
kill $SWTPM_PID
wait $SWTPM_PID 2>/dev/null || true
start=$(date +%s%N)
check "swtpm stopped -> TPM unavailable" \
	fails_with "TPM unavailable" --tcti "$TCTI" --handle $AK_RSA --pcrs $SEL
check "  ... within 2 s" test $((($(date +%s%N) - start) / 1000000)) -lt 2000

done_testing
