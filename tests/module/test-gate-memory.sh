#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs tests/module/test-gate-memory (see test-gate-memory.c) against a fresh
# SoftHSM token, with configurations that differ only in gate-cache-ms
# (400, the default, 0) or in the backend module (slow-backend.so); the
# program switches between them in one process (C_Finalize,
# P11_WARDEN_CONF, C_Initialize).
. "${P11W_SRCDIR:?}/tests/module/module-env.sh"

softhsm_setup
# The keys named here are released without a verdict; every other key is
# gated.  open-key is the RSA pair renamed back and forth; open-victim names
# no key: it is the ungated name a gated key must never reach.
warden_conf \
	"ungated = pkcs11:object=open-key" \
	"ungated = pkcs11:object=open-rsa" \
	"ungated = pkcs11:object=open-aes" \
	"ungated = pkcs11:object=open-aes-b" \
	"ungated = pkcs11:object=open-ec" \
	"ungated = pkcs11:object=open-sess" \
	"ungated = pkcs11:object=open-victim"
warden_init

# with_cache MS FILE: the configuration with `gate-cache-ms = MS` in [module].
with_cache() {
	sed "s/^\[module\]\$/[module]\ngate-cache-ms = $1/" "$W/p11-warden.conf" >"$2"
	chmod 600 "$2"
}
with_cache 400 "$W/cache-400.conf"
with_cache 0 "$W/cache-0.conf"
# The default cache, the same token through slow-backend.so: SoftHSM whose
# renames to a label starting "slow-" take 300 ms.
slow=${P11W_BUILDDIR:?}/tests/module/.libs/slow-backend.so
if [ ! -e "$slow" ]; then
	echo "Bail out! $slow is not built"
	exit 99
fi
sed "s|^module = .*|module = $slow|" "$W/p11-warden.conf" >"$W/slow.conf"
chmod 600 "$W/slow.conf"
P11W_CONF_CACHE_400=$W/cache-400.conf
P11W_CONF_CACHE_0=$W/cache-0.conf
P11W_CONF_CACHE_DEFAULT=$W/p11-warden.conf
P11W_CONF_SLOW_BACKEND=$W/slow.conf
export P11W_CONF_CACHE_400 P11W_CONF_CACHE_0 P11W_CONF_CACHE_DEFAULT P11W_CONF_SLOW_BACKEND
# For the program's second process, which renames keys on the backend.
export WARDEN_LABEL WARDEN_PIN WARDEN_SO_PIN BACKEND_LABEL BACKEND_PIN

rc=0
module_run test-gate-memory || rc=$?
exit $rc
