#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The TPM quote verifier (src/verify-tpm.c) against real quotes: swtpm on a
# private Unix socket, an EK and two attestation keys (RSA/RSASSA and
# ECC/ECDSA) made persistent, PCR 16 extended, quotes of sha256:0,1,16 with
# a fresh 32-byte nonce.  Both quotes verify (tests/integration/verify-quote
# prints the claims), PCR 16's claim equals what tpm2_pcrread reports, and
# tpm2_checkquote agrees; each tampering fails with the right error.
#
# There is no resource manager, so every tpm2-tools step is followed by a
# flush of transient objects and sessions (or the TPM runs out of object
# memory), and the keys live at persistent handles.
# Nothing here loads the p11-warden module, and swtpm and tpm2-tools hang
# with the sanitizer runtimes preloaded (the sanitizer build's make check
# sets LD_PRELOAD); verify-quote carries its own runtime when instrumented.
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"

need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrextend \
	tpm2_pcrread tpm2_quote tpm2_checkquote od
VQ=$P11W_BUILDDIR/tests/integration/verify-quote
[ -x "$VQ" ] || { echo "Bail out! $VQ not built"; exit 99; }

cd "$W"
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
SWTPM_PID=$!
P11W_CLEANUP+=("kill $SWTPM_PID")
export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock" TSS2_TCTI="swtpm:path=$W/tpm/sock"
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; cat "$W/tpm/log" >&2; exit 99; }

EK=0x81010001 AK_RSA=0x81010002 AK_ECC=0x81010003
SEL=sha256:0,1,16

# flush: drop what the last tool left loaded.
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
# tpm QUIET-COMMAND...: run a tpm2 tool with its stdout in $W/tpm.out, then flush.
tpm() { "$@" >"$W/tpm.out" || { echo "Bail out! $* failed"; exit 99; }; flush; }
nonce() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
# pcr16: PCR 16 of the sha256 bank as tpm2_pcrread prints it, lower-case hex.
pcr16() { tpm2_pcrread sha256:16 | awk '$1 == "16:" { print tolower(substr($2, 3)) }'; }

tpm tpm2_createek -c $EK -G rsa -u ek.pub
tpm tpm2_createak -C $EK -c ak-rsa.ctx -G rsa -g sha256 -s rsassa -u ak-rsa.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-rsa.ctx $AK_RSA
tpm tpm2_createak -C $EK -c ak-ecc.ctx -G ecc -g sha256 -s ecdsa -u ak-ecc.pem -f pem
tpm tpm2_evictcontrol -C o -c ak-ecc.ctx $AK_ECC
# A second RSA AK, left transient (flushed): only its public key is used,
# as the wrong key of the right type.
tpm tpm2_createak -C $EK -c ak-rsa2.ctx -G rsa -g sha256 -s rsassa -u ak-rsa2.pem -f pem

tpm tpm2_pcrextend "16:sha256=$(printf 'p11-warden test' | sha256sum | cut -c1-64)"
N=$(nonce)
# quote HANDLE PREFIX [NONCE] [EXTRA tpm2_quote ARGS...]
quote() {
	local h=$1 p=$2 n=${3:-$N}
	shift 3 || shift $#
	tpm tpm2_quote -c "$h" -l $SEL -q "$n" -m "$p.msg" -s "$p.sig" -o "$p.pcrs" -F values -g sha256 "$@"
}
quote $AK_RSA rsa
quote $AK_ECC ecc
quote $AK_RSA rsa-plain "$N" -f plain
quote $AK_ECC ecc-plain "$N" -f plain
PCR16=$(pcr16)

# vq PREFIX AK-PEM [verify-quote ARGS...]: verify PREFIX.{msg,sig,pcrs}; the
# output (claims or the error) lands in $W/vq.out.
vq() {
	local p=$1 ak=$2
	shift 2
	"$VQ" --attest "$p.msg" --sig "$p.sig" --ak "$ak" --nonce "$N" --pcrs "$p.pcrs" \
		--bank sha256 --select 0,1,16 "$@" >"$W/vq.out" 2>&1
	local rc=$?
	sed 's/^/# /' "$W/vq.out"
	return $rc
}
# fails_with TEXT PREFIX AK-PEM [ARGS...]: verify-quote exits 1 saying TEXT.
fails_with() {
	local text=$1 rc=0
	shift
	vq "$@" || rc=$?
	[ "$rc" -eq 1 ] && grep -qF "error: $text" "$W/vq.out"
}
claim() { sed -n "s/^$1=//p" "$W/vq.out"; }
# copy_flip SRC DST OFFSET: DST = SRC with the byte at OFFSET inverted.
copy_flip() {
	local b
	cp "$1" "$2"
	b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 0xff)))" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}
