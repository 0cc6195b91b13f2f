# SPDX-License-Identifier: Apache-2.0
# Module tests: C programs that dlopen the built p11-warden.so (never link
# it) and use only its exported discovery functions, each run by a shell
# wrapper that sets up SoftHSM and the configuration (module-env.sh).
#
# (No variable here may end in _PROGRAMS: automake would take it for a
# primary and ask for a directory.)
check_PROGRAMS += \
	tests/module/test-module \
	tests/module/test-threads \
	tests/module/test-fork \
	tests/module/test-gate-memory \
	$(NULL)
TESTS += \
	tests/module/test-module.sh \
	tests/module/test-threads.sh \
	tests/module/test-fork.sh \
	tests/module/test-gate-memory.sh \
	$(NULL)
EXTRA_DIST += \
	tests/module/module-env.sh \
	tests/module/test-module.sh \
	tests/module/test-threads.sh \
	tests/module/test-fork.sh \
	tests/module/test-gate-memory.sh \
	$(NULL)

# The wrappers run the programs against the built module: make sure both
# exist before the wrappers start (parallel make runs TESTS as soon as
# check_PROGRAMS are built, and the module is only an ordinary target).
tests/module/test-module.log tests/module/test-threads.log tests/module/test-fork.log: \
	p11-warden.la
tests/module/test-gate-memory.log: p11-warden.la tests/module/slow-backend.la

MODULE_TEST_SOURCES = tests/module/module-test.c tests/module/module-test.h
# The programs only need p11-kit's PKCS#11 header (and src/pkcs11.h for the
# 3.0 types): no p11-kit library, and never the module itself.
MODULE_TEST_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
MODULE_TEST_LIBS = $(DL_LIBS) $(PTHREAD_LIBS)

tests_module_test_module_SOURCES = tests/module/test-module.c $(MODULE_TEST_SOURCES)
tests_module_test_module_CFLAGS = $(MODULE_TEST_CFLAGS)
tests_module_test_module_LDADD = $(MODULE_TEST_LIBS)

tests_module_test_threads_SOURCES = tests/module/test-threads.c $(MODULE_TEST_SOURCES)
tests_module_test_threads_CFLAGS = $(MODULE_TEST_CFLAGS)
tests_module_test_threads_LDADD = $(MODULE_TEST_LIBS)

tests_module_test_fork_SOURCES = tests/module/test-fork.c $(MODULE_TEST_SOURCES)
tests_module_test_fork_CFLAGS = $(MODULE_TEST_CFLAGS)
tests_module_test_fork_LDADD = $(MODULE_TEST_LIBS)

tests_module_test_gate_memory_SOURCES = tests/module/test-gate-memory.c $(MODULE_TEST_SOURCES)
tests_module_test_gate_memory_CFLAGS = $(MODULE_TEST_CFLAGS)
tests_module_test_gate_memory_LDADD = $(MODULE_TEST_LIBS)

# A backend for test-gate-memory: SoftHSM with a slow C_SetAttributeValue
# for labels starting "slow-" (see slow-backend.c).  A module, loaded by
# path; -rpath only makes libtool build it shared.
check_LTLIBRARIES = tests/module/slow-backend.la
tests_module_slow_backend_la_SOURCES = tests/module/slow-backend.c
tests_module_slow_backend_la_CFLAGS = $(MODULE_TEST_CFLAGS)
tests_module_slow_backend_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere
tests_module_slow_backend_la_LIBADD = $(DL_LIBS) $(PTHREAD_LIBS)
