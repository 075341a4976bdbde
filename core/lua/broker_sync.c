/* broker_sync.c: the per-thread list of broker.sync() waiters. */
#include "broker_sync.h"

#include "lua_run.h"

#include <stdlib.h>

typedef struct sync_wait {
    lua_run *run;
    uint64_t ticket;
} sync_wait;

/* One list per worker thread; owned by it, freed when it exits. */
static _Thread_local struct {
    sync_wait *v;
    size_t n, cap;
    int closed;     /* the final resume is done: a handler the pool fails
                     * later must not wait for a resume that will not come */
} waits;

int broker_sync_wait(lua_run *run, uint64_t ticket)
{
    if (waits.closed)
        return 1;
    if (waits.n == waits.cap) {
        size_t cap = waits.cap ? waits.cap * 2 : 16;
        sync_wait *p = realloc(waits.v, cap * sizeof *p);
        if (!p)
            return -1;
        waits.v = p;
        waits.cap = cap;
    }
    waits.v[waits.n++] = (sync_wait){run, ticket};
    return 0;
}

void broker_sync_resume(const broker_feed *f, int all)
{
    uint64_t done = f ? broker_feed_synced(f) : UINT64_MAX;
    size_t i = 0;
    while (i < waits.n) {
        if (all || waits.v[i].ticket <= done) {
            lua_run *run = waits.v[i].run;
            waits.v[i] = waits.v[--waits.n]; /* order does not matter */
            lua_run_resume(run, 0);
            i = 0; /* resuming may have added or removed waiters */
        } else {
            i++;
        }
    }
    if (all) {
        free(waits.v);
        waits.v = NULL;
        waits.cap = 0;
        waits.closed = 1;
    }
}
