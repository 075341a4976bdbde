/* conn.c: client connections (see conn.h).  Uses libevent for readiness
 * events, http.h to parse and write, router.h to answer, accesslog and
 * metrics to account.  One read per readable event and one write per
 * batch of answers: a keep-alive request costs two system calls. */
#include "conn.h"

#include "obs/log.h"
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define OUT_HIGH_WATER (256 * 1024) /* stop answering pipelined requests past this */
#define KEEP_BUF 65536              /* buffers past this are freed when empty */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

void conn_accept(worker *w, int fd, const char *remote)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->idle_since_ms = w->now_ms;
    snprintf(c->remote, sizeof c->remote, "%s", remote);
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_write, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        free(c);
        close(fd);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add(&metrics_open_connections, 1);
}

static void close_socket(conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    event_free(c->rev);
    event_free(c->wev);
    close(c->fd);
}

void conn_close(conn *c)
{
    worker *w = c->w;
    close_socket(c);
    if (c->waiting)
        return; /* the handler still runs; conn_resume frees */
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    free(c);
    atomic_fetch_sub(&metrics_open_connections, 1);
    if (w->draining && w->nconns == 0 && event_base_loopexit(w->base, NULL) < 0)
        log_eventf("error", "worker %d: event_base_loopexit failed", w->id);
}

