/* limiter.c: GCRA rate-limit counters in a striped hash table (see
 * limiter.h for the algorithm and the contract).  Uses no other unit.
 *
 * Concurrency.  The table is cut into stripes; a key's hash picks its
 * stripe, and each stripe has its own mutex and its own open-addressing
 * table, so threads on different keys rarely meet and a take holds one
 * lock for a few dozen nanoseconds.  Stripes are aligned to cache lines so
 * that two locks never share one.  A lock-free design (CAS on a per-key
 * TAT) would still need locks to insert and evict keys; with critical
 * sections this short, striping is as fast and much simpler.  Counters are
 * written under the stripe lock and read by limiter_stats_get without it,
 * hence relaxed atomics.
 *
 * Table.  Linear probing at load <= 3/4 with 64-byte slots: TAT, 32 bits
 * of the hash, length, and the key bytes inline (or a pointer to a heap
 * copy past LIMITER_INLINE_KEY).  Full keys are compared, never only
 * hashes: two users can never share a counter.  Deletion shifts the
 * following entries back (no tombstones), so probe chains stay short
 * however many keys come and go.
 *
 * Expiry and eviction.  An entry with TAT <= now is the same as an absent
 * key, so a new key takes the slot of an idle entry met on its probe path.
 * When the stripe is full, the new key evicts the entry with the smallest
 * TAT among the LIMITER_WINDOW slots from its home slot: the idle-soonest
 * entry, whose loss gives away the least (a sampled approximation of the
 * best choice, as Redis samples keys for LRU). */
#include "limiter.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LIMITER_WINDOW 16          /* slots examined for an eviction victim */
#define LIMITER_DEFAULT_STRIPES 64 /* at most; fewer for small tables */
#define LIMITER_STRIPE_KEYS 1024   /* fewest keys per default stripe */
#define LIMITER_MAX_STRIPES 4096
#define NONE UINT32_MAX            /* "no slot" */

typedef struct lslot {
    uint64_t tat;   /* theoretical arrival time, ns; meaningful when len > 0 */
    uint32_t hash;  /* low 32 bits of the key's hash: home slot, quick compare */
    uint16_t len;   /* key length; 0 marks a free slot */
    uint16_t spare;
    union {
        char in[LIMITER_INLINE_KEY]; /* len <= LIMITER_INLINE_KEY */
        char *out;                   /* owned heap copy otherwise */
    } key;
} lslot;

_Static_assert(sizeof(lslot) == 64, "a slot is one cache line");
_Static_assert(LIMITER_MAX_KEY <= UINT16_MAX, "key length fits lslot.len");

typedef struct stripe {
    alignas(64) pthread_mutex_t lock; /* guards everything below */
    lslot *slots;                     /* owned, nslots entries */
    uint32_t nslots;                  /* > cap, so a probe always ends */
    uint32_t cap;                     /* most keys held; >= 1 */
    _Atomic uint32_t count;           /* keys held */
    _Atomic uint64_t evictions;       /* see limiter_stats */
    _Atomic uint64_t evictions_active;
    _Atomic uint64_t expired;
    _Atomic uint64_t heap_bytes; /* bytes of heap key copies */
} stripe;

struct limiter {
    uint64_t k0, k1;       /* SipHash key, random per limiter */
    size_t nstripes;
    size_t max_keys;
    uint64_t table_bytes;  /* the limiter, stripes and slot arrays */
    stripe *stripes;       /* owned, aligned, nstripes entries */
    int nlocks;            /* mutexes initialised, for cleanup */
};

/* ---- hashing: SipHash-1-3 (keyed, so clients cannot aim collisions) ---- */

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                          \
    do {                                                                   \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);         \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                            \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                            \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);         \
    } while (0)

/* Words are read in host order: the hash only has to agree with itself. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const char *p, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&m, p + i, 8);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    m = (uint64_t)n << 56;
    for (size_t k = 0; i + k < n; k++)
        m |= (uint64_t)(unsigned char)p[i + k] << (8 * k);
    v3 ^= m;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* x * n / 2^32: maps 32 uniform bits onto 0..n-1 without a division. */
