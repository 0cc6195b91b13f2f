#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# p11-warden registered with p11-kit: through p11-kit-proxy.so (in-process,
# and with a `remote:` module running it in p11-kit-remote), and exported by
# `p11-kit server` to clients loading p11-kit-client.so (the custody service:
# denials travel through RPC as 0x200).
#
# As root p11-kit ignores user configuration and the proxy would load every
# system module, so the proxy parts run as an unprivileged user (uid 65534)
# with their own XDG_CONFIG_HOME holding `user-config: only` (ENVIRONMENT.md).
. "$P11W_SRCDIR/tests/lib.sh"
. "$P11W_SRCDIR/tests/integration/common.sh"

need pkcs11-tool openssl p11-kit setpriv
MULTIARCH_LIB=$(pkg-config --variable=libdir p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
PROXY=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null || echo "$MULTIARCH_LIB/p11-kit-proxy.so")
MODDIR=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo "$MULTIARCH_LIB/pkcs11")
CLIENT=$MODDIR/p11-kit-client.so
REMOTE=
for r in /usr/libexec/p11-kit/p11-kit-remote "$MULTIARCH_LIB/p11-kit/p11-kit-remote"; do
	[ -x "$r" ] && REMOTE=$r && break
done
need "$PROXY" "$CLIENT"
[ -n "$REMOTE" ] || skip_all "p11-kit-remote not found"
[ "$(id -u)" -eq 0 ] || skip_all "needs root (to run the proxy as another user)"

NOBODY=65534
softhsm_setup
warden_conf 'ungated = pkcs11:object=rsa-open'
warden_init
cd "$W"

U=(pkcs11-tool --module "$P11W_MODULE" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
for k in "01 rsa-gated" "02 rsa-open"; do
	set -- $k
	"${U[@]}" --keypairgen --key-type rsa:2048 --id "$1" --label "$2" >/dev/null 2>&1
	"${U[@]}" --read-object --type pubkey --id "$1" -o "pub$1.der" >/dev/null 2>&1
done
printf 'through p11-kit\n' >msg
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub01.der -in msg -out ct01
openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub02.der -in msg -out ct02

# ---------------------------------------------------------------- as uid 65534
# Everything that user touches must be its own or readable: the backend token
# and p11-warden's state are handed over, the backend PIN file stays 0600 (now
# that user's), the configuration stays root's and read-only.  The built
# module is loaded where it is, or from a copy in $W if that user cannot
# read the build tree.
mkdir -p nb nb/home cfg/pkcs11/modules
cp msg ct01 ct02 pub01.der pub02.der nb/
chown -R $NOBODY:$NOBODY tokens state backend.pin nb
AS_NOBODY=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups
	env HOME="$W/nb/home" XDG_CONFIG_HOME="$W/cfg" SOFTHSM2_CONF="$SOFTHSM2_CONF"
	P11_WARDEN_CONF="$P11_WARDEN_CONF")
if ! "${AS_NOBODY[@]}" test -w "$W/nb"; then
	skip_all "uid $NOBODY cannot reach $W (check the permissions of its parents)"
fi
MODULE=$P11W_MODULE
if ! "${AS_NOBODY[@]}" test -r "$MODULE"; then
	mkdir -p lib
	cp "$P11W_MODULE" lib/p11-warden.so
	chmod 0755 lib/p11-warden.so
	MODULE=$W/lib/p11-warden.so
fi
printf 'user-config: only\n' >cfg/pkcs11/pkcs11.conf
printf 'module: %s\ncritical: yes\n' "$MODULE" >cfg/pkcs11/modules/p11-warden.module
cd nb
t "the backend PIN file is still mode 0600, owned by uid $NOBODY" \
	test "$(stat -c '%a %u' "$W/backend.pin")" = "600 $NOBODY"

run "${AS_NOBODY[@]}" p11-kit list-modules
t "p11-kit list-modules (uid $NOBODY) lists p11-warden" in_out '^p11-warden: '
t "... with its token" in_out "token: $WARDEN_LABEL\$"
t "... and only user modules (no system registration)" not_in_out '^(softhsm2|opensc-pkcs11|tpm2_pkcs11|p11-kit-trust): '

