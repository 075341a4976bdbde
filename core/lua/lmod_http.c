/* lmod_http.c: strata.httpc, the C half of strata.http (lua/strata/http.lua
 * adds request() on top and re-exports the rest):
 *   url_decode(s[, plus_is_space]) -> string | nil, err
 *   url_encode(s) -> string   (RFC 3986 unreserved kept)
 *   reason(status) -> string ("Not Found")
 *   start(opts) -> transfer | nil, err     starts an outbound transfer
 *   wait(transfer) -> "chunk", bytes | "done", status, headers, body
 *                   | "error", {code, message}   suspends the handler until one
 *   cancel(key) -> boolean      stops the transfers started with
 *                   opts.cancel_key = key, on every worker of the process:
 *                   this worker's at once (true when there was one), the
 *                   others' within about a second (each such transfer
 *                   looks at the cancelled keys once a second);
 *                   a transfer started later with that key is refused
 *   cancelled(key) -> boolean   cancel(key) was called (lately: the last
 *                   CANCEL_RING keys are remembered)
 * A transfer is closed (and stopped if running) by its __close/__gc.
 * request() loops on wait() in Lua, so that on_chunk runs in the handler's
 * coroutine and may itself wait (res.sse, db queries).  Adapts http.h and
 * the worker's outbound client (http/client.h). */
#include "lmod.h"

#include "lua_run.h"

#include "http/client.h"
#include "http/http.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CLIENT_KEY "strata.http_client"
#define BASE_KEY "strata.event_base"
#define TRANSFER_META "strata.http.transfer"
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BYTES (16 * 1024 * 1024)
#define MAX_REQUEST_HEADERS 100
#define KEYS_KEY "strata.http.keys" /* registry: cancel key -> transfer (weak values) */
#define CANCEL_RING 256             /* cancelled keys remembered, process-wide */
#define CANCEL_KEY_MAX 96

/* The cancelled keys, shared by the workers: a cancel asked on one worker
 * (POST /v1/ai/tasks/{id}/cancel) reaches a transfer running on another,
 * whose Lua state it cannot touch.  Each transfer with a key looks once a
 * second, from a timer of its own on its worker; cancel_gen lets it skip
 * the ring when nothing was cancelled since it last looked. */
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static char cancel_ring[CANCEL_RING][CANCEL_KEY_MAX];
static unsigned cancel_next;
static atomic_uint cancel_gen;

static int key_cancelled(const char *key)
{
    int hit = 0;
    pthread_mutex_lock(&cancel_lock);
    for (int i = 0; i < CANCEL_RING && !hit; i++)
        hit = strcmp(cancel_ring[i], key) == 0;
    pthread_mutex_unlock(&cancel_lock);
    return hit;
}

static void add_cancelled(const char *key)
{
    pthread_mutex_lock(&cancel_lock);
    snprintf(cancel_ring[cancel_next], CANCEL_KEY_MAX, "%s", key);
    cancel_next = (cancel_next + 1) % CANCEL_RING;
    pthread_mutex_unlock(&cancel_lock);
    atomic_fetch_add(&cancel_gen, 1);
}

/* [-1|2, +1|2, m] */
static int l_url_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int plus = lua_toboolean(L, 2);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n + 1);
    int64_t m = http_url_decode(out, s, n, plus);
    if (m < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "bad percent escape");
        return 2;
    }
    luaL_pushresultsize(&b, (size_t)m);
    return 1;
}

