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

# The record parser and the verifier under fuzzing; their corpora replay
# under make check (tests/fuzz/corpus/ledger-record, .../ledger-file).
check_PROGRAMS += tests/fuzz/replay-ledger-record tests/fuzz/replay-ledger-file
TESTS += tests/fuzz/replay-ledger-record tests/fuzz/replay-ledger-file

tests_fuzz_replay_ledger_record_SOURCES = tests/fuzz/fuzz-ledger-record.c tests/fuzz/replay.c
tests_fuzz_replay_ledger_record_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"ledger-record\"
tests_fuzz_replay_ledger_record_LDADD = libwarden-core.la $(CRYPTO_LIBS)

tests_fuzz_replay_ledger_file_SOURCES = tests/fuzz/fuzz-ledger-file.c tests/fuzz/replay.c
tests_fuzz_replay_ledger_file_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"ledger-file\"
tests_fuzz_replay_ledger_file_LDADD = libwarden-core.la $(CRYPTO_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-ledger-record tests/fuzz/fuzz-ledger-file

tests_fuzz_fuzz_ledger_record_SOURCES = tests/fuzz/fuzz-ledger-record.c
tests_fuzz_fuzz_ledger_record_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_ledger_record_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_ledger_record_LDADD = libwarden-core.la $(CRYPTO_LIBS)

tests_fuzz_fuzz_ledger_file_SOURCES = tests/fuzz/fuzz-ledger-file.c
tests_fuzz_fuzz_ledger_file_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_ledger_file_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_ledger_file_LDADD = libwarden-core.la $(CRYPTO_LIBS)
endif
