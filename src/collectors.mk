# SPDX-License-Identifier: Apache-2.0
# Evidence collectors for the pull model (src/collector.h): an external
# command.
libwarden_core_la_SOURCES += \
	src/collector.h \
	src/collector-impl.h \
	src/collector.c \
	src/collect-command.c \
	$(NULL)

# The command collector against small scripts the test writes.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-collect-command
TESTS += tests/unit/test-collect-command
tests_unit_test_collect_command_SOURCES = tests/unit/test-collect-command.c
tests_unit_test_collect_command_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_collect_command_LDADD = $(UNIT_LIBS)
endif
