# spec/c/limiter.mk: the C unit tests of core/engine/limiter.c and its timings.
# Included by the top-level Makefile (as every spec/c/*.mk), or used alone
# from the repository root:
#   make -f spec/c/limiter.mk bin/test_limiter && bin/test_limiter
#   make -f spec/c/limiter.mk bench-limiter
# Every variable is LIMITER_-prefixed and nothing here reads the top-level
# Makefile's variables.

LIMITER_CC         ?= cc
LIMITER_STRICT     := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
LIMITER_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                      -fno-sanitize-recover=undefined $(LIMITER_STRICT)
# The timings are measured optimised and without sanitizers.
LIMITER_BENCH_FLAGS := -O2 -g $(LIMITER_STRICT)
LIMITER_SRCS       := core/engine/limiter.c core/engine/limiter.h spec/c/limiter.mk

.PHONY: bench-limiter

# Every unit test program; `make test` builds and scripts/test runs them.
C_TESTS += bin/test_limiter

bin/test_limiter: $(LIMITER_SRCS) spec/c/test_limiter.c spec/c/test_harness.h
	@mkdir -p bin
	$(LIMITER_CC) $(LIMITER_TEST_FLAGS) -o $@ core/engine/limiter.c spec/c/test_limiter.c -pthread

# Not a test_* program: scripts/test does not run it.
bin/bench_limiter: $(LIMITER_SRCS) spec/c/bench_limiter.c
	@mkdir -p bin
	$(LIMITER_CC) $(LIMITER_BENCH_FLAGS) -o $@ core/engine/limiter.c spec/c/bench_limiter.c -pthread

bench-limiter: bin/bench_limiter
	bin/bench_limiter
