/* jwt.c: JWT verification (HS256 with the secret; ES256 and RS256 with the
 * keys of jwt_keys.h, found by kid) and the choice of a request's token
 * (see jwt.h).  Uses json_scan (header and payload fields), jwt_keys and
 * OpenSSL's libcrypto (EVP_MAC HMAC-SHA256, CRYPTO_memcmp).  Allocates only in
 * jwt_key_new; the decoded payload goes to the caller's jwt_claims.  The
 * base64url decoder is table-driven: it was half the time of a
 * verification as a chain of comparisons.
 *
 * Untrusted bytes meet only the base64url decoder and the header scanner
 * (both bounded) before the signature is checked; the payload's JSON is
 * read only once the secret's holder is known to have written it. */
#include "jwt.h"

#include "json_scan.h"
#include "jwt_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_LEN 32       /* HMAC-SHA256 */
#define B64_TOO_LONG (-2) /* b64url_decode: the output would not fit */

/* ---- small helpers ---- */

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

/* key[0..klen) is exactly `want` (keys may hold NUL bytes: no strcmp). */
static int key_is(const char *key, size_t klen, const char *want)
{
    return key && klen == strlen(want) && memcmp(key, want, klen) == 0;
}

/* The base64url value of each byte; 64 (bit 6) marks one outside the
 * alphabet ("-" is 62, "_" 63; no "=", "+" or "/"). */
