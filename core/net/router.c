/* router.c: who answers a request (see router.h).  Uses conn to reply,
 * readiness, reload and metrics for the built-in endpoints, lua_host for
 * everything else. */
#include "router.h"

#include "engine/limiter.h"
#include "obs/log.h"
#include "db/ratelimit_db.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int str_is(http_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int method_is(const conn *c, const char *m)
{
    return str_is(c->req.method, m);
}

static void reply_json(conn *c, int status, const buf *b, int route_id)
{
    reply r = {status, "application/json", b->p ? b->p : "", b->len, NULL, route_id, NULL};
    conn_reply(c, &r);
}

/* The matching allowed origin for this request, or NULL. */
static const char *allowed_origin(const conn *c, http_str *origin)
{
    const strata_conf *cf = c->w->sh->conf;
    const http_header *h = http_find_header(&c->req, "origin");
    if (!h || cf->cors_origin_count == 0)
        return NULL;
    *origin = h->value;
    for (int i = 0; i < cf->cors_origin_count; i++) {
        const char *o = cf->cors_origins[i];
        if (strcmp(o, "*") == 0 || (strlen(o) == h->value.n && memcmp(o, h->value.p, h->value.n) == 0))
            return o;
    }
    return NULL;
}

void router_cors_headers(const conn *c, buf *out)
{
    http_str origin;
    const char *o = allowed_origin(c, &origin);
    if (!o)
        return;
    const strata_conf *cf = c->w->sh->conf;
    int rc = buf_add_str(out, "Access-Control-Allow-Origin: ");
    if (strcmp(o, "*") == 0)
        rc |= buf_add_str(out, "*");
    else
        rc |= buf_add(out, origin.p, origin.n);
    rc |= buf_add_str(out, "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: ");
    rc |= buf_add_str(out, cf->cors_expose);
    rc |= buf_add_str(out, "\r\n");
    if (method_is(c, "OPTIONS")) {
        rc |= buf_add_str(out, "Access-Control-Allow-Methods: ");
        rc |= buf_add_str(out, cf->cors_methods);
        rc |= buf_add_str(out, "\r\nAccess-Control-Allow-Headers: ");
        rc |= buf_add_str(out, cf->cors_headers);
        rc |= buf_add_str(out, "\r\nAccess-Control-Max-Age: ");
        rc |= buf_add_u64(out, (uint64_t)cf->cors_max_age);
        rc |= buf_add_str(out, "\r\n");
    }
    if (rc)
        out->len = 0; /* out of memory: no CORS rather than half of it */
}

static void preflight(conn *c)
{
    http_str origin;
    if (!allowed_origin(c, &origin)) {
        conn_reply_error(c, 403, "cors_origin_not_allowed", "this Origin is not in cors_origins");
        return;
    }
    reply r = {204, NULL, "", 0, NULL, METRICS_ROUTE_PREFLIGHT, NULL};
    conn_reply(c, &r);
}

static void health(conn *c)
{
    static const char body[] = "{\"status\":\"ok\"}";
    reply r = {200, "application/json", body, sizeof body - 1, NULL, METRICS_ROUTE_HEALTH, NULL};
    conn_reply(c, &r);
}

/* Ready = the database answers with every migration applied, and scripts
 * are loaded.  A failed reload keeps it ready (the old scripts serve) but
 * shows the error. */
