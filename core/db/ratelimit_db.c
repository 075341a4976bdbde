/* ratelimit_db.c: see ratelimit_db.h.  Uses libpq (blocking, on this
 * unit's own thread), usage, buf and pthreads; knows nothing of HTTP or
 * Lua. */
#include "ratelimit_db.h"

#include "base/clock.h"
#include "engine/uuid.h"
#include "obs/log.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ratelimit_db {
    pthread_t thread;
    pthread_mutex_t lock;      /* guards stopping */
    pthread_cond_t wake;       /* signalled by ratelimit_db_stop */
    int stopping;
    char *database_url;        /* owned */
    usage *usage;              /* not owned */
    int flush_ms, sweep_ms;
    PGconn *conn;              /* owned by the thread; NULL while disconnected */
    int flush_failing, sweep_failing; /* last attempt failed: log changes only */
    /* Metrics: written by the thread, read by /metrics. */
    _Atomic uint64_t flushes, flushed_rows, flush_failures, skipped_rows;
    _Atomic uint64_t sweeps, swept_rows, sweep_failures;
};

/* One statement per batch: the rows as six parallel arrays.  A user absent
 * from auth.users is filtered out here: validate_user_id() (the trigger
 * standing in for the foreign key) would otherwise fail the whole batch. */
static const char FLUSH_SQL[] =
    "insert into public.rate_limit_tracking as t "
    "(user_id, agent_type, limit_type, period_start, period_end, request_count, limit_value) "
    "select r.u, r.a, r.k, p.s, p.s + case r.k when 'hourly' then interval '1 hour' else interval '1 day' end, "
    "r.c, r.l "
    "from unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::int[]) as r(u, a, k, s, c, l) "
    "cross join lateral (select to_timestamp(r.s) at time zone 'UTC' as s) as p "
    "where exists (select 1 from auth.users x where x.id = r.u) "
    "on conflict (user_id, agent_type, limit_type, period_start) do update "
    "set request_count = coalesce(t.request_count, 0) + excluded.request_count, "
    "limit_value = excluded.limit_value";

static const char SWEEP_SQL[] = "select public.strata_rate_limit_sweep()";

/* libpq's messages span lines; the log wants one. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

static int ensure_connected(ratelimit_db *d, char *why, size_t len)
{
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    PQfinish(d->conn);
    const char *keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *vals[] = {d->database_url, "3", "strata-ratelimit", "-c statement_timeout=10000", NULL};
    d->conn = PQconnectdbParams(keys, vals, 1);
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    snprintf(why, len, "%s", d->conn ? PQerrorMessage(d->conn) : "out of memory");
    PQfinish(d->conn);
    d->conn = NULL;
    return -1;
}

/* Appends s as a quoted element of an array literal. */
static int add_quoted(buf *b, const char *s)
{
    int rc = buf_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            rc |= buf_add(b, "\\", 1);
        rc |= buf_add(b, s, 1);
    }
    return rc | buf_add(b, "\"", 1);
}

enum { A_USER, A_AGENT, A_KIND, A_START, A_COUNT, A_LIMIT, NARRAYS };

/* The six array literals of rows[0..n).  0 or -1 when out of memory. */
static int build_arrays(const usage_row *rows, size_t n, buf a[NARRAYS])
{
    int rc = 0;
    for (int i = 0; i < NARRAYS; i++)
        rc |= buf_add(&a[i], "{", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const usage_row *r = &rows[i];
        const char *sep = i ? "," : "";
        char text[40];
        for (int k = 0; k < NARRAYS; k++)
            rc |= buf_add_str(&a[k], sep);
        rs_uuid user;
        memcpy(user.b, r->user, sizeof user.b);
        rs_uuid_format(&user, text);
        rc |= buf_add_str(&a[A_USER], text);
        rc |= add_quoted(&a[A_AGENT], r->agent);
        rc |= buf_add_str(&a[A_KIND], r->kind == USAGE_DAILY ? "daily" : "hourly");
        snprintf(text, sizeof text, "%" PRId64, r->period_start);
        rc |= buf_add_str(&a[A_START], text);
        rc |= buf_add_u64(&a[A_COUNT], r->count);
        snprintf(text, sizeof text, "%" PRId32, r->limit);
        rc |= buf_add_str(&a[A_LIMIT], text);
    }
    for (int i = 0; i < NARRAYS; i++)
        rc |= buf_add(&a[i], "}", 2); /* with the NUL: libpq wants C strings */
    return rc;
}

