/* resolve_index.c: the copy-on-write open-addressing tables of the
 * resolution engine, its garbage lists, the writer's id index, and the
 * public helpers for uuids and levels.  Uses resolve_index.h only.
 *
 * Linear probing keeps a lookup to a few adjacent slots, and deletion
 * shifts the following entries back instead of leaving tombstones, so a
 * table that sees many updates never slows down. */
#include "resolve_index.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The smallest power-of-two capacity (>= 2) that keeps n keys <= 3/4 full. */
static size_t cap_for(size_t n)
{
    size_t cap = 2;
    while (n * 4 > cap * 3)
        cap *= 2;
    return cap;
}

size_t rs_tab_bytes(const rs_tab *t)
{
    return sizeof *t + ((size_t)t->mask + 1) * sizeof t->slot[0];
}

static rs_tab *tab_new(size_t cap, uint64_t gen)
{
    rs_tab *t = calloc(1, sizeof *t + cap * sizeof t->slot[0]);
    if (!t)
        return NULL;
    t->gen = gen;
    t->mask = (uint32_t)(cap - 1);
    return t;
}

/* The slot of (k, tag) in t, or of the empty slot where it would go. */
static rs_slot *tab_find(rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        rs_slot *s = &t->slot[i];
        if (!s->val || (s->tag == tag && memcmp(&s->key, k, sizeof *k) == 0))
            return s;
    }
}

void *rs_tab_put(rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h, void *val)
{
    rs_slot *s = tab_find(t, k, tag, h);
    void *old = s->val;
    if (!old) {
        assert(((size_t)t->count + 1) * 4 <= ((size_t)t->mask + 1) * 3);
        s->key = *k;
        s->tag = tag;
        t->count++;
        t->bloom |= rs_bloom_bit(h);
    }
    s->val = val;
    return old;
}

void *rs_tab_del(rs_tab *t, const rs_uuid *k, uint32_t tag, uint64_t h)
{
    rs_slot *s = tab_find(t, k, tag, h);
    void *old = s->val;
    if (!old)
        return NULL;
    /* Backward-shift deletion: move up every later entry of the cluster
     * whose home slot is not between the hole and itself. */
    uint32_t hole = (uint32_t)(s - t->slot);
    for (uint32_t j = (hole + 1) & t->mask; t->slot[j].val; j = (j + 1) & t->mask) {
        uint32_t home = (uint32_t)rs_hash(&t->slot[j].key, t->slot[j].tag) & t->mask;
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            t->slot[hole] = t->slot[j];
            hole = j;
        }
    }
    t->slot[hole].val = NULL;
    t->count--;
    return old;
}

void rs_tab_drop(const rs_wctx *w, rs_tab *t)
{
    size_t bytes = rs_tab_bytes(t);
    *w->live -= bytes;
    if (t->gen == w->gen)
        free(t);
    else
        rs_garbage_push(w->g, t, bytes);
}

int rs_tab_own(const rs_wctx *w, rs_tab **pp, uint32_t extra)
{
    rs_tab *t = *pp;
    size_t need = cap_for((t ? t->count : 0) + (size_t)extra);
    size_t cap = need;
    if (t) {
        size_t have = (size_t)t->mask + 1;
        if (need <= have) {
            if (t->gen == w->gen)
                return 0;
            if (have <= 4 * need)
                cap = have; /* same layout: a plain copy */
        }
    }
    rs_tab *n = tab_new(cap, w->gen);
    if (!n)
        return -1;
    if (t && cap == (size_t)t->mask + 1) {
        memcpy(n->slot, t->slot, cap * sizeof t->slot[0]);
        n->count = t->count;
        n->bloom = t->bloom;
    } else if (t) {
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slot[i].val)
                rs_tab_put(n, &t->slot[i].key, t->slot[i].tag,
                           rs_hash(&t->slot[i].key, t->slot[i].tag), t->slot[i].val);
    }
    *w->live += rs_tab_bytes(n);
    if (t)
        rs_tab_drop(w, t);
    *pp = n;
    return 0;
}

/* ---- garbage ---- */

int rs_garbage_reserve(rs_garbage *g, size_t n)
{
    if (g->n + n <= g->cap)
        return 0;
    size_t cap = g->cap ? g->cap : 16;
    while (cap < g->n + n)
        cap *= 2;
    void **p = realloc(g->p, cap * sizeof *p);
    if (!p)
        return -1;
    g->p = p;
    g->cap = cap;
    return 0;
}

