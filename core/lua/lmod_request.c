/* lmod_request.c: strata.request, the request a script runs for, adapting
 * the Lua host's runs (lua_run.h):
 *   request.current() -> req | nil   the `req` of the handler running on
 *                                    this coroutine; nil at load time or in
 *                                    a coroutine of the script's own
 *   request.elapsed_ms() -> number | nil milliseconds (fractional) since
 *                                    that request's first byte, on the
 *                                    monotonic clock: for timings such as
 *                                    an AI task's time to first token
 * strata.data acts as that request's caller without being handed req, as
 * strata.pg finds the same request's settings. */
#include "lmod.h"

#include "lua_run.h"

#include "base/clock.h"
#include "http/request.h"

#include <lauxlib.h>

/* request.current() -> req | nil.  [-0, +1, -] */
static int l_current(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    if (!run) {
        lua_pushnil(L);
        return 1;
    }
    lua_run_push_req(L, run);
    return 1;
}

/* request.elapsed_ms() -> number | nil.  [-0, +1, -] */
static int l_elapsed_ms(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    if (!run) {
        lua_pushnil(L);
        return 1;
    }
    const request *r = lua_run_request(run);
    lua_pushnumber(L, (lua_Number)(mono_us() - r->started_us) / 1000.0);
    return 1;
}

static const luaL_Reg FUNCS[] = {
    {"current", l_current},
    {"elapsed_ms", l_elapsed_ms},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_request(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
