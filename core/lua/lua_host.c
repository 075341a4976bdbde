/* lua_host.c: Lua generations and request runs (see lua_host.h).  Uses the
 * Lua 5.4 C API, the scripts snapshot, http.h for the request, and the
 * strata.* bindings (lmod_*.c) it preloads. */
#include "lua_host.h"

#include "lmod.h"
#include "lua_alloc.h"
#include "lua_request.h"
#include "lua_run.h"

#include "base/clock.h"
#include "obs/metrics.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_EVERY 1000             /* instructions between two checks of the boot's budget */
#define BOOT_INSTRUCTIONS 200000000 /* what loading the scripts may take at most */
#define WATCH_SLOTS 256             /* threads running handlers (workers) */
#define WATCH_PERIOD_MS 10          /* how often the watchdog looks */
#define POOL_MAX 64     /* idle coroutines kept for reuse */

struct lua_gen {
    lua_State *L;          /* owned */
    lua_alloc *alloc;      /* owned; L's memory */
    scripts *scripts;      /* one reference held */
    long time_limit_ms;    /* per resumption of a handler */
    int dispatch_ref;      /* registry: the function strata.runtime.boot returned */
    int route_ids_ref;     /* registry: route pattern -> metrics id, filled as routes are hit */
    int inflight;          /* runs not yet finished; only the owning thread touches it */
    int retired;           /* replaced: close when inflight reaches 0 */
    int spoiled;           /* still near its memory limit after a collection: to replace */
    lua_run *current;      /* the run executing right now (one at a time per thread) */
    lua_State *pool[POOL_MAX]; /* idle coroutines, anchored by pool_ref[] */
    int pool_ref[POOL_MAX];
    int npool;
};

struct lua_run {
    lua_gen *g;
    request *r;            /* the request it serves; answered through done */
    lua_State *co;         /* anchored by ref */
    int ref;
    int req_ref;           /* registry: the run's `req`, detached when the run ends */
    uint64_t deadline_ms;  /* the running slice must end by then (monotonic) */
    int timed_out;         /* stopped by the time limit */
    int out_of_memory;     /* stopped by the memory limit */
    int stopped;           /* stopped because the client went away */
    int waiting;           /* suspended by a strata binding, which will resume it */
    lua_done_fn done;
    void *arg;
    void *resource;        /* see lua_run_set_resource */
    void (*cleanup)(void *);
};

/* Every thread's extra space holds its generation: lua_newthread copies
 * the main thread's, so coroutines that scripts create inherit it too, and
 * the hooks find the run even there. */
static lua_gen *gen_of(lua_State *L)
{
    return *(lua_gen **)lua_getextraspace(L);
}

/* The boot counts instructions (it runs once per reload, on one thread). */
static __thread long boot_budget;

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (--boot_budget <= 0) {
        boot_budget = 0;
        luaL_error(L, "instruction limit exceeded while loading the scripts");
    }
}

/* Handlers get a time limit instead: a count hook, however rare, sends
 * every VM instruction through the debug path (15-20% of a request).  A
 * watchdog thread looks every WATCH_PERIOD_MS at what each worker runs and
 * sets a hook on a coroutine past its deadline; the hook raises there.
 * lua.c stops a script from a signal handler the same way. */
typedef struct watch_slot {
    pthread_mutex_t lock;  /* held while co is set or looked at: co cannot be freed meanwhile */
    lua_State *co;         /* the coroutine running now on that thread, or NULL */
    uint64_t deadline_ms;
} watch_slot;

static watch_slot slots[WATCH_SLOTS];
static atomic_int nslots;
static __thread watch_slot *my_slot;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_gen *g = gen_of(L);
    lua_run *run = g ? g->current : NULL;
    lua_sethook(L, NULL, 0, 0);
    if (run && mono_coarse_ms() >= run->deadline_ms) {
        run->timed_out = 1;
        luaL_error(L, "time limit exceeded");
    }
    /* Otherwise the coroutine finished and serves another request: stale. */
}

/* Set before resuming the run of a request whose client went away: the
 * handler stops at its first instruction (an open db.transaction rolls
 * back), since nobody will read its answer. */
static void gone_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_gen *g = gen_of(L);
    lua_sethook(L, NULL, 0, 0);
    if (g && g->current) {
        g->current->stopped = 1;
        luaL_error(L, "the client went away");
    }
}

