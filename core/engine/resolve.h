/* resolve.h: the native broker resolution engine.  An in-memory copy of
 * data_broker, workspaces and broker_values (seed 000, sql/011_brokers.sql)
 * that answers get_broker_values_for_context, get_missing_broker_ids and
 * get_complete_broker_data_for_context row for row like the SQL functions,
 * plus an explain listing for debugging.
 *
 * A plain C data structure: no I/O, no Lua, no HTTP, no libpq.  A separate
 * unit feeds it (initial streaming load, then LISTEN/NOTIFY changes) and
 * another exposes it over RPC.
 *
 * Concurrency: one writer thread (the loader) and any number of reader
 * threads (the workers).  The writer groups changes in a batch and publishes
 * it as a new immutable version; readers enter a version, query it, leave
 * it.  Readers never lock and never wait; the writer never waits for them.
 * How old versions are reclaimed is explained at the top of resolve.c.
 *
 * UUIDs are rs_uuid (uuid.h). */
#ifndef STRATA_RESOLVE_H
#define STRATA_RESOLVE_H

#include "uuid.h"

#include <stddef.h>
#include <stdint.h>

#define RS_MAX_READERS 64 /* reader slots per engine: one per reading thread */

/* The scope levels in priority order, most specific first; the numbers are
 * the SQL function's level_rank.  RS_NONE: no value. */
typedef enum rs_level {
    RS_NONE = 0,
    RS_AI_TASK = 1,
    RS_AI_RUN = 2,
    RS_TASK = 3,
    RS_PROJECT = 4,
    RS_WORKSPACE = 5,
    RS_ORGANIZATION = 6,
    RS_USER = 7,
    RS_GLOBAL = 8
} rs_level;

typedef struct rs_engine rs_engine; /* the engine: current version, reader slots, writer state */
typedef struct rs_snap rs_snap;     /* one published version, immutable */
typedef struct rs_reader rs_reader; /* a reader slot, used by one thread at a time */
typedef struct rs_batch rs_batch;   /* the writer's open batch of changes */

/* "ai_task", "ai_run", "task", "project", "workspace", "organization",
 * "user", "global" (the SQL scope_level texts); NULL for RS_NONE. */
const char *rs_level_name(rs_level level);

/* ---- the rows the engine holds ---- */

/* A data_broker row.  Strings are NUL-terminated; any may be NULL (SQL
 * NULL).  Given to rs_batch_put_broker, the strings are copied; returned by
 * queries, they point into the version being read. */
typedef struct rs_broker {
    rs_uuid id;
    const char *name;
    const char *data_type; /* the enum's text, e.g. "str" */
    const char *default_value;
    const char *description;
} rs_broker;

/* A workspaces row (only what resolution needs). */
typedef struct rs_workspace {
    rs_uuid id;
    const rs_uuid *parent;       /* parent_workspace_id; NULL when none */
    const rs_uuid *organization; /* organization_id; NULL when unknown */
} rs_workspace;

/* A broker_values row reduced to its one scope. */
typedef struct rs_value {
    rs_uuid id;        /* broker_values.id */
    rs_uuid broker_id;
    rs_level level;    /* the scope; RS_GLOBAL for is_global */
    rs_uuid scope_id;  /* the scope's id; ignored for RS_GLOBAL */
    const char *json;  /* the value as JSON text (jsonb output); copied */
    size_t json_len;
} rs_value;

/* The one scope of a broker_values row given its columns (NULL pointer =
 * SQL NULL), as broker_values_single_scope_check decides it: the level, and
 * *scope_id set to the column holding it (NULL for global).  RS_NONE when
 * the row does not have exactly one scope. */
rs_level rs_scope_of(int is_global, const rs_uuid *ai_task, const rs_uuid *ai_run,
                     const rs_uuid *task, const rs_uuid *project, const rs_uuid *workspace,
                     const rs_uuid *organization, const rs_uuid *user, const rs_uuid **scope_id);

/* ---- engine ---- */

/* A new engine holding version 1, empty.  NULL when out of memory. */
rs_engine *rs_engine_new(void);

/* Frees everything.  No reader may be inside a version and no batch open. */
void rs_engine_free(rs_engine *e);

/* ---- writer side (one thread at a time) ---- */

/* Opens a batch on top of the current version.  NULL when out of memory or
 * when a batch is already open.  Changes apply in call order; none is
 * visible to readers until rs_batch_publish.  There is no rollback: a call
 * that fails changes nothing, and the batch stays usable. */
rs_batch *rs_batch_begin(rs_engine *e);

/* Inserts or replaces value v->id.  A value with the same id elsewhere
 * (another scope or broker) moves; another id holding the same (broker,
 * scope) is replaced, as the unique constraint would have it.  0, -1 when
 * out of memory, -2 when v->level is not a scope level. */
int rs_batch_put_value(rs_batch *b, const rs_value *v);

/* Removes value `id`; an unknown id is not an error.  0 or -1. */
int rs_batch_del_value(rs_batch *b, const rs_uuid *id);

/* Inserts or replaces a workspace.  A workspace that is not held breaks the
 * chain like a missing row would: its values are not reachable, and neither
 * are its ancestors through it.  0 or -1. */
int rs_batch_put_workspace(rs_batch *b, const rs_workspace *w);
int rs_batch_del_workspace(rs_batch *b, const rs_uuid *id);

