/* lmod.h: the strata.* Lua modules implemented in C, one lmod_<name>.c
 * each with its luaopen_strata_<name>. */
#ifndef STRATA_LMOD_H
#define STRATA_LMOD_H

#include <lua.h>

int luaopen_strata_log(lua_State *L);
int luaopen_strata_pg(lua_State *L);
int luaopen_strata_broker(lua_State *L);
int luaopen_strata_config(lua_State *L);
int luaopen_strata_http(lua_State *L);
int luaopen_strata_limit(lua_State *L);

/* Puts every strata.* module into package.preload.  [-0, +0, m] */
void lmod_preload(lua_State *L);

#endif
