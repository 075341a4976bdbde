/* resolve.c: the resolution engine's versions, readers and writer batches.
 * The queries are in resolve_query.c; the tables and the small helpers
 * (uuids, level names) in resolve_index.c.  Uses resolve.h and
 * resolve_index.h; C11 atomics; no I/O.
 *
 * Why copy-on-write versions and not a seqlock or a lock:
 * - A seqlock makes readers retry whenever the writer is active, and a
 *   load of a million values keeps it active for a second: the workers
 *   would spin.  It also forbids what the RPC layer wants, returning
 *   pointers to values and formatting them after the lookup, because the
 *   writer may free them meanwhile.
 * - A read-write lock or a per-request atomic reference count makes every
 *   request of every worker write one shared cache line.
 * So the writer builds a new version beside the current one and publishes
 * it with one atomic store; a reader never waits and never retries.
 *
 * Versions share structure: every index is sharded (4096 scope shards), and
 * a batch copies only the shards and buckets it touches, each at most once
 * per batch, then changes its copies in place.  Publishing one changed
 * value copies the version header (35 KB of shard pointers), one shard and
 * one bucket, not the dataset; a million-value load costs one pass.
 *
 * Reclamation is epoch based, with one slot per reader thread (its own cache
 * line): entering a version stores a lower bound of its number in the
 * slot, leaving stores "idle".  What publish N replaced (the previous
 * header, the shards and buckets it copied, the values it removed) is only
 * reachable from versions older than N, so it is freed once every slot is
 * idle or at N or later; the writer checks after each publish and in
 * rs_reclaim.  Why a lower bound suffices: the reader loads `published`
 * (v) before `cur`, and the writer stores `cur` before `published`, so the
 * version it gets is at least v; and if the writer's scan missed the slot
 * store, the reader's later load of `cur` sees that publish already (all
 * four accesses are sequentially consistent), so it never holds what the
 * scan freed.  A reader that stays inside a version delays frees but never
 * blocks the writer. */
#include "resolve.h"
#include "resolve_index.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RS_IDLE UINT64_MAX /* a reader slot not inside any version */

/* The memory one publish replaced, waiting for readers of older versions. */
typedef struct rs_retired {
    struct rs_retired *next; /* the next newer one */
    uint64_t version;        /* the publish that replaced it */
    rs_garbage g;            /* owned */
} rs_retired;

struct rs_reader {
    alignas(64) _Atomic uint64_t ver; /* lower bound of the version read, or RS_IDLE */
    _Atomic int used;                 /* slot taken by a thread */
    rs_engine *e;                     /* the engine, set once at creation */
};

struct rs_engine {
    rs_reader readers[RS_MAX_READERS];
    alignas(64) _Atomic(rs_snap *) cur; /* the current version */
    _Atomic uint64_t published;         /* its number, stored after cur */
    /* The writer's own state, describing the open batch when there is one;
     * on its own cache lines, so writing it does not slow down readers. */
    alignas(64) rs_idx ids;        /* value id -> record */
    size_t live;                   /* bytes of the newest version's memory */
    size_t workspaces, brokers;    /* rows held */
    size_t scopes;                 /* buckets held */
    rs_retired *oldest, *newest;   /* retired memory, oldest first */
    size_t retired_bytes;          /* bytes in that list */
    int batch_open;
};

struct rs_batch {
    rs_engine *e;
    rs_snap *s;         /* the version being built; owned until publish */
    rs_garbage g;       /* what this batch replaced */
    rs_wctx w;          /* s->version, &g, &e->live */
    rs_retired *node;   /* allocated up front, so publish cannot fail */
};

/* ---- freeing whole structures ---- */

/* Frees a version's tables and records, or only its header when it shares
 * them with a newer version (shallow). */
