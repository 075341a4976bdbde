/* lmod_log.c: strata.log, the server log for scripts.
 *   log.debug|info|warn|error(msg[, fields]) -> nothing
 * fields (a table) is encoded with cjson and merged into the line as
 * "fields":{...}.  Adapts log.h. */
#include "lmod.h"

#include "base/buf.h"
#include "obs/log.h"

#include <lauxlib.h>
#include <string.h>

/* Writes one line at `level`.  [-(1|2), +0, e] */
static int emit(lua_State *L, const char *level)
{
    const char *msg = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2)) {
        log_event(level, msg, NULL);
        return 0;
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lmod_push_cjson(L, "encode");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);               /* stack: msg, fields, json */
    size_t n;
    const char *json = lua_tolstring(L, -1, &n);
    buf b = {0};
    if (buf_add_str(&b, "\"fields\":") == 0 && buf_add(&b, json, n) == 0 && buf_add(&b, "", 1) == 0)
        log_event(level, msg, b.p);
    buf_free(&b);
    return 0;
}

static int l_debug(lua_State *L) { return emit(L, "debug"); }
static int l_error(lua_State *L) { return emit(L, "error"); }
static int l_info(lua_State *L) { return emit(L, "info"); }
static int l_warn(lua_State *L) { return emit(L, "warn"); }

static const luaL_Reg FUNCS[] = {
    {"debug", l_debug},
    {"error", l_error},
    {"info", l_info},
    {"warn", l_warn},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_log(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
