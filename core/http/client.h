/* client.h: outbound HTTP for one worker — libcurl's multi-socket API
 * driven by the worker's libevent loop (curl's hiperfifo.c recipe): one
 * multi handle per worker, so connections (and HTTP/2 streams) are reused
 * across the worker's transfers; TLS verification on; proxies from the
 * usual environment variables (http_proxy, https_proxy, no_proxy); no
 * redirects followed.  Nothing here blocks, and nothing knows Lua.
 *
 * A transfer is owned by whoever started it (hc_free).  Its owner learns
 * that something happened — streamed bytes to take, or the end — through
 * `notify`, which the client calls from its own event callbacks only,
 * never from inside libcurl nor from inside a call into the client, so the
 * owner may start, take from and free transfers there. */
#ifndef STRATA_HTTP_CLIENT_H
#define STRATA_HTTP_CLIENT_H

#include "base/buf.h"
#include "obs/http_client_stats.h"

#include <event2/event.h>
#include <stddef.h>

typedef struct hc_client hc_client;
typedef struct hc_transfer hc_transfer;

/* A client on base; ca_file (NULL: the system's CAs) is the bundle TLS
 * verifies against.  stats is the worker's.  NULL when out of memory. */
hc_client *hc_client_new(struct event_base *base, const char *ca_file, http_client_stats *stats);

/* Shutdown, once the loop has stopped: cancels every running transfer and
 * notifies their owners now. */
void hc_client_shutdown(hc_client *c);

/* Frees the client; transfers still running are cancelled without a
 * notice.  Transfers stay their owners' to hc_free. */
void hc_client_free(hc_client *c);

/* Cancels every running transfer started with `tag` (NULL: all), e.g. the
 * transfers of a replaced Lua generation; owners are notified soon. */
void hc_client_cancel_tag(hc_client *c, const void *tag);

typedef struct hc_request {
    const char *method;          /* "GET", "POST", ... */
    const char *url;             /* http:// or https:// */
    const char *const *headers;  /* "Name: value" lines */
    size_t nheaders;
    const char *body;            /* copied; NULL: none */
    size_t body_len;
    long timeout_ms;             /* the whole transfer */
    long connect_timeout_ms;
    size_t max_bytes;            /* body bytes at most (HC_TOO_LARGE past it) */
    int stream;                  /* hand a 2xx body over as it arrives (hc_take) */
    const void *tag;             /* for hc_client_cancel_tag */
} hc_request;

typedef void (*hc_notify_fn)(void *arg);

/* Starts a transfer; NULL with a message when libcurl refuses it (out of
 * memory).  A bad URL is reported as the transfer's error (HC_URL). */
hc_transfer *hc_start(hc_client *c, const hc_request *rq, hc_notify_fn notify, void *arg, char *err,
                      size_t errlen);

/* 1 once the transfer has ended (answered or failed). */
int hc_done(const hc_transfer *t);

/* Streamed body bytes not taken yet (stream mode, 2xx answers); hc_take
 * empties it and lets a transfer paused on a full buffer go on. */
const buf *hc_pending(const hc_transfer *t);
void hc_take(hc_transfer *t);

/* After the end: HC_OK with the status, the raw header block of the last
 * response ("Name: value\r\n" lines, the status line first) and the body
 * (empty for a streamed 2xx), or an error code and its message. */
int hc_result(const hc_transfer *t, int *status, const buf **headers, const buf **body, const char **message);

/* Stops the transfer now (HC_CANCELLED with `why`); its owner is
 * notified soon when `notify`.  Nothing when it has ended already. */
void hc_cancel(hc_transfer *t, const char *why, int notify);

/* Stops it if running and frees it. */
void hc_free(hc_transfer *t);

#endif
