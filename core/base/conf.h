/* conf.h: the server configuration, set once at start: defaults, then the
 * keys of conf/strata.lua (read by lua/conf_file.h, which hands each value
 * here as text), then the environment: every scalar key can be overridden
 * by the variable STRATA_<KEY> (upper case), and database_url by
 * DATABASE_URL.  Immutable after conf_finish(): workers read it without a
 * lock.  No Lua here: base is the bottom room. */
#ifndef STRATA_CONF_H
#define STRATA_CONF_H

#include <stddef.h>

#define CONF_MAX_ORIGINS 32

typedef struct strata_conf {
    char *listen;               /* owned; "host:port" as configured */
    char *listen_host;          /* owned; host part, brackets removed */
    int listen_port;            /* 1..65535 */
    int workers;                /* worker threads; 0 in the file = number of cores */
    char *database_url;         /* owned; libpq connection string or URL */
    char *sql_dir;              /* owned; the NNN_*.sql migrations /ready waits for */
    char *lua_dir;              /* owned; root of the Lua scripts */
    int ready_interval_ms;      /* readiness probe period */

    /* HTTP limits: each answered with its status and a JSON error. */
    int max_body_bytes;         /* 413 past it */
    int max_header_bytes;       /* 431: request line + headers */
    int max_headers;            /* 431: header fields */
    int max_uri_bytes;          /* 414 */
    int read_timeout_ms;        /* 408: a started request must arrive whole in this time */
    int idle_timeout_ms;        /* keep-alive connection with no request: closed */
    int lingering_timeout_ms;   /* after an error answered before the request was read whole:
                                 * how long the rest is read and dropped before closing */
    int lingering_max_bytes;    /* and how many bytes of it at most */
    int max_connections;        /* per process; past it new connections get 503 and close */
    int shutdown_timeout_ms;    /* SIGTERM: how long in-flight requests may finish */

    int db_pool_min;            /* connections each worker keeps open */
    int db_pool_max;            /* connections each worker may open */
    int db_queue_max;           /* requests that may wait for a connection, per worker */
    int db_wait_timeout_ms;     /* then 503 with Retry-After */
    int db_statement_timeout_ms; /* PostgreSQL's statement_timeout on pool connections */

    char *schemas;              /* owned; exposed schemas, comma-separated, first = default profile */
    int max_rows;               /* most rows one REST read returns */
    int rest_rls;               /* 1: REST statements go through row level security too */
    int rest_plans;             /* 1: REST answers Accept: application/vnd.pgrst.plan (EXPLAIN), PostgREST's db-plan-enabled */
    int rest_aggregates;        /* 1: REST select= may aggregate (col.sum() ...), PostgREST's db-aggregates-enabled */
    char *jwt_secret;           /* owned; HS256 secret (STRATA_JWT_SECRET); NULL: every token is refused */
    char *jwt_aud;              /* owned; a token whose "aud" claim does not name it is refused
                                 * (one without "aud" passes); "" or NULL: not checked */
    int jwt_leeway_s;           /* tolerance on exp and nbf */
    char *jwt_signing_alg;      /* owned; what /auth/v1 signs with: HS256 (the secret), ES256 or RS256 */
    char *jwt_signing_key;      /* owned; PEM private key for ES256 / RS256, or NULL */
    char *jwt_accepted_keys;    /* owned; comma-separated PEM keys still accepted (rotation), or NULL */

    /* /auth/v1 (lua/auth): passwords, sessions, sign-up. */
    int auth_bcrypt_cost;       /* bcrypt's log2 rounds for new hashes */
    int auth_bcrypt_threads;    /* threads computing bcrypt, off the workers' loops */
    int auth_jwt_exp;           /* access token lifetime, seconds */
    int auth_autoconfirm;       /* 1: a sign-up is confirmed at once and gets a session */
    int auth_disable_signup;    /* 1: /auth/v1/signup refuses (admins still create users) */
    char *auth_site_url;        /* owned; where email links lead (GoTrue's SITE_URL) */
    int auth_rate_limit_address; /* sign-in/up, recover, verify requests per client address per 5 min; 0: none */
    int auth_rate_limit_email;  /* the same per email address (all instances); 0: none */

    int rate_limit_user_per_minute; /* API budget per authenticated user; 0: none */
    int rate_limit_anon_per_minute; /* API budget per client address without a token; 0: none */
    int rate_limit_max_keys;    /* rate counters kept; past it the idlest are evicted */
    int rate_limit_flush_ms;    /* period of the rate_limit_tracking writes */
    int rate_limit_sweep_ms;    /* period of strata_rate_limit_sweep() (idle cluster cells) */
    int log_queue_max;          /* log rows kept in memory (database away); past it dropped, counted */
    int log_purge_interval_ms;  /* period of the log retention purge */
    int log_purge_batch;        /* rows per table per purge statement */
    int jobs_tick_ms;           /* period of the jobs tick (lua/jobs.lua); 0: no jobs run */
    char *log_hash_key;         /* owned; key of hash_email's HMAC; NULL: the JWT secret */
    int log_test_lose_answers;  /* tests only: the log writer loses this many commit answers (log_db.h) */
    int lua_time_limit_ms;      /* per slice of a handler between two waits; past it: 500 */
    int lua_memory_limit_mb;    /* per Lua state, while a handler runs; past it: 500; 0: none */
    char *http_ca_file;         /* owned; CA bundle strata.http.request verifies TLS with; NULL: the system's */
    int stream_buffer_max;      /* a streamed answer's unsent bytes past which res.write waits */
    int stream_timeout_ms;      /* how long it waits for them to drain before cutting the stream */
    char *access_log;           /* owned; "stderr", "off" or a file path */
    int reload_watch;           /* 1: reload when files under lua_dir change */
    int reload_debounce_ms;     /* quiet time after a change before reloading */

    /* CORS: a request whose Origin is listed (or "*" is) gets the headers. */
    char *cors_origins[CONF_MAX_ORIGINS]; /* owned strings */
    int cors_origin_count;
    char *cors_methods;         /* owned; Access-Control-Allow-Methods */
    char *cors_headers;         /* owned; Access-Control-Allow-Headers */
    char *cors_expose;          /* owned; Access-Control-Expose-Headers */
    int cors_max_age;           /* seconds, preflight cache */

    /* AI providers (lua/providers/): base URLs and API keys.  The keys are
     * secrets: strata.config hands them to the provider adapters only
     * (config.api_key(provider)), never in a table a script could dump. */
    char *google_base_url;      /* owned */
    char *google_api_key;       /* owned; NULL: none */
    char *openai_base_url;      /* owned */
    char *openai_api_key;       /* owned; NULL: none */
    char *anthropic_base_url;   /* owned */
    char *anthropic_api_key;    /* owned; NULL: none */
} strata_conf;

