# SPDX-License-Identifier: Apache-2.0
# Administration commands that report (cmd-status.c): key list, status,
# doctor.  They dlopen the p11-warden module and load backend modules
# through p11-kit.
p11_warden_SOURCES += tools/cmd-status.c
p11_warden_LDADD += $(P11KIT_LIBS) $(DL_LIBS)

# test-admin-status.sh: key list, status and doctor against SoftHSM and
# swtpm (Debian packages: softhsm2, opensc, swtpm, swtpm-tools,
# tpm2-tools, python3).
TESTS += tests/integration/test-admin-status.sh
EXTRA_DIST += tests/integration/test-admin-status.sh

# It loads the built module and runs the tool (TEST_EXTENSIONS = .test:
# the log is NAME.sh.log; NAME.log too, were .sh an extension).
tests/integration/test-admin-status.log tests/integration/test-admin-status.sh.log: \
	p11-warden.la p11-warden$(EXEEXT)
