/* lua_host.h: Lua states built from a scripts snapshot ("generations"),
 * and running one request's handler on one.  The only unit besides the
 * lmod_*.c bindings that includes the Lua headers.
 *
 * A generation belongs to one thread: a worker builds its own from the
 * snapshot the reload coordinator published, and the coordinator builds a
 * throw-away one to validate a snapshot before publishing it. */
#ifndef STRATA_LUA_HOST_H
#define STRATA_LUA_HOST_H

#include "http.h"
#include "scripts.h"

#include <stddef.h>

typedef struct lua_gen lua_gen;

/* Builds a Lua state from s (taking a reference to it), runs
 * strata.runtime's boot: every file compiles, routes load without
 * collisions, policies and validators have the right shape and their
 * examples pass.  instruction_limit bounds each request (and the boot).
 * NULL with the failing file, line and message in err when anything fails. */
lua_gen *lua_gen_new(scripts *s, long instruction_limit, char *err, size_t errlen);

/* The snapshot's generation number. */
long lua_gen_generation(const lua_gen *g);

/* Marks g replaced: it is closed once no request runs on it (maybe now). */
void lua_gen_retire(lua_gen *g);

/* What a handler sees of the request; strings need not be NUL-terminated. */
typedef struct lua_request {
    const http_request *http; /* method, path, query, headers */
    const char *body;
    size_t body_len;
    const char *id;           /* the request id, NUL-terminated */
    const char *remote_addr;  /* NUL-terminated */
} lua_request;

/* Called once per response header the handler set. */
typedef int (*lua_header_fn)(void *arg, const char *name, size_t name_len, const char *value,
                             size_t value_len);

/* The handler's answer.  The strings live in the Lua state: they stay
 * valid until lua_gen_finish(). */
typedef struct lua_response {
    int status;
    const char *body;
    size_t body_len;
    const char *content_type; /* NULL: none */
    int route_id;             /* metrics id of the matched route's pattern */
    const char *error;        /* on LUA_RUN_ERROR: the message with its traceback */
    int budget_exceeded;      /* on LUA_RUN_ERROR: the instruction limit stopped it */
} lua_response;

enum { LUA_RUN_OK = 0, LUA_RUN_ERROR = 1 };

/* Runs the dispatcher for rq in a coroutine of g.  On LUA_RUN_OK, rs holds
 * the answer and each header was passed to on_header (a non-zero return
 * from it turns the run into an error).  Either way, call lua_gen_finish()
 * once rs has been used. */
int lua_gen_run(lua_gen *g, const lua_request *rq, lua_response *rs, lua_header_fn on_header,
                void *arg);

/* Releases what lua_gen_run() held; may close a retired g. */
void lua_gen_finish(lua_gen *g);

#endif
