/* reload.c: the reload coordinator (see reload.h).  Uses scripts to read
 * the Lua directory, lua_host to validate a snapshot by building a whole
 * generation from it, and metrics for the reload counters. */
#include "reload.h"

#include "lua_host.h"

#include "base/clock.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY 64

struct reloader {
    pthread_mutex_t lock;      /* serialises attempts and guards all below */
    const strata_conf *conf;   /* lua_dir and the limits */
    long next_generation;
    scripts *current;          /* serving; reference owned; NULL before the first success */
    scripts *previous;         /* the good one before it, for rollback; reference owned */
    char last_error[1024];     /* "" when the last attempt succeeded */
    char *history[HISTORY];    /* owned JSON records, a ring */
    int nhistory, head;
    reload_publish_fn publish;
    void *publish_arg;
    reload_record_fn record;
    void *record_arg;
    uint64_t began_us;         /* when the attempt under way began, for its log line */

    pthread_mutex_t async_lock; /* guards async_running */
    pthread_cond_t async_idle;  /* signalled when async_running drops to 0 */
    int async_running;          /* reloader_run_async threads not yet done */
};

reloader *reloader_new(const strata_conf *conf)
{
    reloader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->async_lock, NULL);
    pthread_cond_init(&r->async_idle, NULL);
    r->conf = conf;
    r->next_generation = 1;
    return r;
}

