/* worker.h: a worker thread: its own event_base, its own listening socket
 * on the shared port (SO_REUSEPORT, so the kernel spreads connections), its
 * own Lua generation and its own counters.  Other threads talk to it only
 * through worker_publish() and worker_shutdown(), which wake it through an
 * eventfd; nothing on the request path takes a lock.
 *
 * The struct is shared with conn.c and router.c, the worker's other files. */
#ifndef STRATA_WORKER_H
#define STRATA_WORKER_H

#include "obs/accesslog.h"
#include "db/broker_feed.h"
#include "db/pool.h"
#include "base/buf.h"
#include "base/conf.h"
#include "auth/jwt.h"
#include "lua/lua_host.h"
#include "obs/metrics.h"
#include "db/readiness.h"
#include "lua/reload.h"
#include "engine/resolve.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct conn conn;

/* What every worker reads; owned by the server. */
typedef struct worker_shared {
    const strata_conf *conf;
    readiness *ready;
    reloader *reload;
    accesslog *log;
    metrics_worker **metrics; /* one per worker, for /metrics */
    rs_engine *engine;        /* the native broker engine */
    broker_feed *feed;        /* what keeps it current */
    struct limiter *limiter;  /* the rate counters (strata.limit) */
    struct usage *usage;      /* agent usage counts for rate_limit_tracking (strata.limit) */
    struct ratelimit_db *ratelimit_db; /* what writes them and sweeps cluster cells */
    int nworkers;
} worker_shared;

typedef struct worker {
    int id;
    const worker_shared *sh;
    pthread_t thread;
    struct event_base *base;       /* owned */
    int listen_fd;                 /* owned; -1 once closed for shutdown */
    struct event *accept_ev;       /* owned */
    int wake_fd;                   /* owned eventfd: other threads ring it */
    struct event *wake_ev;         /* owned */
    struct event *tick_ev;         /* owned; timeouts, log flush, date */
    struct event *stop_ev;         /* owned; the shutdown deadline */

    pthread_mutex_t lock;          /* guards pending and stopping */
    scripts *pending;              /* a snapshot to adopt; reference owned */
    int stopping;

    lua_gen *gen;                  /* serving now; NULL until scripts load */
    pool *pool;                    /* owned; this worker's database connections */
    rs_reader *broker_reader;      /* owned; this thread's reader slot of the engine */
    conn *conns;                   /* every open connection (doubly linked) */
    int nconns;
    int draining;                  /* shutting down: no new requests on old connections */

    metrics_worker *metrics;       /* owned */
    buf logbuf;                    /* access log lines not yet written */
    buf scratch;                   /* bodies built by built-in endpoints */
    buf extra;                     /* extra header lines of the response being built */
    jwt_claims claims;             /* the auth context of the request being started */
    jwt_key *jwt_key;              /* owned; NULL without a secret (every token refused) */
    uint64_t now_ms;               /* coarse clock, set per event */
    char date[40];                 /* "Date: ...\r\n" for the current second */
    char iso_sec[24];              /* "YYYY-MM-DDTHH:MM:SS" for the current second */
    int64_t date_sec;
    uint64_t id_prefix;            /* random, per worker, for generated request ids */
    uint64_t id_seq;
} worker;

worker *worker_new(int id, const worker_shared *sh, char *err, size_t errlen);
int worker_start(worker *w, char *err, size_t errlen);

/* Hands w a new snapshot to build its next Lua generation from (takes a
 * reference).  Thread-safe. */
void worker_publish(worker *w, scripts *s);

/* Stops accepting, lets in-flight requests finish up to the conf's
 * shutdown_timeout, then ends the thread.  Thread-safe. */
void worker_shutdown(worker *w);

void worker_join(worker *w);
void worker_free(worker *w);

/* Builds a generation from s for this worker (its pool made available to
 * strata.pg); NULL with err. */
lua_gen *worker_build_gen(worker *w, scripts *s, char *err, size_t errlen);

/* Wakes the worker to look at its broker.sync waiters.  Thread-safe. */
void worker_broker_synced(worker *w);

/* Refreshes now_ms and, once a second, the cached dates. */
void worker_clock(worker *w);

/* The listening socket for host:port with SO_REUSEPORT; -1 and err. */
int worker_listen_socket(const char *host, int port, int reuseport, char *err, size_t errlen);

#endif
