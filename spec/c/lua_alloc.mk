# spec/c/lua_alloc.mk: the C unit tests of core/lua/lua_alloc.c (the Lua
# states' allocator), under ASan+UBSan with the block cache forced on.
# Included by the top-level Makefile, or alone from the repository root:
#   make -f spec/c/lua_alloc.mk bin/test_lua_alloc && bin/test_lua_alloc

LUA_ALLOC_CC    ?= cc
# pkg-config runs only when the test is built (after `make deps`), quietly.
LUA_ALLOC_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                   -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Icore $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA_ALLOC_LIBS   = $(shell pkg-config --libs lua5.4 2>/dev/null)

C_TESTS += bin/test_lua_alloc

bin/test_lua_alloc: core/lua/lua_alloc.c core/lua/lua_alloc.h core/obs/log.c core/base/buf.c spec/c/test_lua_alloc.c spec/c/test_harness.h spec/c/lua_alloc.mk
	@mkdir -p bin
	$(LUA_ALLOC_CC) $(LUA_ALLOC_FLAGS) -o $@ core/lua/lua_alloc.c core/obs/log.c core/base/buf.c spec/c/test_lua_alloc.c $(LUA_ALLOC_LIBS)