static inline uint32_t reduce(uint32_t x, uint32_t n)
{
    return (uint32_t)(((uint64_t)x * n) >> 32);
}

/* ---- GCRA ---- */

/* Checks the rule and derives T (*t) and W (*w) from it: 0, or -1 with
 * errno EINVAL. */
static int rule_params(const limit_rule *r, uint64_t *t, uint64_t *w)
{
    if (!r || r->rate == 0 || r->burst == 0 || r->period_ns < r->rate)
        goto err;
    *t = r->period_ns / r->rate;
    if (r->burst > LIMITER_MAX_NS / *t)
        goto err;
    *w = r->burst * *t;
    return 0;
err:
    errno = EINVAL;
    return -1;
}

int limiter_rule_check(const limit_rule *r)
{
    uint64_t t, w;
    return rule_params(r, &t, &w);
}

/* Fills *out for a key whose stored TAT is tat (0 when absent) and answers
 * the TAT to store when a take is allowed (else tat itself).  t is T, w is W (limiter.h);
 * every sum stays under 2^63 because now, tat - now and w are <= 2^62. */
static uint64_t gcra(uint64_t tat, uint64_t now, uint64_t t, uint64_t w, int consume,
                     limit_result *out)
{
    uint64_t debt = tat > now ? tat - now : 0;
    out->allowed = debt + t <= w;
    out->reset_ns = debt;
    out->retry_after_ns = out->allowed ? 0 : debt + t - w;
    out->remaining = debt <= w ? (w - debt) / t : 0;
    if (!consume || !out->allowed)
        return tat;
    out->remaining--;
    out->reset_ns = debt + t;
    return now + debt + t;
}

/* ---- slots ---- */

static inline const char *slot_key(const lslot *s)
{
    return s->len <= LIMITER_INLINE_KEY ? s->key.in : s->key.out;
}

static inline uint32_t next_slot(const stripe *s, uint32_t i)
{
    return i + 1 == s->nslots ? 0 : i + 1;
}

static inline void counter_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void count_add(stripe *s, int v)
{
    uint32_t n = atomic_load_explicit(&s->count, memory_order_relaxed);
    atomic_store_explicit(&s->count, n + (uint32_t)v, memory_order_relaxed);
}

/* Walks the key's probe path from its home slot.  Answers the slot holding
 * the key, or NONE; then *empty is the free slot ending the path and
 * *idle the first slot on the path whose entry is idle at now (or NONE). */
static uint32_t probe(const stripe *s, uint32_t h, const char *key, size_t len, uint64_t now,
                      uint32_t *empty, uint32_t *idle)
{
    *idle = NONE;
    for (uint32_t i = reduce(h, s->nslots);; i = next_slot(s, i)) {
        const lslot *e = &s->slots[i];
        if (e->len == 0) {
            *empty = i;
            return NONE;
        }
        if (e->hash == h && e->len == len && memcmp(slot_key(e), key, len) == 0)
            return i;
        if (*idle == NONE && e->tat <= now)
            *idle = i;
    }
}

/* Frees e's heap copy, if any, and marks e free. */
static void slot_release(stripe *s, lslot *e)
{
    if (e->len > LIMITER_INLINE_KEY) {
        counter_add(&s->heap_bytes, -(uint64_t)e->len);
        free(e->key.out);
    }
    e->len = 0;
}

/* True when c lies in the cyclic range (a, b]. */
static inline int between(uint32_t a, uint32_t c, uint32_t b)
{
    return a <= b ? a < c && c <= b : a < c || c <= b;
}

/* Empties slot i and shifts back the entries after it that may move
 * closer to their home, so that no probe path crosses a hole. */
static void slot_remove(stripe *s, uint32_t i)
{
    slot_release(s, &s->slots[i]);
    for (uint32_t j = next_slot(s, i); s->slots[j].len != 0; j = next_slot(s, j)) {
        uint32_t home = reduce(s->slots[j].hash, s->nslots);
        if (between(i, home, j))
            continue; /* j's home lies past the hole: it must stay */
        s->slots[i] = s->slots[j];
        s->slots[j].len = 0;
        i = j;
    }
    count_add(s, -1);
}

