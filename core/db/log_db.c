/* log_db.c: see log_db.h.  Uses libpq (blocking, on this unit's own
 * thread), buf, log and pthreads; knows nothing of HTTP or Lua. */
#include "log_db.h"

#include "base/clock.h"
#include "obs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXCLUDED 32
#define RECONNECT_MS 500
#define BATCH_KEEP (1 << 20) /* the INSERT buffer keeps this much between INSERTs */
/* pg_try_advisory_lock key of the purge: "strata_logs_purge" folded. */
#define PURGE_LOCK_KEY "7305826157261902451"
/* Its name among the scheduled jobs (strata_jobs.jobs, sql/157_jobs.sql). */
#define PURGE_JOB "strata.log_purge"

typedef struct entry {
    struct entry *next;
    int table;
    size_t len;
    size_t cap;    /* bytes json[] has room for */
    char json[];   /* NUL-terminated */
} entry;

/* Entries of SPARE_CAP bytes go back to a free list (up to SPARE_MAX of
 * them) rather than to free(): a malloc on the request path and a free on
 * the writer's cost ~340 instructions per row, and the two threads' heaps
 * grow and shrink with them. */
#define SPARE_CAP 1024
#define SPARE_MAX 1024

struct log_db {
    pthread_t thread;
    char *database_url;        /* owned */
    size_t queue_max;
    int purge_interval_ms, purge_batch;
    int wake[2];               /* pipe: pushers and stop ring the thread */
    _Atomic int stopping;
    _Atomic int wake_pending;  /* a byte is in the pipe already */

    pthread_mutex_t lock;      /* guards the queue and the settings below */
    entry *head, *tail;
    size_t count;
    entry *spare;              /* the free list */
    size_t nspare;
    buf settings_json;         /* NUL-terminated */
    char *excluded[MAX_EXCLUDED]; /* owned prefixes */
    int nexcluded;

    _Atomic uint64_t version;
    _Atomic int error_enabled, anonymize_ip, log_user_agent, hash_email;
    _Atomic int batch_writes, batch_size, batch_interval_ms;
    _Atomic int lose_answers;  /* test fault: answers of committed INSERTs still to lose */

    PGconn *conn;              /* the thread's; NULL while disconnected */
    buf batch;                 /* the thread's: an INSERT's JSON array, kept between them */
    int failing;               /* last write failed: log changes only */
    /* Metrics. */
    _Atomic uint64_t queued[LOG_NTABLES], written[LOG_NTABLES], dropped[LOG_NTABLES], rejected[LOG_NTABLES];
    _Atomic uint64_t purged[LOG_NTABLES];
    _Atomic uint64_t inserts, insert_failures, flush_failures, purges_ok, purges_locked, purges_skipped, purges_failed, settings_loads;
};

static const char *const TABLES[LOG_NTABLES] = {"error_logs", "user_activity_logs", "agent_activity_logs",
                                                "usage_logs"};
/* The column the push stamps with the time of the action. */
static const char *const STAMP[LOG_NTABLES] = {"created_at", "created_at", "created_at", "request_timestamp"};
/* The prepared INSERTs' names, one per table, on the writer's connection. */
static const char *const STMT[LOG_NTABLES] = {"strata_log_error", "strata_log_user", "strata_log_agent",
                                              "strata_log_usage"};

/* One prepared statement per table: json_to_recordset reads the batch (a
 * JSON array of rows) straight into typed columns, and the defaults of the
 * columns a row leaves out are put back with coalesce (a NULL from the
 * record would override them).  The stamp is timestamptz text, stored as
 * the session's local timestamp (as the columns' now() defaults).  The ids
 * are the client's: a retried batch skips what was stored.  Measured with
 * 100-row batches of user_activity_logs: about 0.6x the PostgreSQL CPU of
 * jsonb_array_elements + jsonb_populate_record (README, Logging). */
#define INSERT(table, cols, select, record)                                                                    \
    "insert into public." table " (" cols ") select " select " from json_to_recordset($1::json) as r(" record \
    ") on conflict (id) do nothing"
