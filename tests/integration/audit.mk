# SPDX-License-Identifier: Apache-2.0
# The audit ledger end to end (test-audit.sh): p11-warden.so in real
# clients (pkcs11-tool, push-client, OpenSSL's libp11 engine, a ctypes
# client for C_Logout), gated decrypts under a PCR 16 policy with swtpm's
# quotes pulled and pushed, and the ledger checked with `p11-warden audit
# verify|show`: what is recorded, show's filters, tampering, a full file
# system (as root: a tmpfs in a private mount namespace), concurrent
# processes, kill -9, exit without C_Finalize, audit-fsync always/none.
# The library's own tests are test-ledger and test-ledger-storm.sh.
#
# Debian packages: swtpm, swtpm-tools, tpm2-tools, opensc, softhsm2,
# openssl, libengine-pkcs11-openssl, python3, util-linux (unshare,
# nsenter), coreutils.
TESTS += tests/integration/test-audit.sh
EXTRA_DIST += tests/integration/ledger-forge.py tests/integration/test-audit.sh

# It loads the built module, runs push-client and the p11-warden tool.
# With TEST_EXTENSIONS = .test (automake's default) the log of a .sh test
# is NAME.sh.log; NAME.log is what it would be were .sh an extension.
tests/integration/test-audit.log tests/integration/test-audit.sh.log: \
	p11-warden.la p11-warden$(EXEEXT) tests/integration/push-client$(EXEEXT)
