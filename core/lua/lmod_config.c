/* lmod_config.c: strata.config, the server configuration scripts may read
 * (never the secrets):
 *   config.schemas -> { "public", ... }   the exposed schemas, default first
 *   config.max_rows -> integer            the REST read cap
 *   config.rest_aggregates -> boolean     REST select= may aggregate
 *   config.rest_plans -> boolean          REST answers EXPLAIN plans
 *   config.workers, config.listen
 *   config.rate_limit_user_per_minute, config.rate_limit_anon_per_minute
 * Adapts conf.h alone: what the database tells (the schema's and
 * admin_config's versions) is strata.broker's, the binding of the feed.
 * The C configuration is found through the registry key "strata.conf",
 * which lua_gen_new sets before any script runs. */
#include "lmod.h"

#include "base/conf.h"

#include <lauxlib.h>
#include <string.h>

/* Splits "a,b , c" into a list of trimmed names.  [-0, +1, m] */
static void push_list(lua_State *L, const char *csv)
{
    lua_newtable(L);
    lua_Integer n = 0;
    const char *p = csv;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            lua_pushlstring(L, a, (size_t)(b - a));
            lua_rawseti(L, -2, ++n);
        }
        p = comma ? comma + 1 : NULL;
    }
}

/* [-0, +1, m] */
int luaopen_strata_config(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_createtable(L, 0, 6);
    push_list(L, c && c->schemas ? c->schemas : "public,orchestrator,agentflow");
    lua_setfield(L, -2, "schemas");
    lua_pushinteger(L, c ? c->max_rows : 1000);
    lua_setfield(L, -2, "max_rows");
    lua_pushboolean(L, c ? c->rest_aggregates : 0);
    lua_setfield(L, -2, "rest_aggregates");
    lua_pushboolean(L, c ? c->rest_plans : 0);
    lua_setfield(L, -2, "rest_plans");
    lua_pushinteger(L, c ? c->workers : 1);
    lua_setfield(L, -2, "workers");
    lua_pushstring(L, c && c->listen ? c->listen : "");
    lua_setfield(L, -2, "listen");
    lua_pushinteger(L, c ? c->rate_limit_user_per_minute : 1200);
    lua_setfield(L, -2, "rate_limit_user_per_minute");
    lua_pushinteger(L, c ? c->rate_limit_anon_per_minute : 600);
    lua_setfield(L, -2, "rate_limit_anon_per_minute");
    return 1;
}
