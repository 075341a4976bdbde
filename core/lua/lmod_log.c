/* lmod_log.c: strata.log, the server log and the log tables for scripts.
 *   log.debug|info|warn|error(msg[, fields]) -> nothing
 *       fields (a table) is encoded with cjson and merged into the line as
 *       "fields":{...}.  Adapts log.h.
 *   log.enqueue(table, row) -> id | nil, err
 *       queues one row of error_logs, user_activity_logs,
 *       agent_activity_logs or usage_logs (encoded with cjson) for the
 *       batched writer (log_db.h); err "dropped" past log_queue_max,
 *       "unavailable" outside a server.  The raw channel: scripts use
 *       strata.activity, which applies logging_settings first.
 *   log.settings() -> json, version | nil
 *       logging_settings as the writer last read them, and a number that
 *       moves when they change.
 *   log.settings_version() -> integer
 *   log.flags() -> {anonymize_ip, log_user_agent, error_enabled}
 *   log.anonymize_ip(addr) -> text   IPv4 to /24, IPv6 to /48 (accesslog.h)
 *   log.hash(text) -> hex
 *       HMAC-SHA256 keyed with conf log_hash_key (else the JWT secret):
 *       hash_email's keyed hash.
 *   log.correlation_id(request_id) -> uuid text
 *       the request id when it is a uuid (or strata's 32 hex digits),
 *       else a uuid derived from its keyed hash.
 *   log.row(table, fields, need_user[, key, value]...) -> id | nil, reason
 *       strata.activity's channel, after the rules said yes: builds the
 *       row in C from fields (any column; metadata / details go to the
 *       table's JSON column; id is the queue's), then the key/value pairs
 *       (the rule's columns, overriding fields), then what the request
 *       being served gives and fields did not (user_id, correlation_id,
 *       and for error_logs and user_activity_logs request_path,
 *       request_method, ip_address, user_agent; error_logs'
 *       error_details.request_id), and applies the privacy settings the
 *       writer read: anonymize_ip, log_user_agent, hash_email (e-mail
 *       addresses in the JSON column and error_message), keys holding
 *       secrets dropped from the JSON column at any depth,
 *       exclude_sensitive_paths.  Encoded once, queued.  Reasons:
 *       "excluded_path", "no_user" (need_user and no user id),
 *       "no_correlation_id", "dropped", "unavailable".
 * The writer comes from the registry key "strata.log_db". */
#include "lmod.h"

#include "lua_run.h"

#include "base/buf.h"
#include "base/conf.h"
#include "db/log_db.h"
#include "obs/accesslog.h"
#include "obs/log.h"

#include <lauxlib.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 16       /* nesting of a JSON column's value */
#define SCRATCH_KEEP 65536 /* the scratch buffer keeps this much between calls */

/* Writes one line at `level`.  [-(1|2), +0, e] */
static int emit(lua_State *L, const char *level)
{
    const char *msg = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2)) {
        log_event(level, msg, NULL);
        return 0;
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lmod_push_cjson(L, "encode");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);               /* stack: msg, fields, json */
    size_t n;
    const char *json = lua_tolstring(L, -1, &n);
    buf b = {0};
    if (buf_add_str(&b, "\"fields\":") == 0 && buf_add(&b, json, n) == 0 && buf_add(&b, "", 1) == 0)
        log_event(level, msg, b.p);
    buf_free(&b);
    return 0;
}

static log_db *writer(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.log_db");
    log_db *d = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return d;
}

/* The writer kept in upvalue `up` once found, for the functions called
 * per request (log.row, log.settings_version): the worker sets it once per
 * state (after the boot) and never changes it, and a registry lookup by
 * name costs ~170 instructions.  [-0, +0, -] */
static log_db *cached_writer(lua_State *L, int up)
{
    log_db *d = lua_touserdata(L, lua_upvalueindex(up));
    if (!d && (d = writer(L))) {
        lua_pushlightuserdata(L, d);
        lua_replace(L, lua_upvalueindex(up));
    }
    return d;
}

