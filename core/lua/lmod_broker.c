/* lmod_broker.c: strata.broker, the native resolution engine for scripts,
 * adapting resolve.h (reads) and broker_feed.h (read-your-writes).
 *   broker.ready() -> boolean            the engine follows the database
 *   broker.resolve(ctx, ids) -> rows     { broker_id, value, scope_level, scope_id }
 *   broker.missing(ctx, ids) -> ids
 *   broker.explain(ctx, ids) -> rows     every candidate, most specific first
 *   broker.rpc(name, args) -> json | nil, err   the SQL function's answer as JSON text
 *   broker.sync() -> true                waits until every change committed so far is in
 *   broker.catalog_version() -> integer  moves when the schema changed (DDL)
 *   broker.admin_config_version() -> integer or nil
 *       moves when admin_config changed (NOTIFY strata_admin_config) or the
 *       listening connection came back (changes may have been missed); nil
 *       while nothing listens, when callers must poll instead
 * ctx: { user_id, organization_id, workspace_id, project_id, task_id,
 * ai_runs_id, ai_tasks_id } (the p_ prefix is accepted too); ids: an array of
 * uuid strings (cjson.null entries are SQL NULLs).  A malformed uuid is an
 * error {code = "22P02"}, as PostgreSQL answers.  Values come back decoded
 * (cjson); broker.rpc keeps them as the JSON text PostgreSQL stored.
 * The versions are here because the feed (broker_feed.h) counts them. */
#include "lmod.h"

#include "base/buf.h"
#include "broker_sync.h"
#include "db/broker_feed.h"
#include "engine/resolve.h"
#include "lua_run.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define READER_KEY "strata.broker_reader"
#define FEED_KEY "strata.broker_feed"
#define WORKER_KEY "strata.worker"
#define MAX_IDS 10000

typedef struct broker_args {
    rs_uuid ctx_ids[7];
    rs_context ctx;
    rs_uuid *ids;
    unsigned char *nulls;
    size_t n;
    char bad[64];       /* the malformed value, when parsing failed */
} broker_args;

static void *registry(lua_State *L, const char *key)
{
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

static const char *const CTX_KEYS[7] = {"user_id", "organization_id", "workspace_id", "project_id",
                                        "task_id", "ai_runs_id", "ai_tasks_id"};

/* One context field (name or p_name) into *slot; -1 when malformed. */
static int ctx_field(lua_State *L, int idx, const char *name, rs_uuid *u, const rs_uuid **slot, char *bad)
{
    char pname[32];
    snprintf(pname, sizeof pname, "p_%s", name);
    int t = lua_getfield(L, idx, name);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        t = lua_getfield(L, idx, pname);
    }
    int rc = 0;
    size_t n;
    const char *s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (s) {
        if (rs_uuid_parse(s, n, u) == 0)
            *slot = u;
        else {
            snprintf(bad, 64, "%s", s);
            rc = -1;
        }
    }
    lua_pop(L, 1);
    return rc;
}

/* Reads ctx (index ci) and ids (index ii) into rq; the id arrays are Lua
 * userdata left on the stack.  0, or -1 with rq->bad set.  [-0, +1, m] */
static int read_request(lua_State *L, int ci, int ii, broker_args *rq)
{
    memset(rq, 0, sizeof *rq);
    const rs_uuid **slots[7] = {&rq->ctx.user, &rq->ctx.organization, &rq->ctx.workspace, &rq->ctx.project,
                                &rq->ctx.task, &rq->ctx.ai_run, &rq->ctx.ai_task};
    if (lua_istable(L, ci))
        for (int i = 0; i < 7; i++)
            if (ctx_field(L, ci, CTX_KEYS[i], &rq->ctx_ids[i], slots[i], rq->bad) < 0) {
                lua_pushnil(L);
                return -1;
            }
    size_t n = lua_istable(L, ii) ? lua_rawlen(L, ii) : 0;
    if (n > MAX_IDS)
        n = MAX_IDS;
    rq->ids = lua_newuserdatauv(L, n * (sizeof(rs_uuid) + 1) + 1, 0);
    rq->nulls = (unsigned char *)(rq->ids + n);
    rq->n = n;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, ii, (lua_Integer)i + 1);
        size_t len;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        rq->nulls[i] = s == NULL;
        if (s && rs_uuid_parse(s, len, &rq->ids[i]) < 0) {
            snprintf(rq->bad, sizeof rq->bad, "%s", s);
            lua_pop(L, 1);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int bad_uuid(lua_State *L, const broker_args *rq)
{
    luaL_pushfail(L);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "22P02");
    lua_setfield(L, -2, "code");
    lua_pushfstring(L, "invalid input syntax for type uuid: \"%s\"", rq->bad);
    lua_setfield(L, -2, "message");
    return 2;
}

static rs_reader *reader_or_error(lua_State *L)
{
    rs_reader *r = registry(L, READER_KEY);
    broker_feed *f = registry(L, FEED_KEY);
    if (!r || !f || !broker_feed_ready(f))
        luaL_error(L, "strata.broker: the engine is not ready (see broker.ready())");
    return r;
}

