# SPDX-License-Identifier: Apache-2.0
# Integration tests with real clients over SoftHSM: OpenSC's pkcs11-tool,
# OpenSSL's libp11 engine, NSS tools, GnuTLS's p11tool, p11-kit's proxy,
# remote and server, and C_Initialize with broken configurations.  Each is a
# bash script printing TAP for humans; its exit status decides (0 pass,
# 77 skip, 99 hard error).  With P11W_REQUIRE_ALL=1 (CI) a missing tool is a
# hard error rather than a skip.
#
# Debian packages: opensc (pkcs11-tool, pkcs11-spy), softhsm2, openssl,
# libengine-pkcs11-openssl, libnss3-tools, gnutls-bin, p11-kit,
# p11-kit-modules, util-linux (setpriv, unshare), coreutils (timeout).
INTEGRATION_TESTS = \
	tests/integration/test-pkcs11-tool.sh \
	tests/integration/test-openssl.sh \
	tests/integration/test-nss.sh \
	tests/integration/test-p11kit.sh \
	tests/integration/test-bad-config.sh \
	tests/integration/test-tpm-quote.sh \
	tests/integration/test-tool.sh \
	tests/integration/test-walkthrough.sh \
	$(NULL)
# GnuTLS's p11tool hangs at exit when the ASan runtime is preloaded into it
# (libp11-kit's destructor blocks in freelocale; it does so with SoftHSM
# alone, without p11-warden), so the sanitizer build does not run it.
if !ENABLE_SANITIZERS
INTEGRATION_TESTS += tests/integration/test-p11tool.sh
endif
EXTRA_DIST += tests/integration/test-p11tool.sh

TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += \
	$(INTEGRATION_TESTS) \
	tests/integration/common.sh \
	tests/lib.sh \
	$(NULL)

# They load the built module: make sure it exists before they start.
$(INTEGRATION_TESTS:.sh=.log): p11-warden.la

# The TPM quote verifier against real quotes from swtpm (test-tpm-quote.sh).
check_PROGRAMS += tests/integration/verify-quote
tests_integration_verify_quote_SOURCES = tests/integration/verify-quote.c
tests_integration_verify_quote_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS) $(TSS2MU_CFLAGS)
tests_integration_verify_quote_LDADD = libwarden-core.la $(TSS2MU_LIBS) $(CRYPTO_LIBS)