/* Pushes fail, reason.  [-0, +2, m] */
static int fail(lua_State *L, const char *reason)
{
    luaL_pushfail(L);
    lua_pushstring(L, reason);
    return 2;
}

/* log.enqueue(table, row) -> id | nil, err.  [-2, +1|2, e] */
static int l_enqueue(lua_State *L)
{
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    int table = log_db_table_index(name, n);
    if (table < 0)
        return luaL_argerror(L, 1, "not a log table");
    luaL_checktype(L, 2, LUA_TTABLE);
    log_db *d = writer(L);
    if (!d) {
        luaL_pushfail(L);
        lua_pushliteral(L, "unavailable");
        return 2;
    }
    lmod_push_cjson(L, "encode");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);               /* stack: table, row, json */
    size_t len;
    const char *json = lua_tolstring(L, -1, &len);
    char id[37];
    if (!json || log_db_push(d, table, json, len, id) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "dropped");
        return 2;
    }
    lua_pushstring(L, id);
    return 1;
}

/* log.settings() -> json, version | nil.  [-0, +1|2, m] */
static int l_settings(lua_State *L)
{
    log_db *d = writer(L);
    buf b = {0};
    uint64_t version = 0;
    if (!d || log_db_settings_json(d, &b, &version) < 0) {
        buf_free(&b);
        luaL_pushfail(L);
        return 1;
    }
    lua_pushlstring(L, b.p, b.len);
    buf_free(&b);
    lua_pushinteger(L, (lua_Integer)version);
    return 2;
}

/* log.settings_version() -> integer; upvalue 1: the writer.  [-0, +1, -] */
static int l_settings_version(lua_State *L)
{
    log_db *d = cached_writer(L, 1);
    lua_pushinteger(L, d ? (lua_Integer)log_db_settings_version(d) : 0);
    return 1;
}

/* log.flags() -> table.  [-0, +1, m] */
static int l_flags(lua_State *L)
{
    log_db *d = writer(L);
    log_flags f = {.error_enabled = 1, .log_user_agent = 1};
    if (d)
        log_db_flags(d, &f);
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, f.anonymize_ip);
    lua_setfield(L, -2, "anonymize_ip");
    lua_pushboolean(L, f.log_user_agent);
    lua_setfield(L, -2, "log_user_agent");
    lua_pushboolean(L, f.error_enabled);
    lua_setfield(L, -2, "error_enabled");
    return 1;
}

/* log.anonymize_ip(addr) -> text ("" when not an address).  [-1, +1, e] */
static int l_anonymize_ip(lua_State *L)
{
    char out[64];
    accesslog_anonymize_ip(luaL_checkstring(L, 1), out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

/* HMAC-SHA256 of text as hex into out (65 bytes); -1 when it failed. */
static int hmac_hex(lua_State *L, const char *text, size_t n, char out[65])
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *conf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    const char *key = conf ? (conf->log_hash_key ? conf->log_hash_key : conf->jwt_secret) : NULL;
    if (!key)
        key = "";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)text, n, mac, &len) || len != 32)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* log.hash(text) -> hex.  [-1, +1, e] */
static int l_hash(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    char out[65];
    if (hmac_hex(L, text, n, out) < 0)
        return luaL_error(L, "strata.log.hash: HMAC failed");
    lua_pushlstring(L, out, 64);
    return 1;
}

/* Hex digits in lower case by byte; 0 for the others. */
static const char HEX_LOW[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6', ['7'] = '7',
    ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f',
    ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
};

/* The correlation id of request id `id`: itself when it is a uuid (lower
 * case) or 32 hex digits (strata's own ids), else a uuid made of its keyed
 * hash, so the rows of one request share one id.  -1 when hashing failed. */
