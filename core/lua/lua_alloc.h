/* lua_alloc.h: the allocator of a worker's Lua states.
 *
 * A request allocates and frees thousands of small blocks (strings, tables,
 * closures); going to malloc for each was 14% of a database request's
 * instructions (callgrind).  One Lua state is used by one thread at a
 * time, so a state's allocator keeps freed small blocks in per-size free
 * lists without locks, up to a byte cap, and hands them out again.
 * Sanitizer builds default to plain malloc so ASan still sees every
 * use after free; spec/c/test_lua_alloc.c turns the cache on there.
 * It also counts the state's bytes and can refuse growth past a limit
 * (conf lua_memory_limit_mb), which Lua turns into a memory error. */
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

/* The state's memory limit in bytes (0: none), applied only while
 * enforced: C code pushing onto the state between two runs of Lua code is
 * never refused (an unprotected Lua API call failing would abort). */
void lua_alloc_set_limit(lua_alloc *a, size_t limit);

/* Turns the limit on (1) or off (0); answers whether a growth was refused
 * since it was last turned on. */
int lua_alloc_enforce(lua_alloc *a, int on);

/* Bytes the state holds now, as Lua counts them. */
size_t lua_alloc_used(const lua_alloc *a);

/* 1 when the state holds over 3/4 of its limit.  Lua collects before
 * it reports a refused allocation, except for luaL_Buffer's growth
 * (string.rep, table.concat, string.format): the host collects first. */
int lua_alloc_near_limit(const lua_alloc *a);

/* Returns the cached blocks to malloc; after lua_close only. */
void lua_alloc_free(lua_alloc *a);

#endif
