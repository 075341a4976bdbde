/* resolve_bench.c: benchmark of the broker resolution engine (core/resolve*.c).
 * Built by spec/c/resolve.mk as bin/bench_resolve (-O2, no sanitizers);
 * not a test.  Uses resolve.h, pthreads and /proc/self/statm.
 *
 * Generates a million broker values spread over the scopes (2,000 brokers;
 * 10k users, 1k organizations, 20k workspaces in chains of up to 20, 50k
 * projects, 100k tasks, 20k ai_runs, 37k ai_tasks; random v4-like uuids),
 * loads them in one batch and reports load time, bytes per value (the
 * engine's own count and the process's resident growth), then resolve
 * latency of a 20-broker request with a full context (deepest workspace
 * chain) on one thread, on two threads, and on two threads while this
 * thread publishes single-value changes, plus the cost of one publish.
 * "cold" requests cycle through 4,096 random contexts (their data is mostly
 * out of cache: each lookup pays memory latency); "hot" ones through 16.
 *
 *   bin/bench_resolve [values] [resolve ops per thread]
 *   (defaults 1000000 and 200000) */
#include "engine/resolve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BROKERS = 2000, USERS = 10000, ORGS = 1000, WORKSPACES = 20000, WS_ROOTS = 1000,
       PROJECTS = 50000, TASKS = 100000, AI_RUNS = 20000, AI_TASKS = 37000, REQ = 20,
       CONTEXTS = 4096 };

/* Per level: how many scopes and how many values each holds. */
static const struct {
    rs_level level;
    size_t scopes, per_scope;
} plan[] = {{RS_USER, USERS, 10},       {RS_ORGANIZATION, ORGS, 50}, {RS_WORKSPACE, WORKSPACES, 10},
            {RS_PROJECT, PROJECTS, 4},  {RS_TASK, TASKS, 2},        {RS_AI_RUN, AI_RUNS, 5},
            {RS_AI_TASK, AI_TASKS, 4},  {RS_GLOBAL, 1, BROKERS}};

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static rs_uuid random_uuid(void)
{
    rs_uuid u;
    uint64_t a = rng(), b = rng();
    memcpy(u.b, &a, 8);
    memcpy(u.b + 8, &b, 8);
    u.b[6] = (uint8_t)((u.b[6] & 0x0f) | 0x40); /* version 4, as gen_random_uuid */
    u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80);
    return u;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* The generated world. */
static rs_uuid brokers[BROKERS];
static rs_uuid *scopes[RS_GLOBAL + 1]; /* per level, plan's count of ids */
static size_t scope_count[RS_GLOBAL + 1];
static rs_value *values;
static size_t n_values;
static char *json_pool;

static void die(const char *what)
{
    fprintf(stderr, "bench_resolve: %s\n", what);
    exit(1);
}

/* Builds the value rows: each scope holds `per_scope` distinct brokers. */
static void generate(size_t want)
{
    for (size_t i = 0; i < BROKERS; i++)
        brokers[i] = random_uuid();
    size_t total = 0;
    for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++)
        total += plan[p].scopes * plan[p].per_scope;
    values = calloc(total, sizeof *values);
    json_pool = malloc(total * 32);
    if (!values || !json_pool)
        die("out of memory");
    char *jp = json_pool;
    for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++) {
        rs_level level = plan[p].level;
        scopes[level] = malloc(plan[p].scopes * sizeof(rs_uuid));
        if (!scopes[level])
            die("out of memory");
        scope_count[level] = plan[p].scopes;
        for (size_t s = 0; s < plan[p].scopes; s++) {
            scopes[level][s] = level == RS_GLOBAL ? (rs_uuid){{0}} : random_uuid();
            size_t start = (size_t)(rng() % BROKERS);
            for (size_t j = 0; j < plan[p].per_scope && n_values < want; j++) {
                rs_value *v = &values[n_values++];
                v->id = random_uuid();
                v->broker_id = brokers[(start + j * 37) % BROKERS]; /* 37 is prime to 2000 */
                v->level = level;
                v->scope_id = scopes[level][s];
                int len;
                switch (rng() % 3) {
                case 0: len = sprintf(jp, "\"value-%06u\"", (unsigned)(rng() % 1000000)); break;
                case 1: len = sprintf(jp, "%u", (unsigned)(rng() % 100000)); break;
                default: len = sprintf(jp, "{\"k\": %u, \"on\": true}", (unsigned)(rng() % 1000)); break;
                }
                v->json = jp;
                v->json_len = (size_t)len;
                jp += len + 1;
            }
        }
    }
}