static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec period = {0, WATCH_PERIOD_MS * 1000000L};
    for (;;) {
        nanosleep(&period, NULL);
        uint64_t now = mono_coarse_ms();
        int n = atomic_load(&nslots);
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&slots[i].lock);
            if (slots[i].co && now >= slots[i].deadline_ms)
                lua_sethook(slots[i].co, deadline_hook, LUA_MASKCOUNT, 1);
            pthread_mutex_unlock(&slots[i].lock);
        }
    }
    return NULL;
}

static void start_watchdog(void)
{
    for (int i = 0; i < WATCH_SLOTS; i++)
        pthread_mutex_init(&slots[i].lock, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0)
        pthread_detach(t);
}

/* The calling thread's slot (NULL past WATCH_SLOTS threads: no limit). */
static watch_slot *thread_slot(void)
{
    if (!my_slot) {
        pthread_once(&watchdog_once, start_watchdog);
        int i = atomic_fetch_add(&nslots, 1);
        my_slot = i < WATCH_SLOTS ? &slots[i] : NULL;
    }
    return my_slot;
}

static void watch_begin(lua_run *run)
{
    watch_slot *s = thread_slot();
    run->deadline_ms = mono_coarse_ms() + (uint64_t)run->g->time_limit_ms;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->co = run->co;
    s->deadline_ms = run->deadline_ms;
    pthread_mutex_unlock(&s->lock);
}

static void watch_end(void)
{
    watch_slot *s = my_slot;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->co = NULL;
    pthread_mutex_unlock(&s->lock);
}

/* Message handler for protected calls: appends the traceback.  [-1, +1, m] */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* loadscript(path) -> function | nil, err: compiles a snapshot file with
 * the chunk name "@<root>/<path>", so messages say lua/routes/x.lua:12.
 * Upvalue 1: the snapshot (light userdata).  [-1, +1|+2, m] */
static int l_loadscript(lua_State *L)
{
    const scripts *s = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = luaL_checkstring(L, 1);
    const script_file *f = scripts_find(s, path);
    if (!f) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s/%s: no such script", s->root, path);
        return 2;
    }
    char name[1024];
    snprintf(name, sizeof name, "@%s/%s", s->root, path);
    if (luaL_loadbufferx(L, f->text, f->len, name, "t") != LUA_OK) {
        luaL_pushfail(L); /* stack: path, err, fail */
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

/* package.searchers entry: "a.b" -> the snapshot's a/b.lua or a/b/init.lua.
 * Upvalue 1: loadscript.  [-1, +1|+2, m] */
static int l_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *path = luaL_gsub(L, name, ".", "/"); /* stack: name, path */
    const char *tries[] = {"%s.lua", "%s/init.lua"};
    for (int i = 0; i < 2; i++) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushfstring(L, tries[i], path); /* stack: name, path, loadscript, file */
        lua_pushvalue(L, -1);
        lua_insert(L, -3); /* stack: name, path, file, loadscript, file */
        lua_call(L, 1, 2); /* stack: name, path, file, chunk|fail, err */
        if (!lua_isnil(L, -2)) {
            lua_pop(L, 1); /* stack: name, path, file, chunk */
            lua_insert(L, -2); /* stack: name, path, chunk, file */
            return 2;
        }
        if (!strstr(lua_tostring(L, -1), "no such script")) {
            return lua_error(L); /* a syntax error: report it, do not go on searching */
        }
        lua_pop(L, 3);
    }
    lua_pushfstring(L, "no script '%s.lua' in the Lua directory", path);
    return 1;
}

/* Puts the snapshot searcher second in package.searchers (after preload),
 * and leaves loadscript on the stack.  [-0, +1, m] */
static void install_loader(lua_State *L, scripts *s)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers"); /* stack: package, searchers */
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_loadscript, 1); /* stack: package, searchers, loadscript */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_searcher, 1);
    lua_Integer n = luaL_len(L, -3);
    for (lua_Integer i = n; i >= 2; i--) {
        lua_geti(L, -3, i);
        lua_seti(L, -4, i + 1);
    }
    lua_seti(L, -3, 2); /* stack: package, searchers, loadscript */
    lua_insert(L, -3);
    lua_pop(L, 2); /* stack: loadscript */
}

