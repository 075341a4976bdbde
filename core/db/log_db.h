/* log_db.h: seed 003's log rows (error_logs, user_activity_logs,
 * agent_activity_logs, usage_logs) written off the request path, and the
 * logging_settings that decide them.
 *
 * Workers push rows (JSON objects) into one in-memory queue per process;
 * one thread with its own blocking libpq connection (as ratelimit_db.h)
 *   - writes them in multi-row INSERTs every performance_settings
 *     .batch_interval_ms or as soon as batch_size rows wait (one row per
 *     statement when batch_writes is false).  Each row carries an id made
 *     here, and the INSERT skips ids already stored, so a batch whose
 *     answer was lost is retried without duplicates;
 *   - keeps rows while the database is away (bounded by queue_max; past
 *     it rows are dropped and counted per table) and retries them; a row
 *     the database refuses as data (a check constraint, a bad uuid) is
 *     found by writing the batch row by row, dropped and counted;
 *   - LISTENs to strata_admin_config (sql/091) and re-reads
 *     logging_settings when it moves, and on every reconnect;
 *   - every purge_interval_ms, when it holds the advisory lock (one
 *     instance at a time on a shared database), deletes rows past
 *     log_retention_days in batches of purge_batch rows
 *     (strata_purge_logs_batch, sql/160_logging.sql);
 *   - at stop, writes what is queued once more.
 * Knows nothing of HTTP or Lua. */
#ifndef STRATA_LOG_DB_H
#define STRATA_LOG_DB_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

enum { LOG_ERROR, LOG_USER, LOG_AGENT, LOG_USAGE, LOG_NTABLES };

typedef struct log_db log_db;

/* The settings C itself applies (error rows, the rows strata.log builds,
 * the access log); what a rule decides (switches, toggles, sampling) is
 * applied by the Lua side from the settings' JSON. */
typedef struct log_flags {
    int error_enabled;     /* error_logging_enabled */
    int anonymize_ip;      /* privacy_settings.anonymize_ip */
    int log_user_agent;    /* privacy_settings.log_user_agent */
    int hash_email;        /* privacy_settings.hash_email */
} log_flags;

/* Starts the thread.  The URL is copied.  NULL with a message in err. */
log_db *log_db_start(const char *database_url, size_t queue_max, int purge_interval_ms, int purge_batch, char *err,
                     size_t errlen);

/* Test only (conf log_test_lose_answers): the answers of the next n
 * INSERTs that commit are "lost" (the connection is dropped right after),
 * so those rows are retried as after a real loss and must be stored once. */
void log_db_lose_answers(log_db *d, int n);

/* Writes what is queued (one attempt; what fails is counted as dropped),
 * stops and joins the thread, frees d.  NULL is a no-op. */
void log_db_stop(log_db *d);

/* The table's name ("error_logs", ...) or NULL; the index from a name or -1. */
const char *log_db_table_name(int table);
/* The column log_db_push stamps with the time of the action (a valid table). */
const char *log_db_stamp_column(int table);
int log_db_table_index(const char *name, size_t n);

/* Queues one row of `table`: json is one JSON object (len bytes); an "id"
 * (uuid v4, written to id_out when not NULL) and the time stamp are added
 * here.  0 when queued, -1 when dropped (queue full, out of memory).
 * Thread-safe; no system call unless a batch is complete. */
int log_db_push(log_db *d, int table, const char *json, size_t len, char id_out[37]);

/* Thread-safe snapshot of the flags (cheap: atomics). */
void log_db_flags(log_db *d, log_flags *out);

/* 1 when path[0..n) starts with one of exclude_sensitive_paths. */
int log_db_path_excluded(log_db *d, const char *path, size_t n);

/* Moves when the settings were re-read (0 before the first read). */
uint64_t log_db_settings_version(log_db *d);

/* The settings' JSON (logging_settings' config_data, or the defaults of
 * get_logging_config()) appended to out, its version in *version.  0 or
 * -1 (out of memory, or not read yet). */
int log_db_settings_json(log_db *d, buf *out, uint64_t *version);

/* Appends the metrics (Prometheus text).  0 or -1 when out of memory. */
int log_db_metrics(log_db *d, buf *out);

#endif
