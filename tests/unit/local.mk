# SPDX-License-Identifier: Apache-2.0
# Unit tests (cmocka) of the pieces, linked with the core library.
if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test-conf \
	tests/unit/test-token-state \
	tests/unit/test-policy \
	tests/unit/test-verify-tpm \
	$(NULL)
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS)
UNIT_LIBS = libwarden-core.la $(CMOCKA_LIBS)

tests_unit_test_conf_SOURCES = tests/unit/test-conf.c
tests_unit_test_conf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_conf_LDADD = $(UNIT_LIBS)

tests_unit_test_token_state_SOURCES = tests/unit/test-token-state.c
tests_unit_test_token_state_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_token_state_LDADD = $(UNIT_LIBS)

tests_unit_test_policy_SOURCES = tests/unit/test-policy.c
tests_unit_test_policy_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_policy_LDADD = $(UNIT_LIBS)

tests_unit_test_verify_tpm_SOURCES = tests/unit/test-verify-tpm.c
tests_unit_test_verify_tpm_CFLAGS = $(UNIT_CFLAGS) $(TSS2MU_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_verify_tpm_LDADD = $(UNIT_LIBS) $(TSS2MU_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)
endif
