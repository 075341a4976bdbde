/* jwt.h: verification of JSON Web Tokens (RFC 7519, compact JWS of RFC
 * 7515) into the auth context of a request: uid, role, session_id,
 * is_admin and the decoded payload for the Lua `claims` table.  HS256 with
 * the secret; ES256 and RS256 with the keys of jwt_keys.h, chosen by the
 * header's kid.  No HTTP, no Lua, no allocation of its own per token:
 * bytes and a key in, a filled struct out.
 *
 * What is accepted, and why:
 * - exactly three non-empty base64url segments, no padding ('=' is
 *   refused, as RFC 7515 section 2 omits it), no other byte, and the unused
 *   low bits of the last character zero, so each token has one encoding;
 * - a header that is a JSON object with "alg" exactly "HS256", "ES256"
 *   or "RS256" ("none", "HS512" ... are JWT_BAD_ALG), "typ", when present,
 *   "JWT" in any case, "kid", when present, a string of at most
 *   JWT_MAX_KID bytes, and no "crit";
 * - for HS256, an HMAC-SHA256 of "header.payload" equal, in constant time,
 *   to the 32-byte signature (the asymmetric keys never serve as an HMAC
 *   secret); for ES256 / RS256, a signature that the key named by "kid"
 *   verifies, that key being of the header's algorithm (a token naming an
 *   RS256 key with "alg":"ES256" is JWT_BAD_ALG: no alg/kid confusion);
 *   only then is the payload read;
 * - a payload that is a JSON object (at most JWT_MAX_DEPTH levels deep)
 *   with "exp" and "nbf", when present, numbers (fractions allowed), and
 *   "sub", "role" and "session_id", when present, strings without NUL bytes.  Keys are
 *   compared after decoding escapes ("rol\u0065" is "role"), as cjson
 *   does.  A repeated sub / role / session_id / exp / nbf / user_metadata key, or a
 *   repeated "role" inside user_metadata, is JWT_MALFORMED: cjson (the Lua
 *   claims) and PostgreSQL (request.jwt.claims) keep the last one, and
 *   refusing is simpler than proving this reader agrees with them;
 * - a token without "exp" never expires (has_exp lets the server demand
 *   one); "iat" is not checked. */
#ifndef STRATA_JWT_H
#define STRATA_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192   /* longest token accepted (bytes); longer is JWT_MALFORMED */
#define JWT_MAX_HEADER 1024  /* longest decoded header */
#define JWT_MAX_PAYLOAD (JWT_MAX_TOKEN / 4 * 3) /* longest decoded payload a token can carry */
#define JWT_MAX_SUB 128      /* longest "sub" claim; longer is JWT_MALFORMED, never truncated */
#define JWT_MAX_ROLE 64      /* longest "role" claim; same */
#define JWT_MAX_SESSION 64   /* longest "session_id" claim (GoTrue's: a UUID); same */
#define JWT_MAX_DEPTH 32     /* nesting of objects/arrays in header or payload */

/* Results of jwt_verify; jwt_strerror gives each a stable message. */
enum {
    JWT_OK = 0,
    JWT_MALFORMED = -1,     /* not a well-formed JWT (framing, base64url, JSON, claim types, sizes) */
    JWT_BAD_ALG = -2,       /* header "alg" missing, unknown, or not its key's */
    JWT_BAD_SIGNATURE = -3, /* signature does not match the secret (or no secret) */
    JWT_EXPIRED = -4,       /* now > exp + leeway */
    JWT_NOT_YET_VALID = -5  /* now + leeway < nbf */
};

/* The auth context.  About 6.5 KiB: keep one per worker or per request,
 * not on a small stack. */