static void ready(conn *c)
{
    char db_reason[512], lua_error[1024];
    int db_ok = readiness_get(c->w->sh->ready, db_reason, sizeof db_reason);
    long gen = reloader_status(c->w->sh->reload, lua_error, sizeof lua_error);
    int engine_ok = !c->w->sh->feed || broker_feed_ready(c->w->sh->feed);
    int ok = db_ok && gen > 0 && engine_ok;
    buf *b = &c->w->scratch;
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
    rc |= buf_add_str(b, "}}");
    if (rc) {
        conn_reply_error(c, 500, "internal_error", "out of memory");
        return;
    }
    reply_json(c, ok ? 200 : 503, b, METRICS_ROUTE_READY);
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

static void metrics(conn *c)
{
    buf *b = &c->w->scratch;
    b->len = 0;
    if (metrics_render(b, c->w->sh->metrics, c->w->sh->nworkers) < 0 ||
        (c->w->sh->feed && broker_feed_metrics(c->w->sh->feed, b) < 0) || limiter_metrics(c->w->sh, b) < 0 ||
        (c->w->sh->ratelimit_db && ratelimit_db_metrics(c->w->sh->ratelimit_db, b) < 0)) {
        conn_reply_error(c, 500, "internal_error", "out of memory");
        return;
    }
    reply r = {200, "text/plain; version=0.0.4", b->p, b->len, NULL, METRICS_ROUTE_METRICS, NULL};
    conn_reply(c, &r);
}

/* Verifies the caller's token into w->claims; on failure answers 401 and
 * returns -1 (nothing else runs). */
static int authenticate(conn *c)
{
    worker *w = c->w;
    const http_header *a = http_find_header(&c->req, "authorization");
    const http_header *k = http_find_header(&c->req, "apikey");
    const char *tok;
    size_t len;
    int has = jwt_pick_token(a ? a->value.p : NULL, a ? a->value.n : 0, k ? k->value.p : NULL,
                             k ? k->value.n : 0, &tok, &len);
    jwt_claims_anon(&w->claims);
    if (has == 0)
        return 0;
    int rc = JWT_MALFORMED;
    char why[128] = "empty token";
    if (has > 0)
        rc = jwt_verify(tok, len, w->jwt_key, (int64_t)(w->now_ms / 1000), w->sh->conf->jwt_leeway_s,
                        &w->claims, why, sizeof why);
    if (rc == JWT_OK) {
        snprintf(c->uid, sizeof c->uid, "%s", w->claims.uid);
        return 0;
    }
    buf *e = &w->extra;
    e->len = 0;
    if (buf_add_str(e, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n") < 0)
        e->len = 0;
    conn_reply_error_with(c, 401, rc == JWT_EXPIRED ? "PGRST303" : "PGRST301", jwt_strerror(rc), e);
    e->len = 0;
    return -1;
}

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strncmp(addr, "::ffff:127.", 11) == 0;
}

/* The /admin/ endpoints: for the service role, or from the loopback
 * interface (the operator's own machine). */
static void admin(conn *c)
{
    http_str p = c->req.path;
    if (authenticate(c) < 0)
        return;
    if (strcmp(c->w->claims.role, "service_role") != 0 && !is_loopback(c->remote)) {
        conn_reply_error(c, 403, "forbidden", "admin endpoints need the service_role (or the loopback interface)");
        return;
    }
    buf *b = &c->w->scratch;
    b->len = 0;
    int status;
    if (str_is(p, "/admin/reload") && method_is(c, "POST"))
        status = reloader_run(c->w->sh->reload, "admin", b) == 0 ? 200 : 422;
    else if (str_is(p, "/admin/rollback") && method_is(c, "POST"))
        status = reloader_rollback(c->w->sh->reload, b) == 0 ? 200 : 409;
    else if (str_is(p, "/admin/reloads") && (method_is(c, "GET") || method_is(c, "HEAD")))
        status = reloader_history(c->w->sh->reload, b) == 0 ? 200 : 500;
    else if (str_is(p, "/admin/reload") || str_is(p, "/admin/rollback") || str_is(p, "/admin/reloads")) {
        conn_reply_error(c, 405, "method_not_allowed", "wrong method for this admin endpoint");
        return;
    } else {
        conn_reply_error(c, 404, "not_found", "no such admin endpoint");
        return;
    }
    reply_json(c, status, b, METRICS_ROUTE_ADMIN);
}

/* lua_header_fn: appends "Name: value\r\n" to the worker's extra
 * headers after checking it is safe. */
static int add_lua_header(void *arg, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    conn *c = arg;
    buf *out = &c->w->extra;
    if (name_len == 0 || name_len > 256 || value_len > 8192)
        return -1;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch == ':' || ch >= 127)
            return -1;
    }
    for (size_t i = 0; i < value_len; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return -1;
    if (name_len == 12 && strncasecmp(name, "content-type", 12) == 0)
        c->lua_content_type = 1;
    if (buf_reserve(out, name_len + value_len + 4) < 0)
        return -1;
    out->len += http_write_header(out->p + out->len, name_len + value_len + 4, name, name_len, value,
                                  value_len);
    return 0;
}

static void lua_failed(conn *c, const lua_response *rs)
{
    worker *w = c->w;
    metrics_add(&w->metrics->lua_errors, 1);
    if (rs->budget_exceeded)
        metrics_add(&w->metrics->lua_budget_exceeded, 1);
    buf f = {0};
    if (buf_add_str(&f, "\"request_id\":\"") == 0 && buf_add_str(&f, c->request_id) == 0 &&
        buf_add_str(&f, "\"") == 0 && buf_add(&f, "", 1) == 0)
        log_event("error", rs->error ? rs->error : "Lua error", f.p);
    buf_free(&f);
    w->extra.len = 0;
    if (rs->budget_exceeded) {
        conn_reply_error(c, 500, "lua_budget_exceeded", "the handler ran past lua_time_limit_ms and was stopped");
    } else if (rs->error_status) {
        /* A strata binding's error the handler let through ({status =
         * 503, ...} when the database is out of reach): its status. */
        if (rs->error_status == 503 && buf_add_str(&w->extra, "Retry-After: 1\r\n") < 0)
            w->extra.len = 0;
        conn_reply_error_with(c, rs->error_status, rs->error_code ? rs->error_code : "error",
                              rs->error_message ? rs->error_message : "error", &w->extra);
    } else {
        conn_reply_error(c, 500, "internal_error", "the handler raised an error; see the log for this request id");
    }
}

/* lua_done_fn: the handler finished (maybe after waiting for the database). */
static void lua_done(void *arg, int rc, const lua_response *rs)
{
    conn *c = arg;
    worker *w = c->w;
    if (rc != LUA_RUN_OK) {
        lua_failed(c, rs);
    } else {
        reply r = {rs->status, c->lua_content_type ? NULL : rs->content_type, rs->body, rs->body_len,
                   &w->extra, rs->route_id, NULL};
        conn_reply(c, &r);
    }
    w->extra.len = 0;
    c->lua_content_type = 0;
    if (!c->in_handler)
        conn_resume(c); /* it had waited: the connection goes on from here */
    else
        c->waiting = 0;
}

static void lua_route(conn *c, const char *body, size_t body_len)
{
    worker *w = c->w;
    if (!w->gen) {
        conn_reply_error(c, 503, "scripts_unavailable", "the Lua scripts failed to load; see /ready");
        return;
    }
    if (authenticate(c) < 0)
        return;
    lua_request rq = {&c->req, body, body_len, c->request_id, c->remote, &w->claims};
    w->extra.len = 0;
    c->lua_content_type = 0;
    c->waiting = 1;
    lua_gen_start(w->gen, &rq, add_lua_header, lua_done, c);
}

void router_handle(conn *c, const char *body, size_t body_len)
{
    http_str p = c->req.path;
    int get = method_is(c, "GET") || method_is(c, "HEAD");
    int builtin = str_is(p, "/health") || str_is(p, "/ready") || str_is(p, "/metrics");
    if (method_is(c, "OPTIONS") && http_find_header(&c->req, "access-control-request-method"))
        preflight(c);
    else if (builtin && !get)
        conn_reply_error(c, 405, "method_not_allowed", "only GET and HEAD are allowed here");
    else if (get && str_is(p, "/health"))
        health(c);
    else if (get && str_is(p, "/ready"))
        ready(c);
    else if (get && str_is(p, "/metrics"))
        metrics(c);
    else if (p.n >= 7 && memcmp(p.p, "/admin/", 7) == 0 &&
             !(p.n >= 14 && memcmp(p.p, "/admin/policy/", 14) == 0)) /* policy tools are Lua */
        admin(c);
    else
        lua_route(c, body, body_len);
}