static void snap_free_deep(rs_snap *s)
{
    for (size_t i = 0; i < 1u << RS_SCOPE_SHARD_BITS; i++) {
        rs_tab *shard = s->scopes[i];
        for (size_t j = 0; shard && j <= shard->mask; j++) {
            rs_tab *bucket = shard->slot[j].val;
            for (size_t k = 0; bucket && k <= bucket->mask; k++)
                free(bucket->slot[k].val);
            free(bucket);
        }
        free(shard);
    }
    rs_tab **maps[] = {s->workspaces, s->brokers};
    size_t sizes[] = {1u << RS_WS_SHARD_BITS, 1u << RS_BROKER_SHARD_BITS};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizes[m]; i++) {
            rs_tab *shard = maps[m][i];
            for (size_t j = 0; shard && j <= shard->mask; j++)
                free(shard->slot[j].val);
            free(shard);
        }
    }
    free(s);
}

/* ---- engine ---- */

rs_engine *rs_engine_new(void)
{
    size_t size = (sizeof(rs_engine) + 63) / 64 * 64;
    rs_engine *e = aligned_alloc(64, size);
    rs_snap *s = calloc(1, sizeof *s);
    if (!e || !s)
        goto err;
    memset(e, 0, size);
    for (size_t i = 0; i < RS_MAX_READERS; i++) {
        atomic_init(&e->readers[i].ver, RS_IDLE);
        atomic_init(&e->readers[i].used, 0);
        e->readers[i].e = e;
    }
    s->version = 1;
    s->stats.version = 1;
    s->stats.bytes = sizeof *s;
    e->live = sizeof *s;
    atomic_init(&e->cur, s);
    atomic_init(&e->published, 1);
    return e;
err:
    free(e);
    free(s);
    return NULL;
}

void rs_engine_free(rs_engine *e)
{
    if (!e)
        return;
    while (e->oldest) {
        rs_retired *r = e->oldest;
        e->oldest = r->next;
        rs_garbage_free(&r->g);
        free(r);
    }
    snap_free_deep(atomic_load(&e->cur));
    rs_idx_free(&e->ids);
    free(e);
}

void rs_reclaim(rs_engine *e)
{
    uint64_t min = RS_IDLE;
    for (size_t i = 0; i < RS_MAX_READERS; i++) {
        uint64_t v = atomic_load_explicit(&e->readers[i].ver, memory_order_seq_cst);
        if (v < min)
            min = v;
    }
    while (e->oldest && e->oldest->version <= min) {
        rs_retired *r = e->oldest;
        e->oldest = r->next;
        if (!e->oldest)
            e->newest = NULL;
        e->retired_bytes -= r->g.bytes;
        rs_garbage_free(&r->g);
        free(r);
    }
}

/* ---- readers ---- */

rs_reader *rs_reader_new(rs_engine *e)
{
    for (size_t i = 0; i < RS_MAX_READERS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&e->readers[i].used, &expected, 1))
            return &e->readers[i];
    }
    return NULL;
}

void rs_reader_free(rs_reader *r)
{
    if (r)
        atomic_store(&r->used, 0);
}

const rs_snap *rs_read_begin(rs_reader *r)
{
    rs_engine *e = r->e;
    uint64_t v = atomic_load_explicit(&e->published, memory_order_seq_cst);
    atomic_store_explicit(&r->ver, v, memory_order_seq_cst);
    return atomic_load_explicit(&e->cur, memory_order_seq_cst);
}

void rs_read_end(rs_reader *r)
{
    /* Release: the reads of the version happen before the writer's free. */
    atomic_store_explicit(&r->ver, RS_IDLE, memory_order_release);
}

void rs_snap_stats(const rs_snap *s, rs_stats *st)
{
    *st = s->stats;
}

/* ---- batches ---- */

rs_batch *rs_batch_begin(rs_engine *e)
{
    if (e->batch_open)
        return NULL;
    rs_snap *cur = atomic_load_explicit(&e->cur, memory_order_relaxed);
    rs_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->node = calloc(1, sizeof *b->node);
    b->s = malloc(sizeof *b->s);
    if (!b->node || !b->s || rs_garbage_reserve(&b->g, 16) != 0)
        goto err;
    memcpy(b->s, cur, sizeof *cur);
    b->s->version = cur->version + 1;
    b->e = e;
    b->w = (rs_wctx){b->s->version, &b->g, &e->live};
    e->live += sizeof *b->s;
    e->batch_open = 1;
    return b;
err:
    free(b->node);
    free(b->s);
    free(b->g.p);
    free(b);
    return NULL;
}