/* How a key's value is written: a scalar's text is what its environment
 * variable would hold ("8080", "true", "stderr"); cors_origins is the one
 * list. */
typedef enum conf_kind { CONF_STRING, CONF_INT, CONF_BOOL, CONF_LIST, CONF_UNKNOWN } conf_kind;

/* Every function below returns 0, or -1 with a message in err that begins
 * with `where` (the file's path, the variable) and names the key. */

/* Zeroes conf and sets every default. */
int conf_init(strata_conf *conf, char *err, size_t errlen);

/* The scalar keys, in a fixed order: the i-th, or NULL past the last. */
const char *conf_key(size_t i);

/* CONF_UNKNOWN for a key that does not exist. */
conf_kind conf_key_kind(const char *key);

/* Sets a scalar key from its text, checked as the environment's is. */
int conf_set(strata_conf *conf, const char *key, const char *text, const char *where, char *err,
             size_t errlen);

/* Appends one entry to a list key (cors_origins: CONF_MAX_ORIGINS at most). */
int conf_add(strata_conf *conf, const char *key, const char *text, const char *where, char *err,
             size_t errlen);

/* Applies the environment over what is set, then checks the whole (listen,
 * database_url, the pool bounds) and resolves workers = 0; `path` names the
 * file in messages. */
int conf_finish(strata_conf *conf, const char *path, char *err, size_t errlen);

/* Frees what conf owns; safe on a zeroed or partly loaded conf. */
void conf_free(strata_conf *conf);

#endif