/* The slot with the smallest TAT among LIMITER_WINDOW slots from home
 * (further if they are all free; the stripe is full, so one is found). */
static uint32_t victim(const stripe *s, uint32_t home)
{
    uint32_t best = NONE, i = home;
    for (uint32_t k = 0; k < s->nslots; k++, i = next_slot(s, i)) {
        if (s->slots[i].len != 0 && (best == NONE || s->slots[i].tat < s->slots[best].tat))
            best = i;
        if (best != NONE && k + 1 >= LIMITER_WINDOW)
            break;
    }
    return best;
}

/* Stores a new key whose probe found no match (empty and idle as probe()
 * answered them): in the idle slot, else in the empty one after evicting
 * when the stripe is full.  Answers 0, or -1 (ENOMEM) with the stripe unchanged. */
static int slot_insert(stripe *s, uint32_t h, const char *key, size_t len, uint64_t tat,
                       uint64_t now, uint32_t empty, uint32_t idle)
{
    char *copy = NULL;
    if (len > LIMITER_INLINE_KEY) {
        if (!(copy = malloc(len)))
            return -1; /* malloc set errno */
        memcpy(copy, key, len);
    }
    uint32_t at = idle;
    if (at != NONE) {
        counter_add(&s->expired, 1);
        slot_release(s, &s->slots[at]);
    } else {
        if (atomic_load_explicit(&s->count, memory_order_relaxed) >= s->cap) {
            uint32_t home = reduce(h, s->nslots), v = victim(s, home);
            counter_add(&s->evictions, 1);
            if (s->slots[v].tat > now)
                counter_add(&s->evictions_active, 1);
            slot_remove(s, v);
            /* The shift may have moved the path's end: find it again. */
            for (empty = home; s->slots[empty].len != 0; empty = next_slot(s, empty))
                ;
        }
        at = empty;
        count_add(s, 1);
    }
    lslot *e = &s->slots[at];
    e->tat = tat;
    e->hash = h;
    e->len = (uint16_t)len;
    if (copy) {
        e->key.out = copy;
        counter_add(&s->heap_bytes, len);
    } else {
        memcpy(e->key.in, key, len);
    }
    return 0;
}

/* ---- API ---- */