static const char *const INSERT_SQL[LOG_NTABLES] = {
    INSERT("error_logs",
           "id, user_id, error_type, error_category, error_message, error_details, request_path, request_method, "
           "user_agent, ip_address, session_id, severity, resolved, resolved_by, resolved_at, resolution_notes, "
           "created_at",
           "id, user_id, error_type, error_category, error_message, error_details, request_path, request_method, "
           "user_agent, ip_address, session_id, coalesce(severity, 'error'), coalesce(resolved, false), resolved_by, "
           "resolved_at, resolution_notes, created_at::timestamp",
           "id uuid, user_id uuid, error_type text, error_category text, error_message text, error_details jsonb, "
           "request_path text, request_method text, user_agent text, ip_address text, session_id text, severity "
           "text, resolved boolean, resolved_by uuid, resolved_at timestamp, resolution_notes text, created_at "
           "timestamptz"),
    INSERT("user_activity_logs",
           "id, user_id, correlation_id, activity_type, activity_category, activity_metadata, resource_id, "
           "resource_type, ip_address, user_agent, request_path, request_method, session_id, success, "
           "error_message, created_at",
           "id, user_id, correlation_id, activity_type, activity_category, coalesce(activity_metadata, '{}'), "
           "resource_id, resource_type, ip_address, user_agent, request_path, request_method, session_id, "
           "coalesce(success, true), error_message, created_at::timestamp",
           "id uuid, user_id uuid, correlation_id uuid, activity_type text, activity_category text, "
           "activity_metadata jsonb, resource_id uuid, resource_type text, ip_address text, user_agent text, "
           "request_path text, request_method text, session_id text, success boolean, error_message text, "
           "created_at timestamptz"),
    INSERT("agent_activity_logs",
           "id, user_id, correlation_id, agent_type, operation_type, operation_category, operation_metadata, "
           "resource_id, resource_type, duration_ms, start_time, end_time, model_id, provider, thinking_mode, "
           "input_tokens, output_tokens, reasoning_tokens, total_tokens, input_cost, output_cost, total_cost, "
           "success, error_type, error_message, retry_count, created_at",
           "id, user_id, correlation_id, agent_type, operation_type, operation_category, "
           "coalesce(operation_metadata, '{}'), resource_id, resource_type, duration_ms, start_time, end_time, "
           "model_id, provider, coalesce(thinking_mode, false), input_tokens, output_tokens, reasoning_tokens, "
           "total_tokens, input_cost, output_cost, total_cost, coalesce(success, true), error_type, error_message, "
           "coalesce(retry_count, 0), created_at::timestamp",
           "id uuid, user_id uuid, correlation_id uuid, agent_type text, operation_type text, operation_category "
           "text, operation_metadata jsonb, resource_id uuid, resource_type text, duration_ms integer, start_time "
           "timestamp, end_time timestamp, model_id text, provider text, thinking_mode boolean, input_tokens "
           "integer, output_tokens integer, reasoning_tokens integer, total_tokens integer, input_cost numeric, "
           "output_cost numeric, total_cost numeric, success boolean, error_type text, error_message text, "
           "retry_count integer, created_at timestamptz"),
    INSERT("usage_logs",
           "id, user_id, chat_id, agent_type, model_used, provider, input_tokens, output_tokens, total_tokens, "
           "input_cost, output_cost, total_cost, request_timestamp, response_timestamp, duration_ms, metadata",
           "id, user_id, chat_id, agent_type, model_used, provider, input_tokens, output_tokens, total_tokens, "
           "input_cost, output_cost, total_cost, request_timestamp::timestamp, response_timestamp, duration_ms, "
           "metadata",
           "id uuid, user_id uuid, chat_id uuid, agent_type text, model_used text, provider text, input_tokens "
           "integer, output_tokens integer, total_tokens integer, input_cost numeric, output_cost numeric, "
           "total_cost numeric, request_timestamp timestamptz, response_timestamp timestamp, duration_ms integer, "
           "metadata jsonb"),
};

/* Flat columns for C, the whole object for Lua; get_logging_config()
 * answers the seed's defaults when the row is missing. */
static const char SETTINGS_SQL[] =
    "select c::text, coalesce((c->>'error_logging_enabled')::boolean, true), "
    "coalesce((c->'privacy_settings'->>'anonymize_ip')::boolean, false), "
    "coalesce((c->'privacy_settings'->>'log_user_agent')::boolean, true), "
    "coalesce((c->'performance_settings'->>'batch_writes')::boolean, true), "
    "greatest(1, least(10000, coalesce((c->'performance_settings'->>'batch_size')::numeric::int, 100))), "
    "greatest(10, least(3600000, coalesce((c->'performance_settings'->>'batch_interval_ms')::numeric::int, 5000))), "
    "array_to_string(array(select jsonb_array_elements_text(case jsonb_typeof(c->'privacy_settings'->"
    "'exclude_sensitive_paths') when 'array' then c->'privacy_settings'->'exclude_sensitive_paths' "
    "else '[]' end)), E'\\n'), "
    "coalesce((c->'privacy_settings'->>'hash_email')::boolean, false) "
    "from (select public.get_logging_config() as c) s";

const char *log_db_table_name(int table)
{
    return table >= 0 && table < LOG_NTABLES ? TABLES[table] : NULL;
}

const char *log_db_stamp_column(int table)
{
    return STAMP[table];
}