static int correlation_id(lua_State *L, const char *id, char out[37])
{
    size_t n = strnlen(id, 37);
    char hex[33];
    int ok = n == 32 || (n == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
    if (ok) {
        /* the four groups of a uuid's text, or 32 digits as they are */
        static const unsigned char FROM36[32] = {0,  1,  2,  3,  4,  5,  6,  7,  9,  10, 11, 12, 14, 15, 16, 17,
                                                 19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
        unsigned char bad = 0;
        if (n == 32) {
            for (int i = 0; i < 32; i++)
                bad |= (hex[i] = HEX_LOW[(unsigned char)id[i]]) == 0;
        } else {
            for (int i = 0; i < 32; i++)
                bad |= (hex[i] = HEX_LOW[(unsigned char)id[FROM36[i]]]) == 0;
        }
        ok = !bad;
    }
    if (!ok) {
        char salted[96], mac[65];
        int m = snprintf(salted, sizeof salted, "correlation:%s", id);
        if (m < 0 || (size_t)m >= sizeof salted || hmac_hex(L, salted, (size_t)m, mac) < 0)
            return -1;
        memcpy(hex, mac, 32);
        hex[12] = '4';
        hex[16] = '8';
    }
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
    return 0;
}

/* log.correlation_id(request_id) -> uuid text | nil.  [-1, +1, e] */
static int l_correlation_id(lua_State *L)
{
    char out[37];
    if (correlation_id(L, luaL_checkstring(L, 1), out) < 0) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushstring(L, out);
    return 1;
}

/* ---- log.row: one row built in C ---- */

/* The JSON column fields.metadata / fields.details go to, per table. */
static const char *const META[LOG_NTABLES] = {"error_details", "activity_metadata", "operation_metadata",
                                              "metadata"};

/* What the request being served gives each table. */
enum { FROM_CLIENT = 1, FROM_CORRELATION = 2, FROM_REQUEST_ID = 4 };
static const int FROM[LOG_NTABLES] = {FROM_CLIENT | FROM_REQUEST_ID, FROM_CLIENT | FROM_CORRELATION,
                                      FROM_CORRELATION, 0};

/* The request columns, as bits of what fields or the pairs gave. */
enum { C_USER = 1, C_PATH = 2, C_METHOD = 4, C_IP = 8, C_UA = 16, C_CORRELATION = 32 };
#define COL(name) {name, sizeof name - 1}
static const struct {
    const char *name;
    size_t len;
} REQ_COLS[] = {COL("user_id"), COL("request_path"), COL("request_method"), COL("ip_address"), COL("user_agent"),
                COL("correlation_id")};
#undef COL

typedef struct row_enc {
    lua_State *L;
    buf *b;
    int hash_email;
    const char *bad;   /* the type that could not be encoded, or NULL */
} row_enc;

static int req_col(const char *k, size_t n)
{
    for (int i = 0; i < 6; i++)
        if (REQ_COLS[i].len == n && memcmp(REQ_COLS[i].name, k, n) == 0)
            return 1 << i;
    return 0;
}

/* A key whose value is a secret (password, token, api key, ...): dropped. */
static int secret_key(const char *k, size_t n)
{
    static const char *const PARTS[] = {"password", "passwd", "secret", "token", "apikey", "api_key", "api-key",
                                        "authorization", "cookie", "privatekey", "private_key", "private-key"};
    char low[128];
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof PARTS / sizeof *PARTS; i++)
        if (strstr(low, PARTS[i]))
            return 1;
    return strcmp(low, "body") == 0 || (n >= 5 && strcmp(low + n - 5, "_body") == 0);
}

/* 1 for "local@domain.tld": no space, one '@', a '.' inside the domain. */
static int is_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s)
        return 0;
    size_t dom = n - (size_t)(at - s) - 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v' ||
            (s[i] == '@' && s + i != at))
            return 0;
    for (size_t i = 1; i + 1 < dom; i++)
        if (at[1 + i] == '.')
            return 1;
    return 0;
}

/* 1 when none of the 8 bytes at s needs escaping in a JSON string (a
 * control character, '"' or '\\'). */
