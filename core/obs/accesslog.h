/* accesslog.h: one JSON line per request (time, id, method, path, status,
 * bytes, duration, user id, remote address).  Each worker appends to its own
 * buffer; the buffer goes to the sink (stderr or a file) in one write when
 * it is large or on the worker's periodic tick, so the request path makes
 * no system call for logging. */
#ifndef STRATA_ACCESSLOG_H
#define STRATA_ACCESSLOG_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct accesslog accesslog;

/* where: "stderr", "off", or a file path (opened for appending).  NULL with
 * a message in err when the file cannot be opened. */
accesslog *accesslog_open(const char *where, char *err, size_t errlen);
void accesslog_close(accesslog *log);

typedef struct access_entry {
    const char *time;      /* ISO 8601 UTC, NUL-terminated */
    const char *id;        /* request id */
    const char *method;    /* method_len bytes, not NUL-terminated */
    size_t method_len;
    const char *path;      /* path_len bytes, not NUL-terminated */
    size_t path_len;
    int status;
    uint64_t bytes;        /* response body bytes */
    uint64_t duration_us;
    const char *uid;       /* NULL when unknown */
    const char *remote;
} access_entry;

/* 0 when the log is off: the caller need not build entries. */
int accesslog_enabled(const accesslog *log);

/* Appends e's line to wbuf (a worker's buffer); flushes when it is large. */
void accesslog_add(accesslog *log, buf *wbuf, const access_entry *e);

/* Zeroes the host part of an address (privacy_settings.anonymize_ip):
 * IPv4 to /24, IPv6 to /48.  out gets "" for what is not an address. */
void accesslog_anonymize_ip(const char *addr, char *out, size_t outlen);

/* Writes wbuf to the sink and empties it. */
void accesslog_flush(accesslog *log, buf *wbuf);

#endif