void reloader_free(reloader *r)
{
    if (!r)
        return;
    reloader_wait_async(r);
    pthread_cond_destroy(&r->async_idle);
    pthread_mutex_destroy(&r->async_lock);
    scripts_unref(r->current);
    scripts_unref(r->previous);
    for (int i = 0; i < HISTORY; i++)
        free(r->history[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void reloader_on_publish(reloader *r, reload_publish_fn fn, void *arg)
{
    r->publish = fn;
    r->publish_arg = arg;
}

void reloader_on_record(reloader *r, reload_record_fn fn, void *arg)
{
    r->record = fn;
    r->record_arg = arg;
}

static int add_file_change(buf *b, int *first, const script_file *f, const char *change)
{
    int rc = buf_add_str(b, *first ? "{\"path\":\"" : ",{\"path\":\"");
    *first = 0;
    rc |= buf_add_json_escaped(b, f->path, strlen(f->path));
    rc |= buf_add_str(b, "\",\"hash\":\"");
    rc |= buf_add_str(b, f->hash);
    rc |= buf_add_str(b, "\",\"change\":\"");
    rc |= buf_add_str(b, change);
    return rc | buf_add_str(b, "\"}");
}

/* The files that differ between old and new (both sorted by path). */
static int add_changes(buf *b, const scripts *old, const scripts *s)
{
    int rc = buf_add_str(b, "[");
    int first = 1;
    size_t i = 0, j = 0, no = old ? old->count : 0, ns = s ? s->count : 0;
    while (i < no || j < ns) {
        int cmp = i == no ? 1 : j == ns ? -1 : strcmp(old->files[i].path, s->files[j].path);
        if (cmp < 0) {
            rc |= add_file_change(b, &first, &old->files[i++], "removed");
        } else if (cmp > 0) {
            rc |= add_file_change(b, &first, &s->files[j++], "added");
        } else {
            if (strcmp(old->files[i].hash, s->files[j].hash) != 0)
                rc |= add_file_change(b, &first, &s->files[j], "modified");
            i++;
            j++;
        }
    }
    return rc | buf_add_str(b, "]");
}

/* The attempt's log line.  The first load lists no files (its record has
 * them all, as "added"): a summary says how many; later ones carry their
 * record, whose files are the changes. */
static void log_attempt(reloader *r, const char *trigger, long generation, const scripts *old,
                        const scripts *s, const char *error, const char *json)
{
    double ms = (double)(mono_us() - r->began_us) / 1e3;
    char head[160];
    int first = !old && s && !error;
    if (first)
        snprintf(head, sizeof head, "\"trigger\":\"%s\",\"generation\":%ld,\"files\":%zu,\"ms\":%.1f",
                 trigger, generation, s->count, ms);
    else
        snprintf(head, sizeof head, "\"ms\":%.1f,\"reload\":", ms);
    buf f = {0};
    if (buf_add_str(&f, head) == 0 && (first || buf_add_str(&f, json) == 0) && buf_add(&f, "", 1) == 0)
        log_event(error ? "error" : "info", error ? "Lua reload failed" : first ? "Lua loaded" : "Lua reloaded", f.p);
    buf_free(&f);
}

/* Builds an attempt's record, keeps it in the history and hands it on. */
static void record(reloader *r, const char *trigger, const char *result, long generation,
                   const scripts *old, const scripts *s, const char *error, buf *out)
{
    char ts[32];
    log_timestamp(ts);
    buf b = {0};
    int rc = buf_add_str(&b, "{\"time\":\"");
    rc |= buf_add_str(&b, ts);
    rc |= buf_add_str(&b, "\",\"trigger\":\"");
    rc |= buf_add_str(&b, trigger);
    rc |= buf_add_str(&b, "\",\"result\":\"");
    rc |= buf_add_str(&b, result);
    rc |= buf_add_str(&b, "\",\"generation\":");
    rc |= buf_add_u64(&b, (uint64_t)generation);
    rc |= buf_add_str(&b, ",\"files\":");
    rc |= add_changes(&b, old, s);
    rc |= buf_add_str(&b, ",\"error\":");
    if (error) {
        rc |= buf_add_str(&b, "\"");
        rc |= buf_add_json_escaped(&b, error, strlen(error));
        rc |= buf_add_str(&b, "\"}");
    } else {
        rc |= buf_add_str(&b, "null}");
    }
    rc |= buf_add(&b, "", 1);
    if (rc) {
        buf_free(&b);
        return;
    }
    if (out && buf_add(out, b.p, b.len - 1) < 0)
        out->len = 0;
    log_attempt(r, trigger, generation, old, s, error, b.p);
    if (r->record)
        r->record(r->record_arg, b.p);
    free(r->history[r->head]);
    r->history[r->head] = b.p; /* ownership moves to the ring */
    r->head = (r->head + 1) % HISTORY;
    if (r->nhistory < HISTORY)
        r->nhistory++;
}

/* Tells every worker to serve r->current. */
static void publish_current(reloader *r)
{
    atomic_store(&metrics_lua_generation, r->current->generation);
    if (r->publish)
        r->publish(r->publish_arg, r->current);
}

int reloader_run(reloader *r, const char *trigger, buf *result)
{
    char err[1024] = "";
    pthread_mutex_lock(&r->lock);
    r->began_us = mono_us();
    scripts *s = scripts_read(r->conf->lua_dir, err, sizeof err);
    if (s) {
        lua_gen *g = lua_gen_new(s, r->conf, err, sizeof err);
        if (g) {
            lua_gen_retire(g); /* it only had to build: validation passed */
        } else {
            scripts_unref(s);
            s = NULL;
        }
    }
    int rc;
    if (s) {
        s->generation = r->next_generation++;
        scripts_unref(r->previous);
        r->previous = r->current;
        r->current = s; /* our reference moves here */
        publish_current(r);
        r->last_error[0] = '\0';
        atomic_fetch_add(&metrics_reloads_ok, 1);
        record(r, trigger, "ok", s->generation, r->previous, s, NULL, result);
        rc = 0;
    } else {
        snprintf(r->last_error, sizeof r->last_error, "%s", err);
        atomic_fetch_add(&metrics_reloads_error, 1);
        record(r, trigger, "error", r->current ? r->current->generation : 0, NULL, NULL, err, result);
        rc = -1;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int reloader_rollback(reloader *r, buf *result)
{
    pthread_mutex_lock(&r->lock);
    r->began_us = mono_us();
    int rc = -1;
    if (r->previous) {
        /* The two swap places: rolling back twice returns to where we were. */
        scripts *back = r->previous;
        r->previous = r->current;
        r->current = back;
        publish_current(r);
        r->last_error[0] = '\0';
        record(r, "rollback", "ok", back->generation, r->previous, back, NULL, result);
        rc = 0;
    } else {
        record(r, "rollback", "error", r->current ? r->current->generation : 0, NULL, NULL,
               "no previous generation to return to", result);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int reloader_history(reloader *r, buf *out)
{
    pthread_mutex_lock(&r->lock);
    int rc = buf_add_str(out, "[");
    for (int i = 0; i < r->nhistory; i++) {
        int at = (r->head - 1 - i + HISTORY) % HISTORY;
        if (i)
            rc |= buf_add_str(out, ",");
        rc |= buf_add_str(out, r->history[at]);
    }
    rc |= buf_add_str(out, "]");
    pthread_mutex_unlock(&r->lock);
    return rc ? -1 : 0;
}

long reloader_status(reloader *r, char *error, size_t len)
{
    pthread_mutex_lock(&r->lock);
    long gen = r->current ? r->current->generation : 0;
    snprintf(error, len, "%s", r->last_error);
    pthread_mutex_unlock(&r->lock);
    return gen;
}

scripts *reloader_current(reloader *r)
{
    pthread_mutex_lock(&r->lock);
    scripts *s = r->current ? scripts_ref(r->current) : NULL;
    pthread_mutex_unlock(&r->lock);
    return s;
}

typedef struct async_job {
    reloader *r;
    const char *trigger;
    reload_done_fn done;
    void *arg;
} async_job;

static void *run_async(void *arg)
{
    async_job *job = arg;
    reloader *r = job->r;
    buf record = {0};
    int rc = reloader_run(r, job->trigger, &record);
    if (buf_add(&record, "", 1) < 0)
        record.len = 0;
    job->done(job->arg, rc, record.len ? record.p : NULL);
    buf_free(&record);
    free(job);
    pthread_mutex_lock(&r->async_lock);
    if (--r->async_running == 0)
        pthread_cond_broadcast(&r->async_idle);
    pthread_mutex_unlock(&r->async_lock);
    return NULL;
}

int reloader_run_async(reloader *r, const char *trigger, reload_done_fn done, void *arg)
{
    async_job *job = malloc(sizeof *job);
    if (!job)
        return -1;
    *job = (async_job){r, trigger, done, arg};
    pthread_mutex_lock(&r->async_lock);
    r->async_running++;
    pthread_mutex_unlock(&r->async_lock);
    pthread_t t;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, run_async, job);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        log_eventf("error", "cannot start a reload thread: %s", strerror(rc));
        pthread_mutex_lock(&r->async_lock);
        r->async_running--;
        pthread_mutex_unlock(&r->async_lock);
        free(job);
        return -1;
    }
    return 0;
}

void reloader_wait_async(reloader *r)
{
    pthread_mutex_lock(&r->async_lock);
    while (r->async_running > 0)
        pthread_cond_wait(&r->async_idle, &r->async_lock);
    pthread_mutex_unlock(&r->async_lock);
}
