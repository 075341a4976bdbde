/* request.c: one HTTP exchange (see request.h).  Uses http.h for the
 * parsed request and the header writer, auth/jwt.h to verify the caller,
 * base/buf.h for what it builds. */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

request *request_new(void)
{
    request *r = calloc(1, sizeof *r);
    if (r)
        jwt_claims_anon(&r->claims);
    return r;
}

void request_free(request *r)
{
    if (!r)
        return;
    buf_free(&r->resp_headers);
    buf_free(&r->scratch);
    buf_free(&r->settings_buf);
    free(r);
}

#define KEEP_BYTES 16384 /* buffers past this are freed between exchanges */

void request_reset(request *r)
{
    r->http.method.n = r->http.path.n = r->http.query.n = 0;
    r->http.header_count = 0;
    r->body = NULL;
    r->body_len = 0;
    r->id[0] = r->remote[0] = '\0';
    r->started_us = 0;
    r->head_only = 0;
    jwt_claims_anon(&r->claims);
    r->resp_headers.len = 0;
    buf_shrink(&r->resp_headers, KEEP_BYTES);
    r->has_content_type = 0;
    r->route_id = 0;
    r->error_category = r->error_detail = NULL;
    r->scratch.len = 0;
    buf_shrink(&r->scratch, KEEP_BYTES);
    r->answered = 0;
    r->cancel = NULL;
    r->cancel_arg = NULL;
    r->client_gone = 0;
    r->settings_ready = 0;
    r->settings_buf.len = 0;
    buf_shrink(&r->settings_buf, KEEP_BYTES);
    r->streaming = 0;
    r->stream_status = 0;
    r->stream_bytes = 0;
    r->drained = NULL;
    r->drained_arg = NULL;
    r->finish = NULL;
    r->stream_ops = NULL;
    r->owner = NULL;
}

static int id_char_ok(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
           ch == '_' || ch == '.' || ch == ':';
}

void request_set_id(request *r, uint64_t prefix, uint64_t seq)
{
    const http_header *h = http_find_header(&r->http, "x-request-id");
    if (h && h->value.n > 0 && h->value.n < sizeof r->id) {
        size_t i = 0;
        while (i < h->value.n && id_char_ok(h->value.p[i]))
            i++;
        if (i == h->value.n) {
            memcpy(r->id, h->value.p, h->value.n);
            r->id[h->value.n] = '\0';
            return;
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        r->id[i] = hex[(prefix >> (60 - 4 * i)) & 15];
        r->id[16 + i] = hex[(seq >> (60 - 4 * i)) & 15];
    }
    r->id[32] = '\0';
}

int request_authenticate(request *r, jwt_key *key, jwt_cache *cache, int64_t now, int leeway_s, char *why,
                         size_t whylen)
{
    const http_header *a = http_find_header(&r->http, "authorization");
    const http_header *k = http_find_header(&r->http, "apikey");
    const char *tok;
    size_t len;
    int has = jwt_pick_token(a ? a->value.p : NULL, a ? a->value.n : 0, k ? k->value.p : NULL,
                             k ? k->value.n : 0, &tok, &len);
    jwt_claims_anon(&r->claims);
    if (has == 0)
        return JWT_OK;
    if (has < 0) {
        snprintf(why, whylen, "empty token");
        return JWT_MALFORMED;
    }
    int rc;
    if (cache && jwt_cache_get(cache, tok, len, &r->claims)) {
        rc = jwt_check_time(&r->claims, now, leeway_s, why, whylen);
    } else {
        rc = jwt_verify(tok, len, key, now, leeway_s, &r->claims, why, whylen);
        if (rc == JWT_OK && cache)
            jwt_cache_put(cache, tok, len, &r->claims);
    }
    if (rc != JWT_OK)
        jwt_claims_anon(&r->claims); /* nothing of a refused token stays */
    return rc;
}

static int media_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '+' ||
           c == '-';
}

int request_body_is_json(const request *r)
{
    if (r->body_len == 0)
        return 0;
    const http_header *h = http_find_header(&r->http, "content-type");
    static const char app[] = "application/";
    if (!h || h->value.n < sizeof app - 1 || memcmp(h->value.p, app, sizeof app - 1) != 0)
        return 0;
    const char *p = h->value.p + sizeof app - 1, *end = h->value.p + h->value.n;
    while (p < end && media_char(*p)) {
        if (end - p >= 4 && memcmp(p, "json", 4) == 0)
            return 1;
        p++;
    }
    return 0;
}

