/* http.c: the HTTP/1.1 request-head parser, the in-place chunked-body
 * decoder, header lookup, reason phrases, the response writer and the
 * percent-decoder declared in http.h.  Uses only memcpy/memmove/memchr/
 * strlen from the C library: no allocation, no printf, no locale.
 *
 * Strict per RFC 9112: every line ends in CRLF (a bare LF or a lone CR is
 * HTTP_BAD_REQUEST, in the head and in the chunked framing alike, so that
 * no proxy in front can split lines differently from us).  Empty lines
 * before the request line are skipped (section 2.2).  Every scan is a
 * simple loop over bytes against the class table below, and never looks
 * past min(len, max_header_bytes) in the head or past len in a body. */
#include "http.h"

#include "base/hex.h"

#include <string.h>

/* Chunked framing limits (answered HTTP_BAD_REQUEST when passed): one
 * chunk-size line with its extensions, and the whole trailer section.
 * They bound what a peer can make us consume without producing a byte. */
#define CHUNK_LINE_MAX 4096
#define TRAILER_MAX 8192

/* Byte classes. */
enum {
    C_TOKEN = 1,  /* tchar (RFC 9110 section 5.6.2): methods, field names */
    C_TARGET = 2, /* request-target byte: visible ASCII except '#' */
    C_VALUE = 4   /* field-value byte: HTAB, SP, VCHAR, obs-text (not DEL) */
};

