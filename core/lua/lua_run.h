/* lua_run.h: the bindings' side of a request's run (lua_host.c): which run
 * a coroutine serves, its request, and the async recipe — check the
 * arguments, start the operation, yield; the operation's completion pushes
 * the results on lua_run_thread() and calls lua_run_resume(). */
#ifndef STRATA_LUA_RUN_H
#define STRATA_LUA_RUN_H

#include "lua_host.h"

#include "http/request.h"

#include <lua.h>

typedef struct lua_run lua_run;

/* The run executing on L, or NULL when L is not a request's coroutine
 * (a script's own coroutine, or the validation at reload). */
lua_run *lua_run_current(lua_State *L);

/* The request the run serves. */
request *lua_run_request(lua_run *run);

/* The tag of the run's generation (lua_gen_tag). */
const void *lua_run_tag(lua_run *run);

/* Pushes the run's `req` table.  [-0, +1, -] */
void lua_run_push_req(lua_State *L, lua_run *run);

/* Suspends the run; use as `return lua_run_yield(L, run, k, ctx);`. */
int lua_run_yield(lua_State *L, lua_run *run, lua_KFunction k, lua_KContext ctx);

/* The coroutine to push the results on before resuming. */
lua_State *lua_run_thread(lua_run *run);

/* Resumes a suspended run with nargs values pushed on its thread. */
void lua_run_resume(lua_run *run, int nargs);

/* One resource a binding ties to the request (strata.pg's pinned
 * connection): `cleanup(ptr)` runs when it is replaced or when the request
 * ends, however it ends.  NULL when none. */
void lua_run_set_resource(lua_run *run, void *ptr, void (*cleanup)(void *));
void *lua_run_resource(lua_run *run);

#endif
