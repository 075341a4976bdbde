/* test_jwt.c: table-driven tests of core/jwt.c (HS256 verification, the
 * choice of the request's token) and core/json_scan.c (the bounded JSON
 * reader under it).
 *
 * Fixed vectors come from independent implementations: RFC 7515 appendix
 * A.1, the jwt.io example, Supabase's published local-development anon and
 * service_role keys, a token made with `openssl dgst -hmac` in the shell
 * and one printed by scripts/token.  The other cases are minted here (own
 * base64url encoder, OpenSSL's HMAC) from a header and payload text, then
 * optionally damaged.  Every token and every JSON input is placed against a
 * PROT_NONE page, so an over-read faults; the program is built with ASan
 * and UBSan (spec/c/jwt.mk).  Prints each failure with its case name, then
 * exactly one line "N passed, N failed"; exits 1 on a failure. */
#include "auth/json_scan.h"
#include "auth/jwt.h"
#include "auth/jwt_cache.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_PROG "test_jwt"
#define ARENA_SIZE (64 * 1024) /* readable bytes before the guard page */
#include "test_harness.h"

/* ---- minting ---- */

#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"
#define NOW 1700000000
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define TOKEN_CAP (3 * JWT_MAX_TOKEN)

static size_t b64url(char *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars; k++)
            out[o++] = abc[v >> (18 - 6 * k) & 63];
    }
    return o;
}

/* header "." payload "." HMAC-SHA256 with secret, all base64url, into out. */
static size_t mint(char *out, const char *header, const char *payload, size_t payload_len,
                   const char *secret)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    size_t n = b64url(out, (const unsigned char *)header, strlen(header));
    out[n++] = '.';
    n += b64url(out + n, (const unsigned char *)payload, payload_len);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, n, mac, &mac_len)) {
        fprintf(stderr, "test_jwt: HMAC failed\n");
        exit(2);
    }
    out[n++] = '.';
    n += b64url(out + n, mac, mac_len);
    out[n] = '\0';
    return n;
}

static size_t unhex(unsigned char *out, const char *hex)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (unsigned char)v;
    }
    return n;
}

/* ---- jwt_verify cases ---- */

/* Damage done to a minted token before verifying it. */
enum {
    M_NONE,
    M_PAYLOAD_CHAR, /* one base64url character of the payload changed */
    M_SIG_CHAR,     /* the first character of the signature changed */
    M_SIG_SPARE,    /* the unused low bits of the signature's last character set */
    M_SIG_EMPTY,    /* "header.payload." */
    M_SIG_PADDED,   /* "=" appended */
    M_SIG_LONG,     /* a 64-byte (HS512-sized) signature */
    M_SIG_SHORT,    /* a 3-byte signature */
    M_EXTRA_DOT,    /* ".x" appended */
    M_SPACE,        /* a space appended */
    M_PREFIX        /* "Bearer " prepended (the caller forgot jwt_pick_token) */
};

typedef struct jwt_case {
    const char *name;
    const char *token;      /* a fixed token; NULL: minted from header and payload */
    const char *header;     /* NULL: HS256 */
    const char *payload;    /* JSON text of the minted payload */
    size_t payload_len;     /* 0: strlen(payload) */
    const char *mint_with;  /* NULL: the verifying secret */
    int damage;             /* M_ */
    const char *secret;     /* NULL: SECRET; "" tests the empty secret */
    const char *secret_hex; /* a binary secret instead */
    int64_t now;            /* 0: NOW */
    int leeway;
    int rc;                 /* expected JWT_ code */
    const char *err;        /* a substring the err text must hold; NULL: unchecked */
    /* Checked when rc is JWT_OK: */
    const char *uid, *role;
    const char *session_id; /* NULL: "" */
    int is_admin;
    int times;              /* check has_exp/exp/has_nbf/nbf below */
    int has_exp, has_nbf;
    int64_t exp, nbf;
} jwt_case;

#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X128 X64 X64
#define H64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" /* HS256 in base64url */
#define SIG0 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 32 zero bytes */
#define UID "5b0c6d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
#define AUTH "authenticated"
#define PAY(x) "{\"sub\":\"u1\"," x "}"

/* RFC 7515 appendix A.1: a binary key, CR LF inside both JSON texts. */
#define RFC_KEY "0323354b2b0fa5bc837e0665777ba68f5ab328e6f054c928a90f84b2d2502ebf" \
                "d3fb5a92d20647ef968ab4c377623d223d2e2172052e4f08c0cd9af567d080a3"
#define RFC_TOKEN "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkz" \
                  "ODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbU" \
                  "JU1p1r_wW1gFWFOEjXk"
/* https://jwt.io's example, secret "your-256-bit-secret". */
#define JWTIO_TOKEN H64 ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy" \
                    "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
/* Supabase's local-development keys (secret SECRET), from its docs. */
#define SUPA_ANON H64 ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9." \
                  "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
#define SUPA_SERVICE H64 ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4M" \
                     "zgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
/* printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$SECRET" -binary, with p =
 * {"aud":"authenticated","exp":2000000000,"iat":1700000000,"sub":UID,"email":"a@example.com",
 *  "role":"authenticated","app_metadata":{"provider":"email","role":"service_role"},
 *  "user_metadata":{"name":"Ann \"A\" B\u0041","role":"admin"}} */
#define OPENSSL_TOKEN H64 ".eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAw" \
    "MDAsInN1YiI6IjViMGM2ZDFlLTJmM2EtNGI1Yy04ZDllLTBmMWEyYjNjNGQ1ZSIsImVtYWlsIjoiYUBleGFtcGxlLmNv" \
    "bSIsInJvbGUiOiJhdXRoZW50aWNhdGVkIiwiYXBwX21ldGFkYXRhIjp7InByb3ZpZGVyIjoiZW1haWwiLCJyb2xlIjoi" \
    "c2VydmljZV9yb2xlIn0sInVzZXJfbWV0YWRhdGEiOnsibmFtZSI6IkFubiBcIkFcIiBCXHUwMDQxIiwicm9sZSI6ImFk" \
    "bWluIn19.quGHsQjAeaLrvQProhBU1hCMnd7sJ5sWo-4Tq2SsH7g"
/* STRATA_JWT_SECRET=$SECRET scripts/token --sub 0b7a1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d --admin
 *   --exp-in 600 --claims '{"email":"t@example.com"}'   (iat 1795491938) */
#define SCRIPT_TOKEN H64 ".eyJzdWIiOiIwYjdhMWMyZC0zZTRmLTRhNWItOWM2ZC03ZThmOWEwYjFjMmQiLCJyb2xlIjoiYXV0" \
    "aGVudGljYXRlZCIsImlhdCI6MTc5NTQ5MTkzOCwiZXhwIjoxNzk1NDkyNTM4LCJ1c2VyX21ldGFkYXRhIjp7InJvbGUi" \
    "OiJhZG1pbiJ9LCJlbWFpbCI6InRAZXhhbXBsZS5jb20ifQ.5E8EH6nYqVjyJRXZfWjimLTl8aHlcva86r9IOmscIKc"
#define SCRIPT_UID "0b7a1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d"