/* boot(files, loadscript) under the message handler.  [-0, +0, m] */
static int boot(lua_gen *g, char *err, size_t errlen)
{
    lua_State *L = g->L;
    lua_pushcfunction(L, traceback);
    int base = lua_gettop(L);
    install_loader(L, g->scripts); /* stack: traceback, loadscript */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "strata.runtime");
    if (lua_pcall(L, 1, 1, base) != LUA_OK)
        goto fail;
    lua_getfield(L, -1, "boot"); /* stack: traceback, loadscript, runtime, boot */
    lua_createtable(L, (int)g->scripts->count, 0);
    for (size_t i = 0; i < g->scripts->count; i++) {
        lua_pushstring(L, g->scripts->files[i].path);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushvalue(L, base + 1); /* stack: ..., boot, files, loadscript */
    if (lua_pcall(L, 2, 2, base) != LUA_OK)
        goto fail;
    if (lua_isnil(L, -2)) { /* stack: ..., nil, message */
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "boot failed");
        lua_settop(L, base - 1);
        return -1;
    }
    lua_pop(L, 1);
    g->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    g->route_ids_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, base - 1);
    return 0;
fail:
    snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_settop(L, base - 1);
    return -1;
}

static void gen_close(lua_gen *g)
{
    lua_close(g->L);
    lua_alloc_free(g->alloc);
    scripts_unref(g->scripts);
    free(g);
}

