/* server.c: the foundation's HTTP skeleton (see server.h).  Uses libevent's
 * evhttp, conf and readiness; nothing else. */
#include "server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Appends s to buf as the body of a JSON string (RFC 8259 escapes). */
static int json_escape(struct evbuffer *buf, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if (c == '"' || c == '\\')
            rc = evbuffer_add_printf(buf, "\\%c", c);
        else if (c < 0x20)
            rc = evbuffer_add_printf(buf, "\\u%04x", c);
        else
            rc = evbuffer_add(buf, s, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static void reply_json(struct evhttp_request *req, int status, const char *reason_phrase,
                       const char *state, const char *reason)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    int rc = evbuffer_add_printf(body, "{\"status\":\"%s\"", state);
    if (rc >= 0 && reason && *reason) {
        rc = evbuffer_add_printf(body, ",\"reason\":\"");
        if (rc >= 0)
            rc = json_escape(body, reason);
        if (rc >= 0)
            rc = evbuffer_add_printf(body, "\"");
    }
    if (rc >= 0)
        rc = evbuffer_add_printf(body, "}\n");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (rc < 0 || evhttp_add_header(out, "Content-Type", "application/json") < 0) {
        evhttp_send_error(req, 500, NULL);
    } else {
        evhttp_send_reply(req, status, reason_phrase, body);
    }
    evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    readiness *ready = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int known = path && (strcmp(path, "/health") == 0 || strcmp(path, "/ready") == 0);
    if (!known) {
        reply_json(req, 404, "Not Found", "error", "no such route");
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        reply_json(req, 405, "Method Not Allowed", "error", "only GET and HEAD are allowed here");
        return;
    }
    if (strcmp(path, "/health") == 0) {
        reply_json(req, 200, "OK", "ok", NULL);
        return;
    }
    char reason[512];
    if (readiness_get(ready, reason, sizeof reason))
        reply_json(req, 200, "OK", "ready", NULL);
    else
        reply_json(req, 503, "Service Unavailable", "unavailable", reason);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)events;
    fprintf(stderr, "strata: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (event_base_loopexit(arg, NULL) < 0)
        fprintf(stderr, "strata: event_base_loopexit failed\n");
}

int server_run(const strata_conf *conf, readiness *ready)
{
    int rc = -1;
    struct evhttp *http = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "strata: cannot create the event loop\n");
        return -1;
    }
    if (!(http = evhttp_new(base)) ||
        !(sigterm = evsignal_new(base, SIGTERM, on_signal, base)) ||
        !(sigint = evsignal_new(base, SIGINT, on_signal, base)) ||
        event_add(sigterm, NULL) < 0 || event_add(sigint, NULL) < 0) {
        fprintf(stderr, "strata: cannot set up the event loop\n");
        goto err;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(http, on_request, ready);
    if (!evhttp_bind_socket_with_handle(http, conf->listen_host, (ev_uint16_t)conf->listen_port)) {
        fprintf(stderr, "strata: cannot listen on %s:%d\n", conf->listen_host, conf->listen_port);
        goto err;
    }
    fprintf(stderr, "strata: listening on %s:%d\n", conf->listen_host, conf->listen_port);
    if (event_base_dispatch(base) < 0) {
        fprintf(stderr, "strata: event loop failed\n");
        goto err;
    }
    rc = 0;
err:
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (http)
        evhttp_free(http);
    event_base_free(base);
    return rc;
}
