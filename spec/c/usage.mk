# spec/c/usage.mk: the C unit tests of core/engine/usage.c (the agent usage counts
# behind rate_limit_tracking).  Included by the top-level Makefile (as every
# spec/c/*.mk), or alone from the repository root:
#   make -f spec/c/usage.mk bin/test_usage && bin/test_usage
# Every variable is USAGE_-prefixed and nothing here reads the top-level
# Makefile's variables.

USAGE_CC         ?= cc
USAGE_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                    -fno-sanitize-recover=undefined -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore

C_TESTS += bin/test_usage

bin/test_usage: core/engine/usage.c core/engine/usage.h spec/c/test_usage.c spec/c/test_harness.h spec/c/usage.mk
	@mkdir -p bin
	$(USAGE_CC) $(USAGE_TEST_FLAGS) -o $@ core/engine/usage.c spec/c/test_usage.c -pthread
