/* broker_feed.c: see broker_feed.h.  Uses libpq (blocking, on its own
 * thread), the engine's writer API, uuid_set, poll(2) and an eventfd. */
#include "broker_feed.h"

#include "base/clock.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "engine/uuid_set.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDS 256 /* ids per notification (the trigger sends at most 200) */
#define IDLE_MS 1000 /* a wait with nothing to do: reclaim and look at the connection */
#define CATCH_UP_ROUNDS 16 /* applies in a row before syncs, reclaiming and stopping are served */

/* strata_broker_apply_lag_seconds' upper bounds, +Inf apart. */
static const double LAG_BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define LAG_BUCKETS (sizeof LAG_BOUNDS / sizeof LAG_BOUNDS[0])

/* A transaction named by notifications, and its latest commit stamp. */
typedef struct xact {
    uint64_t xid;
    double stamp; /* seconds since the epoch, the database's clock */
} xact;

enum { T_VALUES, T_WORKSPACES, T_BROKERS, NTABLES };

static const char *const LOAD_SQL[NTABLES] = {
    "select id, broker_id, is_global, ai_tasks_id, ai_runs_id, task_id, project_id, workspace_id, "
    "organization_id, user_id, value::text from public.broker_values",
    "select id, parent_workspace_id, organization_id from public.workspaces",
    "select id, name, data_type::text, default_value, description from public.data_broker",
};

struct broker_feed {
    pthread_t thread;
    char *url;                 /* owned */
    rs_engine *engine;
    int wake_fd;               /* owned eventfd: stop or sync */
    _Atomic int stopping;
    _Atomic int ready;
    _Atomic uint64_t wanted;   /* last sync ticket handed out */
    _Atomic uint64_t synced;   /* last sync ticket served */
    broker_synced_fn on_synced;
    void *arg;
    PGconn *conn;              /* the feed thread's; NULL while disconnected */
    uuid_set held[NTABLES];    /* ids the engine holds, per table */
    /* What the next apply must do, gathered from notifications. */
    int resync[NTABLES];
    uuid_set dirty[NTABLES];
    /* Metrics (written by the feed thread, read by /metrics). */
    _Atomic uint64_t loads, resyncs, lost, notifications, applied, load_ms;
    _Atomic uint64_t ddl;      /* schema changes seen (strata_ddl), for the REST catalog */
    _Atomic uint64_t admin_config; /* admin_config changes seen (strata_admin_config), for the agent limits */
    _Atomic uint64_t stalls;   /* waits begun while libpq held unread notifications */
    /* The lag, commit to applied: the transactions named since the last
     * apply (in commit order), and the last one applied, observed once the
     * next notification shows it complete or the feed goes idle. */
    xact *xacts;               /* owned */
    size_t nxacts, xacts_cap;
    xact open;
    double open_applied;       /* when open was applied; 0 = none */
    _Atomic uint64_t lag_bucket[LAG_BUCKETS + 1], lag_sum_us;
};

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void observe_lag(broker_feed *f, double seconds)
{
    if (seconds < 0)
        seconds = 0; /* the database's clock ahead of ours */
    size_t b = 0;
    while (b < LAG_BUCKETS && seconds > LAG_BOUNDS[b])
        b++;
    atomic_fetch_add(&f->lag_bucket[b], 1);
    atomic_fetch_add(&f->lag_sum_us, (uint64_t)(seconds * 1e6));
}

/* Observes the last transaction applied: it is complete. */
static void close_open(broker_feed *f)
{
    if (f->open_applied > 0)
        observe_lag(f, f->open_applied - f->open.stamp);
    f->open_applied = 0;
}

/* Notes that transaction xid changed something, stamped at.  A
 * transaction's notifications arrive together, in commit order, but may be
 * split across applies: only the latest stamp counts, observed once. */
