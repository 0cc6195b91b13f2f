# SPDX-License-Identifier: Apache-2.0
# COSE_Sign1 and EAT (RFC 9052/9053, RFC 9711; FORMATS.md sections 2 and
# 3): the verifiers, their unit tests (with the go-cose vectors in
# tests/data/cose) and fuzz targets.
libwarden_core_la_SOURCES += src/cose.c src/cose.h src/verify-eat.c src/verify-eat.h
EXTRA_DIST += tests/data/cose tests/unit/cose-build.h

if HAVE_CMOCKA
EAT_UNIT_TESTS = tests/unit/test-cose tests/unit/test-verify-eat
check_PROGRAMS += $(EAT_UNIT_TESTS)
TESTS += $(EAT_UNIT_TESTS)

tests_unit_test_cose_SOURCES = tests/unit/test-cose.c tests/unit/cose-build.h
tests_unit_test_cose_CFLAGS = $(UNIT_CFLAGS) $(CBOR_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_cose_LDADD = $(UNIT_LIBS) $(CBOR_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)

tests_unit_test_verify_eat_SOURCES = tests/unit/test-verify-eat.c tests/unit/cose-build.h
tests_unit_test_verify_eat_CFLAGS = $(UNIT_CFLAGS) $(CBOR_CFLAGS)
tests_unit_test_verify_eat_LDADD = $(UNIT_LIBS) $(CBOR_LIBS) $(CRYPTO_LIBS)
endif

EAT_FUZZ_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS) $(CBOR_CFLAGS)
EAT_FUZZ_LIBS = libwarden-core.la $(CBOR_LIBS) $(CRYPTO_LIBS)

check_PROGRAMS += tests/fuzz/replay-cose tests/fuzz/replay-verify-eat
TESTS += tests/fuzz/replay-cose tests/fuzz/replay-verify-eat

tests_fuzz_replay_cose_SOURCES = tests/fuzz/fuzz-cose.c tests/fuzz/fuzz-sign.h tests/fuzz/replay.c
tests_fuzz_replay_cose_CFLAGS = $(EAT_FUZZ_CFLAGS) -DFUZZ_NAME=\"cose\"
tests_fuzz_replay_cose_LDADD = $(EAT_FUZZ_LIBS)

tests_fuzz_replay_verify_eat_SOURCES = tests/fuzz/fuzz-verify-eat.c tests/fuzz/fuzz-sign.h tests/fuzz/replay.c
tests_fuzz_replay_verify_eat_CFLAGS = $(EAT_FUZZ_CFLAGS) -DFUZZ_NAME=\"verify-eat\"
tests_fuzz_replay_verify_eat_LDADD = $(EAT_FUZZ_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-cose tests/fuzz/fuzz-verify-eat

tests_fuzz_fuzz_cose_SOURCES = tests/fuzz/fuzz-cose.c tests/fuzz/fuzz-sign.h
tests_fuzz_fuzz_cose_CFLAGS = $(EAT_FUZZ_CFLAGS)
tests_fuzz_fuzz_cose_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_cose_LDADD = $(EAT_FUZZ_LIBS)

tests_fuzz_fuzz_verify_eat_SOURCES = tests/fuzz/fuzz-verify-eat.c tests/fuzz/fuzz-sign.h
tests_fuzz_fuzz_verify_eat_CFLAGS = $(EAT_FUZZ_CFLAGS)
tests_fuzz_fuzz_verify_eat_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_verify_eat_LDADD = $(EAT_FUZZ_LIBS)
endif
