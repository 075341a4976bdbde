/* lua_alloc.h: the allocator of a worker's Lua states.
 *
 * A request allocates and frees thousands of small blocks (strings, tables,
 * closures); going to malloc for each was 14% of a database request's
 * instructions (callgrind).  One Lua state is used by one thread at a
 * time, so a state's allocator keeps freed small blocks in per-size free
 * lists without locks, up to a byte cap, and hands them out again.
 * Sanitizer builds default to plain malloc so ASan still sees every
 * use after free; spec/c/test_lua_alloc.c turns the cache on there. */
#ifndef STRATA_LUA_ALLOC_H
#define STRATA_LUA_ALLOC_H

#include <lua.h>

typedef struct lua_alloc lua_alloc;

#if defined(__SANITIZE_ADDRESS__)
#define LUA_ALLOC_CACHE 0
#else
#define LUA_ALLOC_CACHE 1
#endif

/* A Lua state using a new allocator (keeping freed blocks when cache is
 * 1), or NULL (out of memory).  *out gets the allocator, to free with
 * lua_alloc_free once the state is closed. */
lua_State *lua_alloc_newstate(lua_alloc **out, int cache);

/* Bytes of freed blocks it keeps for reuse. */
size_t lua_alloc_cached(const lua_alloc *a);

/* Returns the cached blocks to malloc; after lua_close only. */
void lua_alloc_free(lua_alloc *a);

#endif
