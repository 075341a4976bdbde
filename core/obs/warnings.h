/* warnings.h: what the server serves but an operator must hear about,
 * without it being an outage: an admin_config row that fails its validator
 * (the runtime keeps the last valid one), say.  Process-wide, keyed by
 * (source, key); shown by GET /ready ("warnings") and counted in /metrics
 * (strata_config_invalid_total{source}: warnings raised or changed,
 * strata_config_warnings{source}: held now).  Set and cleared by the Lua
 * states of every worker (strata.health), which all see the same rows: a
 * warning raised again with the same message is not counted twice. */
#ifndef STRATA_WARNINGS_H
#define STRATA_WARNINGS_H

#include "base/buf.h"

#define WARNINGS_MAX 64

/* Raises or updates the warning (source, key).  1 when it is new or its
 * message changed (the caller logs it), 0 when it was held already, -1
 * when WARNINGS_MAX warnings are held (the warning is counted, not kept).
 * Thread-safe; the strings are copied, truncated to fit. */
int warnings_set(const char *source, const char *key, const char *message);

/* Clears the warning (source, key): 1 when one was held, else 0. */
int warnings_clear(const char *source, const char *key);

/* Copies into keys (up to max of them, each truncated to 127 bytes) the keys of the
 * warnings held for source; their number (may exceed max). */
int warnings_keys(const char *source, char (*keys)[128], int max);

/* Appends the held warnings as a JSON array of {source, key, message}.
 * 0, or -1 when out of memory. */
int warnings_render_json(buf *out);

/* Appends the two metric families.  0, or -1 when out of memory. */
int warnings_render_metrics(buf *out);

#endif
