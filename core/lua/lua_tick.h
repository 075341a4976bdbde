/* lua_tick.h: the scripts' periodic work (lua/jobs.lua, run by
 * lua/strata/jobs.lua) started from C.  Each tick is one request of the
 * service role, POST /_strata/jobs/tick, run on a generation like any
 * handler's (db.query yields, strata.data, the instruction budget), with no
 * connection behind it: its answer goes to the log when it is an error.
 * One tick at a time: a tick asked while the previous one still runs is
 * skipped. */
#ifndef STRATA_LUA_TICK_H
#define STRATA_LUA_TICK_H

#include "lua_host.h"

typedef struct lua_tick lua_tick;

/* A ticker with its request; NULL when out of memory. */
lua_tick *lua_tick_new(void);

/* Starts one tick on g: 1 started (it may already have ended), 0 skipped
 * (the previous tick still runs). */
int lua_tick_start(lua_tick *t, lua_gen *g);

/* Frees t now, or when the tick it runs ends. */
void lua_tick_free(lua_tick *t);

#endif
