# SPDX-License-Identifier: Apache-2.0
# The audit ledger: writer, reader/verifier, their tests and fuzz targets.
libwarden_core_la_SOURCES += src/ledger.c src/ledger.h src/ledger-impl.h src/ledger-read.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-ledger
TESTS += tests/unit/test-ledger
tests_unit_test_ledger_SOURCES = tests/unit/test-ledger.c
tests_unit_test_ledger_CFLAGS = $(UNIT_CFLAGS) $(PTHREAD_CFLAGS)
tests_unit_test_ledger_LDADD = $(UNIT_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
endif

# kill -9 during a write storm of 4 processes; a full disk.
check_PROGRAMS += tests/integration/ledger-storm
TESTS += tests/integration/test-ledger-storm.sh
EXTRA_DIST += tests/integration/test-ledger-storm.sh
tests_integration_ledger_storm_SOURCES = tests/integration/ledger-storm.c
tests_integration_ledger_storm_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_ledger_storm_LDADD = libwarden-core.la $(CRYPTO_LIBS)