typedef struct jwt_claims {
    char uid[JWT_MAX_SUB + 1];   /* "sub", NUL-terminated; "" when absent or empty */
    char role[JWT_MAX_ROLE + 1]; /* "role" as sent (unknown roles pass: the server decides);
                                    when absent or empty: "authenticated" if uid is set,
                                    else "anon" */
    char session_id[JWT_MAX_SESSION + 1]; /* "session_id" (GoTrue's), "" when absent: the
                                    server refuses tokens of ended sessions */
    int is_admin;                /* user_metadata.role is the string "admin" (seed 003's
                                    get_user_role()); 0 for any other value or type */
    int has_exp;                 /* "exp" was present */
    int64_t exp;                 /* floor of "exp", clamped to +-1e18; 0 when absent */
    int has_nbf;                 /* "nbf" was present */
    int64_t nbf;                 /* ceiling of "nbf", clamped likewise; 0 when absent */
    size_t payload_len;          /* bytes in payload; 0 for the anonymous context */
    char payload[JWT_MAX_PAYLOAD + 1]; /* the decoded payload JSON (NUL-terminated) to
                                          give to cjson for `claims` */
} jwt_claims;

/* The HS256 key: an HMAC-SHA256 context keyed once with the secret and
 * re-initialised for each token.  OpenSSL's one-shot HMAC() would fetch
 * the algorithm and make 13 allocations per token (about 3 times slower);
 * re-initialising makes 2 small ones inside OpenSSL.  It holds hashing
 * state: one per thread (each worker its own). */
typedef struct jwt_key jwt_key;

/* Keys a new context with secret[0..len).  NULL when the secret is empty
 * (a server must not run with one) or OpenSSL fails.  Free with
 * jwt_key_free. */
jwt_key *jwt_key_new(const unsigned char *secret, size_t len);

/* Frees the key (OpenSSL wipes the secret); NULL is allowed. */
void jwt_key_free(jwt_key *key);

/* Lets key verify ES256 / RS256 tokens with ks (not owned; it must
 * outlive key).  NULL: HS256 only. */
typedef struct jwt_keyset jwt_keyset;
void jwt_key_set_keyset(jwt_key *key, const jwt_keyset *ks);

/* Sets the context of a request without a token: role "anon", no uid, not
 * admin, empty payload (claims {}). */
void jwt_claims_anon(jwt_claims *c);

/* Verifies token[0..len) with `key` at time `now` (Unix seconds), allowing
 * leeway_s seconds of clock skew on exp and nbf (a negative leeway counts
 * as 0).  Returns JWT_OK with *out filled, or a negative JWT_ code with
 * *out reset to the anonymous context and a short reason in err
 * ("payload: exp is not a number"; "" on success; truncated to errlen,
 * which may be 0).  A NULL key verifies nothing (JWT_BAD_SIGNATURE).  The
 * checks run in the order of the header comment: framing and base64url,
 * header, signature, payload, then time. */
int jwt_verify(const char *token, size_t len, jwt_key *key, int64_t now, int leeway_s,
               jwt_claims *out, char *err, size_t errlen);

/* The time checks of jwt_verify alone (exp and nbf with leeway_s of
 * tolerance at `now`), for claims verified earlier: JWT_OK, JWT_EXPIRED or
 * JWT_NOT_YET_VALID with err filled. */
int jwt_check_time(const jwt_claims *c, int64_t now, int leeway_s, char *err, size_t errlen);

/* The "aud" check of verified claims (PostgREST's jwt-aud): 0 when the
 * payload has no "aud", or "aud" is `want` or an array holding it; -1
 * otherwise (another audience, another type). */
int jwt_check_aud(const jwt_claims *c, const char *want);

/* A stable message per result, for the 401 body: "invalid token",
 * "unsupported token algorithm", "invalid token signature", "token
 * expired", "token not yet valid"; "ok" for JWT_OK, "unknown" otherwise. */
const char *jwt_strerror(int rc);

/* Picks the token of a request from its Authorization and apikey header
 * values (either may be NULL when absent): the credentials of "Bearer
 * <token>" (scheme in any case, spaces around trimmed), else the whole
 * apikey value (trimmed), as Supabase clients send both.  An Authorization
 * with another scheme is ignored.  Returns 1 with *tok, *tok_len pointing
 * into the given value, 0 when there is no token (the request is anon), or
 * -1 when a Bearer or apikey value is empty or holds a space or tab
 * (answer 401 as for a malformed token). */
int jwt_pick_token(const char *authorization, size_t auth_len, const char *apikey,
                   size_t apikey_len, const char **tok, size_t *tok_len);

#endif
