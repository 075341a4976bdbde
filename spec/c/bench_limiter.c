/* bench_limiter.c: how long a take of core/limiter.c lasts, single-threaded
 * and with two threads on distinct keys and on one key, and how long a
 * sweep of a million keys lasts.  Built optimised and without sanitizers
 * by `make bench-limiter` (spec/c/limiter.mk), which also runs it; not a
 * test: it checks nothing and scripts/test does not run it.
 *
 * CPU time per take is each thread's own (CLOCK_THREAD_CPUTIME_ID), so it
 * stays meaningful on a busy machine; the Mtakes/s column is wall-clock
 * throughput and does not. */
#include "engine/limiter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC 1000000000ull
#define BASE (1000 * SEC) /* simulated time of the first take */

static limiter *new_limiter(size_t max_keys, size_t stripes)
{
    limiter *l = limiter_new(max_keys, stripes);
    if (!l) {
        perror("bench_limiter: limiter_new");
        exit(2);
    }
    return l;
}

typedef struct bench_arg {
    limiter *l;
    uint64_t first, nkeys; /* keys first .. first + nkeys - 1, round robin; 0: all new */
    uint64_t step_ns;      /* simulated clock advance per take */
    uint64_t n;            /* takes */
    uint64_t allowed;      /* out */
    uint64_t cpu_ns;       /* out: the thread's CPU time */
} bench_arg;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* Takes with T = 1 us (burst 1000) on a simulated clock; with step_ns =
 * 1000 a lone thread is always allowed, so every take writes its TAT;
 * with step_ns = 0 new keys stay limiting (TAT in the future).
 * Keys are "user:" + 8 binary bytes + ":minute" (20 bytes, inline). */
static void *bench_worker(void *p)
{
    bench_arg *a = p;
    const limit_rule r = {1000000, SEC, 1000};
    char key[] = "user:........:minute"; /* 20 bytes and a NUL */
    limit_result res;
    uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t k = a->first + (a->nkeys ? i % a->nkeys : i);
        memcpy(key + 5, &k, 8);
        if (limiter_take(a->l, key, sizeof key - 1, &r, BASE + i * a->step_ns, 1, &res) == 0)
            a->allowed += (uint64_t)res.allowed;
    }
    a->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
    return NULL;
}

/* Prints ns per take for nthreads workers: CPU time per take (what a take
 * costs its thread) and wall-clock throughput (which suffers when the
 * machine is busy).  same_key makes them share key 0, else each has its
 * own nkeys keys (nkeys 0: every take a new key). */
static void bench(const char *what, size_t max_keys, int nthreads, uint64_t nkeys, int same_key,
                  uint64_t step_ns, uint64_t n)
{
    limiter *l = new_limiter(max_keys, 0);
    bench_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < nthreads; i++)
        args[i] = (bench_arg){l, same_key ? 0 : (uint64_t)i << 40, nkeys, step_ns, n, 0, 0};
    for (int i = 0; nkeys && i < nthreads; i++) { /* warm: insert every key once */
        bench_arg warm = {l, args[i].first, nkeys, 1000, nkeys, 0, 0};
        bench_worker(&warm);
    }
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC), allowed = 0, cpu = 0;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, bench_worker, &args[i]) != 0)
            exit(2);
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        allowed += args[i].allowed;
        cpu += args[i].cpu_ns;
    }
    uint64_t wall = clock_ns(CLOCK_MONOTONIC) - t0, total = n * (uint64_t)nthreads;
    limiter_stats st;
    limiter_stats_get(l, &st);
    printf("%-46s %6.1f ns CPU/take %6.1f Mtakes/s %5.1f%% allowed, evictions %llu (active %llu)\n",
           what, (double)cpu / (double)total, (double)total * 1e3 / (double)wall,
           100.0 * (double)allowed / (double)total, (unsigned long long)st.evictions,
           (unsigned long long)st.evictions_active);
    limiter_free(l);
}

static void bench_sweep(size_t max_keys)
{
    limiter *l = new_limiter(max_keys, 0);
    bench_arg fill = {l, 0, max_keys, 0, max_keys, 0, 0};
    bench_worker(&fill); /* at one instant: no key idle, none reused */
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    size_t kept = limiter_sweep(l, 0);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
    size_t dropped = limiter_sweep(l, LIMITER_MAX_NS);
    uint64_t t2 = clock_ns(CLOCK_MONOTONIC);
    printf("sweep of %zu keys: %.2f ms dropping none (%zu), %.2f ms dropping all (%zu)\n", max_keys,
           (double)(t1 - t0) / 1e6, kept, (double)(t2 - t1) / 1e6, dropped);
    limiter_free(l);
}

int main(void)
{
    const uint64_t n = 5000000;
    bench("1 thread, 1 key", 1 << 20, 1, 1, 0, 1000, n);
    bench("1 thread, 10k keys (table 1M)", 1 << 20, 1, 10000, 0, 1000, n);
    bench("1 thread, 1M keys (table 1M)", 1 << 20, 1, 1000000, 0, 1000, n);
    bench("1 thread, new key each take, full of idle keys", 100000, 1, 0, 0, 1000, n);
    bench("1 thread, new key each take, full, all active", 100000, 1, 0, 0, 0, n);
    bench("2 threads, 10k distinct keys each", 1 << 20, 2, 10000, 0, 1000, n);
    bench("2 threads, 1M distinct keys each (table 4M)", 1 << 22, 2, 1000000, 0, 1000, n);
    bench("2 threads, same key", 1 << 20, 2, 1, 1, 1000, n);
    bench_sweep(1000000);
    return 0;
}
