/* fuzz_http.c: libFuzzer target for core/http.c, built with ASan and UBSan
 * by `make fuzz` (spec/c/Makefile.inc).  Seeds: spec/c/fuzz_corpus/.
 *
 * For each input, under small limits (every limit reachable) and large
 * ones, http_parse_request must answer a length <= size or a known code,
 * keep every http_str inside the head, respect the limits, answer the same
 * for every prefix that is not HTTP_PARTIAL, and not depend on the bytes
 * after the head.  What follows the head (the whole input when there is no
 * complete head) goes through http_chunked_decode in one piece, byte by
 * byte and split in two, on exact-size heap copies: all three must agree
 * on the result, the offsets and the decoded bytes.  http_url_decode and
 * the header writer get the input too. */
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const http_limits limits[] = {
    {16, 256, 4, 64},                          /* small: every limit reachable */
    {8192, 8192, HTTP_MAX_HEADERS, 1 << 20},   /* large: what -max_len allows */
};

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_http: invariant failed, line %d: %s\n",     \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

static http_request req, again;

static void require_inside(http_str s, const char *lo, const char *hi)
{
    REQUIRE(s.p >= lo && s.n <= (size_t)(hi - s.p));
}

/* Fields of a complete head at buf[0..n). */
static void check_head(const char *buf, int64_t n, const http_limits *lim, const http_request *r)
{
    const char *end = buf + n;
    REQUIRE(n <= (int64_t)lim->max_header_bytes);
    REQUIRE(r->header_count <= lim->max_headers && r->header_count <= HTTP_MAX_HEADERS);
    require_inside(r->method, buf, end);
    require_inside(r->target, buf, end);
    require_inside(r->path, buf, end);
    require_inside(r->query, buf, end);
    REQUIRE(r->method.n > 0 && r->target.n > 0 && r->target.n <= lim->max_uri);
    REQUIRE(r->path.p == r->target.p && r->path.n <= r->target.n);
    REQUIRE(r->target.p[0] == '/' || (r->target.n == 1 && r->target.p[0] == '*'));
    REQUIRE(r->minor_version == 0 || r->minor_version == 1);
    for (size_t i = 0; i < r->header_count; i++) {
        require_inside(r->headers[i].name, buf, end);
        require_inside(r->headers[i].value, buf, end);
        REQUIRE(r->headers[i].name.n > 0);
    }
    REQUIRE(r->content_length >= -1 && r->content_length <= (int64_t)lim->max_body);
    REQUIRE(!r->chunked || r->content_length == -1);
    REQUIRE(r->keep_alive == 0 || r->keep_alive == 1);
    /* Lookup finds the first field of a name, whatever its case. */
    for (size_t i = 0; i < r->header_count; i++) {
        char name[64];
        size_t n = r->headers[i].name.n;
        if (n >= sizeof name)
            continue;
        for (size_t j = 0; j < n; j++) { /* flip the case of every other letter */
            unsigned char c = (unsigned char)r->headers[i].name.p[j];
            int letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
            name[j] = (char)(letter && (j & 1) ? c ^ 0x20 : c);
        }
        name[n] = 0;
        const http_header *f = http_find_header(r, name);
        REQUIRE(f && f <= &r->headers[i]);
    }
}

static int same_str(http_str a, http_str b)
{
    return a.p == b.p && a.n == b.n;
}

static int same_request(const http_request *a, const http_request *b)
{
    if (!same_str(a->method, b->method) || !same_str(a->target, b->target) ||
        !same_str(a->path, b->path) || !same_str(a->query, b->query) ||
        a->minor_version != b->minor_version || a->header_count != b->header_count ||
        a->content_length != b->content_length || a->chunked != b->chunked ||
        a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue)
        return 0;
    for (size_t i = 0; i < a->header_count; i++)
        if (!same_str(a->headers[i].name, b->headers[i].name) ||
            !same_str(a->headers[i].value, b->headers[i].value))
            return 0;
    return 1;
}

/* Returns the head length (> 0) or the code. */
static int64_t check_parse(const char *buf, size_t size, const http_limits *lim)
{
    int64_t r = http_parse_request(buf, size, lim, &req);
    REQUIRE(r != 0 && r <= (int64_t)size && r >= HTTP_BODY_TOO_LARGE);
    if (r > 0) {
        check_head(buf, r, lim, &req);
        REQUIRE(http_parse_request(buf, (size_t)r, lim, &again) == r);
        REQUIRE(same_request(&req, &again));
        REQUIRE(http_parse_request(buf, (size_t)r - 1, lim, &again) == HTTP_PARTIAL);
    }
    /* A prefix answers HTTP_PARTIAL or what the whole input answers. */
    size_t cuts[3] = {size / 2, size ? size - 1 : 0, size ? (unsigned char)buf[0] % size : 0};
    for (int i = 0; i < 3; i++) {
        int64_t p = http_parse_request(buf, cuts[i], lim, &again);
        REQUIRE(p == HTTP_PARTIAL || p == r);
    }
    return r;
}