static const jwt_case jwt_cases[] = {
    /* independent vectors */
    {.name = "RFC 7515 A.1", .token = RFC_TOKEN, .secret_hex = RFC_KEY, .now = 1300819000,
     .role = "anon", .times = 1, .has_exp = 1, .exp = 1300819380},
    {.name = "RFC 7515 A.1 at exp", .token = RFC_TOKEN, .secret_hex = RFC_KEY, .now = 1300819380,
     .role = "anon"},
    {.name = "RFC 7515 A.1 a second late", .token = RFC_TOKEN, .secret_hex = RFC_KEY,
     .now = 1300819381, .rc = JWT_EXPIRED, .err = "token expired"},
    {.name = "RFC 7515 A.1 a second late, leeway 1", .token = RFC_TOKEN, .secret_hex = RFC_KEY,
     .now = 1300819381, .leeway = 1, .role = "anon"},
    {.name = "RFC 7515 A.1 two seconds late, leeway 1", .token = RFC_TOKEN, .secret_hex = RFC_KEY,
     .now = 1300819382, .leeway = 1, .rc = JWT_EXPIRED},
    {.name = "RFC 7515 A.1 with another key", .token = RFC_TOKEN, .now = 1300819000,
     .rc = JWT_BAD_SIGNATURE, .err = "signature mismatch"},
    {.name = "jwt.io example", .token = JWTIO_TOKEN, .secret = "your-256-bit-secret",
     .uid = "1234567890", .role = AUTH, .times = 1},
    {.name = "jwt.io example, other secret", .token = JWTIO_TOKEN, .rc = JWT_BAD_SIGNATURE},
    {.name = "Supabase demo anon key", .token = SUPA_ANON, .role = "anon", .times = 1,
     .has_exp = 1, .exp = 1983812996},
    {.name = "Supabase demo service_role key", .token = SUPA_SERVICE, .role = "service_role"},
    {.name = "Supabase demo anon key after its exp", .token = SUPA_ANON, .now = 1983812997,
     .rc = JWT_EXPIRED},
    {.name = "openssl-made user token", .token = OPENSSL_TOKEN, .uid = UID, .role = AUTH,
     .is_admin = 1, .times = 1, .has_exp = 1, .exp = 2000000000},
    {.name = "scripts/token output", .token = SCRIPT_TOKEN, .now = 1795491938,
     .uid = SCRIPT_UID, .role = AUTH, .is_admin = 1, .times = 1, .has_exp = 1,
     .exp = 1795492538},
    {.name = "scripts/token output, expired", .token = SCRIPT_TOKEN, .now = 1795492539,
     .rc = JWT_EXPIRED},
    /* signature */
    {.name = "valid", .payload = PAY("\"role\":\"authenticated\",\"exp\":1700000060"),
     .uid = "u1", .role = AUTH, .times = 1, .has_exp = 1, .exp = NOW + 60},
    {.name = "wrong secret", .payload = "{\"sub\":\"u1\"}", .mint_with = "other", .rc = JWT_BAD_SIGNATURE,
     .err = "signature mismatch"},
    {.name = "secret one byte shorter", .payload = "{}",
     .mint_with = "super-secret-jwt-token-with-at-least-32-characters-lon",
     .rc = JWT_BAD_SIGNATURE},
    {.name = "empty secret verifies nothing", .payload = "{}", .mint_with = SECRET, .secret = "",
     .rc = JWT_BAD_SIGNATURE},
    {.name = "tampered payload", .payload = PAY("\"role\":\"anon\""), .damage = M_PAYLOAD_CHAR,
     .rc = JWT_BAD_SIGNATURE},
    {.name = "tampered signature", .payload = "{}", .damage = M_SIG_CHAR, .rc = JWT_BAD_SIGNATURE},
    {.name = "signature with spare bits set", .payload = "{}", .damage = M_SIG_SPARE,
     .rc = JWT_MALFORMED, .err = "signature: bad base64url"},
    {.name = "empty signature", .payload = "{}", .damage = M_SIG_EMPTY, .rc = JWT_MALFORMED,
     .err = "segments"},
    {.name = "padded signature", .payload = "{}", .damage = M_SIG_PADDED, .rc = JWT_MALFORMED},
    {.name = "64-byte signature", .payload = "{}", .damage = M_SIG_LONG, .rc = JWT_BAD_SIGNATURE,
     .err = "not 32 bytes"},
    {.name = "3-byte signature", .payload = "{}", .damage = M_SIG_SHORT, .rc = JWT_BAD_SIGNATURE},
    {.name = "fourth segment", .payload = "{}", .damage = M_EXTRA_DOT, .rc = JWT_MALFORMED,
     .err = "segments"},
    {.name = "trailing space", .payload = "{}", .damage = M_SPACE, .rc = JWT_MALFORMED},
    {.name = "Bearer prefix left on", .payload = "{}", .damage = M_PREFIX, .rc = JWT_MALFORMED},
    /* header */
    {.name = "alg none", .header = "{\"alg\":\"none\",\"typ\":\"JWT\"}", .payload = "{}",
     .rc = JWT_BAD_ALG, .err = "header: alg is not HS256"},
    {.name = "alg none, empty signature", .header = "{\"alg\":\"none\"}", .payload = "{}",
     .damage = M_SIG_EMPTY, .rc = JWT_MALFORMED},
    {.name = "alg HS512", .header = "{\"alg\":\"HS512\"}", .payload = "{}", .rc = JWT_BAD_ALG},
    {.name = "alg RS256", .header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", .payload = "{}",
     .rc = JWT_BAD_ALG},
    {.name = "alg hs256", .header = "{\"alg\":\"hs256\"}", .payload = "{}", .rc = JWT_BAD_ALG},
    {.name = "alg with a space", .header = "{\"alg\":\"HS256 \"}", .payload = "{}",
     .rc = JWT_BAD_ALG},
    {.name = "alg with a NUL", .header = "{\"alg\":\"HS256\\u0000\"}", .payload = "{}",
     .rc = JWT_BAD_ALG},
    {.name = "alg missing", .header = "{\"typ\":\"JWT\"}", .payload = "{}", .rc = JWT_BAD_ALG,
     .err = "header: no alg"},
    {.name = "alg under a NUL-suffixed key", .header = "{\"alg\\u0000\":\"HS256\"}",
     .payload = "{}", .rc = JWT_BAD_ALG},
    {.name = "alg a number", .header = "{\"alg\":256}", .payload = "{}", .rc = JWT_MALFORMED,
     .err = "alg is not a string"},
    {.name = "alg null", .header = "{\"alg\":null}", .payload = "{}", .rc = JWT_MALFORMED},
    {.name = "alg repeated", .header = "{\"alg\":\"HS256\",\"alg\":\"none\"}", .payload = "{}",
     .rc = JWT_MALFORMED, .err = "repeated alg"},
    {.name = "alg key spelled with an escape", .header = "{\"\\u0061lg\":\"HS256\"}",
     .payload = "{}", .role = "anon"},
    {.name = "no typ", .header = "{\"alg\":\"HS256\"}", .payload = "{}", .role = "anon"},
    {.name = "typ jwt", .header = "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", .payload = "{}",
     .role = "anon"},
    {.name = "typ JWS", .header = "{\"alg\":\"HS256\",\"typ\":\"JWS\"}", .payload = "{}",
     .rc = JWT_MALFORMED, .err = "typ is not JWT"},
    {.name = "typ a number", .header = "{\"alg\":\"HS256\",\"typ\":1}", .payload = "{}",
     .rc = JWT_MALFORMED},
    {.name = "kid and others ignored",
     .header = "{\"kid\":\"k1\",\"alg\":\"HS256\",\"x\":[{\"alg\":\"none\"}]}", .payload = "{}",
     .role = "anon"},
    {.name = "crit", .header = "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", .payload = "{}",
     .rc = JWT_MALFORMED, .err = "crit"},
    {.name = "header not JSON", .header = "alg=HS256", .payload = "{}", .rc = JWT_MALFORMED,
     .err = "header: not a JSON object"},
    {.name = "header an array", .header = "[\"HS256\"]", .payload = "{}", .rc = JWT_MALFORMED},
    {.name = "header with data after it", .header = "{\"alg\":\"HS256\"} {}", .payload = "{}",
     .rc = JWT_MALFORMED},
    /* framing and base64url */
    {.name = "empty token", .token = "", .rc = JWT_MALFORMED},
    {.name = "one segment", .token = "abc", .rc = JWT_MALFORMED},
    {.name = "two segments", .token = H64 ".e30", .rc = JWT_MALFORMED},
    {.name = "four segments", .token = H64 ".e30." SIG0 ".e30", .rc = JWT_MALFORMED},
    {.name = "empty header", .token = ".e30." SIG0, .rc = JWT_MALFORMED},
    {.name = "empty payload", .token = H64 ".." SIG0, .rc = JWT_MALFORMED},
    {.name = "only dots", .token = "..", .rc = JWT_MALFORMED},
    {.name = "+ in header", .token = H64 "+.e30." SIG0, .rc = JWT_MALFORMED,
     .err = "header: bad base64url"},
    {.name = "/ in payload", .token = H64 ".e3/0." SIG0, .rc = JWT_MALFORMED,
     .err = "payload: bad base64url"},
    {.name = "padding in payload", .token = H64 ".e30=." SIG0, .rc = JWT_MALFORMED},
    {.name = "space in signature", .token = H64 ".e30.AAAA AAAA", .rc = JWT_MALFORMED},
    {.name = "header of 4k+1 characters", .token = "eyJhb.e30." SIG0, .rc = JWT_MALFORMED},
    {.name = "payload of 4k+1 characters", .token = H64 ".e30AA." SIG0, .rc = JWT_MALFORMED},
    {.name = "payload with spare bits set", .token = H64 ".e31." SIG0, .rc = JWT_MALFORMED},
    {.name = "well-formed, unsigned", .token = H64 ".e30." SIG0, .rc = JWT_BAD_SIGNATURE},
    /* payload JSON (signed) */
    {.name = "payload {}", .payload = "{}", .role = "anon", .times = 1},
    {.name = "payload with whitespace around", .payload = " \r\n{ }\t ", .role = "anon"},
    {.name = "payload not JSON", .payload = "hello", .rc = JWT_MALFORMED,
     .err = "payload: not a JSON object"},
    {.name = "payload an array", .payload = "[{\"sub\":\"u\"}]", .rc = JWT_MALFORMED,
     .err = "not a JSON object"},
    {.name = "payload a string", .payload = "\"{}\"", .rc = JWT_MALFORMED},
    {.name = "payload a number", .payload = "42", .rc = JWT_MALFORMED},
    {.name = "payload null", .payload = "null", .rc = JWT_MALFORMED},
    {.name = "payload truncated", .payload = "{\"sub\":\"a\"", .rc = JWT_MALFORMED,
     .err = "payload: malformed JSON"},
    {.name = "payload with data after it", .payload = "{} x", .rc = JWT_MALFORMED,
     .err = "payload: data after the object"},
    {.name = "payload of two objects", .payload = "{}{}", .rc = JWT_MALFORMED},
    {.name = "payload with a NUL after it", .payload = "{}\0", .payload_len = 3,
     .rc = JWT_MALFORMED},
    {.name = "payload with a BOM", .payload = "\xef\xbb\xbf{}", .rc = JWT_MALFORMED},
    {.name = "payload with a trailing comma", .payload = PAY("\"a\":1,"), .rc = JWT_MALFORMED},
    {.name = "payload with a control byte", .payload = PAY("\"a\":\"x\ty\""), .rc = JWT_MALFORMED},
    {.name = "payload with a bad escape", .payload = PAY("\"a\":\"\\x\""), .rc = JWT_MALFORMED},
    {.name = "payload with a lone surrogate", .payload = PAY("\"a\":\"\\udc00\""),
     .rc = JWT_MALFORMED},
    {.name = "payload with single quotes", .payload = "{'sub':'u'}", .rc = JWT_MALFORMED},
    {.name = "payload with a bad number", .payload = PAY("\"a\":01"), .rc = JWT_MALFORMED},
    {.name = "payload with a bad literal", .payload = PAY("\"a\":tru"), .rc = JWT_MALFORMED},
    {.name = "payload with other values of every kind",
     .payload = PAY("\"a\":[true,false,null,-1.5e-3,\"s\",{},[]],\"b\":{\"c\":{\"d\":[{}]}}"),
     .uid = "u1", .role = AUTH},
    /* time */
    {.name = "exp beyond the leeway", .payload = PAY("\"exp\":1699999969"), .leeway = 30,
     .rc = JWT_EXPIRED, .err = "token expired"},
    {.name = "exp within the leeway", .payload = PAY("\"exp\":1699999970"), .leeway = 30,
     .uid = "u1", .role = AUTH},
    {.name = "exp now", .payload = PAY("\"exp\":1700000000"), .uid = "u1", .role = AUTH},
    {.name = "exp a second ago", .payload = PAY("\"exp\":1699999999"), .rc = JWT_EXPIRED},
    {.name = "negative leeway counts as 0", .payload = PAY("\"exp\":1700000000"),
     .leeway = -100, .uid = "u1", .role = AUTH},
    {.name = "nbf beyond the leeway", .payload = PAY("\"nbf\":1700000031"), .leeway = 30,
     .rc = JWT_NOT_YET_VALID, .err = "token not yet valid"},
    {.name = "nbf within the leeway", .payload = PAY("\"nbf\":1700000030"), .leeway = 30,
     .uid = "u1", .role = AUTH, .times = 1, .has_nbf = 1, .nbf = NOW + 30},
    {.name = "nbf in a second", .payload = PAY("\"nbf\":1700000001"), .rc = JWT_NOT_YET_VALID},
    {.name = "nbf now", .payload = PAY("\"nbf\":1700000000"), .uid = "u1", .role = AUTH},
    {.name = "expired and not yet valid: expired",
     .payload = PAY("\"exp\":1699999990,\"nbf\":1700000010"), .rc = JWT_EXPIRED},
    {.name = "exp a string", .payload = PAY("\"exp\":\"1700000060\""), .rc = JWT_MALFORMED,
     .err = "payload: exp is not a number"},
    {.name = "exp null", .payload = PAY("\"exp\":null"), .rc = JWT_MALFORMED},
    {.name = "exp true", .payload = PAY("\"exp\":true"), .rc = JWT_MALFORMED},
    {.name = "exp an object", .payload = PAY("\"exp\":{}"), .rc = JWT_MALFORMED},
    {.name = "nbf a string", .payload = PAY("\"nbf\":\"0\""), .rc = JWT_MALFORMED,
     .err = "payload: nbf is not a number"},
    {.name = "exp with a fraction, still valid", .payload = PAY("\"exp\":1700000000.5"),
     .uid = "u1", .role = AUTH, .times = 1, .has_exp = 1, .exp = NOW},
    {.name = "exp with a fraction, past", .payload = PAY("\"exp\":1699999999.5"),
     .rc = JWT_EXPIRED},
    {.name = "nbf with a fraction, future", .payload = PAY("\"nbf\":1700000000.5"),
     .rc = JWT_NOT_YET_VALID},
    {.name = "exp with an exponent", .payload = PAY("\"exp\":1.7e9"), .uid = "u1", .role = AUTH,
     .times = 1, .has_exp = 1, .exp = NOW},
    {.name = "exp 1e300", .payload = PAY("\"exp\":1e300"), .uid = "u1", .role = AUTH,
     .times = 1, .has_exp = 1, .exp = JSON_NUM_LIMIT},
    {.name = "exp -1", .payload = PAY("\"exp\":-1"), .rc = JWT_EXPIRED},
    {.name = "exp with 70 digits", .payload = PAY("\"exp\":" X64 "000000"), .rc = JWT_MALFORMED},
    {.name = "exp repeated", .payload = PAY("\"exp\":1700000060,\"exp\":1"), .rc = JWT_MALFORMED,
     .err = "repeated exp"},
    {.name = "iat in the future is not checked", .payload = PAY("\"iat\":1800000000"),
     .uid = "u1", .role = AUTH},
    {.name = "now at INT64_MAX", .payload = PAY("\"exp\":1e300"), .now = INT64_MAX,
     .rc = JWT_EXPIRED},
    {.name = "now at INT64_MIN, leeway INT_MAX", .payload = PAY("\"nbf\":-1e300"),
     .now = INT64_MIN, .leeway = 2147483647, .rc = JWT_NOT_YET_VALID},
    /* sub and role */
    {.name = "escapes in sub and role", .payload = "{\"sub\":\"a\\\"b\\\\c\",\"role\":\"\\u0041x\"}",
     .uid = "a\"b\\c", .role = "Ax"},
    {.name = "sub with a surrogate pair", .payload = "{\"sub\":\"\\ud83d\\ude00\"}",
     .uid = "\xf0\x9f\x98\x80", .role = AUTH},
    {.name = "sub with raw UTF-8", .payload = "{\"sub\":\"caf\xc3\xa9\"}", .uid = "caf\xc3\xa9",
     .role = AUTH},
    {.name = "sub with a NUL", .payload = "{\"sub\":\"a\\u0000b\"}", .rc = JWT_MALFORMED,
     .err = "sub holds a NUL byte"},
    {.name = "role with a NUL", .payload = "{\"role\":\"anon\\u0000\"}", .rc = JWT_MALFORMED},
    {.name = "sub of 128 bytes", .payload = "{\"sub\":\"" X128 "\"}", .uid = X128, .role = AUTH},
    {.name = "sub of 129 bytes", .payload = "{\"sub\":\"" X128 "y\"}", .rc = JWT_MALFORMED,
     .err = "sub is too long"},
    {.name = "role of 64 bytes", .payload = "{\"role\":\"" X64 "\"}", .role = X64},
    {.name = "role of 65 bytes", .payload = "{\"role\":\"" X64 "y\"}", .rc = JWT_MALFORMED},
    {.name = "sub a number", .payload = "{\"sub\":42}", .rc = JWT_MALFORMED,
     .err = "sub is not a string"},
    {.name = "role null", .payload = PAY("\"role\":null"), .rc = JWT_MALFORMED},
    {.name = "role an array", .payload = PAY("\"role\":[\"anon\"]"), .rc = JWT_MALFORMED},
    {.name = "empty sub counts as none", .payload = "{\"sub\":\"\"}", .role = "anon"},
    {.name = "empty role gets the default", .payload = PAY("\"role\":\"\""), .uid = "u1",
     .role = AUTH},
    {.name = "no role, a sub: authenticated", .payload = "{\"sub\":\"u1\"}", .uid = "u1", .role = AUTH},
    {.name = "no role, no sub: anon", .payload = "{\"name\":\"x\"}", .role = "anon"},
    {.name = "role without sub", .payload = "{\"role\":\"service_role\"}", .role = "service_role"},
    {.name = "unknown role passes through", .payload = PAY("\"role\":\"postgres\""), .uid = "u1",
     .role = "postgres"},
    {.name = "role key spelled with an escape", .payload = PAY("\"rol\\u0065\":\"service_role\""),
     .uid = "u1", .role = "service_role"},
    {.name = "nested roles are not the role",
     .payload = PAY("\"app_metadata\":{\"role\":\"service_role\"},\"x\":[{\"role\":\"service_role\"}],"
                    "\"y\":{\"z\":{\"role\":\"service_role\",\"sub\":\"u2\"}}"),
     .uid = "u1", .role = AUTH},
    {.name = "role inside a string is not the role",
     .payload = PAY("\"note\":\"\\\"role\\\":\\\"service_role\\\"\",\"k\":\"role\""), .uid = "u1",
     .role = AUTH},
    {.name = "sub repeated", .payload = PAY("\"sub\":\"u2\""), .rc = JWT_MALFORMED,
     .err = "repeated sub"},
    {.name = "role repeated", .payload = PAY("\"role\":\"anon\",\"role\":\"service_role\""),
     .rc = JWT_MALFORMED, .err = "repeated role"},
    {.name = "other keys may repeat", .payload = PAY("\"a\":1,\"a\":2"), .uid = "u1", .role = AUTH},
    /* session_id (GoTrue's): read for the revoked-session check */
    {.name = "session_id", .payload = PAY("\"session_id\":\"" UID "\""), .uid = "u1", .role = AUTH,
     .session_id = UID},
    {.name = "session_id repeated", .payload = PAY("\"session_id\":\"a\",\"session_id\":\"b\""),
     .rc = JWT_MALFORMED, .err = "repeated session_id"},
    {.name = "session_id not a string", .payload = PAY("\"session_id\":1"), .rc = JWT_MALFORMED,
     .err = "session_id is not a string"},
    {.name = "session_id too long", .payload = PAY("\"session_id\":\"" X64 "x\""), .rc = JWT_MALFORMED,
     .err = "session_id is too long"},
    {.name = "a key over 64 bytes is skipped", .payload = PAY("\"" X64 "role\":\"service_role\""),
     .uid = "u1", .role = AUTH},
    /* is_admin */
    {.name = "admin", .payload = PAY("\"user_metadata\":{\"role\":\"admin\"}"), .uid = "u1",
     .role = AUTH, .is_admin = 1},
    {.name = "admin spelled with an escape",
     .payload = PAY("\"user_metadata\":{\"name\":\"a\",\"role\":\"\\u0061dmin\"}"), .uid = "u1",
     .role = AUTH, .is_admin = 1},
    {.name = "user", .payload = PAY("\"user_metadata\":{\"role\":\"user\"}"), .uid = "u1",
     .role = AUTH},
    {.name = "no user_metadata", .payload = "{\"sub\":\"u1\"}", .uid = "u1", .role = AUTH},
    {.name = "user_metadata without role", .payload = PAY("\"user_metadata\":{\"r\":\"admin\"}"),
     .uid = "u1", .role = AUTH},
    {.name = "user_metadata a string", .payload = PAY("\"user_metadata\":\"admin\""), .uid = "u1",
     .role = AUTH},
    {.name = "user_metadata null", .payload = PAY("\"user_metadata\":null"), .uid = "u1",
     .role = AUTH},
    {.name = "user_metadata.role a number", .payload = PAY("\"user_metadata\":{\"role\":1}"),
     .uid = "u1", .role = AUTH},
    {.name = "user_metadata.role an object",
     .payload = PAY("\"user_metadata\":{\"role\":{\"role\":\"admin\"}}"), .uid = "u1", .role = AUTH},
    {.name = "Admin", .payload = PAY("\"user_metadata\":{\"role\":\"Admin\"}"), .uid = "u1",
     .role = AUTH},
    {.name = "admin with a space", .payload = PAY("\"user_metadata\":{\"role\":\"admin \"}"),
     .uid = "u1", .role = AUTH},
    {.name = "administrator", .payload = PAY("\"user_metadata\":{\"role\":\"administrator\"}"),
     .uid = "u1", .role = AUTH},
    {.name = "admin deeper in user_metadata",
     .payload = PAY("\"user_metadata\":{\"x\":{\"role\":\"admin\"}}"), .uid = "u1", .role = AUTH},
    {.name = "admin in app_metadata", .payload = PAY("\"app_metadata\":{\"role\":\"admin\"}"),
     .uid = "u1", .role = AUTH},
    {.name = "top-level role admin is not is_admin", .payload = PAY("\"role\":\"admin\""),
     .uid = "u1", .role = "admin"},
    {.name = "user_metadata.role repeated",
     .payload = PAY("\"user_metadata\":{\"role\":\"user\",\"role\":\"admin\"}"),
     .rc = JWT_MALFORMED, .err = "repeated user_metadata.role"},
    {.name = "user_metadata repeated",
     .payload = PAY("\"user_metadata\":{},\"user_metadata\":{\"role\":\"admin\"}"),
     .rc = JWT_MALFORMED},
};

