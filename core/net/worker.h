/* worker.h: a worker thread: its own event_base, its own listening socket
 * on the shared port (SO_REUSEPORT, so the kernel spreads connections), its
 * own Lua generation and its own counters.  Other threads talk to it only
 * through worker_publish() and worker_shutdown(), which wake it through an
 * eventfd; nothing on the request path takes a lock.
 *
 * The struct is shared with router.c, which answers its requests. */
#ifndef STRATA_WORKER_H
#define STRATA_WORKER_H

#include "conn.h"

#include "auth/crypt_pool.h"
#include "auth/jwt.h"
#include "auth/jwt_cache.h"
#include "auth/jwt_keys.h"
#include "base/buf.h"
#include "base/conf.h"
#include "db/broker_feed.h"
#include "db/pool.h"
#include "db/readiness.h"
#include "db/revoked_feed.h"
#include "engine/resolve.h"
#include "http/client.h"
#include "lua/lua_host.h"
#include "lua/lua_tick.h"
#include "lua/reload.h"
#include "obs/accesslog.h"
#include "obs/metrics.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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
    crypt_pool *crypt;        /* bcrypt threads (strata.crypto's bcrypt_*) */
    struct log_db *log_db;    /* the log rows' queue and writer, logging_settings (strata.log) */
    revoked_feed *revoked;    /* ended auth sessions: their tokens are refused */
    jwt_keyset *jwt_keys;     /* ES256 / RS256 keys (conf jwt_signing_key, jwt_accepted_keys), or NULL */
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
    struct event *jobs_ev;         /* owned; worker 0's jobs tick (conf jobs_tick_ms), else NULL */
    lua_tick *jobs;                /* owned; what that tick runs (lua/jobs.lua) */

    pthread_mutex_t lock;          /* guards pending, tasks and stopping */
    lua_gen *pending;              /* owned; a generation to adopt, built by the publisher */
    struct worker_task *tasks;     /* owned; posted by other threads, run on this one */
    int stopping;

    lua_gen *gen;                  /* serving now; NULL until scripts load */
    pool *pool;                    /* owned; this worker's database connections */
    hc_client *http;               /* owned; this worker's outbound HTTP (strata.http.request) */
    rs_reader *broker_reader;      /* owned; this thread's reader slot of the engine */
    conn_env env;                  /* the connections, their clock and kept requests */

    metrics_worker *metrics;       /* owned */
    jwt_key *jwt_key;              /* owned; NULL without a secret (every token refused) */
    jwt_cache *jwt_cache;          /* owned; tokens jwt_key verified lately */
    crypt_client crypt;            /* the shared bcrypt pool, its jobs coming home here */
} worker;

worker *worker_new(int id, const worker_shared *sh, char *err, size_t errlen);
int worker_start(worker *w, char *err, size_t errlen);

/* Hands w its next generation, built for it by worker_build_gen on the
 * publisher's thread (a worker's loop never runs a boot), and takes
 * ownership.  Thread-safe. */
void worker_publish(worker *w, lua_gen *g);

/* Stops accepting, lets in-flight requests finish up to the conf's
 * shutdown_timeout, then ends the thread.  Thread-safe. */
void worker_shutdown(worker *w);

void worker_join(worker *w);
void worker_free(worker *w);

/* Builds a generation from s for this worker (its pool made available to
 * strata.pg); NULL with err.  Thread-safe: it reads only what the worker
 * never changes, and the generation is used by w's thread only once
 * handed over by worker_publish. */
lua_gen *worker_build_gen(worker *w, scripts *s, char *err, size_t errlen);

/* Wakes the worker to look at its broker.sync waiters.  Thread-safe. */
void worker_broker_synced(worker *w);

/* Runs fn(w, arg) on w's thread, soon (the way another thread hands a
 * result back: a reload's, later a password hash's).  Thread-safe.  Tasks
 * still queued when the worker ends run in worker_free. */
typedef void (*worker_task_fn)(worker *w, void *arg);
void worker_post(worker *w, worker_task_fn fn, void *arg);

/* The listening socket for host:port with SO_REUSEPORT; -1 and err. */
int worker_listen_socket(const char *host, int port, int reuseport, char *err, size_t errlen);

#endif
