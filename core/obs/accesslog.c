/* accesslog.c: the per-request log (see accesslog.h).  Uses buf. */
#include "accesslog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_AT 32768

struct accesslog {
    int fd;                /* -1 when off; owned unless it is stderr */
    int owned;
    pthread_mutex_t lock;  /* one writer at a time keeps lines whole */
};

accesslog *accesslog_open(const char *where, char *err, size_t errlen)
{
    accesslog *log = calloc(1, sizeof *log);
    if (!log) {
        snprintf(err, errlen, "access_log: out of memory");
        return NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    log->fd = -1;
    if (strcmp(where, "stderr") == 0) {
        log->fd = STDERR_FILENO;
    } else if (strcmp(where, "off") != 0) {
        log->fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (log->fd < 0) {
            snprintf(err, errlen, "access_log: cannot open %s: %s", where, strerror(errno));
            pthread_mutex_destroy(&log->lock);
            free(log);
            return NULL;
        }
        log->owned = 1;
    }
    return log;
}

void accesslog_close(accesslog *log)
{
    if (!log)
        return;
    if (log->owned)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

int accesslog_enabled(const accesslog *log)
{
    return log->fd >= 0;
}

void accesslog_add(accesslog *log, buf *b, const access_entry *e)
{
    if (log->fd < 0)
        return;
    size_t mark = b->len;
    int rc = buf_add_str(b, "{\"time\":\"");
    rc |= buf_add_str(b, e->time);
    rc |= buf_add_str(b, "\",\"id\":\"");
    rc |= buf_add_json_escaped(b, e->id, strlen(e->id));
    rc |= buf_add_str(b, "\",\"method\":\"");
    rc |= buf_add_json_escaped(b, e->method, e->method_len);
    rc |= buf_add_str(b, "\",\"path\":\"");
    rc |= buf_add_json_escaped(b, e->path, e->path_len);
    rc |= buf_add_str(b, "\",\"status\":");
    rc |= buf_add_u64(b, (uint64_t)e->status);
    rc |= buf_add_str(b, ",\"bytes\":");
    rc |= buf_add_u64(b, e->bytes);
    rc |= buf_add_str(b, ",\"duration_us\":");
    rc |= buf_add_u64(b, e->duration_us);
    rc |= buf_add_str(b, ",\"uid\":");
    if (e->uid) {
        rc |= buf_add_str(b, "\"");
        rc |= buf_add_json_escaped(b, e->uid, strlen(e->uid));
        rc |= buf_add_str(b, "\"");
    } else {
        rc |= buf_add_str(b, "null");
    }
    rc |= buf_add_str(b, ",\"remote\":\"");
    rc |= buf_add_str(b, e->remote);
    rc |= buf_add_str(b, "\"}\n");
    if (rc)
        b->len = mark; /* out of memory: lose this line, not the log */
    if (b->len >= FLUSH_AT)
        accesslog_flush(log, b);
}

void accesslog_flush(accesslog *log, buf *b)
{
    if (log->fd >= 0 && b->len) {
        pthread_mutex_lock(&log->lock);
        size_t off = 0;
        while (off < b->len) {
            ssize_t n = write(log->fd, b->p + off, b->len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* a full disk or closed stderr must not stop serving */
            off += (size_t)n;
        }
        pthread_mutex_unlock(&log->lock);
    }
    b->len = 0;
    buf_shrink(b, 1 << 20);
}

void accesslog_anonymize_ip(const char *addr, char *out, size_t outlen)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    if (outlen)
        out[0] = '\0';
    if (inet_pton(AF_INET, addr, a) == 1) {
        a[3] = 0;
        if (inet_ntop(AF_INET, a, text, sizeof text))
            snprintf(out, outlen, "%s", text);
    } else if (inet_pton(AF_INET6, addr, a) == 1) {
        memset(a + 6, 0, 10);
        if (inet_ntop(AF_INET6, a, text, sizeof text))
            snprintf(out, outlen, "%s", text);
    }
}
