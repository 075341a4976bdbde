/* uuid_set.h: a set of 16-byte UUIDs (open addressing, linear probing,
 * backward-shift deletion).  The broker feed keeps one per table to know
 * which rows the engine holds, so a resynchronisation can delete the rows
 * that vanished.  Single-threaded. */
#ifndef STRATA_UUID_SET_H
#define STRATA_UUID_SET_H

#include "uuid.h"

#include <stddef.h>

typedef struct uuid_set {
    rs_uuid *slots;     /* owned; cap entries */
    unsigned char *used; /* owned; 1 where slots[i] holds an id */
    size_t cap;         /* a power of two, or 0 */
    size_t count;
} uuid_set;

/* 1 when added, 0 when already there, -1 when out of memory. */
int uuid_set_add(uuid_set *s, const rs_uuid *u);
int uuid_set_has(const uuid_set *s, const rs_uuid *u);
void uuid_set_del(uuid_set *s, const rs_uuid *u);
void uuid_set_free(uuid_set *s);

/* Calls fn for each id (the set must not change meanwhile). */
void uuid_set_each(const uuid_set *s, void (*fn)(void *arg, const rs_uuid *u), void *arg);

#endif
