/* pool.c: per-worker PostgreSQL connections (see pool.h).  Uses libpq's
 * asynchronous API (PQconnectStartParams/PQconnectPoll, PQsendPrepare,
 * PQsendQueryPrepared, PQconsumeInput/PQisBusy/PQgetResult) and libevent
 * events on PQsocket.
 *
 * Connections stay in libpq's pipeline mode: each pool_run sends all its
 * messages (a statement's first Parse included) followed by one Sync, so
 * a query that needs the caller's settings first, or a statement not yet
 * prepared, still costs one round trip. */
#include "pool.h"

#include "base/clock.h"
#include "base/hash.h"
#include "obs/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 128      /* prepared statements kept per connection */
#define MAX_CMDS (2 * POOL_MAX_STMTS) /* a Parse and an Execute each */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* PC_OUT: in no list, between its allocation and its first move, and
 * from its last move until it is freed. */
typedef enum { PC_CONNECTING, PC_IDLE, PC_BUSY, PC_NSTATES, PC_OUT = PC_NSTATES } pc_state;

/* What a connection is doing on the wire. */
typedef enum { OP_NONE, OP_RUN, OP_ROLLBACK } pc_op;

/* One command of the pipeline in flight, in the order results come back. */
typedef struct pc_cmd {
    short slot;             /* a Parse into this cache slot, or -1 */
    short last;             /* the Execute whose result the caller wants */
} pc_cmd;

typedef struct stmt {
    char *sql;              /* owned; NULL when the slot is free */
    size_t len;             /* strlen(sql) */
    uint64_t hash;
} stmt;

struct pg_conn {
    pool *pool;
    PGconn *pg;             /* owned */
    pc_state state;
    pc_op op;
    struct event *ev;       /* owned; on `sock` for `want` */
    int sock;
    short want;             /* EV_READ and/or EV_WRITE armed */
    int polling_connect;    /* still in PQconnectPoll */
    pool_result_fn fn;      /* the current query's caller */
    void *arg;
    PGresult *result;       /* the result to hand over, owned until then */
    pc_cmd cmds[MAX_CMDS];  /* the pipeline in flight */
    int ncmds, cmd_at;      /* commands sent; the one being answered */
    int synced;             /* its Sync came back: the pipeline is done */
    int broken;             /* a send failed half-way: never reuse */
    uint64_t started_us;
    stmt stmts[STMT_CACHE];
    pg_conn *prev, *next;   /* list of its state */
};

struct pool_waiter {
    pool *pool;
    pool_acquire_fn fn;
    void *arg;
    struct event *timer;    /* owned */
    pool_waiter *prev, *next;
};

struct pool {
    struct event_base *base;
    pool_conf conf;
    char *url;              /* owned copy of conf.url */
    char options[64];       /* "-c statement_timeout=N" */
    pool_stats *stats;
    pg_conn *lists[PC_NSTATES];
    int counts[PC_NSTATES];
    pool_waiter *qhead, *qtail;
    int qlen;
    struct event *refill;   /* owned; opens connections after a backoff */
    int backoff_ms;
    int closing;
    int down;               /* the last connection attempt failed: do not queue */
};

