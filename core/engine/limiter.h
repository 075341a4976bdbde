/* limiter.h: rate-limit counters (GCRA, the generic cell rate algorithm)
 * keyed by strings and shared by every worker thread.  Plain C: no I/O, no
 * Lua, no HTTP, and no clock of its own — the caller passes the time, so
 * tests run on a simulated clock.  strata.limit (Lua) and the 429
 * responses are built on it elsewhere.
 *
 * GCRA in one paragraph.  A rule "rate requests per period, bursts of up
 * to burst" gives the emission interval T = period / rate (the steady
 * spacing of requests) and the burst window W = burst * T.  Each key
 * stores one number, its TAT (theoretical arrival time): the instant at
 * which the key would be idle again.  A request at `now` sees the debt
 * d = max(TAT, now) - now; it is allowed when d + T <= W, and then TAT
 * becomes now + d + T.  So:
 *   - burst is exactly the number of requests a fresh (or fully idle) key
 *     is allowed at one instant; after that, one more every T.  burst = 1
 *     means strict spacing, burst = rate means "rate per period" with the
 *     whole period's budget usable at once, burst > rate allows more than
 *     rate in the first period after a quiet time;
 *   - requests spaced exactly T apart are always allowed, at any burst;
 *   - an entry whose TAT <= now is the same as no entry: it can be dropped.
 * In the classic ATM formulation the tolerance is tau = W - T = (burst-1)*T
 * and a request is allowed when TAT - now <= tau; that is the same test.
 *
 * T is period_ns / rate rounded down to whole nanoseconds, so the limit is
 * at most 1 ns per interval generous (relative error < 1 / T: under 1e-6
 * for any rate up to 1000 per second).  Keys should name their rule
 * ("user:<uid>:minute"): a key used with two rules shares one TAT.
 *
 * Memory is bounded by max_keys, fixed at creation: the table is allocated
 * once (about 85 bytes per key of capacity, see limiter_new) and never
 * grows.  A key longer than LIMITER_INLINE_KEY bytes adds a heap copy of
 * itself.  When a new key finds its part of the table full, the entry with
 * the smallest TAT near it is evicted; if that TAT was still in the future
 * the evicted key's client gets a fresh budget early — counted apart as
 * evictions_active, so /metrics shows when max_keys is too small. */
#ifndef STRATA_LIMITER_H
#define STRATA_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#define LIMITER_INLINE_KEY 48   /* keys up to this many bytes live inside the table */
#define LIMITER_MAX_KEY 1024    /* longest key accepted */
#define LIMITER_MAX_NS ((uint64_t)1 << 62) /* ceiling of now_ns and of burst * T (146 years) */

typedef struct limiter limiter;

/* A limit: rate requests per period_ns, at most burst at once. */
typedef struct limit_rule {
    uint64_t rate;      /* requests per period, >= 1 */
    uint64_t period_ns; /* the period, >= rate (so that T >= 1 ns) */
    uint64_t burst;     /* requests a fresh key may make at one instant, >= 1;
                           burst * (period_ns / rate) <= LIMITER_MAX_NS */
} limit_rule;

/* What a take or a peek answers; durations are relative to now_ns. */
typedef struct limit_result {
    int allowed;             /* take: this request is allowed (and counted);
                                peek: a take now would be allowed */
    uint64_t remaining;      /* take: further requests allowed at this instant
                                after this one (0 when refused); peek: takes
                                that would be allowed at this instant */
    uint64_t reset_ns;       /* until the key is idle again (full budget) */
    uint64_t retry_after_ns; /* until a take would be allowed; 0 when allowed */
} limit_result;

typedef struct limiter_stats {
    uint64_t keys;             /* entries held now (idle ones included until dropped) */
    uint64_t max_keys;         /* the capacity given to limiter_new */
    uint64_t evictions;        /* entries removed because their stripe was full */
    uint64_t evictions_active; /* of those, entries still limiting (TAT > now):
                                  each let a client through early */
    uint64_t expired;          /* idle entries (TAT <= now) dropped by
                                  limiter_sweep or reused by a new key */
    uint64_t bytes;            /* memory owned: table + heap copies of long keys */
} limiter_stats;

/* Creates a limiter holding at most max_keys keys (1 .. 2^31) in `stripes`
 * independently locked parts (0: the default, max_keys / 1024 and at most
 * 64; any value is clamped to 1 .. min(4096, max_keys)).  Each stripe holds
 * a fixed share, max_keys / stripes keys (the remainder spread over the
 * first ones), so the first eviction comes before the total reaches
 * max_keys, when the fullest stripe fills: roughly at max_keys * (1 - 2.5
 * / sqrt(share)) live keys (measured with the default: 96% of 10,000 keys
 * in 9 stripes, 97.5% of 1,000,000 in 64).  Allocates 64 bytes per slot
 * at load 3/4, ~85 bytes per key of capacity, all at once (the kernel
 * backs pages as they are touched).  The hash is keyed with random bytes
 * from getrandom, so clients cannot choose keys that collide.  NULL with
 * errno set (EINVAL, ENOMEM, or getrandom's). */
limiter *limiter_new(size_t max_keys, size_t stripes);

/* Frees everything; no thread may be using the limiter.  NULL is a no-op. */
void limiter_free(limiter *l);

/* 0 when the rule satisfies the bounds in limit_rule, else -1 with errno
 * EINVAL.  For checking configuration before any request. */
int limiter_rule_check(const limit_rule *rule);

/* Applies `rule` to key[0..key_len) at time now_ns (any monotonic
 * nanosecond clock, <= LIMITER_MAX_NS; one clock for every caller).  With
 * consume = 1 this is a take: an allowed request is counted (the key is
 * created if absent), a refused one changes nothing.  With consume = 0 it
 * is a peek: nothing changes.  Fills *out and answers 0; -1 with errno
 * EINVAL (bad rule, empty key, key over LIMITER_MAX_KEY, now_ns too
 * large) or ENOMEM (copying a long key), *out then unspecified and the
 * table unchanged.  Thread-safe; takes one stripe lock.  A now_ns older
 * than one already used for the key (threads read the clock, then race
 * for the lock) is no error: the answer is computed at now_ns, so
 * retry_after_ns and reset_ns still point at the right instants. */
int limiter_take(limiter *l, const char *key, size_t key_len, const limit_rule *rule,
                 uint64_t now_ns, int consume, limit_result *out);

/* Drops every entry idle at now_ns (TAT <= now_ns), one stripe lock at a
 * time, and answers how many.  Not needed for correctness or for the
 * memory bound; it keeps `keys` meaningful and spares later evictions.
 * Walks the whole table: 4 ms for a table of 1,000,000 keys with nothing
 * to drop, 20 ms dropping them all, each of the 64 stripe locks held for
 * 1/64 of that.  Call it now and then (every few seconds) from one
 * thread. */
size_t limiter_sweep(limiter *l, uint64_t now_ns);

/* Sums the counters; lock-free, each field exact, the set not a snapshot. */
void limiter_stats_get(limiter *l, limiter_stats *out);

#endif