lua_gen *lua_gen_new(scripts *s, const strata_conf *conf, char *err, size_t errlen)
{
    long time_limit_ms = conf->lua_time_limit_ms;
    lua_gen *g = calloc(1, sizeof *g);
    if (!g || !(g->L = lua_alloc_newstate(&g->alloc, LUA_ALLOC_CACHE))) {
        snprintf(err, errlen, "cannot create a Lua state: out of memory");
        free(g);
        return NULL;
    }
    g->scripts = scripts_ref(s);
    g->time_limit_ms = time_limit_ms;
    lua_alloc_set_limit(g->alloc, (size_t)conf->lua_memory_limit_mb << 20);
    g->dispatch_ref = LUA_NOREF;
    *(lua_gen **)lua_getextraspace(g->L) = g;
    luaL_openlibs(g->L);
    lua_gen_set_context(g, "strata.conf", (void *)conf);
    lmod_preload(g->L);
    lua_request_init(g->L);
    /* The boot runs top-level code of every script: bound it too.  Boots
     * happen one at a time per thread, hence a thread-local budget. */
    lua_gc(g->L, LUA_GCGEN, 0, 0); /* requests make short-lived tables */
    boot_budget = BOOT_INSTRUCTIONS / HOOK_EVERY;
    lua_sethook(g->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int rc = boot(g, err, errlen);
    lua_sethook(g->L, NULL, 0, 0); /* coroutines must not inherit it */
    if (rc < 0) {
        gen_close(g);
        return NULL;
    }
    return g;
}

long lua_gen_generation(const lua_gen *g)
{
    return g->scripts->generation;
}

void lua_gen_retire(lua_gen *g)
{
    g->retired = 1;
    if (g->inflight == 0)
        gen_close(g);
}

int lua_gen_take_spoiled(lua_gen *g)
{
    if (g->spoiled != 1)
        return 0;
    g->spoiled = 2; /* asked once */
    return 1;
}

const void *lua_gen_tag(const lua_gen *g)
{
    return g;
}

const void *lua_run_tag(lua_run *run)
{
    return run->g;
}

void lua_gen_set_context(lua_gen *g, const char *key, void *ptr)
{
    lua_pushlightuserdata(g->L, ptr);
    lua_setfield(g->L, LUA_REGISTRYINDEX, key);
}

/* A coroutine to run on: an idle one, or a new one anchored in the registry. */
static void take_thread(lua_gen *g, lua_run *run)
{
    if (g->npool > 0) {
        g->npool--;
        run->co = g->pool[g->npool];
        run->ref = g->pool_ref[g->npool];
        return;
    }
    run->co = lua_newthread(g->L); /* stack(L): thread */
    run->ref = luaL_ref(g->L, LUA_REGISTRYINDEX);
}

/* Gives the coroutine back (reset when it failed) and frees the run. */
static void end_run(lua_run *run, int failed)
{
    lua_gen *g = run->g;
    lua_run_set_resource(run, NULL, NULL);
    lua_rawgeti(g->L, LUA_REGISTRYINDEX, run->req_ref); /* stack(L): req */
    lua_request_detach(g->L, -1);
    lua_pop(g->L, 1);
    luaL_unref(g->L, LUA_REGISTRYINDEX, run->req_ref);
    if (failed)
        lua_resetthread(run->co);
    lua_settop(run->co, 0);
    if (run->out_of_memory) {
        lua_gc(g->L, LUA_GCCOLLECT); /* what it grew is garbage now: give it back at once */
        if (lua_alloc_near_limit(g->alloc) && !g->spoiled)
            g->spoiled = 1; /* it kept what it grew (in a global, say) */
    }
    if (g->npool < POOL_MAX) {
        g->pool[g->npool] = run->co;
        g->pool_ref[g->npool++] = run->ref;
    } else {
        luaL_unref(g->L, LUA_REGISTRYINDEX, run->ref);
    }
    free(run);
    if (--g->inflight == 0 && g->retired)
        gen_close(g);
}

/* Reads a status/code/message an error table asked for ({status = 503,
 * code = "...", message = "..."}, as strata bindings raise them). */
static void error_fields(lua_State *co, lua_response *rs)
{
    if (lua_type(co, -1) != LUA_TTABLE)
        return;
    if (lua_getfield(co, -1, "status") == LUA_TNUMBER && lua_isinteger(co, -1)) {
        lua_Integer st = lua_tointeger(co, -1);
        rs->error_status = st >= 400 && st <= 599 ? (int)st : 0;
    }
    lua_pop(co, 1);
    lua_getfield(co, -1, "code");
    rs->error_code = lua_tostring(co, -1);
    lua_getfield(co, -2, "message");
    rs->error_message = lua_tostring(co, -1);
    lua_pop(co, 2); /* the strings stay alive: the table holds them */
}

static void fail(lua_run *run, lua_response *rs, const char *msg)
{
    lua_State *co = run->co;
    rs->budget_exceeded = run->timed_out;
    rs->client_gone = run->stopped;
    error_fields(co, rs);
    if (run->out_of_memory) {
        rs->error_status = 500;
        rs->error_code = "lua_memory_limit";
        rs->error_message = "the handler allocated past lua_memory_limit_mb and was stopped";
    }
    if (!msg)
        msg = lua_tostring(co, -1);
    if (!msg)
        msg = lua_type(co, -1) == LUA_TTABLE && rs->error_message ? rs->error_message : "error object is not a string";
    luaL_traceback(co, co, msg, 0);
    rs->error = lua_tostring(co, -1);
    run->done(run->arg, run->r, LUA_RUN_ERROR, rs);
    end_run(run, 1);
}

/* Adds each entry of the headers table at idx to the response.  [-0, +0, -] */
static int each_header(lua_run *run, int idx)
{
    lua_State *co = run->co;
    if (lua_isnoneornil(co, idx))
        return 0;
    lua_pushnil(co);
    while (lua_next(co, idx)) { /* stack: ..., key, value */
        size_t kn, vn;
        if (lua_type(co, -2) != LUA_TSTRING || !lua_isstring(co, -1)) {
            lua_pop(co, 2);
            return -1;
        }
        const char *k = lua_tolstring(co, -2, &kn);
        const char *v = lua_tolstring(co, -1, &vn); /* converting the value in place is safe */
        int bad = request_add_header(run->r, k, kn, v, vn);
        lua_pop(co, 1);
        if (bad) {
            lua_pop(co, 1);
            return -1;
        }
    }
    return 0;
}

/* The metrics id of the route pattern at index 5 of co; cached per
 * generation so the global label table is consulted once per route. */
static int route_id(lua_gen *g, lua_State *co)
{
    if (lua_type(co, 5) != LUA_TSTRING)
        return METRICS_ROUTE_NONE;
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->route_ids_ref); /* stack(co): ..., ids */
    lua_pushvalue(co, 5);
    int id;
    if (lua_rawget(co, -2) == LUA_TNUMBER) { /* stack(co): ..., ids, id */
        id = (int)lua_tointeger(co, -1);
    } else {
        id = metrics_route_id(lua_tostring(co, 5));
        lua_pushvalue(co, 5);
        lua_pushinteger(co, id);
        lua_rawset(co, -4);
    }
    lua_pop(co, 2);
    return id;
}

