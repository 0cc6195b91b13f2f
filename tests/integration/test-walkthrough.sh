#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The README's provisioning walkthrough, run as written: the block between
# <!-- walkthrough --> and <!-- /walkthrough --> is taken from README.md,
# its system paths moved into this test's directory, the TPM replaced by
# swtpm, and run; then what the README promises after it is checked (the
# gated key decrypts, key list and doctor say so, the ledger verifies, and
# after PCR 16 changes the key is refused).
P11W_SAN_PRELOAD=${LD_PRELOAD:-}
unset LD_PRELOAD
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need swtpm tpm2_createek tpm2_createak tpm2_evictcontrol tpm2_flushcontext tpm2_pcrread \
	tpm2_pcrextend softhsm2-util pkcs11-tool openssl awk sed
TOOL=${P11W_TOOL:-$P11W_BUILDDIR/p11-warden}
[ -x "$TOOL" ] || { echo "Bail out! $TOOL not built"; exit 99; }
cd "$W"

# A client that loads the module gets the sanitizer runtimes, if any.
client() {
	if [ -n "$P11W_SAN_PRELOAD" ]; then
		LD_PRELOAD=$P11W_SAN_PRELOAD "$@"
	else
		"$@"
	fi
}
crun() { run env ${P11W_SAN_PRELOAD:+LD_PRELOAD="$P11W_SAN_PRELOAD"} "$@"; }

mkdir -p tpm tokens
swtpm socket --tpm2 --tpmstate dir="$W/tpm" \
	--server type=unixio,path="$W/tpm/sock" --ctrl type=unixio,path="$W/tpm/sock.ctrl" \
	--flags not-need-init,startup-clear --log file="$W/tpm/log" &
P11W_CLEANUP+=("kill $!")
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
[ -S "$W/tpm/sock" ] || { echo "Bail out! swtpm did not start"; exit 99; }
export TPM2TOOLS_TCTI="swtpm:path=$W/tpm/sock"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" \
	>softhsm2.conf
export SOFTHSM2_CONF=$W/softhsm2.conf
# swtpm has no resource manager (a TPM device usually does): flush what
# each tool leaves loaded.
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }

# The block, as the README has it.
sed -n '/^<!-- walkthrough -->$/,/^<!-- \/walkthrough -->$/p' "$P11W_SRCDIR/README.md" |
	sed '/^<!--/d; /^```/d' >walkthrough.orig
t "the README has a walkthrough block" test -s walkthrough.orig
sed -e "s|/etc/p11-warden|$W/etc/p11-warden|g" \
	-e "s|/var/lib/p11-warden|$W/var/lib/p11-warden|g" \
	-e "s|/root/warden|$W/root/warden|g" \
	-e "s|/usr/lib/x86_64-linux-gnu/pkcs11/p11-warden.so|$P11W_MODULE|g" \
	-e "s|/usr/lib/softhsm/libsofthsm2.so|$SOFTHSM2_MODULE|g" \
	-e "s|device:/dev/tpmrm0|swtpm:path=$W/tpm/sock|g" \
	-e "s|log=syslog|log=stderr|" \
	-e "s|^p11-warden |\"$TOOL\" |" \
	-e "s|^pkcs11-tool |client pkcs11-tool |" \
	-e '/^tpm2_create\|^tpm2_evictcontrol/s|$| \&\& flush|' \
	walkthrough.orig >walkthrough.sh
mkdir -p "$W/root"
export -f client flush
export P11W_SAN_PRELOAD P11W_MODULE
run bash -e walkthrough.sh
t "the walkthrough runs to the end (exit 0)" succeeded
{ grep -i 'error\|denied\|fail' "$err" || true; } | head -5 | sed 's/^/# /'
t "step 7: pkcs11-tool decrypts with the gated key (the plaintext)" in_out '^attested release only$'
t "step 8: key list shows db-key gated under pcr16 (slot default)" \
	in_out 'db-key.*gated: policy pcr16 \(slot default\)'
t "step 8: doctor says the gated operation would be released" in_out 'RELEASED'
t "step 8: the ledger has the release" in_out 'gated-allow .*key=.db-key.*allow policy=pcr16'
t "step 8: audit verify: intact" in_out 'audit.ledger: intact: '
t "every p11-warden command of the walkthrough exercised (module, slot, token, anchor, policy, collector, key, doctor, audit)" \
	bash -c "for c in 'module set' 'slot add' 'token init ' 'token init-pin' 'anchor enrol' 'policy add' 'policy bind' 'collector add' 'slot set' 'key list' 'doctor' 'audit show' 'audit verify'; do grep -q \"^p11-warden \$c\" walkthrough.orig || exit 1; done"
t "the configuration was written by the tool alone" test -s "$W/etc/p11-warden/p11-warden.conf"

# What the README says next: PCR 16 changes, the key is refused.
tpm2_pcrextend "16:sha256=$(printf 'something else' | sha256sum | cut -c1-64)" >/dev/null
export P11_WARDEN_CONF=$W/etc/p11-warden/p11-warden.conf
crun pkcs11-tool --module "$P11W_MODULE" --token-label warden --login --pin user-secret-1 \
	--decrypt -m RSA-PKCS --id 01 -i "$W/root/warden/secret.bin"
t "after PCR 16 changed: the decryption is refused with 0x200" in_err '0x200|CKR_FUNCTION_REJECTED'
t "... the reason names the failing predicate" in_err "policy 'pcr16': \\\$\\.rule\\.claims\\[0\\]"
t "... no plaintext" not_in_out 'attested release only'
run "$TOOL" doctor --slot hsm
t "doctor: refused (exit 1), naming tpm.pcr.sha256.16" \
	bash -c "[ $rc -eq 1 ] && grep -q 'tpm.pcr.sha256.16' '$out'"
done_testing
