/* test_request.c: tests of core/http/request.c (the request object): the
 * PostgREST settings built in C (claims, sub, role, method, path, the
 * headers as JSON, the SQL role), request ids, response headers that could
 * split a response, the answer given once, the cancel hook, and the
 * streamed answer's state (through a fake owner).  Built with
 * ASan and UBSan (spec/c/request.mk); prints "N passed, N failed". */
#include "http/request.h"

#include <stdio.h>
#include <string.h>

#define HARNESS_CHECK_EXIT goto out
#include "test_harness.h"

/* Parses `head` into a fresh request; NULL when it does not parse. */
static request *parsed(const char *head)
{
    request *r = request_new();
    http_limits lim = {8192, 16384, 100, 1 << 20};
    if (!r || http_parse_request(head, strlen(head), &lim, &r->http) <= 0) {
        request_free(r);
        return NULL;
    }
    return r;
}

static int answers, last_status;
static char last_body[512];

static void finish(request *r, int status, const char *ctype, const char *body, size_t n)
{
    (void)r;
    (void)ctype;
    answers++;
    last_status = status;
    snprintf(last_body, sizeof last_body, "%.*s", (int)n, body);
}

static void settings_of_anonymous_request(void)
{
    request *r = parsed("GET /rest/v1/Chat?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    CHECK(r, "parse");
    const char *const *s = request_settings(r);
    CHECK(s, "settings");
    CHECK(strcmp(s[REQ_SET_CLAIMS], "{\"role\":\"anon\"}") == 0, "claims %s", s[REQ_SET_CLAIMS]);
    CHECK(strcmp(s[REQ_SET_SUB], "") == 0, "sub %s", s[REQ_SET_SUB]);
    CHECK(strcmp(s[REQ_SET_ROLE], "anon") == 0, "role %s", s[REQ_SET_ROLE]);
    CHECK(strcmp(s[REQ_SET_METHOD], "GET") == 0, "method %s", s[REQ_SET_METHOD]);
    CHECK(strcmp(s[REQ_SET_PATH], "/rest/v1/Chat") == 0, "path %s", s[REQ_SET_PATH]);
    CHECK(strcmp(s[REQ_SET_HEADERS], "{\"host\":\"a\",\"accept\":\"*/*\"}") == 0, "headers %s", s[REQ_SET_HEADERS]);
    CHECK(strcmp(s[REQ_SET_SQL_ROLE], "anon") == 0, "sql role %s", s[REQ_SET_SQL_ROLE]);
    CHECK(request_settings(r) == s, "built once");
out:
    request_free(r);
}

static void headers_json_joins_repeats_and_escapes(void)
{
    request *r = parsed("POST /x HTTP/1.1\r\nHost: a\r\nX-Tag: one\r\nX-TAG: two \"q\" \\\r\n"
                        "Prefer: return=minimal\r\nx-tag: three\r\n\r\n");
    CHECK(r, "parse");
    const char *const *s = request_settings(r);
    CHECK(s, "settings");
    const char *want = "{\"host\":\"a\",\"x-tag\":\"one, two \\\"q\\\" \\\\, three\",\"prefer\":\"return=minimal\"}";
    CHECK(strcmp(s[REQ_SET_HEADERS], want) == 0, "headers %s", s[REQ_SET_HEADERS]);
out:
    request_free(r);
}

static void claims_and_sql_role_of_a_token(void)
{
    request *r = parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r, "parse");
    strcpy(r->claims.uid, "u-1");
    strcpy(r->claims.role, "supabase_admin"); /* a role the database must not grant */
    strcpy(r->claims.payload, "{\"sub\":\"u-1\",\"role\":\"supabase_admin\"}");
    r->claims.payload_len = strlen(r->claims.payload);
    const char *const *s = request_settings(r);
    CHECK(s, "settings");
    CHECK(strcmp(s[REQ_SET_CLAIMS], r->claims.payload) == 0, "claims as they came: %s", s[REQ_SET_CLAIMS]);
    CHECK(strcmp(s[REQ_SET_SUB], "u-1") == 0, "sub %s", s[REQ_SET_SUB]);
    CHECK(strcmp(s[REQ_SET_ROLE], "supabase_admin") == 0, "claim.role as sent: %s", s[REQ_SET_ROLE]);
    CHECK(strcmp(s[REQ_SET_SQL_ROLE], "authenticated") == 0, "unknown role runs as authenticated: %s",
          s[REQ_SET_SQL_ROLE]);
    request_reset(r);
    CHECK(strcmp(r->claims.role, "anon") == 0 && r->claims.payload_len == 0, "reset forgets the caller");
    CHECK(!r->settings_ready, "reset forgets the settings");
out:
    request_free(r);
}

