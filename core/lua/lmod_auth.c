/* lmod_auth.c: strata.auth, what /auth/v1 (lua/auth) tells the core:
 *   auth.count(event)   counts an event in /metrics
 *                       (strata_auth_events_total{event}): "signin",
 *                       "signin_failed", "signup", "refresh",
 *                       "refresh_reused", "logout"
 *   auth.revoke(session_id) -> true | nil, err
 *                       refuses the session's access tokens on this
 *                       instance now (the others hear sql/130's NOTIFY)
 * Adapts metrics.h and revoked_feed.h (the registry key "strata.revoked").
 * An unknown event is a programmer's error: it raises. */
#include "lmod.h"

#include "db/revoked_feed.h"
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

/* [-1, +1|2, m] */
static int l_revoke(lua_State *L)
{
    size_t n;
    const char *id = luaL_checklstring(L, 1, &n);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.revoked");
    revoked_feed *f = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!f || revoked_feed_add(f, id, n) < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, f ? "not a session id" : "no revoked-session set");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg FUNCS[] = {
    {"count", l_count},
    {"revoke", l_revoke},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_auth(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
