# SPDX-License-Identifier: Apache-2.0
# Administration commands that change the configuration (cmd-config.c):
# slot add/list/remove, anchor enrol/list/remove, policy add/remove/bind/
# list, token init/init-pin/set-pin; and the comment-preserving, atomic
# editor of p11-warden.conf they share (src/conf-edit.c).
libwarden_core_la_SOURCES += src/conf-edit.c src/conf-edit.h

# TPM2B_PUBLIC (tpm2_createak -u) to PEM needs tpm2-tss's marshalling;
# the token commands dlopen the module (the installed one by default).
p11_warden_SOURCES += tools/cmd-config.c
p11_warden_CFLAGS += $(TSS2MU_CFLAGS) \
	-DP11W_MODULE_FILE=\"$(p11moduledir)/p11-warden.so\"
p11_warden_LDADD += $(TSS2MU_LIBS) $(P11KIT_LIBS) $(DL_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-conf-edit
TESTS += tests/unit/test-conf-edit
tests_unit_test_conf_edit_SOURCES = tests/unit/test-conf-edit.c
tests_unit_test_conf_edit_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_conf_edit_LDADD = $(UNIT_LIBS)
endif

# Each command against SoftHSM and swtpm (test-admin-config.sh); it runs
# the tool and loads the module.
TESTS += tests/integration/test-admin-config.sh
EXTRA_DIST += tests/integration/test-admin-config.sh
tests/integration/test-admin-config.log tests/integration/test-admin-config.sh.log: \
	p11-warden.la p11-warden$(EXEEXT)
