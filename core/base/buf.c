/* buf.c: growable byte buffer (see buf.h).  Uses only libc. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_add(buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int buf_add_str(buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_add_u64(buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_add(b, tmp + i, sizeof tmp - i);
}

/* Copies runs of bytes that need no escape at once: header values and
 * tokens are long and almost never need one. */
int buf_add_json_escaped(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, n) < 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n) {
            unsigned char c = (unsigned char)s[run];
            if (c < 0x20 || c == '"' || c == '\\')
                break;
            run++;
        }
        if (run > i && buf_add(b, s + i, run - i) < 0)
            return -1;
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            e[1] = (char)c;
            if (buf_add(b, e, 2) < 0)
                return -1;
        } else if (buf_add(b, e, 6) < 0) {
            return -1;
        }
        i = run + 1;
    }
    return 0;
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void buf_shrink(buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
