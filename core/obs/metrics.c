/* metrics.c: per-worker counters and their Prometheus rendering (see
 * metrics.h).  Uses buf. */
#include "metrics.h"

#include "ai_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic int64_t metrics_open_connections;
_Atomic uint64_t metrics_refused_connections;
_Atomic uint64_t metrics_reloads_ok;
_Atomic uint64_t metrics_auth[METRICS_AUTH_EVENTS];

static const char *const AUTH_EVENTS[METRICS_AUTH_EVENTS] = {
    "signin", "signin_failed", "signup", "refresh", "refresh_reused", "logout",
};

int metrics_auth_event(const char *name)
{
    for (int i = 0; i < METRICS_AUTH_EVENTS; i++)
        if (strcmp(name, AUTH_EVENTS[i]) == 0)
            return i;
    return -1;
}

static int render_auth(buf *out)
{
    int rc = buf_add_str(out, "# HELP strata_auth_events_total /auth/v1 sign-ins (ok and failed), sign-ups, "
                              "refreshes, refresh-token reuses and logouts.\n"
                              "# TYPE strata_auth_events_total counter\n");
    for (int i = 0; i < METRICS_AUTH_EVENTS; i++) {
        char line[128];
        snprintf(line, sizeof line, "strata_auth_events_total{event=\"%s\"} %llu\n", AUTH_EVENTS[i],
                 (unsigned long long)atomic_load(&metrics_auth[i]));
        rc |= buf_add_str(out, line);
    }
    return rc;
}
_Atomic uint64_t metrics_reloads_error;
_Atomic int64_t metrics_lua_generation;

static const double BOUNDS[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,   5,    10};

static pthread_mutex_t routes_lock = PTHREAD_MUTEX_INITIALIZER;
static char *routes[METRICS_MAX_ROUTES]; /* owned, never freed: labels live as long as the process */
static _Atomic int nroutes;

int metrics_route_id(const char *route)
{
    int id = -1;
    pthread_mutex_lock(&routes_lock);
    int n = atomic_load(&nroutes);
    for (int i = 0; i < n; i++)
        if (strcmp(routes[i], route) == 0) {
            id = i;
            break;
        }
    if (id < 0 && n < METRICS_MAX_ROUTES && (routes[n] = strdup(route))) {
        id = n;
        atomic_store(&nroutes, n + 1);
    }
    pthread_mutex_unlock(&routes_lock);
    return id;
}

void metrics_init(void)
{
    static const char *const fixed[] = {"(none)", "/health", "/ready", "/metrics", "/admin", "(preflight)"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        metrics_route_id(fixed[i]);
}

void metrics_request(metrics_worker *m, int route_id, int status, uint64_t duration_us)
{
    if (route_id < 0 || status < 100 || status > 999)
        route_id = METRICS_ROUTE_NONE;
    uint32_t key = ((uint32_t)(route_id + 1) << 10) | (uint32_t)status;
    uint32_t h = (key * 2654435761u) & (METRICS_SLOTS - 1);
    for (int probe = 0; probe < 16; probe++) {
        metrics_slot *s = &m->slots[(h + (uint32_t)probe) & (METRICS_SLOTS - 1)];
        uint32_t k = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (k == 0) {
            atomic_store_explicit(&s->key, key, memory_order_release);
            k = key;
        }
        if (k == key) {
            metrics_add(&s->count, 1);
            goto timed;
        }
    }
    metrics_add(&m->overflow, 1);
timed:;
    double secs = (double)duration_us / 1e6;
    int b = 0;
    while (b < METRICS_BUCKETS && secs > BOUNDS[b])
        b++;
    metrics_add(&m->bucket[b], 1);
    metrics_add(&m->duration_us, duration_us);
}

static uint64_t sum(metrics_worker *const *w, int n, size_t offset)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += atomic_load_explicit((_Atomic uint64_t *)((char *)w[i] + offset), memory_order_relaxed);
    return total;
}

