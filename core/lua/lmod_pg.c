/* lmod_pg.c: strata.pg, PostgreSQL for scripts, adapting pool.h.  Every
 * call suspends the handler's coroutine until PostgreSQL answers (the
 * worker goes on serving others) and reads as straight-line code:
 *   pg.query(sql, ...) -> rows | nil, err
 *   pg.caller_query(sql, ...) -> rows | nil, err
 *   pg.service_query(sql, ...) -> rows | nil, err
 *   pg.bypass_query(sql, ...) -> rows | nil, err
 *   pg.begin([as]) -> true | nil, err   pins a connection to the request;
 *                                        as: true (the caller), "service" or "bypass"
 *   pg.commit() / pg.rollback() -> true | nil, err   and releases it
 *   pg.in_transaction() -> boolean
 * "As the caller" means with the seven settings PostgREST sets per request
 * (SETTINGS_SQL below; the request object builds them once, in C), applied
 * in the same round trip as the statement, for its (implicit or explicit)
 * transaction only; inside a transaction caller_query is query, since
 * begin applied them.  "As the service" is the same with the claims and the
 * role of service_role, for trusted server work (strata.data's as_service);
 * inside a transaction service_query is query too: begin decided.  "Bypass"
 * is the caller's settings with the SQL role service_role, which row level
 * security lets through: only for statements that carry the caller's Lua
 * row policy themselves (strata.rest's, unless conf rest_rls; see
 * request_bypass_settings).
 * rows is an array of tables keyed by column name; err is a table
 * {code = SQLSTATE, message, detail, hint} ({status = 503, ...} when the
 * database cannot be reached).  A request's pinned connection is given back
 * when the request ends, rolled back if still inside its transaction.
 * strata.db (lua/strata/db.lua) builds db.transaction on these. */
#include "lmod.h"

#include "lua_run.h"
#include "db/pool.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_KEY "strata.pool"

enum op_kind { OP_QUERY, OP_BEGIN, OP_COMMIT, OP_ROLLBACK };

/* Whose settings go with a statement. */
enum as_whom { AS_NONE, AS_CALLER, AS_SERVICE, AS_BYPASS };

/* The last one, `role`, is SET LOCAL ROLE: the statement runs as the API
 * role (sql/100_api_role_grants.sql). */
#define NSETTINGS REQ_NSETTINGS
/* Its row has no columns: echoing the values back (the headers, the token's
 * claims) cost libpq a result to parse per statement.  PostgreSQL keeps the
 * volatile set_config calls of an unread subquery. */
static const char SETTINGS_SQL[] =
    "select from (select set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true), "
    "set_config('request.jwt.claim.role', $3, true), set_config('request.method', $4, true), "
    "set_config('request.path', $5, true), set_config('request.headers', $6, true), "
    "set_config('role', $7, true)) s";

/* One call in flight.  A full userdata on the calling function's stack:
 * it lives exactly as long as the call, and so do the parameter strings
 * beside it. */
typedef struct pg_op {
    lua_run *run;
    pool *pool;
    pg_conn *conn;
    enum op_kind kind;
    pool_stmt stmts[2];   /* the settings (optional), then the statement */
    int nstmts;
    const char **values;  /* the statement's, then the settings' */
    int yielded;          /* the coroutine is suspended: resume it */
    int complete;         /* the answer is known */
    PGresult *result;     /* the answer, owned */
    pool_failure failure; /* or why there is none */
    int failure_status;
} pg_op;

/* What a request pinned: its transaction's connection. */
typedef struct pinned {
    pool *pool;
    pg_conn *conn;
} pinned;

static pinned *pin_of(lua_run *run)
{
    return lua_run_resource(run);
}

static void unpin(void *ptr)
{
    pinned *p = ptr;
    if (p->conn)
        pool_release(p->pool, p->conn); /* rolls back an open transaction */
    free(p);
}

/* Converts one text value of type oid.  [-0, +1, m] */
static void push_value(lua_State *L, Oid oid, const char *v, int len);

