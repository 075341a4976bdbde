/* server.h: the process: N workers serving HTTP on the shared port, the
 * reload coordinator and its triggers (file changes, SIGHUP, /admin), and
 * the shutdown on SIGTERM/SIGINT.  The main thread runs only signals,
 * the file watch and coordination; requests never touch it. */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include "base/conf.h"
#include "db/readiness.h"

/* Serves until SIGTERM or SIGINT, then returns 0 once in-flight requests
 * finished (or shutdown_timeout passed); -1 when it cannot start (the
 * reason is logged). */
int server_run(const strata_conf *conf, readiness *ready);

#endif
