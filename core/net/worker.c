/* worker.c: a worker thread (see worker.h).  Uses libevent for its loop,
 * conn for the connections it accepts (answered by router.c), lua_host
 * for its generations. */
#include "worker.h"

#include "router.h"

#include "lua/broker_sync.h"
#include "obs/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64 /* accepts per readiness event, for fairness */

/* The loop's priorities.  One worker may carry a thousand streamed AI
 * answers: each upstream chunk is a libcurl socket event, then a resumed
 * handler that parses it and writes to its client (~20-40 us).  Without
 * priorities libevent runs every callback that one poll returned before it
 * polls again, so a new connection or a cheap request queued behind a
 * burst of a few hundred chunks waited for all of them (a cheap route's
 * p99 went from 4 ms to 85-166 ms under 1,000 streams).  So: accepting
 * first; the clients' reads and writes, the database, the timers at the
 * default (middle) priority; the outbound transfers and what they resume
 * (http/client.c, lmod_stream.c put their events at the base's lowest
 * priority) last, and at most LOW_CALLBACKS callbacks below accepting
 * between two polls, so a client's request waits behind a few chunks, not
 * behind all of them (make bench-ai, 300 streams: the probe's p99 45-55 ms
 * with, 134-156 ms without, on a shared machine).  Chunks wait only while
 * client work is queued, and the client work they make is short; libcurl's
 * timer, which starts the transfers, stays at the default priority. */
#define PRIORITIES 3
#define PRIO_ACCEPT 0
#define LOW_CALLBACKS 8 /* callbacks of priority >= 1 run between two polls */

int worker_listen_socket(const char *host, int port, int reuseport, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(*host ? host : NULL, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)len);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)len);
    else
        snprintf(out, len, "unknown");
}

/* Past max_connections, new connections get a short 503 and are closed;
 * those already open keep being served. */
static void refuse(int fd)
{
    static const char body[] = "{\"code\":\"too_many_connections\",\"message\":\"max_connections reached\","
                               "\"details\":null,\"hint\":null}";
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
    ssize_t w = write(fd, resp, (size_t)n);
    (void)w; /* best effort: the socket is closed either way */
    close(fd);
    atomic_fetch_add(&metrics_refused_connections, 1);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    conn_env_clock(&w->env);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_eventf("error", "worker %d: accept: %s", w->id, strerror(errno));
            return;
        }
        if (atomic_load(&metrics_open_connections) >= w->sh->conf->max_connections) {
            refuse(fd);
            continue;
        }
        int one = 1;
        if (ss.ss_family != AF_UNIX)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char remote[48];
        format_addr(&ss, remote, sizeof remote);
        conn_accept(&w->env, fd, remote);
    }
}

lua_gen *worker_build_gen(worker *w, scripts *s, char *err, size_t errlen)
{
    lua_gen *g = lua_gen_new(s, w->sh->conf, err, errlen);
    if (g) {
        lua_gen_set_context(g, "strata.pool", w->pool);
        lua_gen_set_context(g, "strata.http_client", w->http);
        lua_gen_set_context(g, "strata.event_base", w->base);
        lua_gen_set_context(g, "strata.broker_reader", w->broker_reader);
        lua_gen_set_context(g, "strata.broker_feed", w->sh->feed);
        lua_gen_set_context(g, "strata.worker", w);
        lua_gen_set_context(g, "strata.limiter", w->sh->limiter);
        lua_gen_set_context(g, "strata.usage", w->sh->usage);
        lua_gen_set_context(g, "strata.crypt", &w->crypt);
        lua_gen_set_context(g, "strata.log_db", w->sh->log_db);
        lua_gen_set_context(g, "strata.jwt_keys", w->sh->jwt_keys);
        lua_gen_set_context(g, "strata.revoked", w->sh->revoked);
    }
    return g;
}

/* Serves g from now on; the old generation closes once its last request
 * ends. */
static void adopt(worker *w, lua_gen *g)
{
    if (w->gen) {
        hc_client_cancel_tag(w->http, lua_gen_tag(w->gen)); /* its outbound calls end with it */
        lua_gen_retire(w->gen);
    }
    w->gen = g;
}

static void wake(worker *w);

/* worker_task_fn: a bcrypt job back on its worker. */
static void crypt_home(worker *w, void *arg)
{
    (void)w;
    crypt_job *job = arg;
    job->done(job);
}

/* crypt_post_fn: on a bcrypt thread. */
static void crypt_post(void *owner, crypt_job *job)
{
    worker_post(owner, crypt_home, job);
}

struct worker_task {
    worker_task_fn fn;
    void *arg;
    struct worker_task *next;
};

void worker_post(worker *w, worker_task_fn fn, void *arg)
{
    struct worker_task *t = malloc(sizeof *t);
    if (!t) {
        /* Cannot queue it: running it here would race the worker's thread. */
        log_eventf("error", "worker %d: out of memory posting a task; it is lost", w->id);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&w->lock);
    t->next = w->tasks;
    w->tasks = t;
    pthread_mutex_unlock(&w->lock);
    wake(w);
}

