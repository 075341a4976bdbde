/* conf.h: the server configuration, read once at start from conf/strata.lua
 * (a Lua chunk returning a table) and overridden by STRATA_* environment
 * variables and DATABASE_URL.  Immutable after conf_load(). */
#ifndef STRATA_CONF_H
#define STRATA_CONF_H

#include <stddef.h>

typedef struct strata_conf {
    char *listen_host;        /* owned; address to bind, e.g. "127.0.0.1" */
    int listen_port;          /* 1..65535 */
    char *database_url;       /* owned; libpq connection string or URL */
    char *sql_dir;            /* owned; directory of the NNN_*.sql migrations */
    int ready_interval_ms;    /* readiness probe period, >= 10 */
} strata_conf;

/* Loads `path` and applies the environment.  On failure returns -1 and
 * writes a message naming the file and the key into err. */
int conf_load(strata_conf *conf, const char *path, char *err, size_t errlen);

/* Frees what conf owns; safe on a zeroed or partly loaded conf. */
void conf_free(strata_conf *conf);

#endif
