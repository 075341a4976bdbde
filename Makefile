# strata: build, run, test.  The README names the two commands users need:
# `make run` and `make test`.

PKGS      := lua5.4 libevent libpq libcrypto libcurl
CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore
# `=`, and quiet: pkg-config runs only when a recipe needs it, after `deps`
# has installed the packages; `make -n` or a build before `make deps` would
# otherwise print its complaint once per expansion.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS := $(wildcard core/*.c core/*/*.c)
REL_OBJS  := $(SRCS:core/%.c=build/release/%.o)
ASAN_OBJS := $(SRCS:core/%.c=build/asan/%.o)

.PHONY: all asan deps run test manifest clean
all: bin/strata

deps:
	@scripts/install-deps.sh

bin/strata: $(REL_OBJS)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

asan: bin/strata-asan
bin/strata-asan: $(ASAN_OBJS)
	@mkdir -p bin
	$(CC) -O1 -g $(SAN) -o $@ $^ $(PKG_LIBS)

build/release/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) -O1 -g $(SAN) $(WARN) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d)

# make bench: strata against nginx + lua-nginx-module (scripts/bench/).
include scripts/bench/Makefile.inc
include scripts/reliability/Makefile.inc

# C unit tests (each spec/c/*.mk adds its programs to C_TESTS) and the
# libFuzzer targets (make fuzz: spec/c/fuzz.mk).
include $(sort $(wildcard spec/c/*.mk))

# Foreground server on the embedded database (or DATABASE_URL when set).
# Without STRATA_JWT_SECRET, a development secret is made once in
# var/jwt-secret (tokens: STRATA_JWT_SECRET=$$(cat var/jwt-secret) scripts/token ...).
run: deps
	@$(MAKE) --no-print-directory all
	@if [ -z "$$DATABASE_URL" ]; then scripts/db start; fi
	@scripts/db migrate
	@if [ -z "$$STRATA_JWT_SECRET" ] && [ ! -s var/jwt-secret ]; then \
		mkdir -p var && umask 077 && openssl rand -hex 32 > var/jwt-secret; fi
	@if [ -z "$$STRATA_JWT_SECRET" ]; then \
		echo "strata: development JWT secret in var/jwt-secret (mint tokens: STRATA_JWT_SECRET=\$$(cat var/jwt-secret) scripts/token --help)"; fi
	@DATABASE_URL="$$(scripts/db url)" STRATA_JWT_SECRET="$${STRATA_JWT_SECRET:-$$(cat var/jwt-secret 2>/dev/null)}" exec bin/strata

# The whole suite on a fresh database; the last line is "N passed, N failed".
# First the include rules of core/'s rooms: a break stops the run before the build.
test: deps
	@scripts/check-boundaries || { echo "make test: core/ breaks the include rules above (scripts/check-boundaries); nothing was built or run" >&2; exit 1; }
	@$(MAKE) --no-print-directory all asan $(C_TESTS)
	@scripts/test

# Rewrite scripts/schema-manifest.txt (what `scripts/db verify` expects)
# from a fresh database, after adding a migration.
manifest: deps
	@STRATA_WRITE_MANIFEST=1 scripts/test

clean:
	rm -rf build bin
