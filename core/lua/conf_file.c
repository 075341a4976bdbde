/* conf_file.c: evaluates conf/strata.lua and hands its keys to conf.c.  The
 * chunk runs in a throw-away Lua state with only the base library:
 * configuration is data, and this state never serves requests.  Each value
 * goes to conf.c as the text an environment variable would hold, after a
 * check that its Lua type is the key's kind. */
#include "conf_file.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

/* Sets `key` from the value at the top of L.  [-0, +0, -] */
static int set_value(lua_State *L, strata_conf *c, const char *key, const char *path, char *err,
                     size_t errlen)
{
    conf_kind kind = conf_key_kind(key);
    char text[64];
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        if (kind != CONF_STRING)
            break;
        return conf_set(c, key, lua_tostring(L, -1), path, err, errlen);
    case LUA_TNUMBER:
        if (kind != CONF_INT || !lua_isinteger(L, -1))
            break;
        snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, -1));
        return conf_set(c, key, text, path, err, errlen);
    case LUA_TBOOLEAN:
        if (kind != CONF_BOOL)
            break;
        return conf_set(c, key, lua_toboolean(L, -1) ? "true" : "false", path, err, errlen);
    }
    static const char *const names[] = {"a string", "an integer", "a boolean"}; /* scalar kinds only */
    snprintf(err, errlen, "%s: '%s' must be %s", path, key, kind <= CONF_BOOL ? names[kind] : "a scalar");
    return -1;
}

/* Reads cors_origins = {...} from the table at the top of L.  [-0, +0, -] */
static int load_origins(lua_State *L, strata_conf *c, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    if (lua_getfield(L, -1, "cors_origins") == LUA_TNIL) { /* stack: conf, origins */
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return fail(err, errlen, "%s: 'cors_origins' must be a list of strings%s", path, "");
    }
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        if (lua_geti(L, -1, i) != LUA_TSTRING) /* stack: conf, origins, origin */
            rc = fail(err, errlen, "%s: 'cors_origins' entries must be strings%s", path, "");
        else
            rc = conf_add(c, "cors_origins", lua_tostring(L, -1), path, err, errlen);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return rc;
}

/* Unknown keys are an error: a typo must not silently keep a default.
 * [-0, +0, -] */
static int check_keys(lua_State *L, const char *path, char *err, size_t errlen)
{
    lua_pushnil(L); /* stack: conf, nil */
    while (lua_next(L, -2)) { /* stack: conf, key, value */
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || conf_key_kind(lua_tostring(L, -1)) == CONF_UNKNOWN) {
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
            fail(err, errlen, "%s: unknown key '%s'", path, k);
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}

static int load_file(strata_conf *c, const char *path, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return fail(err, errlen, "%s: %s", path, "cannot create a Lua state");
    luaL_requiref(L, "_G", luaopen_base, 1);
    lua_pop(L, 1);
    int rc = -1;
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fail(err, errlen, "%s%s", lua_tostring(L, -1), "");
        goto out;
    }
    if (!lua_istable(L, -1)) {
        fail(err, errlen, "%s: must return a table%s", path, "");
        goto out;
    }
    if (check_keys(L, path, err, errlen) || load_origins(L, c, path, err, errlen))
        goto out;
    const char *key;
    for (size_t i = 0; (key = conf_key(i)); i++) {
        int t = lua_getfield(L, -1, key); /* stack: conf, value */
        int bad = t != LUA_TNIL && set_value(L, c, key, path, err, errlen);
        lua_pop(L, 1);
        if (bad)
            goto out;
    }
    rc = 0;
out:
    lua_close(L);
    return rc;
}

int conf_file_load(strata_conf *c, const char *path, char *err, size_t errlen)
{
    if (conf_init(c, err, errlen) || load_file(c, path, err, errlen))
        return -1;
    return conf_finish(c, path, err, errlen);
}
