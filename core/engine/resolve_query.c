/* resolve_query.c: the resolution engine's queries on an entered version:
 * rs_resolve, rs_missing, rs_complete, rs_explain.  Uses resolve.h and
 * resolve_index.h; never allocates, never writes the version.
 *
 * The levels are visited from the most specific down, each bucket probed
 * only for the brokers still unanswered, so a lookup stops as soon as every
 * broker has its value.  What costs is memory latency, not instructions: a
 * million values do not stay in cache, and a bucket lookup is three
 * dependent misses.  So the buckets of independent scopes are fetched
 * together with prefetches (their misses overlap), and each broker's hash
 * is computed once per request.  The serial part left is the parent walk
 * (two or three misses per ancestor).
 *
 * The workspace chain is walked with Brent's cycle detection: bad data with
 * a loop in parent links ends the walk after at most a few turns, with no
 * memory for a visited set.  Seeing a workspace again there is harmless for
 * resolution (its bucket answered what it could the first time, at the
 * smaller depth); explain, which lists every candidate, first measures the
 * loop-free length of the chain. */
#include "resolve.h"
#include "resolve_index.h"

#include <stdlib.h>
#include <string.h>

static const rs_uuid zero_uuid; /* the scope key of global values */

static const rs_tab *scope_bucket(const rs_snap *s, rs_level level, const rs_uuid *id)
{
    uint64_t h = rs_hash(id, level);
    return rs_tab_get(s->scopes[rs_shard_of(h, RS_SCOPE_SHARD_BITS)], id, level, h);
}

static const rs_ws *ws_get(const rs_snap *s, const rs_uuid *id)
{
    uint64_t h = rs_hash(id, 0);
    return rs_tab_get(s->workspaces[rs_shard_of(h, RS_WS_SHARD_BITS)], id, 0, h);
}

/* The parent of w in s, or NULL when it has none or it is not held. */
static const rs_ws *ws_parent(const rs_snap *s, const rs_ws *w)
{
    return w->has_parent ? ws_get(s, &w->parent) : NULL;
}

const rs_broker *rs_get_broker(const rs_snap *s, const rs_uuid *id)
{
    uint64_t h = rs_hash(id, 0);
    const rs_brec *b = rs_tab_get(s->brokers[rs_shard_of(h, RS_BROKER_SHARD_BITS)], id, 0, h);
    return b ? &b->pub : NULL;
}

static int row_cmp(const void *a, const void *b)
{
    return memcmp(((const rs_row *)a)->broker_id.b, ((const rs_row *)b)->broker_id.b, 16);
}

/* Writes the distinct non-NULL requested ids to out, sorted, every other
 * field zero; *has_null tells whether a NULL entry was seen.  Returns the
 * count. */
static size_t prepare(const rs_ids *req, rs_row *out, int *has_null)
{
    size_t n = 0;
    *has_null = 0;
    for (size_t i = 0; i < req->n; i++) {
        if (req->null && req->null[i]) {
            *has_null = 1;
            continue;
        }
        memset(&out[n], 0, sizeof out[n]);
        out[n++].broker_id = req->id[i];
    }
    if (n <= 32) { /* the usual request: insertion sort beats qsort's calls */
        for (size_t i = 1; i < n; i++) {
            rs_row t = out[i];
            size_t j = i;
            for (; j > 0 && row_cmp(&out[j - 1], &t) > 0; j--)
                out[j] = out[j - 1];
            out[j] = t;
        }
    } else {
        qsort(out, n, sizeof *out, row_cmp);
    }
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (d == 0 || row_cmp(&out[d - 1], &out[i]) != 0)
            out[d++] = out[i];
    return d;
}

static void set_row(rs_row *row, const rs_rec *r, uint32_t depth)
{
    row->value = r->json;
    row->value_len = r->len;
    row->level = (rs_level)r->level;
    row->scope_id = r->level == RS_GLOBAL ? NULL : &r->scope;
    row->value_id = &r->id;
    row->depth = depth;
}

#define ROW_CHUNK 64 /* rows looked up together (longer requests: in turns) */

/* The rows of one turn that have no value yet, with their brokers' hashes
 * (computed once, used at every level). */
typedef struct pending {
    rs_row *rows;
    size_t n;                  /* unanswered */
    uint64_t h[ROW_CHUNK];     /* rs_hash(broker_id, 0) */
    uint8_t idx[ROW_CHUNK];    /* which row */
} pending;

/* Answers, from one bucket, the pending rows it holds. */
static void fill(const rs_tab *bucket, pending *p, uint32_t depth)
{
    if (!bucket || bucket->count == 0)
        return;
    for (size_t i = 0; i < p->n;) {
        rs_row *row = &p->rows[p->idx[i]];
        const rs_rec *r = rs_tab_get(bucket, &row->broker_id, 0, p->h[i]);
        if (!r) {
            i++;
            continue;
        }
        set_row(row, r, depth);
        p->n--; /* answered: the last pending row takes its place */
        p->idx[i] = p->idx[p->n];
        p->h[i] = p->h[p->n];
    }
}