static void note_xact(broker_feed *f, uint64_t xid, double at)
{
    if (f->nxacts == 0 && f->open_applied > 0) {
        if (f->open.xid == xid) {
            at = at > f->open.stamp ? at : f->open.stamp;
            f->open_applied = 0; /* it goes on: observed after this apply */
        } else {
            close_open(f);
        }
    }
    xact *last = f->nxacts ? &f->xacts[f->nxacts - 1] : NULL;
    if (last && last->xid == xid) {
        if (at > last->stamp)
            last->stamp = at;
        return;
    }
    if (f->nxacts == f->xacts_cap) {
        size_t cap = f->xacts_cap ? f->xacts_cap * 2 : 64;
        xact *x = realloc(f->xacts, cap * sizeof *x);
        if (!x)
            return; /* unmeasured, not unapplied */
        f->xacts = x;
        f->xacts_cap = cap;
    }
    f->xacts[f->nxacts++] = (xact){xid, at};
}

/* After an apply: the transactions named before it are in the engine. */
static void applied_xacts(broker_feed *f)
{
    if (f->nxacts == 0)
        return;
    double t = now_epoch();
    for (size_t i = 0; i + 1 < f->nxacts; i++)
        observe_lag(f, t - f->xacts[i].stamp);
    f->open = f->xacts[f->nxacts - 1];
    f->open_applied = t;
    f->nxacts = 0;
}

static int get_uuid(const PGresult *r, int row, int col, rs_uuid *u)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return rs_uuid_parse(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), u) == 0;
}

static const char *get_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Puts one row of table t into the batch and marks it held.  0 or -1. */
static int put_row(broker_feed *f, rs_batch *b, int t, const PGresult *r, int row, uuid_set *seen)
{
    rs_uuid id;
    if (!get_uuid(r, row, 0, &id))
        return 0;
    int rc = 0;
    if (t == T_VALUES) {
        rs_uuid cols[7], broker;
        const rs_uuid *p[7];
        for (int i = 0; i < 7; i++)
            p[i] = get_uuid(r, row, 3 + i, &cols[i]) ? &cols[i] : NULL;
        const rs_uuid *scope = NULL;
        const char *g = get_str(r, row, 2);
        rs_level level = rs_scope_of(g && g[0] == 't', p[0], p[1], p[2], p[3], p[4], p[5], p[6], &scope);
        if (level == RS_NONE || !get_uuid(r, row, 1, &broker))
            return 0; /* the check constraint makes this impossible */
        rs_value v = {.id = id, .broker_id = broker, .level = level,
                      .json = PQgetvalue(r, row, 10), .json_len = (size_t)PQgetlength(r, row, 10)};
        if (scope)
            v.scope_id = *scope;
        rc = rs_batch_put_value(b, &v);
    } else if (t == T_WORKSPACES) {
        rs_uuid parent, org;
        rs_workspace w = {.id = id, .parent = get_uuid(r, row, 1, &parent) ? &parent : NULL,
                          .organization = get_uuid(r, row, 2, &org) ? &org : NULL};
        rc = rs_batch_put_workspace(b, &w);
    } else {
        rs_broker br = {id, get_str(r, row, 1), get_str(r, row, 2), get_str(r, row, 3), get_str(r, row, 4)};
        rc = rs_batch_put_broker(b, &br);
    }
    if (rc < 0 || uuid_set_add(&f->held[t], &id) < 0 || (seen && uuid_set_add(seen, &id) < 0))
        return -1;
    return 0;
}

static int del_row(broker_feed *f, rs_batch *b, int t, const rs_uuid *id)
{
    uuid_set_del(&f->held[t], id);
    if (t == T_VALUES)
        return rs_batch_del_value(b, id);
    if (t == T_WORKSPACES)
        return rs_batch_del_workspace(b, id);
    return rs_batch_del_broker(b, id);
}

typedef struct sweep {
    broker_feed *f;
    rs_batch *b;
    int t;
    const uuid_set *seen;
    uuid_set gone;
} sweep;

static void note_gone(void *arg, const rs_uuid *u)
{
    sweep *s = arg;
    if (!uuid_set_has(s->seen, u) && uuid_set_add(&s->gone, u) < 0)
        log_eventf("error", "broker feed: out of memory while resynchronising");
}

static void delete_gone(void *arg, const rs_uuid *u)
{
    sweep *s = arg;
    del_row(s->f, s->b, s->t, u);
}

