/* jwt_cache.c: verified tokens (see jwt_cache.h).  Uses base/hash.h for the
 * slot and OpenSSL's CRYPTO_memcmp for the compare: the time a compare takes
 * must not tell an attacker how much of a cached token they guessed. */
#include "jwt_cache.h"

#include "base/hash.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint64_t hash;
    char *token;       /* owned, token_len bytes then the payload; NULL when free */
    size_t token_len;
    size_t payload_len;
    unsigned char head[offsetof(jwt_claims, payload)]; /* the claims' fields before the payload */
} entry;

struct jwt_cache {
    entry slots[JWT_CACHE_SLOTS];
};

jwt_cache *jwt_cache_new(void)
{
    return calloc(1, sizeof(jwt_cache));
}

void jwt_cache_free(jwt_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < JWT_CACHE_SLOTS; i++)
        free(c->slots[i].token);
    free(c);
}

int jwt_cache_get(jwt_cache *c, const char *token, size_t len, jwt_claims *out)
{
    if (len > JWT_CACHE_MAX_TOKEN)
        return 0;
    uint64_t h = hash_bytes(token, len);
    const entry *e = &c->slots[h % JWT_CACHE_SLOTS];
    if (!e->token || e->hash != h || e->token_len != len || CRYPTO_memcmp(e->token, token, len) != 0)
        return 0;
    /* The fixed part, then the payload: not the whole 6 KiB of the struct. */
    memcpy(out, e->head, sizeof e->head);
    memcpy(out->payload, e->token + len, e->payload_len);
    out->payload[e->payload_len] = '\0';
    return 1;
}

void jwt_cache_put(jwt_cache *c, const char *token, size_t len, const jwt_claims *claims)
{
    if (len > JWT_CACHE_MAX_TOKEN)
        return;
    uint64_t h = hash_bytes(token, len);
    entry *e = &c->slots[h % JWT_CACHE_SLOTS];
    char *copy = malloc(len + claims->payload_len);
    if (!copy)
        return;
    memcpy(copy, token, len);
    memcpy(copy + len, claims->payload, claims->payload_len);
    free(e->token);
    e->token = copy;
    e->token_len = len;
    e->hash = h;
    e->payload_len = claims->payload_len;
    memcpy(e->head, claims, sizeof e->head);
}