static void stat_set(_Atomic int64_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

static void stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static void publish_gauges(pool *p)
{
    stat_set(&p->stats->connecting, p->counts[PC_CONNECTING]);
    stat_set(&p->stats->idle, p->counts[PC_IDLE]);
    stat_set(&p->stats->busy, p->counts[PC_BUSY]);
    stat_set(&p->stats->open, p->counts[PC_IDLE] + p->counts[PC_BUSY]);
    stat_set(&p->stats->queued, p->qlen);
}

/* The one place a connection changes state: it enters the pool by a move
 * from PC_OUT and leaves it by a move to PC_OUT. */
static void move(pool *p, pg_conn *c, pc_state to)
{
    if (c->state != PC_OUT) {
        if (c->prev)
            c->prev->next = c->next;
        else
            p->lists[c->state] = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        p->counts[c->state]--;
    }
    c->state = to;
    if (to != PC_OUT) {
        c->next = p->lists[to];
        if (c->next)
            c->next->prev = c;
        p->lists[to] = c;
        p->counts[to]++;
    }
    publish_gauges(p);
}

static int total(const pool *p)
{
    return p->counts[PC_CONNECTING] + p->counts[PC_IDLE] + p->counts[PC_BUSY];
}

static void on_socket(evutil_socket_t fd, short what, void *arg);
static void start_connect(pool *p);
static void serve_waiters(pool *p);

/* (Re)arms the connection's event for `want` on its current socket. */
static int watch(pg_conn *c, short want)
{
    int sock = PQsocket(c->pg);
    if (sock < 0)
        return -1;
    if (c->ev && (sock != c->sock || want != c->want)) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (!c->ev) {
        c->ev = event_new(c->pool->base, sock, want | EV_PERSIST, on_socket, c);
        if (!c->ev || event_add(c->ev, NULL) < 0)
            return -1;
        c->sock = sock;
        c->want = want;
    }
    return 0;
}

static void free_conn(pg_conn *c)
{
    if (c->ev)
        event_free(c->ev);
    PQclear(c->result);
    PQfinish(c->pg);
    for (int i = 0; i < STMT_CACHE; i++)
        free(c->stmts[i].sql);
    free(c);
}

static void schedule_refill(pool *p)
{
    if (p->closing || evtimer_pending(p->refill, NULL))
        return;
    struct timeval tv = {p->backoff_ms / 1000, (p->backoff_ms % 1000) * 1000};
    if (evtimer_add(p->refill, &tv) < 0)
        log_eventf("error", "pool: cannot arm the reconnect timer");
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* Closes a broken connection; its caller, if any, learns it by res NULL. */
static void fail_waiters(pool *p, pool_failure why);

static void drop(pool *p, pg_conn *c, const char *why)
{
    pool_result_fn fn = c->op != OP_NONE && c->op != OP_ROLLBACK ? c->fn : NULL;
    void *arg = c->arg;
    int connect_failed = c->polling_connect;
    if (connect_failed)
        stat_add(&p->stats->failures, 1);
    else
        stat_add(&p->stats->reconnects, 1);
    log_eventf("warn", "pool: connection lost: %s", why);
    move(p, c, PC_OUT);
    free_conn(c);
    if (fn)
        fn(arg, NULL);
    if (connect_failed && !p->closing) {
        /* The database is out of reach: answer at once (503) rather than
         * let requests queue until their wait timeout. */
        p->down = 1;
        fail_waiters(p, POOL_UNAVAILABLE);
    }
    if (!p->closing && total(p) < (p->conf.min ? p->conf.min : 1))
        schedule_refill(p);
    /* Waiters must not wait forever for a connection that will not come:
     * try again after the backoff. */
    if (p->qlen)
        schedule_refill(p);
}

static const char *conn_error(pg_conn *c)
{
    static __thread char msg[256];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(c->pg));
    for (char *s = msg; *s; s++)
        if (*s == '\n' || *s == '\t')
            *s = ' ';
    return msg;
}

const char *pool_strerror(pool_failure why)
{
    switch (why) {
    case POOL_OK: return "ok";
    case POOL_TIMEOUT: return "timeout";
    case POOL_QUEUE_FULL: return "queue full";
    case POOL_UNAVAILABLE: return "unavailable";
    case POOL_CLOSING: return "closing";
    case POOL_NO_MEMORY: return "out of memory";
    case POOL_LOST: return "lost";
    }
    return "unknown";
}

const char *pool_conn_error(const pg_conn *c)
{
    return conn_error((pg_conn *)c);
}

static void connect_step(pool *p, pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (watch(c, EV_READ) < 0)
            drop(p, c, "cannot watch the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (watch(c, EV_WRITE) < 0)
            drop(p, c, "cannot watch the socket");
        return;
    case PGRES_POLLING_OK:
        c->polling_connect = 0;
        if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg) || watch(c, EV_READ) < 0) {
            drop(p, c, conn_error(c));
            return;
        }
        p->backoff_ms = BACKOFF_MIN_MS;
        p->down = 0;
        move(p, c, PC_IDLE);
        serve_waiters(p);
        return;
    default:
        drop(p, c, conn_error(c));
        return;
    }
}