static const unsigned char b64[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 63,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    /* 0x80-0xff: none */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

/* Decodes unpadded base64url src[0..n) into out[0..cap).  Returns the
 * decoded length, -1 for a byte outside the alphabet, a length of 4k+1 or
 * non-zero spare bits in the last character (a second spelling of the same
 * bytes), or B64_TOO_LONG for valid input that decodes past cap. */
static long b64url_decode(const char *src, size_t n, unsigned char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t rest = n % 4, o = 0;
    unsigned seen = 0; /* OR of every value: bit 6 says a byte was outside */
    if (rest == 1)
        return -1;
    if (n / 4 * 3 + (rest ? rest - 1 : 0) > cap) { /* a bad byte is still the first answer */
        for (size_t i = 0; i < n; i++)
            seen |= b64[s[i]];
        return seen & 64 ? -1 : B64_TOO_LONG;
    }
    for (const unsigned char *end = s + (n - rest); s < end; s += 4) {
        unsigned a = b64[s[0]], b = b64[s[1]], c = b64[s[2]], d = b64[s[3]];
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        seen |= a | b | c | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rest) { /* 2 characters carry 1 byte + 4 spare bits, 3 carry 2 bytes + 2 */
        unsigned a = b64[s[0]], b = b64[s[1]], c = rest == 3 ? b64[s[2]] : 0;
        unsigned v = a << 18 | b << 12 | c << 6;
        seen |= a | b | c | (v & (rest == 3 ? 0xFFu : 0xFFFFu) ? 64 : 0);
        out[o++] = (unsigned char)(v >> 16);
        if (rest == 3)
            out[o++] = (unsigned char)(v >> 8);
    }
    return seen & 64 ? -1 : (long)o;
}

/* ---- the header ---- */

typedef struct header_ctx {
    int alg_seen;    /* "alg" was present */
    int alg;         /* ... and named this JWT_ALG_ (0: another) */
    int typ_seen;    /* "typ" was present */
    int kid_seen;    /* "kid" was present */
    char kid[JWT_MAX_KID + 1];
    size_t kid_len;
    const char *why; /* set by a member that made the header JWT_MALFORMED */
} header_ctx;

static int header_member(json_scan *s, int depth, const char *key, size_t klen, void *ctx)
{
    header_ctx *h = ctx;
    char v[8];
    size_t n;
    if (key_is(key, klen, "alg")) {
        int r = json_string(s, v, sizeof v, &n);
        if (h->alg_seen++ || r < 0) {
            h->why = r < 0 ? "header: alg is not a string" : "header: repeated alg";
            return JSON_BAD;
        }
        h->alg = r == 0 ? jwt_alg_of(v, n) : 0;
        return 0;
    }
    if (key_is(key, klen, "kid")) {
        int r = json_string(s, h->kid, sizeof h->kid - 1, &h->kid_len);
        if (h->kid_seen++ || r != 0) {
            h->why = r < 0 ? "header: kid is not a string" : r > 0 ? "header: kid is too long" : "header: repeated kid";
            return JSON_BAD;
        }
        return 0;
    }
    if (key_is(key, klen, "typ")) {
        int r = json_string(s, v, sizeof v, &n);
        if (h->typ_seen++ || r != 0 || n != 3 || strncasecmp(v, "JWT", 3) != 0) {
            h->why = "header: typ is not JWT";
            return JSON_BAD;
        }
        return 0;
    }
    if (key_is(key, klen, "crit")) { /* RFC 7515 4.1.11: extensions we cannot honour */
        h->why = "header: crit is not supported";
        return JSON_BAD;
    }
    return json_skip(s, depth);
}

static int check_header(const char *seg, size_t n, header_ctx *h, char *err, size_t errlen)
{
    char buf[JWT_MAX_HEADER];
    json_scan s;
    long len = b64url_decode(seg, n, (unsigned char *)buf, sizeof buf);
    if (len < 0)
        return fail(err, errlen, JWT_MALFORMED,
                    len == B64_TOO_LONG ? "header: too long" : "header: bad base64url");
    json_scan_init(&s, buf, (size_t)len);
    if (json_object(&s, JWT_MAX_DEPTH, header_member, h) < 0 || json_end(&s) < 0)
        return fail(err, errlen, JWT_MALFORMED, h->why ? h->why : "header: not a JSON object");
    if (!h->alg)
        return fail(err, errlen, JWT_BAD_ALG,
                    h->alg_seen ? "header: alg is not HS256, ES256 or RS256" : "header: no alg");
    return JWT_OK;
}

/* ---- the payload ---- */

enum { SEEN_SUB = 1, SEEN_ROLE = 2, SEEN_EXP = 4, SEEN_NBF = 8, SEEN_META = 16, SEEN_META_ROLE = 32, SEEN_SESSION = 64 };

typedef struct payload_ctx {
    jwt_claims *c;
    unsigned seen; /* SEEN_ bits of the claims read so far */
    char why[64];  /* set by a member that made the payload JWT_MALFORMED */
} payload_ctx;

/* Marks claim `bit` read; JSON_BAD (with a reason) when it was already. */
static int first_time(payload_ctx *pc, unsigned bit, const char *name)
{
    if (pc->seen & bit) {
        snprintf(pc->why, sizeof pc->why, "payload: repeated %s", name);
        return JSON_BAD;
    }
    pc->seen |= bit;
    return 0;
}

/* A string claim into out[0..max], NUL-terminated. */
static int claim_string(json_scan *s, payload_ctx *pc, const char *name, char *out, size_t max)
{
    size_t n;
    int r = json_string(s, out, max, &n);
    const char *why = r < 0 ? "is not a string" : r > 0 ? "is too long" : NULL;
    if (!why && memchr(out, '\0', n))
        why = "holds a NUL byte";
    if (why) {
        snprintf(pc->why, sizeof pc->why, "payload: %s %s", name, why);
        return JSON_BAD;
    }
    out[n] = '\0';
    return 0;
}

static int claim_time(json_scan *s, payload_ctx *pc, const char *name, int64_t *lo, int64_t *hi)
{
    if (json_number(s, lo, hi) < 0) {
        snprintf(pc->why, sizeof pc->why, "payload: %s is not a number", name);
        return JSON_BAD;
    }
    return 0;
}

static int metadata_member(json_scan *s, int depth, const char *key, size_t klen, void *ctx)
{
    payload_ctx *pc = ctx;
    char v[8];
    size_t n;
    if (!key_is(key, klen, "role"))
        return json_skip(s, depth);
    if (first_time(pc, SEEN_META_ROLE, "user_metadata.role") < 0)
        return JSON_BAD;
    if (json_peek(s) != '"') /* like ->> in SQL: only the string "admin" is admin */
        return json_skip(s, depth);
    if (json_string(s, v, sizeof v, &n) < 0)
        return JSON_BAD;
    pc->c->is_admin = n == 5 && memcmp(v, "admin", 5) == 0;
    return 0;
}

static int payload_member(json_scan *s, int depth, const char *key, size_t klen, void *ctx)
{
    payload_ctx *pc = ctx;
    jwt_claims *c = pc->c;
    int64_t unused;
    if (key_is(key, klen, "sub"))
        return first_time(pc, SEEN_SUB, "sub") < 0 ? JSON_BAD
               : claim_string(s, pc, "sub", c->uid, JWT_MAX_SUB);
    if (key_is(key, klen, "role"))
        return first_time(pc, SEEN_ROLE, "role") < 0 ? JSON_BAD
               : claim_string(s, pc, "role", c->role, JWT_MAX_ROLE);
    if (key_is(key, klen, "session_id"))
        return first_time(pc, SEEN_SESSION, "session_id") < 0 ? JSON_BAD
               : claim_string(s, pc, "session_id", c->session_id, JWT_MAX_SESSION);
    if (key_is(key, klen, "exp")) {
        c->has_exp = 1;
        return first_time(pc, SEEN_EXP, "exp") < 0 ? JSON_BAD
               : claim_time(s, pc, "exp", &c->exp, &unused);
    }
    if (key_is(key, klen, "nbf")) {
        c->has_nbf = 1;
        return first_time(pc, SEEN_NBF, "nbf") < 0 ? JSON_BAD
               : claim_time(s, pc, "nbf", &unused, &c->nbf);
    }
    if (key_is(key, klen, "user_metadata")) {
        if (first_time(pc, SEEN_META, "user_metadata") < 0)
            return JSON_BAD;
        if (json_peek(s) == '{')
            return json_object(s, depth, metadata_member, pc);
    }
    return json_skip(s, depth);
}

static int read_payload(jwt_claims *c, char *err, size_t errlen)
{
    payload_ctx pc = {c, 0, ""};
    json_scan s;
    json_scan_init(&s, c->payload, c->payload_len);
    if (json_peek(&s) != '{')
        return fail(err, errlen, JWT_MALFORMED, "payload: not a JSON object");
    if (json_object(&s, JWT_MAX_DEPTH, payload_member, &pc) < 0)
        return fail(err, errlen, JWT_MALFORMED, pc.why[0] ? pc.why : "payload: malformed JSON");
    if (json_end(&s) < 0)
        return fail(err, errlen, JWT_MALFORMED, "payload: data after the object");
    if (!c->role[0])
        strcpy(c->role, c->uid[0] ? "authenticated" : "anon");
    return JWT_OK;
}

/* ---- verification ---- */

/* A token's three segments: header, payload, signature. */
typedef struct segments {
    const char *p[3];
    size_t n[3];
} segments;

/* Finds exactly three non-empty segments. */
static int split(const char *t, size_t len, segments *g)
{
    const char *end = t + len;
    for (int i = 0; i < 3; i++) {
        if (t == end)
            return -1;
        const char *dot = memchr(t, '.', (size_t)(end - t));
        if ((i < 2) != (dot != NULL) || dot == t)
            return -1;
        g->p[i] = t;
        g->n[i] = (size_t)((dot ? dot : end) - t);
        t += g->n[i] + (dot != NULL);
    }
    return 0;
}

struct jwt_key {
    EVP_MAC_CTX *ctx;          /* owned; HMAC-SHA256 keyed with the secret */
    const jwt_keyset *keyset;  /* ES256 / RS256 keys, or NULL; not owned */
};

void jwt_key_set_keyset(jwt_key *key, const jwt_keyset *ks)
{
    if (key)
        key->keyset = ks;
}

jwt_key *jwt_key_new(const unsigned char *secret, size_t len)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = NULL;
    jwt_key *key = NULL;
    if (len == 0)
        goto err;
    key = calloc(1, sizeof *key);
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!key || !mac)
        goto err;
    key->ctx = EVP_MAC_CTX_new(mac); /* takes its own reference to mac */
    if (!key->ctx || !EVP_MAC_init(key->ctx, secret, len, params))
        goto err;
    EVP_MAC_free(mac);
    return key;
