/* test_limiter.c: tests of core/limiter.c (GCRA counters in a striped
 * table) on a simulated clock: no sleeps, no timing thresholds.
 *
 * Sequences of takes and peeks are tables of expected answers; steady
 * state, the rate bound, expiry, eviction, the flood of distinct keys and
 * the threaded cases are loops.  Built with ASan and UBSan
 * (spec/c/limiter.mk).  Prints each failure with its case name, then
 * exactly one line "N passed, N failed"; exits 1 on a failure.  The
 * timings are in spec/c/bench_limiter.c, not here. */
#include "engine/limiter.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed CHECK jumps to the test function's out: label, which frees
 * its limiter. */
#define HARNESS_CHECK_EXIT goto out
#include "test_harness.h"

/* ---- simulated clock ---- */

#define MS 1000000ull
#define SEC 1000000000ull
#define BASE (1000 * SEC) /* simulated "now" of the first step */

static limiter *new_limiter(size_t max_keys, size_t stripes)
{
    limiter *l = limiter_new(max_keys, stripes);
    if (!l) {
        perror("test_limiter: limiter_new");
        exit(2);
    }
    return l;
}

static int take(limiter *l, const char *key, const limit_rule *r, uint64_t now, int consume,
                limit_result *res)
{
    return limiter_take(l, key, strlen(key), r, now, consume, res);
}

/* ---- sequences ---- */

enum { END, TAKE, PEEK };

typedef struct step {
    int op;             /* TAKE, PEEK; END closes the list */
    uint64_t at;        /* ns after BASE */
    const char *key;    /* NULL: "k" */
    int allowed;
    uint64_t remaining, reset, retry; /* expected, ns for the last two */
} step;

typedef struct seq_case {
    const char *name;
    limit_rule rule;
    step steps[16];
} seq_case;

