/* router.c: who answers a request (see router.h).  Uses the worker's
 * shared state for the built-in endpoints (readiness, reload, metrics),
 * http/cors for the preflight, and the Lua host for everything else. */
#include "router.h"

#include "worker.h"

#include "db/log_db.h"
#include "db/ratelimit_db.h"
#include "engine/limiter.h"
#include "http/cors.h"
#include "obs/log.h"
#include "obs/warnings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_is(http_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int method_is(const request *r, const char *m)
{
    return str_is(r->http.method, m);
}

static void reply_json(request *r, int status, const buf *b, int route_id)
{
    r->route_id = route_id;
    request_reply(r, status, "application/json", b->p ? b->p : "", b->len);
}

static void preflight(worker *w, request *r)
{
    if (!cors_allowed(w->sh->conf, &r->http)) {
        request_reply_error(r, 403, "cors_origin_not_allowed", "this Origin is not in cors_origins");
        return;
    }
    r->route_id = METRICS_ROUTE_PREFLIGHT;
    request_reply(r, 204, NULL, "", 0);
}

static void health(request *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    r->route_id = METRICS_ROUTE_HEALTH;
    request_reply(r, 200, "application/json", body, sizeof body - 1);
}

/* Ready = the database answers with every migration applied, and scripts
 * are loaded.  A failed reload keeps it ready (the old scripts serve) but
 * shows the error; so do warnings (obs/warnings.h). */
static void ready(worker *w, request *r)
{
    char db_reason[512], lua_error[1024];
    int db_ok = readiness_get(w->sh->ready, db_reason, sizeof db_reason);
    long gen = reloader_status(w->sh->reload, lua_error, sizeof lua_error);
    int engine_ok = !w->sh->feed || broker_feed_ready(w->sh->feed);
    int ok = db_ok && gen > 0 && engine_ok;
    buf *b = &r->scratch;
    b->len = 0;
    int rc = buf_add_str(b, ok ? "{\"status\":\"ready\"" : "{\"status\":\"unavailable\"");
    if (!ok) {
        const char *why = !db_ok ? db_reason : gen <= 0 ? "Lua scripts not loaded" : "broker engine loading";
        rc |= buf_add_str(b, ",\"reason\":\"");
        rc |= buf_add_json_escaped(b, why, strlen(why));
        rc |= buf_add_str(b, "\"");
    }
    rc |= buf_add_str(b, ",\"lua\":{\"generation\":");
    rc |= buf_add_u64(b, (uint64_t)(gen > 0 ? gen : 0));
    if (lua_error[0]) {
        rc |= buf_add_str(b, ",\"error\":\"");
        rc |= buf_add_json_escaped(b, lua_error, strlen(lua_error));
        rc |= buf_add_str(b, "\"");
    }
    rc |= buf_add_str(b, "},\"warnings\":");
    rc |= warnings_render_json(b);
    rc |= buf_add_str(b, "}");
    if (rc) {
        request_reply_error(r, 500, "internal_error", "out of memory");
        return;
    }
    reply_json(r, ok ? 200 : 503, b, METRICS_ROUTE_READY);
}

/* The rate counters' gauges (the limiter is process-wide). */
static int limiter_metrics(const worker_shared *sh, buf *out)
{
    if (!sh->limiter)
        return 0;
    limiter_stats st;
    limiter_stats_get(sh->limiter, &st);
    char text[1024];
    snprintf(text, sizeof text,
             "# HELP strata_ratelimit_keys Rate counters held.\n"
             "# TYPE strata_ratelimit_keys gauge\nstrata_ratelimit_keys %llu\n"
             "# HELP strata_ratelimit_bytes Memory of the rate counters.\n"
             "# TYPE strata_ratelimit_bytes gauge\nstrata_ratelimit_bytes %llu\n"
             "# HELP strata_ratelimit_evictions_total Counters evicted because the table was full.\n"
             "# TYPE strata_ratelimit_evictions_total counter\nstrata_ratelimit_evictions_total %llu\n"
             "# HELP strata_ratelimit_evictions_active_total Evicted counters that were still limiting.\n"
             "# TYPE strata_ratelimit_evictions_active_total counter\nstrata_ratelimit_evictions_active_total %llu\n",
             (unsigned long long)st.keys, (unsigned long long)st.bytes, (unsigned long long)st.evictions,
             (unsigned long long)st.evictions_active);
    return buf_add_str(out, text);
}

static void metrics(worker *w, request *r)
{
    const worker_shared *sh = w->sh;
    buf *b = &r->scratch;
    b->len = 0;
    if (metrics_render(b, sh->metrics, sh->nworkers) < 0 || (sh->feed && broker_feed_metrics(sh->feed, b) < 0) ||
        limiter_metrics(sh, b) < 0 || warnings_render_metrics(b) < 0 ||
        (sh->ratelimit_db && ratelimit_db_metrics(sh->ratelimit_db, b) < 0) ||
        (sh->log_db && log_db_metrics(sh->log_db, b) < 0) || revoked_feed_metrics(sh->revoked, b) < 0) {
        request_reply_error(r, 500, "internal_error", "out of memory");
        return;
    }
    r->route_id = METRICS_ROUTE_METRICS;
    request_reply(r, 200, "text/plain; version=0.0.4", b->p, b->len);
}