/* Parses a PostgreSQL array literal into a Lua array.  [-0, +1, m] */
static const char *push_array(lua_State *L, Oid elem, const char *s)
{
    lua_newtable(L);
    if (*s != '{')
        return s;
    s++;
    lua_Integer i = 0;
    luaL_Buffer b;
    while (*s && *s != '}') {
        if (*s == '{') {
            s = push_array(L, elem, s);
        } else {
            int quoted = *s == '"';
            luaL_buffinit(L, &b);
            if (quoted)
                s++;
            while (*s && (quoted ? *s != '"' : (*s != ',' && *s != '}'))) {
                if (*s == '\\' && s[1])
                    s++;
                luaL_addchar(&b, *s++);
            }
            if (quoted && *s == '"')
                s++;
            luaL_pushresult(&b); /* stack: array, text */
            size_t n;
            const char *t = lua_tolstring(L, -1, &n);
            if (!quoted && n == 4 && memcmp(t, "NULL", 4) == 0) {
                lua_pop(L, 1);
                lua_pushlightuserdata(L, NULL); /* cjson.null */
            } else {
                push_value(L, elem, t, (int)n);
                lua_remove(L, -2);
            }
        }
        lua_rawseti(L, -2, ++i);
        if (*s == ',')
            s++;
    }
    return *s == '}' ? s + 1 : s;
}

static Oid array_elem(Oid oid)
{
    switch (oid) {
    case 1000: return 16;   /* bool[] */
    case 1005: return 21;   /* int2[] */
    case 1007: return 23;   /* int4[] */
    case 1016: return 20;   /* int8[] */
    case 1021: return 700;  /* float4[] */
    case 1022: return 701;  /* float8[] */
    case 1231: return 1700; /* numeric[] */
    case 199: return 114;   /* json[] */
    case 3807: return 3802; /* jsonb[] */
    case 1009: case 1015: case 2951: case 1115: case 1185: case 1182: case 1183: case 1014:
        return 25;          /* text, varchar, uuid, timestamps, date, time, char: strings */
    default: return 0;
    }
}

static void push_value(lua_State *L, Oid oid, const char *v, int len)
{
    switch (oid) {
    case 16: /* bool */
        lua_pushboolean(L, v[0] == 't');
        return;
    case 20: case 21: case 23: /* int8, int2, int4 */
        if (!lua_stringtonumber(L, v))
            lua_pushlstring(L, v, (size_t)len);
        return;
    case 700: case 701: case 1700: { /* float4, float8, numeric: numbers (cast to text for exact) */
        if (!lua_stringtonumber(L, v))
            lua_pushlstring(L, v, (size_t)len); /* NaN, Infinity */
        else if (lua_isinteger(L, -1)) {
            lua_Number n = (lua_Number)lua_tointeger(L, -1);
            lua_pop(L, 1);
            lua_pushnumber(L, n);
        }
        return;
    }
    case 114: case 3802: /* json, jsonb */
        lmod_push_cjson(L, "decode");
        lua_pushlstring(L, v, (size_t)len);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* cannot happen for server JSON; keep the text */
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)len);
        }
        return;
    default:
        if (array_elem(oid)) {
            push_array(L, array_elem(oid), v);
            return;
        }
        lua_pushlstring(L, v, (size_t)len);
    }
}

/* rows, or nil + err.  [-0, +1|2, m] */
static int push_result(lua_State *L, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        int nrows = PQntuples(res), ncols = PQnfields(res);
        lua_createtable(L, nrows, 0);
        for (int r = 0; r < nrows; r++) {
            lua_createtable(L, 0, ncols);
            for (int c = 0; c < ncols; c++) {
                if (PQgetisnull(res, r, c))
                    lua_pushlightuserdata(L, NULL); /* cjson.null: survives encoding */
                else
                    push_value(L, PQftype(res, c), PQgetvalue(res, r, c), PQgetlength(res, r, c));
                lua_setfield(L, -2, PQfname(res, c));
            }
            lua_rawseti(L, -2, r + 1);
        }
        return 1;
    }
    luaL_pushfail(L);
    lua_createtable(L, 0, 4);
    const char *f;
    if ((f = PQresultErrorField(res, PG_DIAG_SQLSTATE))) {
        lua_pushstring(L, f);
        lua_setfield(L, -2, "code");
    }
    f = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    lua_pushstring(L, f ? f : PQresultErrorMessage(res));
    lua_setfield(L, -2, "message");
    if ((f = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL))) {
        lua_pushstring(L, f);
        lua_setfield(L, -2, "detail");
    }
    if ((f = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT))) {
        lua_pushstring(L, f);
        lua_setfield(L, -2, "hint");
    }
    return 2;
}

