/* request.h: one HTTP exchange, the one owner of everything about it — the
 * parsed request, the verified caller, the request id, the answer being
 * built, what the request waits on, its timing, and the PostgREST request
 * settings its statements carry.
 *
 * Who does what:
 *   - the connection (net/conn.c) takes a request from its worker's free
 *     list when a request has arrived whole, fills what arrived, sets
 *     `finish`/`owner`, and hands it to one handler callback;
 *   - the handler (net/router.c, the Lua host) authenticates it, adds
 *     response headers and answers it exactly once with request_reply*();
 *   - request_reply*() calls `finish`, through which the connection writes
 *     the answer and gives the request back.
 * Between the handler's start and its answer the request may wait
 * (a database statement, a reload, an outbound HTTP transfer, a slow
 * client reading a stream): the waiting unit registers a cancel hook,
 * which runs if the client goes away first.  Instead of one answer, the
 * handler may stream one (request_stream_*): the head first, the body in
 * pieces, and request_reply*() then ends the stream.
 * The answer of a request whose client has gone is discarded.
 *
 * Nothing here knows about sockets, Lua or the pool. */
#ifndef STRATA_REQUEST_H
#define STRATA_REQUEST_H

#include "http.h"

#include "auth/jwt.h"
#include "auth/jwt_cache.h"
#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

/* PostgREST's per-request settings, in the order of pool statements'
 * parameters: request.jwt.claims, request.jwt.claim.sub,
 * request.jwt.claim.role, request.method, request.path, request.headers
 * (JSON, lower-case names) and the SQL role (SET LOCAL ROLE). */
enum {
    REQ_SET_CLAIMS, REQ_SET_SUB, REQ_SET_ROLE, REQ_SET_METHOD, REQ_SET_PATH, REQ_SET_HEADERS,
    REQ_SET_SQL_ROLE, REQ_NSETTINGS
};

typedef struct request request;

/* The owner's side of the answer: the status, the content type and the
 * body (borrowed for the call), plus r->resp_headers.  Called exactly once
 * per request, by request_reply*(). */
typedef void (*request_finish_fn)(request *r, int status, const char *content_type, const char *body,
                                  size_t body_len);

/* The owner's side of a streamed answer (see request_stream_*). */
typedef struct request_stream_ops {
    int (*start)(request *r, int status, const char *content_type); /* the head; 0, or -1: client gone */
    int (*write)(request *r, const char *p, size_t n);              /* one piece; 0, or -1 */
    size_t (*unsent)(const request *r);                             /* bytes not written to the socket yet */
    void (*abort)(request *r);                                      /* cut the stream: close the connection */
} request_stream_ops;

struct request {
    /* What arrived.  The strings point into the connection's input, which
     * does not move or go away before the request is answered. */
    http_request http;
    const char *body;
    size_t body_len;
    char id[72];                /* X-Request-Id: the client's when sane, else generated */
    char remote[48];            /* the peer's address */
    uint64_t started_us;        /* first byte of the request (monotonic) */
    int head_only;              /* HEAD: the answer carries no body */

    /* Who asks: anonymous until request_authenticate() succeeds. */
    jwt_claims claims;

    /* The answer being built. */
    buf resp_headers;           /* owned; header lines "Name: value\r\n" */
    int has_content_type;       /* a Content-Type line is in resp_headers */
    int route_id;               /* metrics label of the route that answered */
    buf scratch;                /* owned; bodies built in C (errors, built-in endpoints) */
    int answered;

    /* What the request waits on, and how to stop it (client gone). */
    void (*cancel)(void *arg);
    void *cancel_arg;
    int client_gone;

    /* The settings, built on first use; the service's share the request's
     * method, path and headers. */
    const char *settings[REQ_NSETTINGS];
    const char *service_settings[REQ_NSETTINGS];
    buf settings_buf;           /* owned; the settings' text */
    int settings_ready;

