/* metrics.h: counters for GET /metrics (Prometheus text format 0.0.4).
 * Each worker counts in its own metrics_worker, written only by that
 * worker's thread with relaxed atomics and read by whoever renders: no
 * lock and no shared cache line on the request path.  Process-wide values
 * (open connections, reloads) are plain atomics here. */
#ifndef STRATA_METRICS_H
#define STRATA_METRICS_H

#include "base/buf.h"
#include "http_client_stats.h"
#include "pool_stats.h"

#include <stdatomic.h>
#include <stdint.h>

#define METRICS_SLOTS 4096  /* (route, status) pairs per worker */
#define METRICS_BUCKETS 14  /* latency histogram bounds, +Inf apart */
#define METRICS_MAX_ROUTES 1024

typedef struct metrics_slot {
    _Atomic uint32_t key;   /* (route id + 1) << 10 | status; 0 = free */
    _Atomic uint64_t count;
} metrics_slot;

typedef struct metrics_worker {
    metrics_slot slots[METRICS_SLOTS];
    _Atomic uint64_t overflow;              /* requests whose pair found no slot */
    _Atomic uint64_t bucket[METRICS_BUCKETS + 1];
    _Atomic uint64_t duration_us;           /* sum, for _sum */
    _Atomic uint64_t lua_errors;
    _Atomic uint64_t lua_budget_exceeded;
    pool_stats pool;                        /* the worker's database pool */
    http_client_stats http_client;          /* the worker's outbound HTTP (strata.http.request) */
} metrics_worker;

/* Process-wide values. */
extern _Atomic int64_t metrics_open_connections;
extern _Atomic uint64_t metrics_refused_connections;
extern _Atomic uint64_t metrics_reloads_ok;
extern _Atomic uint64_t metrics_reloads_error;
extern _Atomic int64_t metrics_lua_generation;

/* Ids of route labels: the same string always gets the same id.  Called
 * once per route and Lua generation, not per request.  -1 past
 * METRICS_MAX_ROUTES labels. */
int metrics_route_id(const char *route);

/* Fixed ids of the built-in routes and of "no route". */
enum { METRICS_ROUTE_NONE = 0, METRICS_ROUTE_HEALTH, METRICS_ROUTE_READY, METRICS_ROUTE_METRICS,
       METRICS_ROUTE_ADMIN, METRICS_ROUTE_PREFLIGHT };

/* Must run once before workers start: registers the fixed ids. */
void metrics_init(void);

/* Adds v to a counter that only the calling worker writes: a load and a
 * store, no locked read-modify-write. */
static inline void metrics_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

/* Counts one request on the calling worker. */
void metrics_request(metrics_worker *m, int route_id, int status, uint64_t duration_us);

/* Renders every metric, summing the n workers. */
int metrics_render(buf *out, metrics_worker *const *workers, int n);

/* Appends a Prometheus histogram named `name`: counts[0..nbounds] are the
 * observations per bucket (not cumulative; the last is above every bound)
 * and sum_s their sum in seconds.  0, or -1 when out of memory. */
int metrics_render_histogram(buf *out, const char *name, const char *help, const double *bounds, size_t nbounds,
                             const uint64_t *counts, double sum_s);

#endif
