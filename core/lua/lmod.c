/* lmod.c: registers the strata.* C modules in package.preload, the recipe
 * of Lua's linit.c, so scripts load them with require("strata.log"). */
#include "lmod.h"

#include <lauxlib.h>

static const luaL_Reg MODULES[] = {
    {"strata.aimetrics", luaopen_strata_aimetrics},
    {"strata.auth", luaopen_strata_auth},
    {"strata.broker", luaopen_strata_broker},
    {"strata.config", luaopen_strata_config},
    {"strata.crypto", luaopen_strata_crypto},
    {"strata.health", luaopen_strata_health},
    {"strata.httpc", luaopen_strata_httpc}, /* strata.http is lua/strata/http.lua on top */
    {"strata.limit", luaopen_strata_limit},
    {"strata.log", luaopen_strata_log},
    {"strata.pg", luaopen_strata_pg},
    {"strata.request", luaopen_strata_request},
    {"strata.stream", luaopen_strata_stream},
    {NULL, NULL},
};

void lmod_preload(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* stack: preload */
    for (const luaL_Reg *m = MODULES; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
}

#define CJSON_KEY "strata.cjson"

void lmod_push_cjson(lua_State *L, const char *fn)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CJSON_KEY) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "cjson");
        lua_call(L, 1, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
    }
    if (fn) {
        lua_getfield(L, -1, fn);
        lua_remove(L, -2);
    }
}

void lmod_json_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}