/* Inserts or replaces a data_broker row; deleting one does not delete its
 * values (the database cascades and the loader sends those deletes).
 * 0 or -1. */
int rs_batch_put_broker(rs_batch *b, const rs_broker *br);
int rs_batch_del_broker(rs_batch *b, const rs_uuid *id);

/* Empties the batch: every value, workspace and broker goes.  For a full
 * reload after the change feed was lost: clear, load everything, publish;
 * readers see the old data until the publish, then only the new.  0, or
 * -1 when out of memory (nothing changed). */
int rs_batch_clear(rs_batch *b);

/* Makes the batch the current version, frees b, frees what no reader can
 * see any more, and returns the new version number.  Cannot fail. */
uint64_t rs_batch_publish(rs_batch *b);

/* Frees old versions that readers have left since the last publish.
 * Writer thread only; cheap; the loader may call it when idle. */
void rs_reclaim(rs_engine *e);

/* ---- reader side ---- */

/* Takes a free reader slot for the calling thread; NULL when all
 * RS_MAX_READERS are taken.  Thread-safe. */
rs_reader *rs_reader_new(rs_engine *e);

/* Gives the slot back; the reader must not be inside a version. */
void rs_reader_free(rs_reader *r);

/* Enters the current version: wait-free (an atomic load, a store and a
 * load).  Everything the queries return points into it and stays valid
 * until rs_read_end.  Not nested: one version per reader at a time.  Hold
 * it briefly, since the memory of every newer change waits for it. */
const rs_snap *rs_read_begin(rs_reader *r);
void rs_read_end(rs_reader *r);

typedef struct rs_stats {
    uint64_t version;     /* this version's number (1 = empty engine) */
    size_t values;        /* broker_values rows */
    size_t workspaces;    /* workspaces rows */
    size_t brokers;       /* data_broker rows */
    size_t scopes;        /* distinct (level, scope id) holding values */
    size_t bytes;         /* bytes allocated for this version and the writer's id index */
    size_t retired_bytes; /* bytes of older versions still held by readers, at publish */
} rs_stats;

/* The version's statistics, as of its publication. */
void rs_snap_stats(const rs_snap *s, rs_stats *st);

/* ---- queries (on an entered version; any thread) ---- */

/* The context: the SQL functions' p_*_id parameters.  A NULL pointer skips
 * that level, as a NULL parameter does. */
typedef struct rs_context {
    const rs_uuid *user;
    const rs_uuid *organization;
    const rs_uuid *workspace; /* the chain is this workspace, then its ancestors */
    const rs_uuid *project;
    const rs_uuid *task;
    const rs_uuid *ai_run;
    const rs_uuid *ai_task;
} rs_context;

/* The requested broker ids (p_broker_ids).  null may be NULL (no NULL
 * entry); otherwise null[i] != 0 marks entry i as SQL NULL, whose id[i] is
 * then ignored.  Duplicates are allowed. */
typedef struct rs_ids {
    const rs_uuid *id;
    const unsigned char *null;
    size_t n;
} rs_ids;

/* One answer row.  Pointers point into the version being read. */
typedef struct rs_row {
    rs_uuid broker_id;
    const char *value;       /* JSON text, NUL-terminated; NULL when no value */
    size_t value_len;
    rs_level level;          /* scope_level; RS_NONE when no value */
    const rs_uuid *scope_id; /* NULL for global or when no value */
    const rs_uuid *value_id; /* the broker_values.id; NULL when no value */
    uint32_t depth;          /* workspace: 0 the given one, 1 its parent...; else 0 */
    const rs_broker *broker; /* rs_complete only: the data_broker row */
} rs_row;

/* get_broker_values_for_context: for each distinct non-NULL requested id
 * that has a value at some level of the context, the most specific one;
 * sorted by broker_id (DISTINCT ON ... ORDER BY broker_id).  out has room
 * for req->n rows; returns how many were written.  Never fails. */
size_t rs_resolve(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out);

/* get_missing_broker_ids: the distinct non-NULL requested ids with no value
 * in the context, sorted by uuid, written as out[i].broker_id (room for
 * req->n rows); *has_null is set to 1 when some entry was NULL (the SQL
 * result then ends with one NULL element), else 0.  Returns the count. */
size_t rs_missing(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out,
                  int *has_null);

/* get_complete_broker_data_for_context: one row per distinct requested id
 * that is in data_broker (out[i].broker set; others dropped), with its
 * value when it has one (has_value is value != NULL; a JSON null is a
 * value).  The SQL function gives no order; these rows are sorted by
 * broker_id.  Room for req->n rows; returns the count. */
size_t rs_complete(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_row *out);

/* Called by rs_explain once per candidate; a non-zero return stops it. */
typedef int (*rs_explain_fn)(void *arg, const rs_row *candidate);

/* Every value that could answer each distinct requested id in the context:
 * ids in uuid order, and for each, its candidates from the most specific
 * (the one rs_resolve picks) to the least.  An id with no candidate gets
 * no call.  A debugging aid: quadratic in the request's length.  Returns
 * 0, or the first non-zero value fn returned. */
int rs_explain(const rs_snap *s, const rs_context *ctx, const rs_ids *req, rs_explain_fn fn,
               void *arg);

/* The data_broker row of `id` in the version, or NULL. */
const rs_broker *rs_get_broker(const rs_snap *s, const rs_uuid *id);

#endif
