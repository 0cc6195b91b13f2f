# SPDX-License-Identifier: Apache-2.0
# Helpers for the integration tests with real clients.  Source it after
# tests/lib.sh:
#
#   . "$P11W_SRCDIR/tests/lib.sh"
#   . "$P11W_SRCDIR/tests/integration/common.sh"
#
# run CMD... runs a client and keeps what it did in $rc, $out and $err (files);
# the t_* assertions print one TAP line each and, when they fail, the command
# line and its output as TAP diagnostics.

# The reason every denial of a gated key carries in the log (gate.c).
DENIAL_REASON='the key is gated and no policy is bound to it'
# How long one client call may take before it counts as hung.
: "${P11W_CMD_TIMEOUT:=60}"

P11W_RUN_N=0
rc=0
out=/dev/null
err=/dev/null
cmdline=

# run CMD...: run CMD with stdin from /dev/null and a time limit; sets $rc,
# $out (stdout file), $err (stderr file) and $cmdline.  Never fails itself.
run() {
	P11W_RUN_N=$((P11W_RUN_N + 1))
	out=$W/run.$P11W_RUN_N.out
	err=$W/run.$P11W_RUN_N.err
	cmdline="$*"
	if timeout --kill-after=5 "$P11W_CMD_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null; then
		rc=0
	else
		rc=$?
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "# TIMEOUT after ${P11W_CMD_TIMEOUT}s: $cmdline" >>"$err"
	fi
	return 0
}

# diag: the last command, its status and the start of its output, as TAP
# comments.
diag() {
	echo "#   command: $cmdline"
	echo "#   exit status: $rc"
	sed -n '1,25s/^/#   stdout: /p' "$out"
	sed -n '1,25s/^/#   stderr: /p' "$err"
}

# t DESCRIPTION TEST...: one TAP line; TEST is any command.
t() {
	local d=$1
	shift
	if "$@"; then
		ok "$d"
	else
		not_ok "$d"
		diag
	fi
}

# Predicates over the last run.
succeeded() { [ "$rc" -eq 0 ]; }
# killed: the last command died of a signal (the shell reports 128 + the
# signal number) or timed out (124).  Some tools exit 255 on an ordinary
# error (NSS's certutil does), which is no signal.
killed() { [ "$rc" -eq 124 ] || { [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; }; }
# Failed with an ordinary error: not 0, not killed, and not "command not
# found" or "not executable" (126, 127), which would pass a test vacuously.
failed_cleanly() { [ "$rc" -ne 0 ] && [ "$rc" -ne 126 ] && [ "$rc" -ne 127 ] && ! killed; }
no_crash() { ! killed; }
# in_err / in_out PATTERN: an extended regular expression in stderr / stdout.
in_err() { grep -Eq -e "$1" "$err"; }
in_out() { grep -Eq -e "$1" "$out"; }
not_in_err() { ! grep -Eq -e "$1" "$err"; }
not_in_out() { ! grep -Eq -e "$1" "$out"; }
# in_file / not_in_file PATTERN FILE: an extended regular expression in FILE.
in_file() { grep -Eq -e "$1" "$2"; }
not_in_file() { ! grep -Eq -e "$1" "$2"; }
# logged_denial FILE USE LABEL [MECHANISM]: FILE holds the module's log line
# for a denial of USE of the key labelled LABEL, with its reason.
logged_denial() {
	local f=$1 use=$2 label=$3 mech=${4:-}
	local pat="denied $use \\(mechanism ${mech:-0x[0-9a-f]+}( CKM_[A-Z0-9_]+)?\\) of key label '$label': $DENIAL_REASON"
	grep -Eq -e "$pat" "$f"
}
# denial_logged USE LABEL [MECHANISM]: the same, in the last run's stderr.
denial_logged() { logged_denial "$err" "$@"; }
# no_denial: the last run logged no denial at all.
no_denial() { ! grep -q "denied " "$err"; }
# same_file A B: identical contents, and not empty.
same_file() { [ -s "$1" ] && cmp -s "$1" "$2"; }
# empty_or_absent FILE: nothing was written there.
empty_or_absent() { [ ! -s "$1" ]; }

# warden_module_conf LINE...: add LINEs to the [module] section of
# $W/p11-warden.conf (written by warden_conf; [module] comes first there).
warden_module_conf() {
	local f=$W/p11-warden.conf l
	{
		while IFS= read -r l; do
			printf '%s\n' "$l"
			if [ "$l" = "[module]" ]; then
				printf '%s\n' "$@"
			fi
		done <"$f"
	} >"$f.new"
	mv "$f.new" "$f"
}

# skip_all REASON: nothing here can run on this machine.
skip_all() {
	if [ "${P11W_REQUIRE_ALL:-0}" = 1 ]; then
		echo "Bail out! $* (P11W_REQUIRE_ALL=1)"
		exit 99
	fi
	echo "1..0 # SKIP $*"
	exit 77
}