int request_add_header(request *r, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0 || name_len > 256 || value_len > 8192)
        return -1;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch == ':' || ch >= 127)
            return -1;
    }
    if (memchr(value, '\r', value_len) || memchr(value, '\n', value_len) || memchr(value, '\0', value_len))
        return -1;
    if (name_len == 12 && strncasecmp(name, "content-type", 12) == 0)
        r->has_content_type = 1;
    buf *out = &r->resp_headers;
    if (buf_reserve(out, name_len + value_len + 4) < 0)
        return -1;
    out->len += http_write_header(out->p + out->len, name_len + value_len + 4, name, name_len, value, value_len);
    return 0;
}

void request_reply(request *r, int status, const char *content_type, const char *body, size_t body_len)
{
    if (r->answered)
        return;
    r->answered = 1;
    r->cancel = NULL;
    r->drained = NULL;
    r->finish(r, status, r->has_content_type ? NULL : content_type, body, body_len);
}

void request_reply_error(request *r, int status, const char *code, const char *message)
{
    buf *b = &r->scratch;
    b->len = 0;
    int rc = buf_add_str(b, "{\"code\":\"");
    rc |= buf_add_json_escaped(b, code, strlen(code));
    rc |= buf_add_str(b, "\",\"message\":\"");
    rc |= buf_add_json_escaped(b, message, strlen(message));
    rc |= buf_add_str(b, "\",\"details\":null,\"hint\":null,\"request_id\":\"");
    rc |= buf_add_str(b, r->id);
    rc |= buf_add_str(b, "\"}");
    request_reply(r, status, "application/json", rc ? "" : b->p, rc ? 0 : b->len);
}

void request_wait(request *r, void (*cancel)(void *), void *arg)
{
    r->cancel = cancel;
    r->cancel_arg = arg;
}

int request_stream_start(request *r, int status, const char *content_type)
{
    if (r->answered || r->streaming || r->client_gone || !r->stream_ops)
        return -1;
    r->streaming = 1;
    r->stream_status = status;
    return r->stream_ops->start(r, status, r->has_content_type ? NULL : content_type);
}

int request_stream_write(request *r, const char *p, size_t n)
{
    if (!r->streaming || r->answered || r->client_gone)
        return -1;
    return n ? r->stream_ops->write(r, p, n) : 0;
}

size_t request_stream_unsent(const request *r)
{
    return r->streaming && !r->client_gone ? r->stream_ops->unsent(r) : 0;
}

void request_stream_on_drain(request *r, size_t below, void (*drained)(void *), void *arg)
{
    r->drain_below = below;
    r->drained = drained;
    r->drained_arg = arg;
}

void request_stream_abort(request *r)
{
    r->drained = NULL;
    if (r->streaming && !r->client_gone)
        r->stream_ops->abort(r);
}

void request_client_gone(request *r)
{
    r->client_gone = 1;
    void (*cancel)(void *) = r->cancel;
    r->cancel = NULL;
    if (cancel)
        cancel(r->cancel_arg);
}

/* ---- the PostgREST settings ---- */

static int same_name_ci(http_str a, http_str b)
{
    return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

static int add_lower(buf *b, http_str s)
{
    if (buf_reserve(b, s.n) < 0)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        b->p[b->len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 when there is
 * none there. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return len;
}

/* s[0..n) with each byte that is not part of well-formed UTF-8 replaced by
 * U+FFFD, as PostgREST decodes headers (leniently): PostgreSQL refuses
 * text that is not UTF-8, and a header byte outside it (obs-text, which
 * HTTP allows) must not make every statement of the request fail.  JSON-
 * escaped when `json` is 1. */
static int add_utf8_lenient(buf *b, const char *s, size_t n, int json)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    int rc = 0;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        rc |= json ? buf_add_json_escaped(b, s + run, i - run) : buf_add(b, s + run, i - run);
        rc |= buf_add(b, fffd, 3);
        run = ++i;
    }
    return rc | (json ? buf_add_json_escaped(b, s + run, n - run) : buf_add(b, s + run, n - run));
}

/* {"name": "value", ...} with lower-case names; a repeated field's values
 * joined with ", " in order (RFC 9110's list rule), as PostgREST does. */
