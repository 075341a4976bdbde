/* conn.c: client connections (see conn.h).  Uses libevent for readiness
 * events, http/ to parse, to write and for the request object, obs/ to
 * account.  One read per readable event and one write per batch of
 * answers: a keep-alive request costs two system calls. */
#include "conn.h"
#include "error_rows.h"

#include "base/clock.h"
#include "http/cors.h"
#include "obs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define OUT_HIGH_WATER (256 * 1024) /* stop answering pipelined requests past this */
#define KEEP_BUF 65536              /* buffers past this are freed when empty */
#define KEEP_REQUESTS 64            /* request objects a worker keeps for reuse */

struct conn {
    conn_env *env;
    int fd;                   /* owned */
    struct event *rev;        /* owned; persistent read event */
    struct event *wev;        /* owned; armed while output is pending */
    struct event *cev;        /* owned, made on first use; armed while waiting: the peer closed */
    buf in;                   /* bytes read, not yet consumed */
    buf out;                  /* answers not yet written */
    size_t out_sent;          /* bytes of out already written */
    size_t pos;               /* start of the current request in `in` */
    int64_t head_len;         /* current request's head, 0 while still parsing it */
    http_chunked chunk;
    int sent_continue;        /* 100 Continue written for this request */
    uint64_t started_us;      /* first byte of the current request; 0 when idle */
    uint64_t idle_since_ms;
    request *r;               /* owned; the request being read or answered, NULL when idle */
    int closing;              /* close once `out` is written */
    int waiting;              /* r is handed to the handler and not answered yet */
    int in_handler;           /* inside the handler call: answers come synchronously */
    int closed;               /* socket closed while waiting; freed when r is answered */
    int linger;               /* answered an error before the request was read whole: after
                               * the answer, shut down writing and discard input until the
                               * peer closes, linger_until_ms or lingering_max_bytes */
    int lingering;            /* the answer is out and the write side shut down */
    uint64_t linger_until_ms; /* env->now_ms past which a lingering connection closes */
    size_t discarded;         /* input bytes dropped since the error */
    size_t pending_total;     /* bytes of the request being waited on */
    char remote[48];
    conn *prev, *next;        /* env's list */
};

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_peer_closed(evutil_socket_t fd, short what, void *arg);
static void on_finish(request *r, int status, const char *content_type, const char *body, size_t body_len);
static int flush(conn *c);

void conn_env_clock(conn_env *env)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    env->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (ts.tv_sec == env->date_sec)
        return;
    env->date_sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(env->date, sizeof env->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    strftime(env->iso_sec, sizeof env->iso_sec, "%Y-%m-%dT%H:%M:%S", &tm);
}

void conn_env_free(conn_env *env)
{
    while (env->free_requests) {
        request *r = env->free_requests;
        env->free_requests = r->next_free;
        request_free(r);
    }
    env->nfree_requests = 0;
    buf_free(&env->logbuf);
}

/* The connection's request object: the one being read, else a fresh one
 * from the env's free list.  NULL when out of memory. */
static request *take_request(conn *c)
{
    if (c->r)
        return c->r;
    conn_env *env = c->env;
    request *r = env->free_requests;
    if (r) {
        env->free_requests = r->next_free;
        env->nfree_requests--;
    } else if (!(r = request_new())) {
        return NULL;
    }
    r->next_free = NULL;
    c->r = r;
    return r;
}

static void give_back_request(conn *c)
{
    request *r = c->r;
    if (!r)
        return;
    c->r = NULL;
    conn_env *env = c->env;
    if (env->nfree_requests >= KEEP_REQUESTS) {
        request_free(r);
        return;
    }
    request_reset(r);
    r->next_free = env->free_requests;
    env->free_requests = r;
    env->nfree_requests++;
}

