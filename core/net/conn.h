/* conn.h: one client connection of a worker: non-blocking reads into a
 * buffer, the HTTP/1.1 parser, keep-alive and pipelining (answers in
 * order), the limits and timeouts, and one write per batch of responses. */
#ifndef STRATA_CONN_H
#define STRATA_CONN_H

#include "base/buf.h"
#include "http/http.h"
#include "worker.h"

#include <stdint.h>

struct conn {
    worker *w;
    int fd;                   /* owned */
    struct event *rev;        /* owned; persistent read event */
    struct event *wev;        /* owned; armed while output is pending */
    buf in;                   /* bytes read, not yet consumed */
    buf out;                  /* responses not yet written */
    size_t out_sent;          /* bytes of out already written */
    size_t pos;               /* start of the current request in `in` */
    int64_t head_len;         /* current request's head, 0 while still parsing it */
    http_request req;         /* points into `in` */
    http_chunked chunk;
    int sent_continue;        /* 100 Continue written for this request */
    uint64_t started_us;      /* first byte of the current request; 0 when idle */
    uint64_t idle_since_ms;
    int closing;              /* close once `out` is written */
    int waiting;              /* a Lua handler is suspended on this request */
    int in_handler;           /* inside router_handle: answers come synchronously */
    int closed;               /* socket closed while waiting; freed when the handler ends */
    size_t pending_total;     /* bytes of the request being waited on */
    int lua_content_type;     /* the handler set its own Content-Type */
    char request_id[72];
    char uid[JWT_MAX_SUB + 1];    /* the caller's "sub", for the access log; "" when anonymous */
    char remote[48];
    conn *prev, *next;        /* worker's list */
};

/* What an endpoint answers; strings are copied into the output. */
typedef struct reply {
    int status;
    const char *content_type; /* NULL: no Content-Type */
    const char *body;
    size_t body_len;
    const buf *extra;         /* header lines "Name: value\r\n", or NULL */
    int route_id;             /* metrics label */
    const char *uid;          /* for the access log, or NULL */
} reply;

/* Takes over an accepted socket. */
void conn_accept(worker *w, int fd, const char *remote);

/* Queues the response to the current request. */
void conn_reply(conn *c, const reply *r);

/* Queues {"code","message","details":null,"hint":null} with status. */
void conn_reply_error(conn *c, int status, const char *code, const char *message);

/* The same with extra header lines (Retry-After, say). */
void conn_reply_error_with(conn *c, int status, const char *code, const char *message, const buf *extra);

/* A suspended handler answered: go on with the connection. */
void conn_resume(conn *c);

/* Closes timed-out connections (called on the worker's tick). */
void conn_sweep(worker *w);

/* Shutdown: closes idle connections; busy ones close after their answer. */
void conn_drain(worker *w);

/* Closes the socket; the memory goes too unless a handler is suspended
 * on it (then conn_resume frees it). */
void conn_close(conn *c);

#endif