static void start_connect(pool *p)
{
    pg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->pool = p;
    c->state = PC_OUT; /* calloc's 0 would be PC_CONNECTING, a list it is not in yet */
    c->polling_connect = 1;
    const char *keys[] = {"dbname", "application_name", "options", NULL};
    const char *vals[] = {p->url, "strata", p->options, NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    move(p, c, PC_CONNECTING);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        drop(p, c, c->pg ? conn_error(c) : "out of memory");
        return;
    }
    /* libpq: start as if PQconnectPoll had asked to write. */
    if (watch(c, EV_WRITE) < 0)
        drop(p, c, "cannot watch the socket");
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool *p = arg;
    int want = p->conf.min;
    int needed = p->qlen + p->counts[PC_BUSY];
    if (needed > want)
        want = needed > p->conf.max ? p->conf.max : needed;
    for (int n = total(p); n < want; n++)
        start_connect(p);
}

/* Hands the finished query's result to its caller. */
static void finish_op(pool *p, pg_conn *c)
{
    PGresult *res = c->result;
    pool_result_fn fn = c->fn;
    void *arg = c->arg;
    c->result = NULL;
    c->fn = NULL;
    pc_op op = c->op;
    c->op = OP_NONE;
    if (watch(c, EV_READ) < 0) {
        PQclear(res);
        drop(p, c, "cannot watch the socket");
        return;
    }
    if (op == OP_ROLLBACK) {
        PQclear(res);
        move(p, c, PC_IDLE);
        serve_waiters(p);
        return;
    }
    uint64_t us = mono_us() - c->started_us;
    static const uint64_t bounds[7] = {1000, 5000, 10000, 50000, 100000, 500000, 1000000};
    int b = 0;
    while (b < 7 && us > bounds[b])
        b++;
    stat_add(&p->stats->query_bucket[b], 1);
    stat_add(&p->stats->queries, 1);
    stat_add(&p->stats->query_us, us);
    fn(arg, res);
}

/* Forgets a cached statement whose Parse did not succeed. */
static void uncache(pg_conn *c, int slot)
{
    free(c->stmts[slot].sql);
    c->stmts[slot].sql = NULL;
}

/* Files one result of the command being answered: the caller gets the
 * first failure, else the last statement's result. */
static void take_result(pg_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
    const pc_cmd *cmd = c->cmd_at < c->ncmds ? &c->cmds[c->cmd_at] : NULL;
    if (failed && cmd && cmd->slot >= 0)
        uncache(c, cmd->slot); /* not prepared, by error or abort */
    int have_failure = c->result && PQresultStatus(c->result) == PGRES_FATAL_ERROR;
    int wanted = failed ? st != PGRES_PIPELINE_ABORTED && !have_failure : cmd && cmd->last;
    if (!wanted) {
        PQclear(r);
        return;
    }
    PQclear(c->result);
    c->result = r;
}

/* Reads what arrived; returns when more is needed or the pipeline is done. */
static void read_results(pool *p, pg_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        drop(p, c, conn_error(c));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n); /* nobody LISTENs on pool connections */
    while (!c->synced && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            /* Each command's results end with NULL; more NULLs than
             * commands means libpq has nothing left: the link broke. */
            if (++c->cmd_at > c->ncmds)
                break;
        } else if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            c->synced = 1;
        } else {
            take_result(c, r);
        }
    }
    if (c->synced) {
        finish_op(p, c);
        return;
    }
    if (c->cmd_at > c->ncmds || PQstatus(c->pg) == CONNECTION_BAD)
        drop(p, c, conn_error(c));
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    pg_conn *c = arg;
    pool *p = c->pool;
    if (c->polling_connect) {
        connect_step(p, c);
        return;
    }
    if (what & EV_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            drop(p, c, conn_error(c));
            return;
        }
        if (f == 0 && watch(c, EV_READ) < 0) {
            drop(p, c, "cannot watch the socket");
            return;
        }
        if (f == 1)
            return;
    }
    if (what & EV_READ) {
        if (c->op == OP_NONE && c->state == PC_IDLE) {
            /* An idle connection became readable: the server closed it, or
             * sent a notice. */
            if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
                drop(p, c, conn_error(c));
                return;
            }
            PGnotify *n;
            while ((n = PQnotifies(c->pg)))
                PQfreemem(n);
            return;
        }
        read_results(p, c);
    }
}