void conn_accept(conn_env *env, int fd, const char *remote)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->env = env;
    c->fd = fd;
    c->idle_since_ms = env->now_ms;
    snprintf(c->remote, sizeof c->remote, "%s", remote);
    c->rev = event_new(env->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(env->base, fd, EV_WRITE, on_write, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        free(c);
        close(fd);
        return;
    }
    c->next = env->conns;
    if (env->conns)
        env->conns->prev = c;
    env->conns = c;
    env->nconns++;
    atomic_fetch_add(&metrics_open_connections, 1);
}

static void close_socket(conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    event_free(c->rev);
    event_free(c->wev);
    if (c->cev)
        event_free(c->cev);
    close(c->fd);
}

static void conn_close(conn *c)
{
    conn_env *env = c->env;
    close_socket(c);
    if (c->waiting) {
        /* The handler still runs: stop what it waits on.  Its answer (now,
         * or later) frees the connection in on_finish; do not touch c. */
        request_client_gone(c->r);
        return;
    }
    give_back_request(c);
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    env->nconns--;
    free(c);
    atomic_fetch_sub(&metrics_open_connections, 1);
    if (env->draining && env->nconns == 0 && event_base_loopexit(env->base, NULL) < 0)
        log_eventf("error", "event_base_loopexit failed");
}

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/* Metrics, the access log line and, for a 5xx, the error_logs row. */
static void account(conn *c, const request *r, int status, const char *body, size_t body_len)
{
    conn_env *env = c->env;
    uint64_t dur = c->started_us ? mono_us() - c->started_us : 0;
    metrics_request(env->metrics, r->route_id, status, dur);
    error_rows_add(env->log_db, r, status, body, body_len);
    /* privacy_settings.exclude_sensitive_paths hold for this log too. */
    if (!accesslog_enabled(env->log) ||
        (env->log_db && log_db_path_excluded(env->log_db, r->http.path.p, r->http.path.n)))
        return;
    log_flags f = {0};
    if (env->log_db)
        log_db_flags(env->log_db, &f);
    char remote[48];
    if (f.anonymize_ip)
        accesslog_anonymize_ip(c->remote, remote, sizeof remote);
    char time[32];
    snprintf(time, sizeof time, "%s.%03dZ", env->iso_sec, (int)(env->now_ms % 1000));
    access_entry e = {.time = time, .id = r->id,
                      .method = r->http.method.p, .method_len = r->http.method.n,
                      .path = r->http.path.p, .path_len = r->http.path.n, .status = status,
                      .bytes = body_len, .duration_us = dur,
                      .uid = r->claims.uid[0] ? r->claims.uid : NULL,
                      .remote = f.anonymize_ip ? remote : c->remote};
    accesslog_add(env->log, &env->logbuf, &e);
}

/* Queues the head of the answer to r in c->out: status line, Date, the
 * headers, then Content-Length: body_len, or, for a stream (chunked), the
 * chunked coding (HTTP/1.1) or a close-delimited body (HTTP/1.0).  Leaves
 * room for `body_room` more bytes; -1 when out of memory (closing). */
static int write_head(conn *c, request *r, int status, const char *ctype, size_t body_len, int chunked,
                      size_t body_room)
{
    conn_env *env = c->env;
    size_t ct_len = ctype ? strlen(ctype) : 0;
    size_t id_len = strlen(r->id);
    size_t hdr_at = r->resp_headers.len;
    if (chunked && r->http.minor_version == 0)
        c->closing = 1; /* HTTP/1.0 knows no chunks: the close ends the body */
    cors_headers(env->conf, &r->http, &r->resp_headers);
    const buf *extra = &r->resp_headers;
    if (buf_reserve(&c->out, 256 + ct_len + id_len + extra->len + body_room) < 0) {
        c->closing = 1;
        r->resp_headers.len = hdr_at;
        return -1;
    }
    char *p = c->out.p + c->out.len, *start = p;
    p += http_write_status(p, 64, status);
    p += put(p, env->date, strlen(env->date));
    if (ctype)
        p += http_write_header(p, 32 + ct_len, "Content-Type", 12, ctype, ct_len);
    if (!chunked)
        p += http_write_header_u64(p, 48, "Content-Length", 14, body_len);
    else if (r->http.minor_version == 1)
        p += put(p, "Transfer-Encoding: chunked\r\n", 28);
    p += http_write_header(p, 32 + id_len, "X-Request-Id", 12, r->id, id_len);
    if (extra->len)
        p += put(p, extra->p, extra->len);
    if (c->closing)
        p += put(p, "Connection: close\r\n", 19);
    else if (r->http.minor_version == 0)
        p += put(p, "Connection: keep-alive\r\n", 24);
    p += put(p, "\r\n", 2);
    c->out.len += (size_t)(p - start);
    r->resp_headers.len = hdr_at;
    return 0;
}

