/* lmod_health.c: strata.health, the warnings GET /ready lists and
 * /metrics counts (obs/warnings.h), for scripts that find something wrong
 * they can serve around (an invalid configuration row, say):
 *   health.warn(source, key, message) -> boolean
 *       raises or updates warning (source, key); true when it is new or its
 *       message changed (the caller logs it then: every worker's state sees
 *       the same rows and would log it once each otherwise)
 *   health.clear(source, key) -> boolean   true when one was held
 *   health.keys(source) -> { key, ... }     the keys held for source
 * Adapts warnings.h. */
#include "lmod.h"

#include "obs/warnings.h"

#include <lauxlib.h>

/* [-3, +1, e] */
static int l_warn(lua_State *L)
{
    const char *source = luaL_checkstring(L, 1);
    const char *key = luaL_checkstring(L, 2);
    const char *message = luaL_checkstring(L, 3);
    lua_pushboolean(L, warnings_set(source, key, message) != 0);
    return 1;
}

/* [-2, +1, e] */
static int l_clear(lua_State *L)
{
    const char *source = luaL_checkstring(L, 1);
    const char *key = luaL_checkstring(L, 2);
    lua_pushboolean(L, warnings_clear(source, key));
    return 1;
}

/* [-1, +1, e] */
static int l_keys(lua_State *L)
{
    const char *source = luaL_checkstring(L, 1);
    static _Thread_local char keys[WARNINGS_MAX][128];
    int n = warnings_keys(source, keys, WARNINGS_MAX);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n && i < WARNINGS_MAX; i++) {
        lua_pushstring(L, keys[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* [-0, +1, m] */
int luaopen_strata_health(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"warn", l_warn},
        {"clear", l_clear},
        {"keys", l_keys},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