/* nil + {code, message, status}.  [-0, +2, m] */
static int push_failure(lua_State *L, const char *code, const char *message, int status)
{
    luaL_pushfail(L);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    if (status) {
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
    }
    return 2;
}

/* Pushes the op's answer and forgets the result.  [-0, +1|2, m] */
static int answer(lua_State *L, pg_op *op)
{
    if (op->result) {
        PGresult *res = op->result;
        op->result = NULL;
        int n = push_result(L, res);
        int ok = PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (ok && op->kind != OP_QUERY) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        return n;
    }
    switch (op->failure) {
    case POOL_TIMEOUT:
        return push_failure(L, "pool_timeout", "no database connection became free within db_wait_timeout_ms", 503);
    case POOL_QUEUE_FULL:
        return push_failure(L, "pool_queue_full", "too many requests are waiting for a database connection", 503);
    case POOL_UNAVAILABLE:
        return push_failure(L, "database_unavailable", "the database cannot be reached", 503);
    case POOL_LOST:
        return push_failure(L, "08006", "the connection to the database was lost", 503);
    case POOL_OK: /* not a failure: cannot be without a result */
    case POOL_CLOSING:
    case POOL_NO_MEMORY:
        break;
    }
    return push_failure(L, "unavailable", pool_strerror(op->failure), 503);
}

static void complete(pg_op *op)
{
    pinned *pin = pin_of(op->run);
    if (op->kind == OP_BEGIN && pin && !pin->conn)
        lua_run_set_resource(op->run, NULL, NULL); /* no transaction after all */
    op->complete = 1;
    if (op->yielded)
        lua_run_resume(op->run, 0); /* the continuation pushes the answer */
}

/* pool_result_fn: the answer to op.  A statement outside a transaction
 * ran on a shared connection (pool_submit: nothing to give back); one
 * inside ran on the request's pinned connection. */
static void on_result(void *arg, PGresult *res, pool_failure why)
{
    pg_op *op = arg;
    pinned *pin = pin_of(op->run);
    int pinned_conn = pin && op->conn && pin->conn == op->conn;
    if (!res) {
        op->failure = why;
        if (pinned_conn)
            pin->conn = NULL; /* gone with the connection */
    } else {
        op->result = res;
        int failed = PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK;
        int ends = op->kind == OP_COMMIT || op->kind == OP_ROLLBACK || (op->kind == OP_BEGIN && failed);
        if (pinned_conn && ends) {
            pin->conn = NULL;
            pool_release(op->pool, op->conn);
            if (op->kind != OP_BEGIN)
                lua_run_set_resource(op->run, NULL, NULL);
        }
    }
    op->conn = NULL;
    complete(op);
}

static void send_op(pg_op *op)
{
    if (pool_run(op->conn, op->stmts, op->nstmts, on_result, op) < 0) {
        pinned *pin = pin_of(op->run);
        if (pin && pin->conn == op->conn)
            pin->conn = NULL;
        pool_release(op->pool, op->conn); /* broken: the pool replaces it */
        op->conn = NULL;
        op->failure = POOL_LOST;
        complete(op);
    }
}

static void on_acquired(void *arg, pg_conn *c, pool_failure why)
{
    pg_op *op = arg;
    if (!c) {
        op->failure = why;
        complete(op);
        return;
    }
    op->conn = c;
    if (op->kind == OP_BEGIN) {
        pinned *pin = pin_of(op->run);
        pin->conn = c;
    }
    send_op(op);
}

/* Continuation after a resume: the answer is in the op.  [-0, +1|2, m] */
static int resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    pg_op *op = lua_touserdata(L, (int)ctx);
    return answer(L, op);
}

/* Starts op and suspends the caller until it completes.  [-0, +1|2, m] */
static int run_op(lua_State *L, pg_op *op, int op_index)
{
    pinned *pin = pin_of(op->run);
    if (pin && pin->conn) {
        op->conn = pin->conn;
        send_op(op);
    } else if (op->kind == OP_BEGIN) {
        pool_acquire(op->pool, on_acquired, op); /* a transaction needs a connection of its own */
    } else {
        pool_submit(op->pool, op->stmts, op->nstmts, on_result, op);
    }
    if (op->complete)
        return answer(L, op); /* failed at once: no need to yield */
    op->yielded = 1;
    return lua_run_yield(L, op->run, resumed, (lua_KContext)op_index);
}

