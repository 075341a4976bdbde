/* usage.h: the agent usage counts behind public.rate_limit_tracking, kept
 * in memory between two writes.  A request allowed on an agent-type route
 * adds one to its user's hourly and daily rows (period aligned to the UTC
 * hour and day, with the perHour / perDay limit that applied); a writer
 * thread (ratelimit_db.h) takes everything pending about once a second and
 * stores it with one statement, and puts a batch back when the database
 * refused it.  Plain C: no I/O, no Lua, no clock of its own (the caller
 * passes the time).  Shared by every worker: one mutex, held for a hash
 * lookup per record.
 *
 * Memory is bounded by max_rows: past it a record or a put-back that needs
 * a new row is dropped and counted (usage_stats.dropped), never blocking a
 * request while the database is away. */
#ifndef STRATA_USAGE_H
#define STRATA_USAGE_H

#include <stddef.h>
#include <stdint.h>

#define USAGE_AGENT_MAX 50 /* rate_limit_tracking.agent_type is varchar(50) */

typedef struct usage usage;

enum usage_kind { USAGE_HOURLY = 0, USAGE_DAILY = 1 };

/* One row to add to rate_limit_tracking. */
typedef struct usage_row {
    unsigned char user[16];             /* user_id, the 16 bytes of the uuid */
    char agent[USAGE_AGENT_MAX + 1];    /* agent_type, NUL-terminated */
    uint8_t kind;                       /* enum usage_kind: limit_type */
    int64_t period_start;               /* seconds since the epoch, a UTC hour or day boundary */
    uint32_t count;                     /* requests to add (request_count), <= INT32_MAX */
    int32_t limit;                      /* limit_value: the last limit that applied, > 0 */
} usage_row;

typedef struct usage_stats {
    uint64_t pending;   /* rows waiting for the writer */
    uint64_t recorded;  /* requests recorded (each adds to one or two rows) */
    uint64_t dropped;   /* request counts lost because the table was full */
} usage_stats;

/* An empty table holding at most max_rows rows (>= 1).  NULL when out of
 * memory. */
usage *usage_new(size_t max_rows);

/* Frees the table and what is pending; NULL is a no-op. */
void usage_free(usage *u);

/* Counts one request of `user` on agent type agent[0..agent_len) at now_s
 * (seconds since the epoch): +1 on the hourly row when per_hour > 0, +1 on
 * the daily row when per_day > 0.  0; -1 with errno EINVAL (agent empty or
 * longer than USAGE_AGENT_MAX) or ENOSPC (a row was dropped: table full).
 * Thread-safe. */
int usage_record(usage *u, const unsigned char user[16], const char *agent, size_t agent_len,
                 int32_t per_hour, int32_t per_day, int64_t now_s);

/* Hands every pending row to the caller and empties the table: *rows is
 * malloc'd (the caller frees it; NULL when none) and the count is
 * returned.  Thread-safe. */
size_t usage_take(usage *u, usage_row **rows);

/* Merges rows[0..n) back (a write that failed), adding their counts to
 * what was recorded since; rows that no longer fit are dropped and
 * counted.  Thread-safe. */
void usage_put_back(usage *u, const usage_row *rows, size_t n);

/* Counts n requests as dropped (rows the writer could not keep). */
void usage_note_dropped(usage *u, uint64_t n);

void usage_stats_get(usage *u, usage_stats *out);

#endif