    /* A streamed answer: once started, the answer is the stream, and
     * request_reply*() ends it (its status and body are ignored). */
    int streaming;              /* the head is out */
    int stream_status;
    uint64_t stream_bytes;      /* body bytes written, for the access log */
    void (*drained)(void *arg); /* a writer waiting for unsent <= drain_below; called once */
    void *drained_arg;
    size_t drain_below;

    request_finish_fn finish;   /* the owner's; see above */
    const request_stream_ops *stream_ops; /* the owner's */
    void *owner;
    request *next_free;         /* the owner's free list */
};

/* A zeroed request; NULL when out of memory.  request_free releases it. */
request *request_new(void);
void request_free(request *r);

/* Makes r ready for a new exchange, keeping its buffers' memory. */
void request_reset(request *r);

/* Sets r->id from the client's X-Request-Id when it is sane (at most 71
 * characters of [A-Za-z0-9._:-]), else from prefix and seq as 32 hex
 * digits. */
void request_set_id(request *r, uint64_t prefix, uint64_t seq);

/* Verifies the request's token (Authorization: Bearer, else apikey) with
 * key at `now`, or finds it in cache (NULL: none) when key verified it
 * before.  0 with r->claims set (anonymous without a token), or a JWT_*
 * error with why[] filled (the caller answers 401). */
int request_authenticate(request *r, jwt_key *key, jwt_cache *cache, int64_t now, int leeway_s, char *why,
                         size_t whylen);

/* 1 when r has a body and its Content-Type is JSON ("application/" then
 * a run of [A-Za-z0-9.+-] holding "json": application/json,
 * application/vnd.pgrst.object+json, ...). */
int request_body_is_json(const request *r);

/* Appends a response header after checking it cannot split the response
 * (no CR, LF or NUL; a token name).  0, or -1 when refused. */
int request_add_header(request *r, const char *name, size_t name_len, const char *value, size_t value_len);

/* Answers r (once; later calls are ignored). */
void request_reply(request *r, int status, const char *content_type, const char *body, size_t body_len);

/* Answers {"code","message","details":null,"hint":null,"request_id"}. */
void request_reply_error(request *r, int status, const char *code, const char *message);

/* The PostgREST settings (REQ_NSETTINGS NUL-terminated strings), built the
 * first time they are asked for; NULL when out of memory.  Valid until r
 * is reset. */
const char *const *request_settings(request *r);

/* The same for trusted server work done while serving r (strata.data's
 * as_service): claims {"role":"service_role"}, no sub, role and SQL role
 * service_role, r's method, path and headers.  NULL when out of memory. */
const char *const *request_service_settings(request *r);

/* Registers what r waits on; cancel(arg) runs if the client goes away
 * before it ends.  request_wait(r, NULL, NULL) when the wait is over. */
void request_wait(request *r, void (*cancel)(void *), void *arg);

/* Starts a streamed answer: status, r->resp_headers and content_type
 * (when r has none) go out now, the body follows in pieces.  0, or -1
 * when the client is gone or r is answered or streaming already. */
int request_stream_start(request *r, int status, const char *content_type);

/* Sends one piece of the body (nothing for n == 0).  0, or -1 when the
 * client is gone. */
int request_stream_write(request *r, const char *p, size_t n);

/* Bytes written by request_stream_write not yet taken by the socket. */
size_t request_stream_unsent(const request *r);

/* Calls drained(arg) once, from the owner's write event, when the unsent
 * bytes fall to `below` or less; drained NULL stops waiting.  drained must
 * not answer r itself (it runs inside the owner's event). */
void request_stream_on_drain(request *r, size_t below, void (*drained)(void *), void *arg);

/* Cuts the stream (a slow client): the connection closes, r->client_gone
 * is set; r must still be answered to be released. */
void request_stream_abort(request *r);

/* The client went away: cancels what r waits on.  Its answer, when it
 * comes, is discarded by the owner. */
void request_client_gone(request *r);

#endif
