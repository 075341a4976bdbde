# spec/c/fuzz.mk: the libFuzzer targets besides the HTTP parser's
# (spec/c/http.mk), built with clang, ASan and UBSan:
#   bin/fuzz_jwt        core/auth/jwt.c and json_scan.c (spec/c/fuzz_jwt.c)
#   bin/fuzz_<target>   links to bin/fuzz_lua (spec/c/fuzz_lua.c), which runs
#                       the Lua driver spec/fuzz/<target>.lua over strata's
#                       Lua modules
# Seeds: spec/fuzz/<target>/ (spec/c/fuzz_corpus/ for fuzz_http).
#   make fuzz FUZZ_SECONDS=N    every target for N seconds, one at a time
#   scripts/fuzz N [target...]  the same, or some targets
# Every variable is FUZZ_-prefixed; nothing here reads the top-level
# Makefile's variables.

FUZZ_CC       ?= clang
FUZZ_FLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
FUZZ_CRYPTO    = $(shell pkg-config --cflags --libs libcrypto 2>/dev/null)
FUZZ_LUA       = $(shell pkg-config --cflags --libs lua5.4 2>/dev/null)
FUZZ_LUA_TARGETS := $(sort $(basename $(notdir $(filter-out spec/fuzz/stub.lua spec/fuzz/catalog.lua,$(wildcard spec/fuzz/*.lua)))))
FUZZ_BINS     := bin/fuzz_http bin/fuzz_jwt $(FUZZ_LUA_TARGETS:%=bin/fuzz_%)
FUZZ_SECONDS  ?= 60

# `make test` builds them (scripts/test runs each for a few seconds).
C_TESTS += $(FUZZ_BINS)

.PHONY: fuzz

bin/fuzz_jwt: $(wildcard core/auth/jwt*.[ch] core/auth/json_scan.[ch]) spec/c/fuzz_jwt.c spec/c/fuzz.mk
	@mkdir -p bin
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ core/auth/jwt.c core/auth/jwt_cache.c core/auth/json_scan.c core/auth/jwt_keys.c spec/c/fuzz_jwt.c $(FUZZ_CRYPTO)

bin/fuzz_lua: spec/c/fuzz_lua.c spec/c/fuzz.mk
	@mkdir -p bin
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ spec/c/fuzz_lua.c $(FUZZ_LUA) $(FUZZ_CRYPTO)

$(FUZZ_LUA_TARGETS:%=bin/fuzz_%): bin/fuzz_lua
	ln -sf fuzz_lua $@

fuzz: $(FUZZ_BINS)
	scripts/fuzz $(FUZZ_SECONDS)