static const seq_case seq_cases[] = {
    {"burst = rate: exactly rate at once, then retry after T", {5, SEC, 5},
     {{TAKE, 0, 0, 1, 4, 200 * MS, 0}, {TAKE, 0, 0, 1, 3, 400 * MS, 0},
      {TAKE, 0, 0, 1, 2, 600 * MS, 0}, {TAKE, 0, 0, 1, 1, 800 * MS, 0},
      {TAKE, 0, 0, 1, 0, SEC, 0}, {TAKE, 0, 0, 0, 0, SEC, 200 * MS},
      {TAKE, 200 * MS - 1, 0, 0, 0, 800 * MS + 1, 1},
      {TAKE, 200 * MS, 0, 1, 0, SEC, 0}, {TAKE, 200 * MS, 0, 0, 0, SEC, 200 * MS}}},
    {"recovery: one more after T, the whole burst after the period", {5, SEC, 5},
     {{TAKE, 0, 0, 1, 4, 200 * MS, 0}, {TAKE, 0, 0, 1, 3, 400 * MS, 0},
      {TAKE, 0, 0, 1, 2, 600 * MS, 0}, {TAKE, 0, 0, 1, 1, 800 * MS, 0},
      {TAKE, 0, 0, 1, 0, SEC, 0}, {PEEK, 200 * MS, 0, 1, 1, 800 * MS, 0},
      {PEEK, 600 * MS, 0, 1, 3, 400 * MS, 0}, {PEEK, SEC, 0, 1, 5, 0, 0},
      {PEEK, 5 * SEC, 0, 1, 5, 0, 0}, {TAKE, 5 * SEC, 0, 1, 4, 200 * MS, 0}}},
    {"peek does not consume", {3, 3 * SEC, 3},
     {{PEEK, 0, 0, 1, 3, 0, 0}, {PEEK, 0, 0, 1, 3, 0, 0}, {TAKE, 0, 0, 1, 2, SEC, 0},
      {PEEK, 0, 0, 1, 2, SEC, 0}, {PEEK, 0, 0, 1, 2, SEC, 0}, {TAKE, 0, 0, 1, 1, 2 * SEC, 0},
      {TAKE, 0, 0, 1, 0, 3 * SEC, 0}, {PEEK, 0, 0, 0, 0, 3 * SEC, SEC},
      {PEEK, 0, 0, 0, 0, 3 * SEC, SEC}, {PEEK, SEC, 0, 1, 1, 2 * SEC, 0},
      {TAKE, SEC, 0, 1, 0, 3 * SEC, 0}, {PEEK, SEC, 0, 0, 0, 3 * SEC, SEC}}},
    {"burst 1: strict spacing", {10, SEC, 1},
     {{TAKE, 0, 0, 1, 0, 100 * MS, 0}, {TAKE, 0, 0, 0, 0, 100 * MS, 100 * MS},
      {TAKE, 50 * MS, 0, 0, 0, 50 * MS, 50 * MS}, {TAKE, 100 * MS, 0, 1, 0, 100 * MS, 0},
      {TAKE, 150 * MS, 0, 0, 0, 50 * MS, 50 * MS}, {TAKE, 300 * MS, 0, 1, 0, 100 * MS, 0},
      {PEEK, 400 * MS, 0, 1, 1, 0, 0}}},
    {"burst < rate: at most burst at once", {10, SEC, 3},
     {{TAKE, 0, 0, 1, 2, 100 * MS, 0}, {TAKE, 0, 0, 1, 1, 200 * MS, 0},
      {TAKE, 0, 0, 1, 0, 300 * MS, 0}, {TAKE, 0, 0, 0, 0, 300 * MS, 100 * MS},
      {TAKE, 100 * MS, 0, 1, 0, 300 * MS, 0}, {TAKE, 150 * MS, 0, 0, 0, 250 * MS, 50 * MS},
      {PEEK, 400 * MS, 0, 1, 3, 0, 0}, {PEEK, SEC, 0, 1, 3, 0, 0}}},
    {"burst > rate: more than rate after a quiet time", {2, SEC, 5},
     {{TAKE, 0, 0, 1, 4, 500 * MS, 0}, {TAKE, 0, 0, 1, 3, SEC, 0},
      {TAKE, 0, 0, 1, 2, 1500 * MS, 0}, {TAKE, 0, 0, 1, 1, 2 * SEC, 0},
      {TAKE, 0, 0, 1, 0, 2500 * MS, 0}, {TAKE, 0, 0, 0, 0, 2500 * MS, 500 * MS},
      {TAKE, 500 * MS, 0, 1, 0, 2500 * MS, 0}, {PEEK, SEC, 0, 1, 1, 2 * SEC, 0},
      {PEEK, 3 * SEC, 0, 1, 5, 0, 0}}},
    {"T rounds down to whole ns: 3 per second", {3, SEC, 3},
     {{TAKE, 0, 0, 1, 2, 333333333, 0}, {TAKE, 0, 0, 1, 1, 666666666, 0},
      {TAKE, 0, 0, 1, 0, 999999999, 0}, {TAKE, 0, 0, 0, 0, 999999999, 333333333},
      {PEEK, 333333333, 0, 1, 1, 666666666, 0}}},
    {"per minute", {60, 60 * SEC, 60},
     {{TAKE, 0, 0, 1, 59, SEC, 0}, {PEEK, 0, 0, 1, 59, SEC, 0},
      {PEEK, 30 * SEC, 0, 1, 60, 0, 0}}},
    {"two keys are independent", {1, SEC, 1},
     {{TAKE, 0, "a", 1, 0, SEC, 0}, {TAKE, 0, "a", 0, 0, SEC, SEC},
      {PEEK, 0, "b", 1, 1, 0, 0}, {TAKE, 0, "b", 1, 0, SEC, 0},
      {TAKE, 0, "b", 0, 0, SEC, SEC}, {PEEK, 0, "ab", 1, 1, 0, 0},
      {TAKE, 500 * MS, "a", 0, 0, 500 * MS, 500 * MS}, {TAKE, SEC, "b", 1, 0, SEC, 0}}},
    {"an older now is answered at that instant", {1, SEC, 1},
     {{TAKE, SEC, 0, 1, 0, SEC, 0}, {TAKE, 500 * MS, 0, 0, 0, 1500 * MS, 1500 * MS},
      {PEEK, 2 * SEC, 0, 1, 1, 0, 0}}},
};

