#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# C_Initialize with broken configurations, seen through pkcs11-tool (which
# prints the failing rv): each one fails with CKR_GENERAL_ERROR and a message
# on stderr that names the file (and the line, where there is one), never a
# crash.  A missing backend token is not an error (the slot shows no token),
# and with no file at the default path the module presents no slots.
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need pkcs11-tool
softhsm_setup
warden_conf
unset P11_WARDEN_CONF
cd "$W"
mkdir -p bad

# The lines of a good configuration, numbered as they land in the file.
module_section() {
	printf '[module]\n'                         # 1
	printf 'log = stderr\n'                     # 2
	printf 'log-level = warning\n'              # 3
	printf 'state-dir = %s/state\n' "$W"        # 4
}
# slot_section NAME [TOKEN-LABEL] [PIN-FILE] [MODULE]: five lines.
slot_section() {
	printf '[slot:%s]\n' "$1"
	printf 'backend = pkcs11\n'
	printf 'module = %s\n' "${4:-$SOFTHSM2_MODULE}"
	printf 'token = pkcs11:token=%s\n' "${2:-$BACKEND_LABEL}"
	printf 'pin-file = %s\n' "${3:-$W/backend.pin}"
}

L=(pkcs11-tool --module "$P11W_MODULE" -L)
# init_fails FILE: the last run is a clean C_Initialize failure.
init_fails() {
	failed_cleanly && in_err 'C_Initialize failed: rv = CKR_GENERAL_ERROR \(0x5\)'
}
# says MESSAGE-REGEX: the module's own message, prefixed as log.c does.
says() { in_err "^p11-warden: error: C_Initialize failed: $1"; }

# A good file first, so that every failure below is the one change it makes.
{ module_section; slot_section hsm; } >bad/good
run env P11_WARDEN_CONF="$W/bad/good" "${L[@]}"
t "the reference configuration initialises" succeeded
t "... and shows its slot" in_out 'p11-warden slot hsm'
# Debian's softhsm2 package registers SoftHSM with p11-kit: an application
# using p11-kit-proxy could reach the backend token that p11-warden logs in.
reg=/usr/share/p11-kit/modules/softhsm2.module
if [ -e "$reg" ] && ! grep -qE '^(disable-in|enable-in):' "$reg"; then
	t "... and warns that the backend module is also registered with p11-kit" \
		in_err "slot 'hsm': the backend module .* is also registered with p11-kit \\($reg\\)"
fi

# ---------------------------------------------------------------- the file
run env P11_WARDEN_CONF="$W/bad/nonexistent.conf" "${L[@]}"
t "P11_WARDEN_CONF names a missing file: C_Initialize fails cleanly" init_fails
t "... the message names the file and the reason" says "$W/bad/nonexistent.conf: cannot open: No such file or directory"

cp bad/good bad/world-writable
chmod 0666 bad/world-writable
run env P11_WARDEN_CONF="$W/bad/world-writable" "${L[@]}"
t "world-writable configuration: C_Initialize fails cleanly" init_fails
t "... the message names the file and its mode" says "$W/bad/world-writable: writable by others \(mode 666\)"

mkdir -p bad/a-directory
run env P11_WARDEN_CONF="$W/bad/a-directory" "${L[@]}"
t "a directory instead of a file: C_Initialize fails cleanly" init_fails
t "... the message says so" says "$W/bad/a-directory: not a regular file"

# ---------------------------------------------------------------- syntax and keys
{ module_section; printf 'bogus = 1\n'; slot_section hsm; } >bad/unknown-key
run env P11_WARDEN_CONF="$W/bad/unknown-key" "${L[@]}"
t "unknown key: C_Initialize fails cleanly" init_fails
t "... file:line and the key" says "$W/bad/unknown-key:5: unknown key 'bogus' in \[module\]"

{ module_section; slot_section hsm; printf 'colour = blue\n'; } >bad/unknown-slot-key
run env P11_WARDEN_CONF="$W/bad/unknown-slot-key" "${L[@]}"
t "unknown key in a slot: C_Initialize fails cleanly" init_fails
t "... file:line, the key and the slot" says "$W/bad/unknown-slot-key:10: unknown key 'colour' in \[slot:hsm\]"

{ module_section; slot_section hsm; printf '[frobnicate]\nx = 1\n'; } >bad/unknown-section
run env P11_WARDEN_CONF="$W/bad/unknown-section" "${L[@]}"
t "unknown section: C_Initialize fails cleanly" init_fails
t "... file:line and the section" says "$W/bad/unknown-section:1[01]: unknown section \[frobnicate\]"

{ module_section; slot_section hsm; printf 'gated = maybe\n'; } >bad/bad-boolean
run env P11_WARDEN_CONF="$W/bad/bad-boolean" "${L[@]}"
t "bad boolean: C_Initialize fails cleanly" init_fails
t "... file:line and the value" says "$W/bad/bad-boolean:10: 'gated' must be yes or no, not 'maybe'"

{ module_section; printf 'pin-max-failures = lots\n'; } >bad/bad-number
run env P11_WARDEN_CONF="$W/bad/bad-number" "${L[@]}"
t "bad number: C_Initialize fails cleanly" init_fails
t "... file:line and the value" says "$W/bad/bad-number:5: 'pin-max-failures' must be an integer"