static void damage(char *t, size_t *n, int how)
{
    char *sig = strrchr(t, '.') + 1;
    char *pay = strchr(t, '.') + 1;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    switch (how) {
    case M_PAYLOAD_CHAR: pay[2] = pay[2] == 'A' ? 'B' : 'A'; break;
    case M_SIG_CHAR: sig[0] = sig[0] == 'A' ? 'B' : 'A'; break;
    case M_SIG_SPARE: t[*n - 1] = abc[(strchr(abc, t[*n - 1]) - abc) ^ 1]; break;
    case M_SIG_EMPTY: *n = (size_t)(sig - t); break;
    case M_SIG_PADDED: t[(*n)++] = '='; break;
    case M_SIG_LONG: memset(sig, 'A', 86); *n = (size_t)(sig - t) + 86; break;
    case M_SIG_SHORT: memcpy(sig, "AAAA", 4); *n = (size_t)(sig - t) + 4; break;
    case M_EXTRA_DOT: memcpy(t + *n, ".x", 2); *n += 2; break;
    case M_SPACE: t[(*n)++] = ' '; break;
    case M_PREFIX: memmove(t + 7, t, *n); memcpy(t, "Bearer ", 7); *n += 7; break;
    default: break;
    }
}

static int is_anon(const jwt_claims *c)
{
    return !c->uid[0] && !strcmp(c->role, "anon") && !c->is_admin && !c->payload_len &&
           !c->payload[0] && !c->has_exp && !c->has_nbf && !c->session_id[0];
}