/* Runs the posted tasks, oldest first. */
static void run_tasks(worker *w)
{
    pthread_mutex_lock(&w->lock);
    struct worker_task *t = w->tasks, *rev = NULL;
    w->tasks = NULL;
    pthread_mutex_unlock(&w->lock);
    while (t) { /* the list is newest first */
        struct worker_task *next = t->next;
        t->next = rev;
        rev = t;
        t = next;
    }
    while (rev) {
        struct worker_task *next = rev->next;
        rev->fn(w, rev->arg);
        free(rev);
        rev = next;
    }
}

static void begin_shutdown(worker *w)
{
    if (w->env.draining)
        return;
    if (w->accept_ev)
        event_del(w->accept_ev);
    if (w->jobs_ev)
        event_del(w->jobs_ev);
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
        w->listen_fd = -1;
    }
    hc_client_cancel_tag(w->http, NULL); /* their handlers answer, and their connections close */
    conn_drain(&w->env);
    if (w->env.nconns == 0)
        return; /* conn_drain asked the loop to exit */
    int ms = w->sh->conf->shutdown_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (event_add(w->stop_ev, &tv) < 0)
        log_eventf("error", "worker %d: cannot arm the shutdown timer", w->id);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n; /* the counter's value does not matter, only the wake-up */
    conn_env_clock(&w->env);
    pthread_mutex_lock(&w->lock);
    lua_gen *g = w->pending;
    w->pending = NULL;
    int stop = w->stopping;
    pthread_mutex_unlock(&w->lock);
    if (g)
        adopt(w, g);
    broker_sync_resume(w->sh->feed, 0);
    run_tasks(w);
    if (stop)
        begin_shutdown(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    conn_env_clock(&w->env);
    conn_sweep(&w->env);
    accesslog_flush(w->sh->log, &w->env.logbuf);
}

/* Worker 0 runs the scripts' jobs (lua/jobs.lua): one tick at a time. */
static void on_jobs(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    if (w->gen && !w->env.draining)
        lua_tick_start(w->jobs, w->gen);
}

static void on_stop_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    log_eventf("warn", "worker %d: shutdown_timeout reached with %d connection(s) busy", w->id, w->env.nconns);
    if (event_base_loopbreak(w->base) < 0)
        log_eventf("error", "worker %d: event_base_loopbreak failed", w->id);
}

/* An event base with the priorities above. */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    struct event_base *base = NULL;
    if (event_config_set_max_dispatch_interval(cfg, NULL, LOW_CALLBACKS, 1) == 0)
        base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (base && event_base_priority_init(base, PRIORITIES) < 0) {
        event_base_free(base);
        base = NULL;
    }
    return base;
}

