# SPDX-License-Identifier: Apache-2.0
# EAR attestation results (draft-ietf-rats-ear, Veraison EAR; FORMATS.md
# section 4) as a JWT or a COSE_Sign1, and the JWS (RFC 7515) reader.
libwarden_core_la_SOURCES += src/jws.c src/jws.h

# Token makers shared by the tests and the fuzzers.
EAR_TOKENS = tests/unit/ear-tokens.c tests/unit/ear-tokens.h
EAR_TEST_CFLAGS = $(CBOR_CFLAGS) $(JSONC_CFLAGS) -I$(top_srcdir)/tests/unit
EAR_TEST_LIBS = $(CBOR_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-jws
TESTS += tests/unit/test-jws

tests_unit_test_jws_SOURCES = tests/unit/test-jws.c $(EAR_TOKENS)
tests_unit_test_jws_CFLAGS = $(UNIT_CFLAGS) $(EAR_TEST_CFLAGS)
tests_unit_test_jws_LDADD = $(UNIT_LIBS) $(EAR_TEST_LIBS)
endif
