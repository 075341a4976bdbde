/* conf.c: the keys of strata_conf (see conf.h), their defaults, their
 * textual form and the environment.  Keys are declared once in FIELDS,
 * which drives the defaults, the environment and the file alike: whatever
 * reads conf/strata.lua (lua/conf_file.c) hands each key here as the text
 * an environment variable would hold, so a value means the same wherever
 * it is written. */
#include "conf.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct field {
    const char *key;
    conf_kind kind;
    size_t offset;
    long min, max;       /* for CONF_INT */
    const char *dflt;    /* default, as it would be written in the environment */
} field;

#define F(key, kind, min, max, dflt) {#key, kind, offsetof(strata_conf, key), min, max, dflt}
static const field FIELDS[] = {
    F(listen, CONF_STRING, 0, 0, "127.0.0.1:8080"),
    F(workers, CONF_INT, 0, 256, "0"),
    F(database_url, CONF_STRING, 0, 0, NULL),
    F(sql_dir, CONF_STRING, 0, 0, "sql"),
    F(lua_dir, CONF_STRING, 0, 0, "lua"),
    F(ready_interval_ms, CONF_INT, 10, 3600000, "1000"),
    F(max_body_bytes, CONF_INT, 0, 1 << 30, "1048576"),
    F(max_header_bytes, CONF_INT, 256, 1 << 20, "16384"),
    F(max_headers, CONF_INT, 1, 100, "100"),
    F(max_uri_bytes, CONF_INT, 16, 1 << 20, "8192"),
    F(read_timeout_ms, CONF_INT, 10, 3600000, "10000"),
    F(idle_timeout_ms, CONF_INT, 10, 3600000, "60000"),
    F(lingering_timeout_ms, CONF_INT, 0, 3600000, "5000"),
    F(lingering_max_bytes, CONF_INT, 0, 1 << 30, "67108864"),
    F(max_connections, CONF_INT, 1, 1000000, "10000"),
    F(shutdown_timeout_ms, CONF_INT, 0, 3600000, "10000"),
    F(db_pool_min, CONF_INT, 0, 1000, "1"),
    F(db_pool_max, CONF_INT, 1, 1000, "4"),
    F(db_queue_max, CONF_INT, 0, 1000000, "1024"),
    F(db_wait_timeout_ms, CONF_INT, 1, 3600000, "5000"),
    F(db_statement_timeout_ms, CONF_INT, 0, 86400000, "30000"),
    F(schemas, CONF_STRING, 0, 0, "public,orchestrator,agentflow"),
    F(max_rows, CONF_INT, 1, 100000000, "1000"),
    F(rest_rls, CONF_BOOL, 0, 0, "false"),
    F(rest_aggregates, CONF_BOOL, 0, 0, "false"),
    F(rest_plans, CONF_BOOL, 0, 0, "false"),
    F(jwt_secret, CONF_STRING, 0, 0, NULL),
    F(jwt_aud, CONF_STRING, 0, 0, "authenticated"),
    F(jwt_leeway_s, CONF_INT, 0, 3600, "30"),
    F(jwt_signing_alg, CONF_STRING, 0, 0, "HS256"),
    F(jwt_signing_key, CONF_STRING, 0, 0, NULL),
    F(jwt_accepted_keys, CONF_STRING, 0, 0, NULL),
    F(auth_bcrypt_cost, CONF_INT, 4, 31, "10"),
    F(auth_bcrypt_threads, CONF_INT, 1, 64, "2"),
    F(auth_jwt_exp, CONF_INT, 30, 604800, "3600"),
    F(auth_autoconfirm, CONF_BOOL, 0, 0, "true"),
    F(auth_disable_signup, CONF_BOOL, 0, 0, "false"),
    F(auth_site_url, CONF_STRING, 0, 0, "http://localhost:3000"),
    F(auth_rate_limit_address, CONF_INT, 0, 100000000, "30"),
    F(auth_rate_limit_email, CONF_INT, 0, 100000000, "10"),
    F(rate_limit_user_per_minute, CONF_INT, 0, 100000000, "1200"),
    F(rate_limit_anon_per_minute, CONF_INT, 0, 100000000, "600"),
    F(rate_limit_max_keys, CONF_INT, 1024, 100000000, "100000"),
    F(rate_limit_flush_ms, CONF_INT, 10, 3600000, "1000"),
    F(rate_limit_sweep_ms, CONF_INT, 100, 86400000, "60000"),
    F(log_queue_max, CONF_INT, 1, 100000000, "100000"),
    F(log_purge_interval_ms, CONF_INT, 100, 604800000, "3600000"),
    F(log_purge_batch, CONF_INT, 1, 1000000, "5000"),
    F(jobs_tick_ms, CONF_INT, 0, 3600000, "1000"),
    F(log_hash_key, CONF_STRING, 0, 0, NULL),
    F(log_test_lose_answers, CONF_INT, 0, 1000000, "0"),
    F(lua_time_limit_ms, CONF_INT, 10, 3600000, "1000"),
    F(lua_memory_limit_mb, CONF_INT, 0, 1 << 20, "256"),
    F(http_ca_file, CONF_STRING, 0, 0, NULL),
    F(stream_buffer_max, CONF_INT, 1024, 1 << 30, "262144"),
    F(stream_timeout_ms, CONF_INT, 10, 3600000, "30000"),
    F(access_log, CONF_STRING, 0, 0, "stderr"),
    F(reload_watch, CONF_BOOL, 0, 0, "true"),
    F(reload_debounce_ms, CONF_INT, 0, 60000, "200"),
    F(cors_methods, CONF_STRING, 0, 0, "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    F(cors_headers, CONF_STRING, 0, 0,
      "authorization, apikey, content-type, prefer, range, range-unit, accept-profile, "
      "content-profile, x-client-info, x-request-id"),
    F(cors_expose, CONF_STRING, 0, 0, "content-range, content-location, preference-applied, x-request-id"),
    F(cors_max_age, CONF_INT, 0, 86400 * 7, "86400"),
    F(google_base_url, CONF_STRING, 0, 0, "https://generativelanguage.googleapis.com"),
    F(google_api_key, CONF_STRING, 0, 0, NULL),
    F(openai_base_url, CONF_STRING, 0, 0, "https://api.openai.com"),
    F(openai_api_key, CONF_STRING, 0, 0, NULL),
    F(anthropic_base_url, CONF_STRING, 0, 0, "https://api.anthropic.com"),
    F(anthropic_api_key, CONF_STRING, 0, 0, NULL),
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

/* Sets one field from its textual form (an environment value or a default). */
static int set_text(strata_conf *c, const field *f, const char *v, const char *where,
                    char *err, size_t errlen)
{
    char *at = (char *)c + f->offset;
    char *end;
    switch (f->kind) {
    case CONF_STRING: {
        char *s = strdup(v);
        if (!s)
            return fail(err, errlen, "%s: out of memory (%s)", where, f->key);
        free(*(char **)at);
        *(char **)at = s;
        return 0;
    }
    case CONF_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(int *)at = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(int *)at = 0;
        else
            return fail(err, errlen, "%s: '%s' must be true or false", where, f->key);
        return 0;
    case CONF_INT: {
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < f->min || n > f->max) {
            snprintf(err, errlen, "%s: '%s' must be an integer from %ld to %ld", where, f->key,
                     f->min, f->max);
            return -1;
        }
        *(int *)at = (int)n;
        return 0;
    }
    case CONF_LIST:
    case CONF_UNKNOWN:
        break; /* never in FIELDS */
    }
    return -1;
}