void rs_garbage_push(rs_garbage *g, void *p, size_t bytes)
{
    assert(g->n < g->cap);
    g->p[g->n++] = p;
    g->bytes += bytes;
}

void rs_garbage_free(rs_garbage *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->p[i]);
    free(g->p);
    memset(g, 0, sizeof *g);
}

/* ---- writer id index ---- */

static size_t idx_home(const rs_idx *x, const rs_uuid *id)
{
    return (size_t)rs_hash(id, 0) & x->mask;
}

/* The slot holding `id`, or the empty slot where it would go. */
static rs_rec **idx_find(const rs_idx *x, const rs_uuid *id)
{
    for (size_t i = idx_home(x, id);; i = (i + 1) & x->mask) {
        rs_rec **s = &x->slot[i];
        if (!*s || memcmp(&(*s)->id, id, sizeof *id) == 0)
            return s;
    }
}

int rs_idx_reserve(rs_idx *x, size_t n)
{
    size_t have = x->slot ? x->mask + 1 : 0;
    if ((x->count + n) * 4 <= have * 3)
        return 0;
    size_t cap = cap_for(x->count + n);
    rs_idx grown = {calloc(cap, sizeof(rs_rec *)), x->count, cap - 1};
    if (!grown.slot)
        return -1;
    for (size_t i = 0; i < have; i++)
        if (x->slot[i])
            *idx_find(&grown, &x->slot[i]->id) = x->slot[i];
    free(x->slot);
    *x = grown;
    return 0;
}

rs_rec *rs_idx_get(const rs_idx *x, const rs_uuid *id)
{
    return x->slot ? *idx_find(x, id) : NULL;
}

rs_rec *rs_idx_put(rs_idx *x, rs_rec *r)
{
    rs_rec **s = idx_find(x, &r->id);
    rs_rec *old = *s;
    if (!old) {
        assert((x->count + 1) * 4 <= (x->mask + 1) * 3);
        x->count++;
    }
    *s = r;
    return old;
}

void rs_idx_del(rs_idx *x, const rs_uuid *id)
{
    if (!x->slot)
        return;
    rs_rec **s = idx_find(x, id);
    if (!*s)
        return;
    size_t hole = (size_t)(s - x->slot);
    for (size_t j = (hole + 1) & x->mask; x->slot[j]; j = (j + 1) & x->mask) {
        size_t home = idx_home(x, &x->slot[j]->id);
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            x->slot[hole] = x->slot[j];
            hole = j;
        }
    }
    x->slot[hole] = NULL;
    x->count--;
}

size_t rs_idx_bytes(const rs_idx *x)
{
    return x->slot ? (x->mask + 1) * sizeof(rs_rec *) : 0;
}

void rs_idx_free(rs_idx *x)
{
    free(x->slot);
    memset(x, 0, sizeof *x);
}

size_t rs_rec_bytes(const rs_rec *r)
{
    return sizeof *r + r->len + 1;
}

size_t rs_brec_bytes(const rs_brec *b)
{
    return b->size;
}

/* ---- levels ---- */

const char *rs_level_name(rs_level level)
{
    static const char *const names[] = {NULL,      "ai_task",      "ai_run", "task",  "project",
                                        "workspace", "organization", "user",   "global"};
    return level >= RS_AI_TASK && level <= RS_GLOBAL ? names[level] : NULL;
}

rs_level rs_scope_of(int is_global, const rs_uuid *ai_task, const rs_uuid *ai_run,
                     const rs_uuid *task, const rs_uuid *project, const rs_uuid *workspace,
                     const rs_uuid *organization, const rs_uuid *user, const rs_uuid **scope_id)
{
    const rs_uuid *cols[] = {ai_task, ai_run, task, project, workspace, organization, user};
    int set = 0;
    rs_level level = RS_NONE;
    *scope_id = NULL;
    for (int i = 0; i < 7; i++) {
        if (cols[i]) {
            set++;
            level = (rs_level)(RS_AI_TASK + i);
            *scope_id = cols[i];
        }
    }
    if (is_global) {
        *scope_id = NULL;
        return set == 0 ? RS_GLOBAL : RS_NONE;
    }
    if (set != 1) {
        *scope_id = NULL;
        return RS_NONE;
    }
    return level;
}