static void request_ids(void)
{
    request *r = parsed("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1.2:3_x\r\n\r\n");
    request *bad = parsed("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc def\r\n\r\n");
    CHECK(r && bad, "parse");
    request_set_id(r, 1, 2);
    CHECK(strcmp(r->id, "abc-1.2:3_x") == 0, "client id kept: %s", r->id);
    request_set_id(bad, 0xabcdef, 7);
    CHECK(strcmp(bad->id, "0000000000abcdef0000000000000007") == 0, "generated id: %s", bad->id);
out:
    request_free(r);
    request_free(bad);
}

static void response_headers_cannot_split(void)
{
    request *r = parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r, "parse");
    CHECK(request_add_header(r, "X-A", 3, "1\r\nSet-Cookie: x", 16) < 0, "CRLF in a value refused");
    CHECK(request_add_header(r, "X A", 3, "1", 1) < 0, "space in a name refused");
    CHECK(request_add_header(r, "X-A", 3, "a\0b", 3) < 0, "NUL in a value refused");
    CHECK(r->resp_headers.len == 0, "nothing added by refused headers");
    CHECK(request_add_header(r, "Content-Type", 12, "text/csv", 8) == 0, "a good header");
    CHECK(r->has_content_type, "content type noted");
    CHECK(r->resp_headers.len == strlen("Content-Type: text/csv\r\n") &&
              memcmp(r->resp_headers.p, "Content-Type: text/csv\r\n", r->resp_headers.len) == 0,
          "header line written");
out:
    request_free(r);
}

static void answered_once_with_json_errors(void)
{
    request *r = parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r, "parse");
    r->finish = finish;
    strcpy(r->id, "rid");
    answers = 0;
    request_reply_error(r, 404, "not_found", "no \"route\"");
    request_reply(r, 200, "text/plain", "late", 4);
    CHECK(answers == 1, "%d answers", answers);
    CHECK(last_status == 404, "status %d", last_status);
    CHECK(strcmp(last_body, "{\"code\":\"not_found\",\"message\":\"no \\\"route\\\"\",\"details\":null,"
                            "\"hint\":null,\"request_id\":\"rid\"}") == 0,
          "body %s", last_body);
out:
    request_free(r);
}

static void json_bodies(void)
{
    static const struct { const char *ctype; size_t body_len; int want; } cases[] = {
        {"application/json", 2, 1},
        {"application/json; charset=utf-8", 2, 1},
        {"application/vnd.pgrst.object+json", 2, 1},
        {"application/geo+json;q=1", 2, 1},
        {"application/json", 0, 0},          /* no body: nothing to decode */
        {"text/json", 2, 0},
        {"application/x-www-form-urlencoded", 2, 0},
        {"application/ json", 2, 0},
        {"application/vnd json", 2, 0},      /* "json" after the media type's run */
        {"Application/json", 2, 0},           /* as the Lua pattern it replaces: case-sensitive */
        {NULL, 2, 0},
    };
    request *r = NULL;
    for (size_t i = 0; i < COUNT(cases); i++) {
        char head[256];
        if (cases[i].ctype)
            snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\nContent-Type: %s\r\n\r\n", cases[i].ctype);
        else
            snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\n\r\n");
        r = parsed(head);
        CHECK(r, "parse %zu", i);
        r->body = "{}";
        r->body_len = cases[i].body_len;
        CHECK(request_body_is_json(r) == cases[i].want, "%s with %zu bytes: want %d", cases[i].ctype ? cases[i].ctype : "(none)",
              cases[i].body_len, cases[i].want);
        request_free(r);
        r = NULL;
    }
out:
    request_free(r);
}