/* Verifies the caller's token into r->claims; on failure answers 401 and
 * returns -1 (nothing else runs). */
static int authenticate(worker *w, request *r)
{
    char why[128];
    int rc = request_authenticate(r, w->jwt_key, w->jwt_cache, (int64_t)(w->env.now_ms / 1000),
                                  w->sh->conf->jwt_leeway_s, why, sizeof why);
    const char *message = jwt_strerror(rc);
    /* A token of an ended session (logout, refresh-token reuse, a ban) is
     * refused at once, from memory.  /auth/v1 answers those itself, in
     * GoTrue's words (its user endpoints read the session). */
    http_str p = r->http.path;
    if (rc == JWT_OK && r->claims.session_id[0] && !(p.n >= 9 && memcmp(p.p, "/auth/v1/", 9) == 0) &&
        revoked_feed_has(w->sh->revoked, r->claims.session_id, strlen(r->claims.session_id))) {
        jwt_claims_anon(&r->claims);
        rc = JWT_MALFORMED;
        message = "session ended";
    }
    const char *aud = w->sh->conf->jwt_aud;
    if (rc == JWT_OK && r->claims.payload_len && aud && *aud && jwt_check_aud(&r->claims, aud) < 0) {
        jwt_claims_anon(&r->claims);
        rc = JWT_MALFORMED;
        message = "token audience not accepted (jwt_aud)";
    }
    if (rc == JWT_OK)
        return 0;
    static const char www[] = "Bearer error=\"invalid_token\"";
    if (request_add_header(r, "WWW-Authenticate", 16, www, sizeof www - 1) < 0)
        log_eventf("warn", "request %s: cannot add WWW-Authenticate", r->id);
    request_reply_error(r, 401, rc == JWT_EXPIRED ? "PGRST303" : "PGRST301", message);
    return -1;
}

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 || strncmp(addr, "::ffff:127.", 11) == 0;
}

/* An admin reload runs on its own thread (a worker's loop never builds a
 * Lua generation); its record comes back to the worker's thread. */
typedef struct reload_job {
    worker *w;
    request *r;
    int rc;
    char *record;  /* owned; the attempt's JSON, NULL when out of memory */
} reload_job;

/* worker_task_fn: on the worker's thread. */
static void reload_answer(worker *w, void *arg)
{
    (void)w;
    reload_job *job = arg;
    if (!job->record) {
        request_reply_error(job->r, 500, "internal_error", "out of memory");
    } else {
        job->r->route_id = METRICS_ROUTE_ADMIN;
        request_reply(job->r, job->rc == 0 ? 200 : 422, "application/json", job->record, strlen(job->record));
    }
    free(job->record);
    free(job);
}

/* reload_done_fn: on the reload's thread. */
static void reload_done(void *arg, int rc, const char *record)
{
    reload_job *job = arg;
    job->rc = rc;
    job->record = strdup(record ? record : "{}");
    worker_post(job->w, reload_answer, job);
}

static void admin_reload(worker *w, request *r)
{
    reload_job *job = calloc(1, sizeof *job);
    if (!job) {
        request_reply_error(r, 500, "internal_error", "out of memory");
        return;
    }
    job->w = w;
    job->r = r;
    if (reloader_run_async(w->sh->reload, "admin", reload_done, job) < 0) {
        free(job);
        request_reply_error(r, 503, "reload_unavailable", "cannot start a reload now");
    }
}

/* The /admin/ endpoints: for the service role, or from the loopback
 * interface (the operator's own machine). */
static void admin(worker *w, request *r)
{
    http_str p = r->http.path;
    if (authenticate(w, r) < 0)
        return;
    if (strcmp(r->claims.role, "service_role") != 0 && !is_loopback(r->remote)) {
        request_reply_error(r, 403, "forbidden", "admin endpoints need the service_role (or the loopback interface)");
        return;
    }
    int get = method_is(r, "GET") || method_is(r, "HEAD");
    buf *b = &r->scratch;
    b->len = 0;
    if (str_is(p, "/admin/reload") && method_is(r, "POST"))
        admin_reload(w, r);
    else if (str_is(p, "/admin/rollback") && method_is(r, "POST"))
        reply_json(r, reloader_rollback(w->sh->reload, b) == 0 ? 200 : 409, b, METRICS_ROUTE_ADMIN);
    else if (str_is(p, "/admin/reloads") && get)
        reply_json(r, reloader_history(w->sh->reload, b) == 0 ? 200 : 500, b, METRICS_ROUTE_ADMIN);
    else if (str_is(p, "/admin/reload") || str_is(p, "/admin/rollback") || str_is(p, "/admin/reloads"))
        request_reply_error(r, 405, "method_not_allowed", "wrong method for this admin endpoint");
    else
        request_reply_error(r, 404, "not_found", "no such admin endpoint");
}