/* [-1, +1, m] */
static int l_url_encode(lua_State *L)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            luaL_addchar(&b, (char)c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* [-1, +1, -] */
static int l_reason(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    lua_pushstring(L, http_reason((int)status));
    return 1;
}

/* ---- outbound transfers ---- */

/* A transfer as scripts hold it: a full userdata, so the collector or a
 * to-be-closed variable stops it whatever way the handler ends. */
typedef struct lua_transfer {
    hc_transfer *t;  /* owned; NULL once closed */
    lua_run *run;    /* the run that started it; it outlives the transfer (request() closes it) */
    int waiting;     /* the run is suspended in wait() */
    char key[CANCEL_KEY_MAX]; /* opts.cancel_key; "" for none */
    unsigned seen;   /* cancel_gen when key was last looked up */
    struct event *check; /* owned; with a key: looks at the cancelled keys */
} lua_transfer;

/* The check timer: a cancel asked on another worker stops the transfer
 * (its run is notified from the client's event). */
static void on_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lua_transfer *lt = arg;
    unsigned gen = atomic_load(&cancel_gen);
    if (gen == lt->seen || !lt->t)
        return;
    lt->seen = gen;
    if (key_cancelled(lt->key))
        hc_cancel(lt->t, "cancelled", 1);
}

/* Arms lt's check timer, at the loop's lowest priority.  0, or -1. */
static int arm_check(lua_State *L, lua_transfer *lt)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BASE_KEY);
    struct event_base *base = lua_touserdata(L, -1);
    lua_pop(L, 1);
    struct timeval second = {1, 0};
    int lowest = base ? event_base_get_npriorities(base) - 1 : 0;
    return base && (lt->check = event_new(base, -1, EV_PERSIST, on_check, lt)) &&
                   event_priority_set(lt->check, lowest > 0 ? lowest : 0) == 0 && event_add(lt->check, &second) == 0
               ? 0
               : -1;
}

/* hc_notify_fn: something happened; resume the run if it waits for it. */
static void on_notify(void *arg)
{
    lua_transfer *lt = arg;
    if (!lt->waiting)
        return; /* it looks at the transfer by itself on its next wait() */
    lt->waiting = 0;
    request_wait(lua_run_request(lt->run), NULL, NULL);
    lua_run_resume(lt->run, 0); /* wait's continuation reads the transfer */
}

/* The client went away while the run waits: stop the transfer; the run is
 * notified from the client's event. */
static void on_client_gone(void *arg)
{
    lua_transfer *lt = arg;
    hc_cancel(lt->t, "the client went away", 1);
}

/* __close and __gc.  [-1, +0, -] */
static int l_transfer_close(lua_State *L)
{
    lua_transfer *lt = luaL_checkudata(L, 1, TRANSFER_META);
    if (lt->waiting) {
        lt->waiting = 0;
        request_wait(lua_run_request(lt->run), NULL, NULL);
    }
    hc_free(lt->t);
    lt->t = NULL;
    if (lt->check)
        event_free(lt->check);
    lt->check = NULL;
    return 0;
}

/* nil, {code = code, message = message}.  [-0, +2, m] */
static int push_error(lua_State *L, const char *code, const char *message)
{
    luaL_pushfail(L);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    return 2;
}

/* opts[key] as a positive integer, or dflt.  [-0, +0, v] */
static lua_Integer opt_int(lua_State *L, const char *key, lua_Integer dflt)
{
    int t = lua_getfield(L, 1, key);
    lua_Integer v = dflt;
    if (t != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v <= 0)
            luaL_error(L, "http.request: %s must be a positive integer", key);
    }
    lua_pop(L, 1);
    return v;
}

/* opts.headers as "Name: value" strings, kept alive in a table pushed on
 * the stack; fills lines[] and returns their count.  [-0, +1, v] */
static size_t header_lines(lua_State *L, const char **lines)
{
    lua_newtable(L); /* stack: opts, ..., keep */
    int keep = lua_gettop(L);
    size_t n = 0;
    if (lua_getfield(L, 1, "headers") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "http.request: headers must be a table");
    lua_pushnil(L); /* stack: ..., keep, headers, key */
    while (lua_next(L, -2)) {
        size_t kn, vn;
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "http.request: header names and values must be strings");
        const char *k = lua_tolstring(L, -2, &kn);
        const char *v = lua_tolstring(L, -1, &vn);
        if (n == MAX_REQUEST_HEADERS || kn == 0 || strcspn(k, ": \t\r\n") != kn || strcspn(v, "\r\n") != vn)
            luaL_error(L, "http.request: bad header %s (a token name, a value without CR or LF)", k);
        lines[n] = lua_pushfstring(L, "%s: %s", k, v);
        lua_rawseti(L, keep, (lua_Integer)n + 1);
        n++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* stack: opts, ..., keep */
    return n;
}