static int add_headers_json(buf *b, const http_request *h)
{
    int rc = buf_add(b, "{", 1);
    int first = 1;
    for (size_t i = 0; i < h->header_count && rc == 0; i++) {
        const http_header *hi = &h->headers[i];
        size_t j = 0;
        while (j < i && !same_name_ci(h->headers[j].name, hi->name))
            j++;
        if (j < i)
            continue; /* joined into the first occurrence */
        rc |= buf_add_str(b, first ? "\"" : ",\"");
        first = 0;
        rc |= add_lower(b, hi->name); /* a token: nothing to escape */
        rc |= buf_add_str(b, "\":\"");
        rc |= add_utf8_lenient(b, hi->value.p, hi->value.n, 1);
        for (size_t k = i + 1; k < h->header_count; k++) {
            if (!same_name_ci(h->headers[k].name, hi->name))
                continue;
            rc |= buf_add(b, ", ", 2);
            rc |= add_utf8_lenient(b, h->headers[k].value.p, h->headers[k].value.n, 1);
        }
        rc |= buf_add(b, "\"", 1);
    }
    return rc | buf_add(b, "}", 1);
}

/* A token may name any role; only the API roles exist in the database, so
 * another name runs as authenticated (with a sub) or anon, never as the
 * session's own, more privileged, user. */
static const char *sql_role(const jwt_claims *c)
{
    if (strcmp(c->role, "anon") == 0 || strcmp(c->role, "authenticated") == 0 ||
        strcmp(c->role, "service_role") == 0)
        return c->role;
    return c->uid[0] ? "authenticated" : "anon";
}

const char *const *request_settings(request *r)
{
    if (r->settings_ready)
        return r->settings;
    buf *b = &r->settings_buf;
    const jwt_claims *c = &r->claims;
    size_t at[REQ_NSETTINGS];
    b->len = 0;
    int rc = 0;
    at[REQ_SET_CLAIMS] = b->len;
    rc |= c->payload_len ? buf_add(b, c->payload, c->payload_len) : buf_add_str(b, "{\"role\":\"anon\"}");
    rc |= buf_add(b, "", 1);
    at[REQ_SET_SUB] = b->len;
    rc |= buf_add(b, c->uid, strlen(c->uid) + 1);
    at[REQ_SET_ROLE] = b->len;
    rc |= buf_add(b, c->role, strlen(c->role) + 1);
    at[REQ_SET_METHOD] = b->len;
    rc |= buf_add(b, r->http.method.p, r->http.method.n);
    rc |= buf_add(b, "", 1);
    at[REQ_SET_PATH] = b->len;
    rc |= add_utf8_lenient(b, r->http.path.p, r->http.path.n, 0);
    rc |= buf_add(b, "", 1);
    at[REQ_SET_HEADERS] = b->len;
    rc |= add_headers_json(b, &r->http);
    rc |= buf_add(b, "", 1);
    at[REQ_SET_SQL_ROLE] = b->len;
    rc |= buf_add_str(b, sql_role(c));
    rc |= buf_add(b, "", 1);
    if (rc)
        return NULL;
    for (int i = 0; i < REQ_NSETTINGS; i++)
        r->settings[i] = b->p + at[i];
    r->settings_ready = 1;
    return r->settings;
}

const char *const *request_service_settings(request *r)
{
    const char *const *caller = request_settings(r);
    if (!caller)
        return NULL;
    r->service_settings[REQ_SET_CLAIMS] = "{\"role\":\"service_role\"}";
    r->service_settings[REQ_SET_SUB] = "";
    r->service_settings[REQ_SET_ROLE] = "service_role";
    r->service_settings[REQ_SET_METHOD] = caller[REQ_SET_METHOD];
    r->service_settings[REQ_SET_PATH] = caller[REQ_SET_PATH];
    r->service_settings[REQ_SET_HEADERS] = caller[REQ_SET_HEADERS];
    r->service_settings[REQ_SET_SQL_ROLE] = "service_role";
    return r->service_settings;
}

const char *const *request_bypass_settings(request *r)
{
    const char *const *caller = request_settings(r);
    if (!caller)
        return NULL;
    for (int i = 0; i < REQ_NSETTINGS; i++)
        r->bypass_settings[i] = caller[i];
    r->bypass_settings[REQ_SET_SQL_ROLE] = "service_role";
    return r->bypass_settings;
}
