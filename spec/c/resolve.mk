# spec/c/resolve.mk: the C unit tests and the benchmark of the broker
# resolution engine (core/engine/resolve.c, resolve_query.c, resolve_index.c).
# Included by the top-level Makefile (as every spec/c/*.mk), or used alone
# from the repository root:
#   make -f spec/c/resolve.mk bin/test_resolve && bin/test_resolve
#   make -f spec/c/resolve.mk bin/bench_resolve && bin/bench_resolve
# Every variable is RESOLVE_-prefixed.  The benchmark is not a test: it is
# built only on demand and never added to C_TESTS.

RESOLVE_CC         ?= cc
RESOLVE_STRICT     := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
RESOLVE_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                      -fno-sanitize-recover=undefined $(RESOLVE_STRICT)
RESOLVE_BENCH_FLAGS := -O2 -g $(RESOLVE_STRICT)
RESOLVE_SRCS       := core/engine/resolve.c core/engine/resolve_query.c core/engine/resolve_index.c \
                      core/engine/uuid.c
RESOLVE_DEPS       := $(RESOLVE_SRCS) core/engine/uuid.h core/engine/resolve.h core/engine/resolve_index.h spec/c/resolve.mk

C_TESTS += bin/test_resolve

bin/test_resolve: $(RESOLVE_DEPS) spec/c/test_resolve.c spec/c/test_harness.h
	@mkdir -p bin
	$(RESOLVE_CC) $(RESOLVE_TEST_FLAGS) -o $@ $(RESOLVE_SRCS) spec/c/test_resolve.c -lpthread

bin/bench_resolve: $(RESOLVE_DEPS) scripts/bench/resolve_bench.c
	@mkdir -p bin
	$(RESOLVE_CC) $(RESOLVE_BENCH_FLAGS) -o $@ $(RESOLVE_SRCS) scripts/bench/resolve_bench.c -lpthread