/* Writes rows[0..n) in one statement.  0, or -1 with why. */
static int write_rows(ratelimit_db *d, const usage_row *rows, size_t n, char *why, size_t len)
{
    buf a[NARRAYS] = {{0}};
    int rc = -1;
    if (build_arrays(rows, n, a) < 0) {
        snprintf(why, len, "out of memory");
        goto out;
    }
    if (ensure_connected(d, why, len) < 0)
        goto out;
    const char *params[NARRAYS];
    for (int i = 0; i < NARRAYS; i++)
        params[i] = a[i].p;
    PGresult *r = PQexecParams(d->conn, FLUSH_SQL, NARRAYS, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        unsigned long done = strtoul(PQcmdTuples(r), NULL, 10);
        atomic_fetch_add(&d->flushed_rows, done);
        atomic_fetch_add(&d->skipped_rows, n > done ? n - done : 0);
        rc = 0;
    } else {
        snprintf(why, len, "%s", PQresultErrorMessage(r));
    }
    PQclear(r);
out:
    for (int i = 0; i < NARRAYS; i++)
        buf_free(&a[i]);
    return rc;
}

static uint64_t sum_counts(const usage_row *rows, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += rows[i].count;
    return total;
}

/* One pass of the writer.  final: no retry will follow, so a failed batch
 * is counted as dropped rather than put back. */
static void flush(ratelimit_db *d, int final)
{
    usage_row *rows;
    size_t n = usage_take(d->usage, &rows);
    if (n == 0)
        return;
    char why[512] = "";
    atomic_fetch_add(&d->flushes, 1);
    if (write_rows(d, rows, n, why, sizeof why) == 0) {
        if (d->flush_failing)
            log_eventf("info", "rate_limit_tracking: usage rows stored again");
        d->flush_failing = 0;
    } else {
        atomic_fetch_add(&d->flush_failures, 1);
        one_line(why);
        if (final) {
            uint64_t lost = sum_counts(rows, n);
            usage_note_dropped(d->usage, lost);
            log_eventf("error", "rate_limit_tracking: %zu usage row(s) (%llu request counts) lost at shutdown: %s",
                       n, (unsigned long long)lost, why);
        } else {
            if (!d->flush_failing)
                log_eventf("warn", "rate_limit_tracking: usage rows not stored, kept and retried: %s", why);
            usage_put_back(d->usage, rows, n);
        }
        d->flush_failing = 1;
    }
    free(rows);
}

static void sweep(ratelimit_db *d)
{
    char why[512] = "";
    int ok = 0;
    if (ensure_connected(d, why, sizeof why) == 0) {
        PGresult *r = PQexec(d->conn, SWEEP_SQL);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            atomic_fetch_add(&d->swept_rows, strtoull(PQgetvalue(r, 0, 0), NULL, 10));
            ok = 1;
        } else {
            snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    atomic_fetch_add(ok ? &d->sweeps : &d->sweep_failures, 1);
    if (!ok && !d->sweep_failing) {
        one_line(why);
        log_eventf("warn", "strata_rate_limit_sweep failed (retried next period): %s", why);
    }
    d->sweep_failing = !ok;
}

/* Waits until `until_ms` (monotonic) or a stop.  1 when stopping. */
static int wait_until(ratelimit_db *d, uint64_t until_ms)
{
    uint64_t now = mono_ms();
    uint64_t wait = until_ms > now ? until_ms - now : 0;
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += (time_t)(wait / 1000);
    at.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    while (!d->stopping && pthread_cond_timedwait(&d->wake, &d->lock, &at) == 0)
        ;
    int stop = d->stopping;
    pthread_mutex_unlock(&d->lock);
    return stop;
}

static void *run(void *arg)
{
    ratelimit_db *d = arg;
    uint64_t next_flush = mono_ms() + (uint64_t)d->flush_ms;
    uint64_t next_sweep = mono_ms() + (uint64_t)d->sweep_ms;
    while (!wait_until(d, next_flush < next_sweep ? next_flush : next_sweep)) {
        uint64_t now = mono_ms();
        if (now >= next_flush) {
            flush(d, 0);
            next_flush = now + (uint64_t)d->flush_ms;
        }
        if (now >= next_sweep) {
            sweep(d);
            next_sweep = now + (uint64_t)d->sweep_ms;
        }
    }
    flush(d, 1);
    PQfinish(d->conn);
    d->conn = NULL;
    return NULL;
}

ratelimit_db *ratelimit_db_start(const char *database_url, usage *u, int flush_ms, int sweep_ms,
                                 char *err, size_t errlen)
{
    ratelimit_db *d = calloc(1, sizeof *d);
    if (!d || !(d->database_url = strdup(database_url))) {
        snprintf(err, errlen, "rate-limit writer: out of memory");
        free(d);
        return NULL;
    }
    d->usage = u;
    d->flush_ms = flush_ms > 0 ? flush_ms : 1000;
    d->sweep_ms = sweep_ms > 0 ? sweep_ms : 60000;
    int rc = pthread_mutex_init(&d->lock, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&d->wake, NULL)) != 0)
        pthread_mutex_destroy(&d->lock);
    else if (rc == 0 && (rc = pthread_create(&d->thread, NULL, run, d)) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
    }
    if (rc) {
        snprintf(err, errlen, "rate-limit writer: cannot start: %s", strerror(rc));
        free(d->database_url);
        free(d);
        return NULL;
    }
    return d;
}