/* Workspace i has parent i - 1000: a thousand chains of twenty. */
static void load_static(rs_batch *b)
{
    for (size_t i = 0; i < BROKERS; i++) {
        rs_broker br = {brokers[i], "broker", "str", NULL, "generated"};
        if (rs_batch_put_broker(b, &br) != 0)
            die("put broker");
    }
    rs_uuid *ws = scopes[RS_WORKSPACE];
    for (size_t i = 0; i < WORKSPACES; i++) {
        rs_workspace w = {ws[i], i >= WS_ROOTS ? &ws[i - WS_ROOTS] : NULL,
                          &scopes[RS_ORGANIZATION][i % ORGS]};
        if (rs_batch_put_workspace(b, &w) != 0)
            die("put workspace");
    }
}

/* Random full contexts (a workspace at the bottom of a 20-long chain) and
 * random 20-broker requests. */
typedef struct query {
    rs_context ctx;
    rs_uuid ids[REQ];
} query;

static query *queries;

static const rs_uuid *pick(rs_level level)
{
    return &scopes[level][rng() % scope_count[level]];
}

static void make_queries(void)
{
    queries = calloc(CONTEXTS, sizeof *queries);
    if (!queries)
        die("out of memory");
    for (size_t i = 0; i < CONTEXTS; i++) {
        query *q = &queries[i];
        q->ctx = (rs_context){pick(RS_USER), pick(RS_ORGANIZATION),
                              &scopes[RS_WORKSPACE][WORKSPACES - WS_ROOTS + rng() % WS_ROOTS],
                              pick(RS_PROJECT), pick(RS_TASK), pick(RS_AI_RUN), pick(RS_AI_TASK)};
        for (size_t j = 0; j < REQ; j++)
            q->ids[j] = brokers[rng() % BROKERS];
    }
}

typedef struct reader_arg {
    rs_engine *e;
    size_t ops;
    size_t contexts; /* how many of queries[] it cycles through */
    double ns_per_op;
    size_t rows;
    size_t levels[RS_GLOBAL + 1];
    atomic_int *running;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    rs_reader *r = rs_reader_new(a->e);
    rs_row out[REQ];
    if (!r)
        die("no reader slot");
    double t0 = now();
    for (size_t i = 0; i < a->ops; i++) {
        const query *q = &queries[i % a->contexts];
        rs_ids req = {q->ids, NULL, REQ};
        const rs_snap *s = rs_read_begin(r);
        size_t n = rs_resolve(s, &q->ctx, &req, out);
        a->rows += n;
        for (size_t k = 0; k < n; k++)
            a->levels[out[k].level]++;
        rs_read_end(r);
    }
    a->ns_per_op = (now() - t0) * 1e9 / (double)a->ops;
    rs_reader_free(r);
    if (a->running)
        atomic_fetch_sub(a->running, 1);
    return NULL;
}

/* Runs `threads` readers of `ops` each; with a writer (writer 1: flat
 * out, writer N > 1: one publish every N microseconds) this thread
 * publishes one changed value per batch until they finish.  Returns the
 * number of publishes. */
