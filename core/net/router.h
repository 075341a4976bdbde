/* router.h: decides who answers a request — a built-in endpoint (/health,
 * /ready, /metrics, /admin/...), the CORS preflight, or the Lua dispatcher
 * of the worker's generation — and answers it through request_reply*().
 * It is the connections' handler (conn_handler_fn) with the worker as arg. */
#ifndef STRATA_ROUTER_H
#define STRATA_ROUTER_H

#include "http/request.h"

void router_handle(request *r, void *worker);

#endif
