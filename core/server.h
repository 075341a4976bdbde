/* server.h: the HTTP skeleton of the foundation: GET /health and GET /ready
 * on one libevent event loop (evhttp).  The full HTTP core (own parser,
 * workers, Lua) replaces this unit rather than wrapping it. */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include "conf.h"
#include "readiness.h"

/* Serves until SIGTERM or SIGINT, then returns 0; -1 when it cannot start
 * (the reason is printed on stderr). */
int server_run(const strata_conf *conf, readiness *ready);

#endif
