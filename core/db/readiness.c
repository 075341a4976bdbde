/* readiness.c: the probe behind GET /ready (see readiness.h).  Uses libpq
 * (blocking, on this unit's own thread) and pthreads; knows nothing of HTTP. */
#include "readiness.h"

#include "obs/log.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REASON_MAX 512

typedef struct job {
    struct job *next;
    char json[];               /* the record, NUL-terminated */
} job;

struct readiness {
    pthread_t thread;
    pthread_mutex_t lock;      /* guards ready, reason, stopping */
    pthread_cond_t wake;       /* signalled by readiness_stop */
    int ready;                 /* last probe's verdict */
    int stopping;              /* set once by readiness_stop */
    char reason[REASON_MAX];   /* why not ready; "" when ready */
    char *database_url;        /* owned */
    char *sql_dir;             /* owned */
    int interval_ms;
    PGconn *conn;              /* owned by the probe thread; NULL when closed */
    job *jobs, *last;          /* queued records, guarded by lock; owned */
};

static void publish(readiness *r, int ready, const char *reason)
{
    pthread_mutex_lock(&r->lock);
    r->ready = ready;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    pthread_mutex_unlock(&r->lock);
}

static int is_migration(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] >= '0' && e->d_name[0] <= '9' && n > 4 &&
           strcmp(e->d_name + n - 4, ".sql") == 0;
}

/* The migration names as a text[] literal ({"001_a.sql",...}); malloc'd,
 * NULL with a reason on failure.  Read each probe so that a deploy that adds
 * a migration makes /ready say so. */
static char *migration_array(const char *dir, char *reason, size_t len)
{
    struct dirent **list;
    int n = scandir(dir, &list, is_migration, alphasort);
    if (n < 0) {
        snprintf(reason, len, "cannot read sql_dir %s: %s", dir, strerror(errno));
        return NULL;
    }
    size_t cap = 3;
    for (int i = 0; i < n; i++)
        cap += 2 * strlen(list[i]->d_name) + 3;
    char *out = malloc(cap), *p = out;
    if (out) {
        *p++ = '{';
        for (int i = 0; i < n; i++) {
            if (i)
                *p++ = ',';
            *p++ = '"';
            for (const char *s = list[i]->d_name; *s; s++) {
                if (*s == '"' || *s == '\\')
                    *p++ = '\\';
                *p++ = *s;
            }
            *p++ = '"';
        }
        *p++ = '}';
        *p = '\0';
    } else {
        snprintf(reason, len, "out of memory");
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return out;
}

/* libpq's messages span lines ("...failed\n\tIs the server running...");
 * /ready and the log want one line. */
static void one_line(char *s)
{
    char *out = s;
    for (char *in = s; *in; in++) {
        if (*in == '\n' || *in == '\r' || *in == '\t') {
            if (out > s && out[-1] != ' ')
                *out++ = ' ';
        } else {
            *out++ = *in;
        }
    }
    while (out > s && out[-1] == ' ')
        out--;
    *out = '\0';
}

static int ensure_connected(readiness *r, char *reason, size_t len)
{
    if (r->conn && PQstatus(r->conn) == CONNECTION_OK)
        return 0;
    PQfinish(r->conn);
    const char *keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *vals[] = {r->database_url, "3", "strata-ready", "-c statement_timeout=3000", NULL};
    r->conn = PQconnectdbParams(keys, vals, 1);
    if (r->conn && PQstatus(r->conn) == CONNECTION_OK)
        return 0;
    snprintf(reason, len, "database unreachable: %s",
             r->conn ? PQerrorMessage(r->conn) : "out of memory");
    one_line(reason);
    PQfinish(r->conn);
    r->conn = NULL;
    return -1;
}

static const char PENDING_SQL[] =
    "select count(*), coalesce(string_agg(n, ', ' order by n), '') "
    "from unnest($1::text[]) as n "
    "where not exists (select 1 from strata_migrations m where m.name = n)";

static void probe(readiness *r)
{
    char reason[REASON_MAX] = "";
    char *names = migration_array(r->sql_dir, reason, sizeof reason);
    if (!names || ensure_connected(r, reason, sizeof reason)) {
        free(names);
        publish(r, 0, reason);
        return;
    }
    const char *params[] = {names};
    PGresult *res = PQexecParams(r->conn, PENDING_SQL, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        long pending = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (pending)
            snprintf(reason, sizeof reason, "%ld migration(s) not applied: %s", pending,
                     PQgetvalue(res, 0, 1));
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0)
            snprintf(reason, sizeof reason, "migrations not applied (no strata_migrations table)");
        else
            snprintf(reason, sizeof reason, "database check failed: %s", PQerrorMessage(r->conn));
        one_line(reason);
    }
    PQclear(res);
    free(names);
    publish(r, reason[0] == '\0', reason);
}

