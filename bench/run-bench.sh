#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run-bench.sh: benchmarks p11-warden against SoftHSM used directly.
#
# Builds a throw-away SoftHSM token (label "bench"), a software TPM (swtpm)
# with a persistent attestation key, and a p11-warden configuration whose
# one slot fronts the token with every key gated under a policy on PCR 16
# (the slot pulls quotes from the TPM), initialises the p11-warden token
# through standard PKCS#11 calls (pkcs11-tool), then runs p11w-bench on both
# in one process: the p11-warden side is the gated path with a live verdict
# (its first gated call pulls).  Then p11w-attest-bench measures appraisal
# and the first gated call of a fresh module instance.  Extra arguments go to p11w-bench (e.g. --ops trivial
# --rounds 3 --seconds 0.5).  Run it from the build directory.
#
# Environment:
#   P11W_MODULE             p11-warden module (default ./src/.libs/p11-warden.so,
#                           else ./.libs/p11-warden.so where Makefile.am builds it)
#   P11W_BENCH              benchmark program (default ./bench/p11w-bench)
#   P11W_BENCH_DIRECT_ONLY  1: when the module does not exist yet, benchmark
#                           SoftHSM alone instead of failing
#   SOFTHSM2_MODULE         SoftHSM module (default /usr/lib/softhsm/libsofthsm2.so)
#   P11W_ATTEST_BENCH       appraisal benchmark (default ./bench/p11w-attest-bench)
#   P11W_BENCH_UNGATED      1: declare the benchmark keys ungated (issue 2's
#                           configuration) instead of gated under a policy
#   P11W_BENCH_NO_LEDGER    1: no audit ledger (by default every gated
#                           decision is recorded in a signed ledger,
#                           audit-fsync = batch, then verified and timed)
#   P11W_TOOL               the admin tool (default ./p11-warden), for the
#                           ledger verification
#   P11W_BENCH_WRAPPER      command to run the benchmark under, split on blanks
#                           (e.g. "gdb -batch -ex run -ex bt --args", "valgrind")

set -euo pipefail

if [ -z "${P11W_MODULE:-}" ]; then
	P11W_MODULE=./src/.libs/p11-warden.so
	if [ ! -f "$P11W_MODULE" ] && [ -f ./.libs/p11-warden.so ]; then
		P11W_MODULE=./.libs/p11-warden.so
	fi
fi
P11W_BENCH=${P11W_BENCH:-./bench/p11w-bench}
P11W_BENCH_DIRECT_ONLY=${P11W_BENCH_DIRECT_ONLY:-0}
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

die() {
	echo "run-bench.sh: $*" >&2
	exit 1
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found (install $2)"
}

[ -x "$P11W_BENCH" ] || die "benchmark program $P11W_BENCH not found: build it (make bench) or set P11W_BENCH"
[ -f "$SOFTHSM2_MODULE" ] || die "SoftHSM module $SOFTHSM2_MODULE not found (install softhsm2)"
need softhsm2-util softhsm2

warden=1
if [ ! -f "$P11W_MODULE" ]; then
	if [ "$P11W_BENCH_DIRECT_ONLY" = 1 ]; then
		echo "run-bench.sh: p11-warden module $P11W_MODULE not found;" \
			"P11W_BENCH_DIRECT_ONLY=1: benchmarking SoftHSM directly only" >&2
		warden=0
	else
		die "p11-warden module $P11W_MODULE not found: build it, set P11W_MODULE," \
			"or set P11W_BENCH_DIRECT_ONLY=1 to benchmark SoftHSM alone"
	fi