/* Queues the answer to r in c->out: the head, then the body. */
static void write_answer(conn *c, request *r, int status, const char *ctype, const char *body, size_t body_len)
{
    size_t room = r->head_only ? 0 : body_len;
    if (write_head(c, r, status, ctype, body_len, 0, room) < 0)
        return;
    if (room)
        c->out.len += put(c->out.p + c->out.len, body, body_len);
    account(c, r, status, body, room);
}

/* ---- streamed answers (request_stream_ops) ---- */

static int chunked(const request *r)
{
    return r->http.minor_version == 1;
}

static int stream_start(request *r, int status, const char *ctype)
{
    conn *c = r->owner;
    if (c->closed || write_head(c, r, status, ctype, 0, 1, 0) < 0)
        return -1;
    return flush(c) < 0 || c->closed ? -1 : 0;
}

/* One piece: "<hex size>\r\n<bytes>\r\n" with the chunked coding. */
static int stream_write(request *r, const char *data, size_t n)
{
    conn *c = r->owner;
    if (c->closed)
        return -1;
    if (r->head_only)
        return 0;
    if (buf_reserve(&c->out, n + 32) < 0) {
        conn_close(c);
        return -1;
    }
    char *p = c->out.p + c->out.len, *start = p;
    if (chunked(r))
        p += (size_t)snprintf(p, 24, "%zx\r\n", n);
    p += put(p, data, n);
    if (chunked(r))
        p += put(p, "\r\n", 2);
    c->out.len += (size_t)(p - start);
    r->stream_bytes += n;
    return flush(c) < 0 || c->closed ? -1 : 0;
}

static size_t stream_unsent(const request *r)
{
    const conn *c = r->owner;
    return c->closed ? 0 : c->out.len - c->out_sent;
}

static void stream_abort(request *r)
{
    conn *c = r->owner;
    if (!c->closed)
        conn_close(c); /* waiting: r stays, and is released when answered */
}

static const request_stream_ops STREAM_OPS = {stream_start, stream_write, stream_unsent, stream_abort};

/* The end of a streamed answer: the last chunk (HTTP/1.1, not HEAD). */
static void end_stream(conn *c, request *r)
{
    if (chunked(r) && !r->head_only && buf_add(&c->out, "0\r\n\r\n", 5) < 0)
        c->closing = 1;
    account(c, r, r->stream_status, NULL, r->stream_bytes);
}

/* Hands r to its owner: what the connection does for every answer. */
static void prepare(conn *c, request *r)
{
    r->finish = on_finish;
    r->stream_ops = &STREAM_OPS;
    r->owner = c;
    r->started_us = c->started_us;
    memcpy(r->remote, c->remote, sizeof r->remote);
}

/* An error answered before the request was read whole: the client may
 * still be sending it.  Closing with unread bytes makes the kernel send a
 * reset, which can destroy the answer before the client reads it; so the
 * connection closes once the answer is out, the write side is shut down
 * and the client has stopped sending (nginx's lingering close), bounded
 * in time and bytes. */
