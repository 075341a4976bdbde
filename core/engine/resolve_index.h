/* resolve_index.h: internals of the resolution engine (core/resolve*.c
 * only): the copy-on-write hash table every index is made of, the layout of
 * a version, and the writer's private id index.
 *
 * A version (rs_snap) holds three sharded maps: scope (level, scope id) ->
 * bucket, workspace id -> workspace, broker id -> data_broker row.  A
 * bucket is itself a table broker id -> value record.  Every table carries
 * the number of the version that created it (gen): the open batch may
 * change a table in place only when it created it; otherwise it copies the
 * table first and hands the old one to the garbage of the batch.  So a
 * batch copies each table it touches at most once, and a version shares
 * every untouched shard and bucket with the previous one. */
#ifndef STRATA_RESOLVE_INDEX_H
#define STRATA_RESOLVE_INDEX_H

#include "resolve.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RS_SCOPE_SHARD_BITS 12 /* 4096 shards: ~45 scopes each at a million values */
#define RS_WS_SHARD_BITS 8
#define RS_BROKER_SHARD_BITS 6

/* One key of a table: a uuid and a tag (the level in the scope map, 0
 * elsewhere) mapping to a pointer; val NULL marks an empty slot. */
typedef struct rs_slot {
    rs_uuid key;
    uint32_t tag;
    void *val;
} rs_slot;

/* An open-addressing table with linear probing, at most 3/4 full. */
typedef struct rs_tab {
    uint64_t gen;   /* version that created it; only that batch may change it */
    uint64_t bloom; /* bit rs_bloom_bit(h) set for every key held (and maybe
                     * for keys deleted since the table was built): most
                     * lookups of an absent key stop here */
    uint32_t count; /* keys held */
    uint32_t mask;  /* capacity - 1; capacity is a power of two >= 2 */
    rs_slot slot[];
} rs_tab;

/* The bloom bit of hash h: bits the slot index (low) and the shard (high)
 * do not use. */
static inline uint64_t rs_bloom_bit(uint64_t h)
{
    return 1ull << ((h >> 32) & 63);
}

/* A broker_values row.  Immutable; owned by the bucket that holds it. */
typedef struct rs_rec {
    rs_uuid id;
    rs_uuid broker;
    rs_uuid scope;   /* zero for global */
    uint8_t level;   /* rs_level */
    uint32_t len;    /* bytes of json, without the NUL */
    char json[];     /* NUL-terminated */
} rs_rec;

/* A workspaces row.  Immutable. */
typedef struct rs_ws {
    rs_uuid id;
    rs_uuid parent;
    rs_uuid organization;
    uint8_t has_parent;
    uint8_t has_organization;
} rs_ws;

/* A data_broker row: the public struct, its strings stored after it. */
typedef struct rs_brec {
    rs_broker pub;
    size_t size; /* bytes allocated, strings included */
    char strings[];
} rs_brec;

struct rs_snap {
    uint64_t version;
    rs_stats stats;
    rs_tab *scopes[1u << RS_SCOPE_SHARD_BITS];   /* (scope, level) -> bucket */
    rs_tab *workspaces[1u << RS_WS_SHARD_BITS];  /* id -> rs_ws */
    rs_tab *brokers[1u << RS_BROKER_SHARD_BITS]; /* id -> rs_brec */
};

/* Memory a batch replaced: freed once no reader can see the version
 * before it.  Space is reserved before a change so a push never fails. */
typedef struct rs_garbage {
    void **p;     /* owned array of pointers to free() */
    size_t n;     /* used */
    size_t cap;   /* allocated */
    size_t bytes; /* sizes of what it holds, for statistics */
} rs_garbage;

/* What a change in the open batch needs: its version and its garbage. */
typedef struct rs_wctx {
    uint64_t gen;     /* the version being built */
    rs_garbage *g;    /* where replaced published memory goes */
    size_t *live;     /* the engine's count of bytes in use */
} rs_wctx;

/* The writer's own index value id -> record (never seen by readers). */
typedef struct rs_idx {
    rs_rec **slot; /* owned; NULL = empty */
    size_t count;
    size_t mask;   /* capacity - 1, or 0 before the first reserve */
} rs_idx;

/* A well-mixed 64-bit hash of (key, tag): uuids need not be random. */
static inline uint64_t rs_hash(const rs_uuid *k, uint32_t tag)
{
    uint64_t a, b;
    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)tag << 59);
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

/* The value of (k, tag) in t (which may be NULL), h being rs_hash(k, tag);
 * NULL when absent.  Reader-safe: never writes. */
static inline void *rs_tab_get(const rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h)
{
    if (!t || !(t->bloom & rs_bloom_bit(h)))
        return NULL;
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        const rs_slot *s = &t->slot[i];
        if (!s->val)
            return NULL;
        if (s->tag == tag && memcmp(&s->key, k, sizeof *k) == 0)
            return s->val;
    }
}

/* The shard of a sharded map that holds hash h. */
static inline size_t rs_shard_of(uint64_t h, unsigned bits)
{
    return (size_t)(h >> (64 - bits));
}

/* Bytes of a table, for statistics. */
size_t rs_tab_bytes(const rs_tab *t);

/* Makes *pp (NULL: none yet) a table created by w->gen with room for
 * `extra` more keys: copied (the old one to the garbage) or grown as
 * needed, else left alone.  0, or -1 when out of memory (*pp unchanged).
 * Pushes at most one garbage entry. */
int rs_tab_own(const rs_wctx *w, rs_tab **pp, uint32_t extra);

/* Sets (k, tag) -> val in a table owned by the batch with room for it;
 * returns the value it replaced, or NULL when the key is new. */
void *rs_tab_put(rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h, void *val);

/* Removes (k, tag) from a table owned by the batch; returns its value, or
 * NULL when absent. */
void *rs_tab_del(rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h);

/* Gives up a table that is no longer reachable in the batch's version:
 * freed at once when the batch created it, else sent to the garbage. */
void rs_tab_drop(const rs_wctx *w, rs_tab *t);

/* Makes room for n more pushes.  0 or -1. */
int rs_garbage_reserve(rs_garbage *g, size_t n);

/* Adds p (of `bytes` bytes) to the garbage; room must be reserved. */
void rs_garbage_push(rs_garbage *g, void *p, size_t bytes);

/* Frees everything in g and g's array. */
void rs_garbage_free(rs_garbage *g);

/* Writer id index.  rs_idx_reserve makes room for n more records (0 or
 * -1); rs_idx_get finds a record; rs_idx_put adds or replaces one with the
 * same id (returning the replaced one, or NULL); rs_idx_del removes the
 * record with that id. */
int rs_idx_reserve(rs_idx *x, size_t n);
rs_rec *rs_idx_get(const rs_idx *x, const rs_uuid *id);
rs_rec *rs_idx_put(rs_idx *x, rs_rec *r);
void rs_idx_del(rs_idx *x, const rs_uuid *id);
size_t rs_idx_bytes(const rs_idx *x);
void rs_idx_free(rs_idx *x);

/* Bytes of a value record, a workspace and a broker record. */
size_t rs_rec_bytes(const rs_rec *r);
size_t rs_brec_bytes(const rs_brec *b);

#endif