/* One scope of the context whose bucket is looked up. */
typedef struct scope_ref {
    rs_level level;
    const rs_uuid *id;
    uint32_t depth;       /* workspaces: distance from the given one */
    uint64_t h;           /* rs_hash(id, level) */
    const rs_tab *shard;  /* the shard holding it */
    const rs_tab *bucket; /* its values, or NULL */
} scope_ref;

#define WS_CHUNK 32 /* workspaces whose buckets are fetched together */

/* Finds the buckets of v[0..n).  Each step issues its memory loads for all
 * scopes before using any, so the cache misses of independent lookups
 * overlap instead of adding up (a lookup is three dependent misses: shard
 * header, slot, bucket). */
static void find_buckets(const rs_snap *s, scope_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i].h = rs_hash(v[i].id, v[i].level);
        v[i].shard = s->scopes[rs_shard_of(v[i].h, RS_SCOPE_SHARD_BITS)];
        if (v[i].shard)
            __builtin_prefetch(v[i].shard);
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].shard)
            __builtin_prefetch(&v[i].shard->slot[(uint32_t)v[i].h & v[i].shard->mask]);
    for (size_t i = 0; i < n; i++) {
        v[i].bucket = rs_tab_get(v[i].shard, v[i].id, v[i].level, v[i].h);
        if (v[i].bucket)
            __builtin_prefetch(v[i].bucket);
    }
}

/* Answers pending rows from the buckets of v[0..n), in that order. */
static void fill_refs(const scope_ref *v, size_t n, pending *p)
{
    for (size_t i = 0; i < n && p->n > 0; i++)
        fill(v[i].bucket, p, v[i].depth);
}

/* Answers what the workspace chain from `start` can.  The chain is walked
 * WS_CHUNK workspaces at a time, their buckets fetched together. */
static void fill_workspaces(const rs_snap *s, const rs_uuid *start, pending *p)
{
    scope_ref chunk[WS_CHUNK];
    size_t k = 0;
    const rs_ws *w = ws_get(s, start), *mark = w;
    uint64_t power = 1, lam = 0;
    /* depth can only pass the number of workspaces on a loop, and by then
     * every workspace of the chain has been seen (a bound beside Brent's). */
    for (uint32_t depth = 0; w && p->n > 0 && depth <= s->stats.workspaces; depth++) {
        chunk[k++] = (scope_ref){.level = RS_WORKSPACE, .id = &w->id, .depth = depth};
        const rs_ws *next = ws_parent(s, w);
        if (next == mark) /* back at Brent's marker: a loop */
            next = NULL;
        if (++lam == power) {
            mark = next;
            power *= 2;
            lam = 0;
        }
        w = next;
        if (k == WS_CHUNK || !w) {
            find_buckets(s, chunk, k);
            fill_refs(chunk, k, p);
            k = 0;
        }
    }
    if (k > 0) { /* stopped by the depth bound */
        find_buckets(s, chunk, k);
        fill_refs(chunk, k, p);
    }
}

/* Gives each of rows[0..n) (n <= ROW_CHUNK) the value rs_resolve would
 * pick, or leaves it empty.  The buckets of the levels around the
 * workspaces are fetched first, all together, even those an early answer
 * makes useless: overlapping their misses costs less than taking them one
 * by one. */
static void lookup_turn(const rs_snap *s, const rs_context *ctx, rs_row *rows, size_t n)
{
    const rs_uuid *ids[] = {ctx->ai_task, ctx->ai_run, ctx->task, ctx->project,
                            NULL, ctx->organization, ctx->user, &zero_uuid};
    scope_ref v[8];
    size_t nv = 0, before = 0;
    for (int level = RS_AI_TASK; level <= RS_GLOBAL; level++) {
        if (ids[level - 1])
            v[nv++] = (scope_ref){.level = (rs_level)level, .id = ids[level - 1]};
        if (level < RS_WORKSPACE)
            before = nv;
    }
    find_buckets(s, v, nv);
    pending p = {.rows = rows, .n = n};
    for (size_t i = 0; i < n; i++) {
        p.h[i] = rs_hash(&rows[i].broker_id, 0);
        p.idx[i] = (uint8_t)i;
    }
    fill_refs(v, before, &p);
    if (p.n > 0 && ctx->workspace)
        fill_workspaces(s, ctx->workspace, &p);
    fill_refs(v + before, nv - before, &p);
}

