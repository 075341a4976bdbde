/* conf.c: reads conf/strata.lua into a strata_conf.  The chunk runs in a
 * throw-away Lua state with only the base library: configuration is data,
 * and this state never serves requests. */
#include "conf.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

/* Splits "host:port" (the last colon separates; "[::1]:80" allowed). */
static int parse_listen(strata_conf *conf, const char *s, char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return fail(err, errlen, "listen: expected host:port, got '%s'%s", s, "");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return fail(err, errlen, "listen: bad port in '%s'%s", s, "");
    const char *host = s;
    size_t hlen = (size_t)(colon - s);
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    free(conf->listen_host);
    conf->listen_host = strndup(host, hlen);
    if (!conf->listen_host)
        return fail(err, errlen, "listen: %s%s", "out of memory", "");
    conf->listen_port = (int)port;
    return 0;
}

/* Copies the string field `key` of the table at the top of L into *dst
 * when present.  [-0, +0, -] */
static int get_string(lua_State *L, const char *key, char **dst, const char *path,
                      char *err, size_t errlen)
{
    int t = lua_getfield(L, -1, key); /* stack: conf, value */
    int rc = 0;
    if (t == LUA_TSTRING) {
        free(*dst);
        *dst = strdup(lua_tostring(L, -1));
        if (!*dst)
            rc = fail(err, errlen, "%s: out of memory reading '%s'", path, key);
    } else if (t != LUA_TNIL) {
        rc = fail(err, errlen, "%s: '%s' must be a string", path, key);
    }
    lua_pop(L, 1);
    return rc;
}

/* Same for an integer field in [min, max].  [-0, +0, -] */
static int get_int(lua_State *L, const char *key, int *dst, int min, const char *path,
                   char *err, size_t errlen)
{
    int t = lua_getfield(L, -1, key); /* stack: conf, value */
    int rc = 0;
    if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= min &&
        lua_tointeger(L, -1) <= 1000000000)
        *dst = (int)lua_tointeger(L, -1);
    else if (t != LUA_TNIL)
        rc = fail(err, errlen, "%s: '%s' must be an integer in range", path, key);
    lua_pop(L, 1);
    return rc;
}

static int load_file(strata_conf *conf, const char *path, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return fail(err, errlen, "%s: %s", path, "cannot create a Lua state");
    luaL_requiref(L, "_G", luaopen_base, 1);
    lua_pop(L, 1);
    int rc = -1;
    char *listen = NULL;
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fail(err, errlen, "%s%s", lua_tostring(L, -1), "");
        goto out;
    }
    if (!lua_istable(L, -1)) {
        fail(err, errlen, "%s: must return a table%s", path, "");
        goto out;
    }
    /* stack: conf */
    if (get_string(L, "listen", &listen, path, err, errlen) ||
        get_string(L, "database_url", &conf->database_url, path, err, errlen) ||
        get_string(L, "sql_dir", &conf->sql_dir, path, err, errlen) ||
        get_int(L, "ready_interval_ms", &conf->ready_interval_ms, 10, path, err, errlen))
        goto out;
    if (listen && parse_listen(conf, listen, err, errlen))
        goto out;
    rc = 0;
out:
    free(listen);
    lua_close(L);
    return rc;
}

static int apply_env(strata_conf *conf, char *err, size_t errlen)
{
    const char *v;
    if ((v = getenv("STRATA_LISTEN")) && *v && parse_listen(conf, v, err, errlen))
        return -1;
    if ((v = getenv("DATABASE_URL")) && *v) {
        free(conf->database_url);
        if (!(conf->database_url = strdup(v)))
            return fail(err, errlen, "DATABASE_URL: %s%s", "out of memory", "");
    }
    if ((v = getenv("STRATA_SQL_DIR")) && *v) {
        free(conf->sql_dir);
        if (!(conf->sql_dir = strdup(v)))
            return fail(err, errlen, "STRATA_SQL_DIR: %s%s", "out of memory", "");
    }
    if ((v = getenv("STRATA_READY_INTERVAL_MS")) && *v) {
        char *end;
        long ms = strtol(v, &end, 10);
        if (*end || ms < 10 || ms > 3600000)
            return fail(err, errlen, "STRATA_READY_INTERVAL_MS: bad value '%s'%s", v, "");
        conf->ready_interval_ms = (int)ms;
    }
    return 0;
}

int conf_load(strata_conf *conf, const char *path, char *err, size_t errlen)
{
    memset(conf, 0, sizeof *conf);
    conf->ready_interval_ms = 1000;
    if (parse_listen(conf, "127.0.0.1:8080", err, errlen))
        return -1;
    if (load_file(conf, path, err, errlen) || apply_env(conf, err, errlen))
        return -1;
    if (!conf->sql_dir && !(conf->sql_dir = strdup("sql")))
        return fail(err, errlen, "sql_dir: %s%s", "out of memory", "");
    if (!conf->database_url)
        return fail(err, errlen, "no database: set DATABASE_URL or database_url in %s%s", path, "");
    return 0;
}

void conf_free(strata_conf *conf)
{
    free(conf->listen_host);
    free(conf->database_url);
    free(conf->sql_dir);
    memset(conf, 0, sizeof *conf);
}
