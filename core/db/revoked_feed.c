/* revoked_feed.c: the revoked-session set (revoked_feed.h): a uuid_set
 * behind a read-write lock, filled by its own thread from LISTEN/NOTIFY.
 * Uses libpq (blocking, on this thread only), engine/uuid_set, poll(2) and
 * an eventfd to be stopped. */
#include "revoked_feed.h"

#include "engine/uuid.h"
#include "engine/uuid_set.h"
#include "obs/log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Rows older than the longest access token lifetime (conf auth_jwt_exp
 * is at most 7 days) plus a day are dropped when the set is loaded. */
#define RELOAD_MS (3600 * 1000) /* the whole set is read again this often: old ids leave memory */

static const char LOAD_SQL[] =
    "with gone as (delete from auth.revoked_sessions where revoked_at < now() - interval '8 days') "
    "select session_id::text from auth.revoked_sessions";

struct revoked_feed {
    char *url;                 /* owned */
    PGconn *conn;              /* the feed thread's */
    pthread_t thread;
    int wake_fd;               /* owned eventfd: stop */
    _Atomic int stopping;
    pthread_rwlock_t lock;     /* guards set */
    uuid_set set;              /* owned */
    _Atomic uint64_t reconnects;
    int warned;                /* the load failed once already (logged) */
    uint64_t loaded_ms;        /* monotonic time of the last whole load */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int add_text(uuid_set *s, const char *text, size_t len)
{
    rs_uuid u;
    if (rs_uuid_parse(text, len, &u) != 0)
        return 0;
    return uuid_set_add(s, &u) < 0 ? -1 : 0;
}

/* Loads the whole set into a new one and swaps it in.  0 or -1. */
static int load(revoked_feed *f)
{
    PGresult *r = PQexec(f->conn, LOAD_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (!f->warned)
            log_eventf("warn", "revoked sessions: cannot load auth.revoked_sessions (%s); is sql/130_auth.sql applied?",
                       PQresultErrorMessage(r));
        f->warned = 1;
        PQclear(r);
        return -1;
    }
    uuid_set fresh = {0};
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = add_text(&fresh, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    PQclear(r);
    if (rc < 0) {
        uuid_set_free(&fresh);
        log_eventf("error", "revoked sessions: out of memory loading the set");
        return -1;
    }
    pthread_rwlock_wrlock(&f->lock);
    uuid_set old = f->set;
    f->set = fresh;
    pthread_rwlock_unlock(&f->lock);
    uuid_set_free(&old);
    f->warned = 0;
    f->loaded_ms = mono_ms();
    return 0;
}

/* A notification's payload: comma-separated ids, or "resync". */
static int apply(revoked_feed *f, const char *payload)
{
    if (strcmp(payload, "resync") == 0)
        return load(f);
    int rc = 0;
    pthread_rwlock_wrlock(&f->lock);
    for (const char *p = payload; *p && rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        rc = add_text(&f->set, p, n);
        p = comma ? comma + 1 : p + n;
    }
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

static int take_notifications(revoked_feed *f)
{
    if (!PQconsumeInput(f->conn))
        return -1;
    PGnotify *n;
    int rc = 0;
    while ((n = PQnotifies(f->conn))) {
        if (rc == 0)
            rc = apply(f, n->extra);
        PQfreemem(n);
    }
    return rc;
}

static int connect_and_load(revoked_feed *f)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {f->url, "strata-revoked-feed", "5", NULL};
    f->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(f->conn) != CONNECTION_OK)
        return -1;
    PGresult *r = PQexec(f->conn, "LISTEN strata_auth_revoked");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    /* LISTEN first, then load: a session ending meanwhile is in both. */
    return ok ? load(f) : -1;
}

/* Waits for a notification, a wake-up or the timeout. */
static void wait_events(revoked_feed *f, int timeout_ms)
{
    struct pollfd p[2] = {{f->wake_fd, POLLIN, 0}, {f->conn ? PQsocket(f->conn) : -1, POLLIN, 0}};
    if (poll(p, f->conn ? 2 : 1, timeout_ms) > 0 && (p[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t n = read(f->wake_fd, &v, sizeof v);
        (void)n;
    }
}

static void *run(void *arg)
{
    revoked_feed *f = arg;
    int backoff = 100;
    while (!atomic_load(&f->stopping)) {
        if (!f->conn) {
            if (connect_and_load(f) < 0) {
                PQfinish(f->conn);
                f->conn = NULL;
                wait_events(f, backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 100;
        }
        /* A periodic whole load drops the ids sql/130's rows no longer
         * hold (older than any token), so the set does not only grow. */
        int reload = mono_ms() - f->loaded_ms >= RELOAD_MS;
        if ((reload && load(f) < 0) || take_notifications(f) < 0 || PQstatus(f->conn) != CONNECTION_OK) {
            log_eventf("warn", "revoked sessions: lost the database connection; the set is reloaded on reconnect");
            atomic_fetch_add(&f->reconnects, 1);
            PQfinish(f->conn);
            f->conn = NULL;
            continue;
        }
        wait_events(f, 1000);
    }
    PQfinish(f->conn);
    f->conn = NULL;
    return NULL;
}

revoked_feed *revoked_feed_start(const char *database_url, char *err, size_t errlen)
{
    revoked_feed *f = calloc(1, sizeof *f);
    if (!f || !(f->url = strdup(database_url ? database_url : ""))) {
        snprintf(err, errlen, "revoked sessions: out of memory");
        free(f);
        return NULL;
    }
    pthread_rwlock_init(&f->lock, NULL);
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = f->wake_fd < 0 ? errno : pthread_create(&f->thread, NULL, run, f);
    if (rc) {
        snprintf(err, errlen, "revoked sessions: cannot start: %s", strerror(rc));
        if (f->wake_fd >= 0)
            close(f->wake_fd);
        pthread_rwlock_destroy(&f->lock);
        free(f->url);
        free(f);
        return NULL;
    }
    return f;
}

void revoked_feed_free(revoked_feed *f)
{
    if (!f)
        return;
    atomic_store(&f->stopping, 1);
    uint64_t one = 1;
    ssize_t n = write(f->wake_fd, &one, sizeof one);
    (void)n;
    pthread_join(f->thread, NULL);
    uuid_set_free(&f->set);
    pthread_rwlock_destroy(&f->lock);
    close(f->wake_fd);
    free(f->url);
    free(f);
}

int revoked_feed_has(revoked_feed *f, const char *session_id, size_t len)
{
    rs_uuid u;
    if (!f || rs_uuid_parse(session_id, len, &u) != 0)
        return 0;
    pthread_rwlock_rdlock(&f->lock);
    int has = f->set.count > 0 && uuid_set_has(&f->set, &u);
    pthread_rwlock_unlock(&f->lock);
    return has;
}

int revoked_feed_add(revoked_feed *f, const char *session_id, size_t len)
{
    rs_uuid u;
    if (!f || rs_uuid_parse(session_id, len, &u) != 0)
        return -1;
    pthread_rwlock_wrlock(&f->lock);
    int rc = uuid_set_add(&f->set, &u);
    pthread_rwlock_unlock(&f->lock);
    return rc < 0 ? -1 : 0;
}

int revoked_feed_metrics(revoked_feed *f, buf *out)
{
    if (!f)
        return 0;
    pthread_rwlock_rdlock(&f->lock);
    size_t held = f->set.count;
    pthread_rwlock_unlock(&f->lock);
    char text[512];
    snprintf(text, sizeof text,
             "# HELP strata_auth_revoked_sessions Ended sessions whose access tokens are refused.\n"
             "# TYPE strata_auth_revoked_sessions gauge\nstrata_auth_revoked_sessions %zu\n"
             "# HELP strata_auth_revoked_feed_reconnects_total Connections of the revoked-session feed lost.\n"
             "# TYPE strata_auth_revoked_feed_reconnects_total counter\nstrata_auth_revoked_feed_reconnects_total %llu\n",
             held, (unsigned long long)atomic_load(&f->reconnects));
    return buf_add_str(out, text);
}
