# spec/c/request.mk: the C unit tests of core/http/request.c (the request
# object).  Included by the top-level Makefile (as every spec/c/*.mk), or
# alone from the repository root:
#   make -f spec/c/request.mk bin/test_request && bin/test_request
# Every variable is REQUEST_-prefixed.

REQUEST_CC    ?= cc
REQUEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
REQUEST_SRCS  := core/http/request.c core/http/http.c core/auth/jwt.c core/auth/jwt_cache.c core/auth/json_scan.c core/auth/jwt_keys.c core/base/buf.c

C_TESTS += bin/test_request

bin/test_request: $(REQUEST_SRCS) core/http/request.h spec/c/test_request.c spec/c/test_harness.h spec/c/request.mk
	@mkdir -p bin
	$(REQUEST_CC) $(REQUEST_FLAGS) -o $@ $(REQUEST_SRCS) spec/c/test_request.c -lcrypto