static int render_requests(buf *out, metrics_worker *const *w, int n)
{
    int rc = buf_add_str(out, "# HELP strata_http_requests_total Requests answered, by route and status.\n"
                              "# TYPE strata_http_requests_total counter\n");
    /* Sum each (route, status) over the workers: small, so quadratic is fine. */
    uint32_t *keys = calloc((size_t)n * METRICS_SLOTS, sizeof *keys);
    uint64_t *counts = calloc((size_t)n * METRICS_SLOTS, sizeof *counts);
    size_t nk = 0;
    if (!keys || !counts)
        rc = -1;
    for (int i = 0; rc == 0 && i < n; i++)
        for (int s = 0; s < METRICS_SLOTS; s++) {
            uint32_t k = atomic_load_explicit(&w[i]->slots[s].key, memory_order_acquire);
            if (!k)
                continue;
            uint64_t c = atomic_load_explicit(&w[i]->slots[s].count, memory_order_relaxed);
            size_t j = 0;
            while (j < nk && keys[j] != k)
                j++;
            if (j == nk)
                keys[nk++] = k;
            counts[j] += c;
        }
    int nr = atomic_load(&nroutes);
    pthread_mutex_lock(&routes_lock);
    for (size_t j = 0; rc == 0 && j < nk; j++) {
        int route = (int)(keys[j] >> 10) - 1;
        rc |= buf_add_str(out, "strata_http_requests_total{route=\"");
        const char *label = route >= 0 && route < nr ? routes[route] : "(none)";
        rc |= buf_add_json_escaped(out, label, strlen(label));
        rc |= buf_add_str(out, "\",status=\"");
        rc |= buf_add_u64(out, keys[j] & 1023);
        rc |= buf_add_str(out, "\"} ");
        rc |= buf_add_u64(out, counts[j]);
        rc |= buf_add_str(out, "\n");
    }
    pthread_mutex_unlock(&routes_lock);
    free(keys);
    free(counts);
    return rc;
}

int metrics_render_histogram(buf *out, const char *name, const char *help, const double *bounds, size_t nbounds,
                             const uint64_t *counts, double sum_s)
{
    char line[256];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    int rc = buf_add_str(out, line);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= nbounds; b++) {
        cumulative += counts[b];
        if (b < nbounds)
            snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b], (unsigned long long)cumulative);
        else
            snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
        rc |= buf_add_str(out, line);
    }
    snprintf(line, sizeof line, "%s_sum %.6f\n%s_count %llu\n", name, sum_s, name, (unsigned long long)cumulative);
    return rc | buf_add_str(out, line);
}

static int render_histogram(buf *out, metrics_worker *const *w, int n)
{
    uint64_t counts[METRICS_BUCKETS + 1];
    for (int b = 0; b <= METRICS_BUCKETS; b++)
        counts[b] = sum(w, n, offsetof(metrics_worker, bucket) + (size_t)b * sizeof(_Atomic uint64_t));
    return metrics_render_histogram(out, "strata_http_request_duration_seconds",
                                    "Time from a request's first byte to its response.", BOUNDS, METRICS_BUCKETS,
                                    counts, (double)sum(w, n, offsetof(metrics_worker, duration_us)) / 1e6);
}

static int64_t gauge(metrics_worker *const *w, int n, size_t offset)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += atomic_load_explicit((_Atomic int64_t *)((char *)w[i] + offset), memory_order_relaxed);
    return total;
}

#define POOL(f) (offsetof(metrics_worker, pool) + offsetof(pool_stats, f))

