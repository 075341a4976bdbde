/* revoked_feed.h: the sessions that ended (logout, refresh-token reuse, a
 * user banned or deleted), so that their access tokens are refused on
 * every instance without a database round trip per request.  One thread
 * with one blocking libpq connection LISTENs on strata_auth_revoked
 * (sql/130_auth.sql: the ids of deleted auth.sessions, or "resync") after
 * loading auth.revoked_sessions; a lost connection is logged, and the set
 * is loaded whole again after reconnecting, and every hour (which drops
 * the ids of sessions older than any token).  Workers ask
 * revoked_feed_has() under a read lock. */
#ifndef STRATA_REVOKED_FEED_H
#define STRATA_REVOKED_FEED_H

#include "base/buf.h"

#include <stddef.h>

typedef struct revoked_feed revoked_feed;

/* Starts the thread.  NULL and err. */
revoked_feed *revoked_feed_start(const char *database_url, char *err, size_t errlen);

/* Stops the thread and frees the feed; NULL is a no-op. */
void revoked_feed_free(revoked_feed *f);

/* 1 when the session id (a UUID's text, any case) has ended, 0 otherwise
 * (also for text that is no UUID).  Thread-safe. */
int revoked_feed_has(revoked_feed *f, const char *session_id, size_t len);

/* Adds an ended session now, on this instance (the one that ended it
 * answers at once; the others hear the NOTIFY).  0, or -1 for text that
 * is no UUID or out of memory.  Thread-safe. */
int revoked_feed_add(revoked_feed *f, const char *session_id, size_t len);

/* Appends strata_auth_revoked_sessions (held) and
 * strata_auth_revoked_feed_reconnects_total to out.  0 or -1. */
int revoked_feed_metrics(revoked_feed *f, buf *out);

#endif
