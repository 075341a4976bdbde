/* lmod_stream.c: strata.stream, the streamed answer of the running
 * request, adapting request.h's request_stream_*; runtime.lua builds the
 * handler's `res` (res.start, res.write, res.sse) on it:
 *   stream.start(status, headers, default_content_type) -> true | nil, "closed"
 *   stream.write(bytes) -> true | nil, "closed" | nil, "slow client"
 *   stream.started() -> boolean
 *   stream.gone() -> boolean     the client went away (a handler that is
 *                                not streaming is stopped at its next step)
 * Back-pressure: when the connection's unsent bytes pass the conf's
 * stream_buffer_max, write suspends the handler until they fall below it;
 * if that takes longer than stream_timeout_ms the stream is cut (the
 * connection closes) and write answers "slow client". */
#include "lmod.h"

#include "lua_run.h"

#include "base/conf.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <string.h>

#define WAIT_META "strata.stream.wait"

/* A write waiting for the client to read: a full userdata on the writing
 * function's stack, alive exactly as long as the wait. */
typedef struct drain_wait {
    lua_run *run;
    struct event *ev;   /* owned; the timeout, and the wake-up (event_active) */
    int drained, gone;  /* why it woke; neither: the timeout */
} drain_wait;

static lua_run *current(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    if (!run)
        luaL_error(L, "res: only the request's handler can write its answer (not a coroutine of its own)");
    return run;
}

static void *context(lua_State *L, const char *key)
{
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

/* Adds the entries of the headers table at idx to r's answer.  [-0, +0, v] */
static void add_headers(lua_State *L, request *r, int idx)
{
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* stack: ..., key, value */
        size_t kn, vn;
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "res.start: header names and values must be strings");
        const char *k = lua_tolstring(L, -2, &kn);
        const char *v = lua_tolstring(L, -1, &vn);
        if (request_add_header(r, k, kn, v, vn) < 0)
            luaL_error(L, "res.start: invalid header %s (a token name, a value without CR or LF)", k);
        lua_pop(L, 1);
    }
}

/* stream.start(status, headers, default_content_type) -> true | nil,
 * "closed".  [-3, +1|2, v] */
static int l_start(lua_State *L)
{
    request *r = lua_run_request(current(L));
    lua_Integer status = luaL_checkinteger(L, 1);
    const char *ctype = luaL_optstring(L, 3, NULL);
    if (status < 200 || status > 599)
        return luaL_argerror(L, 1, "a status from 200 to 599");
    if (r->streaming)
        return luaL_error(L, "res.start: the answer has started already");
    if (r->client_gone) {
        luaL_pushfail(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    add_headers(L, r, 2);
    if (request_stream_start(r, (int)status, ctype) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stream.started() -> boolean.  [-0, +1, -] */
static int l_started(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    lua_pushboolean(L, run && lua_run_request(run)->streaming);
    return 1;
}

/* stream.gone() -> boolean.  [-0, +1, -] */
static int l_gone(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    lua_pushboolean(L, run && lua_run_request(run)->client_gone);
    return 1;
}

/* request's drained callback, inside the connection's write event: the
 * run resumes from the wait's own event, once that one has returned. */
static void on_drained(void *arg)
{
    drain_wait *w = arg;
    w->drained = 1;
    event_active(w->ev, EV_TIMEOUT, 0);
}

/* The wait's event: drained, gone, or the timeout. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drain_wait *w = arg;
    request *r = lua_run_request(w->run);
    request_stream_on_drain(r, 0, NULL, NULL);
    request_wait(r, NULL, NULL);
    event_del(w->ev);
    lua_run_resume(w->run, 0);
}

/* request_wait's cancel: the client went away.  Resumes at once, not from
 * the event: at shutdown the loop has stopped when connections close. */
static void on_gone(void *arg)
{
    drain_wait *w = arg;
    w->gone = 1;
    on_wake(-1, 0, w);
}

/* __gc of a wait.  [-1, +0, -] */
static int l_wait_gc(lua_State *L)
{
    drain_wait *w = luaL_checkudata(L, 1, WAIT_META);
    if (w->ev)
        event_free(w->ev);
    w->ev = NULL;
    return 0;
}

/* After the wait.  [-0, +1|2, -] */
static int write_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    drain_wait *w = lua_touserdata(L, (int)ctx);
    request *r = lua_run_request(w->run);
    event_free(w->ev);
    w->ev = NULL;
    if (w->drained && !r->client_gone) {
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_pushfail(L);
    if (!w->gone && !r->client_gone) {
        request_stream_abort(r); /* did not drain in time */
        lua_pushliteral(L, "slow client");
    } else {
        lua_pushliteral(L, "closed");
    }
    return 2;
}

/* stream.write(bytes) -> true | nil, "closed" | nil, "slow client".
 * [-1, +1|2, v] */
static int l_write(lua_State *L)
{
    lua_run *run = current(L);
    request *r = lua_run_request(run);
    size_t n;
    const char *p = luaL_checklstring(L, 1, &n);
    if (!r->streaming)
        return luaL_error(L, "res.write: the answer has not started");
    if (request_stream_write(r, p, n) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    const strata_conf *conf = context(L, "strata.conf");
    struct event_base *base = context(L, "strata.event_base");
    if (!conf || !base || request_stream_unsent(r) <= (size_t)conf->stream_buffer_max) {
        lua_pushboolean(L, 1);
        return 1;
    }
    drain_wait *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WAIT_META);
    w->run = run;
    struct timeval tv = {conf->stream_timeout_ms / 1000, (conf->stream_timeout_ms % 1000) * 1000};
    /* At the loop's lowest priority, as the transfers that feed streams:
     * a continuation of a stream waits behind the server's clients
     * (net/worker.c says why). */
    int lowest = event_base_get_npriorities(base) - 1;
    if (!(w->ev = event_new(base, -1, 0, on_wake, w)) || event_priority_set(w->ev, lowest > 0 ? lowest : 0) < 0 ||
        event_add(w->ev, &tv) < 0)
        return luaL_error(L, "res.write: cannot arm the write timeout");
    request_stream_on_drain(r, (size_t)conf->stream_buffer_max, on_drained, w);
    request_wait(r, on_gone, w);
    return lua_run_yield(L, run, write_k, (lua_KContext)lua_gettop(L));
}

static const luaL_Reg FUNCS[] = {
    {"gone", l_gone},
    {"start", l_start},
    {"started", l_started},
    {"write", l_write},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_stream(lua_State *L)
{
    if (luaL_newmetatable(L, WAIT_META)) {
        lua_pushcfunction(L, l_wait_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, FUNCS);
    return 1;
}