static jwt_claims claims; /* 6.5 KiB: not on the stack */
static jwt_key *main_key; /* SECRET, shared by the property tests */

static void run_jwt_case(const jwt_case *c)
{
    static char tok[TOKEN_CAP];
    unsigned char key[256];
    const char *secret = c->secret ? c->secret : SECRET;
    size_t key_len = c->secret_hex ? unhex(key, c->secret_hex) : strlen(secret);
    size_t plen = c->payload_len ? c->payload_len : c->payload ? strlen(c->payload) : 0;
    size_t n;
    char err[128];
    if (!c->secret_hex)
        memcpy(key, secret, key_len);
    if (c->token) {
        n = strlen(c->token);
        memcpy(tok, c->token, n);
    } else {
        n = mint(tok, c->header ? c->header : HS256, c->payload, plen,
                 c->mint_with ? c->mint_with : secret);
    }
    damage(tok, &n, c->damage);
    jwt_key *k = jwt_key_new(key, key_len);
    CHECK(!k == !key_len, "jwt_key_new of %zu bytes gave %p", key_len, (void *)k);
    memset(&claims, 0x5a, sizeof claims);
    int rc = jwt_verify(guarded(tok, n), n, k, c->now ? c->now : NOW, c->leeway, &claims, err,
                        sizeof err);
    jwt_key_free(k);
    CHECK(rc == c->rc, "rc %d (%s), want %d", rc, err, c->rc);
    CHECK(!c->err || strstr(err, c->err), "err '%s', want '%s'", err, c->err);
    if (rc != JWT_OK) {
        CHECK(is_anon(&claims), "failure left a non-anonymous context");
        return;
    }
    CHECK(!err[0], "err '%s' on success", err);
    CHECK(!strcmp(claims.uid, c->uid ? c->uid : ""), "uid '%s'", claims.uid);
    CHECK(!strcmp(claims.role, c->role), "role '%s'", claims.role);
    CHECK(claims.is_admin == c->is_admin, "is_admin %d", claims.is_admin);
    CHECK(!strcmp(claims.session_id, c->session_id ? c->session_id : ""), "session_id '%s'", claims.session_id);
    CHECK(claims.payload[claims.payload_len] == '\0', "payload not NUL-terminated");
    CHECK(c->token || (claims.payload_len == plen && !memcmp(claims.payload, c->payload, plen)),
          "payload '%s'", claims.payload);
    if (c->times) {
        CHECK(claims.has_exp == c->has_exp && (!c->has_exp || claims.exp == c->exp),
              "exp %d %lld", claims.has_exp, (long long)claims.exp);
        CHECK(claims.has_nbf == c->has_nbf && (!c->has_nbf || claims.nbf == c->nbf),
              "nbf %d %lld", claims.has_nbf, (long long)claims.nbf);
    }
}

