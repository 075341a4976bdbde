/* cors.h: the CORS answer for a request's Origin (conf cors_*): the
 * headers every answer carries for an allowed origin, and the preflight's. */
#ifndef STRATA_CORS_H
#define STRATA_CORS_H

#include "http.h"

#include "base/buf.h"
#include "base/conf.h"

/* 1 when the request has an Origin that cors_origins allows. */
int cors_allowed(const strata_conf *cf, const http_request *req);

/* Appends the CORS header lines for this request to out (nothing when its
 * Origin is absent or not allowed; on OPTIONS, the preflight's too). */
void cors_headers(const strata_conf *cf, const http_request *req, buf *out);

#endif