int log_db_table_index(const char *name, size_t n)
{
    for (int i = 0; i < LOG_NTABLES; i++)
        if (strlen(TABLES[i]) == n && memcmp(TABLES[i], name, n) == 0)
            return i;
    return -1;
}

/* ---- ids and stamps, on the pusher's thread ---- */

static __thread uint64_t rng[2];

static uint64_t next_random(void)
{
    if (rng[0] == 0 && rng[1] == 0) {
        if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng || (rng[0] | rng[1]) == 0) {
            rng[0] = mono_ns() ^ (uint64_t)(uintptr_t)&rng;
            rng[1] = 0x9e3779b97f4a7c15u;
        }
    }
    /* xorshift128+ */
    uint64_t s1 = rng[0];
    const uint64_t s0 = rng[1];
    rng[0] = s0;
    s1 ^= s1 << 23;
    rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng[1] + s0;
}

static void make_uuid(char out[37])
{
    unsigned char b[16];
    uint64_t a = next_random(), c = next_random();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    /* where byte i's two digits go: no branch per byte */
    static const unsigned char AT[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; i++) {
        out[AT[i]] = hex[b[i] >> 4];
        out[AT[i] + 1] = hex[b[i] & 15];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" now; the seconds' text is made once per
 * second per thread. */
static void make_stamp(char out[40])
{
    static __thread time_t sec = -1;
    static __thread char when[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        sec = ts.tv_sec;
    }
    memcpy(out, when, 19);
    out[19] = '.';
    for (int i = 25, us = (int)(ts.tv_nsec / 1000) % 1000000; i > 19; i--, us /= 10)
        out[i] = (char)('0' + us % 10);
    memcpy(out + 26, "Z", 2);
}

/* An entry with room for need bytes: a spare one when it fits, else a new
 * one.  NULL when out of memory. */
static entry *take_entry(log_db *d, size_t need)
{
    entry *e = NULL;
    if (need <= SPARE_CAP) {
        pthread_mutex_lock(&d->lock);
        if ((e = d->spare)) {
            d->spare = e->next;
            d->nspare--;
        }
        pthread_mutex_unlock(&d->lock);
        need = SPARE_CAP;
    }
    if (!e && (e = malloc(sizeof(entry) + need)))
        e->cap = need;
    return e;
}

/* Gives back a list of entries written (or dropped): to the free list
 * while it has room, else to free(). */
static void recycle(log_db *d, entry *list)
{
    entry *rest = NULL;
    pthread_mutex_lock(&d->lock);
    while (list) {
        entry *e = list;
        list = e->next;
        if (e->cap == SPARE_CAP && d->nspare < SPARE_MAX) {
            e->next = d->spare;
            d->spare = e;
            d->nspare++;
        } else {
            e->next = rest;
            rest = e;
        }
    }
    pthread_mutex_unlock(&d->lock);
    while (rest) {
        entry *next = rest->next;
        free(rest);
        rest = next;
    }
}

int log_db_push(log_db *d, int table, const char *json, size_t len, char id_out[37])
{
    if (table < 0 || table >= LOG_NTABLES || len < 2 || json[0] != '{')
        return -1;
    char id[37], stamp[40];
    make_uuid(id);
    make_stamp(stamp);
    /* {"id":"…","<stamp>":"…"[,] + the caller's members */
    const char *rest = json + 1;
    size_t rest_len = len - 1, k = 0;
    while (k < rest_len && (rest[k] == ' ' || rest[k] == '\t' || rest[k] == '\r' || rest[k] == '\n'))
        k++;
    int empty = k < rest_len && rest[k] == '}';
    entry *e = take_entry(d, len + 128);
    if (!e) {
        atomic_fetch_add(&d->dropped[table], 1);
        return -1;
    }
    /* {"id":"<id>","<stamp column>":"<stamp>"[,] then the caller's members */
    char *p = e->json;
    size_t sl = strlen(STAMP[table]);
    memcpy(p, "{\"id\":\"", 7);
    memcpy(p + 7, id, 36);
    memcpy(p + 43, "\",\"", 3);
    memcpy(p + 46, STAMP[table], sl);
    p += 46 + sl;
    memcpy(p, "\":\"", 3);
    memcpy(p + 3, stamp, 27);
    p += 30;
    *p++ = '"';
    *p++ = empty ? '}' : ',';
    if (!empty) {
        memcpy(p, rest, rest_len);
        p += rest_len;
    }
    *p = '\0';
    e->len = (size_t)(p - e->json);
    e->table = table;
    e->next = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->count >= d->queue_max) {
        pthread_mutex_unlock(&d->lock);
        recycle(d, e);
        atomic_fetch_add(&d->dropped[table], 1);
        return -1;
    }
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
    size_t count = ++d->count;
    pthread_mutex_unlock(&d->lock);
    atomic_fetch_add(&d->queued[table], 1);
    if (id_out)
        memcpy(id_out, id, 37);
    if ((!atomic_load(&d->batch_writes) || count >= (size_t)atomic_load(&d->batch_size)) &&
        !atomic_exchange(&d->wake_pending, 1)) {
        char one = 1;
        if (write(d->wake[1], &one, 1) < 0 && errno != EAGAIN)
            atomic_store(&d->wake_pending, 0);
    }
    return 0;
}

void log_db_flags(log_db *d, log_flags *out)
{
    out->error_enabled = atomic_load(&d->error_enabled);
    out->anonymize_ip = atomic_load(&d->anonymize_ip);
    out->log_user_agent = atomic_load(&d->log_user_agent);
    out->hash_email = atomic_load(&d->hash_email);
}

int log_db_path_excluded(log_db *d, const char *path, size_t n)
{
    int hit = 0;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < d->nexcluded && !hit; i++) {
        size_t k = strlen(d->excluded[i]);
        hit = k > 0 && k <= n && memcmp(path, d->excluded[i], k) == 0;
    }
    pthread_mutex_unlock(&d->lock);
    return hit;
}