/* ---- properties over whole families of inputs ---- */

/* Every proper prefix of a valid token and every one-byte change of it is
 * refused (no byte of a token is slack), all with one jwt_key. */
static void run_damage_everywhere(void)
{
    static char tok[TOKEN_CAP], bad[TOKEN_CAP];
    static const char repl[] = "A_-.=+/ \x00\x80z9";
    const char *payload = "{\"sub\":\"u1\",\"role\":\"authenticated\",\"exp\":1700000060,"
                          "\"user_metadata\":{\"role\":\"admin\"},\"a\":[1,2.5,\"x\\\"y\",null]}";
    size_t n = mint(tok, HS256, payload, strlen(payload), SECRET);
    CHECK(jwt_verify(guarded(tok, n), n, main_key, NOW, 0, &claims, NULL, 0) ==
              JWT_OK, "the undamaged token fails");
    for (size_t len = 0; len < n; len++) {
        int rc = jwt_verify(guarded(tok, len), len, main_key, NOW, 0, &claims, NULL, 0);
        CHECK(rc < 0 && is_anon(&claims), "prefix of %zu bytes: rc %d", len, rc);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < sizeof repl - 1; r++) {
            if (tok[i] == repl[r])
                continue;
            memcpy(bad, tok, n);
            bad[i] = repl[r];
            int rc = jwt_verify(guarded(bad, n), n, main_key, NOW, 0, &claims, NULL, 0);
            CHECK(rc < 0 && is_anon(&claims), "byte %zu := 0x%02x: rc %d", i,
                  (unsigned char)repl[r], rc);
        }
    /* The key's HMAC state is reused: after all those failures it still works. */
    CHECK(jwt_verify(guarded(tok, n), n, main_key, NOW, 0, &claims, NULL, 0) == JWT_OK,
          "the undamaged token fails after the damaged ones");
}