static void run_seq_case(const seq_case *c)
{
    limiter *l = new_limiter(64, 0);
    for (int i = 0; c->steps[i].op != END; i++) {
        const step *s = &c->steps[i];
        limit_result r;
        int rc = take(l, s->key ? s->key : "k", &c->rule, BASE + s->at, s->op == TAKE, &r);
        CHECK(rc == 0, "step %d: rc %d errno %d", i, rc, errno);
        CHECK(r.allowed == s->allowed && r.remaining == s->remaining && r.reset_ns == s->reset &&
                  r.retry_after_ns == s->retry,
              "step %d: allowed %d remaining %llu reset %llu retry %llu, want %d %llu %llu %llu", i,
              r.allowed, (unsigned long long)r.remaining, (unsigned long long)r.reset_ns,
              (unsigned long long)r.retry_after_ns, s->allowed, (unsigned long long)s->remaining,
              (unsigned long long)s->reset, (unsigned long long)s->retry);
    }
out:
    limiter_free(l);
}

/* ---- errors ---- */

typedef struct err_case {
    const char *name;
    limit_rule rule;
    size_t key_len;  /* of a key of 'x' bytes */
    uint64_t now;
} err_case;

static const err_case err_cases[] = {
    {"rate 0", {0, SEC, 1}, 1, BASE},
    {"burst 0", {1, SEC, 0}, 1, BASE},
    {"period shorter than rate (T < 1 ns)", {1000, 999, 1}, 1, BASE},
    {"burst * T past LIMITER_MAX_NS", {1, SEC, LIMITER_MAX_NS / SEC + 1}, 1, BASE},
    {"empty key", {1, SEC, 1}, 0, BASE},
    {"key over LIMITER_MAX_KEY", {1, SEC, 1}, LIMITER_MAX_KEY + 1, BASE},
    {"now past LIMITER_MAX_NS", {1, SEC, 1}, 1, LIMITER_MAX_NS + 1},
};

static void run_err_case(const err_case *c)
{
    static char key[LIMITER_MAX_KEY + 2];
    memset(key, 'x', sizeof key);
    limiter *l = new_limiter(16, 0);
    limit_result r;
    for (int consume = 0; consume <= 1; consume++) {
        errno = 0;
        int rc = limiter_take(l, key, c->key_len, &c->rule, c->now, consume, &r);
        CHECK(rc == -1 && errno == EINVAL, "consume %d: rc %d errno %d", consume, rc, errno);
    }
    limiter_stats st;
    limiter_stats_get(l, &st);
    CHECK(st.keys == 0, "%llu keys after refused calls", (unsigned long long)st.keys);
out:
    limiter_free(l);
}

static void test_limits_accepted(void)
{
    static char key[LIMITER_MAX_KEY];
    memset(key, 'x', sizeof key);
    limiter *l = new_limiter(16, 0);
    limit_result r;
    const limit_rule edge = {1000, 1000, 1}, max = {1, SEC, LIMITER_MAX_NS / SEC};
    CHECK(limiter_rule_check(&edge) == 0 && limiter_rule_check(&max) == 0, "rule_check refused");
    CHECK(limiter_take(l, key, sizeof key, &max, LIMITER_MAX_NS, 1, &r) == 0 && r.allowed &&
              r.remaining == LIMITER_MAX_NS / SEC - 1,
          "longest key, largest burst, latest now");
    CHECK(limiter_take(l, key, 1, &edge, 0, 1, &r) == 0 && r.allowed && r.reset_ns == 1,
          "T = 1 ns at now 0");
    CHECK(limiter_new(0, 0) == NULL && errno == EINVAL, "max_keys 0 accepted");
out:
    limiter_free(l);
}

