/* usage.c: see usage.h.  An array of rows plus an open-addressing index of
 * row numbers, both grown by doubling up to max_rows; usage_take hands the
 * array over whole, so the writer never holds the lock while it talks to
 * the database. */
#include "usage.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_S 3600
#define DAY_S 86400

struct usage {
    pthread_mutex_t lock;      /* guards rows, n, cap, index, index_cap */
    usage_row *rows;           /* owned; n used of cap */
    size_t n, cap;
    uint32_t *index;           /* owned; row number + 1 per slot, 0 = empty */
    size_t index_cap;          /* a power of two >= 2 * cap, or 0 */
    size_t max_rows;
    _Atomic uint64_t recorded, dropped;
};

usage *usage_new(size_t max_rows)
{
    if (max_rows < 1 || max_rows > UINT32_MAX / 4) {
        errno = EINVAL;
        return NULL;
    }
    usage *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    if (pthread_mutex_init(&u->lock, NULL) != 0) {
        free(u);
        return NULL;
    }
    u->max_rows = max_rows;
    return u;
}

void usage_free(usage *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u->rows);
    free(u->index);
    free(u);
}

static uint64_t hash_row(const usage_row *r)
{
    /* FNV-1a over the key fields: users are server-verified JWT subjects
     * and the table is small and short-lived, so no keyed hash is needed. */
    uint64_t h = 1469598103934665603u;
    const unsigned char *p = r->user;
    for (size_t i = 0; i < sizeof r->user; i++)
        h = (h ^ p[i]) * 1099511628211u;
    for (const char *s = r->agent; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    h = (h ^ r->kind) * 1099511628211u;
    return (h ^ (uint64_t)r->period_start) * 1099511628211u;
}

static int same_key(const usage_row *a, const usage_row *b)
{
    return a->kind == b->kind && a->period_start == b->period_start &&
           memcmp(a->user, b->user, sizeof a->user) == 0 && strcmp(a->agent, b->agent) == 0;
}

/* The index slot of key's row, or of the empty slot where it would go. */
static size_t slot_of(const usage *u, const usage_row *key)
{
    size_t mask = u->index_cap - 1, i = (size_t)hash_row(key) & mask;
    while (u->index[i] && !same_key(&u->rows[u->index[i] - 1], key))
        i = (i + 1) & mask;
    return i;
}

/* Doubles the row array and rebuilds the index.  0, or -1 when at
 * max_rows or out of memory (nothing changed then). */
static int grow(usage *u)
{
    if (u->cap >= u->max_rows)
        return -1;
    size_t cap = u->cap ? u->cap * 2 : 64;
    if (cap > u->max_rows)
        cap = u->max_rows;
    size_t icap = 2;
    while (icap < 2 * cap)
        icap *= 2;
    usage_row *rows = realloc(u->rows, cap * sizeof *rows);
    if (!rows)
        return -1;
    u->rows = rows;
    uint32_t *index = calloc(icap, sizeof *index);
    if (!index)
        return -1;
    free(u->index);
    u->index = index;
    u->index_cap = icap;
    u->cap = cap;
    for (size_t r = 0; r < u->n; r++)
        u->index[slot_of(u, &u->rows[r])] = (uint32_t)(r + 1);
    return 0;
}

/* Adds key's count to its row, creating it; the limit is key's unless
 * keep_limit and the row exists (a put-back is older than what was
 * recorded since).  Lock held.  0 or -1 when the row could not be created
 * (its count is then dropped). */
static int add_locked(usage *u, const usage_row *key, int keep_limit)
{
    if (u->index_cap == 0 && grow(u) < 0)
        goto dropped;
    size_t s = slot_of(u, key);
    if (u->index[s]) {
        usage_row *r = &u->rows[u->index[s] - 1];
        uint64_t sum = (uint64_t)r->count + key->count;
        r->count = sum > INT32_MAX ? INT32_MAX : (uint32_t)sum; /* request_count is an integer */
        if (!keep_limit)
            r->limit = key->limit;
        return 0;
    }
    if (u->n == u->cap) {
        if (grow(u) < 0)
            goto dropped;
        s = slot_of(u, key);
    }
    u->rows[u->n] = *key;
    u->index[s] = (uint32_t)(++u->n);
    return 0;
dropped:
    atomic_fetch_add(&u->dropped, key->count);
    return -1;
}

int usage_record(usage *u, const unsigned char user[16], const char *agent, size_t agent_len,
                 int32_t per_hour, int32_t per_day, int64_t now_s)
{
    if (agent_len == 0 || agent_len > USAGE_AGENT_MAX || memchr(agent, '\0', agent_len)) {
        errno = EINVAL;
        return -1;
    }
    usage_row key = {.count = 1};
    memcpy(key.user, user, sizeof key.user);
    memcpy(key.agent, agent, agent_len);
    int rc = 0;
    atomic_fetch_add(&u->recorded, 1);
    pthread_mutex_lock(&u->lock);
    if (per_hour > 0) {
        key.kind = USAGE_HOURLY;
        key.period_start = now_s - now_s % HOUR_S;
        key.limit = per_hour;
        rc |= add_locked(u, &key, 0);
    }
    if (per_day > 0) {
        key.kind = USAGE_DAILY;
        key.period_start = now_s - now_s % DAY_S;
        key.limit = per_day;
        rc |= add_locked(u, &key, 0);
    }
    pthread_mutex_unlock(&u->lock);
    if (rc < 0)
        errno = ENOSPC;
    return rc;
}

size_t usage_take(usage *u, usage_row **rows)
{
    pthread_mutex_lock(&u->lock);
    size_t n = u->n;
    *rows = n ? u->rows : NULL; /* ownership moves to the caller */
    if (n) {
        free(u->index);
        u->rows = NULL;
        u->index = NULL;
        u->n = u->cap = u->index_cap = 0;
    }
    pthread_mutex_unlock(&u->lock);
    return n;
}

void usage_put_back(usage *u, const usage_row *rows, size_t n)
{
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < n; i++)
        add_locked(u, &rows[i], 1);
    pthread_mutex_unlock(&u->lock);
}

void usage_note_dropped(usage *u, uint64_t n)
{
    atomic_fetch_add(&u->dropped, n);
}

void usage_stats_get(usage *u, usage_stats *out)
{
    pthread_mutex_lock(&u->lock);
    out->pending = u->n;
    pthread_mutex_unlock(&u->lock);
    out->recorded = atomic_load(&u->recorded);
    out->dropped = atomic_load(&u->dropped);
}