/* Every proper prefix of a signed payload object is JWT_MALFORMED: the
 * scanner never accepts a truncated document, wherever it stops. */
static void run_truncated_payloads(void)
{
    static char tok[TOKEN_CAP];
    const char *payload = "{ \"sub\" : \"a\\u0041\\\"\\ud83d\\ude00\", \"n\": -12.5e+3, \"t\":true,"
                          "\"f\":false,\"z\":null,\"o\":{\"role\":\"x\",\"a\":[[],{}]},"
                          "\"user_metadata\":{\"role\":\"admin\"}, \"exp\": 1.7e9 }";
    size_t plen = strlen(payload);
    for (size_t len = 1; len <= plen; len++) {
        size_t n = mint(tok, HS256, payload, len, SECRET);
        int rc = jwt_verify(guarded(tok, n), n, main_key,
                            NOW, 0, &claims, NULL, 0);
        CHECK(rc == (len == plen ? JWT_OK : JWT_MALFORMED), "prefix of %zu bytes: rc %d", len, rc);
    }
    CHECK(!strcmp(claims.uid, "aA\"\xf0\x9f\x98\x80") && claims.is_admin && claims.exp == NOW,
          "the whole payload read wrong: uid '%s'", claims.uid);
}

/* A token of exactly JWT_MAX_TOKEN bytes passes, one byte more does not;
 * likewise a decoded header of JWT_MAX_HEADER bytes. */
static void run_size_limit(void)
{
    static char tok[TOKEN_CAP], payload[JWT_MAX_PAYLOAD], header[JWT_MAX_HEADER + 2];
    for (size_t hlen = JWT_MAX_HEADER; hlen <= JWT_MAX_HEADER + 1; hlen++) {
        memset(header, 'x', hlen);
        memcpy(header, "{\"alg\":\"HS256\",\"x\":\"", 20);
        memcpy(header + hlen - 2, "\"}", 3);
        size_t n = mint(tok, header, "{}", 2, SECRET);
        char err[64];
        int rc = jwt_verify(guarded(tok, n), n, main_key,
                            NOW, 0, &claims, err, sizeof err);
        int fits = hlen <= JWT_MAX_HEADER;
        CHECK(rc == (fits ? JWT_OK : JWT_MALFORMED) && (fits || !strcmp(err, "header: too long")),
              "header of %zu bytes: rc %d (%s)", hlen, rc, err);
    }
    /* 36 header + 2 dots + 43 signature + 8111 payload characters (6083 bytes) = 8192 */
    for (size_t plen = 6083; plen <= 6084; plen++) {
        memset(payload, 'x', plen);
        memcpy(payload, "{\"sub\":\"u\",\"pad\":\"", 18);
        memcpy(payload + plen - 2, "\"}", 2);
        size_t n = mint(tok, HS256, payload, plen, SECRET);
        char err[64];
        int rc = jwt_verify(guarded(tok, n), n, main_key,
                            NOW, 0, &claims, err, sizeof err);
        int fits = n <= JWT_MAX_TOKEN;
        CHECK(n == (plen == 6083 ? 8192u : 8193u), "token of %zu bytes", n);
        CHECK(rc == (fits ? JWT_OK : JWT_MALFORMED), "%zu bytes: rc %d (%s)", n, rc, err);
        CHECK(fits ? claims.payload_len == plen : !strcmp(err, "token too long"), "%s", err);
    }
}

/* The deepest nesting allowed passes, one level more does not, and a
 * depth bomb is refused; in the header and in the payload. */
static void run_depth_limit(void)
{
    static char tok[TOKEN_CAP], doc[JWT_MAX_PAYLOAD];
    for (int where = 0; where < 2; where++)
        for (int levels = JWT_MAX_DEPTH - 1; levels <= 3000; levels += levels < 40 ? 1 : 1000) {
            /* {"sub":"u","a": levels arrays } uses levels + 1 levels */
            const char *head = where ? "{\"alg\":\"HS256\",\"a\":" : "{\"sub\":\"u\",\"a\":";
            size_t n = strlen(head);
            if (where && levels > 400)
                break; /* the header's own size limit would answer first */
            memcpy(doc, head, n);
            memset(doc + n, '[', (size_t)levels);
            memset(doc + n + levels, ']', (size_t)levels);
            memcpy(doc + n + 2 * levels, "}", 2);
            n = where ? mint(tok, doc, "{}", 2, SECRET) : mint(tok, HS256, doc, strlen(doc), SECRET);
            int rc = jwt_verify(guarded(tok, n), n, main_key, NOW, 0, &claims, NULL, 0);
            int ok = levels + 1 <= JWT_MAX_DEPTH;
            CHECK(rc == (ok ? JWT_OK : JWT_MALFORMED), "%s, %d levels: rc %d",
                  where ? "header" : "payload", levels + 1, rc);
        }
}

/* ---- jwt_pick_token ---- */

typedef struct pick_case {
    const char *name;
    const char *auth, *apikey; /* NULL: absent */
    int rc;
    const char *tok;
} pick_case;

static const pick_case pick_cases[] = {
    {"no headers", NULL, NULL, 0, NULL},
    {"Bearer", "Bearer abc.def.ghi", NULL, 1, "abc.def.ghi"},
    {"bearer in lower case", "bearer t", NULL, 1, "t"},
    {"BEARER, spaces around", "  BEARER   t  ", NULL, 1, "t"},
    {"Bearer then tab", "Bearer\tt", NULL, 1, "t"},
    {"Bearer wins over apikey", "Bearer a", "k", 1, "a"},
    {"Bearer alone", "Bearer", "k", -1, NULL},
    {"Bearer and spaces", "Bearer   ", NULL, -1, NULL},
    {"Bearer with two words", "Bearer a b", NULL, -1, NULL},
    {"Basic ignored, apikey used", "Basic dXNlcjpwYXNz", "k", 1, "k"},
    {"Basic alone: anonymous", "Basic dXNlcjpwYXNz", NULL, 0, NULL},
    {"Bearerx is another scheme", "Bearerx t", NULL, 0, NULL},
    {"empty Authorization", "", "k", 1, "k"},
    {"apikey alone", NULL, "k.e.y", 1, "k.e.y"},
    {"apikey trimmed", NULL, " \tk ", 1, "k"},
    {"empty apikey", NULL, "", -1, NULL},
    {"apikey with a space", NULL, "a b", -1, NULL},
};

