/* log.h: the server log, one JSON object per line on stderr:
 * {"time":"2026-11-24T03:04:05.123Z","level":"error","msg":"...",...}.
 * Thread-safe: each line is one write(2).  Not for the per-request access
 * log (accesslog.h), which is buffered per worker. */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stddef.h>

/* Writes a line; `fields` is NULL or extra JSON members without braces
 * (`"file":"x","line":3`), already valid JSON. */
void log_event(const char *level, const char *msg, const char *fields);

/* printf-style convenience for the core's own messages. */
void log_eventf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes + NUL) for the current time. */
void log_timestamp(char out[32]);

#endif
