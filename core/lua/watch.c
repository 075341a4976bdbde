/* watch.c: inotify on a directory tree (see watch.h).  New directories are
 * added as they appear; each change re-arms a timer, and only the quiet
 * timer's expiry calls back, so an editor's burst of writes reloads once. */
#include "watch.h"

#include "obs/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
              IN_DELETE_SELF)
#define MAX_DIRS 1024

struct watch {
    int fd;                    /* owned inotify descriptor */
    struct event *ev;          /* owned */
    struct event *quiet;       /* owned debounce timer */
    struct timeval debounce;
    watch_fn fn;
    void *arg;
    int wds[MAX_DIRS];         /* watch descriptors and their paths */
    char *paths[MAX_DIRS];     /* owned */
    int n;
};

static void add_tree(watch *w, const char *dir)
{
    if (w->n >= MAX_DIRS)
        return;
    int wd = inotify_add_watch(w->fd, dir, MASK | IN_ONLYDIR);
    if (wd < 0) {
        log_eventf("warn", "cannot watch %s: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < w->n; i++)
        if (w->wds[i] == wd)
            return; /* already watched */
    if (!(w->paths[w->n] = strdup(dir)))
        return;
    w->wds[w->n++] = wd;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            add_tree(w, sub);
    }
    closedir(d);
}

static const char *path_of(const watch *w, int wd)
{
    for (int i = 0; i < w->n; i++)
        if (w->wds[i] == wd)
            return w->paths[i];
    return NULL;
}

static void on_quiet(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch *w = arg;
    w->fn(w->arg);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    watch *w = arg;
    char events[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(fd, events, sizeof events);
    if (n <= 0)
        return;
    for (char *p = events; p < events + n;) {
        const struct inotify_event *e = (const struct inotify_event *)p;
        if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO)) && e->len) {
            const char *parent = path_of(w, e->wd);
            char sub[PATH_MAX];
            if (parent) {
                snprintf(sub, sizeof sub, "%s/%s", parent, e->name);
                add_tree(w, sub);
            }
        }
        p += sizeof *e + e->len;
    }
    if (event_add(w->quiet, &w->debounce) < 0)
        log_eventf("error", "cannot arm the reload debounce timer");
}

watch *watch_new(struct event_base *base, const char *dir, int debounce_ms, watch_fn fn, void *arg,
                 char *err, size_t errlen)
{
    watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "watch: out of memory");
        return NULL;
    }
    w->fn = fn;
    w->arg = arg;
    w->debounce.tv_sec = debounce_ms / 1000;
    w->debounce.tv_usec = (debounce_ms % 1000) * 1000;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, errlen, "inotify: %s", strerror(errno));
        free(w);
        return NULL;
    }
    add_tree(w, dir);
    if (w->n == 0 || !(w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, on_inotify, w)) ||
        !(w->quiet = evtimer_new(base, on_quiet, w)) || event_add(w->ev, NULL) < 0) {
        snprintf(err, errlen, "cannot watch %s", dir);
        watch_free(w);
        return NULL;
    }
    return w;
}

void watch_free(watch *w)
{
    if (!w)
        return;
    if (w->ev)
        event_free(w->ev);
    if (w->quiet)
        event_free(w->quiet);
    close(w->fd);
    for (int i = 0; i < w->n; i++)
        free(w->paths[i]);
    free(w);
}
