/* lmod_aimetrics.c: strata.aimetrics, the AI executions' counters of
 * /metrics (obs/ai_stats.h), for lua/strata/ai/execute.lua:
 *   execution(provider, outcome, tokens_in, tokens_out)   an execution ended
 *                 (outcome "completed" | "failed" | "cancelled"; tokens may be nil)
 *   first_token(ms)      its first token came ms after the request's first byte
 *   stream(delta)        a streamed execution started (1) or ended (-1) */
#include "lmod.h"

#include "obs/ai_stats.h"

#include <lauxlib.h>

/* A count argument: nil, or a non-negative integer.  [-0, +0, v] */
static uint64_t count(lua_State *L, int idx)
{
    lua_Integer v = luaL_optinteger(L, idx, 0);
    luaL_argcheck(L, v >= 0, idx, "a count");
    return (uint64_t)v;
}

/* [-4, +0, v] */
static int l_execution(lua_State *L)
{
    int provider = ai_stats_provider(luaL_checkstring(L, 1));
    int outcome = ai_stats_outcome(luaL_checkstring(L, 2));
    luaL_argcheck(L, outcome >= 0, 2, "completed, failed or cancelled");
    ai_stats_execution(provider, outcome, count(L, 3), count(L, 4));
    return 0;
}

/* [-1, +0, v] */
static int l_first_token(lua_State *L)
{
    ai_stats_first_token(count(L, 1));
    return 0;
}

/* [-1, +0, v] */
static int l_stream(lua_State *L)
{
    lua_Integer d = luaL_checkinteger(L, 1);
    luaL_argcheck(L, d == 1 || d == -1, 1, "1 or -1");
    ai_stats_stream((int)d);
    return 0;
}

static const luaL_Reg FUNCS[] = {
    {"execution", l_execution},
    {"first_token", l_first_token},
    {"stream", l_stream},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_aimetrics(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