static int plain8(const char *s)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t v, q, bs;
    memcpy(&v, s, 8);
    q = v ^ (ones * '"');
    bs = v ^ (ones * '\\');
    /* (x - ones * k) & ~x & high is not 0 iff a byte of x is below k
     * (k <= 0x80): a control character, or a '"' or '\\' (a zero byte of
     * q or bs). */
    return !((((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high);
}

/* The length of s's prefix that needs no escaping, eight bytes at a time:
 * a byte-wise loop cost ~11 instructions a byte, the most of a row's
 * encoding. */
static size_t plain_prefix(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!plain8(s + i))
            break;
    /* the last bytes as the last eight, again in part */
    if (i < n && i + 8 > n && n >= 8 && plain8(s + n - 8))
        return n;
    /* which byte, or a string shorter than eight */
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Room for n more bytes: the common case is a comparison, not a call. */
static inline int room(buf *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : buf_reserve(b, n);
}

/* Appends '"', s (n bytes, needing no escape) then tail (m bytes). */
static int add_quoted_plain(buf *b, const char *s, size_t n, const char *tail, size_t m)
{
    if (room(b, n + 1 + m) < 0)
        return -1;
    char *p = b->p + b->len;
    *p = '"';
    memcpy(p + 1, s, n);
    for (size_t i = 0; i < m; i++)
        p[1 + n + i] = tail[i];
    b->len += 1 + n + m;
    return 0;
}

/* Appends '"', s (n bytes) then tail (m bytes, at most a few), s escaped
 * as inside a JSON string only when it needs it: most values are copied
 * at once, and the quotes and tail without a call each. */
static int add_quoted(buf *b, const char *s, size_t n, const char *tail, size_t m)
{
    if (room(b, n + 1 + m) < 0)
        return -1;
    if (plain_prefix(s, n) < n) {
        b->p[b->len++] = '"';
        return buf_add_json_escaped(b, s, n) || buf_add(b, tail, m) ? -1 : 0;
    }
    return add_quoted_plain(b, s, n, tail, m);
}

/* A ',' unless the row (or object) holds only its '{'. */
static int add_comma(buf *b)
{
    if (b->len <= 1)
        return 0;
    if (room(b, 1) < 0)
        return -1;
    b->p[b->len++] = ',';
    return 0;
}

static int add_string(row_enc *e, const char *s, size_t n, int scrub)
{
    if (scrub && e->hash_email && is_email(s, n)) {
        char low[320], mac[65];
        if (n >= sizeof low)
            n = sizeof low - 1; /* longer than an address may be */
        for (size_t i = 0; i < n; i++)
            low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        if (hmac_hex(e->L, low, n, mac) < 0)
            return -1;
        return buf_add_str(e->b, "\"hmac-sha256:") || buf_add(e->b, mac, 64) || buf_add(e->b, "\"", 1) ? -1 : 0;
    }
    return add_quoted(e->b, s, n, "\"", 1);
}

static int add_value(row_enc *e, int idx, int scrub, int depth);

/* The table at idx as a JSON array (keys 1..n) or object; with scrub,
 * secret keys left out and e-mails hashed.  extra: one more member
 * ("name":"value") for an object, or NULL. */
static int add_table(row_enc *e, int idx, int scrub, int depth, const char *extra_key, const char *extra)
{
    lua_State *L = e->L;
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4)) {
        e->bad = "table nested too deep";
        return -1;
    }
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    size_t n = lua_rawlen(L, idx), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {  /* stack: key, value */
        keys++;
        lua_pop(L, 1);
    }
    int array = n > 0 && keys == n;
    int rc = buf_add(e->b, array ? "[" : "{", 1), first = 1;
    if (array) {
        for (size_t i = 1; i <= n && rc == 0; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            rc |= (i > 1 && buf_add(e->b, ",", 1)) || add_value(e, -1, scrub, depth + 1) ? -1 : 0;
            lua_settop(L, top);
        }
        return rc | buf_add(e->b, "]", 1);
    }
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, idx)) {  /* stack: key, value */
        char num[32];
        const char *k = NULL;
        size_t kn = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tolstring(L, -2, &kn);
        } else if (lua_isinteger(L, -2)) {
            kn = (size_t)snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -2));
            k = num;
        }
        if (k && !(scrub && secret_key(k, kn))) {
            rc |= (!first && buf_add(e->b, ",", 1)) || add_string(e, k, kn, 0) || buf_add(e->b, ":", 1) ? -1 : 0;
            rc |= add_value(e, -1, scrub, depth + 1);
            first = 0;
        }
        lua_pop(L, 1);
    }
    if (rc == 0 && extra) {
        rc |= (!first && buf_add(e->b, ",", 1)) || add_string(e, extra_key, strlen(extra_key), 0) ? -1 : 0;
        rc |= buf_add(e->b, ":", 1) || add_string(e, extra, strlen(extra), 0) ? -1 : 0;
    }
    lua_settop(L, top); /* a failure left the loop's key */
    return rc | buf_add(e->b, "}", 1);
}

