/* test_lua_alloc.c: core/lua_alloc.c under ASan+UBSan with its cache on.
 * Blocks are malloc'd at their size class, so a wrong class (a block
 * handed out for more than it holds) is a heap overflow ASan reports;
 * Lua workloads that grow, shrink and free every kind of object check
 * the answers stay right and the cache stays within its cap. */
#include "lua/lua_alloc.h"

#include "test_harness.h"

#include <lauxlib.h>
#include <lualib.h>

#define CHECK_LUA(L, code)                                                                         \
    CHECK(luaL_dostring(L, code) == LUA_OK, "%s", lua_tostring(L, -1))

/* Strings of every length up to 1 KB, tables grown element by element
 * (array and hash parts resized through every class), then shrunk by
 * the collector; the checksum proves nothing was overwritten. */
static const char WORKLOAD[] =
    "local sum, keep = 0, {}\n"
    "for round = 1, 20 do\n"
    "  local t = {}\n"
    "  for i = 1, 1024 do\n"
    "    local s = string.rep(string.char(65 + i % 26), i) .. round\n"
    "    t[i] = s; t['k' .. i] = { i, s, { round } }\n"
    "  end\n"
    "  for i = 1, 1024, 7 do sum = sum + #t[i] + t['k' .. i][1] + t['k' .. i][3][1] end\n"
    "  keep[round % 3] = t\n"
    "  local co = coroutine.wrap(function(a) local b = coroutine.yield(a .. 'x'); return b .. 'y' end)\n"
    "  assert(co('a') == 'ax' and co('b') == 'by')\n"
    "  collectgarbage()\n"
    "end\n"
    "return sum\n";

static lua_Integer expected_sum(void)
{
    lua_Integer sum = 0;
    for (int round = 1; round <= 20; round++) {
        int digits = round >= 10 ? 2 : 1;
        for (int i = 1; i <= 1024; i += 7)
            sum += i + digits + i + round;
    }
    return sum;
}

static void run_workload(int cache)
{
    lua_alloc *a = NULL;
    lua_State *L = lua_alloc_newstate(&a, cache);
    CHECK(L && a, "no state");
    luaL_openlibs(L);
    int ok = luaL_dostring(L, WORKLOAD) == LUA_OK;
    if (!ok)
        failf("%s", lua_tostring(L, -1));
    else if (lua_tointeger(L, -1) != expected_sum())
        failf("checksum %lld, want %lld", (long long)lua_tointeger(L, -1), (long long)expected_sum());
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    size_t kept = lua_alloc_cached(a);
    if (cache && (kept == 0 || kept > (1u << 20)))
        failf("keeps %zu bytes after a full collection (want some, at most 1 MB)", kept);
    if (!cache && kept != 0)
        failf("keeps %zu bytes with the cache off", kept);
    lua_close(L);
    lua_alloc_free(a);
}

static void cached_workload(void) { run_workload(1); }
static void plain_workload(void) { run_workload(0); }

/* Blocks freed by one request are what the next one gets: the cache does
 * not grow while the same work repeats. */
static void reuse(void)
{
    lua_alloc *a = NULL;
    lua_State *L = lua_alloc_newstate(&a, 1);
    CHECK(L, "no state");
    luaL_openlibs(L);
    static const char req[] = "local t = {} for i = 1, 200 do t[i] = { tostring(i) .. 'abc' } end collectgarbage()";
    size_t before = 0;
    for (int i = 0; i < 50; i++) {
        if (luaL_dostring(L, req) != LUA_OK) {
            failf("%s", lua_tostring(L, -1));
            break;
        }
        if (i == 5)
            before = lua_alloc_cached(a);
    }
    size_t after = lua_alloc_cached(a);
    if (after > before + 4096)
        failf("cache grew from %zu to %zu bytes over identical runs", before, after);
    lua_close(L);
    lua_alloc_free(a);
}

/* Past the limit, growth is refused only while enforced, Lua raises a
 * memory error, and the count matches Lua's own. */
static void limit(void)
{
    lua_alloc *a = NULL;
    lua_State *L = lua_alloc_newstate(&a, 1);
    CHECK(L, "no state");
    luaL_openlibs(L);
    size_t base = lua_alloc_used(a);
    size_t lua_count = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    if (base != lua_count)
        failf("counts %zu bytes, Lua %zu", base, lua_count);
    lua_alloc_set_limit(a, base + (4u << 20));
    static const char grow[] = "local t = {} for i = 1, 1e6 do t[i] = {i} end";
    if (luaL_dostring(L, grow) != LUA_OK)
        failf("refused while not enforced: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    CHECK(luaL_loadstring(L, grow) == LUA_OK, "grow does not compile");
    lua_alloc_enforce(a, 1);
    int rc = lua_pcall(L, 0, 0, 0);
    int refused = lua_alloc_enforce(a, 0);
    if (rc != LUA_ERRMEM || !refused)
        failf("rc %d, refused %d: expected a memory error", rc, refused);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    if (lua_alloc_near_limit(a))
        failf("still near the limit after a collection: %zu bytes", lua_alloc_used(a));
    lua_alloc_enforce(a, 1);
    if (luaL_dostring(L, "local t = {} for i = 1, 1000 do t[i] = {i} end") != LUA_OK)
        failf("a small run after the failure: %s", lua_tostring(L, -1));
    lua_alloc_enforce(a, 0);
    lua_close(L);
    lua_alloc_free(a);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"a workload through every size class, cache on", cached_workload},
        {"the same with the cache off", plain_workload},
        {"freed blocks are reused, the cache stays level", reuse},
        {"the memory limit refuses growth only while enforced", limit},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        case_name = cases[i].name;
        cases[i].fn();
        finish_case();
    }
    return report();
}
