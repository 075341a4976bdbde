/* client.c: outbound HTTP on a worker's loop (see client.h).  Uses
 * libcurl's multi-socket API, libevent for the sockets and the timer
 * libcurl asks for, obs/ to count.  The shape is curl's
 * docs/examples/hiperfifo.c: CURLMOPT_SOCKETFUNCTION keeps one event per
 * socket libcurl watches, CURLMOPT_TIMERFUNCTION one timer, and each event
 * calls curl_multi_socket_action, then reads the finished transfers.
 *
 * Owners are told through a "dirty" list run from an event of its own
 * (`kick`): whatever marks a transfer — a libcurl callback, a cancel from
 * a closing connection, a reload — never calls into the owner directly. */
#include "client.h"

#include "base/clock.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_HOLD 65536       /* streamed bytes held for the owner; past it the transfer pauses */
#define MAX_HEADER_BYTES 65536  /* a response's header block */
#define NOTIFY_BATCH 4          /* owners notified per run of the kick event */

/* One socket libcurl watches, with its event. */
typedef struct hc_sock {
    struct event *ev;           /* owned */
    struct hc_sock *prev, *next;
} hc_sock;

struct hc_client {
    struct event_base *base;
    CURLM *multi;               /* owned; its connection cache is the reuse */
    struct event *timer;        /* owned; libcurl's timeout */
    struct event *kick;         /* owned; runs the dirty list */
    char *ca_file;              /* owned; NULL: the system's */
    http_client_stats *stats;
    hc_sock *socks;             /* owned; every watched socket */
    hc_transfer *all;           /* every transfer not freed yet (not owned) */
    hc_transfer *dirty, *dirty_tail; /* owners to notify, oldest first */
};

struct hc_transfer {
    hc_client *c;               /* NULL once the client is gone */
    CURL *easy;                 /* owned; NULL once ended */
    struct curl_slist *hdrs;    /* owned while running */
    hc_notify_fn notify;
    void *arg;
    const void *tag;
    buf headers;                /* owned; the last response's header block */
    buf body;                   /* owned; the body, or the streamed bytes not taken */
    size_t max_bytes, total;
    int stream;                 /* asked for streaming */
    int streaming;              /* and the status is 2xx: the body goes out in pieces */
    int decided;                /* streaming is known (the first body byte came) */
    int paused;                 /* the write callback returned CURL_WRITEFUNC_PAUSE */
    int too_large, oom;         /* why the write callback refused */
    int done, code, status;
    char message[CURL_ERROR_SIZE + 64];
    char errbuf[CURL_ERROR_SIZE];
    uint64_t started_us;
    int dirty;
    hc_transfer *prev, *next;   /* c->all */
    hc_transfer *dprev, *dnext; /* c->dirty */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- the dirty list ---- */

static void mark_dirty(hc_transfer *t)
{
    hc_client *c = t->c;
    if (!c || t->dirty)
        return;
    t->dirty = 1;
    t->dnext = NULL;
    t->dprev = c->dirty_tail;
    if (c->dirty_tail)
        c->dirty_tail->dnext = t;
    else
        c->dirty = t;
    c->dirty_tail = t;
    event_active(c->kick, EV_TIMEOUT, 0);
}

static void unmark(hc_transfer *t)
{
    hc_client *c = t->c;
    if (!t->dirty)
        return;
    t->dirty = 0;
    if (t->dprev)
        t->dprev->dnext = t->dnext;
    else
        c->dirty = t->dnext;
    if (t->dnext)
        t->dnext->dprev = t->dprev;
    else
        c->dirty_tail = t->dprev;
    t->dprev = t->dnext = NULL;
}

/* Notifies up to max owners, oldest first, one at a time: a notify may
 * free or start transfers. */
static void run_dirty(hc_client *c, int max)
{
    for (int i = 0; c->dirty && i != max; i++) {
        hc_transfer *t = c->dirty;
        unmark(t);
        t->notify(t->arg);
    }
}

/* A few owners per run, then the kick goes back in the loop's queue: each
 * notify resumes a handler, and a loop that resumed every dirty owner at
 * once (hundreds under a thousand streams) made every other client wait
 * for all of them (see worker.c's priorities). */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_client *c = arg;
    run_dirty(c, NOTIFY_BATCH);
    if (c->dirty)
        event_active(c->kick, EV_TIMEOUT, 0);
}

/* Puts ev at the lowest priority of the loop: outbound transfers yield to
 * the server's own clients (worker.c says why).  Not libcurl's timer: it
 * starts the transfers (connects) and is rare; behind a thousand
 * executions' setup it held every new stream back (all their first deltas
 * came 12 s after the start instead of 4.6 s in make bench-ai). */
static int lowest(hc_client *c, struct event *ev)
{
    int n = event_base_get_npriorities(c->base);
    return event_priority_set(ev, n > 0 ? n - 1 : 0);
}

/* ---- ending a transfer ---- */

static void stop_easy(hc_transfer *t)
{
    if (!t->easy)
        return;
    if (t->c && curl_multi_remove_handle(t->c->multi, t->easy) != CURLM_OK)
        t->oom = 1; /* cannot happen for a handle it holds; nothing else to do */
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
}