/* The value at idx as JSON (cjson's forms; cjson.null is null). */
static int add_value(row_enc *e, int idx, int scrub, int depth)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return add_string(e, s, n, scrub);
    }
    case LUA_TNUMBER: {
        char num[48];
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double v = lua_tonumber(L, idx);
            if (!isfinite(v))
                return buf_add_str(e->b, "null");
            snprintf(num, sizeof num, "%.14g", v);
        }
        return buf_add_str(e->b, num);
    }
    case LUA_TBOOLEAN:
        return buf_add_str(e->b, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TTABLE:
        return add_table(e, idx, scrub, depth, NULL, NULL);
    case LUA_TLIGHTUSERDATA:
    case LUA_TNIL:
        return buf_add_str(e->b, "null");
    default:
        e->bad = lua_typename(L, lua_type(L, idx));
        return -1;
    }
}

/* "name": then the value at idx. */
static int add_member(row_enc *e, const char *name, size_t n, int idx, int scrub)
{
    /* || and not |: the order matters */
    return add_comma(e->b) || add_quoted(e->b, name, n, "\":", 2) || add_value(e, idx, scrub, 0) ? -1 : 0;
}

/* ,"name":"v" at the top level; name is one of strata's column names. */
static int add_text(row_enc *e, const char *name, const char *v, size_t n)
{
    return add_comma(e->b) || add_quoted_plain(e->b, name, strlen(name), "\":", 2) ||
                   add_quoted(e->b, v, n, "\"", 1)
               ? -1
               : 0;
}

/* add_text for a value strata made that needs no escaping (hex digits,
 * an address from inet_ntop): not scanned. */
static int add_text_plain(row_enc *e, const char *name, const char *v, size_t n)
{
    return add_comma(e->b) || add_quoted_plain(e->b, name, strlen(name), "\":", 2) ||
                   add_quoted_plain(e->b, v, n, "\"", 1)
               ? -1
               : 0;
}

/* 1 when the string k is one of the pairs' keys (stack from..top). */
static int in_pairs(lua_State *L, int from, int top, const char *k, size_t n)
{
    for (int i = from; i < top; i += 2) {
        size_t m;
        const char *p = lua_tolstring(L, i, &m);
        if (p && m == n && memcmp(p, k, n) == 0)
            return 1;
    }
    return 0;
}

/* The JSON column's value at idx; error_logs' (request_id set) is an
 * object holding the request id. */
static int add_meta(row_enc *e, int table, int idx, const char *request_id)
{
    lua_State *L = e->L;
    const char *name = META[table];
    int rc = buf_add(e->b, e->b->len > 1 ? "," : "", e->b->len > 1) || add_string(e, name, strlen(name), 0) ? -1 : 0;
    rc |= buf_add(e->b, ":", 1);
    if (lua_type(L, idx) == LUA_TTABLE) {
        int has_id = 0;
        if (request_id) {
            lua_pushliteral(L, "request_id");
            has_id = lua_rawget(L, idx < 0 ? idx - 1 : idx) != LUA_TNIL;
            lua_pop(L, 1);
        }
        return rc | add_table(e, idx, 1, 0, "request_id", has_id ? NULL : request_id);
    }
    if (request_id)
        return rc || buf_add_str(e->b, "{\"request_id\":") || add_string(e, request_id, strlen(request_id), 0) ||
                       buf_add(e->b, "}", 1)
                   ? -1
                   : 0;
    return rc | add_value(e, idx, 1, 0);
}