worker *worker_new(int id, const worker_shared *sh, char *err, size_t errlen)
{
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "worker: out of memory");
        return NULL;
    }
    w->id = id;
    w->sh = sh;
    w->listen_fd = -1;
    w->wake_fd = -1;
    w->crypt = (crypt_client){sh->crypt, crypt_post, w};
    pthread_mutex_init(&w->lock, NULL);
    if (getrandom(&w->env.id_prefix, sizeof w->env.id_prefix, 0) != sizeof w->env.id_prefix)
        w->env.id_prefix = (uint64_t)time(NULL) ^ ((uint64_t)id << 56);
    if (!(w->metrics = calloc(1, sizeof *w->metrics)) || !(w->base = new_base())) {
        snprintf(err, errlen, "worker %d: cannot create its event loop", id);
        goto err;
    }
    pool_conf pc = {sh->conf->database_url, sh->conf->db_pool_min, sh->conf->db_pool_max,
                    sh->conf->db_queue_max, sh->conf->db_wait_timeout_ms,
                    sh->conf->db_statement_timeout_ms};
    if (!(w->pool = pool_new(w->base, &pc, &w->metrics->pool))) {
        snprintf(err, errlen, "worker %d: cannot create its database pool", id);
        goto err;
    }
    if (!(w->http = hc_client_new(w->base, sh->conf->http_ca_file, &w->metrics->http_client))) {
        snprintf(err, errlen, "worker %d: cannot create its HTTP client (libcurl)", id);
        goto err;
    }
    /* Each worker keys its own HMAC context: it holds hashing state. */
    const char *secret = sh->conf->jwt_secret;
    if (secret && *secret &&
        (!(w->jwt_key = jwt_key_new((const unsigned char *)secret, strlen(secret))) || !(w->jwt_cache = jwt_cache_new()))) {
        snprintf(err, errlen, "worker %d: cannot key the JWT verifier", id);
        goto err;
    }
    jwt_key_set_keyset(w->jwt_key, sh->jwt_keys);
    if (sh->engine && !(w->broker_reader = rs_reader_new(sh->engine))) {
        snprintf(err, errlen, "worker %d: no reader slot left in the broker engine", id);
        goto err;
    }
    w->listen_fd = worker_listen_socket(sh->conf->listen_host, sh->conf->listen_port, 1, err, errlen);
    if (w->listen_fd < 0)
        goto err;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int tick_ms = sh->conf->read_timeout_ms < sh->conf->idle_timeout_ms ? sh->conf->read_timeout_ms
                                                                          : sh->conf->idle_timeout_ms;
    tick_ms = tick_ms / 10 < 10 ? 10 : tick_ms / 10 > 200 ? 200 : tick_ms / 10;
    struct timeval tick = {0, tick_ms * 1000};
    if (w->wake_fd < 0 ||
        !(w->accept_ev = event_new(w->base, w->listen_fd, EV_READ | EV_PERSIST, on_accept, w)) ||
        !(w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w)) ||
        !(w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w)) ||
        !(w->stop_ev = evtimer_new(w->base, on_stop_deadline, w)) ||
        event_priority_set(w->accept_ev, PRIO_ACCEPT) < 0 || event_add(w->accept_ev, NULL) < 0 ||
        event_add(w->wake_ev, NULL) < 0 || event_add(w->tick_ev, &tick) < 0) {
        snprintf(err, errlen, "worker %d: cannot set up its events", id);
        goto err;
    }
    int jobs_ms = sh->conf->jobs_tick_ms;
    struct timeval jobs_tv = {jobs_ms / 1000, (jobs_ms % 1000) * 1000};
    if (id == 0 && jobs_ms > 0 &&
        (!(w->jobs = lua_tick_new()) || !(w->jobs_ev = event_new(w->base, -1, EV_PERSIST, on_jobs, w)) ||
         event_add(w->jobs_ev, &jobs_tv) < 0)) {
        snprintf(err, errlen, "worker %d: cannot set up the jobs tick", id);
        goto err;
    }
    w->env.base = w->base;
    w->env.conf = sh->conf;
    w->env.handler = router_handle;
    w->env.handler_arg = w;
    w->env.log = sh->log;
    w->env.log_db = sh->log_db;
    w->env.metrics = w->metrics;
    conn_env_clock(&w->env);
    return w;
err:
    worker_free(w);
    return NULL;
}

static void *run(void *arg)
{
    worker *w = arg;
    if (event_base_dispatch(w->base) < 0)
        log_eventf("error", "worker %d: event loop failed", w->id);
    /* Past the shutdown deadline: whatever is still open is cut.  Handlers
     * still waiting for the database end when the pool fails their queries;
     * their connections are freed as they end. */
    conn_close_all(&w->env);
    broker_sync_resume(w->sh->feed, 1);
    hc_client_shutdown(w->http);
    pool_free(w->pool);
    w->pool = NULL;
    run_tasks(w);
    conn_close_all(&w->env);
    accesslog_flush(w->sh->log, &w->env.logbuf);
    return NULL;
}

int worker_start(worker *w, char *err, size_t errlen)
{
    int rc = pthread_create(&w->thread, NULL, run, w);
    if (rc) {
        snprintf(err, errlen, "worker %d: cannot start its thread: %s", w->id, strerror(rc));
        return -1;
    }
    return 0;
}

static void wake(worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof one);
    (void)n; /* EAGAIN means a wake-up is already pending: enough */
}

void worker_publish(worker *w, lua_gen *g)
{
    pthread_mutex_lock(&w->lock);
    lua_gen *old = w->pending;
    w->pending = g;
    pthread_mutex_unlock(&w->lock);
    if (old)
        lua_gen_retire(old); /* superseded before the worker got to it: never ran */
    wake(w);
}

void worker_broker_synced(worker *w)
{
    wake(w);
}

void worker_shutdown(worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_mutex_unlock(&w->lock);
    wake(w);
}

void worker_join(worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(worker *w)
{
    if (!w)
        return;
    run_tasks(w); /* what arrived after the loop ended is answered first */
    conn_close_all(&w->env);
    if (w->accept_ev)
        event_free(w->accept_ev);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->tick_ev)
        event_free(w->tick_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->jobs_ev)
        event_free(w->jobs_ev);
    lua_tick_free(w->jobs); /* a tick still running frees it as it ends */
    if (w->gen)
        lua_gen_retire(w->gen);
    pool_free(w->pool); /* after the Lua states: nothing refers to it any more */
    hc_client_free(w->http); /* likewise (their transfers are freed with them) */
    if (w->broker_reader)
        rs_reader_free(w->broker_reader);
    jwt_key_free(w->jwt_key);
    jwt_cache_free(w->jwt_cache);
    if (w->base)
        event_base_free(w->base);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->pending)
        lua_gen_retire(w->pending);
    conn_env_free(&w->env);
    free(w->metrics);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