void ratelimit_db_stop(ratelimit_db *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d->database_url);
    free(d);
}

int ratelimit_db_metrics(ratelimit_db *d, buf *out)
{
    usage_stats st;
    usage_stats_get(d->usage, &st);
    char text[2560];
    snprintf(text, sizeof text,
             "# HELP strata_ratelimit_usage_recorded_total Agent requests counted for rate_limit_tracking.\n"
             "# TYPE strata_ratelimit_usage_recorded_total counter\nstrata_ratelimit_usage_recorded_total %llu\n"
             "# HELP strata_ratelimit_usage_pending_rows Usage rows waiting to be written.\n"
             "# TYPE strata_ratelimit_usage_pending_rows gauge\nstrata_ratelimit_usage_pending_rows %llu\n"
             "# HELP strata_ratelimit_usage_dropped_total Request counts lost (table full or shutdown write failed).\n"
             "# TYPE strata_ratelimit_usage_dropped_total counter\nstrata_ratelimit_usage_dropped_total %llu\n"
             "# HELP strata_ratelimit_usage_flushes_total Batches sent to rate_limit_tracking.\n"
             "# TYPE strata_ratelimit_usage_flushes_total counter\nstrata_ratelimit_usage_flushes_total %llu\n"
             "# HELP strata_ratelimit_usage_flush_failures_total Batches refused (kept and retried).\n"
             "# TYPE strata_ratelimit_usage_flush_failures_total counter\n"
             "strata_ratelimit_usage_flush_failures_total %llu\n"
             "# HELP strata_ratelimit_usage_rows_written_total Rows inserted or updated in rate_limit_tracking.\n"
             "# TYPE strata_ratelimit_usage_rows_written_total counter\n"
             "strata_ratelimit_usage_rows_written_total %llu\n"
             "# HELP strata_ratelimit_usage_rows_skipped_total Rows of users absent from auth.users.\n"
             "# TYPE strata_ratelimit_usage_rows_skipped_total counter\n"
             "strata_ratelimit_usage_rows_skipped_total %llu\n"
             "# HELP strata_ratelimit_sweeps_total Runs of strata_rate_limit_sweep(), by result.\n"
             "# TYPE strata_ratelimit_sweeps_total counter\n"
             "strata_ratelimit_sweeps_total{result=\"ok\"} %llu\n"
             "strata_ratelimit_sweeps_total{result=\"error\"} %llu\n"
             "# HELP strata_ratelimit_swept_rows_total Idle cluster cells deleted by the sweep.\n"
             "# TYPE strata_ratelimit_swept_rows_total counter\nstrata_ratelimit_swept_rows_total %llu\n",
             (unsigned long long)st.recorded, (unsigned long long)st.pending, (unsigned long long)st.dropped,
             (unsigned long long)atomic_load(&d->flushes), (unsigned long long)atomic_load(&d->flush_failures),
             (unsigned long long)atomic_load(&d->flushed_rows), (unsigned long long)atomic_load(&d->skipped_rows),
             (unsigned long long)atomic_load(&d->sweeps), (unsigned long long)atomic_load(&d->sweep_failures),
             (unsigned long long)atomic_load(&d->swept_rows));
    return buf_add_str(out, text);
}
