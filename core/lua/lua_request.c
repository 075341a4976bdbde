/* lua_request.c: the `req` table of a handler (see lua_request.h).  Uses
 * the Lua C API and the request object; decodes claims with cjson (lmod.h).
 *
 * `req` holds method and path from the start; its metatable's __index
 * builds headers, query, body, remote_addr, id and auth when first read and
 * stores them in the table, so each is built at most once.  The request
 * is reached through a light userdata under a private key; when the run
 * ends the key is set to false, so a `req` kept past its request (stored
 * in a global, say) cannot reach freed memory. */
#include "lua_request.h"

#include "lmod.h"

#include <lauxlib.h>
#include <string.h>

static const char REQUEST_KEY = 'r'; /* its address keys the request pointer */
#define REQ_META "strata.request"
#define AUTH_META "strata.request.auth"

/* Lower-cases a header name into dst (at most cap bytes). */
static size_t lower(char *dst, size_t cap, const char *src, size_t n)
{
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    return n;
}

/* Adds value under key in the table at the top of L; a repeated key makes
 * a list (query) or joins with ", " (headers).  [-2, +0, m] */
static void add_repeated(lua_State *L, int join)
{
    /* stack: t, key, value */
    lua_pushvalue(L, -2);
    int t = lua_rawget(L, -4); /* stack: t, key, value, old */
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_rawset(L, -3);
        return;
    }
    if (join && t == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushvalue(L, -3);
        lua_concat(L, 3); /* stack: t, key, value, old..", "..value */
        lua_replace(L, -2);
        lua_rawset(L, -3);
        return;
    }
    if (t == LUA_TSTRING) {
        lua_createtable(L, 2, 0); /* stack: t, key, value, old, list */
        lua_insert(L, -3);        /* stack: t, key, list, value, old */
        lua_rawseti(L, -3, 1);    /* stack: t, key, list, value */
        lua_rawseti(L, -2, 2);    /* stack: t, key, list */
        lua_rawset(L, -3);
        return;
    }
    /* stack: t, key, value, list */
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);
}

/* Pushes the decoded query string as a table.  [-0, +1, m] */
static void push_query(lua_State *L, const http_str *q)
{
    lua_createtable(L, 0, 4);
    const char *p = q->p, *end = q->p + q->n;
    char tmp[2048];
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if (kend > p && (size_t)(stop - p) <= sizeof tmp) {
            int64_t kn = http_url_decode(tmp, p, (size_t)(kend - p), 1);
            if (kn >= 0) {
                lua_pushlstring(L, tmp, (size_t)kn);
                int64_t vn = eq ? http_url_decode(tmp, eq + 1, (size_t)(stop - eq - 1), 1) : 0;
                if (vn >= 0) {
                    lua_pushlstring(L, tmp, (size_t)vn);
                    add_repeated(L, 0);
                } else {
                    lua_pop(L, 1); /* a bad escape: the pair is dropped */
                }
            }
        }
        p = stop + 1;
    }
}

/* Pushes the headers as a table with lower-case names; a repeated field's
 * values are joined with ", ".  [-0, +1, m] */
static void push_headers(lua_State *L, const http_request *h)
{
    lua_createtable(L, 0, (int)h->header_count);
    for (size_t i = 0; i < h->header_count; i++) {
        char name[256];
        size_t n = lower(name, sizeof name, h->headers[i].name.p, h->headers[i].name.n);
        lua_pushlstring(L, name, n);
        lua_pushlstring(L, h->headers[i].value.p, h->headers[i].value.n);
        add_repeated(L, 1);
    }
}

/* auth.claims: the token's payload decoded, the first time it is read.
 * [-2, +1, e] */
static int l_auth_index(lua_State *L)
{
    size_t n;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
    if (!k || n != 6 || memcmp(k, "claims", 6) != 0)
        return 0;
    if (lua_getfield(L, 1, "claims_json") != LUA_TSTRING) /* stack: auth, key, json */
        return 0;
    lmod_push_cjson(L, "decode");
    lua_insert(L, -2); /* stack: auth, key, decode, json */
    lua_call(L, 1, 1); /* stack: auth, key, claims */
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "claims");
    return 1;
}

/* The auth context: role, uid, is_admin, claims_json, and claims on
 * demand.  [-0, +1, m] */
static void push_auth(lua_State *L, const jwt_claims *a)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, a->role);
    lua_setfield(L, -2, "role");
    if (a->uid[0]) {
        lua_pushstring(L, a->uid);
        lua_setfield(L, -2, "uid");
    }
    lua_pushboolean(L, a->is_admin);
    lua_setfield(L, -2, "is_admin");
    if (a->payload_len)
        lua_pushlstring(L, a->payload, a->payload_len);
    else
        lua_pushliteral(L, "{}"); /* anonymous: claims decodes to an empty table when read */
    lua_setfield(L, -2, "claims_json");
    luaL_setmetatable(L, AUTH_META);
}

/* __index of req: builds the field, keeps it in req.  [-2, +1, e] */
static int l_req_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    if (lua_rawgetp(L, 1, &REQUEST_KEY) != LUA_TLIGHTUSERDATA) /* stack: req, key, r|false */
        return luaL_error(L, "req.%s: the request has ended (req is only usable while its handler runs)", k);
    const request *r = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (n == 7 && memcmp(k, "headers", 7) == 0)
        push_headers(L, &r->http);
    else if (n == 5 && memcmp(k, "query", 5) == 0)
        push_query(L, &r->http.query);
    else if (n == 4 && memcmp(k, "body", 4) == 0)
        lua_pushlstring(L, r->body ? r->body : "", r->body_len);
    else if (n == 11 && memcmp(k, "remote_addr", 11) == 0)
        lua_pushstring(L, r->remote);
    else if (n == 4 && memcmp(k, "auth", 4) == 0)
        push_auth(L, &r->claims);
    else if (n == 2 && memcmp(k, "id", 2) == 0)
        lua_pushstring(L, r->id);
    else
        return 0;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2); /* stack: req, key, value, key, value */
    lua_rawset(L, 1);
    return 1;
}

void lua_request_init(lua_State *L)
{
    luaL_newmetatable(L, REQ_META);
    lua_pushcfunction(L, l_req_index);
    lua_setfield(L, -2, "__index");
    luaL_newmetatable(L, AUTH_META);
    lua_pushcfunction(L, l_auth_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 2);
}

static void set_str(lua_State *L, const char *k, const char *v, size_t n)
{
    lua_pushlstring(L, v, n);
    lua_setfield(L, -2, k);
}

void lua_request_push(lua_State *L, request *r)
{
    lua_createtable(L, 0, 12);
    set_str(L, "method", r->http.method.p, r->http.method.n);
    set_str(L, "path", r->http.path.p, r->http.path.n);
    lua_pushlightuserdata(L, r);
    lua_rawsetp(L, -2, &REQUEST_KEY);
    luaL_setmetatable(L, REQ_META);
}

void lua_request_detach(lua_State *L, int idx)
{
    lua_pushboolean(L, 0);
    lua_rawsetp(L, idx < 0 ? idx - 1 : idx, &REQUEST_KEY);
}
