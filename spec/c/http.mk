# spec/c/http.mk: the C unit tests and the fuzz target of core/http/http.c.
# Included by the top-level Makefile (as every spec/c/*.mk, after its `all:`
# rule), or used alone from the repository root:
#   make -f spec/c/http.mk bin/test_http && bin/test_http
#   make -f spec/c/http.mk fuzz-http FUZZ_SECONDS=300  (make fuzz runs every target: spec/c/fuzz.mk)
# Every variable is HTTP_-prefixed (or FUZZ_SECONDS) and nothing here reads
# the top-level Makefile's variables.

HTTP_CC        ?= cc
HTTP_FUZZ_CC   ?= clang
HTTP_STRICT    := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
HTTP_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                   -fno-sanitize-recover=undefined $(HTTP_STRICT)
HTTP_FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                   -fno-sanitize-recover=undefined $(HTTP_STRICT)
HTTP_SRCS      := core/http/http.c core/http/http.h
FUZZ_SECONDS   ?= 60
# New inputs the fuzzer finds go to HTTP_FUZZ_WORK (not committed); the
# committed seeds in spec/c/fuzz_corpus/ are only read.  Crashes are
# written to HTTP_FUZZ_WORK too.
HTTP_FUZZ_WORK ?= build/fuzz_http

.PHONY: c-test fuzz-http

# Every unit test program; `make test` builds and scripts/test runs them.
C_TESTS += bin/test_http

bin/test_http: $(HTTP_SRCS) spec/c/test_http.c spec/c/test_harness.h spec/c/http.mk
	@mkdir -p bin
	$(HTTP_CC) $(HTTP_TEST_FLAGS) -o $@ core/http/http.c spec/c/test_http.c

bin/fuzz_http: $(HTTP_SRCS) spec/c/fuzz_http.c spec/c/http.mk
	@mkdir -p bin
	$(HTTP_FUZZ_CC) $(HTTP_FUZZ_FLAGS) -o $@ core/http/http.c spec/c/fuzz_http.c

c-test: bin/test_http
	bin/test_http

fuzz-http: bin/fuzz_http
	@mkdir -p $(HTTP_FUZZ_WORK)/corpus
	bin/fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		-artifact_prefix=$(HTTP_FUZZ_WORK)/ $(HTTP_FUZZ_WORK)/corpus spec/c/fuzz_corpus/
