/* anon_flood.c: the load generator of scripts/bench/ratelimit_memory.sh.
 * Sends N anonymous requests to strata, each on its own connection from
 * its own client address: Linux routes all of 127.0.0.0/8 to the loopback
 * interface, so binding the client socket to 127.16.0.0 + i before
 * connecting gives every request a distinct remote_addr (the per-address
 * "anon" rate-limit key) without any proxy header.  Keeps C connections
 * in flight with epoll; closes each with a reset once its answer is read
 * (no TIME_WAIT on either side).  Prints progress and the counts of 2xx,
 * 429, other answers and errors.
 *   anon_flood PORT N [CONCURRENCY] [FIRST]
 * FIRST: the index of the first address (several runs, distinct clients). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 1024

typedef struct slot {
    int fd;          /* -1 when free */
    size_t sent;     /* bytes of the request written */
    char in[2048];   /* the answer's head (the body is small and ignored) */
    size_t got;
} slot;

static char request[512];
static size_t request_len;
static unsigned long ok, limited, other, errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Closes with a reset: the bench makes a million connections. */
static void finish(int ep, slot *s)
{
    struct linger l = {1, 0};
    if (setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0)
        errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
}

/* Opens request i's connection from 127.16.0.0 + i.  0 or -1. */
static int open_one(int ep, slot *s, unsigned long i, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl((127u << 24) + (16u << 16) + (uint32_t)i);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    s->sent = s->got = 0;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        s->fd = -1;
        return -1;
    }
    return 0;
}

/* Drives one connection; 1 when it is done. */
static int step(slot *s)
{
    while (s->sent < request_len) {
        ssize_t n = write(s->fd, request + s->sent, request_len - s->sent);
        if (n < 0)
            return errno == EAGAIN ? 0 : (errors++, 1);
        s->sent += (size_t)n;
    }
    for (;;) {
        ssize_t n = read(s->fd, s->in + s->got, sizeof s->in - 1 - s->got);
        if (n < 0)
            return errno == EAGAIN ? 0 : (errors++, 1);
        s->got += (size_t)n;
        s->in[s->got] = '\0';
        if (n == 0 || strstr(s->in, "\r\n\r\n") || s->got == sizeof s->in - 1)
            break;
    }
    int status = 0;
    if (sscanf(s->in, "HTTP/1.%*d %d", &status) != 1)
        errors++;
    else if (status >= 200 && status < 300)
        ok++;
    else if (status == 429)
        limited++;
    else
        other++;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: anon_flood PORT N [CONCURRENCY] [FIRST]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned long total = strtoul(argv[2], NULL, 10);
    int conc = argc > 3 ? atoi(argv[3]) : 64;
    unsigned long first = argc > 4 ? strtoul(argv[4], NULL, 10) : 0;
    if (port <= 0 || port > 65535 || total == 0 || first + total > (1ul << 20) * 15 || conc < 1 || conc > MAXC) {
        fprintf(stderr, "anon_flood: bad arguments (FIRST + N up to 15 * 2^20, CONCURRENCY up to %d)\n", MAXC);
        return 2;
    }
    request_len = (size_t)snprintf(request, sizeof request, "GET /v1/hello/flood HTTP/1.1\r\nHost: strata\r\n\r\n");
    static slot slots[MAXC];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("anon_flood: epoll_create1");
        return 1;
    }
    unsigned long next = first, done = 0;
    int open = 0;
    double t0 = now_s(), last = t0;
    for (int c = 0; c < conc; c++)
        slots[c].fd = -1;
    while (done < total) {
        for (int c = 0; c < conc && next < first + total; c++) {
            if (slots[c].fd >= 0)
                continue;
            if (open_one(ep, &slots[c], next++, port) < 0) {
                errors++;
                done++;
            } else {
                open++;
            }
        }
        struct epoll_event evs[MAXC];
        int n = epoll_wait(ep, evs, MAXC, 1000);
        if (n < 0 && errno != EINTR) {
            perror("anon_flood: epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            slot *s = evs[k].data.ptr;
            if (step(s)) {
                finish(ep, s);
                open--;
                done++;
            }
        }
        double t = now_s();
        if (t - last >= 5) {
            fprintf(stderr, "anon_flood: %lu of %lu (%.0f/s)\n", done, total, (double)done / (t - t0));
            last = t;
        }
    }
    double secs = now_s() - t0;
    close(ep);
    printf("requests %lu seconds %.2f per_second %.0f ok %lu limited %lu other %lu errors %lu\n", total, secs,
           (double)total / secs, ok, limited, other, errors);
    return errors || other ? 1 : 0;
}
