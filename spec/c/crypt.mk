# spec/c/crypt.mk: the C unit tests of core/auth/crypt_pool.c (bcrypt on
# threads of its own).  Included by the top-level Makefile (as every
# spec/c/*.mk), or alone from the repository root:
#   make -f spec/c/crypt.mk bin/test_crypt && bin/test_crypt
# Every variable is CRYPT_-prefixed and nothing here reads the top-level
# Makefile's variables.

CRYPT_CC         ?= cc
CRYPT_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                    -fno-sanitize-recover=undefined -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore

C_TESTS += bin/test_crypt

bin/test_crypt: core/auth/crypt_pool.c core/auth/crypt_pool.h spec/c/test_crypt.c spec/c/test_harness.h spec/c/crypt.mk
	@mkdir -p bin
	$(CRYPT_CC) $(CRYPT_TEST_FLAGS) -o $@ core/auth/crypt_pool.c spec/c/test_crypt.c -lcrypt -lcrypto -pthread
