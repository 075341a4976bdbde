/* uuid_set.c: see uuid_set.h.  Uses libc only. */
#include "uuid_set.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t slot_of(const uuid_set *s, const rs_uuid *u)
{
    /* UUIDs are random enough: mix two words and mask. */
    uint64_t a, b;
    memcpy(&a, u->b, 8);
    memcpy(&b, u->b + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (size_t)(h >> 17) & (s->cap - 1);
}

static int grow(uuid_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    rs_uuid *slots = malloc(cap * sizeof *slots);
    unsigned char *used = calloc(cap, 1);
    if (!slots || !used) {
        free(slots);
        free(used);
        return -1;
    }
    uuid_set old = *s;
    s->slots = slots;
    s->used = used;
    s->cap = cap;
    s->count = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i])
            uuid_set_add(s, &old.slots[i]); /* cannot fail: room was made */
    free(old.slots);
    free(old.used);
    return 0;
}

int uuid_set_add(uuid_set *s, const rs_uuid *u)
{
    if ((s->count + 1) * 4 > s->cap * 3 && grow(s) < 0)
        return -1;
    for (size_t i = slot_of(s, u);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i]) {
            s->slots[i] = *u;
            s->used[i] = 1;
            s->count++;
            return 1;
        }
        if (memcmp(s->slots[i].b, u->b, 16) == 0)
            return 0;
    }
}

int uuid_set_has(const uuid_set *s, const rs_uuid *u)
{
    if (!s->cap)
        return 0;
    for (size_t i = slot_of(s, u); s->used[i]; i = (i + 1) & (s->cap - 1))
        if (memcmp(s->slots[i].b, u->b, 16) == 0)
            return 1;
    return 0;
}

void uuid_set_del(uuid_set *s, const rs_uuid *u)
{
    if (!s->cap)
        return;
    size_t mask = s->cap - 1, i = slot_of(s, u);
    while (s->used[i] && memcmp(s->slots[i].b, u->b, 16) != 0)
        i = (i + 1) & mask;
    if (!s->used[i])
        return;
    /* Backward shift: move later entries of the run into the hole when
     * their home slot allows it, so lookups never stop early. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; s->used[j]; j = (j + 1) & mask) {
        size_t home = slot_of(s, &s->slots[j]);
        int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->used[hole] = 0;
    s->count--;
}

void uuid_set_free(uuid_set *s)
{
    free(s->slots);
    free(s->used);
    memset(s, 0, sizeof *s);
}

void uuid_set_each(const uuid_set *s, void (*fn)(void *arg, const rs_uuid *u), void *arg)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i])
            fn(arg, &s->slots[i]);
}
