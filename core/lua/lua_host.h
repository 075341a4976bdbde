/* lua_host.h: Lua states built from a scripts snapshot ("generations"),
 * and running one request's handler on one — the side the worker and the
 * reload coordinator use, free of Lua's headers.  The bindings' side (a
 * run's coroutine, suspending and resuming it) is lua_run.h.
 *
 * A generation belongs to one thread: a worker builds its own from the
 * snapshot the reload coordinator published, and the coordinator builds a
 * throw-away one to validate a snapshot before publishing it. */
#ifndef STRATA_LUA_HOST_H
#define STRATA_LUA_HOST_H

#include "scripts.h"

#include "base/conf.h"
#include "http/request.h"

#include <stddef.h>

typedef struct lua_gen lua_gen;

/* Builds a Lua state from s (taking a reference to it), runs
 * strata.runtime's boot: every file compiles, routes load without
 * collisions, policies and validators have the right shape and their
 * examples pass.  conf's lua_time_limit_ms bounds each slice of a handler
 * (the boot has an instruction budget); conf is visible to strata.config and must outlive the state.
 * NULL with the failing file, line and message in err when anything fails. */
lua_gen *lua_gen_new(scripts *s, const strata_conf *conf, char *err, size_t errlen);

/* The snapshot's generation number. */
long lua_gen_generation(const lua_gen *g);

/* Marks g replaced: it is closed once no request runs on it (maybe now). */
void lua_gen_retire(lua_gen *g);

/* 1, once, when a handler stopped by lua_memory_limit_mb left g near
 * its limit even after a full collection (it kept what it grew, in a
 * global say): g should be replaced by a fresh state. */
int lua_gen_take_spoiled(lua_gen *g);

/* What identifies g's work elsewhere (the outbound transfers its runs
 * started, cancelled when g is replaced). */
const void *lua_gen_tag(const lua_gen *g);

/* Makes `ptr` available to the bindings as a light userdata in the
 * registry under `key` (the worker's pool for strata.pg, say). */
void lua_gen_set_context(lua_gen *g, const char *key, void *ptr);

/* The handler's answer.  The strings live in the Lua state: they are
 * valid only during the done callback. */
typedef struct lua_response {
    int status;
    const char *body;
    size_t body_len;
    const char *content_type; /* NULL: none */
    int route_id;             /* metrics id of the matched route's pattern */
    const char *error;        /* on LUA_RUN_ERROR: the message with its traceback */
    int budget_exceeded;      /* on LUA_RUN_ERROR: the instruction limit stopped it */
    int client_gone;          /* on LUA_RUN_ERROR: stopped because the client went away */
    int error_status;         /* on LUA_RUN_ERROR: a status the error asked for (503), or 0 */
    const char *error_code;   /* and its code, or NULL */
    const char *error_message;
} lua_response;

enum { LUA_RUN_OK = 0, LUA_RUN_ERROR = 1 };

/* Called exactly once per run, when the handler has finished: rc says
 * how, rs holds the answer (its headers are in r->resp_headers already). */
typedef void (*lua_done_fn)(void *arg, request *r, int rc, const lua_response *rs);

/* Runs the dispatcher for r in a coroutine of g.  The handler sees r
 * through `req`, whose fields are built when first read; it may yield
 * inside strata calls (db.query), and `done` is then called later from
 * the event that resumes it, otherwise before this returns.  `arg` and r
 * must stay valid until `done` is called. */
void lua_gen_start(lua_gen *g, request *r, lua_done_fn done, void *arg);

#endif