static void start_linger(conn *c)
{
    c->closing = 1;
    c->linger = 1;
    c->discarded = 0;
    c->linger_until_ms = c->env->now_ms + (uint64_t)c->env->conf->lingering_timeout_ms;
}

/* The answer is written: no more output, wait for the client's end. */
static void shut_writing(conn *c)
{
    c->lingering = 1;
    if (shutdown(c->fd, SHUT_WR) < 0)
        conn_close(c);
}

static void parse_failed(conn *c, request *r, int code)
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
    r->http.method.n = r->http.path.n = 0;
    r->http.minor_version = 1;
    if (!r->id[0])
        request_set_id(r, c->env->id_prefix, ++c->env->id_seq);
    start_linger(c);
    prepare(c, r);
    c->waiting = c->in_handler = 1;
    request_reply_error(r, E[i].status, E[i].name, E[i].msg);
    c->in_handler = 0;
}

static void maybe_continue(conn *c, const request *r)
{
    if (r->http.expect_continue && !c->sent_continue && r->http.minor_version == 1) {
        c->sent_continue = 1;
        if (buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            c->closing = 1;
    }
}

/* While a request waits: the peer's close (not its data) wakes us, where
 * the event loop can tell (epoll); elsewhere it is seen at the answer.
 * epoll reports a reset (RST) as HUP/ERR, which libevent hands on as
 * EV_READ, not EV_CLOSED: hence EV_READ too, until the peer's pipelined
 * data shows it is alive (then EV_CLOSED alone, or the loop would spin). */
static int arm_watch(conn *c, short what)
{
    if (event_assign(c->cev, c->env->base, c->fd, what, on_peer_closed, c) < 0 || event_add(c->cev, NULL) < 0) {
        log_eventf("warn", "cannot watch a waiting connection for its close");
        return -1;
    }
    return 0;
}

static void watch_peer(conn *c)
{
    if (!(event_base_get_features(c->env->base) & EV_FEATURE_EARLY_CLOSE))
        return;
    if (!c->cev && !(c->cev = event_new(c->env->base, c->fd, EV_CLOSED, on_peer_closed, c)))
        return;
    arm_watch(c, EV_CLOSED | EV_READ);
}

static void on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    if (!c->waiting)
        return;
    if (!(what & EV_CLOSED)) {
        char b;
        ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
            arm_watch(c, n > 0 ? EV_CLOSED : EV_CLOSED | EV_READ); /* pipelined data: alive */
            return;
        }
    }
    conn_close(c); /* cancels what the request waits on */
}

/* The request at `start` is whole: `total` bytes with its body.  Hands it
 * to the handler; 1 when the answer is awaited (reading stops), -1 when
 * the connection closed meanwhile (a stream cut): c is not to be touched. */
static int dispatch(conn *c, request *r, char *body, size_t body_len, size_t total)
{
    if (!r->http.keep_alive || c->env->draining)
        c->closing = 1;
    r->body = body;
    r->body_len = body_len;
    r->head_only = r->http.method.n == 4 && memcmp(r->http.method.p, "HEAD", 4) == 0;
    prepare(c, r);
    c->waiting = c->in_handler = 1;
    c->env->handler(r, c->env->handler_arg);
    c->in_handler = 0;
    if (c->closed) {
        if (!c->waiting)
            conn_close(c); /* answered after its connection closed: free it now */
        return -1;
    }
    if (c->waiting) {
        /* `r` points into `in`: neither read more nor move it until the
         * answer is sent; but learn when the peer closes (EPOLLRDHUP), so
         * that what the request waits on is cancelled. */
        c->pending_total = total;
        if (event_del(c->rev) < 0)
            c->closing = 1;
        watch_peer(c);
        return 1;
    }
    c->pos += total;
    c->head_len = 0;
    c->started_us = 0;
    return 0;
}

