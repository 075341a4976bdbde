/* jwt_keys.h: the asymmetric JWT keys (ES256 on P-256, RS256 on RSA of
 * 2048 bits or more) from PEM files: the signing key (a private key) and
 * older keys still accepted for verification (private or public), each
 * named by its RFC 7638 thumbprint as `kid`, and their JWKS (public parts
 * only).  Read-only once loaded: threads share one set (OpenSSL keys may
 * be used concurrently; each call makes its own context).  No HTTP, no
 * Lua. */
#ifndef STRATA_JWT_KEYS_H
#define STRATA_JWT_KEYS_H

#include <stddef.h>

enum { JWT_ALG_HS256 = 1, JWT_ALG_ES256 = 2, JWT_ALG_RS256 = 3 };

#define JWT_MAX_KID 64     /* longest "kid" looked up; a thumbprint is 43 */
#define JWT_MAX_SIG 1024   /* longest signature (RSA 8192) */

typedef struct jwt_keyset jwt_keyset;

/* JWT_ALG_* for "HS256", "ES256", "RS256"; 0 for anything else. */
int jwt_alg_of(const char *name, size_t len);

/* Loads signing_path (NULL or "": no signing key; its algorithm must be
 * `alg`, JWT_ALG_ES256 or JWT_ALG_RS256) and the comma-separated PEM paths
 * of `accepted` (NULL or "": none).  NULL with err naming the file. */
jwt_keyset *jwt_keyset_load(int alg, const char *signing_path, const char *accepted, char *err, size_t errlen);

/* NULL is a no-op. */
void jwt_keyset_free(jwt_keyset *ks);

/* {"keys":[{"kty","kid","alg","use":"sig",...}]}: every key's public part. */
const char *jwt_keyset_jwks(const jwt_keyset *ks);

/* The signing key's kid and algorithm name; NULL without a signing key. */
const char *jwt_keyset_kid(const jwt_keyset *ks);
const char *jwt_keyset_alg(const jwt_keyset *ks);

/* Verifies the JWS signature sig[0..siglen) of in[0..n) with the key named
 * kid[0..kidlen): 0, -1 when it does not match, -2 when no key has that
 * kid, -3 when that key is not of algorithm alg (alg/kid confusion). */
int jwt_keyset_verify(const jwt_keyset *ks, int alg, const char *kid, size_t kidlen, const unsigned char *in,
                      size_t n, const unsigned char *sig, size_t siglen);

/* Signs in[0..n) with the signing key: the JWS signature (r || s for
 * ES256) into out[0..cap); its length, or -1. */
long jwt_keyset_sign(const jwt_keyset *ks, const unsigned char *in, size_t n, unsigned char *out, size_t cap);

#endif