static const field *find(const char *key)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(FIELDS[i].key, key) == 0)
            return &FIELDS[i];
    return NULL;
}

const char *conf_key(size_t i)
{
    return i < NFIELDS ? FIELDS[i].key : NULL;
}

conf_kind conf_key_kind(const char *key)
{
    if (strcmp(key, "cors_origins") == 0)
        return CONF_LIST;
    const field *f = find(key);
    return f ? f->kind : CONF_UNKNOWN;
}

int conf_set(strata_conf *c, const char *key, const char *text, const char *where, char *err,
             size_t errlen)
{
    const field *f = find(key);
    if (!f)
        return fail(err, errlen, "%s: unknown key '%s'", where, key);
    return set_text(c, f, text, where, err, errlen);
}

int conf_add(strata_conf *c, const char *key, const char *text, const char *where, char *err,
             size_t errlen)
{
    if (strcmp(key, "cors_origins") != 0)
        return fail(err, errlen, "%s: '%s' is not a list", where, key);
    if (c->cors_origin_count >= CONF_MAX_ORIGINS)
        return fail(err, errlen, "%s: 'cors_origins' has too many entries%s", where, "");
    if (!(c->cors_origins[c->cors_origin_count] = strdup(text)))
        return fail(err, errlen, "%s: out of memory%s", where, "");
    c->cors_origin_count++;
    return 0;
}

static int apply_env(strata_conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        char name[64] = "STRATA_";
        size_t n = strlen(name);
        for (const char *k = FIELDS[i].key; *k && n < sizeof name - 1; k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = '\0';
        const char *v = getenv(name);
        if (v && *v && set_text(c, &FIELDS[i], v, name, err, errlen))
            return -1;
    }
    const char *v = getenv("DATABASE_URL");
    return v && *v ? conf_set(c, "database_url", v, "DATABASE_URL", err, errlen) : 0;
}

/* Splits "host:port" (the last colon separates; "[::1]:80" allowed). */
static int parse_listen(strata_conf *c, char *err, size_t errlen)
{
    const char *s = c->listen;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return fail(err, errlen, "listen: expected host:port, got '%s'%s", s, "");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
        return fail(err, errlen, "listen: bad port in '%s'%s", s, "");
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (!(c->listen_host = strndup(s, hlen)))
        return fail(err, errlen, "listen: %s%s", "out of memory", "");
    c->listen_port = (int)port;
    return 0;
}

int conf_init(strata_conf *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].dflt && set_text(c, &FIELDS[i], FIELDS[i].dflt, "default", err, errlen))
            return -1;
    return 0;
}

int conf_finish(strata_conf *c, const char *path, char *err, size_t errlen)
{
    if (apply_env(c, err, errlen) || parse_listen(c, err, errlen))
        return -1;
    if (!c->database_url)
        return fail(err, errlen, "no database: set DATABASE_URL or database_url in %s%s", path, "");
    if (c->db_pool_min > c->db_pool_max)
        return fail(err, errlen, "%s: db_pool_min must not exceed db_pool_max%s", path, "");
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    return 0;
}

void conf_free(strata_conf *c)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].kind == CONF_STRING)
            free(*(char **)((char *)c + FIELDS[i].offset));
    free(c->listen_host);
    for (int i = 0; i < c->cors_origin_count; i++)
        free(c->cors_origins[i]);
    memset(c, 0, sizeof *c);
}