/* start(opts) -> transfer | nil, err.  [-1, +1|2, v] */
static int l_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_run *run = lua_run_current(L);
    if (!run)
        return luaL_error(L, "http.request can only be used by a request's handler (not at load time, "
                             "nor from a coroutine of its own)");
    lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY);
    hc_client *client = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!client)
        return luaL_error(L, "http.request: no HTTP client in this Lua state");
    hc_request rq = {0};
    lua_getfield(L, 1, "url"); /* stack: opts, url */
    if (!(rq.url = lua_tostring(L, -1)))
        return luaL_error(L, "http.request: url must be a string");
    lua_getfield(L, 1, "body"); /* stack: opts, url, body */
    if (!lua_isnil(L, -1) && !(rq.body = lua_tolstring(L, -1, &rq.body_len)))
        return luaL_error(L, "http.request: body must be a string");
    lua_getfield(L, 1, "method"); /* stack: opts, url, body, method */
    rq.method = lua_isnil(L, -1) ? (rq.body ? "POST" : "GET") : lua_tostring(L, -1);
    if (!rq.method || !*rq.method || strspn(rq.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(rq.method))
        return luaL_error(L, "http.request: method must be an upper-case token");
    rq.timeout_ms = (long)opt_int(L, "timeout_ms", DEFAULT_TIMEOUT_MS);
    rq.connect_timeout_ms = (long)opt_int(L, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS);
    rq.max_bytes = (size_t)opt_int(L, "max_bytes", DEFAULT_MAX_BYTES);
    rq.stream = lua_getfield(L, 1, "on_chunk") != LUA_TNIL;
    lua_pop(L, 1);
    size_t keylen = 0;
    const char *key = NULL;
    if (lua_getfield(L, 1, "cancel_key") != LUA_TNIL &&
        (!(key = lua_tolstring(L, -1, &keylen)) || keylen == 0 || keylen >= CANCEL_KEY_MAX))
        return luaL_error(L, "http.request: cancel_key must be a string of 1 to %d bytes", CANCEL_KEY_MAX - 1);
    lua_pop(L, 1); /* the key stays alive in opts */
    const char *lines[MAX_REQUEST_HEADERS];
    rq.nheaders = header_lines(L, lines); /* stack: opts, url, body, method, keep */
    rq.headers = lines;
    rq.tag = lua_run_tag(run);
    if (lua_run_request(run)->client_gone)
        return push_error(L, hc_code_names[HC_CANCELLED], "the client went away");
    if (key && key_cancelled(key))
        return push_error(L, hc_code_names[HC_CANCELLED], "cancelled before it started");
    lua_transfer *lt = lua_newuserdatauv(L, sizeof *lt, 0);
    memset(lt, 0, sizeof *lt);
    lt->run = run;
    luaL_setmetatable(L, TRANSFER_META);
    if (key) {
        memcpy(lt->key, key, keylen + 1);
        lt->seen = atomic_load(&cancel_gen);
        if (arm_check(L, lt) < 0)
            return push_error(L, hc_code_names[HC_INTERNAL], "cannot arm the transfer's cancel check");
    }
    char err[128];
    if (!(lt->t = hc_start(client, &rq, on_notify, lt, err, sizeof err)))
        return push_error(L, hc_code_names[HC_INTERNAL], err);
    if (key) {
        lua_getfield(L, LUA_REGISTRYINDEX, KEYS_KEY); /* stack: ..., lt, keys */
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, lt->key);
        lua_pop(L, 1);
    }
    return 1;
}

/* The response headers, lower-case names, repeated ones joined with ", ".
 * [-0, +1, m] */