uint64_t log_db_settings_version(log_db *d)
{
    return atomic_load(&d->version);
}

int log_db_settings_json(log_db *d, buf *out, uint64_t *version)
{
    pthread_mutex_lock(&d->lock);
    int rc = d->settings_json.len ? buf_add(out, d->settings_json.p, d->settings_json.len - 1) : -1;
    *version = atomic_load(&d->version);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* ---- the thread ---- */

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

static int load_settings(log_db *d)
{
    PGresult *r = PQexec(d->conn, SETTINGS_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char why[512];
        snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
        one_line(why);
        log_eventf("warn", "logging_settings: cannot read them, the previous ones stay: %s", why);
        PQclear(r);
        return -1;
    }
#define B(col) (PQgetvalue(r, 0, col)[0] == 't')
    pthread_mutex_lock(&d->lock);
    d->settings_json.len = 0;
    if (buf_add_str(&d->settings_json, PQgetvalue(r, 0, 0)) < 0 || buf_add(&d->settings_json, "", 1) < 0)
        d->settings_json.len = 0;
    for (int i = 0; i < d->nexcluded; i++)
        free(d->excluded[i]);
    d->nexcluded = 0;
    char *paths = PQgetvalue(r, 0, 7), *save = NULL;
    for (char *p = strtok_r(paths, "\n", &save); p && d->nexcluded < MAX_EXCLUDED; p = strtok_r(NULL, "\n", &save))
        if ((d->excluded[d->nexcluded] = strdup(p)))
            d->nexcluded++;
    atomic_store(&d->error_enabled, B(1));
    atomic_store(&d->anonymize_ip, B(2));
    atomic_store(&d->log_user_agent, B(3));
    atomic_store(&d->hash_email, B(8));
    atomic_store(&d->batch_writes, B(4));
    atomic_store(&d->batch_size, atoi(PQgetvalue(r, 0, 5)));
    atomic_store(&d->batch_interval_ms, atoi(PQgetvalue(r, 0, 6)));
    atomic_fetch_add(&d->version, 1);
    pthread_mutex_unlock(&d->lock);
#undef B
    PQclear(r);
    atomic_fetch_add(&d->settings_loads, 1);
    return 0;
}

static int ensure_connected(log_db *d, char *why, size_t len)
{
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK)
        return 0;
    PQfinish(d->conn);
    const char *keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *vals[] = {d->database_url, "3", "strata-logs", "-c statement_timeout=30000", NULL};
    d->conn = PQconnectdbParams(keys, vals, 1);
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK) {
        PGresult *r = PQexec(d->conn, "listen strata_admin_config");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        for (int t = 0; ok && t < LOG_NTABLES; t++) {
            r = PQprepare(d->conn, STMT[t], INSERT_SQL[t], 1, NULL);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
        /* Changes may have been missed while away: read them again. */
        if (ok && load_settings(d) == 0)
            return 0;
    }
    snprintf(why, len, "%s", d->conn ? PQerrorMessage(d->conn) : "out of memory");
    PQfinish(d->conn);
    d->conn = NULL;
    return -1;
}

/* The connection is gone or the server is not taking writes: retry the
 * rows later rather than blame them. */
static int retryable(PGresult *r, PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return 1;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!st)
        return 1;
    return strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 || strncmp(st, "57", 2) == 0 ||
           strncmp(st, "40", 2) == 0 || strcmp(st, "25006") == 0;
}

/* The test-only fault of log_db_lose_answers: 1 when this answer is to be
 * lost. */
static int lose_answer(log_db *d)
{
    int left = atomic_load(&d->lose_answers);
    while (left > 0 && !atomic_compare_exchange_weak(&d->lose_answers, &left, left - 1))
        ;
    return left > 0;
}

