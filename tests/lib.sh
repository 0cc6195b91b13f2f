# SPDX-License-Identifier: Apache-2.0
# Shared setup for p11-warden's shell tests: a private SoftHSM token, a
# p11-warden configuration over it, and helpers.  Source it; it defines
# $W (the test's temporary directory, removed on exit) and these helpers.
#
# Environment (set by `make check`, or by hand):
#   P11W_MODULE       the built p11-warden.so
#   SOFTHSM2_MODULE   SoftHSMv2's module (default /usr/lib/softhsm/libsofthsm2.so)
#   P11W_REQUIRE_ALL  if 1, a missing tool is a failure rather than a skip (CI)

set -euo pipefail

: "${P11W_MODULE:?P11W_MODULE must point at the built p11-warden.so}"
: "${SOFTHSM2_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
export P11W_MODULE SOFTHSM2_MODULE

W=$(mktemp -d "${TMPDIR:-/tmp}/p11w-test.XXXXXX")
chmod 0755 "$W"
P11W_CLEANUP=()
p11w_cleanup() {
	local rc=$?
	for c in "${P11W_CLEANUP[@]:-}"; do [ -n "$c" ] && eval "$c" >/dev/null 2>&1 || true; done
	if [ "$rc" -ne 0 ] && [ -n "${P11W_KEEP:-}" ]; then
		echo "# keeping $W" >&2
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap p11w_cleanup EXIT
export HOME=$W/home

# The sanitizer build names its ASan suppressions file in ASAN_OPTIONS; a
# test that drops to another uid (test-p11kit.sh) could not read it where
# the build tree is private, and ASan refuses to start without it: use a
# copy in $W, which every uid can read.
case "${ASAN_OPTIONS:-}" in
*suppressions=*)
	p11w_supp=${ASAN_OPTIONS##*suppressions=}
	p11w_supp=${p11w_supp%%:*}
	if [ -r "$p11w_supp" ]; then
		cp "$p11w_supp" "$W/asan-suppressions.txt"
		chmod 0644 "$W/asan-suppressions.txt"
		ASAN_OPTIONS=${ASAN_OPTIONS/suppressions=$p11w_supp/suppressions=$W/asan-suppressions.txt}
		export ASAN_OPTIONS
	fi
	;;
esac
mkdir -p "$HOME"

# Backend and front PINs used throughout the tests.
BACKEND_LABEL=${BACKEND_LABEL:-backend}
BACKEND_PIN=1234
BACKEND_SO_PIN=12345678
WARDEN_LABEL=${WARDEN_LABEL:-warden}
WARDEN_PIN=5678
WARDEN_SO_PIN=87654321

TAP_N=0
TAP_FAILED=0
ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# check_fails DESCRIPTION COMMAND...: passes when the command fails
check_fails() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

# need TOOL...: skip the whole test (exit 77) when a tool is absent, or fail
# under P11W_REQUIRE_ALL=1 (CI installs everything, so CI must not skip).
need() {
	for t in "$@"; do
		if ! command -v "$t" >/dev/null 2>&1 && [ ! -e "$t" ]; then
			if [ "${P11W_REQUIRE_ALL:-0}" = 1 ]; then
				echo "Bail out! $t is required (P11W_REQUIRE_ALL=1)"
				exit 99
			fi
			echo "1..0 # SKIP $t not installed"
			exit 77
		fi
	done
}

# softhsm_setup: a fresh SoftHSM token labelled $BACKEND_LABEL.
softhsm_setup() {
	need softhsm2-util "$SOFTHSM2_MODULE"
	mkdir -p "$W/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$W/tokens" >"$W/softhsm2.conf"
	export SOFTHSM2_CONF=$W/softhsm2.conf
	softhsm2-util --init-token --free --label "$BACKEND_LABEL" \
		--so-pin "$BACKEND_SO_PIN" --pin "$BACKEND_PIN" >/dev/null
}

# backend_tool ARGS...: pkcs11-tool straight on the SoftHSM token.
backend_tool() {
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "$BACKEND_LABEL" "$@"
}

# warden_conf [EXTRA SLOT LINES...]: write $W/p11-warden.conf with one slot
# `hsm` over the SoftHSM token; extra lines go into the slot section.
warden_conf() {
	mkdir -p "$W/state"
	printf '%s\n' "$BACKEND_PIN" >"$W/backend.pin"
	chmod 600 "$W/backend.pin"
	{
		printf '[module]\nlog = stderr\nlog-level = %s\nstate-dir = %s/state\n' \
			"${P11W_LOG_LEVEL:-warning}" "$W"
		printf 'pin-kdf-iterations = 1000\n'
		printf '[slot:hsm]\nbackend = pkcs11\nmodule = %s\ntoken = pkcs11:token=%s\n' \
			"$SOFTHSM2_MODULE" "$BACKEND_LABEL"
		printf 'pin-file = %s/backend.pin\n' "$W"
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$W/p11-warden.conf"
	export P11_WARDEN_CONF=$W/p11-warden.conf
}

# warden_tool ARGS...: pkcs11-tool through p11-warden.
warden_tool() {
	pkcs11-tool --module "$P11W_MODULE" "$@"
}

# warden_init: initialise the p11-warden token (label, SO PIN, user PIN)
# with pkcs11-tool, as an administrator would.
warden_init() {
	warden_tool --init-token --label "$WARDEN_LABEL" --so-pin "$WARDEN_SO_PIN" >/dev/null
	warden_tool --token-label "$WARDEN_LABEL" --login --login-type so --so-pin "$WARDEN_SO_PIN" \
		--init-pin --pin "$WARDEN_PIN" >/dev/null
}