static void run_pick_case(const pick_case *c)
{
    static char both[256];
    size_t an = c->auth ? strlen(c->auth) : 0, kn = c->apikey ? strlen(c->apikey) : 0;
    const char *tok = NULL;
    size_t tok_len = 0;
    /* The apikey against the guard page, the Authorization value right before it. */
    memcpy(both, c->auth ? c->auth : "", an);
    memcpy(both + an, c->apikey ? c->apikey : "", kn);
    char *g = guarded(both, an + kn);
    int rc = jwt_pick_token(c->auth ? g : NULL, an, c->apikey ? g + an : NULL, kn, &tok, &tok_len);
    CHECK(rc == c->rc, "rc %d, want %d", rc, c->rc);
    CHECK(rc != 1 || (tok_len == strlen(c->tok) && !memcmp(tok, c->tok, tok_len)), "token '%.*s'",
          (int)tok_len, tok);
}

static void run_strerror(void)
{
    static const struct {
        int rc;
        const char *msg;
    } m[] = {{JWT_OK, "ok"}, {JWT_MALFORMED, "invalid token"},
             {JWT_BAD_ALG, "unsupported token algorithm"},
             {JWT_BAD_SIGNATURE, "invalid token signature"}, {JWT_EXPIRED, "token expired"},
             {JWT_NOT_YET_VALID, "token not yet valid"}, {-99, "unknown"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        CHECK(!strcmp(jwt_strerror(m[i].rc), m[i].msg), "%d: '%s'", m[i].rc, jwt_strerror(m[i].rc));
}

/* jwt_check_aud on claims whose payload is given as is. */
static void run_aud(void)
{
    static const struct {
        const char *payload;
        int ok;
    } m[] = {{"{\"sub\":\"u\"}", 1},
             {"{\"aud\":\"authenticated\"}", 1},
             {"{\"aud\":[\"x\",\"authenticated\"]}", 1},
             {"{\"aud\":[]}", 0},
             {"{\"aud\":\"authenticatedx\"}", 0},
             {"{\"aud\":\"other\"}", 0},
             {"{\"aud\":[\"x\",\"y\"]}", 0},
             {"{\"aud\":42}", 0},
             {"{\"aud\":null}", 0},
             {"{\"aud\":[\"authenticated\",1]}", 0},
             {"{\"aud\":[\"authenticated\"", 0}};
    static jwt_claims c;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        c.payload_len = strlen(m[i].payload);
        memcpy(c.payload, m[i].payload, c.payload_len + 1);
        int ok = jwt_check_aud(&c, "authenticated") == 0;
        CHECK(ok == m[i].ok, "%s: %s", m[i].payload, ok ? "accepted" : "refused");
    }
}

/* ---- json_scan ---- */

typedef struct num_case {
    const char *in;
    int ok;
    int64_t lo, hi;
} num_case;

#define LIM JSON_NUM_LIMIT

static const num_case num_cases[] = {
    {"0", 1, 0, 0}, {"-0", 1, 0, 0}, {"7", 1, 7, 7}, {"-7", 1, -7, -7},
    {"1.5", 1, 1, 2}, {"-1.5", 1, -2, -1}, {"1.0", 1, 1, 1}, {"0.0001", 1, 0, 1},
    {"-0.0001", 1, -1, 0}, {"1e3", 1, 1000, 1000}, {"1E+3", 1, 1000, 1000},
    {"15e-1", 1, 1, 2}, {"100e-2", 1, 1, 1}, {"0e5", 1, 0, 0}, {"1.7e9", 1, NOW, NOW},
    {"17000000005e-1", 1, NOW, NOW + 1}, {"1700000000.000", 1, NOW, NOW},
    {"0.000000000000000000000000000001e30", 1, 1, 1},
    {"999999999999999999", 1, 999999999999999999, 999999999999999999},
    {"123456789012345678.9", 1, 123456789012345678, 123456789012345679},
    {"1e18", 1, LIM, LIM}, {"1e19", 1, LIM, LIM}, {"-1e400", 1, -LIM, -LIM},
    {"1234567890123456789", 1, LIM, LIM}, {"-9999999999999999999.5", 1, -LIM, -LIM},
    {"99999999999999999999999", 1, LIM, LIM}, {"1e-400", 1, 0, 1}, {"-1e-99999999999", 1, -1, 0}, {"0e99999999999", 1, 0, 0},
    {"-0.0e-5", 1, 0, 0},
    {"0000000000000000000000000000000000000000000000000000000000000001", 0, 0, 0},
    {"", 0, 0, 0}, {"-", 0, 0, 0}, {"+1", 0, 0, 0}, {".5", 0, 0, 0}, {"1.", 0, 0, 0},
    {"1e", 0, 0, 0}, {"1e+", 0, 0, 0}, {"01", 0, 0, 0}, {"-01", 0, 0, 0}, {"0x10", 0, 0, 0},
    {"1.5.5", 0, 0, 0}, {"Infinity", 0, 0, 0}, {"NaN", 0, 0, 0}, {"\"1\"", 0, 0, 0},
    {"1 2", 0, 0, 0},
};

static void run_num_case(const num_case *c)
{
    json_scan s;
    int64_t lo = 42, hi = 42;
    json_scan_init(&s, guarded(c->in, strlen(c->in)), strlen(c->in));
    int ok = json_number(&s, &lo, &hi) == 0 && json_end(&s) == 0;
    CHECK(ok == c->ok, "ok %d", ok);
    CHECK(!ok || (lo == c->lo && hi == c->hi), "lo %lld hi %lld", (long long)lo, (long long)hi);
}

typedef struct str_case {
    const char *in;
    int rc;          /* of json_string with a 8-byte buffer */
    const char *out; /* decoded (first 8 bytes when rc is 1) */
    size_t out_len;  /* 0: strlen(out) */
} str_case;

static const str_case str_cases[] = {
    {"\"\"", 0, "", 0}, {"\"abc\"", 0, "abc", 0}, {" \t\r\n\"a\"", 0, "a", 0},
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0, "\"\\/\b\f\n\r\t", 0},
    {"\"\\u0041\\u00e9\"", 0, "A\xc3\xa9", 0}, {"\"\\u20AC\"", 0, "\xe2\x82\xac", 0},
    {"\"\\ud83d\\ude00\"", 0, "\xf0\x9f\x98\x80", 0}, {"\"\\u0000\"", 0, "\0", 1},
    {"\"caf\xc3\xa9\"", 0, "caf\xc3\xa9", 0}, {"\"12345678\"", 0, "12345678", 0},
    {"\"123456789\"", 1, "12345678", 0}, {"\"1234567\\u00e9\"", 1, "1234567\xc3", 0},
    {"\"abc", JSON_BAD, NULL, 0}, {"\"a\\\"", JSON_BAD, NULL, 0}, {"\"\\", JSON_BAD, NULL, 0},
    {"\"\\x41\"", JSON_BAD, NULL, 0}, {"\"\\u00\"", JSON_BAD, NULL, 0},
    {"\"\\u00g0\"", JSON_BAD, NULL, 0}, {"\"\\ud83d\"", JSON_BAD, NULL, 0},
    {"\"\\ud83dx\"", JSON_BAD, NULL, 0}, {"\"\\ud83d\\u0041\"", JSON_BAD, NULL, 0},
    {"\"\\ude00\"", JSON_BAD, NULL, 0}, {"\"a\nb\"", JSON_BAD, NULL, 0},
    {"\"a\x01\"", JSON_BAD, NULL, 0}, {"'a'", JSON_BAD, NULL, 0}, {"a", JSON_BAD, NULL, 0},
    {"", JSON_BAD, NULL, 0},
};