/* Inserts rows [first, first+n) of one table (the list from `first`).
 * 0, 1 (the rows are refused as data), or -1 with why (retry later). */
static int insert(log_db *d, int table, entry *first, size_t n, char *why, size_t len)
{
    /* The buffer is kept: one made and freed per INSERT grew and shrank
     * the thread's heap, an mprotect or two each time. */
    buf *b = &d->batch;
    b->len = 0;
    int rc = buf_add(b, "[", 1);
    size_t i = 0;
    for (entry *e = first; e && i < n; e = e->next, i++) {
        if (i)
            rc |= buf_add(b, ",", 1);
        rc |= buf_add(b, e->json, e->len);
    }
    rc |= buf_add(b, "]", 2);
    if (rc) {
        buf_shrink(b, BATCH_KEEP);
        snprintf(why, len, "out of memory");
        return -1;
    }
    const char *params[1] = {b->p};
    PGresult *r = PQexecPrepared(d->conn, STMT[table], 1, params, NULL, NULL, 0);
    atomic_fetch_add(&d->inserts, 1);
    int out = 0;
    if (PQresultStatus(r) == PGRES_COMMAND_OK && lose_answer(d)) {
        /* The test fault: committed, but strata never hears it. */
        snprintf(why, len, "injected fault: the answer to a committed INSERT was lost");
        PQfinish(d->conn);
        d->conn = NULL;
        out = -1;
    } else if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        atomic_fetch_add(&d->written[table], strtoull(PQcmdTuples(r), NULL, 10));
    } else {
        atomic_fetch_add(&d->insert_failures, 1);
        snprintf(why, len, "%s", PQresultErrorMessage(r));
        one_line(why);
        out = retryable(r, d->conn) ? -1 : 1;
    }
    PQclear(r);
    buf_shrink(b, BATCH_KEEP);
    return out;
}

static void free_list(entry *e)
{
    while (e) {
        entry *next = e->next;
        free(e);
        e = next;
    }
}

/* Puts list (n entries) back in front of the queue, past the bound
 * dropping the newest so the order of the rest is kept. */
static void put_back(log_db *d, entry *list, size_t n)
{
    if (!list)
        return;
    entry *last = list;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&d->lock);
    last->next = d->head;
    d->head = list;
    if (!d->tail)
        d->tail = last;
    d->count += n;
    entry *drop = NULL;
    if (d->count > d->queue_max) {
        entry *e = d->head;
        for (size_t i = 1; i < d->queue_max && e; i++)
            e = e->next;
        if (e) {
            drop = e->next;
            e->next = NULL;
            d->tail = e;
        } else {
            drop = d->head;
            d->head = d->tail = NULL;
        }
        d->count = d->queue_max;
    }
    pthread_mutex_unlock(&d->lock);
    for (entry *e = drop; e; e = e->next)
        atomic_fetch_add(&d->dropped[e->table], 1);
    free_list(drop);
}

/* Writes one table's rows row by row after a batch was refused as data;
 * the refused rows are dropped.  -1 when the connection failed midway:
 * *rest is what is left to retry. */
static int insert_one_by_one(log_db *d, int table, entry **rest, char *why, size_t len)
{
    while (*rest) {
        entry *e = *rest;
        int rc = insert(d, table, e, 1, why, len);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            atomic_fetch_add(&d->rejected[table], 1);
            log_eventf("warn", "%s: a log row was refused and dropped: %s", TABLES[table], why);
        }
        *rest = e->next;
        e->next = NULL;
        recycle(d, e);
    }
    return 0;
}

/* One pass: everything queued, grouped by table, batch_size rows per
 * statement.  final: no retry will follow. */
