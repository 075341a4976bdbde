/* jwt_cache.h: the tokens a worker verified lately.  Clients send the same
 * token with every request of a session; a hit costs a hash and a
 * constant-time compare of the token instead of an HMAC, two base64url
 * decodes and a JSON scan.  Only tokens that verified with the worker's key
 * are put in; exp and nbf are checked again on every hit (jwt_check_time),
 * so a cached token still expires on time.  One per worker thread: no
 * locks. */
#ifndef STRATA_JWT_CACHE_H
#define STRATA_JWT_CACHE_H

#include "jwt.h"

#include <stddef.h>

#define JWT_CACHE_SLOTS 256      /* direct-mapped entries */
#define JWT_CACHE_MAX_TOKEN 2048 /* longer tokens are verified every time */

typedef struct jwt_cache jwt_cache;

/* NULL when out of memory; jwt_cache_free(NULL) is allowed. */
jwt_cache *jwt_cache_new(void);
void jwt_cache_free(jwt_cache *c);

/* 1 with *out set to the claims token[0..len) verified to, or 0 when it is
 * not cached. */
int jwt_cache_get(jwt_cache *c, const char *token, size_t len, jwt_claims *out);

/* Remembers that token[0..len) verified to *claims (replacing whatever held
 * its slot); out of memory or a long token, it is simply not kept. */
void jwt_cache_put(jwt_cache *c, const char *token, size_t len, const jwt_claims *claims);

#endif
