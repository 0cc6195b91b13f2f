#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The audit ledger under a write storm: four processes append at once
# (fsync = batch, batches of 8) and are killed with kill -9 at random
# moments, round after round; then the ledger must verify up to its last
# complete record, with contiguous sequence numbers, no torn record but
# possibly one torn tail, and every record each writer knew to be durable.
# Then a full disk (a 64 KiB tmpfs in a private mount namespace, as root):
# the ledger refuses appends, stays verifiable, and recovers with room.
. "$P11W_SRCDIR/tests/lib.sh"

need openssl
S=$P11W_BUILDDIR/tests/integration/ledger-storm
L=$W/ledger
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/audit.pem" 2>/dev/null
chmod 0600 "$W/audit.pem"
mkdir -p "$W/progress"

ROUNDS=${LEDGER_STORM_ROUNDS:-10}
for r in $(seq 1 "$ROUNDS"); do
	pids=()
	for w in 1 2 3 4; do
		"$S" write "$L" "$W/audit.pem" "w$w-r$r" 20000 >"$W/progress/w$w-r$r" 2>>"$W/storm.err" &
		pids+=($!)
	done
	# 50..300 ms, then kill -9 all four wherever they are.
	sleep "0.$(printf '%03d' $((50 + RANDOM % 251)))"
	kill -9 "${pids[@]}" 2>/dev/null || true
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# Mid-storm: what a crash left verifies (a torn tail allowed).
	check "round $r: the ledger verifies after kill -9" \
		"$S" check "$L" "$W/audit.pem" "$W"/progress/*
done
if grep -v '^audit ledger\|cutting\|^p11-warden: warning' "$W/storm.err" | grep -q .; then
	sed 's/^/# /' "$W/storm.err" | head -20
	not_ok "writers failed other than by being killed"
else
	ok "writers failed only by being killed"
fi
echo "# $(grep -c cutting "$W/storm.err" || true) torn tail(s) cut back by the next writer"

# A last writer that finishes: the torn tail is gone, everything signed.
check "a clean writer after the storm" "$S" write "$L" "$W/audit.pem" last 100 >"$W/progress/last"
out=$("$S" check "$L" "$W/audit.pem" "$W"/progress/*)
echo "$out"
check "after the storm: verified, no unsigned or torn tail" \
	grep -q 'verify: 0 (ok); .* 0 unsigned, torn 0' <<<"$out"
n=$(sed -n 's/^# \([0-9]*\) storm records.*/\1/p' <<<"$out")
check "plausible count of records ($n)" test "${n:-0}" -gt 200

# A full disk.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	mkdir -p "$W/small"
	if unshare -m sh -c "mount -t tmpfs -o size=64k tmpfs '$W/small' &&
		head -c 40000 /dev/zero >'$W/small/filler' &&
		'$S' diskfull '$W/small/ledger' '$W/audit.pem' '$W/small/filler'" >"$W/full.out" 2>&1; then
		sed 's/^/# /' "$W/full.out"
		ok "disk full: appends refused, ledger intact, recovery with room"
	elif grep -q 'mount\|unshare' "$W/full.out"; then
		sed 's/^/# /' "$W/full.out"
		echo "# skip: cannot mount a tmpfs here"
	else
		sed 's/^/# /' "$W/full.out"
		not_ok "disk full"
	fi
else
	echo "# skip: the disk-full case needs root (a private tmpfs); test-ledger injects a write failure instead"
fi
done_testing
