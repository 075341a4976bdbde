/* lmod_crypto.c: strata.crypto, hashing and secrets for scripts, on
 * OpenSSL (libcrypto):
 *   crypto.sha256(s) -> 32 raw bytes
 *   crypto.hmac_sha256(key, msg) -> 32 raw bytes
 *   crypto.equal(a, b) -> boolean          constant time for equal lengths
 *   crypto.random_bytes(n) -> n raw bytes  (CSPRNG; 1 <= n <= 4096)
 *   crypto.random_token([n]) -> string     n random bytes (default 32) in base64url
 *   crypto.hex(s) -> lower-case hex of s
 *   crypto.base64url(s) -> s in base64url, unpadded
 * A failure of the world (OpenSSL out of entropy or memory) returns
 * nil, err; wrong arguments raise. */
#include "lmod.h"

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#define MAX_RANDOM 4096

/* [-1, +1|2, m] */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "sha256 failed");
        return 2;
    }
    lua_pushlstring(L, (const char *)md, len);
    return 1;
}

/* [-2, +1|2, m] */
static int l_hmac_sha256(lua_State *L)
{
    size_t klen, mlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *msg = luaL_checklstring(L, 2, &mlen);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    /* HMAC() takes a NULL key as "reuse the last one": give it a byte. */
    static const unsigned char empty[1] = {0};
    if (!HMAC(EVP_sha256(), klen ? (const void *)key : empty, (int)klen, (const unsigned char *)msg, mlen, md,
              &len)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "hmac_sha256 failed");
        return 2;
    }
    lua_pushlstring(L, (const char *)md, len);
    return 1;
}

/* [-2, +1, -] */
static int l_equal(lua_State *L)
{
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);
    /* The lengths are not secret (tokens and digests have fixed ones). */
    lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
    return 1;
}

/* Pushes n random bytes, or fail + message.  [-0, +1|2, m] */
static int push_random(lua_State *L, lua_Integer n)
{
    unsigned char bytes[MAX_RANDOM];
    if (RAND_bytes(bytes, (int)n) != 1) {
        luaL_pushfail(L);
        lua_pushliteral(L, "random_bytes failed");
        return 2;
    }
    lua_pushlstring(L, (const char *)bytes, (size_t)n);
    OPENSSL_cleanse(bytes, (size_t)n);
    return 1;
}

/* [-1, +1|2, m] */
static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= MAX_RANDOM, 1, "between 1 and 4096 bytes");
    return push_random(L, n);
}

/* [-1, +1, m] */
static int l_hex(lua_State *L)
{
    static const char digits[] = "0123456789abcdef";
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

/* Replaces the string on top by its base64url form.  [-1, +1, m] */
static void to_base64url(lua_State *L)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n;
    const unsigned char *s = (const unsigned char *)lua_tolstring(L, -1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (n + 2) / 3 * 4);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    luaL_pushresultsize(&b, o); /* stack: s, encoded */
    lua_remove(L, -2);
}

/* [-1, +1, m] */
static int l_base64url(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    to_base64url(L);
    return 1;
}

/* [-0|1, +1|2, m] */
static int l_random_token(lua_State *L)
{
    lua_Integer n = luaL_optinteger(L, 1, 32);
    luaL_argcheck(L, n >= 1 && n <= MAX_RANDOM, 1, "between 1 and 4096 bytes");
    int got = push_random(L, n);
    if (got == 1)
        to_base64url(L);
    return got;
}

static const luaL_Reg FUNCS[] = {
    {"base64url", l_base64url},
    {"equal", l_equal},
    {"hex", l_hex},
    {"hmac_sha256", l_hmac_sha256},
    {"random_bytes", l_random_bytes},
    {"random_token", l_random_token},
    {"sha256", l_sha256},
    {NULL, NULL},
};

/* [-0, +1, m] */
int luaopen_strata_crypto(lua_State *L)
{
    luaL_newlib(L, FUNCS);
    return 1;
}
