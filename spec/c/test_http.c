/* test_http.c: table-driven tests of core/http.c (the request parser, the
 * chunked decoder, the percent-decoder, reason phrases and the writer).
 *
 * Every input is copied to the end of a mmap'd region followed by a
 * PROT_NONE page, so a read (or write) one byte past it faults; the program
 * is built with ASan and UBSan (spec/c/Makefile.inc).  Each request case is
 * also fed as every prefix of itself, each chunked case in one piece, byte
 * by byte and split at every offset.  Prints each failure with its case
 * name, then exactly one line "N passed, N failed"; exits 1 on a failure. */
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HARNESS_PROG "test_http"
#define ARENA_SIZE (256 * 1024) /* readable bytes before the guard page */
#include "test_harness.h"

static int str_is(http_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* ---- request cases ---- */

#define ALL ((int64_t)1 << 40)  /* expected: the head is the rest of the input */
#define HEAD ((int64_t)1 << 41) /* expected: up to the first CRLFCRLF */
#define NO_CL (-1)

typedef struct hv {
    const char *name;  /* looked up with http_find_header */
    const char *value; /* NULL: must be absent */
} hv;

typedef struct req_case {
    const char *name;
    const char *in;
    size_t in_len;     /* 0: strlen(in) */
    http_limits lim;   /* all zero: the defaults below */
    int nth;           /* parse the nth request of a pipelined buffer */
    int64_t rc;        /* ALL, HEAD, or an HTTP_ code */
    /* Checked when method is set (rc > 0): */
    const char *method, *path, *query;
    int minor, headers;
    hv hdr[3];
    int64_t cl;
    int chunked, keep_alive, expect;
} req_case;

static const http_limits default_limits = {2048, 8192, 100, 1 << 20};
static const http_limits small_limits = {16, 64, 2, 10};

/* Generated inputs, filled by make_inputs(). */
static char long_value[5000], headers_100[1200], headers_101[1200], head_8192[8300],
    head_8193[8300], head_partial_big[9000], many_headers_big_lim[1300];

#define GET11 "GET / HTTP/1.1\r\nHost: a\r\n"

static const req_case req_cases[] = {
    /* valid */
    {.name = "minimal GET 1.1", .in = GET11 "\r\n", .rc = ALL, .method = "GET", .path = "/",
     .query = "", .minor = 1, .headers = 1, .hdr = {{"host", "a"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "GET with query", .in = "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n"
                                     "User-Agent: t/1\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/a/b", .query = "x=1&y=%20", .minor = 1, .headers = 2,
     .hdr = {{"User-Agent", "t/1"}, {"HOST", "example.com"}, {"Accept", NULL}}, .cl = NO_CL,
     .keep_alive = 1},
    {.name = "empty query", .in = "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/a", .query = "", .minor = 1, .headers = 1, .cl = NO_CL,
     .keep_alive = 1},
    {.name = "query with ? and /", .in = "GET /a?b?c=/d HTTP/1.1\r\nHost: a\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/a", .query = "b?c=/d", .minor = 1, .headers = 1, .cl = NO_CL,
     .keep_alive = 1},
    {.name = "browser-like request",
     .in = "GET /rest/v1/chats?select=id,title&user_id=eq.42&order=created_at.desc HTTP/1.1\r\n"
           "Host: localhost:8080\r\n"
           "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
           "Accept: application/json\r\n"
           "Accept-Language: en-US,en;q=0.5\r\n"
           "Accept-Encoding: gzip, deflate, br\r\n"
           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x\r\n"
           "Connection: keep-alive\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/rest/v1/chats",
     .query = "select=id,title&user_id=eq.42&order=created_at.desc", .minor = 1, .headers = 7,
     .hdr = {{"authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
             {"accept-encoding", "gzip, deflate, br"}},
     .cl = NO_CL, .keep_alive = 1},
    {.name = "POST with Content-Length",
     .in = "POST /rest/v1/items HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
           "Content-Length: 13\r\n\r\n{\"a\":1,\"b\":2}",
     .rc = HEAD, .method = "POST", .path = "/rest/v1/items", .query = "", .minor = 1,
     .headers = 3, .hdr = {{"content-type", "application/json"}}, .cl = 13, .keep_alive = 1},
    {.name = "HTTP/1.0 without Host", .in = "GET / HTTP/1.0\r\n\r\n", .rc = ALL, .method = "GET",
     .path = "/", .query = "", .minor = 0, .headers = 0, .cl = NO_CL, .keep_alive = 0},
    {.name = "HTTP/1.0 keep-alive", .in = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 0, .headers = 1,
     .cl = NO_CL, .keep_alive = 1},
    {.name = "HTTP/1.0 list with keep-alive", .in = "GET / HTTP/1.0\r\nConnection: Foo ,\t keep-alive\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 0, .headers = 1,
     .cl = NO_CL, .keep_alive = 1},
    {.name = "HTTP/1.0 keep-alive then close",
     .in = "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 0, .headers = 2, .cl = NO_CL,
     .keep_alive = 0},
    {.name = "HTTP/1.1 close", .in = GET11 "Connection: close\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2, .cl = NO_CL,
     .keep_alive = 0},
    {.name = "HTTP/1.1 list keep-alive, Upgrade", .in = GET11 "Connection: keep-alive, Upgrade\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .cl = NO_CL, .keep_alive = 1},
    {.name = "HTTP/1.1 list Upgrade, CLOSE", .in = GET11 "Connection: Upgrade,CLOSE\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .cl = NO_CL, .keep_alive = 0},
    {.name = "HTTP/1.1 'closed' is not close", .in = GET11 "Connection: closed, close-x\r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .cl = NO_CL, .keep_alive = 1},
    {.name = "chunked POST", .in = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "5\r\nhello\r\n0\r\n\r\n",
     .rc = HEAD, .method = "POST", .path = "/up", .query = "", .minor = 1, .headers = 2,
     .hdr = {{"transfer-encoding", "chunked"}}, .cl = NO_CL, .chunked = 1, .keep_alive = 1},
    {.name = "chunked is case-insensitive, trailing OWS", .in = "POST /up HTTP/1.1\r\nHost: a\r\n"
                                                                "transfer-encoding: ChUnKeD \t\r\n\r\n",
     .rc = ALL, .method = "POST", .path = "/up", .query = "", .minor = 1, .headers = 2,
     .hdr = {{"Transfer-Encoding", "ChUnKeD"}}, .cl = NO_CL, .chunked = 1, .keep_alive = 1},
    {.name = "Expect: 100-continue", .in = "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                                           "Content-Length: 0\r\n\r\n",
     .rc = ALL, .method = "PUT", .path = "/x", .query = "", .minor = 1, .headers = 3, .cl = 0,
     .keep_alive = 1, .expect = 1},
    {.name = "Expect ignored in 1.0", .in = "PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
     .rc = ALL, .method = "PUT", .path = "/x", .query = "", .minor = 0, .headers = 1,
     .cl = NO_CL, .keep_alive = 0, .expect = 0},
    {.name = "other Expect", .in = GET11 "Expect: 200-ok\r\n\r\n", .rc = ALL, .method = "GET",
     .path = "/", .query = "", .minor = 1, .headers = 2, .cl = NO_CL, .keep_alive = 1},
    {.name = "value OWS trimmed, inner kept", .in = GET11 "X-A:   v  w \t\r\nX-B:\r\nX-C: \t \r\n\r\n",
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 4,
     .hdr = {{"x-a", "v  w"}, {"x-b", ""}, {"X-C", ""}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "obs-text and HTAB in value", .in = GET11 "X-U: caf\xc3\xa9\tok\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .hdr = {{"x-u", "caf\xc3\xa9\tok"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "empty lines before request line", .in = "\r\n\r\n" GET11 "\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 1, .cl = NO_CL,
     .keep_alive = 1},
    {.name = "OPTIONS *", .in = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", .rc = ALL,
     .method = "OPTIONS", .path = "*", .query = "", .minor = 1, .headers = 1, .cl = NO_CL,
     .keep_alive = 1},
    {.name = "Content-Length 0", .in = GET11 "Content-Length: 0\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2, .cl = 0,
     .keep_alive = 1},
    {.name = "Content-Length repeated, same value, leading zeros",
     .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\nhello",
     .rc = HEAD, .method = "POST", .path = "/", .query = "", .minor = 1, .headers = 3, .cl = 5,
     .keep_alive = 1},
    {.name = "Content-Length equal to max_body", .in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n",
     .rc = ALL, .method = "POST", .path = "/", .query = "", .minor = 1, .headers = 2,
     .cl = 1048576, .keep_alive = 1},
    {.name = "unusual token method", .in = "X!#$%&'*+-.^_`|~9 / HTTP/1.1\r\nHost: a\r\n\r\n",
     .rc = ALL, .method = "X!#$%&'*+-.^_`|~9", .path = "/", .query = "", .minor = 1,
     .headers = 1, .cl = NO_CL, .keep_alive = 1},
    {.name = "target with every allowed punctuation",
     .in = "GET /a-._~!$&'()*+,;=:@%20\"<>[\\]^`{|}?q=/?x HTTP/1.1\r\nHost: a\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/a-._~!$&'()*+,;=:@%20\"<>[\\]^`{|}", .query = "q=/?x", .minor = 1,
     .headers = 1, .cl = NO_CL, .keep_alive = 1},
    {.name = "header name token chars", .in = GET11 "X!#$%&'*+-.^_`|~9: v\r\n\r\n", .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .hdr = {{"x!#$%&'*+-.^_`|~9", "v"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "4000-byte header value", .in = long_value, .rc = ALL, .method = "GET", .path = "/",
     .query = "", .minor = 1, .headers = 2, .cl = NO_CL, .keep_alive = 1},
    {.name = "exactly max_headers (2)", .in = GET11 "B: 2\r\n\r\n", .lim = {64, 4096, 2, 10},
     .rc = ALL, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 2,
     .hdr = {{"b", "2"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "HTTP_MAX_HEADERS fields", .in = headers_100, .lim = {64, 8192, 1000, 10}, .rc = ALL,
     .method = "GET", .path = "/", .query = "", .minor = 0, .headers = 100, .cl = NO_CL},
    {.name = "head exactly max_header_bytes", .in = head_8192, .rc = ALL, .method = "GET",
     .path = "/", .query = "", .minor = 1, .headers = 2, .cl = NO_CL, .keep_alive = 1},
    {.name = "target exactly max_uri", .in = "GET /123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n",
     .lim = {16, 4096, 10, 10}, .rc = ALL, .method = "GET", .path = "/123456789abcdef",
     .query = "", .minor = 1, .headers = 1, .cl = NO_CL, .keep_alive = 1},
    {.name = "small limits, all fit", .in = "GET /?a=1 HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n",
     .lim = small_limits, .rc = ALL, .method = "GET", .path = "/", .query = "a=1", .minor = 1,
     .headers = 2, .cl = NO_CL, .keep_alive = 1},
    /* pipelined */
    {.name = "pipelined: first of two", .in = GET11 "\r\nGET /two?x HTTP/1.1\r\nHost: b\r\n\r\n",
     .rc = HEAD, .method = "GET", .path = "/", .query = "", .minor = 1, .headers = 1,
     .hdr = {{"host", "a"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "pipelined: second of two", .in = GET11 "\r\nGET /two?x HTTP/1.1\r\nHost: b\r\n\r\n",
     .nth = 1, .rc = ALL, .method = "GET", .path = "/two", .query = "x", .minor = 1,
     .headers = 1, .hdr = {{"host", "b"}}, .cl = NO_CL, .keep_alive = 1},
    {.name = "pipelined: GET after POST body",
     .in = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcDELETE /d HTTP/1.1\r\n"
           "Host: a\r\nConnection: close\r\n\r\n",
     .nth = 1, .rc = ALL, .method = "DELETE", .path = "/d", .query = "", .minor = 1,
     .headers = 2, .cl = NO_CL, .keep_alive = 0},
    {.name = "pipelined: third of three", .in = GET11 "\r\n" GET11 "\r\n"
                                                            "HEAD /3 HTTP/1.0\r\n\r\n",
     .nth = 2, .rc = ALL, .method = "HEAD", .path = "/3", .query = "", .minor = 0,
     .headers = 0, .cl = NO_CL},
    /* partial */
    {.name = "partial: empty", .in = "", .rc = HTTP_PARTIAL},
    {.name = "partial: no blank line", .in = GET11, .rc = HTTP_PARTIAL},
    {.name = "partial: CR of the blank line", .in = GET11 "\r", .rc = HTTP_PARTIAL},
    {.name = "partial: only empty lines", .in = "\r\n\r\n\r", .rc = HTTP_PARTIAL},
    /* 400 */
    {.name = "400 empty method", .in = " / HTTP/1.1\r\nHost: a\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 method with (", .in = "G(T / HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 two spaces", .in = "GET  / HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 tab separator", .in = "GET\t/ HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 absolute-form", .in = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 authority-form", .in = "CONNECT a:443 HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 * with GET", .in = "GET * HTTP/1.1\r\nHost: a\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 *x with OPTIONS", .in = "OPTIONS *x HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 fragment in target", .in = "GET /a#b HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 control in target", .in = "GET /a\x01 HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 DEL in target", .in = "GET /a\x7f HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 non-ASCII in target", .in = "GET /caf\xc3\xa9 HTTP/1.1\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 no version", .in = "GET /\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 empty target", .in = "GET  HTTP/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 space after version", .in = "GET / HTTP/1.1 \r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 lower-case version", .in = "GET / http/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 HTTPS/1.1", .in = "GET / HTTPS/1.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 HTTP/1.10", .in = "GET / HTTP/1.10\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 HTTP/1", .in = "GET / HTTP/1\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 HTTP/a.1", .in = "GET / HTTP/a.1\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 bare LF after request line", .in = "GET / HTTP/1.1\nHost: a\n\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 bare LF after field", .in = "GET / HTTP/1.1\r\nHost: a\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 bare LF as blank line", .in = GET11 "\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 bare LF before request line", .in = "\nGET / HTTP/1.1\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 CR CR before request line", .in = "\r\rGET", .rc = HTTP_BAD_REQUEST},
    {.name = "400 lone CR in value", .in = GET11 "X: a\rb\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 CR CR as blank line", .in = GET11 "\r\r", .rc = HTTP_BAD_REQUEST},
    {.name = "400 field without colon", .in = GET11 "Foo bar\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 space before colon", .in = GET11 "Foo : bar\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 tab before colon", .in = GET11 "Foo\t: bar\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 empty field name", .in = GET11 ": bar\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 non-token in name", .in = GET11 "X@Y: bar\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 obs-fold with space", .in = GET11 "X: a\r\n b\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 obs-fold with tab", .in = GET11 "X: a\r\n\tb\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 space-led first field", .in = "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 control in value", .in = GET11 "X: a\x01z\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 NUL in value", .in = GET11 "X: a\0z\r\n\r\n", .in_len = sizeof GET11 - 1 + 10,
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 DEL in value", .in = GET11 "X: a\x7fz\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 ESC in value", .in = GET11 "X: \x1b[0m\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length abc", .in = GET11 "Content-Length: abc\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length empty", .in = GET11 "Content-Length:\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length -1", .in = GET11 "Content-Length: -1\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length +5", .in = GET11 "Content-Length: +5\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length 1 2", .in = GET11 "Content-Length: 1 2\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length list 5, 5", .in = GET11 "Content-Length: 5, 5\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length 0x10", .in = GET11 "Content-Length: 0x10\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length INT64_MAX+1", .in = GET11 "Content-Length: 9223372036854775808\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length 20 nines", .in = GET11 "Content-Length: 99999999999999999999\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 Content-Length differing", .in = GET11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 CL then TE", .in = GET11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 TE then CL", .in = GET11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 TE gzip with CL", .in = GET11 "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 TE in HTTP/1.0", .in = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    {.name = "400 1.1 without Host", .in = "GET / HTTP/1.1\r\nX: y\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 two Host fields", .in = GET11 "host: b\r\n\r\n", .rc = HTTP_BAD_REQUEST},
    {.name = "400 two Host fields in 1.0", .in = "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
     .rc = HTTP_BAD_REQUEST},
    /* 501 */
    {.name = "501 TE gzip", .in = GET11 "Transfer-Encoding: gzip\r\n\r\n", .rc = HTTP_NOT_IMPLEMENTED},
    {.name = "501 TE gzip, chunked", .in = GET11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
     .rc = HTTP_NOT_IMPLEMENTED},
    {.name = "501 TE chunked, chunked", .in = GET11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
     .rc = HTTP_NOT_IMPLEMENTED},
    {.name = "501 TE twice", .in = GET11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     .rc = HTTP_NOT_IMPLEMENTED},
    {.name = "501 TE empty", .in = GET11 "Transfer-Encoding:\r\n\r\n", .rc = HTTP_NOT_IMPLEMENTED},
    {.name = "501 TE identity", .in = GET11 "Transfer-Encoding: identity\r\n\r\n",
     .rc = HTTP_NOT_IMPLEMENTED},
    /* 505 */
    {.name = "505 HTTP/2.0", .in = "GET / HTTP/2.0\r\n", .rc = HTTP_BAD_VERSION},
    {.name = "505 HTTP/1.2", .in = "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .rc = HTTP_BAD_VERSION},
    {.name = "505 HTTP/0.9", .in = "GET / HTTP/0.9\r\n", .rc = HTTP_BAD_VERSION},
    {.name = "505 HTTP/9.9", .in = "GET / HTTP/9.9\r\n\r\n", .rc = HTTP_BAD_VERSION},
    /* 414 */
    {.name = "414 target over max_uri", .in = "GET /123456789abcdef0 HTTP/1.1\r\nHost: a\r\n\r\n",
     .lim = {16, 4096, 10, 10}, .rc = HTTP_URI_TOO_LONG},
    {.name = "414 known while partial", .in = "GET /123456789abcdef0", .lim = {16, 4096, 10, 10},
     .rc = HTTP_URI_TOO_LONG},
    {.name = "414 max_uri 0", .in = "GET / HTTP/1.1\r\n", .lim = {0, 4096, 10, 10},
     .rc = HTTP_URI_TOO_LONG},
    /* 431 */
    {.name = "431 more than max_headers", .in = GET11 "B: 2\r\nC: 3\r\n\r\n",
     .lim = {64, 4096, 2, 10}, .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 more than HTTP_MAX_HEADERS", .in = headers_101, .lim = {64, 8192, 1000, 10},
     .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 past max_headers with big limit", .in = many_headers_big_lim,
     .lim = {64, 8192, 100, 10}, .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 head one byte over", .in = head_8193, .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 partial head over the limit", .in = head_partial_big,
     .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 small limits", .in = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789abcdef0123456789abcdef01234567\r\n",
     .lim = small_limits, .rc = HTTP_HEADERS_TOO_LARGE},
    {.name = "431 max_header_bytes 0", .in = "G", .lim = {10, 0, 10, 10},
     .rc = HTTP_HEADERS_TOO_LARGE},
    /* 413 */
    {.name = "413 Content-Length over max_body", .in = GET11 "Content-Length: 1048577\r\n\r\n",
     .rc = HTTP_BODY_TOO_LARGE},
    {.name = "413 Content-Length INT64_MAX", .in = GET11 "Content-Length: 9223372036854775807\r\n\r\n",
     .rc = HTTP_BODY_TOO_LARGE},
    {.name = "413 small limits", .in = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
     .lim = small_limits, .rc = HTTP_BODY_TOO_LARGE},
};

static void make_inputs(void)
{
    char *p = long_value;
    p += sprintf(p, GET11 "X-Long: ");
    memset(p, 'v', 4000);
    strcpy(p + 4000, "\r\n\r\n");

    p = headers_100 + sprintf(headers_100, "GET / HTTP/1.0\r\n");
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "H%d: v\r\n", i);
    strcpy(p, "\r\n");
    p = headers_101 + sprintf(headers_101, "%s", headers_100);
    strcpy(p - 2, "Z: z\r\n\r\n");

    p = many_headers_big_lim + sprintf(many_headers_big_lim, GET11);
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "H%d: v\r\n", i);
    strcpy(p, "\r\n");

    /* GET11 + "X: " + filler + CRLFCRLF == 8192 bytes exactly. */
    size_t fill = 8192 - strlen(GET11 "X: \r\n\r\n");
    p = head_8192 + sprintf(head_8192, GET11 "X: ");
    memset(p, 'x', fill);
    strcpy(p + fill, "\r\n\r\n");
    p = head_8193 + sprintf(head_8193, GET11 "X: ");
    memset(p, 'x', fill + 1);
    strcpy(p + fill + 1, "\r\n\r\n");

    p = head_partial_big + sprintf(head_partial_big, GET11 "X: ");
    memset(p, 'x', 8500);
    p[8500] = 0;
}

static size_t case_len(const char *in, size_t in_len)
{
    return in_len ? in_len : strlen(in);
}

static void check_fields(const req_case *c, const http_request *r)
{
    CHECK(str_is(r->method, c->method), "method %.*s", (int)r->method.n, r->method.p);
    CHECK(str_is(r->path, c->path), "path %.*s", (int)r->path.n, r->path.p);
    CHECK(str_is(r->query, c->query), "query %.*s", (int)r->query.n, r->query.p);
    CHECK(r->target.p == r->path.p &&
              (r->target.n == r->path.n ||
               (r->target.n == r->path.n + 1 + r->query.n && r->target.p[r->path.n] == '?')),
          "target %.*s", (int)r->target.n, r->target.p);
    CHECK(r->minor_version == c->minor, "minor_version %d", r->minor_version);
    CHECK(r->header_count == (size_t)c->headers, "header_count %zu", r->header_count);
    CHECK(r->content_length == c->cl, "content_length %lld", (long long)r->content_length);
    CHECK(r->chunked == c->chunked, "chunked %d", r->chunked);
    CHECK(r->keep_alive == c->keep_alive, "keep_alive %d", r->keep_alive);
    CHECK(r->expect_continue == c->expect, "expect_continue %d", r->expect_continue);
    for (int i = 0; i < 3 && c->hdr[i].name; i++) {
        const http_header *h = http_find_header(r, c->hdr[i].name);
        if (!c->hdr[i].value)
            CHECK(!h, "header %s present", c->hdr[i].name);
        else
            CHECK(h && str_is(h->value, c->hdr[i].value), "header %s = '%.*s'",
                  c->hdr[i].name, h ? (int)h->value.n : 0, h ? h->value.p : "");
    }
}

/* The expected result of case c parsed at in[off..len). */
static int64_t expected_rc(const req_case *c, const char *in, size_t off, size_t len)
{
    if (c->rc == ALL)
        return (int64_t)(len - off);
    if (c->rc == HEAD) {
        const char *e = memmem(in + off, len - off, "\r\n\r\n", 4);
        return e ? e + 4 - (in + off) : -100;
    }
    return c->rc;
}

/* Every prefix of in[off..len) answers HTTP_PARTIAL or the full answer;
 * a complete head's proper prefixes all answer HTTP_PARTIAL. */
static void check_prefixes(const char *in, size_t off, size_t len, const http_limits *lim,
                           int64_t full)
{
    static http_request r;
    for (size_t k = 0; k <= len - off; k++) {
        const char *buf = guarded(in + off, k);
        int64_t got = http_parse_request(buf, k, lim, &r);
        int64_t want = full > 0 && (int64_t)k < full ? HTTP_PARTIAL : full;
        CHECK(got == want || (got == HTTP_PARTIAL && full < 0),
              "prefix of %zu bytes: got %lld, want %lld", k, (long long)got, (long long)want);
    }
}

static void run_req_case(const req_case *c)
{
    static http_request r;
    const http_limits *lim = c->lim.max_header_bytes || c->lim.max_uri ? &c->lim : &default_limits;
    size_t len = case_len(c->in, c->in_len);
    const char *buf = guarded(c->in, len);
    size_t off = 0;
    for (int i = 0; i < c->nth; i++) {
        int64_t got = http_parse_request(buf + off, len - off, lim, &r);
        CHECK(got > 0, "pipelined request %d: %lld", i, (long long)got);
        off += (size_t)got + (r.content_length > 0 ? (size_t)r.content_length : 0);
    }
    int64_t want = expected_rc(c, buf, off, len);
    int64_t got = http_parse_request(buf + off, len - off, lim, &r);
    CHECK(got == want, "result %lld, want %lld", (long long)got, (long long)want);
    if (got > 0 && c->method)
        check_fields(c, &r);
    if (!case_failed)
        check_prefixes(c->in, off, len, lim, want);
}

/* ---- chunked cases ---- */

typedef struct chunk_case {
    const char *name;
    const char *in;
    size_t in_len;   /* 0: strlen(in) */
    size_t max_body; /* 0: 1 MiB */
    int rc;          /* 1 or an HTTP_ code */
    const char *out; /* decoded body when rc == 1 */
    size_t out_len;  /* 0: strlen(out) */
    size_t used;     /* d.in when rc == 1; 0: the whole input */
} chunk_case;

static char long_ext_ok[4200], long_ext_bad[4200], long_trailer_bad[12000], big_body[70000],
    big_body_out[65536];

static const chunk_case chunk_cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, 0, 1, "hello", 0, 0},
    {"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 0, 1, "hello world", 0, 0},
    {"hex sizes, both cases", "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n", 0, 0, 1,
     "0123456789abcdefghijk", 0, 0},
    {"leading zeros", "0005\r\nhello\r\n00000000000000000000000000\r\n\r\n", 0, 0, 1, "hello", 0, 0},
    {"empty body", "0\r\n\r\n", 0, 0, 1, "", 0, 0},
    {"extensions", "5;name=value\r\nhello\r\n1;a;b=\"x y\";c\r\n!\r\n0;last=1\r\n\r\n", 0, 0, 1,
     "hello!", 0, 0},
    {"BWS before extension", "5 ;a=b\r\nhello\r\n3\t \t; c\r\nabc\r\n0 ; z\r\n\r\n", 0, 0, 1,
     "helloabc", 0, 0},
    {"trailers skipped", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\nZ: a b\tc\r\n\r\n", 0, 0, 1,
     "hello", 0, 0},
    {"CRLF inside data", "4\r\n\r\n\r\n\r\n2\r\n\r\n\r\n0\r\n\r\n", 0, 0, 1, "\r\n\r\n\r\n", 0, 0},
    {"binary data", "3\r\n\0\xff\0\r\n0\r\n\r\n", 13, 0, 1, "\0\xff\0", 3, 0},
    {"followed by the next request", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 0, 0, 1, "x", 0, 11},
    {"followed by junk", "0\r\n\r\nX", 0, 0, 1, "", 0, 5},
    {"exactly max_body", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 0, 5, 1, "abcde", 0, 0},
    {"long extension within 4 KiB", long_ext_ok, 0, 0, 1, "hello", 0, 0},
    {"64 KiB in 1 KiB chunks", big_body, 0, 0, 1, big_body_out, 65536, 0},
    {"max hex size, partial", "FFFFFFFFFFFFFFFF\r\nab", 0, SIZE_MAX, HTTP_PARTIAL, NULL, 0, 0},
    {"partial: inside data", "5\r\nhel", 0, 0, HTTP_PARTIAL, NULL, 0, 0},
    {"partial: before trailer end", "5\r\nhello\r\n0\r\n", 0, 0, HTTP_PARTIAL, NULL, 0, 0},
    {"partial: inside trailer", "0\r\nX: y", 0, 0, HTTP_PARTIAL, NULL, 0, 0},
    {"partial: empty", "", 0, 0, HTTP_PARTIAL, NULL, 0, 0},
    {"400 bad hex", "g\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 hex then junk", "5x\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 0x prefix", "0x5\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 negative size", "-5\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 empty size", "\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 extension without size", ";a\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 BWS without extension", "5 \r\nhello\r\n0\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 digit after BWS", "5 5\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 bare LF after size", "5\nhello\r\n0\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 bare LF after data", "5\r\nhello\n0\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 CR CR after data", "5\r\nhello\r\r", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 control in extension", "5;a\x01\r\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 LF in extension", "5;a\nhello\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 extension over 4 KiB", long_ext_bad, 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 trailer without colon", "0\r\nXY\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 trailer space before colon", "0\r\nX : y\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 control in trailer", "0\r\nX: \x7f\r\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 bare LF ending trailer", "0\r\nX: y\n\r\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 bare LF ending body", "0\r\n\n", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 CR CR ending body", "0\r\n\r\r", 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"400 trailers over 8 KiB", long_trailer_bad, 0, 0, HTTP_BAD_REQUEST, NULL, 0, 0},
    {"413 one chunk over", "6\r\nhello!\r\n0\r\n\r\n", 0, 5, HTTP_BODY_TOO_LARGE, NULL, 0, 0},
    {"413 total over", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 0, 5, HTTP_BODY_TOO_LARGE, NULL, 0, 0},
    {"413 known from the size digits", "100000", 0, 5, HTTP_BODY_TOO_LARGE, NULL, 0, 0},
    {"413 size overflows 64 bits", "10000000000000000\r\n", 0, SIZE_MAX, HTTP_BODY_TOO_LARGE,
     NULL, 0, 0},
};

static void make_chunk_inputs(void)
{
    char *p = long_ext_ok + sprintf(long_ext_ok, "5;x=");
    memset(p, 'e', 4000);
    strcpy(p + 4000, "\r\nhello\r\n0\r\n\r\n");
    p = long_ext_bad + sprintf(long_ext_bad, "5;x=");
    memset(p, 'e', 4100);
    strcpy(p + 4100, "\r\nhello\r\n0\r\n\r\n");
    p = long_trailer_bad + sprintf(long_trailer_bad, "0\r\n");
    for (int i = 0; i < 1200; i++)
        p += sprintf(p, "T: %d\r\n", i);
    strcpy(p, "\r\n");
    p = big_body;
    for (int i = 0; i < 64; i++) {
        p += sprintf(p, "400\r\n");
        for (int j = 0; j < 1024; j++)
            big_body_out[i * 1024 + j] = *p++ = (char)('a' + (i + j) % 26);
        p += sprintf(p, "\r\n");
    }
    strcpy(p, "0\r\n\r\n");
}

static void check_decoded(const chunk_case *c, int rc, const http_chunked *d, const char *body,
                          size_t len, const char *how)
{
    CHECK(rc == c->rc, "%s: result %d, want %d", how, rc, c->rc);
    CHECK(d->out <= d->in && d->in <= len, "%s: in %zu out %zu", how, d->in, d->out);
    if (rc != 1)
        return;
    size_t out_len = c->out_len ? c->out_len : strlen(c->out);
    CHECK(d->in == (c->used ? c->used : len), "%s: consumed %zu", how, d->in);
    CHECK(d->out == out_len && memcmp(body, c->out, out_len) == 0, "%s: decoded %zu bytes '%.*s'",
          how, d->out, (int)(d->out < 60 ? d->out : 60), body);
}

/* Feeds len = 1, 2, ... n, moving the data against the guard page each time
 * (the decoder must resume from offsets alone). */
static void decode_byte_by_byte(const chunk_case *c, const char *in, size_t n, size_t max)
{
    static char work[70000];
    http_chunked d = {0};
    int rc = HTTP_PARTIAL;
    char *body = arena;
    memcpy(work, in, n);
    for (size_t k = 1; k <= n; k++) {
        body = guarded(work, k);
        rc = http_chunked_decode(&d, body, k, max);
        memcpy(work, body, k);
        CHECK(rc == HTTP_PARTIAL || rc == c->rc, "byte by byte: %d after %zu bytes", rc, k);
    }
    check_decoded(c, rc, &d, body, n, "byte by byte");
}

static void run_chunk_case(const chunk_case *c)
{
    size_t n = case_len(c->in, c->in_len), max = c->max_body ? c->max_body : 1 << 20;
    http_chunked d = {0};
    char *body = guarded(c->in, n);
    check_decoded(c, http_chunked_decode(&d, body, n, max), &d, body, n, "one piece");
    int again = http_chunked_decode(&d, body, n, max);
    CHECK(again == c->rc || (c->rc == HTTP_PARTIAL && again == HTTP_PARTIAL),
          "called again: %d", again);
    if (case_failed)
        return;
    size_t step = n > 5000 ? 97 : 1; /* split points: every one in small inputs */
    for (size_t s = 0; s < n && !case_failed; s += step) {
        http_chunked e = {0};
        body = guarded(c->in, n);
        int first = http_chunked_decode(&e, body, s, max);
        CHECK(first == HTTP_PARTIAL || first == c->rc, "split at %zu: first %d", s, first);
        check_decoded(c, http_chunked_decode(&e, body, n, max), &e, body, n, "split");
    }
    if (!case_failed && n <= 20000)
        decode_byte_by_byte(c, c->in, n, max);
}

/* A chunked POST and the GET pipelined after it, as the server sees them. */
static void run_chunked_pipeline(void)
{
    static const char in[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4;x=1\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n"
                             "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    static http_request r;
    size_t n = sizeof in - 1;
    char *buf = guarded(in, n);
    int64_t head = http_parse_request(buf, n, &default_limits, &r);
    CHECK(head > 0 && r.chunked, "head %lld chunked %d", (long long)head, r.chunked);
    http_chunked d = {0};
    int rc = http_chunked_decode(&d, buf + head, n - (size_t)head, 100);
    CHECK(rc == 1 && d.out == 9 && memcmp(buf + head, "wikipedia", 9) == 0, "body %d", rc);
    size_t next = (size_t)head + d.in;
    int64_t got = http_parse_request(buf + next, n - next, &default_limits, &r);
    CHECK(got == (int64_t)(n - next) && str_is(r.path, "/next"), "next request %lld",
          (long long)got);
}

/* ---- percent-decoding ---- */

typedef struct url_case {
    const char *name, *in;
    int plus;
    int64_t rc;      /* decoded length or -1 */
    const char *out; /* decoded bytes when rc >= 0 */
} url_case;

static const url_case url_cases[] = {
    {"plain", "abc/def", 0, 7, "abc/def"},
    {"empty", "", 0, 0, ""},
    {"upper hex", "%41%42%2F", 0, 3, "AB/"},
    {"lower hex", "%2f%3a%7e", 0, 3, "/:~"},
    {"plus is space", "a+b+%2B", 1, 5, "a b +"},
    {"plus kept", "a+b", 0, 3, "a+b"},
    {"UTF-8", "%E2%82%AC", 0, 3, "\xe2\x82\xac"},
    {"NUL byte", "a%00b", 0, 3, "a\0b"},
    {"escape at the end", "ab%20", 0, 3, "ab "},
    {"lone %", "%", 0, -1, NULL},
    {"truncated %4", "ab%4", 0, -1, NULL},
    {"bad %zz", "%zz", 0, -1, NULL},
    {"bad %g0", "%g0", 0, -1, NULL},
    {"bad %0g", "x%0g", 0, -1, NULL},
    {"percent at end", "100%", 1, -1, NULL},
};

static void run_url_case(const url_case *c)
{
    char dst[64];
    size_t n = strlen(c->in);
    char *src = guarded(c->in, n);
    int64_t got = http_url_decode(dst, src, n, c->plus);
    CHECK(got == c->rc, "result %lld, want %lld", (long long)got, (long long)c->rc);
    if (got >= 0)
        CHECK(memcmp(dst, c->out, (size_t)got) == 0, "decoded '%.*s'", (int)got, dst);
    int64_t in_place = http_url_decode(src, src, n, c->plus);
    CHECK(in_place == got, "in place: %lld", (long long)in_place);
    if (got >= 0)
        CHECK(memcmp(src, c->out, (size_t)got) == 0, "in place: '%.*s'", (int)got, src);
}

/* ---- writer and reason phrases ---- */

enum { W_STATUS, W_HEADER, W_U64 };

typedef struct write_case {
    const char *name;
    int kind;
    int status;
    const char *hname, *hvalue;
    uint64_t num;
    size_t cap;       /* bytes available, against the guard page */
    const char *want; /* NULL: must write nothing and answer 0 */
} write_case;

static const write_case write_cases[] = {
    {"status 200", W_STATUS, 200, 0, 0, 0, 64, "HTTP/1.1 200 OK\r\n"},
    {"status 404", W_STATUS, 404, 0, 0, 0, 64, "HTTP/1.1 404 Not Found\r\n"},
    {"status 431", W_STATUS, 431, 0, 0, 0, 64, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {"status 505", W_STATUS, 505, 0, 0, 0, 64, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
    {"status 599 unknown", W_STATUS, 599, 0, 0, 0, 64, "HTTP/1.1 599 Unknown\r\n"},
    {"status exact cap", W_STATUS, 204, 0, 0, 0, 25, "HTTP/1.1 204 No Content\r\n"},
    {"status cap one short", W_STATUS, 204, 0, 0, 0, 24, NULL},
    {"status cap 0", W_STATUS, 200, 0, 0, 0, 0, NULL},
    {"status 99 invalid", W_STATUS, 99, 0, 0, 0, 64, NULL},
    {"status 1000 invalid", W_STATUS, 1000, 0, 0, 0, 64, NULL},
    {"status -200 invalid", W_STATUS, -200, 0, 0, 0, 64, NULL},
    {"header", W_HEADER, 0, "Content-Type", "application/json", 0, 64,
     "Content-Type: application/json\r\n"},
    {"header empty value", W_HEADER, 0, "X", "", 0, 64, "X: \r\n"},
    {"header exact cap", W_HEADER, 0, "Ab", "cd", 0, 8, "Ab: cd\r\n"},
    {"header cap one short", W_HEADER, 0, "Ab", "cd", 0, 7, NULL},
    {"header cap 0", W_HEADER, 0, "Ab", "cd", 0, 0, NULL},
    {"u64 zero", W_U64, 0, "Content-Length", 0, 0, 64, "Content-Length: 0\r\n"},
    {"u64 1234567890", W_U64, 0, "Content-Length", 0, 1234567890, 64,
     "Content-Length: 1234567890\r\n"},
    {"u64 max", W_U64, 0, "X-N", 0, UINT64_MAX, 64, "X-N: 18446744073709551615\r\n"},
    {"u64 exact cap", W_U64, 0, "N", 0, 100, 8, "N: 100\r\n"},
    {"u64 cap one short", W_U64, 0, "N", 0, 100, 7, NULL},
};

static void run_write_case(const write_case *c)
{
    char *out = arena + ARENA_SIZE - c->cap;
    memset(out, '#', c->cap);
    size_t got = 0;
    if (c->kind == W_STATUS)
        got = http_write_status(out, c->cap, c->status);
    else if (c->kind == W_HEADER)
        got = http_write_header(out, c->cap, c->hname, strlen(c->hname), c->hvalue,
                                strlen(c->hvalue));
    else
        got = http_write_header_u64(out, c->cap, c->hname, strlen(c->hname), c->num);
    size_t want = c->want ? strlen(c->want) : 0;
    CHECK(got == want, "wrote %zu bytes, want %zu", got, want);
    CHECK(memcmp(out, c->want ? c->want : "", want) == 0, "wrote '%.*s'", (int)got, out);
    for (size_t i = want; i < c->cap; i++)
        CHECK(out[i] == '#', "byte %zu past the answer changed", i);
}

typedef struct reason_case {
    int status;
    const char *want;
} reason_case;

static const reason_case reason_cases[] = {
    {100, "Continue"}, {200, "OK"}, {201, "Created"}, {204, "No Content"},
    {304, "Not Modified"}, {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"},
    {404, "Not Found"}, {405, "Method Not Allowed"}, {406, "Not Acceptable"},
    {409, "Conflict"}, {413, "Content Too Large"}, {414, "URI Too Long"},
    {416, "Range Not Satisfiable"}, {422, "Unprocessable Content"},
    {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"}, {501, "Not Implemented"}, {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"}, {0, "Unknown"}, {299, "Unknown"}, {-1, "Unknown"},
};

static void run_reason_case(const reason_case *c)
{
    const char *got = http_reason(c->status);
    CHECK(strcmp(got, c->want) == 0, "%d: '%s'", c->status, got);
}

/* ---- main ---- */

int main(void)
{
    char name[96];
    arena_init();
    make_inputs();
    make_chunk_inputs();
    for (size_t i = 0; i < COUNT(req_cases); i++) {
        case_name = req_cases[i].name;
        run_req_case(&req_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(chunk_cases); i++) {
        snprintf(name, sizeof name, "chunked: %s", chunk_cases[i].name);
        case_name = name;
        run_chunk_case(&chunk_cases[i]);
        finish_case();
    }
    case_name = "chunked: POST then pipelined GET";
    run_chunked_pipeline();
    finish_case();
    for (size_t i = 0; i < COUNT(url_cases); i++) {
        snprintf(name, sizeof name, "url_decode: %s", url_cases[i].name);
        case_name = name;
        run_url_case(&url_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(write_cases); i++) {
        snprintf(name, sizeof name, "write: %s", write_cases[i].name);
        case_name = name;
        run_write_case(&write_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(reason_cases); i++) {
        snprintf(name, sizeof name, "reason %d", reason_cases[i].status);
        case_name = name;
        run_reason_case(&reason_cases[i]);
        finish_case();
    }
    return report();
}