static int render_pool(buf *out, metrics_worker *const *w, int n)
{
    char text[3072];
    int len = snprintf(text, sizeof text,
        "# HELP strata_db_connections Database connections of the pools, by state.\n"
        "# TYPE strata_db_connections gauge\n"
        "strata_db_connections{state=\"open\"} %lld\n"
        "strata_db_connections{state=\"busy\"} %lld\n"
        "strata_db_connections{state=\"idle\"} %lld\n"
        "strata_db_connections{state=\"connecting\"} %lld\n"
        "# HELP strata_db_queue_length Requests waiting for a database connection.\n"
        "# TYPE strata_db_queue_length gauge\n"
        "strata_db_queue_length %lld\n"
        "# HELP strata_db_waits_total Requests that had to wait for a connection.\n"
        "# TYPE strata_db_waits_total counter\n"
        "strata_db_waits_total %llu\n"
        "# HELP strata_db_wait_timeouts_total Requests that gave up waiting (503).\n"
        "# TYPE strata_db_wait_timeouts_total counter\n"
        "strata_db_wait_timeouts_total %llu\n"
        "# HELP strata_db_queue_rejected_total Requests refused because the wait queue was full.\n"
        "# TYPE strata_db_queue_rejected_total counter\n"
        "strata_db_queue_rejected_total %llu\n"
        "# HELP strata_db_reconnects_total Connections lost and replaced.\n"
        "# TYPE strata_db_reconnects_total counter\n"
        "strata_db_reconnects_total %llu\n"
        "# HELP strata_db_connect_failures_total Connection attempts that failed.\n"
        "# TYPE strata_db_connect_failures_total counter\n"
        "strata_db_connect_failures_total %llu\n"
        "# HELP strata_db_query_duration_seconds Time from sending a query to its result.\n"
        "# TYPE strata_db_query_duration_seconds histogram\n",
        (long long)gauge(w, n, POOL(open)), (long long)gauge(w, n, POOL(busy)),
        (long long)gauge(w, n, POOL(idle)), (long long)gauge(w, n, POOL(connecting)),
        (long long)gauge(w, n, POOL(queued)), (unsigned long long)sum(w, n, POOL(waits)),
        (unsigned long long)sum(w, n, POOL(timeouts)), (unsigned long long)sum(w, n, POOL(rejected)),
        (unsigned long long)sum(w, n, POOL(reconnects)), (unsigned long long)sum(w, n, POOL(failures)));
    static const char *const LE[8] = {"0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"};
    uint64_t cum = 0;
    for (int b = 0; b < 8 && len > 0 && (size_t)len < sizeof text; b++) {
        cum += sum(w, n, POOL(query_bucket) + (size_t)b * sizeof(_Atomic uint64_t));
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "strata_db_query_duration_seconds_bucket{le=\"%s\"} %llu\n", LE[b], (unsigned long long)cum);
    }
    if (len > 0 && (size_t)len < sizeof text)
        snprintf(text + len, sizeof text - (size_t)len,
                 "strata_db_query_duration_seconds_sum %.6f\nstrata_db_query_duration_seconds_count %llu\n",
                 (double)sum(w, n, POOL(query_us)) / 1e6, (unsigned long long)sum(w, n, POOL(queries)));
    return buf_add_str(out, text);
}

const char *const hc_code_names[HC_NCODES] = {"ok", "timeout", "connect", "dns", "tls", "too_large",
                                               "cancelled", "http", "url", "internal"};

static const double HC_BOUNDS[HC_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};

void http_client_stats_end(http_client_stats *s, int code, uint64_t duration_us)
{
    double secs = (double)duration_us / 1e6;
    int b = 0;
    while (b < HC_BUCKETS && secs > HC_BOUNDS[b])
        b++;
    metrics_add(&s->bucket[b], 1);
    metrics_add(&s->duration_us, duration_us);
    metrics_add(&s->results[code >= 0 && code < HC_NCODES ? code : HC_INTERNAL], 1);
    atomic_store_explicit(&s->open, atomic_load_explicit(&s->open, memory_order_relaxed) - 1, memory_order_relaxed);
}

#define HC(f) (offsetof(metrics_worker, http_client) + offsetof(http_client_stats, f))

/* requests_total{result} (ok or an error code), errors_total{code}, the
 * latency histogram and the open transfers. */
