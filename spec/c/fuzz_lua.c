/* fuzz_lua.c: one libFuzzer harness for strata's Lua parsers (spec/fuzz/).
 * It embeds Lua 5.4, loads the driver spec/fuzz/<target>.lua, which
 * returns function(data), and calls it with every input under a protected
 * call: a driver raises only when the code under test broke its contract
 * (raised where it must return nil, err or a 4xx, answered a wrong shape),
 * and any raise is a finding (abort, so libFuzzer keeps the input).
 *
 * The binary is linked once as bin/fuzz_lua; bin/fuzz_<target> are links
 * to it, and the target is the name it was started by (argv[0]), so that
 * `bin/fuzz_rest crash-file` replays a finding.  Run from the repository
 * root: package.path is lua/ and spec/fuzz/.
 *
 * Coverage: the Lua VM is a system library, not instrumented, so libFuzzer
 * would see no progress in Lua code.  A line hook feeds its edges (chunk,
 * previous line, line) into libFuzzer's extra counters instead.
 *
 * The preloaded module "fuzz.c" gives the drivers what strata's C modules
 * would (SHA-256 and HMAC-SHA256 for the stub strata.crypto). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer reads this section as extra coverage counters. */
#define EDGES (1 << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t edges[EDGES];

static lua_State *L;
static int driver_ref = LUA_NOREF;
static uintptr_t prev_edge;

/* [-0, +0, -] */
static void line_hook(lua_State *S, lua_Debug *ar)
{
    if (!lua_getinfo(S, "S", ar))
        return;
    /* ar->source points into the chunk's interned source name: one
     * address per loaded file. */
    uintptr_t here = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 2654435761u);
    edges[(here ^ (prev_edge >> 1)) & (EDGES - 1)]++;
    prev_edge = here;
}

/* fuzz.c.hmac_sha256(key, msg) -> 32 raw bytes.  [-2, +1, e] */
static int l_hmac_sha256(lua_State *S)
{
    size_t klen, mlen;
    const char *key = luaL_checklstring(S, 1, &klen);
    const char *msg = luaL_checklstring(S, 2, &mlen);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &outlen))
        return luaL_error(S, "hmac_sha256 failed");
    lua_pushlstring(S, (const char *)out, outlen);
    return 1;
}

/* fuzz.c.sha256(s) -> 32 raw bytes.  [-1, +1, e] */
static int l_sha256(lua_State *S)
{
    size_t n;
    const char *s = luaL_checklstring(S, 1, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL))
        return luaL_error(S, "sha256 failed");
    lua_pushlstring(S, (const char *)md, len);
    return 1;
}

/* fuzz.c.equal(a, b) -> constant-time equality of two strings.  [-2, +1, e] */
static int l_equal(lua_State *S)
{
    size_t alen, blen;
    const char *a = luaL_checklstring(S, 1, &alen);
    const char *b = luaL_checklstring(S, 2, &blen);
    lua_pushboolean(S, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
    return 1;
}

static const luaL_Reg fuzz_c[] = {
    {"equal", l_equal},
    {"hmac_sha256", l_hmac_sha256},
    {"sha256", l_sha256},
    {NULL, NULL},
};

/* [-0, +1, m] */
static int open_fuzz_c(lua_State *S)
{
    luaL_newlib(S, fuzz_c);
    return 1;
}

/* The traceback of a raise, for the report.  [-1, +1, m] */
static int msghandler(lua_State *S)
{
    const char *msg = lua_tostring(S, 1);
    if (msg == NULL)
        msg = lua_pushfstring(S, "(error object is a %s value)", luaL_typename(S, 1));
    luaL_traceback(S, S, msg, 1);
    return 1;
}

/* "fuzz_rest" (any directory) -> "rest". */
static const char *target_of(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    return strncmp(base, "fuzz_", 5) == 0 ? base + 5 : base;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    const char *target = target_of((*argv)[0]);
    char path[512];
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz_lua: cannot create a Lua state\n");
        exit(2);
    }
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_fuzz_c);
    lua_setfield(L, -2, "fuzz.c"); /* stack: preload */
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "lua/?.lua;lua/?/init.lua;spec/fuzz/?.lua");
    lua_setfield(L, -2, "path"); /* stack: package */
    lua_pop(L, 1);
    snprintf(path, sizeof path, "spec/fuzz/%s.lua", target);
    lua_pushcfunction(L, msghandler);
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, -2) != LUA_OK) {
        fprintf(stderr, "fuzz_lua: driver %s (run from the repository root): %s\n", path,
                lua_tostring(L, -1));
        exit(2);
    }
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz_lua: %s must return a function\n", path);
        exit(2);
    }
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* stack: msghandler */
    lua_pop(L, 1);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    prev_edge = 0;
    lua_pushcfunction(L, msghandler);
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    lua_pushlstring(L, (const char *)data, size); /* stack: msghandler, driver, data */
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
        fprintf(stderr, "fuzz_lua: the driver raised:\n%s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    /* Bounded memory between inputs: a leak into module state shows as
     * growth that libFuzzer's -rss_limit_mb reports. */
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
