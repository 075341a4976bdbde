/* reload.h: the reload coordinator.  Reads the Lua directory into a
 * snapshot, validates it by building a complete Lua generation (every file
 * compiles, routes load, policies and validators have their shape and pass
 * their examples), and only then publishes it to every worker, which swaps
 * it in between requests.  A failed attempt publishes nothing: the
 * previous scripts keep serving.  Thread-safe: reloads are serialised. */
#ifndef STRATA_RELOAD_H
#define STRATA_RELOAD_H

#include "base/buf.h"
#include "base/conf.h"
#include "scripts.h"

typedef struct reloader reloader;

/* Called with each new snapshot (one reference lent for the call). */
typedef void (*reload_publish_fn)(void *arg, scripts *s);
/* Called after each attempt with its record as a JSON object. */
typedef void (*reload_record_fn)(void *arg, const char *json);

/* conf must outlive the reloader. */
reloader *reloader_new(const strata_conf *conf);
void reloader_free(reloader *r);

void reloader_on_publish(reloader *r, reload_publish_fn fn, void *arg);
void reloader_on_record(reloader *r, reload_record_fn fn, void *arg);

/* One attempt; trigger says why ("start", "watch", "signal", "admin").
 * Returns 0 when published, -1 when not; the attempt's record (JSON) is
 * appended to result when result is not NULL. */
int reloader_run(reloader *r, const char *trigger, buf *result);

/* The same on a thread of its own, so that the caller's loop goes on
 * (a worker answering POST /admin/reload never builds a generation
 * itself): done(arg, rc, record) is called on that thread when the
 * attempt ends, record being its JSON (NULL when out of memory).  -1 when
 * the thread cannot start (done is then never called). */
typedef void (*reload_done_fn)(void *arg, int rc, const char *record);
int reloader_run_async(reloader *r, const char *trigger, reload_done_fn done, void *arg);

/* Waits until every reloader_run_async attempt has called its done. */
void reloader_wait_async(reloader *r);

/* Publishes the previous good snapshot again; -1 when there is none. */
int reloader_rollback(reloader *r, buf *result);

/* The last attempts, newest first, as a JSON array. */
int reloader_history(reloader *r, buf *out);

/* The generation serving now (0: none yet) and the last failed attempt's
 * error ("" when the last attempt succeeded), copied into error. */
long reloader_status(reloader *r, char *error, size_t len);

/* The snapshot serving now, with a new reference; NULL when none. */
scripts *reloader_current(reloader *r);

#endif