/* Streams all of table t into b; rows the engine held that are gone from
 * the table are deleted.  0, or -1 on a database error. */
static int load_table(broker_feed *f, rs_batch *b, int t)
{
    if (!PQsendQuery(f->conn, LOAD_SQL[t]) || !PQsetSingleRowMode(f->conn))
        return -1;
    uuid_set seen = {0};
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(f->conn))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            if (rc == 0 && put_row(f, b, t, r, 0, &seen) < 0)
                rc = -1;
        } else if (st != PGRES_TUPLES_OK) {
            log_eventf("error", "broker feed: loading: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    if (rc == 0) {
        sweep s = {f, b, t, &seen, {0}};
        uuid_set_each(&f->held[t], note_gone, &s);
        uuid_set_each(&s.gone, delete_gone, &s);
        uuid_set_free(&s.gone);
    }
    uuid_set_free(&seen);
    return rc;
}

/* Re-reads the rows of table t whose ids are in ids.  0 or -1. */
static int apply_ids(broker_feed *f, rs_batch *b, int t, const uuid_set *ids)
{
    buf arr = {0};
    int rc = buf_add_str(&arr, "{");
    size_t n = 0;
    for (size_t i = 0; i < ids->cap; i++) {
        if (!ids->used[i])
            continue;
        char text[37];
        rs_uuid_format(&ids->slots[i], text);
        rc |= buf_add_str(&arr, n++ ? "," : "");
        rc |= buf_add_str(&arr, text);
    }
    rc |= buf_add(&arr, "}", 2);
    if (rc) {
        buf_free(&arr);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql, "%s where id = any($1::uuid[])", LOAD_SQL[t]);
    const char *params[] = {arr.p};
    PGresult *r = PQexecParams(f->conn, sql, 1, NULL, params, NULL, NULL, 0);
    buf_free(&arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_eventf("error", "broker feed: reading changes: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    uuid_set found = {0};
    for (int row = 0; row < PQntuples(r) && rc == 0; row++)
        rc = put_row(f, b, t, r, row, &found);
    PQclear(r);
    /* Ids named but not found were deleted. */
    for (size_t i = 0; rc == 0 && i < ids->cap; i++)
        if (ids->used[i] && !uuid_set_has(&found, &ids->slots[i]))
            rc = del_row(f, b, t, &ids->slots[i]) < 0 ? -1 : 0;
    uuid_set_free(&found);
    return rc;
}

/* Applies what the notifications asked for, in one published batch. */
static int apply_pending(broker_feed *f, int all)
{
    int any = all;
    for (int t = 0; t < NTABLES; t++)
        any |= f->resync[t] || f->dirty[t].count;
    if (!any) {
        applied_xacts(f);
        return 0;
    }
    rs_batch *b = rs_batch_begin(f->engine);
    if (!b)
        return -1;
    int rc = 0;
    /* Brokers and workspaces first: values refer to them. */
    for (int t = NTABLES - 1; t >= 0 && rc == 0; t--) {
        if (all || f->resync[t])
            rc = load_table(f, b, t);
        else if (f->dirty[t].count)
            rc = apply_ids(f, b, t, &f->dirty[t]);
    }
    rs_batch_publish(b);
    for (int t = 0; t < NTABLES; t++) {
        if (rc == 0) {
            f->resync[t] = 0;
            uuid_set_free(&f->dirty[t]);
        }
    }
    if (rc == 0)
        applied_xacts(f);
    atomic_fetch_add(&f->applied, 1);
    return rc;
}

/* The text after "key" and its colon (and a quote), or NULL. */
static const char *value_of(const char *payload, const char *key)
{
    const char *p = strstr(payload, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':' || *p == '"')
        p++;
    return p;
}

/* Reads one notification payload into the pending work. */
static void note(broker_feed *f, const char *payload)
{
    const char *q = value_of(payload, "\"t\"");
    int t = !q ? -1 : q[0] == 'v' ? T_VALUES : q[0] == 'w' ? T_WORKSPACES : q[0] == 'b' ? T_BROKERS : -1;
    if (t < 0)
        return;
    /* Payloads of sql/110_broker_notify_commit_time.sql: measured. */
    const char *x = value_of(payload, "\"x\""), *c = value_of(payload, "\"c\"");
    if (x && c)
        note_xact(f, strtoull(x, NULL, 10), strtod(c, NULL));
    if (strstr(payload, "\"resync\"")) {
        f->resync[t] = 1;
        return;
    }
    const char *p = strstr(payload, "\"ids\"");
    int n = 0;
    while (p && (p = strchr(p + 1, '"')) && n < MAX_IDS) {
        rs_uuid u;
        if (strlen(p) > 37 && p[37] == '"' && rs_uuid_parse(p + 1, 36, &u) == 0) {
            if (uuid_set_add(&f->dirty[t], &u) < 0)
                f->resync[t] = 1;
            p += 37;
            n++;
        }
    }
}

/* Takes the notifications libpq has already read; how many. */
static int take_notifications(broker_feed *f)
{
    int count = 0;
    PGnotify *n;
    while ((n = PQnotifies(f->conn))) {
        count++;
        atomic_fetch_add(&f->notifications, 1);
        if (strcmp(n->relname, "strata_ddl") == 0)
            atomic_fetch_add(&f->ddl, 1);
        else if (strcmp(n->relname, "strata_admin_config") == 0)
            atomic_fetch_add(&f->admin_config, 1);
        else
            note(f, n->extra);
        PQfreemem(n);
    }
    return count;
}

/* Reads what the socket holds, then takes every notification: how many,
 * or -1 when the connection failed. */
static int drain_notifications(broker_feed *f)
{
    if (!PQconsumeInput(f->conn))
        return -1;
    return take_notifications(f);
}

/* Drains and applies until a drain finds nothing.  The feed's own queries
 * (re-reading rows, a sync's SELECT 1) make libpq read notifications that
 * arrive meanwhile into its queue, where poll(2) cannot see them: the feed
 * must not wait before taking them.  0 when idle; 1 when notifications
 * still came after CATCH_UP_ROUNDS applies (the caller serves syncs and
 * stopping, then comes back without waiting); -1 when the connection failed. */
static int catch_up(broker_feed *f)
{
    for (int round = 0; round < CATCH_UP_ROUNDS; round++) {
        int n = drain_notifications(f);
        if (n < 0 || apply_pending(f, 0) < 0)
            return -1;
        if (n == 0) {
            close_open(f); /* the last transaction is complete as far as we know */
            return 0;
        }
    }
    return 1;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

static int connect_and_load(broker_feed *f)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {f->url, "strata-broker-feed", "5", NULL};
    f->conn = PQconnectdbParams(keys, vals, 1);
    /* The same connection hears schema changes (sql/080_ddl_notify.sql) for
     * the REST catalog and admin_config changes (sql/091_admin_config_notify.sql)
     * for the agent rate limits: one listener per process is enough. */
    if (PQstatus(f->conn) != CONNECTION_OK || exec_ok(f->conn, "LISTEN strata_broker") < 0 ||
        exec_ok(f->conn, "LISTEN strata_ddl") < 0 || exec_ok(f->conn, "LISTEN strata_admin_config") < 0) {
        PQfinish(f->conn);
        f->conn = NULL;
        return -1;
    }
    uint64_t t0 = mono_ms();
    /* LISTEN first, then load: a change racing the load is re-read. */
    if (apply_pending(f, 1) < 0)
        return -1;
    atomic_store(&f->load_ms, mono_ms() - t0);
    if (atomic_fetch_add(&f->loads, 1) > 0)
        atomic_fetch_add(&f->resyncs, 1);
    atomic_store(&f->ready, 1);
    /* Changes missed while disconnected: read the catalog and admin_config again. */
    atomic_fetch_add(&f->ddl, 1);
    atomic_fetch_add(&f->admin_config, 1);
    return 0;
}

static void lose_connection(broker_feed *f)
{
    atomic_store(&f->ready, 0);
    f->nxacts = 0; /* the resync that follows is not a transaction's lag */
    f->open_applied = 0;
    atomic_fetch_add(&f->lost, 1);
    log_eventf("warn", "broker feed: lost the database connection; the engine will be resynchronised on reconnect");
    PQfinish(f->conn);
    f->conn = NULL;
}

/* Waits for a notification, a wake-up or the timeout.  1 when woken. */
static int wait_events(broker_feed *f, int timeout_ms)
{
    struct pollfd p[2] = {{f->wake_fd, POLLIN, 0}, {f->conn ? PQsocket(f->conn) : -1, POLLIN, 0}};
    int n = poll(p, f->conn ? 2 : 1, timeout_ms);
    if (n > 0 && (p[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t r = read(f->wake_fd, &v, sizeof v);
        (void)r;
        return 1;
    }
    return 0;
}

static void *run(void *arg)
{
    broker_feed *f = arg;
    int backoff = 100;
    while (!atomic_load(&f->stopping)) {
        if (!f->conn) {
            if (connect_and_load(f) < 0) {
                if (f->conn)
                    lose_connection(f);
                wait_events(f, backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 100;
            log_eventf("info", "broker feed: engine loaded in %llu ms",
                       (unsigned long long)atomic_load(&f->load_ms));
        }
        uint64_t want = atomic_load(&f->wanted);
        /* A sync: one round trip makes the server send every notification
         * committed before it, then they are applied. */
        int rc = (want > atomic_load(&f->synced) ? exec_ok(f->conn, "SELECT 1") : 0);
        int busy = rc == 0 ? catch_up(f) : -1;
        if (busy < 0 || PQstatus(f->conn) != CONNECTION_OK) {
            lose_connection(f);
            continue;
        }
        if (want > atomic_load(&f->synced)) {
            atomic_store(&f->synced, want);
            if (f->on_synced)
                f->on_synced(f->arg);
        }
        rs_reclaim(f->engine);
        wait_events(f, busy ? 0 : IDLE_MS);
        /* An idle catch_up left libpq's queue empty; anything in it now was
         * read by a query without being taken (noted here, applied next). */
        if (!busy && take_notifications(f) > 0)
            atomic_fetch_add(&f->stalls, 1);
    }
    PQfinish(f->conn);
    f->conn = NULL;
    return NULL;
}

broker_feed *broker_feed_start(const char *database_url, rs_engine *e, broker_synced_fn fn, void *arg,
                               char *err, size_t errlen)
{
    broker_feed *f = calloc(1, sizeof *f);
    if (!f || !(f->url = strdup(database_url))) {
        snprintf(err, errlen, "broker feed: out of memory");
        free(f);
        return NULL;
    }
    f->engine = e;
    f->on_synced = fn;
    f->arg = arg;
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = f->wake_fd < 0 ? errno : pthread_create(&f->thread, NULL, run, f);
    if (rc) {
        snprintf(err, errlen, "broker feed: cannot start: %s", strerror(rc));
        if (f->wake_fd >= 0)
            close(f->wake_fd);
        free(f->url);
        free(f);
        return NULL;
    }
    return f;
}

static void wake(broker_feed *f)
{
    uint64_t one = 1;
    ssize_t n = write(f->wake_fd, &one, sizeof one);
    (void)n; /* a pending wake-up is enough */
}

void broker_feed_stop(broker_feed *f)
{
    if (!f || atomic_exchange(&f->stopping, 1))
        return;
    wake(f);
    pthread_join(f->thread, NULL);
}

void broker_feed_free(broker_feed *f)
{
    if (!f)
        return;
    broker_feed_stop(f);
    for (int t = 0; t < NTABLES; t++) {
        uuid_set_free(&f->held[t]);
        uuid_set_free(&f->dirty[t]);
    }
    free(f->xacts);
    close(f->wake_fd);
    free(f->url);
    free(f);
}

int broker_feed_ready(const broker_feed *f)
{
    return atomic_load(&((broker_feed *)f)->ready);
}

uint64_t broker_feed_sync_request(broker_feed *f)
{
    uint64_t t = atomic_fetch_add(&f->wanted, 1) + 1;
    wake(f);
    return t;
}

uint64_t broker_feed_ddl_version(const broker_feed *f)
{
    return atomic_load(&((broker_feed *)f)->ddl);
}

uint64_t broker_feed_admin_config_version(const broker_feed *f)
{
    return atomic_load(&((broker_feed *)f)->admin_config);
}

uint64_t broker_feed_synced(const broker_feed *f)
{
    return atomic_load(&((broker_feed *)f)->synced);
}

static int lag_metrics(broker_feed *f, buf *out)
{
    uint64_t counts[LAG_BUCKETS + 1];
    for (size_t b = 0; b <= LAG_BUCKETS; b++)
        counts[b] = atomic_load(&f->lag_bucket[b]);
    return metrics_render_histogram(out, "strata_broker_apply_lag_seconds",
                                    "Time from a transaction's commit (its last change's clock_timestamp()) to "
                                    "its changes in the engine.",
                                    LAG_BOUNDS, LAG_BUCKETS, counts, (double)atomic_load(&f->lag_sum_us) / 1e6);
}

int broker_feed_metrics(const broker_feed *f, buf *out)
{
    broker_feed *m = (broker_feed *)f;
    rs_reader *r = rs_reader_new(m->engine);
    rs_stats st = {0};
    if (r) {
        rs_snap_stats(rs_read_begin(r), &st);
        rs_read_end(r);
        rs_reader_free(r);
    }
    char text[2560];
    snprintf(text, sizeof text,
             "# HELP strata_broker_values Broker values held by the native engine.\n"
             "# TYPE strata_broker_values gauge\nstrata_broker_values %zu\n"
             "# HELP strata_broker_workspaces Workspaces held by the native engine.\n"
             "# TYPE strata_broker_workspaces gauge\nstrata_broker_workspaces %zu\n"
             "# HELP strata_broker_brokers data_broker rows held by the native engine.\n"
             "# TYPE strata_broker_brokers gauge\nstrata_broker_brokers %zu\n"
             "# HELP strata_broker_bytes Memory of the engine's current version.\n"
             "# TYPE strata_broker_bytes gauge\nstrata_broker_bytes %zu\n"
             "# HELP strata_broker_bytes_per_value Engine memory per value held.\n"
             "# TYPE strata_broker_bytes_per_value gauge\nstrata_broker_bytes_per_value %.1f\n"
             "# HELP strata_broker_version Version of the engine's data.\n"
             "# TYPE strata_broker_version gauge\nstrata_broker_version %llu\n"
             "# HELP strata_broker_load_seconds Duration of the last full load.\n"
             "# TYPE strata_broker_load_seconds gauge\nstrata_broker_load_seconds %.3f\n"
             "# HELP strata_broker_ready 1 when the engine follows the database.\n"
             "# TYPE strata_broker_ready gauge\nstrata_broker_ready %d\n"
             "# HELP strata_broker_resyncs_total Full resynchronisations after a lost connection.\n"
             "# TYPE strata_broker_resyncs_total counter\nstrata_broker_resyncs_total %llu\n"
             "# HELP strata_broker_feed_lost_total Times the feed lost its LISTEN connection.\n"
             "# TYPE strata_broker_feed_lost_total counter\nstrata_broker_feed_lost_total %llu\n"
             "# HELP strata_broker_notifications_total Change notifications received.\n"
             "# TYPE strata_broker_notifications_total counter\nstrata_broker_notifications_total %llu\n"
             "# HELP strata_broker_feed_stalls_total Waits the feed began with notifications already read (0 unless the feed is wrong).\n"
             "# TYPE strata_broker_feed_stalls_total counter\nstrata_broker_feed_stalls_total %llu\n",
             st.values, st.workspaces, st.brokers, st.bytes, st.values ? (double)st.bytes / (double)st.values : 0.0,
             (unsigned long long)st.version, (double)atomic_load(&m->load_ms) / 1000.0, atomic_load(&m->ready),
             (unsigned long long)atomic_load(&m->resyncs), (unsigned long long)atomic_load(&m->lost),
             (unsigned long long)atomic_load(&m->notifications), (unsigned long long)atomic_load(&m->stalls));
    return buf_add_str(out, text) || lag_metrics(m, out) ? -1 : 0;
}
