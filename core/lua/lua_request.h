/* lua_request.h: `req`, the table a handler sees for its request, whose
 * fields are built from the request object the first time they are read
 * (a handler that never reads req.headers pays nothing for them). */
#ifndef STRATA_LUA_REQUEST_H
#define STRATA_LUA_REQUEST_H

#include "http/request.h"

#include <lua.h>

/* Registers the metatables in L's registry (once per state).  [-0, +0, m] */
void lua_request_init(lua_State *L);

/* Pushes a new `req` for r.  [-0, +1, m] */
void lua_request_push(lua_State *L, request *r);

/* Detaches the `req` at idx from its request (the run ended): reading a
 * field not built yet raises from now on, since the request may be gone.
 * [-0, +0, -] */
void lua_request_detach(lua_State *L, int idx);

#endif
