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
 * The writer comes from the registry key "strata.log_db". */
#include "lmod.h"

#include "base/buf.h"
#include "base/conf.h"
#include "db/log_db.h"
#include "obs/accesslog.h"
#include "obs/log.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

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

/* log.settings_version() -> integer.  [-0, +1, -] */
static int l_settings_version(lua_State *L)
{
    log_db *d = writer(L);
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

/* log.hash(text) -> hex.  [-1, +1, e] */
static int l_hash(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *conf = lua_touserdata(L, -1);
    lua_pop(L, 1);
    const char *key = conf ? (conf->log_hash_key ? conf->log_hash_key : conf->jwt_secret) : NULL;
    if (!key)
        key = "";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)text, n, mac, &len))
        return luaL_error(L, "strata.log.hash: HMAC failed");
    static const char hex[] = "0123456789abcdef";
    char out[2 * EVP_MAX_MD_SIZE];
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)len);
    return 1;
}

static int l_debug(lua_State *L) { return emit(L, "debug"); }
static int l_error(lua_State *L) { return emit(L, "error"); }
static int l_info(lua_State *L) { return emit(L, "info"); }
static int l_warn(lua_State *L) { return emit(L, "warn"); }

static const luaL_Reg FUNCS[] = {
    {"anonymize_ip", l_anonymize_ip},
    {"debug", l_debug},
    {"enqueue", l_enqueue},
    {"error", l_error},
    {"flags", l_flags},
    {"hash", l_hash},
    {"info", l_info},
    {"settings", l_settings},
    {"settings_version", l_settings_version},
    {"warn", l_warn},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_log(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
