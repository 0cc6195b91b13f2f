# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the attestation gate through real clients:
# test-attest-tpm.sh (pull: collectors quote swtpm's PCR 16 on each gated
# call; pkcs11-tool and OpenSSL's libp11 engine) and test-attest-push.sh
# (push: push-client creates a challenge, has swtpm quote over it and
# pushes the evidence, directly and through `p11-kit server`).
#
# Debian packages: swtpm, swtpm-tools, tpm2-tools, opensc, softhsm2,
# openssl, libengine-pkcs11-openssl, p11-kit, p11-kit-modules.
ATTEST_E2E_TESTS = \
	tests/integration/test-attest-tpm.sh \
	tests/integration/test-attest-push.sh \
	$(NULL)
TESTS += $(ATTEST_E2E_TESTS)
EXTRA_DIST += $(ATTEST_E2E_TESTS)

# An application that pushes evidence with standard PKCS#11 calls only: it
# dlopens the module it is given (p11-warden.so or p11-kit-client.so) and
# links nothing of p11-warden's.
check_PROGRAMS += tests/integration/push-client
tests_integration_push_client_SOURCES = tests/integration/push-client.c
tests_integration_push_client_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_integration_push_client_LDADD = $(DL_LIBS)

# They load the built module.
$(ATTEST_E2E_TESTS:.sh=.log): p11-warden.la
