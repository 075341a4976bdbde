/* fuzz_jwt.c: libFuzzer target for core/auth/jwt.c and json_scan.c, built
 * with ASan and UBSan by `make fuzz` (spec/c/fuzz.mk).  Seeds:
 * spec/fuzz/jwt/.
 *
 * Each input is used four ways, each on exact-size heap copies:
 * - as a token: jwt_verify answers a known code, and on JWT_OK claims that
 *   are NUL-terminated and within their bounds;
 * - split at the first '\n' into header and payload JSON, minted into a
 *   token signed with the key (own base64url, OpenSSL's HMAC): the payload
 *   reader runs on every input.  With the standard HS256 header, a token
 *   within JWT_MAX_TOKEN is never refused for its algorithm or signature,
 *   and an accepted one carries exactly the payload;
 * - as JSON: json_skip, and a walk that reads every member with the typed
 *   readers, which never accepts what json_skip refuses; json_number's
 *   bounds (lo <= hi <= lo + 1, within JSON_NUM_LIMIT);
 * - split at '\n' into Authorization and apikey values for
 *   jwt_pick_token: the token it picks lies inside the value it came from. */
#include "auth/json_scan.h"
#include "auth/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW 1700000000
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_jwt: invariant failed, line %d: %s\n",      \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

static jwt_key *key;
static jwt_claims claims;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    key = jwt_key_new((const unsigned char *)SECRET, strlen(SECRET));
    if (key == NULL) {
        fprintf(stderr, "fuzz_jwt: jwt_key_new failed\n");
        exit(2);
    }
    return 0;
}

/* An exact-size heap copy of p[0..n) (1 byte for n = 0, never read). */
static char *copy(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    REQUIRE(c != NULL);
    if (n)
        memcpy(c, p, n);
    return c;
}

static size_t b64url(char *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    return o;
}

static int verify(const char *tok, size_t n)
{
    char err[128];
    char *c = copy(tok, n);
    int rc = jwt_verify(c, n, key, NOW, 30, &claims, err, sizeof err);
    free(c);
    REQUIRE(rc == JWT_OK || rc == JWT_MALFORMED || rc == JWT_BAD_ALG || rc == JWT_BAD_SIGNATURE ||
            rc == JWT_EXPIRED || rc == JWT_NOT_YET_VALID);
    REQUIRE(memchr(err, '\0', sizeof err) != NULL);
    REQUIRE(strlen(claims.uid) <= JWT_MAX_SUB && strlen(claims.role) <= JWT_MAX_ROLE);
    REQUIRE(strlen(claims.session_id) <= JWT_MAX_SESSION && claims.role[0] != '\0');
    REQUIRE(claims.payload_len <= JWT_MAX_PAYLOAD && claims.payload[claims.payload_len] == '\0');
    if (rc == JWT_OK) {
        REQUIRE(jwt_check_time(&claims, NOW, 30, err, sizeof err) == JWT_OK);
        REQUIRE(claims.exp >= -1000000000000000000LL && claims.exp <= 1000000000000000000LL);
    } else {
        REQUIRE(claims.payload_len == 0 && claims.uid[0] == '\0');
    }
    return rc;
}

/* header and payload JSON, signed with the key. */
static void minted(const char *hdr, size_t hn, const char *pay, size_t pn)
{
    size_t cap = (hn + pn) / 3 * 4 + 64 + 2 + 43;
    char *tok = malloc(cap);
    REQUIRE(tok != NULL);
    size_t n = b64url(tok, (const unsigned char *)hdr, hn);
    tok[n++] = '.';
    n += b64url(tok + n, (const unsigned char *)pay, pn);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    REQUIRE(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, n, mac, &maclen));
    tok[n++] = '.';
    n += b64url(tok + n, mac, maclen);
    REQUIRE(n <= cap);
    int rc = verify(tok, n);
    if (hn == strlen(HS256) && memcmp(hdr, HS256, hn) == 0 && n <= JWT_MAX_TOKEN && pn > 0)
        REQUIRE(rc != JWT_BAD_ALG && rc != JWT_BAD_SIGNATURE);
    if (rc == JWT_OK)
        REQUIRE(claims.payload_len == pn && memcmp(claims.payload, pay, pn) == 0);
    free(tok);
}

/* A walk that reads each value with the typed readers. */
static int walk_value(json_scan *s, int depth);

static int walk_member(json_scan *s, int depth, const char *k, size_t klen, void *ctx)
{
    (void)ctx;
    REQUIRE(k == NULL || (klen <= JSON_KEY_MAX && k[klen] == '\0'));
    return walk_value(s, depth);
}

static int walk_value(json_scan *s, int depth)
{
    int c = json_peek(s);
    if (c == '{')
        return depth > 0 ? json_object(s, depth, walk_member, NULL) : JSON_BAD;
    if (c == '"') {
        char out[16];
        size_t len = 0;
        int rc = json_string(s, out, sizeof out, &len);
        REQUIRE(rc == JSON_BAD || len <= sizeof out);
        return rc == JSON_BAD ? JSON_BAD : 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int64_t lo = 0, hi = 0;
        if (json_number(s, &lo, &hi) != 0)
            return JSON_BAD;
        REQUIRE(lo <= hi && hi - lo <= 1);
        REQUIRE(lo >= -JSON_NUM_LIMIT && hi <= JSON_NUM_LIMIT);
        return 0;
    }
    return json_skip(s, depth);
}

static void scan(const char *p, size_t n)
{
    char *c = copy(p, n);
    json_scan s;
    json_scan_init(&s, c, n);
    int skipped = json_skip(&s, JWT_MAX_DEPTH) == 0 && json_end(&s) == 0;
    json_scan_init(&s, c, n);
    int walked = walk_value(&s, JWT_MAX_DEPTH) == 0 && json_end(&s) == 0;
    REQUIRE(!walked || skipped);
    free(c);
}

static void pick(const char *auth, size_t an, const char *api, size_t pn)
{
    char *a = copy(auth, an), *k = copy(api, pn);
    const char *tok = NULL;
    size_t len = 0;
    int rc = jwt_pick_token(a, an, k, pn, &tok, &len);
    REQUIRE(rc == -1 || rc == 0 || rc == 1);
    if (rc == 1)
        REQUIRE(len > 0 && ((tok >= a && tok + len <= a + an) || (tok >= k && tok + len <= k + pn)));
    free(a);
    free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t first = nl ? (size_t)(nl - p) : size;
    const char *rest = nl ? nl + 1 : p + size;
    size_t rest_n = size - first - (nl ? 1 : 0);

    verify(p, size);
    if (nl && first > 0)
        minted(p, first, rest, rest_n);
    minted(HS256, strlen(HS256), p, size);
    scan(p, size);
    pick(p, first, rest, rest_n);
    return 0;
}
