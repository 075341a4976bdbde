/* buf.h: a growable byte buffer.  Connections keep theirs across requests,
 * so in steady state nothing is allocated per request. */
#ifndef STRATA_BUF_H
#define STRATA_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *p;    /* owned; NULL until the first reserve */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} buf;

/* Makes room for `more` bytes past len; 0, or -1 when out of memory (the
 * buffer is unchanged then). */
int buf_reserve(buf *b, size_t more);

/* Appends; 0 or -1 when out of memory. */
int buf_add(buf *b, const void *data, size_t n);
int buf_add_str(buf *b, const char *s);
int buf_add_u64(buf *b, uint64_t v);

/* Appends s as the inside of a JSON string (quotes, backslash and control
 * characters escaped; other bytes as they are). */
int buf_add_json_escaped(buf *b, const char *s, size_t n);

/* Drops the first n bytes (what was consumed), keeping the rest. */
void buf_consume(buf *b, size_t n);

/* Frees the storage when it grew past `keep` bytes, so one large request
 * does not pin memory on a long-lived connection. */
void buf_shrink(buf *b, size_t keep);

void buf_free(buf *b);

#endif