/* Resumes run's coroutine with nargs values and handles the outcome. */
static void step(lua_run *run, int nargs)
{
    lua_gen *g = run->g;
    lua_State *co = run->co;
    lua_response rs;
    memset(&rs, 0, sizeof rs);
    int nres = 0;
    run->waiting = 0;
    g->current = run;
    if (run->r->client_gone && !run->r->streaming) /* a stream's writes answer "closed" instead */
        lua_sethook(co, gone_hook, LUA_MASKCOUNT, 1);
    if (lua_alloc_near_limit(g->alloc))
        lua_gc(g->L, LUA_GCCOLLECT); /* garbage must not count against this slice */
    watch_begin(run);
    lua_alloc_enforce(g->alloc, 1);
    int st = lua_resume(co, g->L, nargs, &nres);
    int refused = lua_alloc_enforce(g->alloc, 0);
    watch_end();
    lua_sethook(co, NULL, 0, 0); /* a watchdog hook set too late must not outlive the slice */
    g->current = NULL;
    if (st == LUA_YIELD) {
        if (run->waiting)
            return; /* a binding will resume it */
        lua_pushliteral(co, "handler yielded outside of an asynchronous strata call");
        fail(run, &rs, NULL);
        return;
    }
    if (st != LUA_OK) {
        /* A refused growth the handler caught (pcall) and survived is its
         * business; one that ended it is the limit's doing. */
        run->out_of_memory = st == LUA_ERRMEM || refused;
        fail(run, &rs, NULL);
        return;
    }
    /* stack(co): status, body, content_type, headers, route */
    lua_settop(co, 5);
    rs.status = (int)lua_tointeger(co, 1);
    rs.body = lua_tolstring(co, 2, &rs.body_len);
    rs.content_type = lua_tostring(co, 3);
    rs.route_id = route_id(g, co);
    if (each_header(run, 4) < 0) {
        lua_pushliteral(co, "handler returned an invalid header (names and values must be strings "
                            "without CR or LF)");
        fail(run, &rs, NULL);
        return;
    }
    run->done(run->arg, run->r, LUA_RUN_OK, &rs);
    end_run(run, 0);
}

void lua_gen_start(lua_gen *g, request *r, lua_done_fn done, void *arg)
{
    lua_run *run = calloc(1, sizeof *run);
    if (!run) {
        lua_response rs = {.error = "out of memory"};
        done(arg, r, LUA_RUN_ERROR, &rs);
        return;
    }
    run->g = g;
    run->r = r;
    run->done = done;
    run->arg = arg;

    g->inflight++;
    take_thread(g, run);
    lua_State *co = run->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->dispatch_ref); /* stack(co): dispatch */
    lua_request_push(co, r);                              /* stack(co): dispatch, req */
    lua_pushvalue(co, -1);
    run->req_ref = luaL_ref(co, LUA_REGISTRYINDEX);
    /* The body to decode, when it is JSON: the dispatcher answers 400 for
     * one that does not parse, before the handler runs. */
    if (request_body_is_json(r))
        lua_pushlstring(co, r->body, r->body_len);
    else
        lua_pushnil(co);                                  /* stack(co): dispatch, req, json_text */
    step(run, 2);
}

lua_run *lua_run_current(lua_State *L)
{
    lua_gen *g = gen_of(L);
    lua_run *run = g ? g->current : NULL;
    return run && run->co == L ? run : NULL;
}

int lua_run_yield(lua_State *L, lua_run *run, lua_KFunction k, lua_KContext ctx)
{
    run->waiting = 1;
    return lua_yieldk(L, 0, ctx, k);
}

void lua_run_push_req(lua_State *L, lua_run *run)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->req_ref);
}

request *lua_run_request(lua_run *run)
{
    return run->r;
}

lua_State *lua_run_thread(lua_run *run)
{
    return run->co;
}

void lua_run_resume(lua_run *run, int nargs)
{
    step(run, nargs);
}

void lua_run_set_resource(lua_run *run, void *ptr, void (*cleanup)(void *))
{
    void *old = run->resource;
    void (*old_cleanup)(void *) = run->cleanup;
    run->resource = ptr;
    run->cleanup = cleanup;
    if (old && old != ptr && old_cleanup)
        old_cleanup(old);
}

void *lua_run_resource(lua_run *run)
{
    return run->resource;
}