/* ---- loops ---- */

/* Requests at exactly the rate (times rounded down to whole ns) are all
 * allowed and leave burst - 1 remaining, for several rules. */
static void test_steady_state(void)
{
    static const limit_rule rules[] = {{10, SEC, 1}, {10, SEC, 10}, {3, SEC, 1}, {7, 60 * SEC, 2},
                                       {1000, SEC, 50}};
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        const limit_rule *r = &rules[k];
        limiter *l = new_limiter(16, 0);
        for (uint64_t i = 0; i < 20000; i++) {
            limit_result res;
            uint64_t now = BASE + i * r->period_ns / r->rate;
            int rc = take(l, "steady", r, now, 1, &res);
            if (rc != 0 || !res.allowed || res.remaining != r->burst - 1) {
                failf("rule %zu, request %llu: rc %d allowed %d remaining %llu", k,
                      (unsigned long long)i, rc, res.allowed, (unsigned long long)res.remaining);
                limiter_free(l);
                return;
            }
        }
        limiter_free(l);
    }
}

/* Above the rate, the allowed requests in [BASE, now] never pass
 * burst + elapsed / T, and are never fewer than elapsed / T. */
static void test_rate_bound(void)
{
    const limit_rule r = {10, SEC, 4}; /* T = 100 ms */
    const uint64_t t = 100 * MS;
    limiter *l = new_limiter(16, 0);
    uint64_t allowed = 0;
    for (uint64_t now = 0; now < 60 * SEC; now += 7 * MS) {
        limit_result res;
        CHECK(take(l, "hot", &r, BASE + now, 1, &res) == 0, "take failed");
        allowed += (uint64_t)res.allowed;
        CHECK(allowed <= r.burst + now / t, "at %llu ms: %llu allowed",
              (unsigned long long)(now / MS), (unsigned long long)allowed);
        CHECK(allowed >= now / t, "at %llu ms: only %llu allowed", (unsigned long long)(now / MS),
              (unsigned long long)allowed);
    }
out:
    limiter_free(l);
}

static void test_expiry(void)
{
    const limit_rule r = {1, SEC, 2}; /* TAT = now + 1 s after one take */
    limiter *l = new_limiter(8, 1);
    limit_result res;
    limiter_stats st;
    CHECK(take(l, "idle", &r, BASE, 0, &res) == 0, "peek");
    limiter_stats_get(l, &st);
    CHECK(st.keys == 0, "a peek created a key");
    CHECK(take(l, "idle", &r, BASE, 1, &res) == 0 && take(l, "idle", &r, BASE, 1, &res) == 0 &&
              take(l, "idle", &r, BASE, 1, &res) == 0 && !res.allowed,
          "third take allowed");
    limiter_stats_get(l, &st);
    CHECK(st.keys == 1, "%llu keys after takes on one key, refused one included",
          (unsigned long long)st.keys);
    CHECK(limiter_sweep(l, BASE + 2 * SEC - 1) == 0, "swept a limiting entry");
    CHECK(limiter_sweep(l, BASE + 2 * SEC) == 1, "idle entry kept");
    limiter_stats_get(l, &st);
    CHECK(st.keys == 0 && st.expired == 1 && st.evictions == 0, "keys %llu expired %llu",
          (unsigned long long)st.keys, (unsigned long long)st.expired);
    CHECK(take(l, "idle", &r, BASE + 2 * SEC, 0, &res) == 0 && res.allowed && res.remaining == 2,
          "dropped key not fresh");
out:
    limiter_free(l);
}

/* A full one-key table (two slots): each new key finds the previous,
 * idle, entry on its probe path (then reuses it: expired) or not (then
 * evicts it), as the hashes fall, half the time each; never an active
 * eviction.  Over 64 keys both happen but with odds of 2^-62. */
