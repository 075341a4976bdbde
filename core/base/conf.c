/* conf.c: reads conf/strata.lua into a strata_conf (see conf.h).  The chunk
 * runs in a throw-away Lua state with only the base library: configuration
 * is data, and this state never serves requests.  Keys are declared once in
 * FIELDS, which drives both the file and the environment. */
#include "conf.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STRING, K_INT, K_BOOL };

typedef struct field {
    const char *key;
    enum kind kind;
    size_t offset;
    long min, max;       /* for K_INT */
    const char *dflt;    /* default, as it would be written in the environment */
} field;

#define F(key, kind, min, max, dflt) {#key, kind, offsetof(strata_conf, key), min, max, dflt}
static const field FIELDS[] = {
    F(listen, K_STRING, 0, 0, "127.0.0.1:8080"),
    F(workers, K_INT, 0, 256, "0"),
    F(database_url, K_STRING, 0, 0, NULL),
    F(sql_dir, K_STRING, 0, 0, "sql"),
    F(lua_dir, K_STRING, 0, 0, "lua"),
    F(ready_interval_ms, K_INT, 10, 3600000, "1000"),
    F(max_body_bytes, K_INT, 0, 1 << 30, "1048576"),
    F(max_header_bytes, K_INT, 256, 1 << 20, "16384"),
    F(max_headers, K_INT, 1, 100, "100"),
    F(max_uri_bytes, K_INT, 16, 1 << 20, "8192"),
    F(read_timeout_ms, K_INT, 10, 3600000, "10000"),
    F(idle_timeout_ms, K_INT, 10, 3600000, "60000"),
    F(max_connections, K_INT, 1, 1000000, "10000"),
    F(shutdown_timeout_ms, K_INT, 0, 3600000, "10000"),
    F(db_pool_min, K_INT, 0, 1000, "1"),
    F(db_pool_max, K_INT, 1, 1000, "4"),
    F(db_queue_max, K_INT, 0, 1000000, "1024"),
    F(db_wait_timeout_ms, K_INT, 1, 3600000, "5000"),
    F(db_statement_timeout_ms, K_INT, 0, 86400000, "30000"),
    F(schemas, K_STRING, 0, 0, "public,orchestrator,agentflow"),
    F(max_rows, K_INT, 1, 100000000, "1000"),
    F(jwt_secret, K_STRING, 0, 0, NULL),
    F(jwt_leeway_s, K_INT, 0, 3600, "30"),
    F(rate_limit_user_per_minute, K_INT, 0, 100000000, "1200"),
    F(rate_limit_anon_per_minute, K_INT, 0, 100000000, "600"),
    F(rate_limit_max_keys, K_INT, 1024, 100000000, "100000"),
    F(rate_limit_flush_ms, K_INT, 10, 3600000, "1000"),
    F(rate_limit_sweep_ms, K_INT, 100, 86400000, "60000"),
    F(lua_time_limit_ms, K_INT, 10, 3600000, "1000"),
    F(access_log, K_STRING, 0, 0, "stderr"),
    F(reload_watch, K_BOOL, 0, 0, "true"),
    F(reload_debounce_ms, K_INT, 0, 60000, "200"),
    F(cors_methods, K_STRING, 0, 0, "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    F(cors_headers, K_STRING, 0, 0,
      "authorization, apikey, content-type, prefer, range, range-unit, accept-profile, "
      "content-profile, x-client-info, x-request-id"),
    F(cors_expose, K_STRING, 0, 0, "content-range, content-location, preference-applied, x-request-id"),
    F(cors_max_age, K_INT, 0, 86400 * 7, "86400"),
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

/* Sets one field from its textual form (an environment value or a default). */
static int set_text(strata_conf *c, const field *f, const char *v, const char *where,
                    char *err, size_t errlen)
{
    char *at = (char *)c + f->offset;
    char *end;
    switch (f->kind) {
    case K_STRING: {
        char *s = strdup(v);
        if (!s)
            return fail(err, errlen, "%s: out of memory (%s)", where, f->key);
        free(*(char **)at);
        *(char **)at = s;
        return 0;
    }
    case K_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(int *)at = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(int *)at = 0;
        else
            return fail(err, errlen, "%s: '%s' must be true or false", where, f->key);
        return 0;
    case K_INT: {
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < f->min || n > f->max) {
            snprintf(err, errlen, "%s: '%s' must be an integer from %ld to %ld", where, f->key,
                     f->min, f->max);
            return -1;
        }
        *(int *)at = (int)n;
        return 0;
    }
    }
    return -1;
}