static void push_uuid(lua_State *L, const rs_uuid *u)
{
    char text[37];
    rs_uuid_format(u, text);
    lua_pushlstring(L, text, 36);
}

/* Decodes JSON text with cjson.  [-0, +1, e] */
static void push_json(lua_State *L, const char *json, size_t len)
{
    lmod_push_cjson(L, "decode");
    lua_pushlstring(L, json, len);
    lua_call(L, 1, 1);
}

static void push_row(lua_State *L, const rs_row *row)
{
    lua_createtable(L, 0, 5);
    push_uuid(L, &row->broker_id);
    lua_setfield(L, -2, "broker_id");
    if (row->value)
        push_json(L, row->value, row->value_len);
    else
        lmod_json_null(L);
    lua_setfield(L, -2, "value");
    const char *lvl = rs_level_name(row->level);
    if (lvl)
        lua_pushstring(L, lvl);
    else
        lmod_json_null(L);
    lua_setfield(L, -2, "scope_level");
    if (row->scope_id)
        push_uuid(L, row->scope_id);
    else
        lmod_json_null(L);
    lua_setfield(L, -2, "scope_id");
}

/* broker.resolve(ctx, ids) -> rows | nil, err.  [-2, +1|2, e] */
static int l_resolve(lua_State *L)
{
    rs_reader *r = reader_or_error(L);
    broker_args rq;
    if (read_request(L, 1, 2, &rq) < 0)
        return bad_uuid(L, &rq);
    rs_row *rows = lua_newuserdatauv(L, (rq.n + 1) * sizeof *rows, 0);
    rs_ids ids = {rq.ids, rq.nulls, rq.n};
    const rs_snap *s = rs_read_begin(r);
    size_t n = rs_resolve(s, &rq.ctx, &ids, rows);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_row(L, &rows[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    rs_read_end(r);
    return 1;
}

/* broker.missing(ctx, ids) -> ids | nil, err.  [-2, +1|2, e] */
static int l_missing(lua_State *L)
{
    rs_reader *r = reader_or_error(L);
    broker_args rq;
    if (read_request(L, 1, 2, &rq) < 0)
        return bad_uuid(L, &rq);
    rs_row *rows = lua_newuserdatauv(L, (rq.n + 1) * sizeof *rows, 0);
    rs_ids ids = {rq.ids, rq.nulls, rq.n};
    int has_null = 0;
    size_t n = rs_missing(rs_read_begin(r), &rq.ctx, &ids, rows, &has_null);
    rs_read_end(r);
    lua_createtable(L, (int)n + has_null, 0);
    for (size_t i = 0; i < n; i++) {
        push_uuid(L, &rows[i].broker_id);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (has_null) {
        lmod_json_null(L);
        lua_rawseti(L, -2, (lua_Integer)n + 1);
    }
    return 1;
}

typedef struct explain_ctx {
    lua_State *L;
    lua_Integer n;
} explain_ctx;

static int on_candidate(void *arg, const rs_row *row)
{
    explain_ctx *x = arg;
    push_row(x->L, row);
    lua_pushinteger(x->L, row->depth);
    lua_setfield(x->L, -2, "depth");
    lua_rawseti(x->L, -2, ++x->n);
    return 0;
}

/* broker.explain(ctx, ids) -> candidates | nil, err.  [-2, +1|2, e] */
static int l_explain(lua_State *L)
{
    rs_reader *r = reader_or_error(L);
    broker_args rq;
    if (read_request(L, 1, 2, &rq) < 0)
        return bad_uuid(L, &rq);
    rs_ids ids = {rq.ids, rq.nulls, rq.n};
    lua_newtable(L);
    explain_ctx x = {L, 0};
    rs_explain(rs_read_begin(r), &rq.ctx, &ids, on_candidate, &x);
    rs_read_end(r);
    return 1;
}

static int add_uuid_json(buf *b, const rs_uuid *u)
{
    char text[37];
    rs_uuid_format(u, text);
    return buf_add_str(b, "\"") || buf_add(b, text, 36) || buf_add_str(b, "\"") ? -1 : 0;
}

static int add_str_json(buf *b, const char *s)
{
    if (!s)
        return buf_add_str(b, "null");
    return buf_add_str(b, "\"") || buf_add_json_escaped(b, s, strlen(s)) || buf_add_str(b, "\"") ? -1 : 0;
}

/* The rows as the SQL function's JSON: json_agg of its result rows. */
static int rows_json(buf *b, const rs_row *rows, size_t n, int complete)
{
    int rc = buf_add_str(b, "[");
    for (size_t i = 0; i < n; i++) {
        const rs_row *r = &rows[i];
        rc |= buf_add_str(b, i ? ",{\"broker_id\":" : "{\"broker_id\":");
        rc |= add_uuid_json(b, &r->broker_id);
        if (complete) {
            rc |= buf_add_str(b, ",\"broker_name\":") || add_str_json(b, r->broker->name) ? -1 : 0;
            rc |= buf_add_str(b, ",\"data_type\":") || add_str_json(b, r->broker->data_type) ? -1 : 0;
        }
        rc |= buf_add_str(b, ",\"value\":");
        rc |= r->value ? buf_add(b, r->value, r->value_len) : buf_add_str(b, "null");
        if (complete)
            rc |= buf_add_str(b, r->value ? ",\"has_value\":true" : ",\"has_value\":false");
        rc |= buf_add_str(b, ",\"scope_level\":") || add_str_json(b, rs_level_name(r->level)) ? -1 : 0;
        rc |= buf_add_str(b, ",\"scope_id\":");
        rc |= r->scope_id ? add_uuid_json(b, r->scope_id) : buf_add_str(b, "null");
        if (complete) {
            rc |= buf_add_str(b, ",\"default_value\":") || add_str_json(b, r->broker->default_value) ? -1 : 0;
            rc |= buf_add_str(b, ",\"description\":") || add_str_json(b, r->broker->description) ? -1 : 0;
        }
        rc |= buf_add_str(b, "}");
    }
    return rc | buf_add_str(b, "]");
}

/* broker.rpc(name, args) -> json text | nil, err.  [-2, +1|2, e] */
static int l_rpc(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    rs_reader *r = reader_or_error(L);
    int fn = strcmp(name, "get_broker_values_for_context") == 0    ? 0
             : strcmp(name, "get_missing_broker_ids") == 0          ? 1
             : strcmp(name, "get_complete_broker_data_for_context") == 0 ? 2
                                                                    : -1;
    if (fn < 0)
        return luaL_argerror(L, 1, "not a natively answered function");
    lua_getfield(L, 2, "p_broker_ids"); /* stack: name, args, ids */
    broker_args rq;
    if (read_request(L, 2, 3, &rq) < 0)
        return bad_uuid(L, &rq);
    rs_row *rows = lua_newuserdatauv(L, (rq.n + 1) * sizeof *rows, 0);
    rs_ids ids = {rq.ids, rq.nulls, rq.n};
    buf b = {0};
    const rs_snap *s = rs_read_begin(r);
    int rc;
    if (fn == 1) {
        int has_null = 0;
        size_t n = rs_missing(s, &rq.ctx, &ids, rows, &has_null);
        rc = buf_add_str(&b, "[");
        for (size_t i = 0; i < n; i++)
            rc |= buf_add_str(&b, i ? "," : "") || add_uuid_json(&b, &rows[i].broker_id) ? -1 : 0;
        rc |= buf_add_str(&b, has_null ? (n ? ",null]" : "null]") : "]");
    } else {
        size_t n = fn == 0 ? rs_resolve(s, &rq.ctx, &ids, rows) : rs_complete(s, &rq.ctx, &ids, rows);
        rc = rows_json(&b, rows, n, fn == 2);
    }
    rs_read_end(r);
    if (rc) {
        buf_free(&b);
        return luaL_error(L, "strata.broker: out of memory");
    }
    lua_pushlstring(L, b.p, b.len);
    buf_free(&b);
    return 1;
}

/* broker.ready() -> boolean.  [-0, +1, -] */
static int l_ready(lua_State *L)
{
    broker_feed *f = registry(L, FEED_KEY);
    lua_pushboolean(L, f && broker_feed_ready(f));
    return 1;
}

/* broker.catalog_version() -> integer.  [-0, +1, -] */
static int l_catalog_version(lua_State *L)
{
    const broker_feed *f = registry(L, FEED_KEY);
    lua_pushinteger(L, f ? (lua_Integer)broker_feed_ddl_version(f) : 0);
    return 1;
}

/* broker.admin_config_version() -> integer or nil.  [-0, +1, -] */
static int l_admin_config_version(lua_State *L)
{
    const broker_feed *f = registry(L, FEED_KEY);
    if (f && broker_feed_ready(f))
        lua_pushinteger(L, (lua_Integer)broker_feed_admin_config_version(f));
    else
        lua_pushnil(L);
    return 1;
}

static int synced(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_pushboolean(L, 1);
    return 1;
}

/* broker.sync() -> true: suspends the handler until the engine holds every
 * change committed before the call.  [-0, +1, e] */
static int l_sync(lua_State *L)
{
    broker_feed *f = registry(L, FEED_KEY);
    lua_run *run = lua_run_current(L);
    if (!run)
        return luaL_error(L, "broker.sync can only be called by a request's handler");
    /* Only a worker's thread resumes waiters (broker_sync_resume). */
    if (!f || !registry(L, WORKER_KEY) || !broker_feed_ready(f))
        return synced(L, LUA_OK, 0); /* no engine: nothing to wait for */
    int rc = broker_sync_wait(run, broker_feed_sync_request(f));
    if (rc < 0)
        return luaL_error(L, "broker.sync: out of memory");
    if (rc > 0)
        return synced(L, LUA_OK, 0); /* the worker is exiting */
    return lua_run_yield(L, run, synced, 0);
}

static const luaL_Reg FUNCS[] = {
    {"admin_config_version", l_admin_config_version},
    {"catalog_version", l_catalog_version},
    {"explain", l_explain},
    {"missing", l_missing},
    {"ready", l_ready},
    {"resolve", l_resolve},
    {"rpc", l_rpc},
    {"sync", l_sync},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_broker(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