static void push_headers(lua_State *L, const buf *h)
{
    lua_newtable(L);
    const char *p = h->p, *end = h->p + h->len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        if (colon && colon > p) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *k = p; k < colon; k++)
                luaL_addchar(&b, (char)((*k >= 'A' && *k <= 'Z') ? *k + 32 : *k));
            luaL_pushresult(&b); /* stack: t, name */
            const char *v = colon + 1, *ve = stop;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TSTRING) { /* stack: t, name, old */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = eol ? eol + 1 : end;
    }
}

/* The end of the transfer.  [-0, +2|4, m] */
static int push_result(lua_State *L, hc_transfer *t)
{
    int status;
    const buf *headers, *body;
    const char *message;
    int code = hc_result(t, &status, &headers, &body, &message);
    if (code != HC_OK) {
        lua_pushliteral(L, "error");
        push_error(L, hc_code_names[code], message);
        lua_remove(L, -2); /* stack: "error", err */
        return 2;
    }
    lua_pushliteral(L, "done");
    lua_pushinteger(L, status);
    push_headers(L, headers);
    lua_pushlstring(L, body->p ? body->p : "", body->len);
    return 4;
}

/* wait's direct and resumed path: a chunk, the end, or suspend again.
 * [-1, +2|4, m] */
static int wait_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_transfer *lt = luaL_checkudata(L, 1, TRANSFER_META);
    if (!lt->t)
        return luaL_error(L, "http: the transfer is closed");
    if (lua_run_current(L) != lt->run)
        return luaL_error(L, "http: a transfer is waited on by the handler that started it");
    const buf *pending = hc_pending(lt->t);
    if (pending && pending->len) {
        lua_pushliteral(L, "chunk");
        lua_pushlstring(L, pending->p, pending->len);
        hc_take(lt->t);
        return 2;
    }
    if (hc_done(lt->t))
        return push_result(L, lt->t);
    request *r = lua_run_request(lt->run);
    if (r->client_gone) {
        hc_cancel(lt->t, "the client went away", 0);
        return push_result(L, lt->t);
    }
    lt->waiting = 1;
    request_wait(r, on_client_gone, lt);
    return lua_run_yield(L, lt->run, wait_k, 0);
}

/* cancel(key) -> boolean.  [-1, +1, m] */
static int l_cancel(lua_State *L)
{
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, n > 0 && n < CANCEL_KEY_MAX, 1, "a key of 1 to 95 bytes");
    add_cancelled(key);
    lua_getfield(L, LUA_REGISTRYINDEX, KEYS_KEY); /* stack: key, keys */
    lua_getfield(L, -1, key);                     /* stack: key, keys, transfer? */
    lua_transfer *lt = luaL_testudata(L, -1, TRANSFER_META);
    int here = lt && lt->t && !hc_done(lt->t) && strcmp(lt->key, key) == 0;
    if (here)
        hc_cancel(lt->t, "cancelled", 1); /* its run resumes from the client's event */
    lua_pushboolean(L, here);
    return 1;
}

/* cancelled(key) -> boolean.  [-1, +1, m] */
static int l_cancelled(lua_State *L)
{
    lua_pushboolean(L, key_cancelled(luaL_checkstring(L, 1)));
    return 1;
}

/* wait(transfer).  [-1, +2|4, m] */
static int l_wait(lua_State *L)
{
    return wait_k(L, LUA_OK, 0);
}

static const luaL_Reg FUNCS[] = {
    {"cancel", l_cancel},
    {"cancelled", l_cancelled},
    {"reason", l_reason},
    {"start", l_start},
    {"url_decode", l_url_decode},
    {"url_encode", l_url_encode},
    {"wait", l_wait},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_httpc(lua_State *L)
{
    if (luaL_newmetatable(L, TRANSFER_META)) {
        lua_pushcfunction(L, l_transfer_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_transfer_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_getsubtable(L, LUA_REGISTRYINDEX, KEYS_KEY) == 0) { /* stack: keys */
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
    }
    lua_pop(L, 1);
    luaL_newlib(L, FUNCS);
    return 1;
}