static void run_str_case(const str_case *c)
{
    json_scan s;
    char out[8];
    size_t len = 99;
    json_scan_init(&s, guarded(c->in, strlen(c->in)), strlen(c->in));
    int rc = json_string(&s, out, sizeof out, &len);
    CHECK(rc == c->rc, "rc %d, want %d", rc, c->rc);
    if (rc < 0)
        return;
    size_t want = c->out_len ? c->out_len : strlen(c->out);
    CHECK(len == want && !memcmp(out, c->out, want), "decoded '%.*s' (%zu)", (int)len, out, len);
    CHECK(json_end(&s) == 0, "cursor not after the string");
}

typedef struct skip_case {
    const char *in;
    int depth;
    int ok;     /* json_skip then json_end both succeed */
    size_t len; /* 0: strlen(in) */
} skip_case;

static const skip_case skip_cases[] = {
    {"null", 0, 1, 0}, {"true", 0, 1, 0}, {"false", 0, 1, 0}, {"-1.5e3", 0, 1, 0}, {"\"s\"", 0, 1, 0},
    {"{}", 1, 1, 0}, {"[]", 1, 1, 0}, {" { \"a\" : [ 1 , { } , \"}\" ] } ", 3, 1, 0},
    {"{\"a\":[1,{}]}", 2, 0, 0}, {"[[[]]]", 3, 1, 0}, {"[[[]]]", 2, 0, 0}, {"{}", 0, 0, 0},
    {"[1,]", 1, 0, 0}, {"[,1]", 1, 0, 0}, {"[1 2]", 1, 0, 0}, {"{\"a\":1,}", 1, 0, 0}, {"{,}", 1, 0, 0},
    {"{\"a\"}", 1, 0, 0}, {"{\"a\" 1}", 1, 0, 0}, {"{a:1}", 1, 0, 0}, {"{'a':1}", 1, 0, 0},
    {"{\"a\":1", 1, 0, 0}, {"[1", 1, 0, 0}, {"[", 1, 0, 0}, {"{", 1, 0, 0}, {"tru", 0, 0, 0},
    {"nul", 0, 0, 0}, {"True", 0, 0, 0}, {"truex", 0, 0, 0}, {"[1]]", 1, 0, 0}, {"{}{}", 1, 0, 0},
    {"", 0, 0, 0}, {"   ", 0, 0, 0}, {"\xef\xbb\xbf{}", 1, 0, 0}, {"{\"a\":1}\0", 1, 0, 8},
};

static void run_skip_case(const skip_case *c)
{
    json_scan s;
    size_t n = c->len ? c->len : strlen(c->in);
    json_scan_init(&s, guarded(c->in, n), n);
    int ok = json_skip(&s, c->depth) == 0 && json_end(&s) == 0;
    CHECK(ok == c->ok, "'%s' depth %d: ok %d", c->in, c->depth, ok);
}

/* ---- main ---- */

#define RUN(label, table, fn)                                                 \
    for (size_t i = 0; i < COUNT(table); i++) {                               \
        snprintf(name, sizeof name, "%s: %s", label, table[i].name);          \
        case_name = name;                                                     \
        fn(&table[i]);                                                        \
        finish_case();                                                        \
    }

/* The cache of verified tokens: a hit gives the same claims as verifying;
 * another token (even one byte off, same length) misses; replacing a slot
 * works; long tokens are not kept. */
static void run_cache(void)
{
    static char tok[TOKEN_CAP], other[TOKEN_CAP];
    const char *payload = "{\"sub\":\"u-1\",\"role\":\"authenticated\",\"exp\":1700000100,"
                          "\"user_metadata\":{\"role\":\"admin\"}}";
    size_t n = mint(tok, HS256, payload, strlen(payload), SECRET);
    static jwt_claims verified, cached;
    char err[128];
    CHECK(jwt_verify(tok, n, main_key, NOW, 0, &verified, err, sizeof err) == JWT_OK, "verify: %s", err);
    jwt_cache *cache = jwt_cache_new(); /* freed below; a failed check leaks it, and ASan says so too */
    CHECK(cache, "jwt_cache_new");
    CHECK(!jwt_cache_get(cache, tok, n, &cached), "empty cache misses");
    jwt_cache_put(cache, tok, n, &verified);
    memset(&cached, 0x5a, sizeof cached);
    CHECK(jwt_cache_get(cache, tok, n, &cached), "hit after put");
    CHECK(strcmp(cached.uid, "u-1") == 0 && strcmp(cached.role, "authenticated") == 0 && cached.is_admin,
          "claims: %s %s %d", cached.uid, cached.role, cached.is_admin);
    CHECK(cached.has_exp && cached.exp == 1700000100 && !cached.has_nbf, "exp and nbf kept");
    CHECK(cached.payload_len == verified.payload_len && strcmp(cached.payload, verified.payload) == 0,
          "payload kept: %s", cached.payload);
    CHECK(jwt_check_time(&cached, NOW + 101, 0, err, sizeof err) == JWT_EXPIRED, "a cached token still expires");
    memcpy(other, tok, n + 1);
    other[n - 1] = other[n - 1] == 'A' ? 'B' : 'A'; /* a forged signature of the same length */
    CHECK(!jwt_cache_get(cache, other, n, &cached), "one byte off misses");
    jwt_cache_put(cache, tok, n, &verified); /* again: the slot is replaced, not leaked */
    CHECK(jwt_cache_get(cache, tok, n, &cached), "hit after a second put");
    memset(other, 'a', JWT_CACHE_MAX_TOKEN + 1);
    jwt_cache_put(cache, other, JWT_CACHE_MAX_TOKEN + 1, &verified);
    int kept = jwt_cache_get(cache, other, JWT_CACHE_MAX_TOKEN + 1, &cached);
    jwt_cache_free(cache);
    CHECK(!kept, "long tokens are not kept");
}

int main(void)
{
    char name[160];
    arena_init();
    main_key = jwt_key_new((const unsigned char *)SECRET, strlen(SECRET));
    if (!main_key) {
        fprintf(stderr, "test_jwt: jwt_key_new failed\n");
        return 2;
    }
    RUN("verify", jwt_cases, run_jwt_case);
    RUN("pick", pick_cases, run_pick_case);
    for (size_t i = 0; i < COUNT(num_cases); i++) {
        snprintf(name, sizeof name, "json_number '%s'", num_cases[i].in);
        case_name = name;
        run_num_case(&num_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(str_cases); i++) {
        snprintf(name, sizeof name, "json_string '%s'", str_cases[i].in);
        case_name = name;
        run_str_case(&str_cases[i]);
        finish_case();
    }
    for (size_t i = 0; i < COUNT(skip_cases); i++) {
        snprintf(name, sizeof name, "json_skip '%s'", skip_cases[i].in);
        case_name = name;
        run_skip_case(&skip_cases[i]);
        finish_case();
    }
    static const struct {
        const char *name;
        void (*fn)(void);
    } props[] = {{"every prefix and one-byte change refused", run_damage_everywhere},
                 {"every truncated payload refused", run_truncated_payloads},
                 {"token size limit", run_size_limit},
                 {"nesting depth limit", run_depth_limit},
                 {"jwt_strerror", run_strerror},
                 {"jwt_check_aud", run_aud},
                 {"cache of verified tokens", run_cache}};
    for (size_t i = 0; i < COUNT(props); i++) {
        case_name = props[i].name;
        props[i].fn();
        finish_case();
    }
    jwt_key_free(main_key);
    return report();
}
