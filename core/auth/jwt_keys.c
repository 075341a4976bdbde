/* jwt_keys.c: ES256 / RS256 keys for JWTs (jwt_keys.h) on OpenSSL's EVP
 * API: PEM loading, RFC 7638 thumbprints, the JWKS text, and JWS
 * signatures (ECDSA's DER form converted to and from the r || s that RFC
 * 7518 section 3.4 prescribes). */
#include "jwt_keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 16

typedef struct jkey {
    EVP_PKEY *pkey;        /* owned */
    int alg;               /* JWT_ALG_ES256 or JWT_ALG_RS256 */
    char kid[48];          /* RFC 7638 thumbprint, base64url */
    char *jwk;             /* owned; the public JWK as JSON */
} jkey;

struct jwt_keyset {
    jkey keys[MAX_KEYS];
    int nkeys;
    int signing;           /* index of the signing key, or -1 */
    char *jwks;            /* owned */
};

int jwt_alg_of(const char *name, size_t len)
{
    if (len == 5 && memcmp(name, "HS256", 5) == 0)
        return JWT_ALG_HS256;
    if (len == 5 && memcmp(name, "ES256", 5) == 0)
        return JWT_ALG_ES256;
    if (len == 5 && memcmp(name, "RS256", 5) == 0)
        return JWT_ALG_RS256;
    return 0;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
    }
    out[o] = '\0';
}

/* A big-number parameter of pkey, big-endian in `pad` bytes (0: its own
 * length), base64url into out (at least 4/3 of 1024 bytes + 1).  0 or -1. */
static int param_b64(const EVP_PKEY *pkey, const char *name, int pad, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char bytes[1024];
    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        return -1;
    int n = pad ? pad : BN_num_bytes(bn);
    int ok = n > 0 && n <= (int)sizeof bytes && BN_bn2binpad(bn, bytes, n) == n;
    BN_free(bn);
    if (!ok)
        return -1;
    b64url(bytes, (size_t)n, out);
    return 0;
}

/* Fills k's alg, kid and jwk from its public key.  0 or -1 with err. */
static int describe(jkey *k, const char *path, char *err, size_t errlen)
{
    char big[2][1400];
    char thumb_in[3000], jwk[3200];
    int id = EVP_PKEY_get_base_id(k->pkey);
    if (id == EVP_PKEY_EC) {
        char group[32] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) ||
            strcmp(group, "prime256v1") != 0) {
            snprintf(err, errlen, "%s: an EC key must be on P-256 (prime256v1) for ES256", path);
            return -1;
        }
        if (param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32, big[0]) < 0 ||
            param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32, big[1]) < 0)
            goto bad;
        k->alg = JWT_ALG_ES256;
        snprintf(thumb_in, sizeof thumb_in, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", big[0],
                 big[1]);
    } else if (id == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(k->pkey) < 2048) {
            snprintf(err, errlen, "%s: an RSA key must have at least 2048 bits", path);
            return -1;
        }
        if (EVP_PKEY_get_bits(k->pkey) > 8192 || param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0, big[0]) < 0 ||
            param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0, big[1]) < 0)
            goto bad;
        k->alg = JWT_ALG_RS256;
        snprintf(thumb_in, sizeof thumb_in, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", big[1], big[0]);
    } else {
        snprintf(err, errlen, "%s: not an EC (P-256) or RSA key", path);
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(thumb_in, strlen(thumb_in), md, &mdlen, EVP_sha256(), NULL))
        goto bad;
    b64url(md, mdlen, k->kid);
    if (k->alg == JWT_ALG_ES256)
        snprintf(jwk, sizeof jwk,
                 "{\"kty\":\"EC\",\"kid\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\",\"key_ops\":[\"verify\"],"
                 "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                 k->kid, big[0], big[1]);
    else
        snprintf(jwk, sizeof jwk,
                 "{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\",\"use\":\"sig\",\"key_ops\":[\"verify\"],"
                 "\"n\":\"%s\",\"e\":\"%s\"}",
                 k->kid, big[0], big[1]);
    if (!(k->jwk = strdup(jwk)))
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "%s: cannot read the key's public parameters", path);
    return -1;
}

/* A private key, or (when want_private is 0) a public one.  NULL and err. */
static EVP_PKEY *read_pem(const char *path, int want_private, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (!k && !want_private) {
        rewind(f);
        k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    }
    fclose(f);
    if (!k)
        snprintf(err, errlen, "%s: not a PEM %s key", path, want_private ? "private" : "private or public");
    return k;
}

static int add_key(jwt_keyset *ks, const char *path, int want_private, char *err, size_t errlen)
{
    if (ks->nkeys == MAX_KEYS) {
        snprintf(err, errlen, "%s: more than %d JWT keys", path, MAX_KEYS);
        return -1;
    }
    jkey *k = &ks->keys[ks->nkeys];
    if (!(k->pkey = read_pem(path, want_private, err, errlen)))
        return -1;
    ks->nkeys++; /* from here jwt_keyset_free frees it */
    if (describe(k, path, err, errlen) < 0)
        return -1;
    for (int i = 0; i < ks->nkeys - 1; i++)
        if (strcmp(ks->keys[i].kid, k->kid) == 0) {
            snprintf(err, errlen, "%s: the same key is listed twice", path);
            return -1;
        }
    return 0;
}