uint64_t rs_batch_publish(rs_batch *b)
{
    rs_engine *e = b->e;
    rs_snap *s = b->s, *old = atomic_load_explicit(&e->cur, memory_order_relaxed);
    rs_reclaim(e);
    e->live -= sizeof *old;
    rs_garbage_push(&b->g, old, sizeof *old); /* room reserved by begin */
    s->stats = (rs_stats){
        .version = s->version,
        .values = e->ids.count,
        .workspaces = e->workspaces,
        .brokers = e->brokers,
        .scopes = e->scopes,
        .bytes = e->live + rs_idx_bytes(&e->ids),
        .retired_bytes = e->retired_bytes,
    };
    rs_retired *node = b->node;
    node->version = s->version;
    node->g = b->g;
    if (e->newest)
        e->newest->next = node;
    else
        e->oldest = node;
    e->newest = node;
    e->retired_bytes += node->g.bytes;
    atomic_store_explicit(&e->cur, s, memory_order_seq_cst);
    atomic_store_explicit(&e->published, s->version, memory_order_seq_cst);
    e->batch_open = 0;
    free(b);
    rs_reclaim(e);
    return s->version;
}

/* Makes the bucket of (level, scope) owned by the batch with room for
 * `extra` more values, creating it when absent; *out is it.  0 or -1; uses
 * at most two garbage pushes. */
static int own_bucket(rs_batch *b, uint8_t level, const rs_uuid *scope, uint32_t extra,
                      rs_tab **out)
{
    uint64_t h = rs_hash(scope, level);
    rs_tab **shard = &b->s->scopes[rs_shard_of(h, RS_SCOPE_SHARD_BITS)];
    if (rs_tab_own(&b->w, shard, 1) != 0)
        return -1;
    rs_tab *bucket = rs_tab_get(*shard, scope, level, h);
    rs_tab *owned = bucket;
    if (rs_tab_own(&b->w, &owned, extra) != 0)
        return -1;
    if (owned != bucket) {
        rs_tab_put(*shard, scope, level, h, owned);
        b->e->scopes += bucket == NULL;
    }
    *out = owned;
    return 0;
}

/* Drops a record that the batch's version no longer holds. */
static void drop_rec(rs_batch *b, rs_rec *r)
{
    size_t bytes = rs_rec_bytes(r);
    b->e->live -= bytes;
    rs_garbage_push(&b->g, r, bytes);
}

/* Takes r out of its bucket (owned by the batch), and the bucket out of its
 * shard when it empties. */
static void unlink_rec(rs_batch *b, rs_tab *bucket, const rs_rec *r)
{
    rs_tab_del(bucket, &r->broker, 0, rs_hash(&r->broker, 0));
    if (bucket->count > 0)
        return;
    uint64_t h = rs_hash(&r->scope, r->level);
    rs_tab *shard = b->s->scopes[rs_shard_of(h, RS_SCOPE_SHARD_BITS)];
    rs_tab_del(shard, &r->scope, r->level, h);
    rs_tab_drop(&b->w, bucket);
    b->e->scopes--;
}

static int same_place(const rs_rec *a, const rs_rec *b)
{
    return a->level == b->level && memcmp(&a->scope, &b->scope, sizeof a->scope) == 0 &&
           memcmp(&a->broker, &b->broker, sizeof a->broker) == 0;
}