static void flush(log_db *d, int final)
{
    pthread_mutex_lock(&d->lock);
    entry *all = d->head;
    d->head = d->tail = NULL;
    d->count = 0;
    pthread_mutex_unlock(&d->lock);
    if (!all)
        return;
    entry *by[LOG_NTABLES] = {NULL}, *ends[LOG_NTABLES] = {NULL};
    size_t counts[LOG_NTABLES] = {0};
    for (entry *e = all, *next; e; e = next) {
        next = e->next;
        e->next = NULL;
        if (ends[e->table])
            ends[e->table]->next = e;
        else
            by[e->table] = e;
        ends[e->table] = e;
        counts[e->table]++;
    }
    char why[512] = "";
    int failed = ensure_connected(d, why, sizeof why) < 0;
    size_t per = atomic_load(&d->batch_writes) ? (size_t)atomic_load(&d->batch_size) : 1;
    for (int t = 0; t < LOG_NTABLES && !failed; t++) {
        while (by[t]) {
            size_t n = counts[t] < per ? counts[t] : per;
            entry *chunk = by[t], *after = chunk;
            for (size_t i = 1; i < n; i++)
                after = after->next;
            entry *rest = after->next;
            int rc = insert(d, t, chunk, n, why, sizeof why);
            if (rc < 0) {
                failed = 1;
                break;
            }
            if (rc > 0) { /* some row is bad: find it */
                after->next = NULL;
                entry *left = chunk;
                if (insert_one_by_one(d, t, &left, why, sizeof why) < 0) {
                    if (left) {
                        entry *tail = left;
                        while (tail->next)
                            tail = tail->next;
                        tail->next = rest;
                        rest = left;
                    }
                    by[t] = rest;
                    failed = 1;
                    break;
                }
            } else {
                after->next = NULL;
                recycle(d, chunk);
            }
            by[t] = rest;
            counts[t] -= n;
        }
    }
    if (!failed) {
        if (d->failing)
            log_eventf("info", "log rows stored again");
        d->failing = 0;
        return;
    }
    /* Relink what is left, table by table, and keep it. */
    entry *left = NULL, **link = &left;
    size_t n = 0;
    for (int t = 0; t < LOG_NTABLES; t++)
        for (entry *e = by[t]; e; e = e->next, n++) {
            *link = e;
            link = &e->next;
        }
    *link = NULL;
    if (final) {
        for (entry *e = left; e; e = e->next)
            atomic_fetch_add(&d->dropped[e->table], 1);
        log_eventf("error", "%zu log row(s) lost at shutdown: %s", n, why);
        free_list(left);
        return;
    }
    atomic_fetch_add(&d->flush_failures, 1);
    if (!d->failing)
        log_eventf("warn", "log rows not stored, kept and retried: %s", why);
    d->failing = 1;
    put_back(d, left, n);
}

static void unlock_purge(log_db *d)
{
    if (d->conn) { /* a lost connection released the lock with it */
        PGresult *r = PQexec(d->conn, "select pg_advisory_unlock(" PURGE_LOCK_KEY ")");
        PQclear(r);
    }
}

/* Claims this period's purge for this instance (strata_jobs.claim,
 * sql/157_jobs.sql, as the scheduler's jobs): instances whose timers are
 * not in step would otherwise each purge once per period.  0 when another
 * instance ran it this period (counted as "skipped") or the claim failed
 * (counted as "error"). */
static int claim_period(log_db *d)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%d", d->purge_interval_ms);
    const char *params[1] = {ms};
    PGresult *r = PQexecParams(d->conn, "select strata_jobs.claim('" PURGE_JOB "', $1::int)", 1, NULL, params, NULL,
                               NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    int claimed = ok && PQgetvalue(r, 0, 0)[0] == 't';
    if (!ok) {
        char why[512];
        snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
        one_line(why);
        log_eventf("warn", "log purge: could not claim the period (retried next period): %s", why);
    }
    PQclear(r);
    if (!claimed)
        atomic_fetch_add(ok ? &d->purges_skipped : &d->purges_failed, 1);
    return claimed;
}

/* Records the claimed run's outcome with the scheduler's jobs (GET
 * /_strata/jobs lists it); a failure to record is only logged. */
static void finish_run(log_db *d, int failed, const char *why)
{
    if (!d->conn || PQstatus(d->conn) != CONNECTION_OK)
        return;
    const char *params[2] = {failed ? "false" : "true", failed ? why : NULL};
    PGresult *r = PQexecParams(d->conn, "select strata_jobs.finish('" PURGE_JOB "', $1::boolean, $2)", 2, NULL, params,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        log_eventf("warn", "log purge: could not record the run: %s", PQresultErrorMessage(r));
    PQclear(r);
}

/* Deletes rows past retention, purge_batch per statement per table, while
 * this instance holds the advisory lock and has claimed the period. */
static void purge(log_db *d)
{
    char why[512] = "";
    if (ensure_connected(d, why, sizeof why) < 0) {
        atomic_fetch_add(&d->purges_failed, 1);
        return;
    }
    PGresult *r = PQexec(d->conn, "select pg_try_advisory_lock(" PURGE_LOCK_KEY ")");
    int locked = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    int failed = PQresultStatus(r) != PGRES_TUPLES_OK;
    PQclear(r);
    if (!locked) {
        atomic_fetch_add(failed ? &d->purges_failed : &d->purges_locked, 1);
        return;
    }
    if (!claim_period(d)) {
        unlock_purge(d);
        return;
    }
    char batch[24];
    snprintf(batch, sizeof batch, "%d", d->purge_batch);
    const char *params[1] = {batch};
    for (int more = 1; more && !atomic_load(&d->stopping);) {
        r = PQexecParams(d->conn,
                         "select user_logs_deleted, agent_logs_deleted, error_logs_deleted "
                         "from public.strata_purge_logs_batch($1::int)",
                         1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
            one_line(why);
            log_eventf("warn", "log purge failed (retried next period): %s", why);
            PQclear(r);
            failed = 1;
            break;
        }
        static const int cols[3] = {LOG_USER, LOG_AGENT, LOG_ERROR};
        more = 0;
        for (int i = 0; i < 3; i++) {
            long long k = strtoll(PQgetvalue(r, 0, i), NULL, 10);
            atomic_fetch_add(&d->purged[cols[i]], (uint64_t)k);
            more |= k >= d->purge_batch;
        }
        PQclear(r);
        flush(d, 0); /* a long purge must not hold the rows back */
        if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
            failed = 1;
            break;
        }
    }
    finish_run(d, failed, why);
    unlock_purge(d);
    atomic_fetch_add(failed ? &d->purges_failed : &d->purges_ok, 1);
}