err:
    EVP_MAC_free(mac);
    jwt_key_free(key);
    return NULL;
}

void jwt_key_free(jwt_key *key)
{
    if (!key)
        return;
    EVP_MAC_CTX_free(key->ctx);
    free(key);
}

/* Re-initialising with a NULL key keeps the one given to jwt_key_new. */
static int check_signature(jwt_key *key, const char *token, size_t signed_len,
                           const unsigned char *sig)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (!key || !EVP_MAC_init(key->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(key->ctx, (const unsigned char *)token, signed_len) ||
        !EVP_MAC_final(key->ctx, mac, &mac_len, sizeof mac) || mac_len != SIG_LEN)
        return -1;
    return CRYPTO_memcmp(mac, sig, SIG_LEN) == 0 ? 0 : -1;
}

int jwt_check_time(const jwt_claims *c, int64_t now, int leeway_s, char *err, size_t errlen)
{
    const int64_t bound = 4 * JSON_NUM_LIMIT; /* exp, nbf are within 1e18: no overflow below */
    int64_t leeway = leeway_s > 0 ? leeway_s : 0;
    now = now > bound ? bound : now < -bound ? -bound : now;
    if (c->has_exp && now > c->exp + leeway)
        return fail(err, errlen, JWT_EXPIRED, "token expired");
    if (c->has_nbf && now + leeway < c->nbf)
        return fail(err, errlen, JWT_NOT_YET_VALID, "token not yet valid");
    return JWT_OK;
}

