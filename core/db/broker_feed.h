/* broker_feed.h: keeps the native resolution engine (resolve.h) equal to
 * PostgreSQL.  One thread with one blocking libpq connection, off every
 * event loop: it streams data_broker, workspaces and broker_values into
 * the engine at start (single-row mode, one batch), then LISTENs on
 * strata_broker (sql/060_broker_notify.sql, payload extended by
 * sql/110_broker_notify_commit_time.sql) and re-reads the rows each
 * notification names.  It takes every notification libpq holds, including
 * those read during its own queries, before it waits again, so a change is
 * applied as soon as its notification is read, whatever the shape of its
 * transaction.  The same connection hears strata_ddl (schema
 * changes) and strata_admin_config, and only counts them.  A lost
 * connection is logged and counted, and after reconnecting the engine is
 * resynchronised whole, never left stale.
 *
 * Read-your-writes: a worker that wrote through strata asks for a sync
 * (broker_feed_sync_request) and is told when every change committed before
 * it is in the engine (the on_synced callback, from the feed's thread). */
#ifndef STRATA_BROKER_FEED_H
#define STRATA_BROKER_FEED_H

#include "base/buf.h"
#include "engine/resolve.h"

#include <stddef.h>
#include <stdint.h>

typedef struct broker_feed broker_feed;

/* Called on the feed's thread after each pass that served sync requests. */
typedef void (*broker_synced_fn)(void *arg);

/* Starts the thread; the engine must outlive the feed.  NULL and err. */
broker_feed *broker_feed_start(const char *database_url, rs_engine *e, broker_synced_fn fn, void *arg,
                               char *err, size_t errlen);

/* Stops and joins the thread: no callback runs after it returns.  The
 * queries still work (the engine stays as it was); NULL is a no-op. */
void broker_feed_stop(broker_feed *f);

/* Frees a stopped feed; NULL is a no-op. */
void broker_feed_free(broker_feed *f);

/* 1 once the engine holds the database's data and the feed listens. */
int broker_feed_ready(const broker_feed *f);

/* Asks for a sync; returns its ticket.  Thread-safe. */
uint64_t broker_feed_sync_request(broker_feed *f);

/* The highest ticket whose sync is done.  Thread-safe. */
uint64_t broker_feed_synced(const broker_feed *f);

/* Counts the schema changes heard on channel strata_ddl (and reconnects,
 * which may have missed some): the REST catalog is re-read when it moves. */
uint64_t broker_feed_ddl_version(const broker_feed *f);

/* Counts the admin_config changes heard on channel strata_admin_config
 * (and reconnects, which may have missed some): the agent rate limits
 * re-read the table when it moves.  Meaningful only while
 * broker_feed_ready: while the feed is away nothing is heard. */
uint64_t broker_feed_admin_config_version(const broker_feed *f);

/* Appends the feed's and the engine's Prometheus metrics to out, among
 * them strata_broker_apply_lag_seconds (commit to applied, per transaction;
 * the commit time is the database's clock, the applied time ours). */
int broker_feed_metrics(const broker_feed *f, buf *out);

#endif