static void end(hc_transfer *t, int code, const char *message)
{
    if (t->done)
        return;
    if (t->easy) {
        long st = 0;
        if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK)
            t->status = (int)st;
    }
    stop_easy(t);
    t->done = 1;
    t->code = code;
    snprintf(t->message, sizeof t->message, "%s", message ? message : "");
    if (t->c)
        http_client_stats_end(t->c->stats, code, mono_us() - t->started_us);
}

static int map_code(hc_transfer *t, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HC_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HC_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return HC_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HC_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        return HC_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return HC_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return t->too_large ? HC_TOO_LARGE : HC_INTERNAL;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return HC_URL;
    case CURLE_OUT_OF_MEMORY:
        return HC_INTERNAL;
    default:
        return HC_HTTP; /* the upstream broke the exchange: truncated, reset, garbage */
    }
}

/* Reads what libcurl finished and ends those transfers. */
static void read_done(hc_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        hc_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (!t)
            continue;
        CURLcode rc = msg->data.result;
        int code = map_code(t, rc);
        char text[sizeof t->message];
        if (code == HC_TOO_LARGE)
            snprintf(text, sizeof text, "the response is larger than max_bytes (%zu)", t->max_bytes);
        else
            snprintf(text, sizeof text, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
        end(t, t->oom ? HC_INTERNAL : code, t->oom ? "out of memory" : text);
        mark_dirty(t);
    }
}

/* ---- libcurl's events ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    read_done(c);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    hc_client *c = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, action, &running);
    read_done(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon" (the next
 * loop iteration, not from here: libcurl must not be re-entered). */
static int set_timer(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    hc_client *c = arg;
    if (timeout_ms < 0)
        return event_del(c->timer) < 0 ? -1 : 0;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return event_add(c->timer, &tv) < 0 ? -1 : 0;
}

static void drop_sock(hc_client *c, hc_sock *s)
{
    if (s->ev)
        event_free(s->ev);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl asks. */
static int set_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    (void)easy;
    hc_client *c = arg;
    hc_sock *hs = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (hs)
            drop_sock(c, hs);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (!hs) {
        if (!(hs = calloc(1, sizeof *hs)))
            return -1;
        hs->next = c->socks;
        if (c->socks)
            c->socks->prev = hs;
        c->socks = hs;
        curl_multi_assign(c->multi, s, hs);
    } else if (hs->ev) {
        event_free(hs->ev);
    }
    hs->ev = event_new(c->base, s, kind, on_socket_event, c);
    if (!hs->ev || lowest(c, hs->ev) < 0 || event_add(hs->ev, NULL) < 0) {
        if (hs->ev)
            event_free(hs->ev);
        hs->ev = NULL;
        return -1;
    }
    return 0;
}

/* ---- a transfer's callbacks (inside libcurl: no owner calls here) ---- */

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    hc_transfer *t = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        t->headers.len = 0; /* a new response (after 100 Continue, a proxy's CONNECT) */
    if (t->headers.len + len > MAX_HEADER_BYTES) {
        t->too_large = 1;
        return 0;
    }
    if (buf_add(&t->headers, p, len) < 0) {
        t->oom = 1;
        return 0;
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    hc_transfer *t = arg;
    size_t len = size * n;
    if (!t->decided) {
        long st = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &st);
        t->streaming = t->stream && st >= 200 && st < 300;
        t->decided = 1;
    }
    if (t->total + len > t->max_bytes) {
        t->too_large = 1;
        return 0;
    }
    if (t->streaming && t->body.len > 0 && t->body.len + len > STREAM_HOLD) {
        t->paused = 1; /* libcurl keeps these bytes and hands them again on unpause */
        return CURL_WRITEFUNC_PAUSE;
    }
    if (buf_add(&t->body, p, len) < 0) {
        t->oom = 1;
        return 0;
    }
    t->total += len;
    if (t->streaming)
        mark_dirty(t);
    return len;
}

/* ---- the API ---- */

hc_client *hc_client_new(struct event_base *base, const char *ca_file, http_client_stats *stats)
{
    pthread_once(&global_once, global_init);
    if (global_rc < 0)
        return NULL;
    hc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->stats = stats;
    if ((ca_file && *ca_file && !(c->ca_file = strdup(ca_file))) || !(c->multi = curl_multi_init()) ||
        !(c->timer = evtimer_new(base, on_timer, c)) || !(c->kick = event_new(base, -1, 0, on_kick, c)) ||
        lowest(c, c->kick) < 0)
        goto err;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, set_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, set_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK)
        goto err;
    return c;
err:
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->timer)
        event_free(c->timer);
    if (c->kick)
        event_free(c->kick);
    free(c->ca_file);
    free(c);
    return NULL;
}

void hc_client_cancel_tag(hc_client *c, const void *tag)
{
    for (hc_transfer *t = c->all; t; t = t->next) {
        if (t->done || (tag && t->tag != tag))
            continue;
        end(t, HC_CANCELLED, tag ? "the scripts were reloaded" : "the server is shutting down");
        mark_dirty(t);
    }
}