static size_t run_readers(rs_engine *e, int threads, size_t ops, size_t contexts, long writer,
                          reader_arg *args, double *publish_us)
{
    pthread_t th[2];
    atomic_int running = threads;
    for (int i = 0; i < threads; i++) {
        args[i] = (reader_arg){.e = e, .ops = ops, .contexts = contexts, .running = &running};
        if (pthread_create(&th[i], NULL, reader, &args[i]) != 0)
            die("pthread_create");
    }
    size_t publishes = 0;
    double spent = 0;
    while (writer && atomic_load(&running) > 0) {
        rs_value v = values[rng() % n_values];
        char json[32];
        v.json_len = (size_t)sprintf(json, "%zu", publishes);
        v.json = json;
        double t0 = now();
        rs_batch *b = rs_batch_begin(e);
        if (!b || rs_batch_put_value(b, &v) != 0)
            die("writer");
        rs_batch_publish(b);
        spent += now() - t0;
        publishes++;
        if (writer > 1)
            nanosleep(&(struct timespec){0, writer * 1000}, NULL);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    *publish_us = publishes ? spent * 1e6 / (double)publishes : 0;
    return publishes;
}

int main(int argc, char **argv)
{
    size_t want = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t ops = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
    generate(want);
    make_queries();
    printf("resolve_bench: %zu values, %d brokers, %d workspaces (chains of 20)\n", n_values,
           BROKERS, WORKSPACES);

    size_t rss0 = rss_bytes();
    double t0 = now();
    rs_engine *e = rs_engine_new();
    rs_batch *b = e ? rs_batch_begin(e) : NULL;
    if (!b)
        die("engine");
    load_static(b);
    for (size_t i = 0; i < n_values; i++)
        if (rs_batch_put_value(b, &values[i]) != 0)
            die("put value");
    rs_batch_publish(b);
    double load_s = now() - t0;
    size_t rss1 = rss_bytes();
    rs_reader *r = rs_reader_new(e);
    rs_stats st;
    rs_snap_stats(rs_read_begin(r), &st);
    rs_read_end(r);
    rs_reader_free(r);
    printf("load: %.3f s (%.0f ns/value, one batch)\n", load_s, load_s * 1e9 / (double)n_values);
    printf("memory: engine count %zu bytes = %.1f B/value; resident growth %zu bytes = %.1f B/value\n",
           st.bytes, (double)st.bytes / (double)st.values, rss1 - rss0,
           (double)(rss1 - rss0) / (double)st.values);
    printf("held: %zu values, %zu scopes, %zu workspaces, %zu brokers\n", st.values, st.scopes,
           st.workspaces, st.brokers);

    reader_arg args[2];
    double pub_us;
    run_readers(e, 1, ops, CONTEXTS, 0, args, &pub_us);
    printf("resolve, 20 brokers, full context, cold, 1 thread: %.0f ns/op (%.1f rows/op; winners:",
           args[0].ns_per_op, (double)args[0].rows / (double)ops);
    for (int l = RS_AI_TASK; l <= RS_GLOBAL; l++)
        printf(" %s %.1f%%", rs_level_name((rs_level)l),
               100.0 * (double)args[0].levels[l] / (double)args[0].rows);
    printf(")\n");
    run_readers(e, 1, ops, 16, 0, args, &pub_us);
    printf("resolve, hot, 1 thread: %.0f ns/op\n", args[0].ns_per_op);
    for (size_t hot = 0; hot < 2; hot++) {
        size_t contexts = hot ? 16 : CONTEXTS;
        const char *kind = hot ? "hot" : "cold";
        run_readers(e, 2, ops, contexts, 0, args, &pub_us);
        printf("resolve, %s, 2 threads, no writer: %.0f and %.0f ns/op\n", kind, args[0].ns_per_op,
               args[1].ns_per_op);
        for (long pace = 1; pace <= 100; pace *= 100) {
            size_t pubs = run_readers(e, 2, ops, contexts, pace, args, &pub_us);
            printf("resolve, %s, 2 threads while the writer publishes %s: %.0f and %.0f ns/op; "
                   "%zu publishes of 1 value, %.1f us each\n",
                   kind, pace == 1 ? "flat out" : "every 100 us", args[0].ns_per_op,
                   args[1].ns_per_op, pubs, pub_us);
        }
    }

    /* One publish of one change, alone, and one batch of 100,000 changes. */
    enum { SINGLE = 10000, BIG = 100000 };
    t0 = now();
    for (size_t i = 0; i < SINGLE; i++) {
        b = rs_batch_begin(e);
        if (!b || rs_batch_put_value(b, &values[rng() % n_values]) != 0)
            die("single");
        rs_batch_publish(b);
    }
    printf("publish of a single change: %.1f us (no readers)\n",
           (now() - t0) * 1e6 / SINGLE);
    t0 = now();
    b = rs_batch_begin(e);
    for (size_t i = 0; b && i < BIG; i++)
        if (rs_batch_put_value(b, &values[rng() % n_values]) != 0)
            die("big");
    if (!b)
        die("big batch");
    rs_batch_publish(b);
    printf("one batch of %d updates: %.3f s (%.0f ns/change)\n", BIG, now() - t0,
           (now() - t0) * 1e9 / BIG);
    r = rs_reader_new(e);
    rs_snap_stats(rs_read_begin(r), &st);
    rs_read_end(r);
    rs_reader_free(r);
    printf("after: %zu values, %.1f B/value, %zu bytes retired awaiting readers\n", st.values,
           (double)st.bytes / (double)st.values, st.retired_bytes);
    t0 = now();
    rs_engine_free(e);
    printf("free: %.3f s\n", now() - t0);
    free(values);
    free(json_pool);
    free(queries);
    for (int l = 0; l <= RS_GLOBAL; l++)
        free(scopes[l]);
    return 0;
}
