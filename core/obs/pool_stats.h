/* pool_stats.h: the counters of one worker's database pool.  Here, in
 * obs, because /metrics renders them: the pool (db) writes them and
 * includes this header, metrics.h embeds them, and neither reaches up. */
#ifndef STRATA_POOL_STATS_H
#define STRATA_POOL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Gauges and counters, written by the owning worker only and read by
 * /metrics from any thread (relaxed atomics). */
typedef struct pool_stats {
    _Atomic int64_t open, busy, idle, connecting, queued;
    _Atomic uint64_t waits, timeouts, rejected, reconnects, failures;
    _Atomic uint64_t queries, query_us;
    _Atomic uint64_t query_bucket[8]; /* <=1ms, 5, 10, 50, 100, 500, 1000, +Inf */
} pool_stats;

#endif
