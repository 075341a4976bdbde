/* lua_host.h: Lua states built from a scripts snapshot ("generations"),
 * and running one request's handler on one.  The only unit besides the
 * lmod_*.c bindings that includes the Lua headers.
 *
 * A generation belongs to one thread: a worker builds its own from the
 * snapshot the reload coordinator published, and the coordinator builds a
 * throw-away one to validate a snapshot before publishing it. */
#ifndef STRATA_LUA_HOST_H
#define STRATA_LUA_HOST_H

#include "base/conf.h"
#include "http/http.h"
#include "auth/jwt.h"
#include "scripts.h"

#include <lua.h>
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

/* Makes `ptr` available to the bindings as a light userdata in the
 * registry under `key` (the worker's pool for strata.pg, say). */
void lua_gen_set_context(lua_gen *g, const char *key, void *ptr);

/* What a handler sees of the request; strings need not be NUL-terminated.
 * Everything is copied into Lua at the start: nothing here needs to
 * outlive lua_gen_start(). */
typedef struct lua_request {
    const http_request *http; /* method, path, query, headers */
    const char *body;
    size_t body_len;
    const char *id;           /* the request id, NUL-terminated */
    const char *remote_addr;  /* NUL-terminated */
    const jwt_claims *auth;   /* the verified caller (role "anon" without a token) */
} lua_request;

/* Called once per response header the handler set. */
typedef int (*lua_header_fn)(void *arg, const char *name, size_t name_len, const char *value,
                             size_t value_len);

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
    int error_status;         /* on LUA_RUN_ERROR: a status the error asked for (503), or 0 */
    const char *error_code;   /* and its code, or NULL */
    const char *error_message;
} lua_response;

enum { LUA_RUN_OK = 0, LUA_RUN_ERROR = 1 };

typedef struct lua_run lua_run;

/* Called exactly once per run, when the handler has finished: rc says how,
 * rs holds the answer (headers went to on_header just before). */
typedef void (*lua_done_fn)(void *arg, int rc, const lua_response *rs);

/* Runs the dispatcher for rq in a coroutine of g.  The handler may yield
 * inside strata calls (db.query); `done` is then called later from the
 * event that resumes it, otherwise before this returns.  `arg` must stay
 * valid until `done` is called. */
void lua_gen_start(lua_gen *g, const lua_request *rq, lua_header_fn on_header, lua_done_fn done,
                   void *arg);

/* For the bindings that suspend a handler (the async recipe: check the
 * arguments, start the operation, yield; the operation's completion
 * pushes the results on lua_run_thread() and calls lua_run_resume()). */

/* The run executing on L, or NULL when L is not a request's coroutine
 * (a script's own coroutine, or the validation at reload). */
lua_run *lua_run_current(lua_State *L);

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