/* A 503 or 504 tells the client when to come back (a database restart or
 * stall heals by itself): Retry-After: 1 unless the handler set its own. */
static void default_retry_after(request *r)
{
    static const char name[] = "retry-after:";
    const char *p = r->resp_headers.p, *end = p ? p + r->resp_headers.len : NULL;
    while (p && p < end) {
        if ((size_t)(end - p) >= sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0)
            return;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : NULL;
    }
    if (request_add_header(r, "Retry-After", 11, "1", 1) < 0)
        log_eventf("warn", "request %s: cannot add Retry-After", r->id);
}

static void lua_failed(worker *w, request *r, const lua_response *rs)
{
    /* A streamed answer's head is out: no error answer can follow.  Cut
     * the stream (no last chunk), so the client sees it broken, not whole. */
    if (r->streaming)
        request_stream_abort(r);
    if (rs->client_gone) { /* not the handler's fault, and nobody reads the answer */
        log_eventf("info", "request %s: handler stopped, the client went away", r->id);
        request_reply_error(r, 499, "client_closed_request", "the client went away");
        return;
    }
    metrics_add(&w->metrics->lua_errors, 1);
    if (rs->budget_exceeded)
        metrics_add(&w->metrics->lua_budget_exceeded, 1);
    buf f = {0};
    if (buf_add_str(&f, "\"request_id\":\"") == 0 && buf_add_str(&f, r->id) == 0 && buf_add_str(&f, "\"") == 0 &&
        buf_add(&f, "", 1) == 0)
        log_event("error", rs->error ? rs->error : "Lua error", f.p);
    buf_free(&f);
    r->resp_headers.len = 0; /* what the handler set does not go with an error */
    r->has_content_type = 0;
    r->error_detail = rs->error;
    r->error_category = rs->budget_exceeded ? "lua_budget_exceeded" : rs->error_code ? rs->error_code : "lua_error";
    if (rs->budget_exceeded) {
        request_reply_error(r, 500, "lua_budget_exceeded", "the handler ran past lua_time_limit_ms and was stopped");
    } else if (rs->error_status) {
        /* A strata binding's error the handler let through ({status =
         * 503, ...} when the database is out of reach): its status. */
        if (rs->error_status == 503 || rs->error_status == 504)
            default_retry_after(r);
        request_reply_error(r, rs->error_status, rs->error_code ? rs->error_code : "error",
                            rs->error_message ? rs->error_message : "error");
    } else {
        request_reply_error(r, 500, "internal_error", "the handler raised an error; see the log for this request id");
    }
}

/* lua_done_fn: the handler finished (maybe after waiting). */
static void lua_done(void *arg, request *r, int rc, const lua_response *rs)
{
    worker *w = arg;
    if (rc != LUA_RUN_OK) {
        lua_failed(w, r, rs);
        return;
    }
    r->route_id = rs->route_id;
    if (rs->status == 503 || rs->status == 504)
        default_retry_after(r);
    request_reply(r, rs->status, rs->content_type, rs->body, rs->body_len);
}

/* reload_done_fn of a replacement: the reload's record is logged by the reloader. */
static void replaced(void *arg, int rc, const char *record)
{
    (void)arg;
    (void)rc;
    (void)record;
}

static void lua_route(worker *w, request *r)
{
    if (!w->gen) {
        request_reply_error(r, 503, "scripts_unavailable", "the Lua scripts failed to load; see /ready");
        return;
    }
    /* A state that keeps what a handler grew past lua_memory_limit_mb is
     * replaced by a reload (built off this loop); it serves until then. */
    if (lua_gen_take_spoiled(w->gen)) {
        log_eventf("warn", "a Lua state stays near lua_memory_limit_mb after a collection: reloading the scripts");
        if (reloader_run_async(w->sh->reload, "lua_memory_limit", replaced, NULL) < 0)
            log_eventf("error", "cannot start the reload that replaces a full Lua state");
    }
    if (authenticate(w, r) < 0)
        return;
    lua_gen_start(w->gen, r, lua_done, w);
}

void router_handle(request *r, void *arg)
{
    worker *w = arg;
    http_str p = r->http.path;
    int get = method_is(r, "GET") || method_is(r, "HEAD");
    int builtin = str_is(p, "/health") || str_is(p, "/ready") || str_is(p, "/metrics");
    if (method_is(r, "OPTIONS") && http_find_header(&r->http, "access-control-request-method"))
        preflight(w, r);
    else if (builtin && !get)
        request_reply_error(r, 405, "method_not_allowed", "only GET and HEAD are allowed here");
    else if (get && str_is(p, "/health"))
        health(r);
    else if (get && str_is(p, "/ready"))
        ready(w, r);
    else if (get && str_is(p, "/metrics"))
        metrics(w, r);
    else if (p.n >= 7 && memcmp(p.p, "/admin/", 7) == 0 &&
             !(p.n >= 14 && memcmp(p.p, "/admin/policy/", 14) == 0)) /* policy tools are Lua */
        admin(w, r);
    else
        lua_route(w, r);
}