/* The op userdata for the running request, room for nvalues parameter
 * values.  [-0, +1, m] */
static pg_op *new_op(lua_State *L, enum op_kind kind, int nvalues)
{
    lua_run *run = lua_run_current(L);
    if (!run)
        luaL_error(L, "strata.pg can only be used by a request's handler (not at load time, nor from a coroutine of its own)");
    lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY);
    pool *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!p)
        luaL_error(L, "strata.pg: no database in this Lua state");
    pg_op *op = lua_newuserdatauv(L, sizeof *op + (size_t)nvalues * sizeof(char *), 0);
    memset(op, 0, sizeof *op);
    op->run = run;
    op->pool = p;
    op->kind = kind;
    op->values = (const char **)(op + 1);
    return op;
}

static void add_stmt(pg_op *op, const char *sql, int nparams, const char **values)
{
    op->stmts[op->nstmts++] = (pool_stmt){sql, nparams, values};
}

/* Queues SETTINGS_SQL with the request's settings; the strings live in
 * the request, which outlives the call.  Raises when out of memory.
 * [-0, +0, v] */
static void add_settings(lua_State *L, pg_op *op, enum as_whom as, const char **values)
{
    request *r = lua_run_request(op->run);
    const char *const *set = as == AS_SERVICE  ? request_service_settings(r)
                             : as == AS_BYPASS ? request_bypass_settings(r)
                                               : request_settings(r);
    if (!set)
        luaL_error(L, "pg: out of memory building the request settings");
    for (int i = 0; i < NSETTINGS; i++)
        values[i] = set[i];
    add_stmt(op, SETTINGS_SQL, NSETTINGS, values);
}

/* Writes n in decimal; returns its length.  (snprintf costs more than the
 * rest of a parameter's conversion.) */
static size_t format_int(char *buf, long long n)
{
    char tmp[24];
    unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
    size_t len = 0;
    do {
        tmp[len++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (n < 0)
        buf[k++] = '-';
    while (len)
        buf[k++] = tmp[--len];
    buf[k] = '\0';
    return k;
}

/* Replaces the parameter at i by its text, as PostgreSQL reads it;
 * returns 0, or -1 for a string holding a NUL byte.  [-0, +0, e] */
static int convert_param(lua_State *L, int i)
{
    int t = lua_type(L, i);
    if (t == LUA_TTABLE) {
        lmod_push_cjson(L, "encode");
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        lua_replace(L, i);
    } else if (t == LUA_TBOOLEAN) {
        lua_pushstring(L, lua_toboolean(L, i) ? "true" : "false");
        lua_replace(L, i);
    } else if (t == LUA_TNUMBER) {
        char num[64];
        size_t len;
        if (lua_isinteger(L, i))
            len = format_int(num, (long long)lua_tointeger(L, i));
        else
            len = (size_t)snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, i));
        lua_pushlstring(L, num, len);
        lua_replace(L, i);
    } else if (t != LUA_TSTRING && t != LUA_TNIL && !(t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, i))) {
        return luaL_argerror(L, i, "parameters must be nil, booleans, numbers, strings or tables");
    }
    if (lua_type(L, i) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        if (strlen(s) != len)
            return -1;
    }
    return 0;
}

/* The statement at sql_idx with the parameters after it, preceded by the
 * settings of `as`, unless a transaction already set them.  [-0, +1|2, e] */
