/* pool.c: per-worker PostgreSQL connections (see pool.h).  Uses libpq's
 * asynchronous API (PQconnectStartParams/PQconnectPoll, PQsendPrepare,
 * PQsendQueryPrepared, PQconsumeInput/PQisBusy/PQgetResult) and libevent
 * events on PQsocket.
 *
 * Connections stay in libpq's pipeline mode: each run sends all its
 * messages (a statement's first Parse included) followed by one Sync, so
 * a query that needs the caller's settings first, or a statement not yet
 * prepared, still costs one round trip.  A connection is either acquired
 * (one caller's, for a transaction: pool_acquire / pool_run /
 * pool_release) or shared: pool_submit's runs of different requests follow
 * each other on it, up to PIPE_DEPTH in flight, each its own implicit
 * transaction ended by its own Sync, so a busy worker does not wait a
 * round trip per statement. */
#include "pool.h"

#include "base/clock.h"
#include "base/hash.h"
#include "obs/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 128      /* prepared statements kept per connection */
#define MAX_CMDS (2 * POOL_MAX_STMTS) /* a Parse and an Execute each */
#define PIPE_DEPTH 8        /* runs in flight on one shared connection */
#define PIPE_MAX_AGE_US 2000 /* join a shared connection only while its oldest run is younger */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* PC_OUT: in no list, between its allocation and its first move, and
 * from its last move until it is freed. */
typedef enum { PC_CONNECTING, PC_IDLE, PC_BUSY, PC_NSTATES, PC_OUT = PC_NSTATES } pc_state;

/* What a run is: a caller's statements, or the pool's own ROLLBACK of a released transaction. */
typedef enum { OP_RUN, OP_ROLLBACK } pc_op;

/* One command of a run, in the order results come back. */
typedef struct pc_cmd {
    short slot;             /* a Parse into this cache slot, or -1 */
    short last;             /* the Execute whose result the caller wants */
} pc_cmd;

/* One run in flight: its statements and their Sync. */
typedef struct pc_run {
    pc_op op;
    pool_result_fn fn;      /* its caller (NULL for the pool's own ROLLBACK) */
    void *arg;
    PGresult *result;       /* the result to hand over, owned until then */
    pc_cmd cmds[MAX_CMDS];
    int ncmds, cmd_at;      /* commands sent; the one being answered */
    uint64_t started_us;
} pc_run;

typedef struct stmt {
    char *sql;              /* owned; NULL when the slot is free */
    size_t len;             /* strlen(sql) */
    uint64_t hash;
    int prepared;           /* its Parse succeeded: later runs may Execute it */
} stmt;

struct pg_conn {
    pool *pool;
    PGconn *pg;             /* owned */
    pc_state state;
    struct event *ev;       /* owned; on `sock` for `want` */
    int sock;
    short want;             /* EV_READ and/or EV_WRITE armed */
    int polling_connect;    /* still in PQconnectPoll */
    pc_run runs[PIPE_DEPTH]; /* in flight, oldest first: a ring from run_head */
    int run_head, nruns;
    int shared;             /* busy with pool_submit's runs, not acquired */
    int broken;             /* a send failed half-way: never reuse */
    stmt stmts[STMT_CACHE];
    pg_conn *prev, *next;   /* list of its state */
};