static void test_idle_gives_way(void)
{
    const limit_rule r = {1, SEC, 1};
    limiter *l = new_limiter(1, 1);
    limit_result res;
    limiter_stats st;
    char key[16];
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK(take(l, key, &r, BASE + (uint64_t)i * SEC, 1, &res) == 0 && res.allowed, "take %s",
              key);
    }
    limiter_stats_get(l, &st);
    CHECK(st.keys == 1 && st.expired + st.evictions == 63 && st.expired > 0 && st.evictions > 0 &&
              st.evictions_active == 0,
          "keys %llu expired %llu evictions %llu active %llu", (unsigned long long)st.keys,
          (unsigned long long)st.expired, (unsigned long long)st.evictions,
          (unsigned long long)st.evictions_active);
out:
    limiter_free(l);
}

/* A full table evicts the entry with the smallest TAT (the window covers
 * the whole of this small stripe). */
static void test_eviction_order(void)
{
    const limit_rule r = {1, 10 * SEC, 1};
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
    limiter *l = new_limiter(4, 1);
    limit_result res;
    limiter_stats st;
    for (int i = 0; i < 5; i++)
        CHECK(take(l, keys[i], &r, BASE + (uint64_t)i * MS, 1, &res) == 0 && res.allowed,
              "take %s", keys[i]);
    limiter_stats_get(l, &st);
    CHECK(st.keys == 4 && st.evictions == 1 && st.evictions_active == 1,
          "keys %llu evictions %llu active %llu", (unsigned long long)st.keys,
          (unsigned long long)st.evictions, (unsigned long long)st.evictions_active);
    for (int i = 0; i < 5; i++) {
        CHECK(take(l, keys[i], &r, BASE + 5 * MS, 0, &res) == 0, "peek");
        CHECK(res.allowed == (i == 0), "%s: allowed %d", keys[i], res.allowed);
    }
    CHECK(take(l, "k0", &r, BASE + 5 * MS, 1, &res) == 0 && res.allowed, "k0 again");
    CHECK(take(l, "k1", &r, BASE + 5 * MS, 0, &res) == 0 && res.allowed, "k1 not evicted next");
out:
    limiter_free(l);
}

/* Keys past LIMITER_INLINE_KEY live on the heap; full keys are compared. */
static void test_long_keys(void)
{
    const limit_rule r = {1, SEC, 1};
    static char a[LIMITER_MAX_KEY], b[LIMITER_MAX_KEY];
    memset(a, 'p', sizeof a);
    memcpy(b, a, sizeof b);
    b[sizeof b - 1] = 'q';
    limiter *l = new_limiter(16, 0);
    limit_result res;
    limiter_stats st0, st;
    limiter_stats_get(l, &st0);
    static const size_t lens[] = {LIMITER_INLINE_KEY, LIMITER_INLINE_KEY + 1, LIMITER_MAX_KEY};
    for (size_t i = 0; i < 3; i++) {
        CHECK(limiter_take(l, a, lens[i], &r, BASE, 1, &res) == 0 && res.allowed, "a/%zu", lens[i]);
        CHECK(limiter_take(l, a, lens[i], &r, BASE, 1, &res) == 0 && !res.allowed, "a/%zu twice",
              lens[i]);
    }
    CHECK(limiter_take(l, b, sizeof b, &r, BASE, 1, &res) == 0 && res.allowed,
          "b shares a's 1023-byte prefix and its counter");
    limiter_stats_get(l, &st);
    CHECK(st.keys == 4 && st.bytes == st0.bytes + LIMITER_INLINE_KEY + 1 + 2 * LIMITER_MAX_KEY,
          "keys %llu, bytes %llu -> %llu", (unsigned long long)st.keys,
          (unsigned long long)st0.bytes, (unsigned long long)st.bytes);
    CHECK(limiter_sweep(l, BASE + SEC) == 4, "sweep");
    limiter_stats_get(l, &st);
    CHECK(st.bytes == st0.bytes, "heap copies not freed: %llu", (unsigned long long)st.bytes);
out:
    limiter_free(l);
}

