/* lmod_limit.c: strata.limit, the process-wide GCRA counters (limiter.h)
 * for scripts.
 *   limit.take(key, { rate = n, per = seconds, burst = n }) ->
 *       allowed, remaining, reset_seconds, retry_after_seconds
 *   limit.peek(key, rule) -> the same, without counting a request
 * burst defaults to rate.  Shared by every worker of the process (policy
 * "local": exact for one instance).  The limiter comes from the registry
 * key "strata.limiter", set by the worker. */
#include "lmod.h"

#include "limiter.h"

#include <lauxlib.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static lua_Integer field_int(lua_State *L, int idx, const char *name, lua_Integer dflt)
{
    lua_getfield(L, idx, name);
    lua_Integer v = lua_isnil(L, -1) ? dflt : (lua_Integer)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* [-2, +4, e] */
static int take(lua_State *L, int consume)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer rate = field_int(L, 2, "rate", 0);
    lua_getfield(L, 2, "per");
    lua_Number per = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    lua_Integer burst = field_int(L, 2, "burst", rate);
    if (rate < 1 || per <= 0 || burst < 1)
        return luaL_argerror(L, 2, "rate, per and burst must be positive");
    limit_rule rule = {(uint64_t)rate, (uint64_t)(per * 1e9), (uint64_t)burst};
    if (limiter_rule_check(&rule) < 0)
        return luaL_argerror(L, 2, "rule out of range");
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.limiter");
    limiter *l = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!l)
        return luaL_error(L, "strata.limit: no limiter in this Lua state");
    limit_result r;
    if (limiter_take(l, key, klen, &rule, now_ns(), consume, &r) < 0)
        return luaL_error(L, "strata.limit: key refused (empty or longer than %d bytes)", LIMITER_MAX_KEY);
    lua_pushboolean(L, r.allowed);
    lua_pushinteger(L, (lua_Integer)r.remaining);
    /* Whole seconds, rounded up: a client told 0 would retry too early. */
    lua_pushinteger(L, (lua_Integer)((r.reset_ns + 999999999u) / 1000000000u));
    lua_pushinteger(L, (lua_Integer)((r.retry_after_ns + 999999999u) / 1000000000u));
    return 4;
}

static int l_peek(lua_State *L) { return take(L, 0); }
static int l_take(lua_State *L) { return take(L, 1); }

static const luaL_Reg FUNCS[] = {
    {"peek", l_peek},
    {"take", l_take},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_limit(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
