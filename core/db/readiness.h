/* readiness.h: the database sidecar.  One thread with one blocking libpq
 * connection, off every event loop: every interval it checks that the
 * database answers and that every migration in sql_dir is recorded in
 * strata_migrations (the answer of GET /ready), and it writes the low-rate
 * records queued to it (Lua reloads). */
#ifndef STRATA_READINESS_H
#define STRATA_READINESS_H

#include <stddef.h>

typedef struct readiness readiness;

/* Starts the probe thread; NULL and a message in err on failure.  The
 * strings are copied. */
readiness *readiness_start(const char *database_url, const char *sql_dir, int interval_ms,
                           char *err, size_t errlen);

/* 1 when ready, else 0 with the reason copied into reason (NUL-terminated).
 * Thread-safe. */
int readiness_get(readiness *r, char *reason, size_t len);

/* Queues a reload record (a JSON object) to be inserted into
 * strata_reloads by the probe thread.  Thread-safe; the string is copied.
 * Records are dropped (and said so in the log) while the table is missing. */
void readiness_submit(readiness *r, const char *json);

/* Stops and joins the probe thread and frees r; NULL is a no-op. */
void readiness_stop(readiness *r);

#endif