/* 1,000,000 distinct keys, all limiting, into 10,000 slots: the table
 * stays at its size, every extra key evicts one; long keys too. */
static void test_flood(void)
{
    const limit_rule r = {1, 60 * SEC, 1};
    const size_t max = 10000;
    limiter *l = new_limiter(max, 0);
    limit_result res;
    limiter_stats st0, st;
    char key[128];
    limiter_stats_get(l, &st0);
    CHECK(st0.bytes <= max * 86 + 64 * 128 + 256, "table of %llu bytes",
          (unsigned long long)st0.bytes);
    for (uint64_t i = 0; i < 1000000; i++) {
        int n = snprintf(key, sizeof key, "flood:%llu", (unsigned long long)i);
        CHECK(limiter_take(l, key, (size_t)n, &r, BASE + i, 1, &res) == 0 && res.allowed,
              "key %llu", (unsigned long long)i);
    }
    limiter_stats_get(l, &st);
    CHECK(st.keys == max && st.bytes == st0.bytes, "keys %llu bytes %llu",
          (unsigned long long)st.keys, (unsigned long long)st.bytes);
    CHECK(st.evictions == 1000000 - max && st.evictions_active == st.evictions && st.expired == 0,
          "evictions %llu active %llu expired %llu", (unsigned long long)st.evictions,
          (unsigned long long)st.evictions_active, (unsigned long long)st.expired);
    memset(key, 'L', 100);
    for (uint64_t i = 0; i < 100000; i++) {
        memcpy(key, &i, sizeof i);
        CHECK(limiter_take(l, key, 100, &r, BASE + SEC, 1, &res) == 0 && res.allowed, "long %llu",
              (unsigned long long)i);
    }
    limiter_stats_get(l, &st);
    CHECK(st.keys == max && st.bytes == st0.bytes + max * 100, "long keys: keys %llu bytes %llu",
          (unsigned long long)st.keys, (unsigned long long)st.bytes);
out:
    limiter_free(l);
}

/* ---- model ---- */

/* The GCRA of limiter.h restated, for the model test: answers for a key
 * whose TAT is *tat, updating it on an allowed take. */
static limit_result model_take(uint64_t *tat, const limit_rule *r, uint64_t now, int consume)
{
    uint64_t t = r->period_ns / r->rate, w = r->burst * t;
    uint64_t debt = *tat > now ? *tat - now : 0;
    limit_result res = {debt + t <= w, debt <= w ? (w - debt) / t : 0, debt, 0};
    if (!res.allowed)
        res.retry_after_ns = debt + t - w;
    else if (consume) {
        res.remaining--;
        res.reset_ns = debt + t;
        *tat = now + debt + t;
    }
    return res;
}

