/* watch.h: calls back once files under a directory tree stop changing for
 * a quiet period (inotify, debounced), on the caller's event loop. */
#ifndef STRATA_WATCH_H
#define STRATA_WATCH_H

#include <event2/event.h>
#include <stddef.h>

typedef struct watch watch;
typedef void (*watch_fn)(void *arg);

/* NULL with a message in err when inotify cannot watch dir. */
watch *watch_new(struct event_base *base, const char *dir, int debounce_ms, watch_fn fn, void *arg,
                 char *err, size_t errlen);
void watch_free(watch *w); /* NULL is a no-op */

#endif