/* After a send: wait to write the rest, or to read. */
static int after_send(pg_conn *c)
{
    int f = PQflush(c->pg);
    if (f < 0)
        return -1;
    return watch(c, f == 1 ? (EV_READ | EV_WRITE) : EV_READ);
}


/* "s<slot>", the name a cached statement is prepared under. */
static void stmt_name(char name[8], int slot)
{
    char *d = name;
    *d++ = 's';
    if (slot >= 100)
        *d++ = (char)('0' + slot / 100);
    if (slot >= 10)
        *d++ = (char)('0' + slot / 10 % 10);
    *d++ = (char)('0' + slot % 10);
    *d = '\0';
}

static void add_cmd(pg_conn *c, int slot, int last)
{
    c->cmds[c->ncmds].slot = (short)slot;
    c->cmds[c->ncmds].last = (short)last;
    c->ncmds++;
}

/* Queues one statement: Parse (first use of its text on this connection)
 * and Execute.  Returns 0, or -1 when libpq refused. */
static int send_stmt(pg_conn *c, const pool_stmt *s, int last)
{
    size_t len = strlen(s->sql);
    uint64_t h = hash_bytes(s->sql, len); /* every run: REST statements are long */
    int slot = (int)(h % STMT_CACHE);
    stmt *st = &c->stmts[slot];
    if (st->sql && (st->hash != h || st->len != len || memcmp(st->sql, s->sql, len) != 0)) {
        /* The slot holds another statement: run this one unnamed rather
         * than evict (no DEALLOCATE, no re-Parse of the other later). */
        add_cmd(c, -1, last);
        return PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->values, NULL, NULL, 0) ? 0 : -1;
    }
    char name[8];
    stmt_name(name, slot);
    if (!st->sql) {
        if (!(st->sql = strdup(s->sql)))
            return -1;
        st->len = len;
        st->hash = h;
        add_cmd(c, slot, 0);
        if (!PQsendPrepare(c->pg, name, s->sql, 0, NULL))
            return -1;
    }
    add_cmd(c, -1, last);
    return PQsendQueryPrepared(c->pg, name, s->nparams, s->values, NULL, NULL, 0) ? 0 : -1;
}

/* Sends stmts and a Sync as one pipeline for op. */
static int start(pg_conn *c, pc_op op, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    if (n < 1 || n > POOL_MAX_STMTS)
        return -1;
    c->op = op;
    c->fn = fn;
    c->arg = arg;
    c->ncmds = c->cmd_at = c->synced = 0;
    c->started_us = mono_us();
    for (int i = 0; i < n; i++)
        if (send_stmt(c, &stmts[i], i == n - 1) < 0)
            goto failed;
    if (!PQpipelineSync(c->pg) || after_send(c) < 0)
        goto failed;
    return 0;
failed:
    /* Half a pipeline may be queued: this connection is done for. */
    c->broken = 1;
    c->op = OP_NONE;
    c->fn = NULL;
    return -1;
}

int pool_run(pg_conn *c, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    return start(c, OP_RUN, stmts, n, fn, arg);
}

static void give(pool *p, pg_conn *c, pool_acquire_fn fn, void *arg)
{
    move(p, c, PC_BUSY);
    fn(arg, c, POOL_OK);
}

static void dequeue(pool *p, pool_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->qhead = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->qtail = w->prev;
    p->qlen--;
    event_free(w->timer);
    publish_gauges(p);
}

static void serve_waiters(pool *p)
{
    while (p->qhead && p->lists[PC_IDLE]) {
        pool_waiter *w = p->qhead;
        pool_acquire_fn fn = w->fn;
        void *arg = w->arg;
        dequeue(p, w);
        free(w);
        give(p, p->lists[PC_IDLE], fn, arg);
    }
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_waiter *w = arg;
    pool *p = w->pool;
    pool_acquire_fn fn = w->fn;
    void *warg = w->arg;
    dequeue(p, w);
    free(w);
    stat_add(&p->stats->timeouts, 1);
    fn(warg, NULL, POOL_TIMEOUT);
}

