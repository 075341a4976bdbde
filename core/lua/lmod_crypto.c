/* lmod_crypto.c: strata.crypto, hashing and secrets for scripts, on
 * OpenSSL (libcrypto):
 *   crypto.sha256(s) -> 32 raw bytes
 *   crypto.hmac_sha256(key, msg) -> 32 raw bytes
 *   crypto.equal(a, b) -> boolean          constant time for equal lengths
 *   crypto.random_bytes(n) -> n raw bytes  (CSPRNG; 1 <= n <= 4096)
 *   crypto.random_token([n]) -> string     n random bytes (default 32) in base64url
 *   crypto.hex(s) -> lower-case hex of s
 *   crypto.base64url(s) -> s in base64url, unpadded
 *   crypto.bcrypt_hash(password[, cost]) -> "$2b$..." | nil, err
 *   crypto.bcrypt_verify(password, hash) -> true | false | nil, err
 *   crypto.jwt_sign(payload) -> token   payload: a table or JSON text,
 *                                       signed as conf jwt_signing_alg says:
 *                                       HS256 with the secret, or ES256 /
 *                                       RS256 with jwt_signing_key (and its kid)
 *   crypto.jwks() -> JSON text          the public keys ({"keys":[...]})
 * The bcrypt calls run on the bcrypt threads (auth/crypt_pool.h) and
 * suspend the handler's coroutine meanwhile; err is "password_too_long"
 * (over 72 bytes, or a NUL byte), "bad_hash" (not a bcrypt hash),
 * "not_in_request" (outside a handler: nothing may wait) or "failed".
 * The secret never reaches scripts: jwt_sign reads it from the C
 * configuration.  A failure of the world (OpenSSL out of entropy or
 * memory) returns nil, err; wrong arguments raise. */
#include "lmod.h"

#include "lua_run.h"
#include "auth/crypt_pool.h"
#include "auth/jwt_keys.h"
#include "base/conf.h"

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

/* One bcrypt call in flight: a full userdata on the calling function's
 * stack, so it lives as long as the call. */
typedef struct bcrypt_op {
    crypt_job job;
    lua_run *run;
} bcrypt_op;

static const char *crypt_reason(int rc)
{
    switch (rc) {
    case CRYPT_TOO_LONG:
        return "password_too_long";
    case CRYPT_BAD_HASH:
        return "bad_hash";
    default:
        return "failed";
    }
}

/* Continuation: the job is done.  [-0, +1|2, m] */
static int bcrypt_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    bcrypt_op *op = lua_touserdata(L, (int)ctx);
    int rc = op->job.rc;
    if (rc == CRYPT_OK && !op->job.verify) {
        lua_pushstring(L, op->job.out);
        return 1;
    }
    if (rc == CRYPT_OK || rc == CRYPT_MISMATCH) {
        lua_pushboolean(L, rc == CRYPT_OK);
        return 1;
    }
    luaL_pushfail(L);
    lua_pushstring(L, crypt_reason(rc));
    return 2;
}

/* crypt_job.done: on the worker's thread. */
static void bcrypt_done(crypt_job *job)
{
    bcrypt_op *op = job->arg;
    lua_run_resume(op->run, 0);
}

/* Starts the job and suspends the caller.  [-0, +1|2, m] */
static int bcrypt_start(lua_State *L, int verify, const char *pw, size_t len, const char *hash, int cost)
{
    lua_run *run = lua_run_current(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.crypt");
    const crypt_client *client = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!run || !client) {
        luaL_pushfail(L);
        lua_pushliteral(L, "not_in_request");
        return 2;
    }
    bcrypt_op *op = lua_newuserdatauv(L, sizeof *op, 0);
    int idx = lua_gettop(L);
    int rc = crypt_job_set(&op->job, verify, pw, len, hash, cost);
    if (rc != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, crypt_reason(rc));
        return 2;
    }
    op->run = run;
    op->job.done = bcrypt_done;
    op->job.arg = op;
    if (crypt_pool_submit(client, &op->job) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "failed");
        return 2;
    }
    return lua_run_yield(L, run, bcrypt_resumed, idx);
}

/* [-1|2, +1|2, m] */
static int l_bcrypt_hash(lua_State *L)
{
    size_t n;
    const char *pw = luaL_checklstring(L, 1, &n);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_Integer cost = luaL_optinteger(L, 2, c ? c->auth_bcrypt_cost : 10);
    luaL_argcheck(L, cost >= CRYPT_MIN_COST && cost <= CRYPT_MAX_COST, 2, "cost between 4 and 31");
    return bcrypt_start(L, 0, pw, n, NULL, (int)cost);
}

/* [-2, +1|2, m] */
static int l_bcrypt_verify(lua_State *L)
{
    size_t n;
    const char *pw = luaL_checklstring(L, 1, &n);
    const char *hash = luaL_checkstring(L, 2);
    return bcrypt_start(L, 1, pw, n, hash, 0);
}

/* The signature of the string on top (the signing input), base64url,
 * pushed after it; 0, or -1 with nothing pushed.  [-0, +1, m] */
static int push_signature(lua_State *L, const strata_conf *c, const jwt_keyset *ks)
{
    size_t n;
    const char *input = lua_tolstring(L, -1, &n);
    unsigned char sig[JWT_MAX_SIG];
    long len;
    if (ks) {
        len = jwt_keyset_sign(ks, (const unsigned char *)input, n, sig, sizeof sig);
    } else {
        unsigned int mdlen = 0;
        len = HMAC(EVP_sha256(), c->jwt_secret, (int)strlen(c->jwt_secret), (const unsigned char *)input, n, sig,
                   &mdlen) ? (long)mdlen : -1;
    }
    if (len < 0)
        return -1;
    lua_pushlstring(L, (const char *)sig, (size_t)len);
    to_base64url(L);
    return 0;
}

/* [-1, +1|2, m] */
static int l_jwt_sign(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lmod_push_cjson(L, "encode");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        lua_replace(L, 1);
    }
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.conf");
    const strata_conf *c = lua_touserdata(L, -1);
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.jwt_keys");
    const jwt_keyset *keys = lua_touserdata(L, -1);
    lua_pop(L, 2);
    const char *alg = keys ? jwt_keyset_alg(keys) : NULL;
    if (!alg && (!c || !c->jwt_secret || !*c->jwt_secret)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "no jwt_secret configured");
        return 2;
    }
    if (alg)
        lua_pushfstring(L, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, jwt_keyset_kid(keys));
    else
        lua_pushliteral(L, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    to_base64url(L);
    lua_pushliteral(L, ".");
    lua_pushvalue(L, 1);
    to_base64url(L);
    lua_concat(L, 3); /* stack: payload, signing input */
    if (push_signature(L, c, alg ? keys : NULL) < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "signing failed");
        return 2;
    }
    lua_pushliteral(L, ".");
    lua_insert(L, -2); /* stack: payload, input, ".", signature */
    lua_concat(L, 3);
    return 1;
}

/* [-0, +1, m] */
static int l_jwks(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "strata.jwt_keys");
    const jwt_keyset *keys = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_pushstring(L, jwt_keyset_jwks(keys));
    return 1;
}

static const luaL_Reg FUNCS[] = {
    {"base64url", l_base64url},
    {"bcrypt_hash", l_bcrypt_hash},
    {"bcrypt_verify", l_bcrypt_verify},
    {"equal", l_equal},
    {"hex", l_hex},
    {"hmac_sha256", l_hmac_sha256},
    {"jwks", l_jwks},
    {"jwt_sign", l_jwt_sign},
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