/* The client's X-Request-Id when it is sane, else a generated one. */
static void set_request_id(conn *c)
{
    const http_header *h = http_find_header(&c->req, "x-request-id");
    if (h && h->value.n > 0 && h->value.n < sizeof c->request_id) {
        int ok = 1;
        for (size_t i = 0; i < h->value.n && ok; i++) {
            char ch = h->value.p[i];
            ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 ch == '-' || ch == '_' || ch == '.' || ch == ':';
        }
        if (ok) {
            memcpy(c->request_id, h->value.p, h->value.n);
            c->request_id[h->value.n] = '\0';
            return;
        }
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t a = c->w->id_prefix, b = ++c->w->id_seq;
    for (int i = 0; i < 16; i++) {
        c->request_id[i] = hex[(a >> (60 - 4 * i)) & 15];
        c->request_id[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    c->request_id[32] = '\0';
}

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

void conn_reply(conn *c, const reply *r)
{
    worker *w = c->w;
    int head_only = c->req.method.n == 4 && memcmp(c->req.method.p, "HEAD", 4) == 0;
    size_t extra_len = r->extra ? r->extra->len : 0;
    size_t ct_len = r->content_type ? strlen(r->content_type) : 0;
    size_t id_len = strlen(c->request_id);
    buf cors = {0};
    router_cors_headers(c, &cors);
    size_t need = 256 + ct_len + id_len + extra_len + cors.len + (head_only ? 0 : r->body_len);
    if (buf_reserve(&c->out, need) < 0) {
        buf_free(&cors);
        c->closing = 1;
        return;
    }
    char *p = c->out.p + c->out.len, *start = p;
    p += http_write_status(p, 64, r->status);
    p += put(p, w->date, strlen(w->date));
    if (r->content_type)
        p += http_write_header(p, 32 + ct_len, "Content-Type", 12, r->content_type, ct_len);
    p += http_write_header_u64(p, 48, "Content-Length", 14, r->body_len);
    p += http_write_header(p, 32 + id_len, "X-Request-Id", 12, c->request_id, id_len);
    if (cors.len)
        p += put(p, cors.p, cors.len);
    if (extra_len)
        p += put(p, r->extra->p, extra_len);
    if (c->closing)
        p += put(p, "Connection: close\r\n", 19);
    else if (c->req.minor_version == 0)
        p += put(p, "Connection: keep-alive\r\n", 24);
    p += put(p, "\r\n", 2);
    if (!head_only && r->body_len)
        p += put(p, r->body, r->body_len);
    c->out.len += (size_t)(p - start);
    buf_free(&cors);

    uint64_t dur = c->started_us ? now_us() - c->started_us : 0;
    metrics_request(w->metrics, r->route_id, r->status, dur);
    if (!accesslog_enabled(w->sh->log))
        return;
    char time[32];
    snprintf(time, sizeof time, "%s.%03dZ", w->iso_sec, (int)(w->now_ms % 1000));
    access_entry e = {.time = time, .id = c->request_id,
                      .method = c->req.method.p, .method_len = c->req.method.n,
                      .path = c->req.path.p, .path_len = c->req.path.n, .status = r->status,
                      .bytes = head_only ? 0 : r->body_len, .duration_us = dur,
                      .uid = c->uid[0] ? c->uid : NULL, .remote = c->remote};
    accesslog_add(w->sh->log, &w->logbuf, &e);
}

void conn_reply_error(conn *c, int status, const char *code, const char *message)
{
    conn_reply_error_with(c, status, code, message, NULL);
}

void conn_reply_error_with(conn *c, int status, const char *code, const char *message, const buf *extra)
{
    buf *b = &c->w->scratch;
    b->len = 0;
    int rc = buf_add_str(b, "{\"code\":\"");
    rc |= buf_add_str(b, code);
    rc |= buf_add_str(b, "\",\"message\":\"");
    rc |= buf_add_json_escaped(b, message, strlen(message));
    rc |= buf_add_str(b, "\",\"details\":null,\"hint\":null,\"request_id\":\"");
    rc |= buf_add_str(b, c->request_id);
    rc |= buf_add_str(b, "\"}");
    reply r = {status, "application/json", rc ? "" : b->p, rc ? 0 : b->len, extra,
               METRICS_ROUTE_NONE, NULL};
    conn_reply(c, &r);
}

static void parse_failed(conn *c, int code)
{
    static const struct { int code, status; const char *name, *msg; } E[] = {
        {HTTP_BAD_REQUEST, 400, "bad_request", "malformed HTTP request"},
        {HTTP_URI_TOO_LONG, 414, "uri_too_long", "request target longer than max_uri_bytes"},
        {HTTP_HEADERS_TOO_LARGE, 431, "headers_too_large", "request headers over max_header_bytes or max_headers"},
        {HTTP_NOT_IMPLEMENTED, 501, "not_implemented", "only the chunked transfer coding is supported"},
        {HTTP_BAD_VERSION, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported"},
        {HTTP_BODY_TOO_LARGE, 413, "body_too_large", "request body larger than max_body_bytes"},
    };
    size_t i = 0;
    while (i < sizeof E / sizeof E[0] - 1 && E[i].code != code)
        i++;
    /* What was parsed may be incomplete: log no method or path. */
    c->req.method.n = c->req.path.n = 0;
    c->req.minor_version = 1;
    if (!c->request_id[0])
        set_request_id(c);
    c->closing = 1;
    conn_reply_error(c, E[i].status, E[i].name, E[i].msg);
}

static void maybe_continue(conn *c)
{
    if (c->req.expect_continue && !c->sent_continue && c->req.minor_version == 1) {
        c->sent_continue = 1;
        if (buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            c->closing = 1;
    }
}

/* Answers every complete request in `in`, in order. */
static void process(conn *c)
{
    const strata_conf *cf = c->w->sh->conf;
    http_limits lim = {(size_t)cf->max_uri_bytes, (size_t)cf->max_header_bytes,
                       (size_t)cf->max_headers, (size_t)cf->max_body_bytes};
    while (!c->closing && !c->waiting && c->pos < c->in.len && c->out.len - c->out_sent < OUT_HIGH_WATER) {
        char *start = c->in.p + c->pos;
        size_t avail = c->in.len - c->pos;
        if (!c->started_us)
            c->started_us = now_us();
        /* Parsed strings point into `in`, which reads may move: parse again
         * once the body is complete (cheap, and rarely needed). */
        int64_t head = http_parse_request(start, avail, &lim, &c->req);
        if (head == HTTP_PARTIAL)
            break;
        if (head < 0) {
            parse_failed(c, (int)head);
            break;
        }
        if (!c->head_len) {
            c->head_len = head;
            memset(&c->chunk, 0, sizeof c->chunk);
            c->sent_continue = 0;
            c->request_id[0] = '\0';
            c->uid[0] = '\0';
            set_request_id(c);
        }
        char *body = start + head;
        size_t have = avail - (size_t)head, body_len, total;
        if (c->req.chunked) {
            int rc = http_chunked_decode(&c->chunk, body, have, lim.max_body);
            if (rc == HTTP_PARTIAL) {
                maybe_continue(c);
                break;
            }
            if (rc < 0) {
                parse_failed(c, rc);
                break;
            }
            body_len = c->chunk.out;
            total = (size_t)head + c->chunk.in;
        } else {
            size_t cl = c->req.content_length > 0 ? (size_t)c->req.content_length : 0;
            if (have < cl) {
                maybe_continue(c);
                break;
            }
            body_len = cl;
            total = (size_t)head + cl;
        }
        if (!c->req.keep_alive || c->w->draining)
            c->closing = 1;
        c->in_handler = 1;
        router_handle(c, body, body_len);
        c->in_handler = 0;
        if (c->waiting) {
            /* The handler waits for the database.  `req` points into `in`:
             * neither read more nor move it until the answer is sent. */
            c->pending_total = total;
            if (event_del(c->rev) < 0)
                c->closing = 1;
            return;
        }
        c->pos += total;
        c->head_len = 0;
        c->started_us = 0;
    }
    if (c->pos) {
        buf_consume(&c->in, c->pos);
        c->pos = 0;
    }
    if (c->in.len == 0)
        buf_shrink(&c->in, KEEP_BUF);
}

/* Writes what is pending; closes when asked to and done.  0, or -1 when
 * the connection was closed. */
static int flush(conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out_sent, c->out.len - c->out_sent);
        if (n > 0) {
            c->out_sent += (size_t)n;
            c->idle_since_ms = c->w->now_ms;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (event_add(c->wev, NULL) < 0) {
                conn_close(c);
                return -1;
            }
            return 0;
        }
        conn_close(c); /* the peer is gone */
        return -1;
    }
    c->out.len = c->out_sent = 0;
    buf_shrink(&c->out, KEEP_BUF);
    if (c->closing) {
        conn_close(c);
        return -1;
    }
    return 0;
}

void conn_resume(conn *c)
{
    c->waiting = 0;
    if (c->closed) {
        conn_close(c); /* the socket went away meanwhile: now free it */
        return;
    }
    c->pos += c->pending_total;
    c->pending_total = 0;
    c->head_len = 0;
    c->started_us = 0;
    if (event_add(c->rev, NULL) < 0)
        c->closing = 1;
    process(c);
    if (c->out.len > c->out_sent)
        flush(c);
    else if (c->closing)
        conn_close(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    conn *c = arg;
    worker_clock(c->w);
    if (buf_reserve(&c->in, READ_CHUNK) < 0) {
        conn_close(c);
        return;
    }
    ssize_t n = read(fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(c); /* an answer still being written is lost: the peer closed */
        return;
    }
    if (n < 0)
        return;
    c->in.len += (size_t)n;
    c->idle_since_ms = c->w->now_ms;
    if (c->closing)
        return; /* answering an error; the rest is discarded */
    process(c);
    if (c->out.len > c->out_sent)
        flush(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    worker_clock(c->w);
    if (flush(c) < 0)
        return;
    /* Pipelined requests held back by the high-water mark. */
    if (c->out.len == 0 && c->in.len) {
        process(c);
        if (c->out.len)
            flush(c);
    }
}

void conn_sweep(worker *w)
{
    const strata_conf *cf = w->sh->conf;
    uint64_t now = now_us();
    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->waiting || c->closed)
            continue; /* a handler is at work: its request arrived whole */
        int writing = c->out.len > c->out_sent;
        if (c->started_us && !c->closing && !writing &&
            now - c->started_us > (uint64_t)cf->read_timeout_ms * 1000u) {
            /* A request that does not arrive whole in time (one byte a
             * second, say) is answered 408 and the connection closed. */
            c->closing = 1;
            c->req.method.n = c->req.path.n = 0;
            if (!c->request_id[0])
                set_request_id(c);
            conn_reply_error(c, 408, "timeout", "request not received within read_timeout_ms");
            flush(c);
        } else if (w->now_ms - c->idle_since_ms > (uint64_t)cf->idle_timeout_ms && !c->started_us) {
            conn_close(c); /* idle keep-alive, or a client that stopped reading */
        }
    }
}

void conn_drain(worker *w)
{
    conn *next;
    for (conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->waiting)
            c->closing = 1; /* answer, then close */
        else if (!c->started_us && c->out.len == c->out_sent)
            conn_close(c);
        else
            c->closing = 1;
    }
}