static int query(lua_State *L, int sql_idx, enum as_whom as)
{
    const char *sql = luaL_checkstring(L, sql_idx);
    int top = lua_gettop(L);
    int n = top - sql_idx;
    if (n > 1000)
        return luaL_error(L, "pg.query: too many parameters (%d)", n);
    /* The converted strings stay on this frame's stack, alive until the
     * call returns. */
    for (int i = sql_idx + 1; i <= top; i++)
        if (convert_param(L, i) < 0)
            return push_failure(L, "22021", lua_pushfstring(L, "parameter $%d contains a NUL byte", i - sql_idx), 0);
    lua_run *run = lua_run_current(L);
    if (as != AS_NONE && run && pin_of(run))
        as = AS_NONE; /* begin set them for the whole transaction */
    pg_op *op = new_op(L, OP_QUERY, n + (as != AS_NONE ? NSETTINGS : 0));
    for (int i = 0; i < n; i++)
        op->values[i] = lua_type(L, sql_idx + 1 + i) == LUA_TSTRING ? lua_tostring(L, sql_idx + 1 + i) : NULL;
    if (as != AS_NONE)
        add_settings(L, op, as, op->values + n);
    add_stmt(op, sql, n, op->values);
    return run_op(L, op, lua_gettop(L));
}

/* pg.query(sql, ...) -> rows | nil, err.  [-(1+n), +1|2, e] */
static int l_query(lua_State *L)
{
    return query(L, 1, AS_NONE);
}

/* pg.caller_query(sql, ...) -> rows | nil, err.  [-(1+n), +1|2, e] */
static int l_caller_query(lua_State *L)
{
    return query(L, 1, AS_CALLER);
}

/* pg.service_query(sql, ...) -> rows | nil, err.  [-(1+n), +1|2, e] */
static int l_service_query(lua_State *L)
{
    return query(L, 1, AS_SERVICE);
}

/* pg.bypass_query(sql, ...) -> rows | nil, err.  [-(1+n), +1|2, e] */
static int l_bypass_query(lua_State *L)
{
    return query(L, 1, AS_BYPASS);
}

/* pg.begin([as]) -> true | nil, err.  [-(0|1), +1|2, e] */
static int l_begin(lua_State *L)
{
    enum as_whom as = AS_NONE;
    if (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "service") == 0)
        as = AS_SERVICE;
    else if (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "bypass") == 0)
        as = AS_BYPASS;
    else if (lua_type(L, 1) == LUA_TSTRING)
        return luaL_argerror(L, 1, "true, nil, \"service\" or \"bypass\"");
    else if (lua_toboolean(L, 1))
        as = AS_CALLER;
    pg_op *op = new_op(L, OP_BEGIN, as != AS_NONE ? NSETTINGS : 0);
    if (pin_of(op->run))
        return luaL_error(L, "pg.begin: this request is already inside a transaction");
    add_stmt(op, "BEGIN", 0, NULL);
    if (as != AS_NONE)
        add_settings(L, op, as, op->values);
    pinned *pin = calloc(1, sizeof *pin);
    if (!pin)
        return luaL_error(L, "pg.begin: out of memory");
    pin->pool = op->pool;
    lua_run_set_resource(op->run, pin, unpin);
    return run_op(L, op, lua_gettop(L));
}

/* Ends the request's transaction with sql.  [-0, +1|2, e] */
static int finish_tx(lua_State *L, enum op_kind kind, const char *sql)
{
    pg_op *op = new_op(L, kind, 0);
    pinned *pin = pin_of(op->run);
    if (!pin)
        return luaL_error(L, "pg.%s: no transaction to end", kind == OP_COMMIT ? "commit" : "rollback");
    if (!pin->conn) {
        lua_run_set_resource(op->run, NULL, NULL); /* frees pin */
        return push_failure(L, "08006", "the connection to the database was lost", 503);
    }
    add_stmt(op, sql, 0, NULL);
    return run_op(L, op, lua_gettop(L));
}

static int l_commit(lua_State *L) { return finish_tx(L, OP_COMMIT, "COMMIT"); }
static int l_rollback(lua_State *L) { return finish_tx(L, OP_ROLLBACK, "ROLLBACK"); }

/* pg.in_transaction() -> boolean.  [-0, +1, -] */
static int l_in_transaction(lua_State *L)
{
    lua_run *run = lua_run_current(L);
    pinned *pin = run ? pin_of(run) : NULL;
    lua_pushboolean(L, pin && pin->conn);
    return 1;
}

static const luaL_Reg FUNCS[] = {
    {"begin", l_begin},
    {"caller_query", l_caller_query},
    {"commit", l_commit},
    {"in_transaction", l_in_transaction},
    {"query", l_query},
    {"rollback", l_rollback},
    {"service_query", l_service_query},
    {"bypass_query", l_bypass_query},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_pg(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
