# SPDX-License-Identifier: Apache-2.0
# Evidence collectors for the pull model (src/collector.h): a TPM 2.0 quote
# through tpm2-tss, and an external command.
libwarden_core_la_SOURCES += \
	src/collector.h \
	src/collector-impl.h \
	src/collector.c \
	src/collect-command.c \
	src/collect-tpm.c \
	$(NULL)

# The command collector against small scripts the test writes.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-collect-command
TESTS += tests/unit/test-collect-command
tests_unit_test_collect_command_SOURCES = tests/unit/test-collect-command.c
tests_unit_test_collect_command_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_collect_command_LDADD = $(UNIT_LIBS)
endif

# The TPM collector against swtpm, its output checked by the quote verifier.
check_PROGRAMS += tests/integration/collect-tpm
tests_integration_collect_tpm_SOURCES = tests/integration/collect-tpm.c
tests_integration_collect_tpm_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS) \
	$(JSONC_CFLAGS)
tests_integration_collect_tpm_LDADD = libwarden-core.la $(JSONC_LIBS) $(CRYPTO_LIBS)
TESTS += tests/integration/test-collect-tpm.sh
EXTRA_DIST += tests/integration/test-collect-tpm.sh
