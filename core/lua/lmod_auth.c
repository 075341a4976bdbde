/* lmod_auth.c: strata.auth, what /auth/v1 (lua/auth) tells the core:
 *   auth.count(event)   counts an event in /metrics
 *                       (strata_auth_events_total{event}): "signin",
 *                       "signin_failed", "signup", "refresh",
 *                       "refresh_reused", "logout"
 * Adapts metrics.h.  An unknown event is a programmer's error: it raises. */
#include "lmod.h"

#include "obs/metrics.h"

#include <lauxlib.h>

/* [-1, +0, v] */
static int l_count(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int e = metrics_auth_event(name);
    luaL_argcheck(L, e >= 0, 1, "unknown auth event");
    atomic_fetch_add(&metrics_auth[e], 1);
    return 0;
}

static const luaL_Reg FUNCS[] = {
    {"count", l_count},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_auth(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
