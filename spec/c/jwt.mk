# spec/c/jwt.mk: the C unit tests of core/auth/jwt.c and core/auth/json_scan.c.
# Included by the top-level Makefile (as every spec/c/*.mk), or used alone
# from the repository root:
#   make -f spec/c/jwt.mk bin/test_jwt && bin/test_jwt
# Every variable is JWT_-prefixed and nothing here reads the top-level
# Makefile's variables.

JWT_CC         ?= cc
JWT_STRICT     := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
JWT_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                  -fno-sanitize-recover=undefined $(JWT_STRICT)
JWT_SRCS       := core/auth/jwt.c core/auth/jwt.h core/auth/jwt_cache.c core/auth/jwt_cache.h core/auth/json_scan.c core/auth/json_scan.h core/auth/jwt_keys.c core/auth/jwt_keys.h
JWT_LIBS        = $(shell pkg-config --cflags --libs libcrypto 2>/dev/null)

# Every unit test program; `make test` builds and scripts/test runs them.
C_TESTS += bin/test_jwt

bin/test_jwt: $(JWT_SRCS) spec/c/test_jwt.c spec/c/test_harness.h spec/c/jwt.mk
	@mkdir -p bin
	$(JWT_CC) $(JWT_TEST_FLAGS) -o $@ core/auth/jwt.c core/auth/jwt_cache.c core/auth/json_scan.c core/auth/jwt_keys.c spec/c/test_jwt.c $(JWT_LIBS)