static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, /* 0x00: HTAB only */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    4, 7, 6, 5, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20:  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30: 0-9 :;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40: @ A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50: P-Z [\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60: ` a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70: p-z {|}~ DEL */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x80-0xff: obs-text */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

typedef const unsigned char *bytes;

static unsigned lower(unsigned c)
{
    return c - 'A' < 26u ? c + 32 : c;
}

/* a[0..n) equals b[0..n) ignoring ASCII case. */
static int case_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static int is_ows(unsigned c)
{
    return c == ' ' || c == '\t';
}

/* The first byte at or after p outside class `mask`, or end.  Unrolled by
 * eight (one bounds check per eight bytes): the head's hot loop. */
static bytes scan(bytes p, bytes end, unsigned mask)
{
    for (; end - p >= 8; p += 8) {
        if (!(cls[p[0]] & mask)) return p;
        if (!(cls[p[1]] & mask)) return p + 1;
        if (!(cls[p[2]] & mask)) return p + 2;
        if (!(cls[p[3]] & mask)) return p + 3;
        if (!(cls[p[4]] & mask)) return p + 4;
        if (!(cls[p[5]] & mask)) return p + 5;
        if (!(cls[p[6]] & mask)) return p + 6;
        if (!(cls[p[7]] & mask)) return p + 7;
    }
    while (p < end && (cls[*p] & mask))
        p++;
    return p;
}

static http_str str(bytes p, bytes end)
{
    return (http_str){(const char *)p, (size_t)(end - p)};
}

/* ---- request head ---- */

/* The scan window and what the fields said about framing. */
typedef struct head {
    bytes p;            /* next byte to read */
    bytes end;          /* min(len, max_header_bytes) past the buffer start */
    int te;             /* Transfer-Encoding fields seen */
    int te_other;       /* one of them was not exactly "chunked" */
    int host;           /* Host fields seen */
    int close;          /* "close" in a Connection field */
    int keep_alive;     /* "keep-alive" in a Connection field */
    int expect;         /* "Expect: 100-continue" */
} head;

/* CRLF at h->p. */
static int eat_crlf(head *h)
{
    if (h->p == h->end)
        return HTTP_PARTIAL;
    if (h->p[0] != '\r')
        return HTTP_BAD_REQUEST;
    if (h->p + 1 == h->end)
        return HTTP_PARTIAL;
    if (h->p[1] != '\n')
        return HTTP_BAD_REQUEST;
    h->p += 2;
    return 0;
}

/* Empty lines a client may send before the request line (RFC 9112 2.2). */
static int skip_empty_lines(head *h)
{
    while (h->p < h->end && h->p[0] == '\r') {
        int rc = eat_crlf(h);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* method SP */
static int parse_method(head *h, http_request *req)
{
    bytes start = h->p, p = scan(start, h->end, C_TOKEN);
    if (p == h->end)
        return HTTP_PARTIAL;
    if (*p != ' ' || p == start)
        return HTTP_BAD_REQUEST;
    req->method = str(start, p);
    h->p = p + 1;
    return 0;
}

/* request-target SP: origin-form ("/path?query"), or "*" for OPTIONS. */
static int parse_target(head *h, size_t max_uri, http_request *req)
{
    bytes start = h->p, p = scan(start, h->end, C_TARGET);
    if (p > start && *start != '/' && *start != '*')
        return HTTP_BAD_REQUEST; /* absolute-form, authority-form, junk */
    if ((size_t)(p - start) > max_uri)
        return HTTP_URI_TOO_LONG;
    if (p == h->end)
        return HTTP_PARTIAL;
    if (*p != ' ' || p == start)
        return HTTP_BAD_REQUEST;
    if (*start == '*' && (p - start != 1 || req->method.n != 7 ||
                          memcmp(req->method.p, "OPTIONS", 7) != 0))
        return HTTP_BAD_REQUEST;
    bytes q = memchr(start, '?', (size_t)(p - start));
    req->target = str(start, p);
    req->path = str(start, q ? q : p);
    req->query = q ? str(q + 1, p) : str(p, p);
    h->p = p + 1;
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT CRLF; only 1.0 and 1.1 are served. */
static int parse_version(head *h, http_request *req)
{
    static const char want[] = "HTTP/1.1\r\n";
    bytes p = h->p;
    size_t avail = (size_t)(h->end - p);
    for (size_t i = 0; i < 10; i++) {
        if (i == avail)
            return HTTP_PARTIAL;
        int ok = (i == 5 || i == 7) ? is_digit(p[i]) : p[i] == (unsigned char)want[i];
        if (!ok)
            return HTTP_BAD_REQUEST;
    }
    if (p[5] != '1' || p[7] > '1')
        return HTTP_BAD_VERSION;
    req->minor_version = p[7] - '0';
    h->p = p + 10;
    return 0;
}

/* field-name ":" OWS field-value OWS CRLF.  A line starting with a space
 * (obs-fold) or a space before the colon fails the token scan. */
static int parse_field(head *h, http_header *f)
{
    bytes p = h->p, end = h->end, name = p;
    p = scan(p, end, C_TOKEN);
    if (p == end)
        return HTTP_PARTIAL;
    if (*p != ':' || p == name)
        return HTTP_BAD_REQUEST;
    f->name = str(name, p);
    p++;
    while (p < end && is_ows(*p))
        p++;
    bytes value = p;
    p = scan(p, end, C_VALUE);
    bytes value_end = p;
    while (value_end > value && is_ows(value_end[-1]))
        value_end--;
    f->value = str(value, value_end);
    h->p = p;
    return eat_crlf(h);
}

/* Lower-case name test; valid because field names are tokens, in which
 * only letters change under |0x20. */
static int name_is(const http_str *n, const char *lc)
{
    for (size_t i = 0; i < n->n; i++)
        if (((unsigned char)n->p[i] | 0x20) != (unsigned char)lc[i])
            return 0;
    return 1;
}

/* 1*DIGIT without overflow; a repeat must carry the same value. */
static int note_length(const http_str *v, http_request *req)
{
    int64_t n = 0;
    if (v->n == 0)
        return HTTP_BAD_REQUEST;
    for (size_t i = 0; i < v->n; i++) {
        unsigned d = (unsigned char)v->p[i] - '0';
        if (d > 9 || n > (INT64_MAX - d) / 10)
            return HTTP_BAD_REQUEST;
        n = n * 10 + d;
    }
    if (req->content_length >= 0 && req->content_length != n)
        return HTTP_BAD_REQUEST;
    req->content_length = n;
    return 0;
}

/* Connection: a comma-separated list, e.g. "keep-alive, Upgrade". */
static void note_connection(const http_str *v, head *h)
{
    const char *p = v->p, *end = p + v->n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        while (p < e && is_ows((unsigned char)*p))
            p++;
        const char *t = e;
        while (t > p && is_ows((unsigned char)t[-1]))
            t--;
        if (t - p == 5 && case_eq(p, "close", 5))
            h->close = 1;
        else if (t - p == 10 && case_eq(p, "keep-alive", 10))
            h->keep_alive = 1;
        p = comma ? comma + 1 : end;
    }
}

/* Records what a field says about framing and the connection.  Dispatches
 * on the name's length so most fields cost one switch. */
static int note_field(const http_header *f, head *h, http_request *req)
{
    const http_str *v = &f->value;
    switch (f->name.n) {
    case 4:
        if (name_is(&f->name, "host"))
            h->host++;
        break;
    case 6:
        if (name_is(&f->name, "expect") && v->n == 12 && case_eq(v->p, "100-continue", 12))
            h->expect = 1;
        break;
    case 10:
        if (name_is(&f->name, "connection"))
            note_connection(v, h);
        break;
    case 14:
        if (name_is(&f->name, "content-length"))
            return note_length(v, req);
        break;
    case 17:
        if (name_is(&f->name, "transfer-encoding")) {
            h->te++;
            if (v->n != 7 || !case_eq(v->p, "chunked", 7))
                h->te_other = 1;
        }
        break;
    }
    return 0;
}

/* Checks of the whole head, once it is complete. */
static int finish_head(const head *h, const http_limits *lim, http_request *req)
{
    int v11 = req->minor_version == 1;
    if (h->te) {
        if (req->content_length >= 0 || !v11)
            return HTTP_BAD_REQUEST; /* CL + TE, or TE in 1.0: faulty framing */
        if (h->te_other || h->te > 1)
            return HTTP_NOT_IMPLEMENTED;
        req->chunked = 1;
    }
    if (h->host > 1 || (v11 && h->host == 0))
        return HTTP_BAD_REQUEST; /* RFC 9112 section 3.2 */
    if (req->content_length > 0 && (uint64_t)req->content_length > lim->max_body)
        return HTTP_BODY_TOO_LARGE;
    req->keep_alive = !h->close && (v11 || h->keep_alive);
    req->expect_continue = v11 && h->expect; /* 1.0 ignores it (RFC 9110 10.1.1) */
    return 0;
}

static int parse_head(head *h, const http_limits *lim, http_request *req)
{
    size_t max_headers = lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers
                                                              : HTTP_MAX_HEADERS;
    int rc;
    if ((rc = skip_empty_lines(h)) < 0 || (rc = parse_method(h, req)) < 0 ||
        (rc = parse_target(h, lim->max_uri, req)) < 0 || (rc = parse_version(h, req)) < 0)
        return rc;
    for (;;) {
        if (h->p == h->end)
            return HTTP_PARTIAL;
        if (h->p[0] == '\r')
            break;
        if (req->header_count == max_headers)
            return HTTP_HEADERS_TOO_LARGE;
        http_header *f = &req->headers[req->header_count];
        if ((rc = parse_field(h, f)) < 0 || (rc = note_field(f, h, req)) < 0)
            return rc;
        req->header_count++;
    }
    if ((rc = eat_crlf(h)) < 0)
        return rc;
    return finish_head(h, lim, req);
}

int64_t http_parse_request(const char *buf, size_t len, const http_limits *lim,
                           http_request *req)
{
    size_t window = len < lim->max_header_bytes ? len : lim->max_header_bytes;
    head h = {(bytes)buf, (bytes)buf + window, 0, 0, 0, 0, 0, 0};
    req->minor_version = 0;
    req->header_count = 0;
    req->content_length = -1;
    req->chunked = 0;
    req->keep_alive = 0;
    req->expect_continue = 0;
    int rc = parse_head(&h, lim, req);
    if (rc == HTTP_PARTIAL && len > lim->max_header_bytes)
        return HTTP_HEADERS_TOO_LARGE; /* the window is full and the head not over */
    return rc < 0 ? rc : (int64_t)(h.p - (bytes)buf);
}

const http_header *http_find_header(const http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const http_header *f = &req->headers[i];
        if (f->name.n == n && case_eq(f->name.p, name, n))
            return f;
    }
    return NULL;
}

/* ---- chunked body ---- */

/* Decoder states: the low 4 bits of http_chunked.state; the bits above
 * count the bytes of the current chunk-size line or trailer section. */
enum {
    CH_SIZE0,      /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, ';', BWS or CR */
    CH_BWS,        /* whitespace after the size: only ';' may follow */
    CH_EXT,        /* chunk extensions, ignored, up to CR */
    CH_SIZE_LF,    /* LF ending the size line */
    CH_DATA,       /* d->left data bytes */
    CH_DATA_CR,    /* CR after the data */
    CH_DATA_LF,    /* LF after the data */
    CH_TRAILER0,   /* start of a trailer line, or CR of the final CRLF */
    CH_TNAME,      /* trailer field name, up to ':' */
    CH_TVALUE,     /* trailer field value, up to CR */
    CH_TRAILER_LF, /* LF ending a trailer line */
    CH_END_LF,     /* LF ending the body */
    CH_DONE,       /* the body is complete */
    CH_FAIL_BAD,   /* failed: HTTP_BAD_REQUEST again on every call */
    CH_FAIL_BIG    /* failed: HTTP_BODY_TOO_LARGE again on every call */
};

typedef struct chunk_scan {
    unsigned state;  /* CH_* */
    unsigned count;  /* bytes of the current size line or trailer section */
    uint64_t left;   /* chunk size being read, then data bytes left */
    size_t out;      /* decoded bytes so far */
    size_t max_body;
} chunk_scan;

/* Next hex digit of a chunk size; checks overflow and max_body at once. */
static int chunk_digit(chunk_scan *c, int digit)
{
    if (c->left > UINT64_MAX >> 4)
        return HTTP_BODY_TOO_LARGE;
    c->left = c->left << 4 | (unsigned)digit;
    if (c->out > c->max_body || c->left > c->max_body - c->out)
        return HTTP_BODY_TOO_LARGE;
    c->state = CH_SIZE;
    return HTTP_PARTIAL;
}

/* The size line: hex digits, [BWS ";" extensions], CRLF. */
static int chunk_size_byte(chunk_scan *c, unsigned b)
{
    int digit = hex_digit(b);
    switch (c->state) {
    case CH_SIZE0:
        return digit < 0 ? HTTP_BAD_REQUEST : chunk_digit(c, digit);
    case CH_SIZE:
    case CH_BWS:
        if (digit >= 0 && c->state == CH_SIZE)
            return chunk_digit(c, digit);
        if (b == ';')
            c->state = CH_EXT;
        else if (is_ows(b))
            c->state = CH_BWS;
        else if (b == '\r' && c->state == CH_SIZE)
            c->state = CH_SIZE_LF;
        else
            return HTTP_BAD_REQUEST;
        return HTTP_PARTIAL;
    default: /* CH_EXT: anything but controls, up to CR */
        if (b == '\r')
            c->state = CH_SIZE_LF;
        else if (!(cls[b] & C_VALUE))
            return HTTP_BAD_REQUEST;
        return HTTP_PARTIAL;
    }
}

/* Trailer field lines after the last chunk, then the final CRLF. */
static int chunk_trailer_byte(chunk_scan *c, unsigned b)
{
    switch (c->state) {
    case CH_TRAILER0:
        if (b == '\r')
            c->state = CH_END_LF;
        else if (cls[b] & C_TOKEN)
            c->state = CH_TNAME;
        else
            return HTTP_BAD_REQUEST; /* includes obs-fold */
        return HTTP_PARTIAL;
    case CH_TNAME:
        if (b == ':')
            c->state = CH_TVALUE;
        else if (!(cls[b] & C_TOKEN))
            return HTTP_BAD_REQUEST;
        return HTTP_PARTIAL;
    case CH_TVALUE:
        if (b == '\r')
            c->state = CH_TRAILER_LF;
        else if (!(cls[b] & C_VALUE))
            return HTTP_BAD_REQUEST;
        return HTTP_PARTIAL;
    case CH_TRAILER_LF:
        c->state = CH_TRAILER0;
        return b == '\n' ? HTTP_PARTIAL : HTTP_BAD_REQUEST;
    default: /* CH_END_LF */
        c->state = CH_DONE;
        return b == '\n' ? 1 : HTTP_BAD_REQUEST;
    }
}

/* One framing byte (anything but chunk data). */
static int chunk_byte(chunk_scan *c, unsigned b)
{
    switch (c->state) {
    case CH_SIZE0: case CH_SIZE: case CH_BWS: case CH_EXT:
        return ++c->count > CHUNK_LINE_MAX ? HTTP_BAD_REQUEST : chunk_size_byte(c, b);
    case CH_SIZE_LF:
        if (b != '\n')
            return HTTP_BAD_REQUEST;
        c->state = c->left ? CH_DATA : CH_TRAILER0;
        c->count = 0;
        return HTTP_PARTIAL;
    case CH_DATA_CR:
        c->state = CH_DATA_LF;
        return b == '\r' ? HTTP_PARTIAL : HTTP_BAD_REQUEST;
    case CH_DATA_LF:
        c->state = CH_SIZE0;
        return b == '\n' ? HTTP_PARTIAL : HTTP_BAD_REQUEST;
    default:
        return ++c->count > TRAILER_MAX ? HTTP_BAD_REQUEST : chunk_trailer_byte(c, b);
    }
}

int http_chunked_decode(http_chunked *d, char *body, size_t len, size_t max_body)
{
    unsigned st = (unsigned)d->state;
    chunk_scan c = {st & 15, st >> 4, d->left, d->out, max_body};
    size_t in = d->in;
    int rc = c.state == CH_DONE ? 1 : HTTP_PARTIAL;
    if (c.state == CH_FAIL_BAD || c.state == CH_FAIL_BIG)
        return c.state == CH_FAIL_BAD ? HTTP_BAD_REQUEST : HTTP_BODY_TOO_LARGE;
    while (rc == HTTP_PARTIAL && in < len) {
        if (c.state == CH_DATA) {
            size_t n = len - in < c.left ? len - in : (size_t)c.left;
            if (c.out != in)
                memmove(body + c.out, body + in, n);
            in += n;
            c.out += n;
            c.left -= n;
            if (c.left == 0)
                c.state = CH_DATA_CR;
        } else {
            rc = chunk_byte(&c, (unsigned char)body[in++]);
        }
    }
    if (rc < HTTP_PARTIAL)
        c.state = rc == HTTP_BAD_REQUEST ? CH_FAIL_BAD : CH_FAIL_BIG;
    d->state = (int)(c.state | c.count << 4);
    d->in = in;
    d->out = c.out;
    d->left = c.left;
    return rc;
}

/* ---- responses ---- */

typedef struct reason {
    const char *s;
    size_t n;
} reason;

#define R(text) return (reason){text, sizeof text - 1}

static reason reason_of(int status)
{
    switch (status) {
    case 100: R("Continue");
    case 101: R("Switching Protocols");
    case 200: R("OK");
    case 201: R("Created");
    case 202: R("Accepted");
    case 203: R("Non-Authoritative Information");
    case 204: R("No Content");
    case 205: R("Reset Content");
    case 206: R("Partial Content");
    case 300: R("Multiple Choices");
    case 301: R("Moved Permanently");
    case 302: R("Found");
    case 303: R("See Other");
    case 304: R("Not Modified");
    case 307: R("Temporary Redirect");
    case 308: R("Permanent Redirect");
    case 400: R("Bad Request");
    case 401: R("Unauthorized");
    case 402: R("Payment Required");
    case 403: R("Forbidden");
    case 404: R("Not Found");
    case 405: R("Method Not Allowed");
    case 406: R("Not Acceptable");
    case 407: R("Proxy Authentication Required");
    case 408: R("Request Timeout");
    case 409: R("Conflict");
    case 410: R("Gone");
    case 411: R("Length Required");
    case 412: R("Precondition Failed");
    case 413: R("Content Too Large");
    case 414: R("URI Too Long");
    case 415: R("Unsupported Media Type");
    case 416: R("Range Not Satisfiable");
    case 417: R("Expectation Failed");
    case 421: R("Misdirected Request");
    case 422: R("Unprocessable Content");
    case 425: R("Too Early");
    case 426: R("Upgrade Required");
    case 428: R("Precondition Required");
    case 429: R("Too Many Requests");
    case 431: R("Request Header Fields Too Large");
    case 451: R("Unavailable For Legal Reasons");
    case 500: R("Internal Server Error");
    case 501: R("Not Implemented");
    case 502: R("Bad Gateway");
    case 503: R("Service Unavailable");
    case 504: R("Gateway Timeout");
    case 505: R("HTTP Version Not Supported");
    default: R("Unknown");
    }
}

#undef R

const char *http_reason(int status)
{
    return reason_of(status).s;
}

size_t http_write_status(char *out, size_t cap, int status)
{
    if (status < 100 || status > 999)
        return 0;
    reason r = reason_of(status);
    size_t n = 13 + r.n + 2; /* "HTTP/1.1 200 " reason CRLF */
    if (cap < n)
        return 0;
    memcpy(out, "HTTP/1.1 ", 9);
    out[9] = (char)('0' + status / 100);
    out[10] = (char)('0' + status / 10 % 10);
    out[11] = (char)('0' + status % 10);
    out[12] = ' ';
    memcpy(out + 13, r.s, r.n);
    memcpy(out + 13 + r.n, "\r\n", 2);
    return n;
}

size_t http_write_header(char *out, size_t cap, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
    if (name_len > cap || value_len > cap - name_len || cap - name_len - value_len < 4)
        return 0;
    memcpy(out, name, name_len);
    memcpy(out + name_len, ": ", 2);
    memcpy(out + name_len + 2, value, value_len);
    memcpy(out + name_len + 2 + value_len, "\r\n", 2);
    return name_len + value_len + 4;
}

size_t http_write_header_u64(char *out, size_t cap, const char *name, size_t name_len,
                             uint64_t value)
{
    char digits[20];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    return http_write_header(out, cap, name, name_len, digits + n, sizeof digits - n);
}

int64_t http_url_decode(char *dst, const char *src, size_t n, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_digit((unsigned char)src[i + 1]);
            int lo = hex_digit((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        dst[o++] = (char)c;
    }
    return (int64_t)o;
}