static int build_jwks(jwt_keyset *ks)
{
    size_t len = 16;
    for (int i = 0; i < ks->nkeys; i++)
        len += strlen(ks->keys[i].jwk) + 1;
    if (!(ks->jwks = malloc(len)))
        return -1;
    strcpy(ks->jwks, "{\"keys\":[");
    for (int i = 0; i < ks->nkeys; i++) {
        if (i)
            strcat(ks->jwks, ",");
        strcat(ks->jwks, ks->keys[i].jwk);
    }
    strcat(ks->jwks, "]}");
    return 0;
}

jwt_keyset *jwt_keyset_load(int alg, const char *signing_path, const char *accepted, char *err, size_t errlen)
{
    jwt_keyset *ks = calloc(1, sizeof *ks);
    if (!ks) {
        snprintf(err, errlen, "jwt keys: out of memory");
        return NULL;
    }
    ks->signing = -1;
    if (signing_path && *signing_path) {
        if (add_key(ks, signing_path, 1, err, errlen) < 0)
            goto fail;
        if (ks->keys[0].alg != alg) {
            snprintf(err, errlen, "%s: the key's algorithm is not jwt_signing_alg", signing_path);
            goto fail;
        }
        ks->signing = 0;
    }
    for (const char *p = accepted; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char path[1024];
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= sizeof path) {
            snprintf(err, errlen, "jwt_accepted_keys: a path is too long");
            goto fail;
        }
        memcpy(path, p, n);
        path[n] = '\0';
        if (n && add_key(ks, path, 0, err, errlen) < 0)
            goto fail;
        p = comma ? comma + 1 : p + strlen(p);
    }
    if (build_jwks(ks) < 0) {
        snprintf(err, errlen, "jwt keys: out of memory");
        goto fail;
    }
    return ks;
fail:
    jwt_keyset_free(ks);
    return NULL;
}

void jwt_keyset_free(jwt_keyset *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < ks->nkeys; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].jwk);
    }
    free(ks->jwks);
    free(ks);
}

const char *jwt_keyset_jwks(const jwt_keyset *ks)
{
    return ks && ks->jwks ? ks->jwks : "{\"keys\":[]}";
}

const char *jwt_keyset_kid(const jwt_keyset *ks)
{
    return ks && ks->signing >= 0 ? ks->keys[ks->signing].kid : NULL;
}

const char *jwt_keyset_alg(const jwt_keyset *ks)
{
    if (!ks || ks->signing < 0)
        return NULL;
    return ks->keys[ks->signing].alg == JWT_ALG_ES256 ? "ES256" : "RS256";
}

/* r || s (32 bytes each) as the DER ECDSA-Sig-Value OpenSSL verifies;
 * its length, or -1. */
static int raw_to_der(const unsigned char *sig, size_t n, unsigned char *der, size_t cap)
{
    if (n != 64)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    int len = i2d_ECDSA_SIG(es, NULL);
    unsigned char *p = der;
    if (len <= 0 || (size_t)len > cap || i2d_ECDSA_SIG(es, &p) != len)
        len = -1;
    ECDSA_SIG_free(es); /* frees r and s */
    return len;
}

int jwt_keyset_verify(const jwt_keyset *ks, int alg, const char *kid, size_t kidlen, const unsigned char *in,
                      size_t n, const unsigned char *sig, size_t siglen)
{
    const jkey *k = NULL;
    for (int i = 0; ks && i < ks->nkeys && !k; i++)
        if (strlen(ks->keys[i].kid) == kidlen && memcmp(ks->keys[i].kid, kid, kidlen) == 0)
            k = &ks->keys[i];
    if (!k)
        return -2;
    if (k->alg != alg)
        return -3;
    unsigned char der[80];
    if (alg == JWT_ALG_ES256) {
        int len = raw_to_der(sig, siglen, der, sizeof der);
        if (len < 0)
            return -1;
        sig = der;
        siglen = (size_t)len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, in, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

long jwt_keyset_sign(const jwt_keyset *ks, const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    if (!ks || ks->signing < 0)
        return -1;
    const jkey *k = &ks->keys[ks->signing];
    unsigned char der[JWT_MAX_SIG];
    size_t len = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, der, &len, in, n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    if (k->alg == JWT_ALG_RS256) {
        if (len > cap)
            return -1;
        memcpy(out, der, len);
        return (long)len;
    }
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *s;
    if (!es || cap < 64)
        goto bad;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32)
        goto bad;
    ECDSA_SIG_free(es);
    return 64;
bad:
    ECDSA_SIG_free(es);
    return -1;
}
