/* server.c: the process (see server.h).  Uses worker for the threads that
 * serve, reload and watch for the Lua scripts, readiness to record reloads
 * in the database, libevent for the main thread's signals and timers. */
#include "server.h"

#include "obs/accesslog.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "lua/reload.h"
#include "lua/watch.h"
#include "engine/limiter.h"
#include "db/log_db.h"
#include "db/ratelimit_db.h"
#include "engine/usage.h"
#include "worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Usage rows kept in memory (about 96 bytes each): a second's worth of
 * agent traffic, or a long database outage's, before counts are dropped. */
#define USAGE_MAX_ROWS 200000

typedef struct server {
    const strata_conf *conf;
    struct event_base *base;   /* main thread's loop: signals and the watch */
    worker_shared shared;
    worker **workers;
    int nworkers;
    reloader *reload;
    readiness *ready;
} server;

/* On the reload's thread: each worker's generation is built here, so that
 * the workers only swap it in. */
static void publish_to_workers(void *arg, scripts *s)
{
    server *sv = arg;
    char err[1024];
    for (int i = 0; i < sv->nworkers; i++) {
        lua_gen *g = worker_build_gen(sv->workers[i], s, err, sizeof err);
        if (g)
            worker_publish(sv->workers[i], g);
        else /* the snapshot was validated: memory ran out; that worker keeps the old */
            log_eventf("error", "worker %d: cannot build generation %ld: %s", i, s->generation, err);
    }
}

static void record_in_db(void *arg, const char *json)
{
    server *sv = arg;
    readiness_submit(sv->ready, json);
}

/* The feed served sync requests: the workers look at their waiters. */
static void on_broker_synced(void *arg)
{
    server *sv = arg;
    for (int i = 0; i < sv->nworkers; i++)
        worker_broker_synced(sv->workers[i]);
}