typedef struct aud_ctx {
    const char *want;
    int seen;  /* "aud" was present */
    int match; /* ... and named `want` */
} aud_ctx;

/* One string of "aud": does it name the audience wanted? */
static int aud_string(json_scan *s, aud_ctx *a)
{
    char v[256];
    size_t n;
    int r = json_string(s, v, sizeof v, &n);
    if (r < 0)
        return JSON_BAD;
    if (r == 0 && n == strlen(a->want) && memcmp(v, a->want, n) == 0)
        a->match = 1;
    return 0;
}

static int aud_member(json_scan *s, int depth, const char *key, size_t klen, void *ctx)
{
    aud_ctx *a = ctx;
    if (!key_is(key, klen, "aud"))
        return json_skip(s, depth);
    a->seen = 1;
    if (json_peek(s) != '[')
        return aud_string(s, a);
    s->p++; /* an array of strings */
    if (json_peek(s) == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (aud_string(s, a) < 0)
            return JSON_BAD;
        int c = json_peek(s);
        s->p++;
        if (c == ']')
            return 0;
        if (c != ',')
            return JSON_BAD;
    }
}

int jwt_check_aud(const jwt_claims *c, const char *want)
{
    aud_ctx a = {want, 0, 0};
    json_scan s;
    json_scan_init(&s, c->payload, c->payload_len);
    if (json_object(&s, JWT_MAX_DEPTH, aud_member, &a) < 0)
        return -1;
    return !a.seen || a.match ? 0 : -1;
}

/* The signature of an asymmetric token, checked with the key its kid
 * names: that key's algorithm must be the header's (a token cannot pick
 * how its key is used), and an HS256 token never meets these keys. */
static int check_asymmetric(jwt_key *key, const header_ctx *h, const char *token, size_t signed_len,
                            const unsigned char *sig, size_t siglen, char *err, size_t errlen)
{
    if (!key || !key->keyset)
        return fail(err, errlen, JWT_BAD_ALG, "no ES256 / RS256 keys configured");
    if (!h->kid_seen)
        return fail(err, errlen, JWT_BAD_SIGNATURE, "header: no kid");
    int rc = jwt_keyset_verify(key->keyset, h->alg, h->kid, h->kid_len, (const unsigned char *)token, signed_len,
                               sig, siglen);
    if (rc == -2)
        return fail(err, errlen, JWT_BAD_SIGNATURE, "unknown kid");
    if (rc == -3)
        return fail(err, errlen, JWT_BAD_ALG, "alg does not match the key of kid");
    return rc == 0 ? JWT_OK : fail(err, errlen, JWT_BAD_SIGNATURE, "signature mismatch");
}