static int render_http_client(buf *out, metrics_worker *const *w, int n)
{
    char line[160];
    int rc = buf_add_str(out, "# HELP strata_http_client_requests_total Outbound HTTP transfers finished, by result.\n"
                              "# TYPE strata_http_client_requests_total counter\n");
    uint64_t total = 0, errors[HC_NCODES];
    for (int c = 0; c < HC_NCODES; c++) {
        errors[c] = sum(w, n, HC(results) + (size_t)c * sizeof(_Atomic uint64_t));
        total += errors[c];
    }
    snprintf(line, sizeof line, "strata_http_client_requests_total{result=\"ok\"} %llu\n"
             "strata_http_client_requests_total{result=\"error\"} %llu\n",
             (unsigned long long)errors[HC_OK], (unsigned long long)(total - errors[HC_OK]));
    rc |= buf_add_str(out, line);
    rc |= buf_add_str(out, "# HELP strata_http_client_errors_total Outbound HTTP transfers without an answer, by code.\n"
                           "# TYPE strata_http_client_errors_total counter\n");
    for (int c = 1; c < HC_NCODES; c++) {
        snprintf(line, sizeof line, "strata_http_client_errors_total{code=\"%s\"} %llu\n", hc_code_names[c],
                 (unsigned long long)errors[c]);
        rc |= buf_add_str(out, line);
    }
    snprintf(line, sizeof line, "# HELP strata_http_client_open_transfers Outbound HTTP transfers in flight.\n"
             "# TYPE strata_http_client_open_transfers gauge\nstrata_http_client_open_transfers %lld\n",
             (long long)gauge(w, n, HC(open)));
    rc |= buf_add_str(out, line);
    uint64_t counts[HC_BUCKETS + 1];
    for (int b = 0; b <= HC_BUCKETS; b++)
        counts[b] = sum(w, n, HC(bucket) + (size_t)b * sizeof(_Atomic uint64_t));
    return rc | metrics_render_histogram(out, "strata_http_client_duration_seconds",
                                         "Outbound HTTP transfers, from start to end (answer or error).", HC_BOUNDS,
                                         HC_BUCKETS, counts, (double)sum(w, n, HC(duration_us)) / 1e6);
}

int metrics_render(buf *out, metrics_worker *const *w, int n)
{
    int rc = render_requests(out, w, n);
    rc |= render_histogram(out, w, n);
    rc |= render_pool(out, w, n);
    rc |= render_http_client(out, w, n);
    rc |= ai_stats_render(out);
    rc |= render_auth(out);
    char text[1536];
    snprintf(text, sizeof text,
             "# HELP strata_http_requests_overflow_total Requests counted without a label (label table full).\n"
             "# TYPE strata_http_requests_overflow_total counter\n"
             "strata_http_requests_overflow_total %llu\n"
             "# HELP strata_open_connections Client connections open now.\n"
             "# TYPE strata_open_connections gauge\n"
             "strata_open_connections %lld\n"
             "# HELP strata_refused_connections_total Connections refused past max_connections.\n"
             "# TYPE strata_refused_connections_total counter\n"
             "strata_refused_connections_total %llu\n"
             "# HELP strata_lua_reloads_total Lua reload attempts, by result.\n"
             "# TYPE strata_lua_reloads_total counter\n"
             "strata_lua_reloads_total{result=\"ok\"} %llu\n"
             "strata_lua_reloads_total{result=\"error\"} %llu\n"
             "# HELP strata_lua_generation Generation of the Lua scripts serving now.\n"
             "# TYPE strata_lua_generation gauge\n"
             "strata_lua_generation %lld\n"
             "# HELP strata_lua_errors_total Requests whose Lua handler raised an error.\n"
             "# TYPE strata_lua_errors_total counter\n"
             "strata_lua_errors_total %llu\n"
             "# HELP strata_lua_budget_exceeded_total Requests stopped by the Lua instruction limit.\n"
             "# TYPE strata_lua_budget_exceeded_total counter\n"
             "strata_lua_budget_exceeded_total %llu\n",
             (unsigned long long)sum(w, n, offsetof(metrics_worker, overflow)),
             (long long)atomic_load(&metrics_open_connections),
             (unsigned long long)atomic_load(&metrics_refused_connections),
             (unsigned long long)atomic_load(&metrics_reloads_ok),
             (unsigned long long)atomic_load(&metrics_reloads_error),
             (long long)atomic_load(&metrics_lua_generation),
             (unsigned long long)sum(w, n, offsetof(metrics_worker, lua_errors)),
             (unsigned long long)sum(w, n, offsetof(metrics_worker, lua_budget_exceeded)));
    return rc | buf_add_str(out, text);
}