int rs_batch_put_value(rs_batch *b, const rs_value *v)
{
    if (v->level < RS_AI_TASK || v->level > RS_GLOBAL || v->json_len >= UINT32_MAX)
        return -2;
    rs_engine *e = b->e;
    rs_tab *to, *from = NULL;
    rs_rec *r = malloc(sizeof *r + v->json_len + 1);
    if (!r)
        return -1;
    memset(r, 0, sizeof *r);
    r->id = v->id;
    r->broker = v->broker_id;
    if (v->level != RS_GLOBAL)
        r->scope = v->scope_id;
    r->level = (uint8_t)v->level;
    r->len = (uint32_t)v->json_len;
    memcpy(r->json, v->json, v->json_len);
    r->json[v->json_len] = '\0';
    /* Everything that can fail comes first; none of it changes the data.
     * Each change reserves one garbage slot more than it may use: publish
     * pushes the old header without a chance to fail. */
    if (rs_garbage_reserve(&b->g, 8) != 0 || rs_idx_reserve(&e->ids, 1) != 0)
        goto err;
    rs_rec *old = rs_idx_get(&e->ids, &r->id);
    if (own_bucket(b, r->level, &r->scope, 1, &to) != 0)
        goto err;
    if (old && !same_place(old, r) && own_bucket(b, old->level, &old->scope, 0, &from) != 0)
        goto err;
    /* Insert before unlinking, so a bucket shared by both never empties. */
    rs_rec *displaced = rs_tab_put(to, &r->broker, 0, rs_hash(&r->broker, 0), r);
    if (displaced && displaced != old) {
        rs_idx_del(&e->ids, &displaced->id);
        drop_rec(b, displaced);
    }
    if (from)
        unlink_rec(b, from, old);
    rs_idx_put(&e->ids, r);
    e->live += rs_rec_bytes(r);
    if (old)
        drop_rec(b, old);
    return 0;
err:
    free(r);
    return -1;
}

int rs_batch_del_value(rs_batch *b, const rs_uuid *id)
{
    rs_engine *e = b->e;
    rs_rec *r = rs_idx_get(&e->ids, id);
    rs_tab *bucket;
    if (!r)
        return 0;
    if (rs_garbage_reserve(&b->g, 4) != 0 || own_bucket(b, r->level, &r->scope, 0, &bucket) != 0)
        return -1;
    unlink_rec(b, bucket, r);
    rs_idx_del(&e->ids, id);
    drop_rec(b, r);
    return 0;
}

static size_t ws_bytes(const void *ws)
{
    (void)ws;
    return sizeof(rs_ws);
}

static size_t brec_bytes(const void *b)
{
    return rs_brec_bytes(b);
}

/* Sets or (val NULL) removes key `id` in a sharded id map of the batch;
 * the replaced value, if any, goes to the garbage.  *count follows the
 * number of keys; size_of gives the bytes of a value.  0 or -1 (val is not
 * freed then). */
static int map_set(rs_batch *b, rs_tab **shards, unsigned bits, const rs_uuid *id, void *val,
                   size_t (*size_of)(const void *), size_t *count)
{
    uint64_t h = rs_hash(id, 0);
    rs_tab **shard = &shards[rs_shard_of(h, bits)];
    void *old = rs_tab_get(*shard, id, 0, h);
    if (!val && !old)
        return 0;
    if (rs_garbage_reserve(&b->g, 3) != 0 || rs_tab_own(&b->w, shard, 1) != 0)
        return -1;
    if (val) {
        rs_tab_put(*shard, id, 0, h, val);
        b->e->live += size_of(val);
    } else {
        rs_tab_del(*shard, id, 0, h);
    }
    if (old) {
        size_t old_bytes = size_of(old);
        b->e->live -= old_bytes;
        rs_garbage_push(&b->g, old, old_bytes);
    }
    *count = *count + (val != NULL) - (old != NULL);
    return 0;
}

/* Hands every table of a sharded map and every value in it (sized by
 * size_of; NULL: the values are buckets of records) to the garbage and
 * empties the map.  Room must be reserved. */
static void map_clear(rs_batch *b, rs_tab **shards, size_t n, size_t (*size_of)(const void *))
{
    for (size_t i = 0; i < n; i++) {
        rs_tab *t = shards[i];
        for (size_t j = 0; t && j <= t->mask; j++) {
            void *val = t->slot[j].val;
            if (!val)
                continue;
            if (!size_of) {
                rs_tab *bucket = val;
                for (size_t k = 0; k <= bucket->mask; k++)
                    if (bucket->slot[k].val)
                        drop_rec(b, bucket->slot[k].val);
                rs_tab_drop(&b->w, bucket);
            } else {
                b->e->live -= size_of(val);
                rs_garbage_push(&b->g, val, size_of(val));
            }
        }
        if (t)
            rs_tab_drop(&b->w, t);
        shards[i] = NULL;
    }
}

