/* cors.c: CORS headers (see cors.h).  Uses the parsed request and the
 * configuration only. */
#include "cors.h"

#include <string.h>

/* The matching allowed origin for this request, or NULL. */
static const char *allowed_origin(const strata_conf *cf, const http_request *req, http_str *origin)
{
    const http_header *h = http_find_header(req, "origin");
    if (!h || cf->cors_origin_count == 0)
        return NULL;
    *origin = h->value;
    for (int i = 0; i < cf->cors_origin_count; i++) {
        const char *o = cf->cors_origins[i];
        if (strcmp(o, "*") == 0 || (strlen(o) == h->value.n && memcmp(o, h->value.p, h->value.n) == 0))
            return o;
    }
    return NULL;
}

int cors_allowed(const strata_conf *cf, const http_request *req)
{
    http_str origin;
    return allowed_origin(cf, req, &origin) != NULL;
}

void cors_headers(const strata_conf *cf, const http_request *req, buf *out)
{
    http_str origin;
    const char *o = allowed_origin(cf, req, &origin);
    if (!o)
        return;
    size_t start = out->len;
    int rc = buf_add_str(out, "Access-Control-Allow-Origin: ");
    if (strcmp(o, "*") == 0)
        rc |= buf_add_str(out, "*");
    else
        rc |= buf_add(out, origin.p, origin.n);
    rc |= buf_add_str(out, "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: ");
    rc |= buf_add_str(out, cf->cors_expose);
    rc |= buf_add_str(out, "\r\n");
    if (req->method.n == 7 && memcmp(req->method.p, "OPTIONS", 7) == 0) {
        rc |= buf_add_str(out, "Access-Control-Allow-Methods: ");
        rc |= buf_add_str(out, cf->cors_methods);
        rc |= buf_add_str(out, "\r\nAccess-Control-Allow-Headers: ");
        rc |= buf_add_str(out, cf->cors_headers);
        rc |= buf_add_str(out, "\r\nAccess-Control-Max-Age: ");
        rc |= buf_add_u64(out, (uint64_t)cf->cors_max_age);
        rc |= buf_add_str(out, "\r\n");
    }
    if (rc)
        out->len = start; /* out of memory: no CORS rather than half of it */
}