static const char RELOAD_SQL[] =
    "insert into strata_reloads (at, trigger, result, generation, files, error) "
    "select (r->>'time')::timestamptz, r->>'trigger', r->>'result', (r->>'generation')::bigint, "
    "r->'files', r->>'error' from (select $1::jsonb as r) as x";

/* Writes the queued records; a failure drops them with a log line (they
 * are in the log and /admin/reloads already). */
static void drain(readiness *r)
{
    pthread_mutex_lock(&r->lock);
    job *list = r->jobs;
    r->jobs = r->last = NULL;
    pthread_mutex_unlock(&r->lock);
    char reason[REASON_MAX];
    while (list) {
        job *j = list;
        list = j->next;
        if (ensure_connected(r, reason, sizeof reason) == 0) {
            const char *params[] = {j->json};
            PGresult *res = PQexecParams(r->conn, RELOAD_SQL, 1, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                snprintf(reason, sizeof reason, "%s", PQresultErrorMessage(res));
                one_line(reason);
                log_eventf("warn", "reload record not stored in strata_reloads: %s", reason);
            }
            PQclear(res);
        } else {
            log_eventf("warn", "reload record not stored in strata_reloads: %s", reason);
        }
        free(j);
    }
}

void readiness_submit(readiness *r, const char *json)
{
    size_t n = strlen(json);
    job *j = malloc(sizeof *j + n + 1);
    if (!j)
        return;
    memcpy(j->json, json, n + 1);
    j->next = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->last)
        r->last->next = j;
    else
        r->jobs = j;
    r->last = j;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

static void *probe_loop(void *arg)
{
    readiness *r = arg;
    for (;;) {
        probe(r);
        drain(r);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_ms / 1000;
        until.tv_nsec += (long)(r->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && !r->jobs && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
            ;
        int stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
    }
    drain(r);
    PQfinish(r->conn);
    r->conn = NULL;
    return NULL;
}

readiness *readiness_start(const char *database_url, const char *sql_dir, int interval_ms,
                           char *err, size_t errlen)
{
    readiness *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "readiness: out of memory");
        return NULL;
    }
    r->database_url = strdup(database_url);
    r->sql_dir = strdup(sql_dir);
    r->interval_ms = interval_ms;
    snprintf(r->reason, sizeof r->reason, "starting");
    if (!r->database_url || !r->sql_dir) {
        snprintf(err, errlen, "readiness: out of memory");
        goto err;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    int rc = pthread_create(&r->thread, NULL, probe_loop, r);
    if (rc) {
        snprintf(err, errlen, "readiness: cannot start thread: %s", strerror(rc));
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        goto err;
    }
    return r;
err:
    free(r->database_url);
    free(r->sql_dir);
    free(r);
    return NULL;
}

int readiness_get(readiness *r, char *reason, size_t len)
{
    pthread_mutex_lock(&r->lock);
    int ready = r->ready;
    snprintf(reason, len, "%s", r->reason);
    pthread_mutex_unlock(&r->lock);
    return ready;
}

void readiness_stop(readiness *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r->database_url);
    free(r->sql_dir);
    free(r);
}
