#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run-bench.sh: benchmarks p11-warden against SoftHSM used directly.
#
# Builds a throw-away SoftHSM token (label "bench") and a p11-warden
# configuration whose one slot fronts it, initialises the p11-warden token
# through standard PKCS#11 calls (pkcs11-tool), then runs p11w-bench on both
# in one process.  Extra arguments go to p11w-bench (e.g. --ops trivial
# --rounds 3 --seconds 0.5).  Run it from the build directory.
#
# Environment:
#   P11W_MODULE             p11-warden module (default ./src/.libs/p11-warden.so,
#                           else ./.libs/p11-warden.so where Makefile.am builds it)
#   P11W_BENCH              benchmark program (default ./bench/p11w-bench)
#   P11W_BENCH_DIRECT_ONLY  1: when the module does not exist yet, benchmark
#                           SoftHSM alone instead of failing
#   SOFTHSM2_MODULE         SoftHSM module (default /usr/lib/softhsm/libsofthsm2.so)
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
cleanup() {
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
[slot:bench]
backend = pkcs11
module = $SOFTHSM2_MODULE
token = pkcs11:token=bench
pin-file = $W/bench.pin
ungated = pkcs11:object=bench-rsa
ungated = pkcs11:object=bench-aes
EOF
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
