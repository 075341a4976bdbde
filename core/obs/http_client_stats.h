/* http_client_stats.h: the counters of one worker's outbound HTTP client
 * (http/client.c), and the error codes it answers.  Here, in obs, because
 * /metrics renders them: the client writes them, metrics.h embeds them. */
#ifndef STRATA_HTTP_CLIENT_STATS_H
#define STRATA_HTTP_CLIENT_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Why a transfer gave no answer; HC_OK is an answer (any status). */
enum {
    HC_OK,
    HC_TIMEOUT,    /* connect_timeout_ms or timeout_ms passed */
    HC_CONNECT,    /* the server refused or could not be reached */
    HC_DNS,        /* the name (or the proxy's) did not resolve */
    HC_TLS,        /* handshake or certificate verification failed */
    HC_TOO_LARGE,  /* the body passed max_bytes */
    HC_CANCELLED,  /* the client went away, a reload, a shutdown, or on_chunk said stop */
    HC_HTTP,       /* the upstream broke the protocol (truncated body, garbage, reset) */
    HC_URL,        /* a URL or option libcurl refused */
    HC_INTERNAL,   /* out of memory, or a libcurl failure of its own */
    HC_NCODES
};

/* The codes as scripts see them ("timeout", ...), indexed by the enum. */
extern const char *const hc_code_names[HC_NCODES];

#define HC_BUCKETS 10 /* latency histogram bounds (seconds), +Inf apart */

/* Written by the owning worker only, read by /metrics (relaxed atomics). */
typedef struct http_client_stats {
    _Atomic int64_t open;                   /* transfers in flight */
    _Atomic uint64_t results[HC_NCODES];    /* finished transfers by result */
    _Atomic uint64_t bucket[HC_BUCKETS + 1];
    _Atomic uint64_t duration_us;           /* sum, for _sum */
} http_client_stats;

/* A transfer started / ended with `code` after duration_us (metrics.c). */
static inline void http_client_stats_start(http_client_stats *s)
{
    atomic_store_explicit(&s->open, atomic_load_explicit(&s->open, memory_order_relaxed) + 1, memory_order_relaxed);
}
void http_client_stats_end(http_client_stats *s, int code, uint64_t duration_us);

#endif