static int same_result(const limit_result *a, const limit_result *b)
{
    return a->allowed == b->allowed && a->remaining == b->remaining && a->reset_ns == b->reset_ns &&
           a->retry_after_ns == b->retry_after_ns;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define MODEL_KEYS 200

/* Random takes, peeks, clock steps and sweeps on a small table (so probe
 * paths wrap around and deletions shift entries), checked against the
 * model.  With nkeys <= max_keys on one stripe nothing is evicted and
 * every answer must match; past it, a key may also come back fresh, and
 * at most evictions_active keys may do so. */
static void model_run(size_t max_keys, int nkeys)
{
    static const limit_rule rules[] = {{3, SEC, 2}, {10, SEC, 10}, {1, 2 * SEC, 1}};
    uint64_t tat[MODEL_KEYS] = {0}, now = BASE, lost = 0;
    char key[64];
    limiter *l = new_limiter(max_keys, 1);
    limiter_stats st;
    for (int op = 0; op < 200000; op++) {
        uint64_t x = rng();
        int k = (int)(x % (uint64_t)nkeys), consume = (x >> 20) % 4 != 0;
        const limit_rule *r = &rules[k % 3];
        int len = k % 7 ? snprintf(key, sizeof key, "key:%d", k)
                        : snprintf(key, sizeof key, "a-key-long-enough-for-the-heap:%032d", k);
        if ((x >> 24) % 8 == 0)
            now += (x >> 32) % (700 * MS);
        if ((x >> 28) % 512 == 0) {
            limiter_sweep(l, now);
            uint64_t live = 0;
            for (int i = 0; i < nkeys; i++)
                live += tat[i] > now;
            limiter_stats_get(l, &st);
            CHECK(nkeys > (int)max_keys || st.keys == live,
                  "op %d: %llu keys after sweep, want %llu", op, (unsigned long long)st.keys,
                  (unsigned long long)live);
        }
        limit_result got, want, fresh;
        uint64_t old = tat[k], zero = 0;
        want = model_take(&tat[k], r, now, consume);
        CHECK(limiter_take(l, key, (size_t)len, r, now, consume, &got) == 0, "op %d: take", op);
        if (!same_result(&got, &want)) {
            fresh = model_take(&zero, r, now, consume);
            CHECK(nkeys > (int)max_keys && old > now && same_result(&got, &fresh),
                  "op %d key %d: allowed %d remaining %llu reset %llu retry %llu, "
                  "model %d %llu %llu %llu",
                  op, k, got.allowed, (unsigned long long)got.remaining,
                  (unsigned long long)got.reset_ns, (unsigned long long)got.retry_after_ns,
                  want.allowed, (unsigned long long)want.remaining,
                  (unsigned long long)want.reset_ns, (unsigned long long)want.retry_after_ns);
            tat[k] = zero;
            lost++;
        }
    }
    limiter_stats_get(l, &st);
    CHECK(lost <= st.evictions_active && st.keys <= max_keys,
          "%llu keys came back fresh, %llu active evictions, %llu keys", (unsigned long long)lost,
          (unsigned long long)st.evictions_active, (unsigned long long)st.keys);
out:
    limiter_free(l);
}

static void test_model(void)
{
    model_run(6, 6);
    model_run(48, 48);
}

static void test_model_evicting(void)
{
    model_run(6, 30);
    model_run(48, MODEL_KEYS);
}

/* ---- threads ---- */

typedef struct worker_arg {
    limiter *l;
    const limit_rule *rule;
    int id;
    uint64_t n;       /* takes to make */
    _Atomic uint64_t *clock; /* NULL: fixed time BASE; else advanced per take */
    uint64_t allowed; /* out */
    int errors;       /* out */
} worker_arg;

static void *same_key_worker(void *p)
{
    worker_arg *a = p;
    limit_result res;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t now = a->clock ? atomic_fetch_add(a->clock, 1000) : BASE;
        if (take(a->l, "shared", a->rule, now, 1, &res) != 0)
            a->errors++;
        a->allowed += (uint64_t)res.allowed;
    }
    return NULL;
}

static void *distinct_keys_worker(void *p)
{
    worker_arg *a = p;
    limit_result res;
    char key[48];
    for (uint64_t i = 0; i < a->n; i++) {
        int len = snprintf(key, sizeof key, "t%d:%llu", a->id, (unsigned long long)(i % 5000));
        uint64_t now = atomic_fetch_add(a->clock, 1000);
        if (limiter_take(a->l, key, (size_t)len, a->rule, now, i % 3 != 0, &res) != 0)
            a->errors++;
        if (i % 1000 == 0)
            limiter_sweep(a->l, now);
    }
    return NULL;
}

/* Runs nthreads workers of fn on args[]; answers the allowed total. */
static uint64_t run_threads(void *(*fn)(void *), worker_arg *args, int nthreads, int *errors)
{
    pthread_t th[4];
    uint64_t total = 0;
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, fn, &args[started]) != 0)
            break;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
        *errors += args[i].errors;
    }
    if (started < nthreads)
        (*errors)++;
    return total;
}

/* 100,000 takes of one key at one instant, split over 2, 3 or 4 threads:
 * exactly burst are allowed. */
