/* lmod_http.c: strata.http, HTTP helpers for scripts.
 *   http.url_decode(s[, plus_is_space]) -> string | nil, err
 *   http.url_encode(s) -> string   (RFC 3986 unreserved kept)
 *   http.reason(status) -> string ("Not Found")
 * Adapts http.h. */
#include "lmod.h"

#include "http/http.h"

#include <lauxlib.h>

/* [-1|2, +1|2, m] */
static int l_url_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int plus = lua_toboolean(L, 2);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n + 1);
    int64_t m = http_url_decode(out, s, n, plus);
    if (m < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "bad percent escape");
        return 2;
    }
    luaL_pushresultsize(&b, (size_t)m);
    return 1;
}

/* [-1, +1, m] */
static int l_url_encode(lua_State *L)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            luaL_addchar(&b, (char)c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* [-1, +1, -] */
static int l_reason(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    lua_pushstring(L, http_reason((int)status));
    return 1;
}

static const luaL_Reg FUNCS[] = {
    {"reason", l_reason},
    {"url_decode", l_url_decode},
    {"url_encode", l_url_encode},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_http(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