static int cancels;
static void on_cancel(void *arg)
{
    cancels += *(int *)arg;
}

static void client_gone_cancels_the_wait_once(void)
{
    request *r = request_new();
    CHECK(r, "new");
    int one = 1;
    cancels = 0;
    request_wait(r, on_cancel, &one);
    request_client_gone(r);
    request_client_gone(r);
    CHECK(cancels == 1 && r->client_gone, "%d cancels", cancels);
    request_wait(r, on_cancel, &one);
    request_wait(r, NULL, NULL); /* the wait ended before the client went */
    request_client_gone(r);
    CHECK(cancels == 1, "an ended wait is not cancelled (%d)", cancels);
out:
    request_free(r);
}

/* A fake owner's stream: what it was asked to do. */
static int starts, writes, aborts;
static size_t written;
static int fake_start(request *r, int status, const char *ctype)
{
    (void)r;
    (void)status;
    (void)ctype;
    starts++;
    return 0;
}
static int fake_write(request *r, const char *p, size_t n)
{
    (void)r;
    (void)p;
    writes++;
    written += n;
    return 0;
}
static size_t fake_unsent(const request *r)
{
    (void)r;
    return written;
}
static void fake_abort(request *r)
{
    aborts++;
    request_client_gone(r); /* what closing the connection does */
}
static const request_stream_ops FAKE_OPS = {fake_start, fake_write, fake_unsent, fake_abort};

static void streams_start_once_and_stop_when_the_client_goes(void)
{
    request *r = parsed("GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r, "parse");
    r->finish = finish;
    r->stream_ops = &FAKE_OPS;
    starts = writes = aborts = answers = 0;
    written = 0;
    CHECK(request_stream_write(r, "x", 1) < 0, "no write before the head");
    CHECK(request_stream_start(r, 200, "text/event-stream") == 0 && r->streaming, "start");
    CHECK(request_stream_start(r, 200, NULL) < 0 && starts == 1, "started once");
    CHECK(request_stream_write(r, "abc", 3) == 0 && request_stream_write(r, "", 0) == 0, "writes");
    CHECK(writes == 1 && request_stream_unsent(r) == 3, "an empty piece is not sent (%d writes)", writes);
    request_stream_abort(r);
    request_stream_abort(r);
    CHECK(aborts == 1 && r->client_gone, "aborted once (%d)", aborts);
    CHECK(request_stream_write(r, "x", 1) < 0 && request_stream_unsent(r) == 0, "nothing after the cut");
    request_reply(r, 500, NULL, "", 0);
    CHECK(answers == 1 && last_status == 500, "the end is still the owner's to see");
    request_reset(r);
    CHECK(!r->streaming && !r->stream_ops && r->stream_bytes == 0, "reset");
out:
    request_free(r);
}

int main(void)
{
    static const struct { const char *name; void (*fn)(void); } cases[] = {
        {"settings of an anonymous request", settings_of_anonymous_request},
        {"headers JSON joins repeats and escapes", headers_json_joins_repeats_and_escapes},
        {"claims and SQL role of a token", claims_and_sql_role_of_a_token},
        {"request ids", request_ids},
        {"response headers cannot split", response_headers_cannot_split},
        {"answered once, errors as JSON", answered_once_with_json_errors},
        {"JSON bodies by Content-Type", json_bodies},
        {"client gone cancels the wait once", client_gone_cancels_the_wait_once},
        {"streams start once and stop when the client goes", streams_start_once_and_stop_when_the_client_goes},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        case_name = cases[i].name;
        cases[i].fn();
        finish_case();
    }
    return report();
}
