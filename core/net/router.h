/* router.h: decides who answers a request — a built-in endpoint (/health,
 * /ready, /metrics, /admin/...), the CORS preflight, or the Lua dispatcher
 * of the worker's generation — and hands the answer to conn_reply(). */
#ifndef STRATA_ROUTER_H
#define STRATA_ROUTER_H

#include "conn.h"

void router_handle(conn *c, const char *body, size_t body_len);

/* Appends the CORS headers for this request's Origin (if allowed) to out. */
void router_cors_headers(const conn *c, buf *out);

#endif
