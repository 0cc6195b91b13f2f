# SPDX-License-Identifier: Apache-2.0
# The benchmark: built and run only by `make bench` (never by `make` or
# `make check`).  Extra arguments: make bench BENCH_ARGS="--ops trivial".
#
# EXTRA_PROGRAMS is first defined here; if Makefile.am ever defines it
# (EXTRA_PROGRAMS =), turn the line below into +=.
EXTRA_PROGRAMS = bench/p11w-bench bench/p11w-attest-bench
bench_p11w_bench_SOURCES = bench/p11w-bench.c
bench_p11w_bench_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
bench_p11w_bench_LDADD = $(DL_LIBS) $(PTHREAD_LIBS)

# Appraisal costs and the first gated call (tests/unit/cose-build.h makes
# the EAT it appraises).
bench_p11w_attest_bench_SOURCES = bench/p11w-attest-bench.c
bench_p11w_attest_bench_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests/unit $(P11KIT_CFLAGS) \
	$(CRYPTO_CFLAGS) $(CBOR_CFLAGS)
bench_p11w_attest_bench_LDADD = libwarden-core.la $(CBOR_LIBS) $(CRYPTO_LIBS) $(DL_LIBS)

EXTRA_DIST += bench/run-bench.sh

# Automake does not clean EXTRA_PROGRAMS; a hook rather than CLEANFILES,
# which other local.mk files may want to define.
clean-local: clean-bench
clean-bench:
	-rm -f bench/p11w-bench$(EXEEXT) bench/p11w-attest-bench$(EXEEXT)

bench: bench/p11w-bench$(EXEEXT) bench/p11w-attest-bench$(EXEEXT) p11-warden.la p11-warden$(EXEEXT)
	P11W_MODULE="$(abs_builddir)/.libs/p11-warden.so" \
	P11W_BENCH="$(abs_builddir)/bench/p11w-bench$(EXEEXT)" \
	P11W_ATTEST_BENCH="$(abs_builddir)/bench/p11w-attest-bench$(EXEEXT)" \
	P11W_SRCDIR="$(abs_srcdir)" \
	P11W_TOOL="$(abs_builddir)/p11-warden$(EXEEXT)" \
	SOFTHSM2_MODULE="$(SOFTHSM2_MODULE)" \
	bash $(srcdir)/bench/run-bench.sh $(BENCH_ARGS)

.PHONY: bench clean-bench
