/* ratelimit_db.h: the rate limits' database chores, on one thread with
 * one blocking libpq connection, off every event loop (as readiness.h):
 *   - about every flush_ms, the usage counts pending in `usage` (usage.h)
 *     go into public.rate_limit_tracking with one INSERT ... ON CONFLICT DO
 *     UPDATE per batch (sql/090_rate_limit_tracking_unique.sql), values as
 *     array parameters; a batch the database refused is put back and
 *     retried on the next pass (bounded by the usage table's max_rows, the
 *     rest counted as dropped).  Rows of users absent from auth.users are
 *     skipped by the statement (counted), as validate_user_id() would
 *     refuse the whole batch for one of them;
 *   - about every sweep_ms, strata_rate_limit_sweep() deletes the idle
 *     cells of the cluster policy (sql/070_rate_limit_cells.sql).
 * On stop, whatever is pending is written once more. */
#ifndef STRATA_RATELIMIT_DB_H
#define STRATA_RATELIMIT_DB_H

#include "base/buf.h"
#include "engine/usage.h"

#include <stddef.h>

typedef struct ratelimit_db ratelimit_db;

/* Starts the thread; `u` must outlive it (until ratelimit_db_stop).  The
 * URL is copied.  NULL and a message in err on failure. */
ratelimit_db *ratelimit_db_start(const char *database_url, usage *u, int flush_ms, int sweep_ms,
                                 char *err, size_t errlen);

/* Writes what is pending (one attempt; what fails is counted as dropped),
 * stops and joins the thread, frees d.  Call it once no worker records any
 * more.  NULL is a no-op. */
void ratelimit_db_stop(ratelimit_db *d);

/* Appends the usage and sweep metrics (Prometheus text) to out.  0 or -1
 * when out of memory.  Thread-safe. */
int ratelimit_db_metrics(ratelimit_db *d, buf *out);

#endif