fi
if [ "$warden" = 1 ]; then
	need pkcs11-tool opensc
	# Absolute, so that the path in messages and in dlopen() is unambiguous
	P11W_MODULE=$(realpath "$P11W_MODULE")
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/p11w-bench.XXXXXX")
SWTPM_PID=
cleanup() {
	[ -n "$SWTPM_PID" ] && kill "$SWTPM_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Nothing of the caller's configuration is read or written
export HOME=$W/home
mkdir -m 0700 "$HOME"
umask 077

# The backend: a SoftHSM token labelled "bench"
mkdir "$W/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$W/tokens" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 1234 \
	>"$W/softhsm2-util.log" 2>&1 || {
	cat "$W/softhsm2-util.log" >&2
	die "softhsm2-util --init-token failed"
}

args=(--direct "$SOFTHSM2_MODULE" --direct-token bench --direct-pin 1234)

if [ "$warden" = 1 ]; then
	# The backend PIN, held by p11-warden (no trailing newline)
	printf '%s' 1234 >"$W/bench.pin"
	chmod 0600 "$W/bench.pin"
	mkdir -m 0700 "$W/state"

	cat >"$W/p11-warden.conf" <<EOF
[module]
log = stderr
log-level = error
state-dir = $W/state
pin-kdf-iterations = 10000
EOF
	if [ "${P11W_BENCH_NO_LEDGER:-0}" != 1 ]; then
		need openssl openssl
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/audit-key.pem" \
			2>/dev/null || die "cannot make the audit key"
		openssl pkey -in "$W/audit-key.pem" -pubout -out "$W/audit-pub.pem" 2>/dev/null
		printf 'audit-ledger = %s/audit.ledger\naudit-key = %s/audit-key.pem\n' "$W" "$W" \
			>>"$W/p11-warden.conf"
		echo "p11-warden side: every gated decision recorded in a signed audit ledger (audit-fsync = batch)"
	fi
	cat >>"$W/p11-warden.conf" <<EOF
[slot:bench]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=bench
pin-file = $W/bench.pin
EOF
	if [ "${P11W_BENCH_UNGATED:-0}" = 1 ]; then
		printf 'ungated = pkcs11:object=bench-rsa\nungated = pkcs11:object=bench-aes\n' \
			>>"$W/p11-warden.conf"
	else
		# The platform: swtpm with an AK; PCR 16 is what the policy wants.
		for t in swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext \
			tpm2_pcrextend tpm2_pcrread; do
			need "$t" "swtpm, tpm2-tools"
		done
		mkdir "$W/tpm"
		swtpm socket --tpm2 --tpmstate dir="$W/tpm" --server type=unixio,path="$W/tpm/sock" \
			--ctrl type=unixio,path="$W/tpm/sock.ctrl" --flags not-need-init,startup-clear \
			--log file="$W/tpm/log" &
		SWTPM_PID=$!
		export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock"
		for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
		flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
		{
			tpm2_createek -c 0x81010001 -G rsa -u "$W/ek.pub" && flush &&
			tpm2_createak -C 0x81010001 -c "$W/ak.ctx" -G rsa -g sha256 -s rsassa \
				-u "$W/ak.pem" -f pem && flush &&
			tpm2_evictcontrol -C o -c "$W/ak.ctx" 0x81010002 && flush &&
			tpm2_pcrextend "16:sha256=$(printf bench | sha256sum | cut -c1-64)"
		} >"$W/tpm2.log" 2>&1 || { cat "$W/tpm2.log" >&2; die "TPM setup failed"; }
		chmod go-w "$W/ak.pem"
		pcr16=$(tpm2_pcrread sha256:16 | awk '$1 == "16:" { print tolower(substr($2, 3)) }')
		cat >"$W/policy.json" <<POLICY
{"version": 1, "max-age": 86400, "nonce": "required",
 "rule": {"format": "tpm2-quote", "anchors": ["ak"],
          "claims": [{"claim": "tpm.pcr.sha256.16", "equals": "$pcr16"}]}}
POLICY
		cat >>"$W/p11-warden.conf" <<CONF
policy = pcr16
collectors = tpm
[anchor:ak]
format = tpm2-quote
file = $W/ak.pem
[policy:pcr16]
file = $W/policy.json
[collector:tpm]
type = tpm2-quote
tcti = swtpm:path=$W/tpm/sock
ak-handle = 0x81010002
pcrs = sha256:16
CONF
		echo "p11-warden side: every key gated under a PCR 16 policy, verdicts pulled from swtpm"
	fi
	export P11_WARDEN_CONF=$W/p11-warden.conf

	# The p11-warden slot starts uninitialised: set its SO and user PINs
	# through C_InitToken, then C_Login (SO) + C_InitPIN
	tool_log=$W/pkcs11-tool.log
	pkcs11-tool --module "$P11W_MODULE" --init-token --label warden-bench \
		--so-pin 87654321 >"$tool_log" 2>&1 || {
		cat "$tool_log" >&2
		die "pkcs11-tool --init-token on $P11W_MODULE failed"
	}
	pkcs11-tool --module "$P11W_MODULE" --token-label warden-bench --init-pin \
		--login --login-type so --so-pin 87654321 --pin 1111 >"$tool_log" 2>&1 || {
		cat "$tool_log" >&2
		die "pkcs11-tool --init-pin on $P11W_MODULE failed"
	}

	args+=(--warden "$P11W_MODULE" --warden-token warden-bench --warden-pin 1111)
fi

read -ra wrapper <<<"${P11W_BENCH_WRAPPER:-}"

# Not exec: the EXIT trap must still remove the temporary directory
"${wrapper[@]}" "$P11W_BENCH" "${args[@]}" --threads 1,2 "$@"

P11W_ATTEST_BENCH=${P11W_ATTEST_BENCH:-./bench/p11w-attest-bench}
if [ "$warden" = 1 ] && [ -x "$P11W_ATTEST_BENCH" ] && [ "${P11W_BENCH_UNGATED:-0}" != 1 ]; then
	echo
	P11W_BENCH_TOKEN=warden-bench P11W_BENCH_PIN=1111 "$P11W_ATTEST_BENCH"
fi

P11W_TOOL=${P11W_TOOL:-./p11-warden}
if [ "$warden" = 1 ] && [ -f "$W/audit.ledger" ] && [ -x "$P11W_TOOL" ]; then
	echo
	size=$(stat -c %s "$W/audit.ledger")
	t0=$(date +%s.%N)
	out=$("$P11W_TOOL" --json audit verify "$W/audit.ledger" --key "$W/audit-pub.pem") ||
		die "the benchmark's ledger does not verify: $out"
	t1=$(date +%s.%N)
	records=$(printf '%s' "$out" | sed -n 's/.*"records":\([0-9]*\).*/\1/p')
	awk -v r="$records" -v a="$t0" -v b="$t1" -v sz="$size" 'BEGIN {
		printf "ledger-verify  %d records (%.1f MB) verified in %.2f s: %.0f records/s (target >= 20000)\n",
			r, sz / 1e6, b - a, r / (b - a) }'
fi