PX=(pkcs11-tool --module "$PROXY")
PXU=("${PX[@]}" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
run "${AS_NOBODY[@]}" "${PX[@]}" -L
t "pkcs11-tool through p11-kit-proxy lists the p11-warden slot" in_out 'p11-warden slot hsm'
t "... and its token" in_out "token label +: $WARDEN_LABEL\$"
run "${AS_NOBODY[@]}" "${PXU[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig.proxy
t "proxy: sign with the gated key works" succeeded
run openssl dgst -sha256 -verify pub01.der -keyform DER -signature sig.proxy msg
t "... the signature verifies" in_out 'Verified OK'
run "${AS_NOBODY[@]}" "${PXU[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt.proxy
t "proxy: decrypt with the ungated key returns the plaintext" same_file pt.proxy msg
run "${AS_NOBODY[@]}" "${PXU[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt.proxy.gated
t "proxy: decrypt with the gated key fails cleanly" failed_cleanly
t "... with 0x200 at C_DecryptInit" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... the denial is logged with its reason" denial_logged decrypt rsa-gated 0x1
t "... no plaintext" empty_or_absent pt.proxy.gated
run "${AS_NOBODY[@]}" "${PXU[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig.proxy2
t "proxy: the gated key signs in the next call" same_file sig.proxy2 sig.proxy
t "the state stays the user's (no root-owned file left behind)" \
	bash -c "[ -z \"\$(find '$W/state' '$W/tokens' ! -uid $NOBODY)\" ]"

# OpenSSL's engine loads p11-kit-proxy.so when PKCS11_MODULE_PATH is unset:
# the way an unmodified application meets p11-warden.
if PKCS11_MODULE_PATH=$P11W_MODULE openssl engine pkcs11 -t 2>/dev/null | grep -q available; then
	key() { printf 'pkcs11:token=%s;object=%s;type=private?pin-value=%s' "$WARDEN_LABEL" "$1" "$WARDEN_PIN"; }
	run "${AS_NOBODY[@]}" openssl pkeyutl -engine pkcs11 -keyform engine -decrypt \
		-inkey "$(key rsa-open)" -in ct02 -out pt.engine
	t "openssl engine via the proxy: ungated decrypt returns the plaintext" same_file pt.engine msg
	run "${AS_NOBODY[@]}" openssl pkeyutl -engine pkcs11 -keyform engine -decrypt \
		-inkey "$(key rsa-gated)" -in ct01 -out pt.engine.gated
	t "openssl engine via the proxy: gated decrypt fails cleanly" failed_cleanly
	t "... logged with its reason" denial_logged decrypt rsa-gated 0x1
	t "... no plaintext" empty_or_absent pt.engine.gated
else
	for i in 1 2 3 4; do ok "# SKIP the OpenSSL pkcs11 engine is not installed"; done
fi

# The same module declared `remote:`: p11-kit runs it in p11-kit-remote and
# talks RPC to it (what the custody service does across a socket).
printf 'remote: |%s %s\ncritical: yes\n' "$REMOTE" "$MODULE" \
	>"$W/cfg/pkcs11/modules/p11-warden.module"
run "${AS_NOBODY[@]}" "${PX[@]}" -L
t "remote: module: the proxy lists the token" in_out "token label +: $WARDEN_LABEL\$"
run "${AS_NOBODY[@]}" "${PXU[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt.remote
t "remote: module: ungated decrypt returns the plaintext" same_file pt.remote msg
run "${AS_NOBODY[@]}" "${PXU[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt.remote.gated
t "remote: module: gated decrypt is refused with 0x200 through RPC" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... logged with its reason (p11-kit-remote's stderr)" denial_logged decrypt rsa-gated 0x1
t "... no plaintext" empty_or_absent pt.remote.gated
cd "$W"

# ---------------------------------------------------------------- p11-kit server
# The server runs as root here and loads p11-warden by path; clients load
# p11-kit-client.so and reach it through a Unix socket in $W.
chown -R 0:0 tokens state backend.pin
mkdir -p run
p11-kit server -f --provider "$P11W_MODULE" -n "$W/run/p11.sock" "pkcs11:token=$WARDEN_LABEL" \
	>server.out 2>server.err &
server=$!
P11W_CLEANUP+=("kill $server")
for _ in $(seq 100); do
	[ -S run/p11.sock ] && break
	kill -0 $server 2>/dev/null || break
	sleep 0.1
done
t "p11-kit server is listening on $W/run/p11.sock" test -S run/p11.sock
export P11_KIT_SERVER_ADDRESS=unix:path=$W/run/p11.sock

C=(pkcs11-tool --module "$CLIENT")
CU=("${C[@]}" --token-label "$WARDEN_LABEL" --login --pin "$WARDEN_PIN")
run "${C[@]}" -L
t "client: pkcs11-tool through p11-kit-client lists the p11-warden token" in_out "token label +: $WARDEN_LABEL\$"
t "... served by p11-warden" in_out 'token manufacturer +: p11-warden'
run "${CU[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig.rpc
t "client: sign with the gated key works" succeeded
run openssl dgst -sha256 -verify pub01.der -keyform DER -signature sig.rpc msg
t "... the signature verifies" in_out 'Verified OK'
run "${CU[@]}" --decrypt -m RSA-PKCS --id 02 -i ct02 -o pt.rpc
t "client: decrypt with the ungated key returns the plaintext" same_file pt.rpc msg
run "${CU[@]}" --decrypt -m RSA-PKCS --id 01 -i ct01 -o pt.rpc.gated
t "client: decrypt with the gated key fails cleanly" failed_cleanly
t "... CKR_FUNCTION_REJECTED (0x200) arrives through RPC" in_err 'C_DecryptInit failed: rv = .*\(0x200\)'
t "... the denial is logged on the server's side, with its reason" \
	logged_denial server.err decrypt rsa-gated 0x1
t "... no plaintext" empty_or_absent pt.rpc.gated
run "${CU[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i msg -o sig.rpc2
t "client: the gated key signs in the next call" same_file sig.rpc2 sig.rpc
run "${C[@]}" --token-label "$WARDEN_LABEL" --login --pin 0000 -O
t "client: a wrong PIN is CKR_PIN_INCORRECT through RPC" in_err 'CKR_PIN_INCORRECT'

kill $server 2>/dev/null || true
wait $server 2>/dev/null || true
t "p11-kit server stopped" bash -c "! kill -0 $server 2>/dev/null"
run "${C[@]}" -L
t "with the server gone the client fails cleanly" no_crash

done_testing