/* Appends the members of fields (stack index 2) but id, the stamp and
 * the pairs' keys (from stack index 4), under the privacy flags; sets the
 * bits of the request columns fields gave in *given. */
static int add_fields(row_enc *e, int table, const log_flags *f, const char *request_id, int *given)
{
    lua_State *L = e->L;
    int top = lua_gettop(L), rc = 0, meta_done = 0;
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, 2)) {  /* stack: ..., key, value */
        size_t n = 0;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &n) : NULL;
        int col = k ? req_col(k, n) : 0;
        int meta = k && (strcmp(k, "metadata") == 0 || strcmp(k, "details") == 0 || strcmp(k, META[table]) == 0);
        int skip = !k || strcmp(k, "id") == 0 || strcmp(k, log_db_stamp_column(table)) == 0 || in_pairs(L, 4, top, k, n) ||
                   (meta && meta_done);
        if (!skip)
            *given |= col;
        if (skip || (col == C_UA && !f->log_user_agent)) {
            /* left out */
        } else if (meta) {
            rc |= add_meta(e, table, -1, request_id);
            meta_done = 1;
        } else if (col == C_IP && f->anonymize_ip && lua_type(L, -1) == LUA_TSTRING) {
            char ip[64];
            accesslog_anonymize_ip(lua_tostring(L, -1), ip, sizeof ip);
            rc |= add_text(e, k, ip, strlen(ip));
        } else {
            rc |= add_member(e, k, n, -1, strcmp(k, "error_message") == 0);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (rc == 0 && request_id && !meta_done) {
        lua_pushnil(L);
        rc |= add_meta(e, table, -1, request_id);
        lua_pop(L, 1);
    }
    return rc;
}

/* The request columns fields did not give, from r, under the flags. */
static int add_request(row_enc *e, lua_State *L, int table, const request *r, const log_flags *f, int given)
{
    int rc = 0;
    if (!(given & C_USER) && r->claims.uid[0])
        rc |= add_text(e, "user_id", r->claims.uid, strlen(r->claims.uid));
    if (FROM[table] & FROM_CORRELATION && !(given & C_CORRELATION)) {
        char cid[37];
        if (correlation_id(L, r->id, cid) < 0)
            return -1;
        rc |= add_text_plain(e, "correlation_id", cid, 36);
    }
    if (!(FROM[table] & FROM_CLIENT))
        return rc;
    if (!(given & C_PATH))
        rc |= add_text(e, "request_path", r->http.path.p, r->http.path.n > 500 ? 500 : r->http.path.n);
    if (!(given & C_METHOD))
        rc |= add_text(e, "request_method", r->http.method.p, r->http.method.n > 10 ? 10 : r->http.method.n);
    if (!(given & C_IP) && r->remote[0]) {
        char anon[64];
        const char *ip = r->remote;
        if (f->anonymize_ip) {
            accesslog_anonymize_ip(r->remote, anon, sizeof anon);
            ip = anon;
        }
        rc |= add_text_plain(e, "ip_address", ip, strlen(ip)); /* inet_ntop's text */
    }
    const http_header *ua = !(given & C_UA) && f->log_user_agent ? http_find_header(&r->http, "user-agent") : NULL;
    if (ua)
        rc |= add_text(e, "user_agent", ua->value.p, ua->value.n);
    return rc;
}

/* 1 when fields (stack index 2) or the pairs give a non-nil `name`. */
static int given_field(lua_State *L, const char *name)
{
    int has = lua_getfield(L, 2, name) != LUA_TNIL; /* a plain table: no metamethod */
    lua_pop(L, 1);
    return has || in_pairs(L, 4, lua_gettop(L), name, strlen(name));
}

/* log.row(table, fields, need_user[, key, value]...) -> id | nil, reason.
 * [-(3+2k), +1|2, m] */
