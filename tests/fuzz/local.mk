# SPDX-License-Identifier: Apache-2.0
# Fuzz targets for the parsers, and the replay of their corpora (seeds and
# every input a fuzzer found, kept as regression tests) under `make check`
# in every build.  With --enable-fuzzing (CC=clang) the libFuzzer binaries
# are built too: tests/fuzz/fuzz-conf tests/fuzz/corpus/conf
FUZZ_TARGETS = conf token-state policy verify-tpm evidence
EXTRA_DIST += tests/fuzz/corpus

FUZZ_COMMON_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS)

check_PROGRAMS += tests/fuzz/replay-conf tests/fuzz/replay-token-state tests/fuzz/replay-policy \
	tests/fuzz/replay-verify-tpm tests/fuzz/replay-evidence
TESTS += tests/fuzz/replay-conf tests/fuzz/replay-token-state tests/fuzz/replay-policy \
	tests/fuzz/replay-verify-tpm tests/fuzz/replay-evidence

tests_fuzz_replay_evidence_SOURCES = tests/fuzz/fuzz-evidence.c tests/fuzz/replay.c
tests_fuzz_replay_evidence_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"evidence\"
tests_fuzz_replay_evidence_LDADD = libwarden-core.la $(CRYPTO_LIBS)

tests_fuzz_replay_conf_SOURCES = tests/fuzz/fuzz-conf.c tests/fuzz/replay.c
tests_fuzz_replay_conf_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"conf\"
tests_fuzz_replay_conf_LDADD = libwarden-core.la

tests_fuzz_replay_token_state_SOURCES = tests/fuzz/fuzz-token-state.c tests/fuzz/replay.c
tests_fuzz_replay_token_state_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"token-state\"
tests_fuzz_replay_token_state_LDADD = libwarden-core.la

tests_fuzz_replay_policy_SOURCES = tests/fuzz/fuzz-policy.c tests/fuzz/replay.c
tests_fuzz_replay_policy_CFLAGS = $(FUZZ_COMMON_CFLAGS) -DFUZZ_NAME=\"policy\"
tests_fuzz_replay_policy_LDADD = libwarden-core.la

tests_fuzz_replay_verify_tpm_SOURCES = tests/fuzz/fuzz-verify-tpm.c tests/fuzz/replay.c
tests_fuzz_replay_verify_tpm_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(TSS2MU_CFLAGS) -DFUZZ_NAME=\"verify-tpm\"
tests_fuzz_replay_verify_tpm_LDADD = libwarden-core.la $(TSS2MU_LIBS) $(CRYPTO_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS = tests/fuzz/fuzz-conf tests/fuzz/fuzz-token-state tests/fuzz/fuzz-policy \
	tests/fuzz/fuzz-verify-tpm tests/fuzz/fuzz-evidence

tests_fuzz_fuzz_evidence_SOURCES = tests/fuzz/fuzz-evidence.c
tests_fuzz_fuzz_evidence_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_evidence_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_evidence_LDADD = libwarden-core.la $(CRYPTO_LIBS)

tests_fuzz_fuzz_verify_tpm_SOURCES = tests/fuzz/fuzz-verify-tpm.c
tests_fuzz_fuzz_verify_tpm_CFLAGS = $(FUZZ_COMMON_CFLAGS) $(TSS2MU_CFLAGS)
tests_fuzz_fuzz_verify_tpm_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_verify_tpm_LDADD = libwarden-core.la $(TSS2MU_LIBS) $(CRYPTO_LIBS)

tests_fuzz_fuzz_conf_SOURCES = tests/fuzz/fuzz-conf.c
tests_fuzz_fuzz_conf_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_conf_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_conf_LDADD = libwarden-core.la

tests_fuzz_fuzz_token_state_SOURCES = tests/fuzz/fuzz-token-state.c
tests_fuzz_fuzz_token_state_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_token_state_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_token_state_LDADD = libwarden-core.la

tests_fuzz_fuzz_policy_SOURCES = tests/fuzz/fuzz-policy.c
tests_fuzz_fuzz_policy_CFLAGS = $(FUZZ_COMMON_CFLAGS)
tests_fuzz_fuzz_policy_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_policy_LDADD = libwarden-core.la
endif