static int verify(const char *token, size_t len, jwt_key *key, jwt_claims *out, char *err,
                  size_t errlen)
{
    unsigned char sig[JWT_MAX_SIG];
    header_ctx h;
    segments g;
    memset(&h, 0, sizeof h);
    if (len > JWT_MAX_TOKEN)
        return fail(err, errlen, JWT_MALFORMED, "token too long");
    if (split(token, len, &g) < 0)
        return fail(err, errlen, JWT_MALFORMED, "not three non-empty segments");
    int rc = check_header(g.p[0], g.n[0], &h, err, errlen);
    if (rc != JWT_OK)
        return rc;
    long n = b64url_decode(g.p[2], g.n[2], sig, h.alg == JWT_ALG_HS256 ? SIG_LEN : sizeof sig);
    if (n == -1)
        return fail(err, errlen, JWT_MALFORMED, "signature: bad base64url");
    if (h.alg == JWT_ALG_HS256 && n != SIG_LEN)
        return fail(err, errlen, JWT_BAD_SIGNATURE, "signature: not 32 bytes");
    if (n < 0)
        return fail(err, errlen, JWT_BAD_SIGNATURE, "signature: too long");
    size_t sig_len = (size_t)n;
    n = b64url_decode(g.p[1], g.n[1], (unsigned char *)out->payload, JWT_MAX_PAYLOAD);
    if (n < 0)
        return fail(err, errlen, JWT_MALFORMED, "payload: bad base64url");
    size_t signed_len = g.n[0] + 1 + g.n[1];
    if (h.alg != JWT_ALG_HS256) {
        rc = check_asymmetric(key, &h, token, signed_len, sig, sig_len, err, errlen);
        if (rc != JWT_OK)
            return rc;
    } else if (check_signature(key, token, signed_len, sig) < 0) {
        return fail(err, errlen, JWT_BAD_SIGNATURE, "signature mismatch");
    }
    out->payload_len = (size_t)n;
    out->payload[n] = '\0';
    return read_payload(out, err, errlen);
}

int jwt_verify(const char *token, size_t len, jwt_key *key, int64_t now, int leeway_s,
               jwt_claims *out, char *err, size_t errlen)
{
    jwt_claims_anon(out);
    out->role[0] = '\0'; /* read_payload fills in the default */
    int rc = verify(token, len, key, out, err, errlen);
    if (rc == JWT_OK)
        rc = jwt_check_time(out, now, leeway_s, err, errlen);
    if (rc != JWT_OK) {
        jwt_claims_anon(out);
        return rc;
    }
    if (errlen)
        err[0] = '\0';
    return JWT_OK;
}

void jwt_claims_anon(jwt_claims *c)
{
    c->uid[0] = '\0';
    c->session_id[0] = '\0';
    strcpy(c->role, "anon");
    c->is_admin = 0;
    c->has_exp = c->has_nbf = 0;
    c->exp = c->nbf = 0;
    c->payload_len = 0;
    c->payload[0] = '\0';
}

const char *jwt_strerror(int rc)
{
    switch (rc) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "invalid token";
    case JWT_BAD_ALG: return "unsupported token algorithm";
    case JWT_BAD_SIGNATURE: return "invalid token signature";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    default: return "unknown";
    }
}

/* ---- picking the token ---- */

static void trim(const char **p, size_t *n)
{
    while (*n && ((*p)[0] == ' ' || (*p)[0] == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static int credential(const char *p, size_t n, const char **tok, size_t *tok_len)
{
    trim(&p, &n);
    if (n == 0 || memchr(p, ' ', n) || memchr(p, '\t', n))
        return -1;
    *tok = p;
    *tok_len = n;
    return 1;
}

int jwt_pick_token(const char *authorization, size_t auth_len, const char *apikey,
                   size_t apikey_len, const char **tok, size_t *tok_len)
{
    const char *a = authorization;
    size_t n = auth_len;
    if (a) {
        trim(&a, &n);
        if (n >= 6 && strncasecmp(a, "bearer", 6) == 0 && (n == 6 || a[6] == ' ' || a[6] == '\t'))
            return credential(a + 6, n - 6, tok, tok_len);
    }
    if (apikey)
        return credential(apikey, apikey_len, tok, tok_len);
    return 0;
}