struct pool_waiter {
    pool *pool;
    pool_acquire_fn fn;     /* an acquire's, or NULL for a submit */
    pool_result_fn rfn;     /* a submit's */
    const pool_stmt *stmts; /* a submit's statements (its caller keeps them alive) */
    int nstmts;
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

static pc_run *head_run(pg_conn *c)
{
    return &c->runs[c->run_head];
}

static void free_conn(pg_conn *c)
{
    if (c->ev)
        event_free(c->ev);
    for (int i = 0; i < c->nruns; i++)
        PQclear(c->runs[(c->run_head + i) % PIPE_DEPTH].result);
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

/* The callers of c's runs, taken before c goes. */
typedef struct callers {
    pool_result_fn fn[PIPE_DEPTH];
    void *arg[PIPE_DEPTH];
    int n;
} callers;

static void take_callers(pg_conn *c, callers *out)
{
    out->n = 0;
    for (int i = 0; i < c->nruns; i++) {
        const pc_run *r = &c->runs[(c->run_head + i) % PIPE_DEPTH];
        if (r->fn) {
            out->fn[out->n] = r->fn;
            out->arg[out->n++] = r->arg;
        }
    }
}

static void fail_callers(const callers *cs)
{
    for (int i = 0; i < cs->n; i++)
        cs->fn[i](cs->arg[i], NULL, POOL_LOST);
}

static void drop(pool *p, pg_conn *c, const char *why)
{
    callers cs;
    take_callers(c, &cs);
    int connect_failed = c->polling_connect;
    if (connect_failed)
        stat_add(&p->stats->failures, 1);
    else
        stat_add(&p->stats->reconnects, 1);
    log_eventf("warn", "pool: connection lost: %s", why);
    move(p, c, PC_OUT);
    free_conn(c);
    fail_callers(&cs);
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

/* The oldest run's Sync came back: it is done.  Its caller and result go
 * to *out (called later, once the connection is in a consistent state). */
typedef struct done_run {
    pool_result_fn fn;
    void *arg;
    PGresult *res;
} done_run;

static void pop_run(pool *p, pg_conn *c, done_run *out)
{
    pc_run *r = head_run(c);
    *out = (done_run){r->fn, r->arg, r->result};
    r->result = NULL;
    c->run_head = (c->run_head + 1) % PIPE_DEPTH;
    c->nruns--;
    if (r->op == OP_ROLLBACK)
        return;
    uint64_t us = mono_us() - r->started_us;
    static const uint64_t bounds[7] = {1000, 5000, 10000, 50000, 100000, 500000, 1000000};
    int b = 0;
    while (b < 7 && us > bounds[b])
        b++;
    stat_add(&p->stats->query_bucket[b], 1);
    stat_add(&p->stats->queries, 1);
    stat_add(&p->stats->query_us, us);
}

/* Forgets a cached statement whose Parse did not succeed. */
static void uncache(pg_conn *c, int slot)
{
    free(c->stmts[slot].sql);
    c->stmts[slot].sql = NULL;
}

/* Files one result of run's command being answered: the caller gets the
 * first failure, else the last statement's result. */
static void take_result(pg_conn *c, pc_run *run, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
    const pc_cmd *cmd = run->cmd_at < run->ncmds ? &run->cmds[run->cmd_at] : NULL;
    if (cmd && cmd->slot >= 0) {
        if (failed)
            uncache(c, cmd->slot); /* not prepared, by error or abort */
        else
            c->stmts[cmd->slot].prepared = 1;
    }
    int have_failure = run->result && PQresultStatus(run->result) == PGRES_FATAL_ERROR;
    int wanted = failed ? st != PGRES_PIPELINE_ABORTED && !have_failure : cmd && cmd->last;
    if (!wanted) {
        PQclear(r);
        return;
    }
    PQclear(run->result);
    run->result = r;
}

/* After runs ended on c: a shared connection with none left, or one that
 * rolled back for its last owner, is free again. */
static void runs_ended(pool *p, pg_conn *c, int rolled_back)
{
    if (c->nruns == 0 && (c->shared || rolled_back)) {
        c->shared = 0;
        move(p, c, PC_IDLE);
    }
}

/* Reads what arrived and answers every run whose Sync came back.  The
 * callers are called last: they may run more queries, release or drop
 * connections, and c may be gone by then. */
static void read_results(pool *p, pg_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        drop(p, c, conn_error(c));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n); /* nobody LISTENs on pool connections */
    done_run done[PIPE_DEPTH];
    int ndone = 0, lost = 0, rolled_back = 0;
    while (c->nruns > 0 && !PQisBusy(c->pg)) {
        pc_run *r = head_run(c);
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            /* Each command's results end with NULL; more NULLs than
             * commands means libpq has nothing left: the link broke. */
            if (++r->cmd_at > r->ncmds) {
                lost = 1;
                break;
            }
        } else if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            rolled_back |= r->op == OP_ROLLBACK;
            pop_run(p, c, &done[ndone++]);
        } else {
            take_result(c, r, res);
        }
    }
    if (lost || PQstatus(c->pg) == CONNECTION_BAD)
        drop(p, c, conn_error(c));
    else if (ndone)
        runs_ended(p, c, rolled_back);
    for (int i = 0; i < ndone; i++) {
        if (done[i].fn)
            done[i].fn(done[i].arg, done[i].res, done[i].res ? POOL_OK : POOL_LOST);
        else
            PQclear(done[i].res);
    }
    if (ndone)
        serve_waiters(p);
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
        if (c->nruns == 0) {
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

static void add_cmd(pc_run *r, int slot, int last)
{
    r->cmds[r->ncmds].slot = (short)slot;
    r->cmds[r->ncmds].last = (short)last;
    r->ncmds++;
}

/* Queues one statement: Parse (first use of its text on this connection)
 * and Execute.  Returns 0, or -1 when libpq refused. */
static int send_stmt(pg_conn *c, pc_run *r, const pool_stmt *s, int last)
{
    size_t len = strlen(s->sql);
    uint64_t h = hash_bytes(s->sql, len); /* every run: REST statements are long */
    int slot = (int)(h % STMT_CACHE);
    stmt *st = &c->stmts[slot];
    int other = st->sql && (st->hash != h || st->len != len || memcmp(st->sql, s->sql, len) != 0);
    /* A Parse still in flight in an earlier run may yet fail (aborted by
     * that run's error): do not let this run depend on it. */
    int unsure = st->sql && !other && !st->prepared;
    if (other || unsure) {
        /* Run it unnamed rather than evict (no DEALLOCATE, no re-Parse of
         * the other later). */
        add_cmd(r, -1, last);
        return PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->values, NULL, NULL, 0) ? 0 : -1;
    }
    char name[8];
    stmt_name(name, slot);
    if (!st->sql) {
        if (!(st->sql = strdup(s->sql)))
            return -1;
        st->len = len;
        st->hash = h;
        st->prepared = 0;
        add_cmd(r, slot, 0);
        if (!PQsendPrepare(c->pg, name, s->sql, 0, NULL))
            return -1;
    }
    add_cmd(r, -1, last);
    return PQsendQueryPrepared(c->pg, name, s->nparams, s->values, NULL, NULL, 0) ? 0 : -1;
}

/* Sends stmts and a Sync as one run after those in flight.  -1 when
 * nothing or half of it could be sent: the connection is broken then, and
 * the run stays in the ring for drop() to fail. */
static int start(pg_conn *c, pc_op op, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    if (n < 1 || n > POOL_MAX_STMTS || c->nruns == PIPE_DEPTH || c->broken)
        return -1;
    pc_run *r = &c->runs[(c->run_head + c->nruns) % PIPE_DEPTH];
    *r = (pc_run){.op = op, .fn = fn, .arg = arg, .started_us = mono_us()};
    c->nruns++;
    for (int i = 0; i < n; i++)
        if (send_stmt(c, r, &stmts[i], i == n - 1) < 0)
            goto failed;
    if (!PQpipelineSync(c->pg) || after_send(c) < 0)
        goto failed;
    return 0;
failed:
    c->broken = 1; /* half a pipeline may be queued: this connection is done for */
    return -1;
}

int pool_run(pg_conn *c, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    if (c->nruns || c->shared)
        return -1; /* an acquired connection carries one run at a time */
    if (start(c, OP_RUN, stmts, n, fn, arg) == 0)
        return 0;
    c->nruns = 0; /* fn is not called: the caller releases, which drops it */
    return -1;
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

/* A shared connection with room for another run (the least loaded), or
 * NULL.  Runs answer in order, so a run queued behind a slow statement
 * waits for it: join only connections whose oldest run is recent (a slow
 * statement's followers wait in the queue instead, with its timeout). */
static pg_conn *shared_with_room(pool *p)
{
    pg_conn *best = NULL;
    uint64_t now = 0;
    for (pg_conn *c = p->lists[PC_BUSY]; c; c = c->next) {
        if (!c->shared || c->broken || c->nruns >= PIPE_DEPTH || (best && c->nruns >= best->nruns))
            continue;
        if (!now)
            now = mono_us();
        if (now - head_run(c)->started_us < PIPE_MAX_AGE_US)
            best = c;
    }
    return best;
}

/* Starts a submitted run on c (idle: it becomes shared; or shared). */
static void submit_on(pool *p, pg_conn *c, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    if (c->state == PC_IDLE) {
        c->shared = 1;
        move(p, c, PC_BUSY);
    }
    if (start(c, OP_RUN, stmts, n, fn, arg) < 0)
        drop(p, c, c->broken ? "a query could not be sent" : conn_error(c)); /* fails the run too */
}

/* Serves the queue in order while the head can be served: an acquire
 * needs an idle connection, a submit an idle or a shared one with room. */
static void serve_waiters(pool *p)
{
    while (p->qhead) {
        pool_waiter *w = p->qhead;
        pg_conn *c = p->lists[PC_IDLE];
        if (!c && !w->fn)
            c = shared_with_room(p);
        if (!c)
            return;
        pool_waiter took = *w;
        dequeue(p, w);
        free(w);
        if (took.fn)
            give(p, c, took.fn, took.arg);
        else
            submit_on(p, c, took.stmts, took.nstmts, took.rfn, took.arg);
    }
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_waiter *w = arg;
    pool *p = w->pool;
    pool_waiter took = *w;
    dequeue(p, w);
    free(w);
    stat_add(&p->stats->timeouts, 1);
    if (took.fn)
        took.fn(took.arg, NULL, POOL_TIMEOUT);
    else
        took.rfn(took.arg, NULL, POOL_TIMEOUT);
}

/* Queues a waiter like proto (fn or rfn set) behind the others, with its
 * wait timeout; answers the caller at once when it cannot wait. */
static pool_waiter *enqueue(pool *p, const pool_waiter *proto)
{
    pool_failure why = POOL_OK;
    pool_waiter *w = NULL;
    struct timeval tv = {p->conf.wait_timeout_ms / 1000, (p->conf.wait_timeout_ms % 1000) * 1000};
    if (p->down && !p->lists[PC_IDLE]) {
        why = POOL_UNAVAILABLE;
    } else if (p->qlen >= p->conf.queue_max) {
        stat_add(&p->stats->rejected, 1);
        why = POOL_QUEUE_FULL;
    } else if (!(w = calloc(1, sizeof *w)) || !(w->timer = evtimer_new(p->base, on_wait_timeout, w)) ||
               evtimer_add(w->timer, &tv) < 0) {
        if (w && w->timer)
            event_free(w->timer);
        free(w);
        w = NULL;
        why = POOL_NO_MEMORY;
    }
    if (!w) {
        if (proto->fn)
            proto->fn(proto->arg, NULL, why);
        else
            proto->rfn(proto->arg, NULL, why);
        return NULL;
    }
    struct event *timer = w->timer;
    *w = *proto;
    w->timer = timer;
    w->pool = p;
    w->prev = p->qtail;
    w->next = NULL;
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
    pool_waiter proto = {.fn = fn, .arg = arg};
    return enqueue(p, &proto);
}

void pool_submit(pool *p, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg)
{
    if (p->closing) {
        fn(arg, NULL, POOL_CLOSING);
        return;
    }
    /* Nobody jumps the queue; and while an acquire waits, shared
     * connections are left to drain, so that it gets one. */
    pg_conn *c = p->qhead ? NULL : p->lists[PC_IDLE] ? p->lists[PC_IDLE] : shared_with_room(p);
    if (c) {
        submit_on(p, c, stmts, n, fn, arg);
        return;
    }
    pool_waiter proto = {.rfn = fn, .stmts = stmts, .nstmts = n, .arg = arg};
    enqueue(p, &proto);
}

static void fail_waiters(pool *p, pool_failure why)
{
    while (p->qhead) {
        pool_waiter *w = p->qhead;
        pool_waiter took = *w;
        dequeue(p, w);
        free(w);
        if (took.fn)
            took.fn(took.arg, NULL, why);
        else
            took.rfn(took.arg, NULL, why);
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
    if (c->state != PC_BUSY || c->shared)
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
    if (ts != PQTRANS_IDLE || c->nruns) {
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
            callers cs;
            take_callers(c, &cs);
            move(p, c, PC_OUT);
            free_conn(c);
            fail_callers(&cs);
        }
    publish_gauges(p);
    event_free(p->refill);
    free(p->url);
    free(p);
}