{ module_section; slot_section hsm; printf 'this line has no equals sign\n'; } >bad/syntax
run env P11_WARDEN_CONF="$W/bad/syntax" "${L[@]}"
t "syntax error: C_Initialize fails cleanly" init_fails
t "... file:line" says "$W/bad/syntax:10: syntax error"

{ printf 'log = stderr\n'; module_section; } >bad/no-section
run env P11_WARDEN_CONF="$W/bad/no-section" "${L[@]}"
t "key before any section: C_Initialize fails cleanly" init_fails
t "... file:line" says "$W/bad/no-section:1: key 'log' outside any section"

{ module_section; slot_section hsm; slot_section other; slot_section hsm; } >bad/duplicate-slot
run env P11_WARDEN_CONF="$W/bad/duplicate-slot" "${L[@]}"
t "duplicate slot: C_Initialize fails cleanly" init_fails
t "... file:line and the slot" says "$W/bad/duplicate-slot:[0-9]+: section \\[slot:hsm\\] is defined twice \\(first at line [0-9]+\\)"

# Regression: a second [slot:NAME] right after the first was merged into it by
# libinih, so an appended `gated = no` turned the slot's gate off.
{ module_section; slot_section hsm; printf '[slot:hsm]\ngated = no\n'; } >bad/duplicate-adjacent
run env P11_WARDEN_CONF="$W/bad/duplicate-adjacent" "${L[@]}"
t "duplicate slot, adjacent sections: C_Initialize fails cleanly" init_fails
t "... file:line and the slot" says "$W/bad/duplicate-adjacent:[0-9]+: section \\[slot:hsm\\] is defined twice \\(first at line [0-9]+\\)"

long=$(printf '%0196d' 0)   # '# ' + 196 = 198 bytes: the longest line allowed
{ module_section; printf '# %s\n' "$long"; slot_section hsm; } >bad/longest-line
run env P11_WARDEN_CONF="$W/bad/longest-line" "${L[@]}"
t "a 198-byte line is accepted" succeeded
{ module_section; printf '# %sx\n' "$long"; slot_section hsm; } >bad/long-line
run env P11_WARDEN_CONF="$W/bad/long-line" "${L[@]}"
t "a 199-byte line: C_Initialize fails cleanly" init_fails
t "... file:line and the limit" says "$W/bad/long-line:5: line longer than 198 bytes"

{ module_section; slot_section hsm; printf 'ungated = pkcs11:object=x;colour=blue\n'; } >bad/bad-uri
run env P11_WARDEN_CONF="$W/bad/bad-uri" "${L[@]}"
t "URI with an attribute p11-warden does not know: C_Initialize fails cleanly" init_fails
t "... file:line and the URI" says "$W/bad/bad-uri:10: 'ungated': URI 'pkcs11:object=x;colour=blue'"

{ module_section; slot_section hsm "" "" relative/libsofthsm2.so; } >bad/relative-module
run env P11_WARDEN_CONF="$W/bad/relative-module" "${L[@]}"
t "relative backend module path: C_Initialize fails cleanly" init_fails
t "... file:line" says "$W/bad/relative-module:7: 'module' must be an absolute path"

{ module_section; slot_section hsm | grep -v '^pin-file'; } >bad/no-pin-file
run env P11_WARDEN_CONF="$W/bad/no-pin-file" "${L[@]}"
t "slot without pin-file: C_Initialize fails cleanly" init_fails
t "... the file, the slot and the missing key" says "$W/bad/no-pin-file:[0-9]+: slot 'hsm': 'pin-file' .* is required"

# ---------------------------------------------------------------- the backend
cp backend.pin bad/pin-644
chmod 0644 bad/pin-644
{ module_section; slot_section hsm "" "$W/bad/pin-644"; } >bad/readable-pin
run env P11_WARDEN_CONF="$W/bad/readable-pin" "${L[@]}"
t "backend PIN file readable by others: C_Initialize fails cleanly" init_fails
t "... the message names the PIN file and its mode" in_err "backend PIN file $W/bad/pin-644: mode 644 lets others read"
t "... the configuration line and the slot" says "$W/bad/readable-pin:[0-9]+: slot 'hsm': backend PIN file $W/bad/pin-644"

{ module_section; slot_section hsm "" "$W/bad/no-such-pin"; } >bad/missing-pin
run env P11_WARDEN_CONF="$W/bad/missing-pin" "${L[@]}"
t "missing backend PIN file: C_Initialize fails cleanly" init_fails
t "... the message names the PIN file" in_err "backend PIN file $W/bad/no-such-pin: No such file or directory"

printf 'this is not a shared library\n' >bad/not-a-library.so
{ module_section; slot_section hsm "" "" "$W/bad/not-a-library.so"; } >bad/unloadable
run env P11_WARDEN_CONF="$W/bad/unloadable" "${L[@]}"
t "unloadable backend module: C_Initialize fails cleanly" init_fails
t "... the message names the line, the slot and the module" says "$W/bad/unloadable:[0-9]+: slot 'hsm': cannot load backend module $W/bad/not-a-library.so"