int limiter_take(limiter *l, const char *key, size_t key_len, const limit_rule *rule,
                 uint64_t now_ns, int consume, limit_result *out)
{
    uint64_t t, w;
    if (rule_params(rule, &t, &w) != 0)
        return -1;
    if (key_len == 0 || key_len > LIMITER_MAX_KEY || now_ns > LIMITER_MAX_NS) {
        errno = EINVAL;
        return -1;
    }
    uint64_t h = siphash13(l->k0, l->k1, key, key_len);
    stripe *s = &l->stripes[reduce((uint32_t)(h >> 32), (uint32_t)l->nstripes)];
    uint32_t h32 = (uint32_t)h, empty = NONE, idle = NONE;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    uint32_t at = probe(s, h32, key, key_len, now_ns, &empty, &idle);
    uint64_t old = at == NONE ? 0 : s->slots[at].tat;
    uint64_t tat = gcra(old, now_ns, t, w, consume, out);
    if (consume && out->allowed) {
        if (at != NONE)
            s->slots[at].tat = tat;
        else
            rc = slot_insert(s, h32, key, key_len, tat, now_ns, empty, idle);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t limiter_sweep(limiter *l, uint64_t now_ns)
{
    size_t dropped = 0;
    for (size_t k = 0; k < l->nstripes; k++) {
        stripe *s = &l->stripes[k];
        pthread_mutex_lock(&s->lock);
        /* slot_remove refills slot i from later slots: look at it again. */
        for (uint32_t i = 0; i < s->nslots; i++)
            while (s->slots[i].len != 0 && s->slots[i].tat <= now_ns) {
                slot_remove(s, i);
                counter_add(&s->expired, 1);
                dropped++;
            }
        pthread_mutex_unlock(&s->lock);
    }
    return dropped;
}

void limiter_stats_get(limiter *l, limiter_stats *out)
{
    memset(out, 0, sizeof *out);
    out->max_keys = l->max_keys;
    out->bytes = l->table_bytes;
    for (size_t k = 0; k < l->nstripes; k++) {
        stripe *s = &l->stripes[k];
        out->keys += atomic_load_explicit(&s->count, memory_order_relaxed);
        out->evictions += atomic_load_explicit(&s->evictions, memory_order_relaxed);
        out->evictions_active += atomic_load_explicit(&s->evictions_active, memory_order_relaxed);
        out->expired += atomic_load_explicit(&s->expired, memory_order_relaxed);
        out->bytes += atomic_load_explicit(&s->heap_bytes, memory_order_relaxed);
    }
}

/* Stripe k's share of max_keys and its slot array (load <= 3/4). */
static int stripe_init(limiter *l, size_t k)
{
    stripe *s = &l->stripes[k];
    size_t cap = l->max_keys / l->nstripes + (k < l->max_keys % l->nstripes);
    size_t nslots = cap + cap / 3 + 1;
    if (!(s->slots = calloc(nslots, sizeof(lslot))))
        return -1;
    s->cap = (uint32_t)cap;
    s->nslots = (uint32_t)nslots;
    l->table_bytes += nslots * sizeof(lslot);
    int e = pthread_mutex_init(&s->lock, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    l->nlocks++;
    return 0;
}

limiter *limiter_new(size_t max_keys, size_t stripes)
{
    limiter *l = NULL;
    if (max_keys == 0 || max_keys > ((size_t)1 << 31)) {
        errno = EINVAL;
        goto err;
    }
    /* Stripes hold fixed shares, so the fullest one evicts first, near
     * max_keys * (1 - 2.5 / sqrt(share)): large shares waste less, and a
     * few stripes already make lock contention rare at request rates. */
    if (stripes == 0) {
        stripes = max_keys / LIMITER_STRIPE_KEYS;
        if (stripes > LIMITER_DEFAULT_STRIPES)
            stripes = LIMITER_DEFAULT_STRIPES;
    }
    if (stripes > LIMITER_MAX_STRIPES)
        stripes = LIMITER_MAX_STRIPES;
    if (stripes > max_keys)
        stripes = max_keys;
    if (stripes == 0)
        stripes = 1;
    if (!(l = calloc(1, sizeof *l)))
        goto err;
    l->max_keys = max_keys;
    l->nstripes = stripes;
    uint64_t seed[2];
    ssize_t got = getrandom(seed, sizeof seed, 0);
    if (got != (ssize_t)sizeof seed) {
        if (got >= 0)
            errno = EIO; /* a short read: not expected for 16 bytes */
        goto err;
    }
    l->k0 = seed[0];
    l->k1 = seed[1];
    if (!(l->stripes = aligned_alloc(alignof(stripe), stripes * sizeof(stripe))))
        goto err;
    memset(l->stripes, 0, stripes * sizeof(stripe));
    l->table_bytes = sizeof *l + stripes * sizeof(stripe);
    for (size_t k = 0; k < stripes; k++)
        if (stripe_init(l, k) != 0)
            goto err;
    return l;
err:
    if (l) {
        int saved = errno;
        limiter_free(l);
        errno = saved;
    }
    return NULL;
}

void limiter_free(limiter *l)
{
    if (!l)
        return;
    for (size_t k = 0; l->stripes && k < l->nstripes; k++) {
        stripe *s = &l->stripes[k];
        for (uint32_t i = 0; s->slots && i < s->nslots; i++)
            if (s->slots[i].len != 0)
                slot_release(s, &s->slots[i]);
        free(s->slots);
        if ((int)k < l->nlocks)
            pthread_mutex_destroy(&s->lock);
    }
    free(l->stripes);
    free(l);
}
