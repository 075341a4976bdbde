/* hash.h: a fast non-cryptographic hash of a byte string, eight bytes a
 * step, for in-memory caches keyed by long strings (statements, tokens).
 * Not for anything an attacker could exploit by choosing collisions: the
 * caches that use it compare the whole key on a hit. */
#ifndef STRATA_HASH_H
#define STRATA_HASH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, n - i);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

#endif