static void test_threads_same_key(void)
{
    const limit_rule r = {100, SEC, 1000};
    for (int nt = 2; nt <= 4; nt++) {
        limiter *l = new_limiter(1024, 0);
        worker_arg args[4];
        int errors = 0;
        for (int i = 0; i < nt; i++)
            args[i] = (worker_arg){l, &r, i, 100000 / (uint64_t)nt + (i < 100000 % nt), NULL, 0, 0};
        uint64_t allowed = run_threads(same_key_worker, args, nt, &errors);
        limiter_free(l);
        CHECK(errors == 0 && allowed == r.burst, "%d threads: %llu allowed, %d errors", nt,
              (unsigned long long)allowed, errors);
    }
out:;
}

/* With a clock moving under the threads, the allowed total still obeys
 * burst + elapsed / T. */
static void test_threads_moving_clock(void)
{
    const limit_rule r = {1000, SEC, 20}; /* T = 1 ms; each take advances 1 us */
    _Atomic uint64_t clock = BASE;
    limiter *l = new_limiter(1024, 0);
    worker_arg args[4];
    int errors = 0;
    for (int i = 0; i < 4; i++)
        args[i] = (worker_arg){l, &r, i, 50000, &clock, 0, 0};
    uint64_t allowed = run_threads(same_key_worker, args, 4, &errors);
    uint64_t elapsed = atomic_load(&clock) - BASE;
    limiter_free(l);
    CHECK(errors == 0 && allowed <= r.burst + elapsed / MS, "%llu allowed in %llu us, %d errors",
          (unsigned long long)allowed, (unsigned long long)(elapsed / 1000), errors);
out:;
}

/* Threads on many keys with sweeps, evictions and long probe paths
 * racing: the sanitizers watch, the bound holds. */
static void test_threads_churn(void)
{
    const limit_rule r = {10, SEC, 3};
    _Atomic uint64_t clock = BASE;
    limiter *l = new_limiter(4096, 8);
    worker_arg args[4];
    int errors = 0;
    for (int i = 0; i < 4; i++)
        args[i] = (worker_arg){l, &r, i, 50000, &clock, 0, 0};
    run_threads(distinct_keys_worker, args, 4, &errors);
    limiter_stats st;
    limiter_stats_get(l, &st);
    limiter_free(l);
    CHECK(errors == 0 && st.keys <= 4096 && st.evictions > 0, "errors %d keys %llu evictions %llu",
          errors, (unsigned long long)st.keys, (unsigned long long)st.evictions);
out:;
}

/* ---- main ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} loop_cases[] = {
    {"limits at their edges are accepted", test_limits_accepted},
    {"steady state at exactly the rate is always allowed", test_steady_state},
    {"above the rate: never more than burst + elapsed / T", test_rate_bound},
    {"an idle key is dropped by the sweep, a peek creates none", test_expiry},
    {"an idle entry gives way to a new key without an active eviction", test_idle_gives_way},
    {"a full table evicts the smallest TAT", test_eviction_order},
    {"long keys: heap copies, full compare, freed", test_long_keys},
    {"random operations on a small table match the model", test_model},
    {"the same past capacity: only evicted keys come back fresh", test_model_evicting},
    {"a flood of 1,000,000 keys into 10,000 keeps memory fixed", test_flood},
    {"2-4 threads, one key, one instant: exactly burst allowed", test_threads_same_key},
    {"4 threads, one key, moving clock: the rate bound holds", test_threads_moving_clock},
    {"4 threads, many keys, sweeps and evictions", test_threads_churn},
};

int main(void)
{
    char name[128];
    for (size_t i = 0; i < COUNT(seq_cases); i++) {
        case_name = seq_cases[i].name;
        run_seq_case(&seq_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(err_cases); i++) {
        snprintf(name, sizeof name, "refused: %s", err_cases[i].name);
        case_name = name;
        run_err_case(&err_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(loop_cases); i++) {
        case_name = loop_cases[i].name;
        loop_cases[i].fn();
        finish_case();
    }
    return report();
}
