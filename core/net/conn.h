/* conn.h: client connections of one worker: non-blocking reads into a
 * buffer, the HTTP/1.1 parser, keep-alive and pipelining (answers in
 * order), the limits and timeouts, one write per batch of answers, the
 * access log line and the request metrics.
 *
 * A connection knows nothing of who answers: for each request that arrived
 * whole it fills a request object (http/request.h) and calls the env's
 * handler, which answers it — at once or later — through request_reply*(). */
#ifndef STRATA_CONN_H
#define STRATA_CONN_H

#include "base/buf.h"
#include "base/conf.h"
#include "http/http.h"
#include "http/request.h"
#include "obs/accesslog.h"
#include "obs/metrics.h"

#include <event2/event.h>
#include <stdint.h>

typedef struct conn conn;

/* Answers r: called once per request; `arg` is conn_env.handler_arg. */
typedef void (*conn_handler_fn)(request *r, void *arg);

/* What a worker's connections share; owned by the worker, one thread. */
typedef struct conn_env {
    struct event_base *base;
    const strata_conf *conf;
    conn_handler_fn handler;
    void *handler_arg;
    accesslog *log;
    struct log_db *log_db;     /* error rows of 5xx answers, the privacy flags */
    buf logbuf;                /* access log lines not yet written */
    metrics_worker *metrics;
    conn *conns;               /* every open connection (doubly linked) */
    int nconns;
    int draining;              /* shutting down: no new requests on old connections */
    request *free_requests;    /* request objects kept for reuse */
    int nfree_requests;
    uint64_t id_prefix;        /* random; generated request ids are prefix + sequence */
    uint64_t id_seq;
    uint64_t now_ms;           /* coarse wall clock, set per event */
    char date[40];             /* "Date: ...\r\n" for the current second */
    char iso_sec[24];          /* "YYYY-MM-DDTHH:MM:SS" for the current second */
    int64_t date_sec;
} conn_env;

/* Refreshes env->now_ms and, once a second, the cached dates. */
void conn_env_clock(conn_env *env);

/* Frees what the env holds (the kept requests, the log buffer). */
void conn_env_free(conn_env *env);

/* Takes over an accepted socket. */
void conn_accept(conn_env *env, int fd, const char *remote);

/* Closes timed-out connections (called on the worker's tick). */
void conn_sweep(conn_env *env);

/* Shutdown: closes idle connections; busy ones close after their answer.
 * When the last one has closed, the env's loop is asked to exit. */
void conn_drain(conn_env *env);

/* Closes every connection now (the shutdown deadline passed).  Requests
 * still waiting keep their memory until they are answered. */
void conn_close_all(conn_env *env);

#endif
