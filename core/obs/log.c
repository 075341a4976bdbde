/* log.c: the server log (see log.h).  Uses buf for JSON escaping. */
#include "log.h"

#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void log_timestamp(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

void log_event(const char *level, const char *msg, const char *fields)
{
    char ts[32];
    log_timestamp(ts);
    buf b = {0};
    int rc = buf_add_str(&b, "{\"time\":\"");
    rc |= buf_add_str(&b, ts);
    rc |= buf_add_str(&b, "\",\"level\":\"");
    rc |= buf_add_str(&b, level);
    rc |= buf_add_str(&b, "\",\"msg\":\"");
    rc |= buf_add_json_escaped(&b, msg, strlen(msg));
    rc |= buf_add_str(&b, "\"");
    if (fields && *fields) {
        rc |= buf_add_str(&b, ",");
        rc |= buf_add_str(&b, fields);
    }
    rc |= buf_add_str(&b, "}\n");
    if (rc == 0) {
        /* One write per line keeps lines whole between threads. */
        ssize_t n = write(STDERR_FILENO, b.p, b.len);
        (void)n; /* nowhere to report a failing stderr */
    }
    buf_free(&b);
}

void log_eventf(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_event(level, msg, NULL);
}
