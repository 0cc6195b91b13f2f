# SPDX-License-Identifier: Apache-2.0
# Setup shared by the module tests (sourced by test-*.sh, with tests/lib.sh):
# a SoftHSM token with a second one beside it, a p11-warden configuration
# with two slots over the one SoftHSM module (slot `hsm` over `backend`,
# initialised with pkcs11-tool as an administrator would; slot `spare` over
# `backend2`, left uninitialised for the tests), and module_run to start a
# test program.  The test keys are created by the programs themselves,
# through the module (module-test.c, mt_provision).

. "${P11W_SRCDIR:?P11W_SRCDIR must point at the source tree}/tests/lib.sh"

need pkcs11-tool

SPARE_LABEL=spare
P11W_PIN_MAX_FAILURES=5

module_setup() {
	softhsm_setup
	softhsm2-util --init-token --free --label backend2 \
		--so-pin "$BACKEND_SO_PIN" --pin "$BACKEND_PIN" >/dev/null
	# Keys whose label is listed here are released without a verdict;
	# every other key of the slot is gated (the default).
	warden_conf \
		"ungated = pkcs11:object=open-rsa" \
		"ungated = pkcs11:object=open-aes" \
		"ungated = pkcs11:object=open-aes-b" \
		"ungated = pkcs11:object=open-ec"
	sed -i "s/^\[module\]\$/[module]\npin-max-failures = $P11W_PIN_MAX_FAILURES/" "$W/p11-warden.conf"
	printf '[slot:%s]\nbackend = pkcs11\nmodule = %s\ntoken = pkcs11:token=backend2\npin-file = %s/backend.pin\n' \
		"$SPARE_LABEL" "$SOFTHSM2_MODULE" "$W" >>"$W/p11-warden.conf"
	warden_init
	export WARDEN_LABEL WARDEN_PIN WARDEN_SO_PIN SPARE_LABEL P11W_PIN_MAX_FAILURES
}

# module_run NAME [ARGS...]: run the built test program NAME.
module_run() {
	local bin=${P11W_BUILDDIR:?}/tests/module/$1
	shift
	if [ ! -x "$bin" ]; then
		echo "Bail out! $bin is not built"
		return 99
	fi
	"$bin" "$@"
}