/* Answers every complete request in `in`, in order.  0, or -1 when the
 * connection closed (see dispatch). */
static int process(conn *c)
{
    const strata_conf *cf = c->env->conf;
    http_limits lim = {(size_t)cf->max_uri_bytes, (size_t)cf->max_header_bytes,
                       (size_t)cf->max_headers, (size_t)cf->max_body_bytes};
    while (!c->closing && !c->waiting && c->pos < c->in.len && c->out.len - c->out_sent < OUT_HIGH_WATER) {
        char *start = c->in.p + c->pos;
        size_t avail = c->in.len - c->pos;
        request *r = take_request(c);
        if (!r) {
            c->closing = 1;
            break;
        }
        if (!c->started_us)
            c->started_us = mono_us();
        /* Parsed strings point into `in`, which reads may move: parse again
         * once the body is complete (cheap, and rarely needed). */
        int64_t head = http_parse_request(start, avail, &lim, &r->http);
        if (head == HTTP_PARTIAL)
            break;
        if (head < 0) {
            parse_failed(c, r, (int)head);
            break;
        }
        if (!c->head_len) {
            c->head_len = head;
            memset(&c->chunk, 0, sizeof c->chunk);
            c->sent_continue = 0;
            request_set_id(r, c->env->id_prefix, ++c->env->id_seq);
        }
        char *body = start + head;
        size_t have = avail - (size_t)head, body_len, total;
        if (r->http.chunked) {
            int rc = http_chunked_decode(&c->chunk, body, have, lim.max_body);
            if (rc == HTTP_PARTIAL) {
                maybe_continue(c, r);
                break;
            }
            if (rc < 0) {
                parse_failed(c, r, rc);
                break;
            }
            body_len = c->chunk.out;
            total = (size_t)head + c->chunk.in;
        } else {
            size_t cl = r->http.content_length > 0 ? (size_t)r->http.content_length : 0;
            if (have < cl) {
                maybe_continue(c, r);
                break;
            }
            body_len = cl;
            total = (size_t)head + cl;
        }
        int d = dispatch(c, r, body, body_len, total);
        if (d)
            return d < 0 ? -1 : 0;
    }
    if (c->pos) {
        buf_consume(&c->in, c->pos);
        c->pos = 0;
    }
    if (c->in.len == 0) {
        /* Idle keep-alive connections hold no buffer and no request: ten
         * thousand of them must cost little more than the kernel's part. */
        buf_shrink(&c->in, c->waiting ? KEEP_BUF : 0);
        if (!c->waiting)
            give_back_request(c);
    }
    return 0;
}

/* Writes what is pending; closes (or starts lingering) when asked to and
 * done.  0, or -1 when the connection was closed or lingers. */
static int flush(conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out_sent, c->out.len - c->out_sent);
        if (n > 0) {
            c->out_sent += (size_t)n;
            c->idle_since_ms = c->env->now_ms;
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
    buf_shrink(&c->out, c->waiting || c->r ? KEEP_BUF : 0);
    if (c->closing && !c->waiting) { /* a stream being written closes at its end */
        if (c->linger && !c->lingering && !c->env->draining)
            shut_writing(c);
        else
            conn_close(c);
        return -1;
    }
    return 0;
}

/* An answer that came after the handler call returned: go on with the
 * connection from here. */
static void resume(conn *c)
{
    if (c->cev && event_del(c->cev) < 0)
        c->closing = 1;
    c->pos += c->pending_total;
    c->pending_total = 0;
    c->head_len = 0;
    c->started_us = 0;
    if (event_add(c->rev, NULL) < 0)
        c->closing = 1;
    if (process(c) < 0)
        return;
    if (c->out.len > c->out_sent)
        flush(c);
    else if (c->closing)
        conn_close(c);
}