/* lookup_turn over any number of rows. */
static void lookup(const rs_snap *s, const rs_context *ctx, rs_row *rows, size_t n)
{
    for (size_t off = 0; off < n; off += ROW_CHUNK)
        lookup_turn(s, ctx, rows + off, n - off < ROW_CHUNK ? n - off : ROW_CHUNK);
}

size_t rs_resolve(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out)
{
    int has_null;
    size_t n = prepare(req, out, &has_null), kept = 0;
    lookup(s, ctx, out, n);
    for (size_t i = 0; i < n; i++)
        if (out[i].value)
            out[kept++] = out[i];
    return kept;
}

size_t rs_missing(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out,
                  int *has_null)
{
    size_t n = prepare(req, out, has_null), kept = 0;
    lookup(s, ctx, out, n);
    for (size_t i = 0; i < n; i++) {
        if (!out[i].value) {
            out[kept] = out[i];
            kept++;
        }
    }
    return kept;
}

size_t rs_complete(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out)
{
    int has_null;
    size_t n = prepare(req, out, &has_null), kept = 0;
    lookup(s, ctx, out, n);
    for (size_t i = 0; i < n; i++) {
        out[i].broker = rs_get_broker(s, &out[i].broker_id);
        if (out[i].broker)
            out[kept++] = out[i];
    }
    return kept;
}

/* ---- explain ---- */

/* How many distinct workspaces the chain from `start` has: up to its end,
 * or up to the first one seen twice (Brent finds the loop length lam, then
 * the tail length mu; the chain is mu + lam long). */
static size_t chain_len(const rs_snap *s, const rs_uuid *start)
{
    const rs_ws *x0 = ws_get(s, start);
    if (!x0)
        return 0;
    const rs_ws *tortoise = x0, *hare = ws_parent(s, x0);
    size_t power = 1, lam = 1, steps = 1;
    while (hare != tortoise) {
        if (!hare)
            return steps;
        if (power == lam) {
            tortoise = hare;
            power *= 2;
            lam = 0;
        }
        hare = ws_parent(s, hare);
        lam++;
        steps++;
    }
    const rs_ws *a = x0, *b = x0;
    for (size_t i = 0; i < lam; i++)
        b = ws_parent(s, b);
    size_t mu = 0;
    for (; a != b; mu++) {
        a = ws_parent(s, a);
        b = ws_parent(s, b);
    }
    return mu + lam;
}

/* Calls fn with the value of `row`'s broker in `bucket`, if any. */
static int emit(const rs_tab *bucket, rs_row *row, uint32_t depth, rs_explain_fn fn, void *arg)
{
    const rs_rec *r = rs_tab_get(bucket, &row->broker_id, 0, rs_hash(&row->broker_id, 0));
    if (!r)
        return 0;
    set_row(row, r, depth);
    return fn(arg, row);
}

/* Every candidate of one broker, most specific first. */
static int explain_one(const rs_snap *s, const rs_context *ctx, size_t chain, const rs_uuid *id,
                       rs_explain_fn fn, void *arg)
{
    const rs_uuid *ids[] = {ctx->ai_task, ctx->ai_run, ctx->task, ctx->project,
                            NULL,         ctx->organization, ctx->user, &zero_uuid};
    rs_row row = {.broker_id = *id};
    int rc = 0;
    for (int level = RS_AI_TASK; level <= RS_GLOBAL && rc == 0; level++) {
        if (level == RS_WORKSPACE) {
            const rs_ws *w = chain ? ws_get(s, ctx->workspace) : NULL;
            for (size_t d = 0; d < chain && rc == 0; d++, w = ws_parent(s, w))
                rc = emit(scope_bucket(s, RS_WORKSPACE, &w->id), &row, (uint32_t)d, fn, arg);
        } else if (ids[level - 1]) {
            rc = emit(scope_bucket(s, (rs_level)level, ids[level - 1]), &row, 0, fn, arg);
        }
    }
    return rc;
}

int rs_explain(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_explain_fn fn,
               void *arg)
{
    size_t chain = ctx->workspace ? chain_len(s, ctx->workspace) : 0;
    const rs_uuid *prev = NULL;
    /* Distinct ids in order without a buffer: the smallest id above the
     * previous one, each time (requests to explain are short). */
    for (;;) {
        const rs_uuid *next = NULL;
        for (size_t i = 0; i < req->n; i++) {
            const rs_uuid *id = &req->id[i];
            if ((req->null && req->null[i]) || (prev && rs_uuid_cmp(id, prev) <= 0))
                continue;
            if (!next || rs_uuid_cmp(id, next) < 0)
                next = id;
        }
        if (!next)
            return 0;
        int rc = explain_one(s, ctx, chain, next, fn, arg);
        if (rc != 0)
            return rc;
        prev = next;
    }
}