/* Reads what the socket has (readable), then the notifications libpq
 * holds: also those a statement's answer brought along, which leave the
 * socket quiet. */
static void take_notifications(log_db *d, int readable)
{
    if (!d->conn)
        return;
    if (readable && PQconsumeInput(d->conn) == 0) {
        PQfinish(d->conn);
        d->conn = NULL;
        return;
    }
    int changed = 0;
    PGnotify *n;
    while ((n = PQnotifies(d->conn))) {
        changed = 1;
        PQfreemem(n);
    }
    if (changed)
        load_settings(d);
}

static void *run(void *arg)
{
    log_db *d = arg;
    char why[512];
    uint64_t next_flush = mono_ms() + (uint64_t)atomic_load(&d->batch_interval_ms);
    uint64_t next_purge = mono_ms() + (uint64_t)d->purge_interval_ms;
    uint64_t next_connect = 0;
    while (!atomic_load(&d->stopping)) {
        uint64_t now = mono_ms();
        if (!d->conn && now >= next_connect && ensure_connected(d, why, sizeof why) < 0)
            next_connect = now + RECONNECT_MS;
        take_notifications(d, 0); /* those the last statements brought */
        uint64_t until = next_flush < next_purge ? next_flush : next_purge;
        if (!d->conn && next_connect < until)
            until = next_connect;
        struct pollfd p[2] = {{.fd = d->wake[0], .events = POLLIN}, {.fd = d->conn ? PQsocket(d->conn) : -1,
                                                                      .events = POLLIN}};
        int timeout = until > now ? (int)(until - now) : 0;
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            log_eventf("warn", "log writer: poll: %s", strerror(errno));
        if (p[0].revents & POLLIN) {
            char drain[64];
            while (read(d->wake[0], drain, sizeof drain) > 0)
                ;
            atomic_store(&d->wake_pending, 0);
        }
        take_notifications(d, p[1].revents != 0);
        if (atomic_load(&d->stopping))
            break;
        now = mono_ms();
        pthread_mutex_lock(&d->lock);
        size_t count = d->count;
        pthread_mutex_unlock(&d->lock);
        int full = !atomic_load(&d->batch_writes) ? count > 0 : count >= (size_t)atomic_load(&d->batch_size);
        if (now >= next_flush || (full && !d->failing)) {
            flush(d, 0);
            next_flush = mono_ms() + (uint64_t)(d->failing ? RECONNECT_MS : atomic_load(&d->batch_interval_ms));
        }
        if (now >= next_purge) {
            purge(d);
            next_purge = mono_ms() + (uint64_t)d->purge_interval_ms;
        }
    }
    flush(d, 1);
    PQfinish(d->conn);
    d->conn = NULL;
    return NULL;
}

log_db *log_db_start(const char *database_url, size_t queue_max, int purge_interval_ms, int purge_batch, char *err,
                     size_t errlen)
{
    log_db *d = calloc(1, sizeof *d);
    if (!d || !(d->database_url = strdup(database_url))) {
        snprintf(err, errlen, "log writer: out of memory");
        free(d);
        return NULL;
    }
    d->queue_max = queue_max ? queue_max : 1;
    d->purge_interval_ms = purge_interval_ms > 0 ? purge_interval_ms : 3600000;
    d->purge_batch = purge_batch > 0 ? purge_batch : 1000;
    /* The seed's defaults until the first read. */
    atomic_store(&d->error_enabled, 1);
    atomic_store(&d->log_user_agent, 1);
    atomic_store(&d->batch_writes, 1);
    atomic_store(&d->batch_size, 100);
    atomic_store(&d->batch_interval_ms, 5000);
    if (pipe2(d->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "log writer: pipe: %s", strerror(errno));
        free(d->database_url);
        free(d);
        return NULL;
    }
    int rc = pthread_mutex_init(&d->lock, NULL);
    if (rc == 0 && (rc = pthread_create(&d->thread, NULL, run, d)) != 0)
        pthread_mutex_destroy(&d->lock);
    if (rc == 0) /* for a profile or bench (scripts/bench/logs.sh): the writer's own CPU time */
        (void)pthread_setname_np(d->thread, "strata-logs"); /* a name only: no harm without it */
    if (rc) {
        snprintf(err, errlen, "log writer: cannot start: %s", strerror(rc));
        close(d->wake[0]);
        close(d->wake[1]);
        free(d->database_url);
        free(d);
        return NULL;
    }
    return d;
}