static void on_files_changed(void *arg)
{
    server *sv = arg;
    reloader_run(sv->reload, "watch", NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *sv = arg;
    if (sig == SIGHUP) {
        reloader_run(sv->reload, "signal", NULL);
        return;
    }
    log_eventf("info", "%s: stopping; in-flight requests get up to %d ms", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               sv->conf->shutdown_timeout_ms);
    for (int i = 0; i < sv->nworkers; i++)
        worker_shutdown(sv->workers[i]);
    if (event_base_loopexit(sv->base, NULL) < 0)
        log_eventf("error", "event_base_loopexit failed");
}

/* Fails early and clearly when the port is taken: SO_REUSEPORT alone would
 * let a second strata share it silently. */
static int port_is_free(const strata_conf *conf)
{
    char err[256];
    int fd = worker_listen_socket(conf->listen_host, conf->listen_port, 0, err, sizeof err);
    if (fd < 0) {
        log_event("error", err, NULL);
        return 0;
    }
    close(fd);
    return 1;
}

static int start_workers(server *sv)
{
    char err[512];
    sv->workers = calloc((size_t)sv->nworkers, sizeof *sv->workers);
    sv->shared.metrics = calloc((size_t)sv->nworkers, sizeof *sv->shared.metrics);
    if (!sv->workers || !sv->shared.metrics)
        return -1;
    scripts *s = reloader_current(sv->reload);
    for (int i = 0; i < sv->nworkers; i++) {
        if (!(sv->workers[i] = worker_new(i, &sv->shared, err, sizeof err))) {
            log_event("error", err, NULL);
            sv->nworkers = i;
            scripts_unref(s);
            return -1;
        }
        sv->shared.metrics[i] = sv->workers[i]->metrics;
        /* Built here, before the thread starts: no request ever finds a
         * worker without scripts when they loaded. */
        if (s && !(sv->workers[i]->gen = worker_build_gen(sv->workers[i], s, err, sizeof err)))
            log_event("error", err, NULL);
    }
    scripts_unref(s);
    sv->shared.nworkers = sv->nworkers;
    reloader_on_publish(sv->reload, publish_to_workers, sv);
    for (int i = 0; i < sv->nworkers; i++)
        if (worker_start(sv->workers[i], err, sizeof err) < 0) {
            log_event("error", err, NULL);
            for (int j = 0; j < i; j++) {
                worker_shutdown(sv->workers[j]);
                worker_join(sv->workers[j]);
            }
            return -1;
        }
    return 0;
}

static void stop_workers(server *sv, int started)
{
    /* An admin reload still running posts its answer to a worker: let it
     * end before the workers are freed (their tasks then run in
     * worker_free). */
    reloader_wait_async(sv->reload);
    if (started)
        for (int i = 0; i < sv->nworkers; i++)
            worker_join(sv->workers[i]);
    /* Password hashes too, once no worker can submit more. */
    crypt_pool_drain(sv->shared.crypt);
    for (int i = 0; i < sv->nworkers; i++)
        worker_free(sv->workers[i]);
    free(sv->workers);
    free(sv->shared.metrics);
}

int server_run(const strata_conf *conf, readiness *ready)
{
    server sv = {.conf = conf, .nworkers = conf->workers, .ready = ready};
    char err[512];
    struct event *sig[3] = {NULL, NULL, NULL};
    watch *wt = NULL;
    int rc = -1, started = 0;
    metrics_init();
    if (!port_is_free(conf))
        return -1;
    sv.shared.conf = conf;
    sv.shared.ready = ready;
    if (!(sv.shared.log = accesslog_open(conf->access_log, err, sizeof err))) {
        log_event("error", err, NULL);
        return -1;
    }
    if (!(sv.reload = reloader_new(conf)) ||
        !(sv.base = event_base_new())) {
        log_eventf("error", "out of memory at start");
        goto out;
    }
    sv.shared.reload = sv.reload;
    if (!(sv.shared.limiter = limiter_new((size_t)conf->rate_limit_max_keys, 0)) ||
        !(sv.shared.usage = usage_new(USAGE_MAX_ROWS)) || !(sv.shared.engine = rs_engine_new())) {
        log_eventf("error", "out of memory at start");
        goto out;
    }
    int alg = jwt_alg_of(conf->jwt_signing_alg, strlen(conf->jwt_signing_alg));
    if (!alg) {
        log_eventf("error", "configuration: jwt_signing_alg must be HS256, ES256 or RS256");
        goto out;
    }
    if (alg != JWT_ALG_HS256 && !(conf->jwt_signing_key && *conf->jwt_signing_key)) {
        log_eventf("error", "configuration: jwt_signing_alg %s needs jwt_signing_key (a PEM private key)",
                   conf->jwt_signing_alg);
        goto out;
    }
    if (((conf->jwt_signing_key && *conf->jwt_signing_key) || (conf->jwt_accepted_keys && *conf->jwt_accepted_keys)) &&
        !(sv.shared.jwt_keys = jwt_keyset_load(alg, alg == JWT_ALG_HS256 ? NULL : conf->jwt_signing_key,
                                               conf->jwt_accepted_keys, err, sizeof err))) {
        log_event("error", err, NULL);
        goto out;
    }
    if (!(sv.shared.crypt = crypt_pool_new(conf->auth_bcrypt_threads, err, sizeof err)) ||
        !(sv.shared.revoked = revoked_feed_start(conf->database_url, err, sizeof err))) {
        log_event("error", err, NULL);
        goto out;
    }
    if (!(sv.shared.ratelimit_db = ratelimit_db_start(conf->database_url, sv.shared.usage, conf->rate_limit_flush_ms,
                                                      conf->rate_limit_sweep_ms, err, sizeof err))) {
        log_event("error", err, NULL);
        goto out;
    }
    if (!(sv.shared.log_db = log_db_start(conf->database_url, (size_t)conf->log_queue_max, conf->log_purge_interval_ms,
                                          conf->log_purge_batch, err, sizeof err))) {
        log_event("error", err, NULL);
        goto out;
    }
    log_db_lose_answers(sv.shared.log_db, conf->log_test_lose_answers);
    reloader_on_record(sv.reload, record_in_db, &sv);
    /* A failure here is not fatal: fixing the file recovers (see /ready). */
    reloader_run(sv.reload, "start", NULL);
    /* Before the workers, whose Lua states refer to it; its sync callback
     * only runs for a worker's request, so after they exist. */
    if (!(sv.shared.feed = broker_feed_start(conf->database_url, sv.shared.engine, on_broker_synced, &sv, err,
                                             sizeof err))) {
        log_event("error", err, NULL);
        goto out;
    }
    if (start_workers(&sv) < 0)
        goto out;
    started = 1;
    const int signals[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++)
        if (!(sig[i] = evsignal_new(sv.base, signals[i], on_signal, &sv)) || event_add(sig[i], NULL) < 0) {
            log_eventf("error", "cannot handle signal %d", signals[i]);
            goto out;
        }
    if (conf->reload_watch &&
        !(wt = watch_new(sv.base, conf->lua_dir, conf->reload_debounce_ms, on_files_changed, &sv, err, sizeof err)))
        log_eventf("warn", "%s; reload with SIGHUP or POST /admin/reload instead", err);
    log_eventf("info", "listening on %s:%d with %d worker(s)", conf->listen_host, conf->listen_port,
               conf->workers);
    if (event_base_dispatch(sv.base) < 0)
        log_eventf("error", "main event loop failed");
    rc = 0;
out:
    if (rc < 0 && started)
        for (int i = 0; i < sv.nworkers; i++)
            worker_shutdown(sv.workers[i]);
    watch_free(wt);
    for (int i = 0; i < 3; i++)
        if (sig[i])
            event_free(sig[i]);
    broker_feed_stop(sv.shared.feed); /* first: its callback reaches the workers */
    if (sv.workers)
        stop_workers(&sv, started);
    broker_feed_free(sv.shared.feed); /* after: the workers read it until they end */
    crypt_pool_free(sv.shared.crypt);  /* after: drained in stop_workers */
    revoked_feed_free(sv.shared.revoked); /* after: the workers ask it until they end */
    jwt_keyset_free(sv.shared.jwt_keys);  /* likewise */
    ratelimit_db_stop(sv.shared.ratelimit_db); /* after the workers: their last counts are written */
    log_db_stop(sv.shared.log_db);             /* likewise: their last rows are written */
    usage_free(sv.shared.usage);
    if (sv.shared.engine)
        rs_engine_free(sv.shared.engine);
    limiter_free(sv.shared.limiter);
    reloader_free(sv.reload);
    if (sv.base)
        event_base_free(sv.base);
    accesslog_close(sv.shared.log);
    return rc;
}