check_q() { tpm2_checkquote -u "$2" -m "$1.msg" -s "$1.sig" -f "$1.pcrs" -l $SEL -g sha256 -q "$N" >/dev/null; }

# Good quotes.
for k in rsa ecc; do
	check "$k quote verifies" vq $k ak-$k.pem
	check "$k quote: tpm.pcr.sha256.16 = tpm2_pcrread ($PCR16)" \
		test "$(claim tpm.pcr.sha256.16)" = "$PCR16"
	check "$k quote: evidence.format = tpm2-quote" test "$(claim evidence.format)" = tpm2-quote
	check "$k quote: tpm.clock.safe" test "$(claim tpm.clock.safe)" = true
	check "$k quote: tpm2_checkquote agrees" check_q $k ak-$k.pem
done
check "rsa raw (-f plain) PKCS#1 v1.5 signature verifies" \
	vq rsa-plain ak-rsa.pem --sig-raw rsassa --hash sha256
check "ecc raw (-f plain) DER ECDSA signature verifies" \
	vq ecc-plain ak-ecc.pem --sig-raw ecdsa --hash sha256

# Tampering.
for k in rsa ecc; do
	o=$([ $k = rsa ] && echo ecc || echo rsa)
	check "$k: another nonce -> nonce mismatch" \
		fails_with "nonce mismatch" $k ak-$k.pem --nonce "$(nonce)"
	copy_flip $k.pcrs $k-bad.pcrs 70 # a byte of PCR 16
	cp $k.msg $k-bad.msg
	cp $k.sig $k-bad.sig
	check "$k: PCR values with one byte changed -> PCR digest mismatch" \
		fails_with "PCR digest mismatch" $k ak-$k.pem --pcrs $k-bad.pcrs
	# The last byte of the attest is the last byte of pcrDigest: the
	# structure still parses, so the signature is what catches it.
	copy_flip $k.msg $k-bad.msg $(($(stat -c %s $k.msg) - 1))
	check "$k: attest with a flipped byte -> signature does not verify" \
		fails_with "signature does not verify under the AK" $k ak-$k.pem --attest $k-bad.msg
	copy_flip $k.msg $k-bad.msg 80 # in clockInfo.clock
	check "$k: attest with a flipped clock byte -> signature does not verify" \
		fails_with "signature does not verify under the AK" $k ak-$k.pem --attest $k-bad.msg
	check "$k: the other AK ($o) -> signature scheme not supported for the AK" \
		fails_with "signature scheme not supported for the AK" $k ak-$o.pem
	head -c $(($(stat -c %s $k.sig) - 1)) $k.sig >$k-bad.sig
	check "$k: truncated signature -> signature does not parse" \
		fails_with "signature does not parse" $k ak-$k.pem --sig $k-bad.sig
done
check "rsa: another RSA AK -> signature does not verify" \
	fails_with "signature does not verify under the AK" rsa ak-rsa2.pem
check "rsa: tpm2_checkquote also refuses the other RSA AK" \
	bash -c "! tpm2_checkquote -u ak-rsa2.pem -m rsa.msg -s rsa.sig -f rsa.pcrs -l $SEL -g sha256 -q $N >/dev/null 2>&1"

# PCR 16 moves on after the quote: the old values no longer match a new
# quote, and the new values do not match the old quote.
tpm tpm2_pcrextend "16:sha256=$(printf 'after the quote' | sha256sum | cut -c1-64)"
check "PCR 16 changed" test "$(pcr16)" != "$PCR16"
quote $AK_RSA rsa-new
quote $AK_ECC ecc-new
tpm2_pcrread $SEL -o now.pcrs >/dev/null
for k in rsa ecc; do
	check "$k: new quote with the new values verifies" vq $k-new ak-$k.pem
	check "$k: new quote, new tpm.pcr.sha256.16 = tpm2_pcrread" \
		test "$(claim tpm.pcr.sha256.16)" = "$(pcr16)"
	check "$k: new quote with the stale values -> PCR digest mismatch" \
		fails_with "PCR digest mismatch" $k-new ak-$k.pem --pcrs $k.pcrs
	check "$k: old quote with the current values -> PCR digest mismatch" \
		fails_with "PCR digest mismatch" $k ak-$k.pem --pcrs now.pcrs
done

done_testing
