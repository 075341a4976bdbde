/* lmod_config.c: strata.config, the server configuration scripts may read
 * (never the secrets):
 *   config.schemas -> { "public", ... }   the exposed schemas, default first
 *   config.max_rows -> integer            the REST read cap
 *   config.rest_rls -> boolean            REST statements also under RLS
 *   config.rest_aggregates -> boolean     REST select= may aggregate
 *   config.rest_plans -> boolean          REST answers EXPLAIN plans
 *   config.workers, config.listen
 *   config.instance -> "host:listen"      this instance among those sharing
 *                                         the database (stable across restarts)
 *   config.boot_id -> 32 hex digits       this process (new at each start)
 *   config.rate_limit_user_per_minute, config.rate_limit_anon_per_minute
 *   config.auth = { bcrypt_cost, jwt_exp, autoconfirm, disable_signup, site_url,
 *                   rate_limit_address, rate_limit_email }
 *   config.provider_base_url(name) -> string | nil   google, openai, anthropic
 *   config.api_key(name) -> string | nil              the provider's key: a
 *     function, not a field, so that no table a script dumps or logs holds it
 * Adapts conf.h alone: what the database tells (the schema's and
 * admin_config's versions) is strata.broker's, the binding of the feed.
 * The C configuration is found through the registry key "strata.conf",
 * which lua_gen_new sets before any script runs. */
#include "lmod.h"

#include "base/conf.h"

#include <lauxlib.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One per process, shared by the workers' states: what tells this start of
 * the instance from the previous one (AI tasks a crash left unfinished). */
static char boot_id[33];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void make_boot_id(void)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) { /* no entropy: still unique enough per start */
        unsigned long long t = (unsigned long long)getpid() << 32 ^ (unsigned long long)time(NULL);
        memcpy(b, &t, sizeof t);
        memcpy(b + 8, &t, sizeof t);
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(boot_id + 2 * i, 3, "%02x", b[i]);
}

/* "host:listen".  [-0, +1, m] */
static void push_instance(lua_State *L, const strata_conf *c)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    lua_pushfstring(L, "%s:%s", host, c && c->listen ? c->listen : "");
}

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

/* The conf of this Lua state.  [-0, +0, -] */
static const strata_conf *conf_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return c;
}

/* Field `which` (0: base URL, 1: API key) of provider name at arg 1.
 * [-0, +1, m] */
static int provider_field(lua_State *L, int which)
{
    const char *name = luaL_checkstring(L, 1);
    const strata_conf *c = conf_of(L);
    const char *v = NULL;
    if (c && strcmp(name, "google") == 0)
        v = which ? c->google_api_key : c->google_base_url;
    else if (c && strcmp(name, "openai") == 0)
        v = which ? c->openai_api_key : c->openai_base_url;
    else if (c && strcmp(name, "anthropic") == 0)
        v = which ? c->anthropic_api_key : c->anthropic_base_url;
    if (v && *v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* config.provider_base_url(name) -> string | nil.  [-1, +1, m] */
static int l_provider_base_url(lua_State *L)
{
    return provider_field(L, 0);
}

/* config.api_key(name) -> string | nil.  [-1, +1, m] */
static int l_api_key(lua_State *L)
{
    return provider_field(L, 1);
}

/* [-0, +1, m] */
int luaopen_strata_config(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_createtable(L, 0, 12);
    push_list(L, c && c->schemas ? c->schemas : "public,orchestrator,agentflow");
    lua_setfield(L, -2, "schemas");
    lua_pushinteger(L, c ? c->max_rows : 1000);
    lua_setfield(L, -2, "max_rows");
    lua_pushboolean(L, c ? c->rest_rls : 0);
    lua_setfield(L, -2, "rest_rls");
    lua_pushboolean(L, c ? c->rest_aggregates : 0);
    lua_setfield(L, -2, "rest_aggregates");
    lua_pushboolean(L, c ? c->rest_plans : 0);
    lua_setfield(L, -2, "rest_plans");
    lua_pushinteger(L, c ? c->workers : 1);
    lua_setfield(L, -2, "workers");
    lua_pushstring(L, c && c->listen ? c->listen : "");
    lua_setfield(L, -2, "listen");
    push_instance(L, c);
    lua_setfield(L, -2, "instance");
    pthread_once(&boot_once, make_boot_id);
    lua_pushstring(L, boot_id);
    lua_setfield(L, -2, "boot_id");
    lua_pushinteger(L, c ? c->rate_limit_user_per_minute : 1200);
    lua_setfield(L, -2, "rate_limit_user_per_minute");
    lua_pushinteger(L, c ? c->rate_limit_anon_per_minute : 600);
    lua_setfield(L, -2, "rate_limit_anon_per_minute");
    lua_createtable(L, 0, 7); /* stack: config, auth */
    lua_pushinteger(L, c ? c->auth_bcrypt_cost : 10);
    lua_setfield(L, -2, "bcrypt_cost");
    lua_pushinteger(L, c ? c->auth_jwt_exp : 3600);
    lua_setfield(L, -2, "jwt_exp");
    lua_pushboolean(L, c ? c->auth_autoconfirm : 1);
    lua_setfield(L, -2, "autoconfirm");
    lua_pushboolean(L, c ? c->auth_disable_signup : 0);
    lua_setfield(L, -2, "disable_signup");
    lua_pushstring(L, c && c->auth_site_url ? c->auth_site_url : "http://localhost:3000");
    lua_setfield(L, -2, "site_url");
    lua_pushinteger(L, c ? c->auth_rate_limit_address : 30);
    lua_setfield(L, -2, "rate_limit_address");
    lua_pushinteger(L, c ? c->auth_rate_limit_email : 10);
    lua_setfield(L, -2, "rate_limit_email");
    lua_setfield(L, -2, "auth");
    lua_pushcfunction(L, l_api_key);
    lua_setfield(L, -2, "api_key");
    lua_pushcfunction(L, l_provider_base_url);
    lua_setfield(L, -2, "provider_base_url");
    return 1;
}
