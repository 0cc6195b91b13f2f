# SPDX-License-Identifier: Apache-2.0
# EAR attestation results (draft-ietf-rats-ear, Veraison EAR; FORMATS.md
# section 4) as a JWT or a COSE_Sign1, and the JWS (RFC 7515) reader.
libwarden_core_la_SOURCES += src/jws.c src/jws.h src/verify-ear.c src/verify-ear.h
EXTRA_DIST += tests/data/ear

# Token makers shared by the tests and the fuzzers.
EAR_TOKENS = tests/unit/ear-tokens.c tests/unit/ear-tokens.h
EAR_TEST_CFLAGS = $(CBOR_CFLAGS) $(JSONC_CFLAGS) -I$(top_srcdir)/tests/unit
EAR_TEST_LIBS = $(CBOR_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)

if HAVE_CMOCKA
EAR_UNIT_TESTS = \
	tests/unit/test-jws \
	tests/unit/test-verify-ear \
	$(NULL)
check_PROGRAMS += $(EAR_UNIT_TESTS)
TESTS += $(EAR_UNIT_TESTS)

tests_unit_test_jws_SOURCES = tests/unit/test-jws.c $(EAR_TOKENS)
tests_unit_test_jws_CFLAGS = $(UNIT_CFLAGS) $(EAR_TEST_CFLAGS)
tests_unit_test_jws_LDADD = $(UNIT_LIBS) $(EAR_TEST_LIBS)

tests_unit_test_verify_ear_SOURCES = tests/unit/test-verify-ear.c $(EAR_TOKENS)
tests_unit_test_verify_ear_CFLAGS = $(UNIT_CFLAGS) $(EAR_TEST_CFLAGS)
tests_unit_test_verify_ear_LDADD = $(UNIT_LIBS) $(EAR_TEST_LIBS)
endif

# Corpora replayed under make check (tests/fuzz/corpus/jws, .../verify-ear).
check_PROGRAMS += tests/fuzz/replay-jws tests/fuzz/replay-verify-ear
TESTS += tests/fuzz/replay-jws tests/fuzz/replay-verify-ear

tests_fuzz_replay_jws_SOURCES = tests/fuzz/fuzz-jws.c tests/fuzz/replay.c $(EAR_TOKENS)
tests_fuzz_replay_jws_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(EAR_TEST_CFLAGS) -DFUZZ_NAME=\"jws\"
tests_fuzz_replay_jws_LDADD = libwarden-core.la $(EAR_TEST_LIBS)

tests_fuzz_replay_verify_ear_SOURCES = tests/fuzz/fuzz-verify-ear.c tests/fuzz/replay.c $(EAR_TOKENS)
tests_fuzz_replay_verify_ear_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(EAR_TEST_CFLAGS) \
	-DFUZZ_NAME=\"verify-ear\"
tests_fuzz_replay_verify_ear_LDADD = libwarden-core.la $(EAR_TEST_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-jws tests/fuzz/fuzz-verify-ear

tests_fuzz_fuzz_jws_SOURCES = tests/fuzz/fuzz-jws.c $(EAR_TOKENS)
tests_fuzz_fuzz_jws_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(EAR_TEST_CFLAGS)
tests_fuzz_fuzz_jws_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_jws_LDADD = libwarden-core.la $(EAR_TEST_LIBS)

tests_fuzz_fuzz_verify_ear_SOURCES = tests/fuzz/fuzz-verify-ear.c $(EAR_TOKENS)
tests_fuzz_fuzz_verify_ear_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(EAR_TEST_CFLAGS)
tests_fuzz_fuzz_verify_ear_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_verify_ear_LDADD = libwarden-core.la $(EAR_TEST_LIBS)
endif
