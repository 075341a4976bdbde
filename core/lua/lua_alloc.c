/* lua_alloc.c: per-state free lists for Lua's small blocks (lua_alloc.h).
 *
 * Lua tells the allocator a block's size when it frees or resizes it, so
 * a block needs no header: blocks up to SMALL_MAX bytes are allocated at
 * their size class (a multiple of 8) and go back to that class's list. */
#include "lua_alloc.h"

#include "obs/log.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_MAX 512            /* larger blocks go straight to malloc */
#define CLASSES (SMALL_MAX / 8)
#define CACHE_CAP (1u << 20)     /* bytes kept idle per state at most */

typedef struct free_block {
    struct free_block *next;
} free_block;

struct lua_alloc {
    free_block *lists[CLASSES];
    size_t cached;               /* bytes idle in the lists */
    int cache;                   /* 0: plain malloc, nothing kept */
    size_t used;                 /* bytes the state holds, as Lua counts them */
    size_t limit;                /* growth past it is refused while enforced; 0: none */
    int enforce;                 /* 1 while a handler runs */
    int refused;                 /* a growth was refused since lua_alloc_enforce(a, 1) */
};

static size_t class_of(size_t n)
{
    return (n + 7) / 8 - 1;
}

static void *take(lua_alloc *a, size_t n)
{
    if (!a->cache || n > SMALL_MAX)
        return malloc(n);
    size_t k = class_of(n);
    free_block *b = a->lists[k];
    if (!b)
        return malloc((k + 1) * 8);
    a->lists[k] = b->next;
    a->cached -= (k + 1) * 8;
    return b;
}

static void give_back(lua_alloc *a, void *p, size_t n)
{
    if (!a->cache || n > SMALL_MAX || a->cached + SMALL_MAX > CACHE_CAP) {
        free(p);
        return;
    }
    size_t k = class_of(n);
    free_block *b = p;
    b->next = a->lists[k];
    a->lists[k] = b;
    a->cached += (k + 1) * 8;
}

static void *resize(lua_alloc *a, void *ptr, size_t osize, size_t nsize)
{
    if (nsize == 0) {
        if (ptr)
            give_back(a, ptr, osize);
        return NULL;
    }
    if (!ptr)
        return take(a, nsize);
    if (!a->cache || (osize > SMALL_MAX && nsize > SMALL_MAX))
        return realloc(ptr, nsize);
    if (osize <= SMALL_MAX && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize))
        return ptr; /* the block already has room */
    void *q = take(a, nsize);
    if (!q)
        return NULL; /* Lua keeps the old block */
    memcpy(q, ptr, osize < nsize ? osize : nsize);
    give_back(a, ptr, osize);
    return q;
}

/* lua_Alloc: osize is the block's size when ptr is not NULL (else the
 * kind of object).  A refused growth makes Lua collect and try again,
 * then raise a memory error (LUA_ERRMEM) in the running code. */
static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_alloc *a = ud;
    size_t old = ptr ? osize : 0;
    if (nsize > old && a->enforce && a->limit && a->used + (nsize - old) > a->limit) {
        a->refused = 1;
        return NULL;
    }
    void *q = resize(a, ptr, osize, nsize);
    if (q || nsize == 0)
        a->used = a->used - old + nsize;
    return q;
}

static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    log_eventf("error", "unprotected Lua error: %s", msg ? msg : "(not a string)");
    return 0; /* Lua aborts */
}

lua_State *lua_alloc_newstate(lua_alloc **out, int cache)
{
    lua_alloc *a = calloc(1, sizeof *a);
    if (a)
        a->cache = cache;
    lua_State *L = a ? lua_newstate(alloc, a) : NULL;
    if (!L) {
        free(a);
        return NULL;
    }
    lua_atpanic(L, panic);
    *out = a;
    return L;
}

size_t lua_alloc_cached(const lua_alloc *a)
{
    return a->cached;
}

void lua_alloc_set_limit(lua_alloc *a, size_t limit)
{
    a->limit = limit;
}

int lua_alloc_enforce(lua_alloc *a, int on)
{
    int refused = a->refused;
    a->enforce = on;
    a->refused = 0;
    return refused;
}

size_t lua_alloc_used(const lua_alloc *a)
{
    return a->used;
}

int lua_alloc_near_limit(const lua_alloc *a)
{
    return a->limit && a->used > a->limit - a->limit / 4;
}

void lua_alloc_free(lua_alloc *a)
{
    if (!a)
        return;
    for (size_t k = 0; k < CLASSES; k++) {
        free_block *b = a->lists[k];
        while (b) {
            free_block *next = b->next;
            free(b);
            b = next;
        }
    }
    free(a);
}
