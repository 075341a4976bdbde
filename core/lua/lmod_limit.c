/* lmod_limit.c: strata.limit, the process-wide GCRA counters (limiter.h)
 * for scripts.
 *   limit.take(key, { rate = n, per = seconds, burst = n }) ->
 *       allowed, remaining, reset_seconds, retry_after_seconds
 *   limit.peek(key, rule) -> the same, without counting a request
 *   limit.record_usage(user_id, agent_type, per_hour, per_day) -> true,
 *       or nil, "not a uuid" | "full"
 *       counts one allowed request of user_id (a uuid string) on
 *       agent_type (1-50 bytes) for public.rate_limit_tracking: its hourly
 *       row (limit_value per_hour) and daily row (per_day); a limit <= 0
 *       or nil skips that row.  Written about once a second by a
 *       background thread (usage.h, ratelimit_db.h), never on the request.
 * burst defaults to rate.  Shared by every worker of the process (policy
 * "local": exact for one instance).  The limiter and the usage table come
 * from the registry keys "strata.limiter" and "strata.usage", set by the
 * worker.
 *
 * Two units behind one module, on purpose: scripts see one concern, the
 * rate limits of a request (lua/strata/agent_limits.lua takes from the
 * limiter and records the same allowed request in rate_limit_tracking), so
 * Lua gets one module.  take/peek adapt limiter.h alone and record_usage
 * usage.h alone; neither reaches the other, and the uuid text is read by
 * uuid.h. */
#include "lmod.h"

#include "base/clock.h"
#include "engine/limiter.h"
#include "engine/usage.h"
#include "engine/uuid.h"

#include <lauxlib.h>
#include <time.h>

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
    if (limiter_take(l, key, klen, &rule, mono_ns(), consume, &r) < 0)
        return luaL_error(L, "strata.limit: key refused (empty or longer than %d bytes)", LIMITER_MAX_KEY);
    lua_pushboolean(L, r.allowed);
    lua_pushinteger(L, (lua_Integer)r.remaining);
    /* Whole seconds, rounded up: a client told 0 would retry too early. */
    lua_pushinteger(L, (lua_Integer)((r.reset_ns + 999999999u) / 1000000000u));
    lua_pushinteger(L, (lua_Integer)((r.retry_after_ns + 999999999u) / 1000000000u));
    return 4;
}

/* A limit argument: nil or a number, as a positive int32, or 0 for none. */
static int32_t opt_limit(lua_State *L, int arg)
{
    lua_Number n = luaL_optnumber(L, arg, 0);
    /* Compared as a float first: casting a huge or NaN float is undefined. */
    return !(n >= 1) ? 0 : n >= (lua_Number)INT32_MAX ? INT32_MAX : (int32_t)n;
}

/* limit.record_usage(user, agent_type, per_hour, per_day).  [-4, +1|2, e] */
static int l_record_usage(lua_State *L)
{
    size_t ulen, alen;
    const char *user = luaL_checklstring(L, 1, &ulen);
    const char *agent = luaL_checklstring(L, 2, &alen);
    int32_t per_hour = opt_limit(L, 3), per_day = opt_limit(L, 4);
    if (alen == 0 || alen > USAGE_AGENT_MAX)
        return luaL_argerror(L, 2, "agent type must be 1 to 50 bytes");
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.usage");
    usage *u = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!u)
        return luaL_error(L, "strata.limit: no usage table in this Lua state");
    rs_uuid id;
    /* A JWT subject need not be a uuid; rate_limit_tracking.user_id is. */
    if (rs_uuid_parse(user, ulen, &id) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "not a uuid");
        return 2;
    }
    if (usage_record(u, id.b, agent, alen, per_hour, per_day, (int64_t)time(NULL)) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "full");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_peek(lua_State *L) { return take(L, 0); }
static int l_take(lua_State *L) { return take(L, 1); }

static const luaL_Reg FUNCS[] = {
    {"peek", l_peek},
    {"record_usage", l_record_usage},
    {"take", l_take},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_limit(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
