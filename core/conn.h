/* conn.h: one client connection of a worker: non-blocking reads into a
 * buffer, the HTTP/1.1 parser, keep-alive and pipelining (answers in
 * order), the limits and timeouts, and one write per batch of responses. */
#ifndef STRATA_CONN_H
#define STRATA_CONN_H

#include "buf.h"
#include "http.h"
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
    char request_id[72];
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

/* Closes timed-out connections (called on the worker's tick). */
void conn_sweep(worker *w);

/* Shutdown: closes idle connections; busy ones close after their answer. */
void conn_drain(worker *w);

void conn_close(conn *c);

#endif