/* request_finish_fn: the handler answered r. */
static void on_finish(request *r, int status, const char *content_type, const char *body, size_t body_len)
{
    conn *c = r->owner;
    c->waiting = 0;
    if (c->closed) {
        /* logged, though nobody reads it (all of a stream may not have reached the client) */
        account(c, r, r->streaming ? r->stream_status : status, r->streaming ? NULL : body,
                r->streaming ? r->stream_bytes : 0);
        if (!c->in_handler)
            conn_close(c); /* the client went away meanwhile: now free it (else dispatch does) */
        return;
    }
    if (r->streaming)
        end_stream(c, r);
    else
        write_answer(c, r, status, content_type, body, body_len);
    request_reset(r); /* ready for the next pipelined request */
    if (!c->in_handler)
        resume(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    conn *c = arg;
    conn_env_clock(c->env);
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
    c->idle_since_ms = c->env->now_ms;
    if (c->linger) {
        /* Answering an error: the rest is read and dropped, up to a bound. */
        c->discarded += (size_t)n;
        if (c->discarded > (size_t)c->env->conf->lingering_max_bytes)
            conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    if (c->closing)
        return; /* answering; the rest is discarded */
    if (process(c) < 0)
        return;
    if (c->out.len > c->out_sent)
        flush(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    conn_env_clock(c->env);
    if (flush(c) < 0)
        return;
    request *r = c->r;
    if (c->waiting && r->drained && c->out.len - c->out_sent <= r->drain_below) {
        void (*drained)(void *) = r->drained;
        r->drained = NULL;
        drained(r->drained_arg); /* a streaming writer; it resumes later, from an event of its own */
        return;
    }
    /* Pipelined requests held back by the high-water mark. */
    if (c->out.len == 0 && c->in.len && process(c) == 0 && c->out.len)
        flush(c);
}

/* A request that does not arrive whole in time (one byte a second, say)
 * is answered 408 and the connection closed. */
static void read_timed_out(conn *c)
{
    request *r = take_request(c);
    if (!r) {
        conn_close(c);
        return;
    }
    start_linger(c);
    r->http.method.n = r->http.path.n = 0;
    r->http.minor_version = 1;
    if (!r->id[0])
        request_set_id(r, c->env->id_prefix, ++c->env->id_seq);
    prepare(c, r);
    c->waiting = c->in_handler = 1;
    request_reply_error(r, 408, "timeout", "request not received within read_timeout_ms");
    c->in_handler = 0;
    flush(c);
}

void conn_sweep(conn_env *env)
{
    const strata_conf *cf = env->conf;
    uint64_t now = mono_us();
    conn *next;
    for (conn *c = env->conns; c; c = next) {
        next = c->next;
        if (c->waiting || c->closed)
            continue; /* a handler is at work: its request arrived whole */
        if (c->linger) {
            if (env->now_ms >= c->linger_until_ms)
                conn_close(c);
            continue;
        }
        int writing = c->out.len > c->out_sent;
        if (c->started_us && !c->closing && !writing &&
            now - c->started_us > (uint64_t)cf->read_timeout_ms * 1000u)
            read_timed_out(c);
        else if (env->now_ms - c->idle_since_ms > (uint64_t)cf->idle_timeout_ms && !c->started_us)
            conn_close(c); /* idle keep-alive, or a client that stopped reading */
    }
}

void conn_drain(conn_env *env)
{
    env->draining = 1;
    conn *next;
    for (conn *c = env->conns; c; c = next) {
        next = c->next;
        if (c->lingering || (!c->waiting && !c->started_us && c->out.len == c->out_sent))
            conn_close(c);
        else
            c->closing = 1; /* answer, then close */
    }
    if (env->nconns == 0 && event_base_loopexit(env->base, NULL) < 0)
        log_eventf("error", "event_base_loopexit failed");
}

void conn_close_all(conn_env *env)
{
    conn *next;
    for (conn *c = env->conns; c; c = next) {
        next = c->next;
        if (!c->closed)
            conn_close(c);
    }
}