{ module_section; slot_section hsm "" "" /nonexistent/libnothing.so; } >bad/missing-module
run env P11_WARDEN_CONF="$W/bad/missing-module" "${L[@]}"
t "missing backend module: C_Initialize fails cleanly" init_fails
t "... the message names the module" says "$W/bad/missing-module:[0-9]+: slot 'hsm': cannot load backend module /nonexistent/libnothing.so"

{ module_section; slot_section hsm no-such-token; } >bad/no-token
run env P11_WARDEN_CONF="$W/bad/no-token" "${L[@]}"
t "backend token that does not exist: C_Initialize succeeds, the slot is listed" in_out 'p11-warden slot hsm'
t "... with no token present" in_out '^ +\(empty\)$'
t "... and the module says why" in_err "slot 'hsm': no backend token matches pkcs11:token=no-such-token"
run env P11_WARDEN_CONF="$W/bad/no-token" pkcs11-tool --module "$P11W_MODULE" --slot 0 -O
t "... C_OpenSession on it fails with CKR_TOKEN_NOT_PRESENT" in_err 'C_OpenSession failed: rv = CKR_TOKEN_NOT_PRESENT \(0xe0\)'
t "... cleanly" failed_cleanly
run env P11_WARDEN_CONF="$W/bad/no-token" pkcs11-tool --module "$P11W_MODULE" --slot 0 -T
t "... and C_GetTokenInfo does not claim a token" not_in_out 'token label'
t "... without crashing" no_crash

# Two slots over one backend token would share its login (a login to one logs
# the other in): the second one is shown without a token.
{ module_section; slot_section first; slot_section second "$BACKEND_LABEL;model=SoftHSM%20v2"; } >bad/same-token
run env P11_WARDEN_CONF="$W/bad/same-token" "${L[@]}"
t "two slots over one backend token: C_Initialize succeeds" in_out 'p11-warden slot second'
t "... the second slot has no token" in_out '^ +\(empty\)$'
t "... and the module says why" in_err "slot 'second': its backend token is already fronted by slot 'first'"
run env P11_WARDEN_CONF="$W/bad/same-token" pkcs11-tool --module "$P11W_MODULE" --slot 1 -O
t "... C_OpenSession on it fails with CKR_TOKEN_NOT_PRESENT" in_err 'C_OpenSession failed: rv = CKR_TOKEN_NOT_PRESENT \(0xe0\)'

# A backend that forks in its C_Initialize (a helper process), which runs
# under p11-warden's initialisation lock: the fork handlers must not take it.
shim="$P11W_BUILDDIR/tests/module/.libs/slow-backend.so"
if [ -e "$shim" ]; then
	{ module_section; slot_section hsm "" "" "$shim"; } >bad/forking-backend
	run env P11_WARDEN_CONF="$W/bad/forking-backend" SLOW_BACKEND_FORK_IN_INIT=1 "${L[@]}"
	t "a backend that forks in C_Initialize: no deadlock, the slot is listed" in_out 'p11-warden slot hsm'
	t "... cleanly" no_crash
else
	not_ok "the test backend $shim was not built"
fi

# ---------------------------------------------------------------- no configuration at all
# With P11_WARDEN_CONF unset the module reads its default path and, when
# there is no file there, presents no slots.  If the machine has a file at
# that path, hide it in a private mount namespace.
default=$(grep -aoE '/[-_./A-Za-z0-9]*/p11-warden\.conf' "$P11W_MODULE" | head -1 || true)
HIDE=()
can_run=yes
if [ -z "$default" ]; then
	can_run=no
elif [ -e "$default" ]; then
	if command -v unshare >/dev/null && [ "$(id -u)" -eq 0 ]; then
		mkdir -p empty
		HIDE=(unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh
			"$W/empty" "$(dirname "$default")")
	else
		can_run=no
	fi
fi
if [ "$can_run" = yes ]; then
	run "${HIDE[@]}" env -u P11_WARDEN_CONF pkcs11-tool --module "$P11W_MODULE" -I
	t "no file at $default: C_Initialize succeeds (C_GetInfo answers)" in_out 'Manufacturer +p11-warden'
	t "... and no initialisation error is printed" not_in_err 'C_Initialize failed'
	run "${HIDE[@]}" env -u P11_WARDEN_CONF pkcs11-tool --module "$P11W_MODULE" -L
	t "... pkcs11-tool -L: no slots" in_err '^No slots\.$'
	t "... without an error from the module" not_in_err 'p11-warden: error'
	t "... cleanly (pkcs11-tool exits 1 when there is no slot)" no_crash
	run "${HIDE[@]}" env P11_WARDEN_CONF= pkcs11-tool --module "$P11W_MODULE" -L
	t "an empty P11_WARDEN_CONF means the default path too" \
		bash -c "grep -q '^No slots\.\$' '$err' && ! grep -q 'C_Initialize failed' '$err'"
else
	for i in 1 2 3 4 5 6; do ok "# SKIP cannot hide the default configuration file '$default'"; done
fi

done_testing