static int l_row(lua_State *L)
{
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    int table = log_db_table_index(name, n);
    if (table < 0)
        return luaL_argerror(L, 1, "not a log table");
    luaL_checktype(L, 2, LUA_TTABLE);
    int need_user = lua_toboolean(L, 3);
    int top = lua_gettop(L);
    if (top > 3 && (top - 3) % 2)
        return luaL_error(L, "strata.log.row: the columns after need_user come in key, value pairs");
    for (int i = 4; i < top; i += 2)
        luaL_checktype(L, i, LUA_TSTRING);
    log_db *d = cached_writer(L, 2);
    if (!d)
        return fail(L, "unavailable");
    lua_run *run = lua_run_current(L);
    const request *r = run ? lua_run_request(run) : NULL;
    log_flags f;
    log_db_flags(d, &f);
    if (FROM[table] & FROM_CLIENT) {
        lua_getfield(L, 2, "request_path");
        size_t pn = 0;
        const char *path = lua_tolstring(L, -1, &pn);
        if (!path && r) {
            path = r->http.path.p;
            pn = r->http.path.n;
        }
        int excluded = path && log_db_path_excluded(d, path, pn);
        lua_pop(L, 1);
        if (excluded)
            return fail(L, "excluded_path");
    }
    if (need_user && !(r && r->claims.uid[0]) && !given_field(L, "user_id"))
        return fail(L, "no_user");
    if (FROM[table] & FROM_CORRELATION && !r && !given_field(L, "correlation_id"))
        return fail(L, "no_correlation_id");
    buf *b = lua_touserdata(L, lua_upvalueindex(1));
    b->len = 0;
    row_enc e = {.L = L, .b = b, .hash_email = f.hash_email};
    int given = 0;
    int rc = buf_add(b, "{", 1);
    rc |= add_fields(&e, table, &f, r && FROM[table] & FROM_REQUEST_ID ? r->id : NULL, &given);
    for (int i = 4; i < top && rc == 0; i += 2) {
        if (lua_isnil(L, i + 1))
            continue;
        size_t kn;
        const char *k = lua_tolstring(L, i, &kn);
        given |= req_col(k, kn);
        rc |= add_member(&e, k, kn, i + 1, 0);
    }
    if (rc == 0 && r)
        rc |= add_request(&e, L, table, r, &f, given);
    rc |= buf_add(b, "}", 1);
    lua_settop(L, top);
    char id[37];
    int pushed = rc == 0 && log_db_push(d, table, b->p, b->len, id) == 0;
    buf_shrink(b, SCRATCH_KEEP);
    if (e.bad)
        return luaL_error(L, "strata.log.row: cannot log a %s", e.bad);
    if (!pushed)
        return fail(L, "dropped");
    lua_pushlstring(L, id, 36);
    return 1;
}

/* The scratch buffer's __gc.  [-0, +0, -] */
static int scratch_gc(lua_State *L)
{
    buf_free(lua_touserdata(L, 1));
    return 0;
}

/* Pushes log.row, a closure over its scratch buffer (a userdata freed
 * with the state) and the writer (nil until found).  [-0, +1, m] */
static void push_row_function(lua_State *L)
{
    buf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);  /* stack: scratch */
    lua_pushnil(L);
    lua_pushcclosure(L, l_row, 2);
}

static int l_debug(lua_State *L) { return emit(L, "debug"); }
static int l_error(lua_State *L) { return emit(L, "error"); }
static int l_info(lua_State *L) { return emit(L, "info"); }
static int l_warn(lua_State *L) { return emit(L, "warn"); }

static const luaL_Reg FUNCS[] = {
    {"anonymize_ip", l_anonymize_ip},
    {"correlation_id", l_correlation_id},
    {"debug", l_debug},
    {"enqueue", l_enqueue},
    {"error", l_error},
    {"flags", l_flags},
    {"hash", l_hash},
    {"info", l_info},
    {"settings", l_settings},
    {"warn", l_warn},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_log(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    push_row_function(L);
    lua_setfield(L, -2, "row");
    lua_pushnil(L);
    lua_pushcclosure(L, l_settings_version, 1);
    lua_setfield(L, -2, "settings_version");
    return 1;
}
