/* readiness.h: the answer of GET /ready.  A probe thread checks, every
 * interval, that the database answers and that every migration in sql_dir
 * is recorded in strata_migrations.  It may block on libpq: it runs on its
 * own thread so that no event loop ever waits for the database. */
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

/* Stops and joins the probe thread and frees r; NULL is a no-op. */
void readiness_stop(readiness *r);

#endif
