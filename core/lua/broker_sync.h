/* broker_sync.h: the request runs suspended in broker.sync() (read your
 * writes), waiting for the broker feed to serve their tickets.  The list
 * is per thread: a run is resumed only by the event loop of the thread it
 * runs on, so each worker thread keeps its own and nothing is locked.
 * strata.broker adds to it; the worker, woken by the feed (or exiting),
 * resumes the ready ones.  No Lua header here: the worker includes it. */
#ifndef STRATA_BROKER_SYNC_H
#define STRATA_BROKER_SYNC_H

#include "db/broker_feed.h"

#include <stdint.h>

struct lua_run;

/* Suspends nothing by itself: records that run waits for `ticket` (from
 * broker_feed_sync_request) on the calling thread.  0; 1 when the thread
 * resumes no more waiters (it is exiting: the caller must not suspend);
 * -1 when out of memory. */
int broker_sync_wait(struct lua_run *run, uint64_t ticket);

/* Resumes the calling thread's waiters whose ticket f has served (f NULL:
 * all); every waiter when `all` (the thread is exiting: the list is freed
 * and takes no more). */
void broker_sync_resume(const broker_feed *f, int all);

#endif