/* How many garbage pushes map_clear may make (buckets: with records). */
static size_t map_objects(rs_tab *const *shards, size_t n, int buckets)
{
    size_t objects = 0;
    for (size_t i = 0; i < n; i++) {
        const rs_tab *t = shards[i];
        for (size_t j = 0; t && j <= t->mask; j++)
            if (t->slot[j].val && buckets)
                objects += 1 + ((const rs_tab *)t->slot[j].val)->count;
        objects += t ? 1 + t->count : 0;
    }
    return objects;
}

int rs_batch_clear(rs_batch *b)
{
    rs_snap *s = b->s;
    rs_engine *e = b->e;
    size_t objects = map_objects(s->scopes, 1u << RS_SCOPE_SHARD_BITS, 1) +
                     map_objects(s->workspaces, 1u << RS_WS_SHARD_BITS, 0) +
                     map_objects(s->brokers, 1u << RS_BROKER_SHARD_BITS, 0);
    if (rs_garbage_reserve(&b->g, objects + 1) != 0)
        return -1;
    map_clear(b, s->scopes, 1u << RS_SCOPE_SHARD_BITS, NULL);
    map_clear(b, s->workspaces, 1u << RS_WS_SHARD_BITS, ws_bytes);
    map_clear(b, s->brokers, 1u << RS_BROKER_SHARD_BITS, brec_bytes);
    if (e->ids.slot)
        memset(e->ids.slot, 0, (e->ids.mask + 1) * sizeof *e->ids.slot);
    e->ids.count = 0;
    e->workspaces = e->brokers = e->scopes = 0;
    return 0;
}

int rs_batch_put_workspace(rs_batch *b, const rs_workspace *w)
{
    rs_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return -1;
    ws->id = w->id;
    if (w->parent) {
        ws->parent = *w->parent;
        ws->has_parent = 1;
    }
    if (w->organization) {
        ws->organization = *w->organization;
        ws->has_organization = 1;
    }
    if (map_set(b, b->s->workspaces, RS_WS_SHARD_BITS, &ws->id, ws, ws_bytes,
                &b->e->workspaces) != 0) {
        free(ws);
        return -1;
    }
    return 0;
}

int rs_batch_del_workspace(rs_batch *b, const rs_uuid *id)
{
    return map_set(b, b->s->workspaces, RS_WS_SHARD_BITS, id, NULL, ws_bytes, &b->e->workspaces);
}

/* Copies src (may be NULL) to *p and advances it; the copy or NULL. */
static const char *put_string(char **p, const char *src)
{
    if (!src)
        return NULL;
    size_t n = strlen(src) + 1;
    char *dst = memcpy(*p, src, n);
    *p += n;
    return dst;
}

int rs_batch_put_broker(rs_batch *b, const rs_broker *br)
{
    const char *strs[] = {br->name, br->data_type, br->default_value, br->description};
    size_t size = sizeof(rs_brec);
    for (size_t i = 0; i < 4; i++)
        size += strs[i] ? strlen(strs[i]) + 1 : 0;
    rs_brec *rec = malloc(size);
    if (!rec)
        return -1;
    char *p = rec->strings;
    rec->size = size;
    rec->pub.id = br->id;
    rec->pub.name = put_string(&p, br->name);
    rec->pub.data_type = put_string(&p, br->data_type);
    rec->pub.default_value = put_string(&p, br->default_value);
    rec->pub.description = put_string(&p, br->description);
    if (map_set(b, b->s->brokers, RS_BROKER_SHARD_BITS, &rec->pub.id, rec, brec_bytes,
                &b->e->brokers) != 0) {
        free(rec);
        return -1;
    }
    return 0;
}

int rs_batch_del_broker(rs_batch *b, const rs_uuid *id)
{
    return map_set(b, b->s->brokers, RS_BROKER_SHARD_BITS, id, NULL, brec_bytes, &b->e->brokers);
}