/* Sets field f from the value at the top of L.  [-0, +0, -] */
static int set_lua(lua_State *L, strata_conf *c, const field *f, const char *path, char *err,
                   size_t errlen)
{
    char text[64];
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        if (f->kind != K_STRING)
            break;
        return set_text(c, f, lua_tostring(L, -1), path, err, errlen);
    case LUA_TNUMBER:
        if (f->kind != K_INT || !lua_isinteger(L, -1))
            break;
        snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, -1));
        return set_text(c, f, text, path, err, errlen);
    case LUA_TBOOLEAN:
        if (f->kind != K_BOOL)
            break;
        return set_text(c, f, lua_toboolean(L, -1) ? "true" : "false", path, err, errlen);
    }
    static const char *const names[] = {"a string", "an integer", "a boolean"};
    snprintf(err, errlen, "%s: '%s' must be %s", path, f->key, names[f->kind]);
    return -1;
}

/* Reads cors = { origins = {...} } from the table at the top of L.  [-0, +0, -] */
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
    if (n > CONF_MAX_ORIGINS)
        rc = fail(err, errlen, "%s: 'cors_origins' has too many entries%s", path, "");
    for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        if (lua_geti(L, -1, i) != LUA_TSTRING) /* stack: conf, origins, origin */
            rc = fail(err, errlen, "%s: 'cors_origins' entries must be strings%s", path, "");
        else if (!(c->cors_origins[c->cors_origin_count] = strdup(lua_tostring(L, -1))))
            rc = fail(err, errlen, "%s: out of memory%s", path, "");
        else
            c->cors_origin_count++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return rc;
}

static int is_known(const char *key)
{
    if (strcmp(key, "cors_origins") == 0)
        return 1;
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(FIELDS[i].key, key) == 0)
            return 1;
    return 0;
}

/* Unknown keys are an error: a typo must not silently keep a default. */
static int check_keys(lua_State *L, const char *path, char *err, size_t errlen)
{
    lua_pushnil(L); /* stack: conf, nil */
    while (lua_next(L, -2)) { /* stack: conf, key, value */
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !is_known(lua_tostring(L, -1))) {
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
    for (size_t i = 0; i < NFIELDS; i++) {
        int t = lua_getfield(L, -1, FIELDS[i].key); /* stack: conf, value */
        int bad = t != LUA_TNIL && set_lua(L, c, &FIELDS[i], path, err, errlen);
        lua_pop(L, 1);
        if (bad)
            goto out;
    }
    rc = 0;
out:
    lua_close(L);
    return rc;
}

static int apply_env(strata_conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        char name[64] = "STRATA_";
        size_t n = strlen(name);
        for (const char *k = FIELDS[i].key; *k && n < sizeof name - 1; k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = '\0';
        const char *v = getenv(name);
        if (v && *v && set_text(c, &FIELDS[i], v, name, err, errlen))
            return -1;
    }
    const char *v = getenv("DATABASE_URL");
    for (size_t i = 0; v && *v && i < NFIELDS; i++)
        if (strcmp(FIELDS[i].key, "database_url") == 0)
            return set_text(c, &FIELDS[i], v, "DATABASE_URL", err, errlen);
    return 0;
}

/* Splits "host:port" (the last colon separates; "[::1]:80" allowed). */
static int parse_listen(strata_conf *c, char *err, size_t errlen)
{
    const char *s = c->listen;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return fail(err, errlen, "listen: expected host:port, got '%s'%s", s, "");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
        return fail(err, errlen, "listen: bad port in '%s'%s", s, "");
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (!(c->listen_host = strndup(s, hlen)))
        return fail(err, errlen, "listen: %s%s", "out of memory", "");
    c->listen_port = (int)port;
    return 0;
}

int conf_load(strata_conf *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].dflt && set_text(c, &FIELDS[i], FIELDS[i].dflt, "default", err, errlen))
            return -1;
    if (load_file(c, path, err, errlen) || apply_env(c, err, errlen) ||
        parse_listen(c, err, errlen))
        return -1;
    if (!c->database_url)
        return fail(err, errlen, "no database: set DATABASE_URL or database_url in %s%s", path, "");
    if (c->db_pool_min > c->db_pool_max)
        return fail(err, errlen, "%s: db_pool_min must not exceed db_pool_max%s", path, "");
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    return 0;
}

void conf_free(strata_conf *c)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].kind == K_STRING)
            free(*(char **)((char *)c + FIELDS[i].offset));
    free(c->listen_host);
    for (int i = 0; i < c->cors_origin_count; i++)
        free(c->cors_origins[i]);
    memset(c, 0, sizeof *c);
}
