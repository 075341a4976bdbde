/* http.h: HTTP/1.1 request parsing and response writing, bytes in and
 * bytes out.  Knows nothing of sockets, Lua, the pool or the engine.
 *
 * The parser never allocates and never reads past the end of its input:
 * every string it returns points into the caller's buffer.  Return codes
 * say "complete (bytes consumed) / partial / error", so the caller can
 * parse again from the start of the buffer when more bytes arrive. */
#ifndef STRATA_HTTP_H
#define STRATA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 100 /* hard ceiling of http_limits.max_headers */

/* Negative results of the parsing functions. */
enum {
    HTTP_PARTIAL = -1,           /* well-formed so far; need more bytes */
    HTTP_BAD_REQUEST = -2,       /* malformed: answer 400 and close */
    HTTP_URI_TOO_LONG = -3,      /* request target over max_uri: 414 */
    HTTP_HEADERS_TOO_LARGE = -4, /* head over max_header_bytes or too many headers: 431 */
    HTTP_NOT_IMPLEMENTED = -5,   /* a Transfer-Encoding other than chunked: 501 */
    HTTP_BAD_VERSION = -6,       /* not HTTP/1.0 or HTTP/1.1: 505 */
    HTTP_BODY_TOO_LARGE = -7     /* body over max_body: 413 */
};

/* A byte range inside the caller's buffer (not NUL-terminated). */
typedef struct http_str {
    const char *p;
    size_t n;
} http_str;

typedef struct http_header {
    http_str name;  /* as sent; compare case-insensitively */
    http_str value; /* leading and trailing spaces/tabs removed */
} http_header;

typedef struct http_limits {
    size_t max_uri;          /* longest request target accepted */
    size_t max_header_bytes; /* longest head (request line + headers + CRLFCRLF) */
    size_t max_headers;      /* most header fields, <= HTTP_MAX_HEADERS */
    size_t max_body;         /* largest body, Content-Length or chunked total */
} http_limits;

typedef struct http_request {
    http_str method;      /* token, e.g. "GET" */
    http_str target;      /* raw request target, e.g. "/a/b?x=1" */
    http_str path;        /* target before '?' */
    http_str query;       /* target after '?', without it; n == 0 when none */
    int minor_version;    /* 0 (HTTP/1.0) or 1 (HTTP/1.1) */
    size_t header_count;  /* entries used in headers[] */
    http_header headers[HTTP_MAX_HEADERS];
    /* Derived from the headers while parsing: */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    int expect_continue;    /* "Expect: 100-continue" */
} http_request;

/* Parses the request head at buf[0..len).  Returns the head's length in
 * bytes (> 0, up to and including the blank line) when it is complete, or
 * one of the negative codes above.  A Content-Length over lim->max_body
 * answers HTTP_BODY_TOO_LARGE already here.  Both Content-Length and
 * Transfer-Encoding, or two differing Content-Length values, are
 * HTTP_BAD_REQUEST (request smuggling).
 *
 * Strict (RFC 9112): lines end in CRLF (a bare LF or lone CR is
 * HTTP_BAD_REQUEST); empty lines before the request line are skipped and
 * counted in the length; the target is origin-form ("/...") or "*" with
 * OPTIONS; HTTP/1.1 needs exactly one Host field; Transfer-Encoding in
 * HTTP/1.0 is HTTP_BAD_REQUEST.  It reads at most min(len,
 * lim->max_header_bytes) bytes, and a lim->max_headers over
 * HTTP_MAX_HEADERS counts as HTTP_MAX_HEADERS.  Any prefix of an input
 * answers HTTP_PARTIAL or what the whole input answers. */
int64_t http_parse_request(const char *buf, size_t len, const http_limits *lim,
                           http_request *req);

/* State of a chunked body being decoded in place (RFC 9112 section 7.1).
 * Zero it before the first call. */
typedef struct http_chunked {
    size_t in;          /* input bytes consumed so far, from the body start */
    size_t out;         /* decoded bytes so far, at the body start */
    uint64_t left;      /* bytes left in the current chunk */
    int state;          /* internal: step and bytes of the current line */
} http_chunked;

/* Decodes the chunked body that starts at body[0]; len is how many bytes
 * are buffered from there.  Call again with the same body pointer (or one
 * to the same data moved elsewhere) and a larger len when more arrive:
 * decoding resumes where it stopped.  The decoded data is written over the
 * encoding at body[0..d->out).  Returns 1 when the last chunk and its
 * trailers are consumed (d->in is then the encoded length: what follows is
 * the next pipelined request), HTTP_PARTIAL, HTTP_BAD_REQUEST, or
 * HTTP_BODY_TOO_LARGE when the decoded size would pass max_body (known from
 * the chunk-size digits, before the data arrives).  Framing lines end in
 * CRLF; chunk extensions are checked for control bytes and ignored;
 * trailer fields are checked as field lines and skipped.  A chunk-size line
 * over 4 KiB or a trailer section over 8 KiB is HTTP_BAD_REQUEST.  After an
 * error, every further call answers the same error. */
int http_chunked_decode(http_chunked *d, char *body, size_t len, size_t max_body);

/* Finds header `name` (case-insensitive); NULL when absent. */
const http_header *http_find_header(const http_request *req, const char *name);

/* The reason phrase of a status code ("OK", "Not Found"); "Unknown" for
 * codes it does not know. */
const char *http_reason(int status);

/* Writes "HTTP/1.1 <status> <reason>\r\n" at out; returns the bytes
 * written, or 0 when cap is too small or status is not within 100..999.
 * No printf: this is on the hot path. */
size_t http_write_status(char *out, size_t cap, int status);

/* Writes "<name>: <value>\r\n"; returns bytes written or 0 when cap is too
 * small.  The caller guarantees name and value hold no CR or LF. */
size_t http_write_header(char *out, size_t cap, const char *name, size_t name_len,
                         const char *value, size_t value_len);

/* Writes "<name>: <decimal value>\r\n"; same contract. */
size_t http_write_header_u64(char *out, size_t cap, const char *name, size_t name_len,
                             uint64_t value);

/* Percent-decodes src[0..n) into dst (which may equal src); '+' becomes a
 * space when plus_is_space.  Returns the decoded length, or -1 on a bad
 * escape ("%zz", truncated "%4"; dst then holds a partial result).  "%00"
 * decodes to a NUL byte: callers that need C strings must check. */
int64_t http_url_decode(char *dst, const char *src, size_t n, int plus_is_space);

#endif