static int same_decoder(const http_chunked *a, const http_chunked *b)
{
    return a->in == b->in && a->out == b->out && a->left == b->left && a->state == b->state;
}

/* One piece, byte by byte, and split at `cut`: all must agree. */
static void check_chunked(const char *body, size_t n, size_t max_body, size_t cut)
{
    char *one = malloc(n ? n : 1), *bytes = malloc(n ? n : 1), *split = malloc(n ? n : 1);
    REQUIRE(one && bytes && split);
    if (n) {
        memcpy(one, body, n);
        memcpy(bytes, body, n);
        memcpy(split, body, n);
    }
    http_chunked d1 = {0}, d2 = {0}, d3 = {0};
    int r1 = http_chunked_decode(&d1, one, n, max_body);
    REQUIRE(r1 == 1 || r1 == HTTP_PARTIAL || r1 == HTTP_BAD_REQUEST || r1 == HTTP_BODY_TOO_LARGE);
    REQUIRE(d1.out <= d1.in && d1.in <= n && d1.out <= max_body);
    REQUIRE(r1 != HTTP_PARTIAL || d1.in == n);
    int r2 = HTTP_PARTIAL;
    for (size_t k = 1; k <= n && r2 == HTTP_PARTIAL; k++)
        r2 = http_chunked_decode(&d2, bytes, k, max_body);
    int r3 = http_chunked_decode(&d3, split, cut, max_body);
    REQUIRE(r3 == HTTP_PARTIAL || r3 == r1);
    r3 = http_chunked_decode(&d3, split, n, max_body);
    REQUIRE(r2 == r1 && r3 == r1);
    REQUIRE(same_decoder(&d1, &d2) && same_decoder(&d1, &d3));
    REQUIRE(memcmp(one, bytes, d1.out) == 0 && memcmp(one, split, d1.out) == 0);
    REQUIRE(http_chunked_decode(&d1, one, n, max_body) == r1); /* settled */
    free(one);
    free(bytes);
    free(split);
}

static void check_url_decode(const char *buf, size_t size)
{
    char *dst = malloc(size ? size : 1), *in_place = malloc(size ? size : 1);
    REQUIRE(dst && in_place);
    if (size)
        memcpy(in_place, buf, size);
    int plus = size & 1;
    int64_t n = http_url_decode(dst, buf, size, plus);
    REQUIRE(n >= -1 && n <= (int64_t)size);
    REQUIRE(http_url_decode(in_place, in_place, size, plus) == n);
    REQUIRE(n < 0 || memcmp(dst, in_place, (size_t)n) == 0);
    free(dst);
    free(in_place);
}

static void check_writer(const char *buf, size_t size)
{
    char line[64];
    int status = size >= 2 ? (unsigned char)buf[0] << 8 | (unsigned char)buf[1] : 0;
    size_t n_status = http_write_status(line, sizeof line, status % 1100);
    REQUIRE(n_status == 0 || (n_status >= 17 && memcmp(line, "HTTP/1.1 ", 9) == 0 &&
                              memcmp(line + n_status - 2, "\r\n", 2) == 0));
    uint64_t v = 0;
    memcpy(&v, buf, size < 8 ? size : 8);
    size_t n_u64 = http_write_header_u64(line, size % 40, "N", 1, v);
    REQUIRE(n_u64 == 0 || (n_u64 >= 6 && n_u64 <= 25 && line[n_u64 - 3] - '0' == (int)(v % 10)));

    size_t half = size / 2, cap = size ? (unsigned char)buf[size - 1] : 0;
    char *out = malloc(cap ? cap : 1);
    REQUIRE(out);
    size_t n = http_write_header(out, cap, buf, half, buf + half, size - half);
    REQUIRE(n == 0 || (n == size + 4 && n <= cap && memcmp(out, buf, half) == 0 &&
                       memcmp(out + half + 2, buf + half, size - half) == 0));
    REQUIRE(n != 0 || size + 4 > cap);
    free(out);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *buf = (const char *)data;
    int64_t heads[2];
    for (int i = 0; i < 2; i++)
        heads[i] = check_parse(buf, size, &limits[i]);
    if (heads[0] > 0)
        REQUIRE(heads[1] == heads[0]); /* what fits small limits fits large ones */
    size_t start = heads[1] > 0 ? (size_t)heads[1] : 0;
    size_t n = size - start, cut = n ? (unsigned char)buf[size - 1] % n : 0;
    for (int i = 0; i < 2; i++)
        check_chunked(buf + start, n, limits[i].max_body, cut);
    check_chunked(buf + start, n, SIZE_MAX, cut); /* reaches the 64-bit overflow check */
    check_url_decode(buf, size);
    check_writer(buf, size);
    return 0;
}
