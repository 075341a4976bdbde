/* error_rows.c: see error_rows.h.  Uses log_db, request and buf. */
#include "error_rows.h"

#include "obs/accesslog.h"

#include <stdio.h>
#include <string.h>

#define MAX_DETAIL 4000   /* bytes of Lua error and traceback kept */
#define MAX_ANSWER 1000   /* bytes of the answer's body kept */

static int add_field(buf *b, const char *name, const char *v, size_t n)
{
    int rc = buf_add_str(b, ",\"");
    rc |= buf_add_str(b, name);
    rc |= buf_add_str(b, "\":\"");
    rc |= buf_add_json_escaped(b, v, n);
    return rc | buf_add_str(b, "\"");
}

/* A 5xx answered by a built-in (the database, the pool) or by a handler
 * that returned it is the system's; a Lua error is the application's. */
static const char *error_type(const request *r)
{
    if (r->error_detail)
        return "app";
    if (r->http.path.n >= 8 && memcmp(r->http.path.p, "/rest/v1", 8) == 0)
        return "api";
    return "system";
}

/* 1 when body is strata's own error object ({"code":...}): a body a
 * handler built may hold data, and bodies are never logged. */
static int own_error(const char *body, size_t len)
{
    return body && len >= 8 && memcmp(body, "{\"code\":", 8) == 0;
}

/* The first line of the Lua error (the message), else strata's error
 * answer, else the status. */
static int message(const request *r, int status, const char *body, size_t body_len, buf *b)
{
    const char *m = r->error_detail;
    size_t n = 0;
    if (m) {
        n = strcspn(m, "\n");
    } else if (own_error(body, body_len)) {
        m = body;
        n = body_len > MAX_ANSWER ? MAX_ANSWER : body_len;
    }
    if (n == 0) {
        char s[32];
        snprintf(s, sizeof s, "HTTP %d", status);
        return add_field(b, "error_message", s, strlen(s));
    }
    return add_field(b, "error_message", m, n);
}

void error_rows_add(log_db *d, const request *r, int status, const char *body, size_t body_len)
{
    int cut = r->streaming && r->error_detail; /* a Lua error after the head: its status is out */
    if (!d || (!cut && (status < 500 || status > 599)))
        return;
    log_flags f;
    log_db_flags(d, &f);
    if (!f.error_enabled || log_db_path_excluded(d, r->http.path.p, r->http.path.n))
        return;
    char category[48];
    if (r->error_category)
        snprintf(category, sizeof category, "%s", r->error_category);
    else
        snprintf(category, sizeof category, "http_%d", status);
    buf b = {0};
    int rc = buf_add_str(&b, "{\"severity\":\"");
    rc |= buf_add_str(&b, status == 500 || cut ? "critical" : "error");
    rc |= buf_add_str(&b, "\"");
    rc |= add_field(&b, "error_type", error_type(r), strlen(error_type(r)));
    rc |= add_field(&b, "error_category", category, strlen(category));
    rc |= message(r, status, body, body_len, &b);
    rc |= add_field(&b, "request_path", r->http.path.p, r->http.path.n > 500 ? 500 : r->http.path.n);
    rc |= add_field(&b, "request_method", r->http.method.p, r->http.method.n > 10 ? 10 : r->http.method.n);
    if (r->claims.uid[0])
        rc |= add_field(&b, "user_id", r->claims.uid, strlen(r->claims.uid));
    const http_header *ua = f.log_user_agent ? http_find_header(&r->http, "user-agent") : NULL;
    if (ua)
        rc |= add_field(&b, "user_agent", ua->value.p, ua->value.n);
    char ip[48];
    if (f.anonymize_ip)
        accesslog_anonymize_ip(r->remote, ip, sizeof ip);
    else
        snprintf(ip, sizeof ip, "%s", r->remote);
    if (ip[0])
        rc |= add_field(&b, "ip_address", ip, strlen(ip));
    rc |= buf_add_str(&b, ",\"error_details\":{\"status\":");
    rc |= buf_add_u64(&b, (uint64_t)status);
    rc |= add_field(&b, "request_id", r->id, strlen(r->id));
    if (cut)
        rc |= buf_add_str(&b, ",\"stream_cut\":true");
    if (r->error_detail) {
        size_t n = strlen(r->error_detail);
        rc |= add_field(&b, "lua_error", r->error_detail, n > MAX_DETAIL ? MAX_DETAIL : n);
    } else if (own_error(body, body_len)) {
        rc |= add_field(&b, "answer", body, body_len > MAX_ANSWER ? MAX_ANSWER : body_len);
    }
    rc |= buf_add_str(&b, "}}");
    if (rc == 0)
        log_db_push(d, LOG_ERROR, b.p, b.len, NULL);
    buf_free(&b);
}
