/* lua_tick.c: see lua_tick.h.  Uses the request object (http/request.h)
 * and lua_host's runs; builds the request that a connection would have
 * parsed, with the claims of the service role. */
#include "lua_tick.h"

#include "base/clock.h"
#include "obs/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_PATH "/_strata/jobs/tick"
#define SERVICE_CLAIMS "{\"role\":\"service_role\"}"

struct lua_tick {
    request *r;          /* owned; reset and refilled for each tick */
    int running;         /* a tick's run has not called done yet */
    int orphaned;        /* lua_tick_free came while running: done frees */
    unsigned long count; /* ticks started, for the request id */
};

/* request_finish_fn: nothing answers a tick (the run's done does the work). */
static void no_finish(request *r, int status, const char *content_type, const char *body, size_t body_len)
{
    (void)r;
    (void)status;
    (void)content_type;
    (void)body;
    (void)body_len;
}

static void free_tick(lua_tick *t)
{
    request_free(t->r);
    free(t);
}

/* lua_done_fn: the tick's handler finished. */
static void tick_done(void *arg, request *r, int rc, const lua_response *rs)
{
    lua_tick *t = arg;
    if (rc != LUA_RUN_OK) {
        log_eventf("error", "jobs tick %s failed: %s", r->id, rs->error ? rs->error : "Lua error");
    } else if (rs->status >= 400) { /* 503: the database is away; the next tick tries again */
        int n = rs->body && rs->body_len < 300 ? (int)rs->body_len : rs->body ? 300 : 0;
        log_eventf("warn", "jobs tick %s answered %d: %.*s", r->id, rs->status, n, rs->body ? rs->body : "");
    }
    t->running = 0;
    if (t->orphaned)
        free_tick(t);
}

lua_tick *lua_tick_new(void)
{
    lua_tick *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (!(t->r = request_new())) {
        free(t);
        return NULL;
    }
    return t;
}

static void fill(lua_tick *t)
{
    request *r = t->r;
    request_reset(r);
    r->http.method = (http_str){"POST", 4};
    r->http.target = r->http.path = (http_str){TICK_PATH, sizeof TICK_PATH - 1};
    r->http.query = (http_str){NULL, 0};
    r->http.minor_version = 1;
    r->http.content_length = -1;
    snprintf(r->id, sizeof r->id, "jobs-tick-%lu", ++t->count);
    snprintf(r->remote, sizeof r->remote, "internal");
    r->started_us = mono_us();
    jwt_claims *c = &r->claims;
    snprintf(c->role, sizeof c->role, "service_role");
    memcpy(c->payload, SERVICE_CLAIMS, sizeof SERVICE_CLAIMS);
    c->payload_len = sizeof SERVICE_CLAIMS - 1;
    r->finish = no_finish;
}

int lua_tick_start(lua_tick *t, lua_gen *g)
{
    if (t->running)
        return 0;
    fill(t);
    t->running = 1;
    lua_gen_start(g, t->r, tick_done, t);
    return 1;
}

void lua_tick_free(lua_tick *t)
{
    if (!t)
        return;
    if (t->running)
        t->orphaned = 1;
    else
        free_tick(t);
}
