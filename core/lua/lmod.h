/* lmod.h: the strata.* Lua modules implemented in C, one lmod_<name>.c
 * each with its luaopen_strata_<name>, and what they share (cjson). */
#ifndef STRATA_LMOD_H
#define STRATA_LMOD_H

#include <lua.h>

int luaopen_strata_log(lua_State *L);
int luaopen_strata_pg(lua_State *L);
int luaopen_strata_auth(lua_State *L);
int luaopen_strata_broker(lua_State *L);
int luaopen_strata_config(lua_State *L);
int luaopen_strata_crypto(lua_State *L);
int luaopen_strata_httpc(lua_State *L);
int luaopen_strata_stream(lua_State *L);
int luaopen_strata_limit(lua_State *L);
int luaopen_strata_request(lua_State *L);
int luaopen_strata_health(lua_State *L);
int luaopen_strata_aimetrics(lua_State *L);

/* Puts every strata.* module into package.preload.  [-0, +0, m] */
void lmod_preload(lua_State *L);

/* Pushes cjson's function `fn` ("encode", "decode", ...), or the cjson
 * module itself when fn is NULL.  cjson is required once per Lua state and
 * kept in the registry, so every binding reaches the same module the same
 * way whatever scripts do to the global `require`.  [-0, +1, e] */
void lmod_push_cjson(lua_State *L, const char *fn);

/* Pushes cjson.null (a NULL light userdata): SQL NULL and JSON null in
 * the values the bindings hand to scripts.  [-0, +1, -] */
void lmod_json_null(lua_State *L);

#endif
