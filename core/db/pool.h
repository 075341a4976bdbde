/* pool.h: a worker's PostgreSQL connections, non-blocking, driven by the
 * worker's event loop.  Knows libpq and libevent, nothing of HTTP or Lua.
 *
 * The pool is an explicit state machine: each connection is in exactly one
 * list (connecting, idle, busy) and moves between them through one
 * function.  Broken connections are closed and replaced with backoff;
 * callers waiting for a connection queue in a bounded FIFO with a timeout.
 * Nothing here ever calls a blocking libpq function. */
#ifndef STRATA_POOL_H
#define STRATA_POOL_H

#include "obs/pool_stats.h"

#include <event2/event.h>
#include <libpq-fe.h>

typedef struct pool pool;
typedef struct pg_conn pg_conn;
typedef struct pool_waiter pool_waiter;

typedef struct pool_conf {
    const char *url;          /* libpq connection string or URL */
    int min;                  /* connections kept open */
    int max;                  /* connections at most */
    int queue_max;            /* callers that may wait for a connection */
    int wait_timeout_ms;      /* how long one may wait */
    int statement_timeout_ms; /* server-side statement_timeout of each connection */
} pool_conf;

/* Why the pool has no connection, or no result, for a caller. */
typedef enum pool_failure {
    POOL_OK,          /* no failure */
    POOL_TIMEOUT,     /* none became free within wait_timeout_ms */
    POOL_QUEUE_FULL,  /* queue_max callers already wait */
    POOL_UNAVAILABLE, /* the last connection attempt failed: the database is out of reach */
    POOL_CLOSING,     /* the pool is being freed */
    POOL_NO_MEMORY,
    POOL_LOST,        /* the connection broke during the query (pool_result_fn got NULL) */
} pool_failure;

/* A short lowercase name of the failure, for logs and messages. */
const char *pool_strerror(pool_failure why);

/* Called once a connection is acquired (c, why POOL_OK), or with c NULL and the
 * reason when none can be. */
typedef void (*pool_acquire_fn)(void *arg, pg_conn *c, pool_failure why);

/* Called once per query with its final result (owned by the callee, who
 * must PQclear it) and POOL_OK, or res NULL and why: POOL_LOST when the
 * connection broke (it is then already gone: do not release it), or, for
 * pool_submit, why no connection carried it. */
typedef void (*pool_result_fn)(void *arg, PGresult *res, pool_failure why);

pool *pool_new(struct event_base *base, const pool_conf *conf, pool_stats *stats);

/* Closes every connection; pending callbacks are called with failures first. */
void pool_free(pool *p);

/* Asks for a connection.  May call fn before returning (an idle connection
 * was there, or the queue is full); otherwise returns a waiter that
 * pool_cancel() can withdraw. */
pool_waiter *pool_acquire(pool *p, pool_acquire_fn fn, void *arg);
void pool_cancel(pool *p, pool_waiter *w);

/* Gives a connection back.  One left inside a transaction is rolled back
 * first; one that is broken is replaced. */
void pool_release(pool *p, pg_conn *c);

/* One statement of a pipeline: text parameters, values[i] NULL = SQL NULL;
 * sql and values need only live until pool_run returns.  Each distinct SQL
 * text is prepared once per connection (its Parse sent with its first
 * Execute) and executed by name afterwards. */
typedef struct pool_stmt {
    const char *sql;
    int nparams;
    const char *const *values;
} pool_stmt;

#define POOL_MAX_STMTS 4

/* Sends up to POOL_MAX_STMTS statements in one round trip.  Outside a
 * transaction they run as one implicit transaction (a failure undoes
 * them all, settings made with set_config(..., true) last until the end).
 * fn gets the first failure, else the last statement's result.  Returns 0,
 * or -1 when nothing could be sent (fn is not called then; the connection
 * is broken and release replaces it). */
int pool_run(pg_conn *c, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg);

/* Runs stmts as pool_run does, on a shared connection: an idle one, or
 * one already carrying other callers' runs (up to a few in flight, each
 * its own implicit transaction), or after a wait in the queue (then with
 * wait_timeout_ms and queue_max as pool_acquire).  fn is called exactly
 * once, maybe before this returns; stmts and their values must live until
 * then.  Not for transactions: those need pool_acquire's connection. */
void pool_submit(pool *p, const pool_stmt *stmts, int n, pool_result_fn fn, void *arg);

/* The libpq error of a connection that failed to send, for messages. */
const char *pool_conn_error(const pg_conn *c);

#endif