void hc_client_shutdown(hc_client *c)
{
    hc_client_cancel_tag(c, NULL);
    run_dirty(c, -1);
}

void hc_client_free(hc_client *c)
{
    if (!c)
        return;
    while (c->all) {
        hc_transfer *t = c->all;
        c->all = t->next;
        end(t, HC_CANCELLED, "the server stopped");
        t->dirty = 0;
        t->c = NULL;
        t->prev = t->next = NULL;
    }
    curl_multi_cleanup(c->multi);
    while (c->socks)
        drop_sock(c, c->socks);
    event_free(c->timer);
    event_free(c->kick);
    free(c->ca_file);
    free(c);
}

static int setup(hc_transfer *t, const hc_request *rq, const char *ca_file)
{
    CURL *e = t->easy;
    int bad = 0;
#define OPT(o, v) bad |= curl_easy_setopt(e, o, v) != CURLE_OK
    OPT(CURLOPT_URL, rq->url);
    OPT(CURLOPT_PRIVATE, (void *)t);
    OPT(CURLOPT_ERRORBUFFER, t->errbuf);
    OPT(CURLOPT_WRITEFUNCTION, on_body);
    OPT(CURLOPT_WRITEDATA, (void *)t);
    OPT(CURLOPT_HEADERFUNCTION, on_header);
    OPT(CURLOPT_HEADERDATA, (void *)t);
    OPT(CURLOPT_NOSIGNAL, 1L);
    OPT(CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    OPT(CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
    OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    OPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    OPT(CURLOPT_TCP_KEEPALIVE, 1L);
    OPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_bytes);
    if (ca_file)
        OPT(CURLOPT_CAINFO, ca_file);
    if (rq->body) {
        OPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        OPT(CURLOPT_COPYPOSTFIELDS, rq->body);
    }
    if (strcmp(rq->method, "HEAD") == 0)
        OPT(CURLOPT_NOBODY, 1L);
    else if (strcmp(rq->method, "GET") != 0 || rq->body)
        OPT(CURLOPT_CUSTOMREQUEST, rq->method);
#undef OPT
    /* "Expect:" turns off 100-continue: a round trip per POST otherwise. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; l && i < rq->nheaders; i++) {
        struct curl_slist *next = curl_slist_append(l, rq->headers[i]);
        if (!next) {
            curl_slist_free_all(l);
            l = NULL;
        }
        l = next;
    }
    t->hdrs = l;
    return bad || !l || curl_easy_setopt(e, CURLOPT_HTTPHEADER, l) != CURLE_OK ? -1 : 0;
}

hc_transfer *hc_start(hc_client *c, const hc_request *rq, hc_notify_fn notify, void *arg, char *err,
                      size_t errlen)
{
    hc_transfer *t = calloc(1, sizeof *t);
    if (!t || !(t->easy = curl_easy_init())) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->notify = notify;
    t->arg = arg;
    t->tag = rq->tag;
    t->stream = rq->stream;
    t->max_bytes = rq->max_bytes;
    t->started_us = mono_us();
    if (setup(t, rq, c->ca_file) < 0 || curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        curl_easy_cleanup(t->easy);
        curl_slist_free_all(t->hdrs);
        free(t);
        snprintf(err, errlen, "libcurl refused the transfer's options");
        return NULL;
    }
    t->c = c;
    t->next = c->all;
    if (c->all)
        c->all->prev = t;
    c->all = t;
    http_client_stats_start(c->stats);
    return t;
}

int hc_done(const hc_transfer *t)
{
    return t->done;
}

const buf *hc_pending(const hc_transfer *t)
{
    return t->streaming ? &t->body : NULL;
}

void hc_take(hc_transfer *t)
{
    t->body.len = 0;
    buf_shrink(&t->body, STREAM_HOLD * 2);
    if (t->paused && t->easy) {
        t->paused = 0;
        /* May hand the held bytes to on_body right away: it only buffers. */
        if (curl_easy_pause(t->easy, CURLPAUSE_CONT) != CURLE_OK)
            end(t, HC_INTERNAL, "cannot resume a paused transfer");
    }
}

int hc_result(const hc_transfer *t, int *status, const buf **headers, const buf **body, const char **message)
{
    *status = t->status;
    *headers = &t->headers;
    *body = &t->body;
    *message = t->message;
    return t->code;
}

void hc_cancel(hc_transfer *t, const char *why, int notify)
{
    if (t->done)
        return;
    end(t, HC_CANCELLED, why);
    if (notify)
        mark_dirty(t);
}

void hc_free(hc_transfer *t)
{
    if (!t)
        return;
    hc_cancel(t, "closed by its owner", 0);
    if (t->c) {
        unmark(t);
        if (t->prev)
            t->prev->next = t->next;
        else
            t->c->all = t->next;
        if (t->next)
            t->next->prev = t->prev;
    }
    buf_free(&t->headers);
    buf_free(&t->body);
    free(t);
}