void log_db_lose_answers(log_db *d, int n)
{
    atomic_store(&d->lose_answers, n > 0 ? n : 0);
}

void log_db_stop(log_db *d)
{
    if (!d)
        return;
    atomic_store(&d->stopping, 1);
    char one = 1;
    if (write(d->wake[1], &one, 1) < 0 && errno != EAGAIN)
        log_eventf("warn", "log writer: cannot wake it: %s", strerror(errno));
    pthread_join(d->thread, NULL);
    free_list(d->head);
    free_list(d->spare);
    for (int i = 0; i < d->nexcluded; i++)
        free(d->excluded[i]);
    buf_free(&d->settings_json);
    buf_free(&d->batch);
    pthread_mutex_destroy(&d->lock);
    close(d->wake[0]);
    close(d->wake[1]);
    free(d->database_url);
    free(d);
}

static int per_table(buf *out, const char *name, const char *help, const char *type, _Atomic uint64_t *v)
{
    char line[256];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    int rc = buf_add_str(out, line);
    for (int t = 0; t < LOG_NTABLES; t++) {
        snprintf(line, sizeof line, "%s{table=\"%s\"} %llu\n", name, TABLES[t],
                 (unsigned long long)atomic_load(&v[t]));
        rc |= buf_add_str(out, line);
    }
    return rc;
}

int log_db_metrics(log_db *d, buf *out)
{
    pthread_mutex_lock(&d->lock);
    size_t pending = d->count;
    pthread_mutex_unlock(&d->lock);
    int rc = per_table(out, "strata_log_rows_queued_total", "Log rows accepted into the queue.", "counter", d->queued);
    rc |= per_table(out, "strata_log_rows_written_total", "Log rows inserted.", "counter", d->written);
    rc |= per_table(out, "strata_log_rows_dropped_total", "Log rows lost: queue full or shutdown write failed.",
                    "counter", d->dropped);
    rc |= per_table(out, "strata_log_rows_rejected_total", "Log rows the database refused as data.", "counter",
                    d->rejected);
    rc |= per_table(out, "strata_log_rows_purged_total", "Log rows deleted past their retention.", "counter",
                    d->purged);
    char text[2048];
    snprintf(text, sizeof text,
             "# HELP strata_log_queue_rows Log rows waiting to be written.\n"
             "# TYPE strata_log_queue_rows gauge\nstrata_log_queue_rows %zu\n"
             "# HELP strata_log_inserts_total INSERT statements sent for log rows.\n"
             "# TYPE strata_log_inserts_total counter\nstrata_log_inserts_total %llu\n"
             "# HELP strata_log_insert_failures_total INSERT statements refused (rows kept or dropped).\n"
             "# TYPE strata_log_insert_failures_total counter\nstrata_log_insert_failures_total %llu\n"
             "# HELP strata_log_flush_failures_total Writes of the queue that failed (rows kept, retried).\n"
             "# TYPE strata_log_flush_failures_total counter\nstrata_log_flush_failures_total %llu\n"
             "# HELP strata_log_purges_total Runs of the retention purge, by result.\n"
             "# TYPE strata_log_purges_total counter\n"
             "strata_log_purges_total{result=\"ok\"} %llu\n"
             "strata_log_purges_total{result=\"locked\"} %llu\n"
             "strata_log_purges_total{result=\"skipped\"} %llu\n"
             "strata_log_purges_total{result=\"error\"} %llu\n"
             "# HELP strata_log_settings_loads_total Reads of logging_settings.\n"
             "# TYPE strata_log_settings_loads_total counter\nstrata_log_settings_loads_total %llu\n",
             pending, (unsigned long long)atomic_load(&d->inserts),
             (unsigned long long)atomic_load(&d->insert_failures), (unsigned long long)atomic_load(&d->flush_failures),
             (unsigned long long)atomic_load(&d->purges_ok),
             (unsigned long long)atomic_load(&d->purges_locked), (unsigned long long)atomic_load(&d->purges_skipped),
             (unsigned long long)atomic_load(&d->purges_failed),
             (unsigned long long)atomic_load(&d->settings_loads));
    return rc | buf_add_str(out, text);
}