pool_waiter *pool_acquire(pool *p, pool_acquire_fn fn, void *arg)
{
    if (p->closing) {
        fn(arg, NULL, POOL_CLOSING);
        return NULL;
    }
    if (p->lists[PC_IDLE] && !p->qhead) {
        give(p, p->lists[PC_IDLE], fn, arg);
        return NULL;
    }
    if (p->down && !p->lists[PC_IDLE]) {
        fn(arg, NULL, POOL_UNAVAILABLE);
        return NULL;
    }
    if (p->qlen >= p->conf.queue_max) {
        stat_add(&p->stats->rejected, 1);
        fn(arg, NULL, POOL_QUEUE_FULL);
        return NULL;
    }
    pool_waiter *w = calloc(1, sizeof *w);
    struct timeval tv = {p->conf.wait_timeout_ms / 1000, (p->conf.wait_timeout_ms % 1000) * 1000};
    if (!w || !(w->timer = evtimer_new(p->base, on_wait_timeout, w)) || evtimer_add(w->timer, &tv) < 0) {
        if (w && w->timer)
            event_free(w->timer);
        free(w);
        fn(arg, NULL, POOL_NO_MEMORY);
        return NULL;
    }
    w->pool = p;
    w->fn = fn;
    w->arg = arg;
    w->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = w;
    else
        p->qhead = w;
    p->qtail = w;
    p->qlen++;
    stat_add(&p->stats->waits, 1);
    publish_gauges(p);
    /* Open another connection when there is room for one. */
    if (total(p) < p->conf.max && p->counts[PC_CONNECTING] < p->qlen)
        start_connect(p);
    return w;
}

static void fail_waiters(pool *p, pool_failure why)
{
    while (p->qhead) {
        pool_waiter *w = p->qhead;
        pool_acquire_fn fn = w->fn;
        void *arg = w->arg;
        dequeue(p, w);
        free(w);
        fn(arg, NULL, why);
    }
}

void pool_cancel(pool *p, pool_waiter *w)
{
    if (!w)
        return;
    dequeue(p, w);
    free(w);
}

void pool_release(pool *p, pg_conn *c)
{
    if (c->state != PC_BUSY)
        return;
    if (c->broken || PQstatus(c->pg) == CONNECTION_BAD) {
        drop(p, c, c->broken ? "a query could not be sent" : conn_error(c));
        return;
    }
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        /* Left inside a transaction: roll it back before anyone else gets
         * the connection, so nothing leaks from one request to the next. */
        pool_stmt rollback = {"ROLLBACK", 0, NULL};
        if (start(c, OP_ROLLBACK, &rollback, 1, NULL, NULL) < 0)
            drop(p, c, "cannot send ROLLBACK");
        return;
    }
    if (ts != PQTRANS_IDLE) {
        drop(p, c, "released while a query was still running");
        return;
    }
    move(p, c, PC_IDLE);
    serve_waiters(p);
}

pool *pool_new(struct event_base *base, const pool_conf *conf, pool_stats *stats)
{
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->conf = *conf;
    p->stats = stats;
    p->backoff_ms = BACKOFF_MIN_MS;
    snprintf(p->options, sizeof p->options, "-c statement_timeout=%d", conf->statement_timeout_ms);
    if (!(p->url = strdup(conf->url)) || !(p->refill = evtimer_new(base, on_refill, p))) {
        free(p->url);
        free(p);
        return NULL;
    }
    p->conf.url = p->url;
    for (int i = 0; i < conf->min; i++)
        start_connect(p);
    return p;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    p->closing = 1;
    fail_waiters(p, POOL_CLOSING);
    for (int s = 0; s < PC_NSTATES; s++)
        while (p->lists[s]) {
            pg_conn *c = p->lists[s];
            pool_result_fn fn = c->op == OP_RUN ? c->fn : NULL;
            void *arg = c->arg;
            move(p, c, PC_OUT);
            free_conn(c);
            if (fn)
                fn(arg, NULL);
        }
    publish_gauges(p);
    event_free(p->refill);
    free(p->url);
    free(p);
}
