/* json_scan.c: the bounded JSON reader declared in json_scan.h.  Uses only
 * the C library (no allocation, no locale, no floating point).  Recursion
 * is bounded by the callers' depth argument. */
#include "json_scan.h"

#include "base/hex.h"

#include <string.h>

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

void json_scan_init(json_scan *s, const char *buf, size_t len)
{
    s->p = buf;
    s->end = buf + len;
}

int json_peek(json_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
    return s->p < s->end ? (unsigned char)*s->p : -1;
}

int json_end(json_scan *s)
{
    return json_peek(s) < 0 ? 0 : JSON_BAD;
}

/* A string being decoded: bytes past cap are counted, not stored. */
typedef struct sink {
    char *out;
    size_t cap;
    size_t n;
} sink;

static void put(sink *k, unsigned c)
{
    if (k->n < k->cap)
        k->out[k->n] = (char)c;
    k->n++;
}

static void put_utf8(sink *k, unsigned cp)
{
    if (cp < 0x80) {
        put(k, cp);
    } else if (cp < 0x800) {
        put(k, 0xC0 | cp >> 6);
        put(k, 0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        put(k, 0xE0 | cp >> 12);
        put(k, 0x80 | (cp >> 6 & 0x3F));
        put(k, 0x80 | (cp & 0x3F));
    } else {
        put(k, 0xF0 | cp >> 18);
        put(k, 0x80 | (cp >> 12 & 0x3F));
        put(k, 0x80 | (cp >> 6 & 0x3F));
        put(k, 0x80 | (cp & 0x3F));
    }
}

static int hex4(json_scan *s, unsigned *v)
{
    if (s->end - s->p < 4)
        return JSON_BAD;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_digit((unsigned char)s->p[i]);
        if (h < 0)
            return JSON_BAD;
        *v = *v << 4 | (unsigned)h;
    }
    s->p += 4;
    return 0;
}

/* \uXXXX (cursor after the 'u'), joining a surrogate pair: a lone half
 * would have no UTF-8 form, and cjson would decode it differently. */
static int unicode_escape(json_scan *s, sink *k)
{
    unsigned cp, low;
    if (hex4(s, &cp) < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return JSON_BAD;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
            return JSON_BAD;
        s->p += 2;
        if (hex4(s, &low) < 0 || low < 0xDC00 || low > 0xDFFF)
            return JSON_BAD;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    put_utf8(k, cp);
    return 0;
}

/* One escape; the cursor is after the backslash. */
static int escape(json_scan *s, sink *k)
{
    if (s->p == s->end)
        return JSON_BAD;
    char c = *s->p++;
    switch (c) {
    case '"': case '\\': case '/': put(k, (unsigned char)c); return 0;
    case 'b': put(k, '\b'); return 0;
    case 'f': put(k, '\f'); return 0;
    case 'n': put(k, '\n'); return 0;
    case 'r': put(k, '\r'); return 0;
    case 't': put(k, '\t'); return 0;
    case 'u': return unicode_escape(s, k);
    default: return JSON_BAD;
    }
}

int json_string(json_scan *s, char *out, size_t cap, size_t *len)
{
    sink k = {out, cap, 0};
    if (json_peek(s) != '"')
        return JSON_BAD;
    s->p++;
    for (;;) {
        if (s->p == s->end)
            return JSON_BAD;
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return JSON_BAD;
        if (c != '\\')
            put(&k, c);
        else if (escape(s, &k) < 0)
            return JSON_BAD;
    }
    *len = k.n <= cap ? k.n : cap;
    return k.n <= cap ? 0 : 1;
}

/* Checks the number grammar of RFC 8259 section 6 and moves past it. */
static int scan_number(json_scan *s)
{
    const char *p = s->p, *e = s->end;
    if (p < e && *p == '-')
        p++;
    if (p == e || !is_digit(*p))
        return JSON_BAD;
    if (*p == '0')
        p++;
    else
        while (p < e && is_digit(*p))
            p++;
    if (p < e && *p == '.') {
        if (++p == e || !is_digit(*p))
            return JSON_BAD;
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        if (++p < e && (*p == '+' || *p == '-'))
            p++;
        if (p == e || !is_digit(*p))
            return JSON_BAD;
        while (p < e && is_digit(*p))
            p++;
    }
    s->p = p;
    return 0;
}

/* The value of checked number text p[0..e) is D * 10^x, D being its
 * significant digits: the first nd + x of them are the integer part, any
 * other non-zero digit makes a fraction. */
static void number_value(const char *p, const char *e, int64_t *lo, int64_t *hi)
{
    char dig[JSON_NUM_TEXT_MAX];
    long nd = 0, x = 0, ex = 0;
    int neg = *p == '-', ex_neg = 0, frac = 0;
    p += neg;
    for (; p < e && is_digit(*p); p++)
        if (nd || *p != '0')
            dig[nd++] = *p;
    if (p < e && *p == '.')
        for (p++; p < e && is_digit(*p); p++, x--)
            if (nd || *p != '0')
                dig[nd++] = *p;
    if (p < e) { /* the exponent; past 1e5 every result is already 0 or saturated */
        if (*++p == '+' || *p == '-')
            ex_neg = *p++ == '-';
        for (; p < e; p++)
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
    }
    x += ex_neg ? -ex : ex;
    long k = nd + x;
    int64_t ip = 0;
    if (nd > 0 && k > 18) {
        ip = JSON_NUM_LIMIT;
    } else if (nd > 0) { /* so at most 18 + 64 steps, whatever the exponent */
        for (long i = 0; i < k; i++)
            ip = ip * 10 + (i < nd ? dig[i] - '0' : 0);
        for (long i = k > 0 ? k : 0; i < nd; i++)
            frac |= dig[i] != '0';
    }
    *lo = neg ? -(ip + frac) : ip;
    *hi = neg ? -ip : ip + frac;
}

int json_number(json_scan *s, int64_t *lo, int64_t *hi)
{
    if (json_peek(s) < 0)
        return JSON_BAD;
    const char *start = s->p;
    if (scan_number(s) < 0 || s->p - start > JSON_NUM_TEXT_MAX)
        return JSON_BAD;
    number_value(start, s->p, lo, hi);
    return 0;
}

static int literal(json_scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return JSON_BAD;
    s->p += n;
    return 0;
}

/* After a member or element: 1 on ',' (another follows), 0 on `close`,
 * each consumed; JSON_BAD otherwise. */
static int separator(json_scan *s, int close)
{
    int c = json_peek(s);
    if (c != ',' && c != close)
        return JSON_BAD;
    s->p++;
    return c == ',';
}

static int skip_array(json_scan *s, int depth)
{
    if (depth < 1)
        return JSON_BAD;
    s->p++;
    if (json_peek(s) == ']') {
        s->p++;
        return 0;
    }
    int more = 1;
    while (more > 0)
        if (json_skip(s, depth - 1) < 0 || (more = separator(s, ']')) < 0)
            return JSON_BAD;
    return 0;
}

static int skip_member(json_scan *s, int depth, const char *key, size_t klen, void *ctx)
{
    (void)key;
    (void)klen;
    (void)ctx;
    return json_skip(s, depth);
}

int json_skip(json_scan *s, int depth)
{
    size_t n;
    int c = json_peek(s);
    switch (c) {
    case '"': return json_string(s, NULL, 0, &n) < 0 ? JSON_BAD : 0;
    case '{': return json_object(s, depth, skip_member, NULL);
    case '[': return skip_array(s, depth);
    case 't': return literal(s, "true");
    case 'f': return literal(s, "false");
    case 'n': return literal(s, "null");
    default: return c == '-' || is_digit(c) ? scan_number(s) : JSON_BAD;
    }
}

int json_object(json_scan *s, int depth, json_member_fn fn, void *ctx)
{
    char key[JSON_KEY_MAX + 1];
    size_t klen;
    if (depth < 1 || json_peek(s) != '{')
        return JSON_BAD;
    s->p++;
    if (json_peek(s) == '}') {
        s->p++;
        return 0;
    }
    int more = 1;
    while (more > 0) {
        int r = json_string(s, key, JSON_KEY_MAX, &klen);
        if (r < 0 || json_peek(s) != ':')
            return JSON_BAD;
        s->p++;
        key[klen] = '\0';
        if (fn(s, depth - 1, r ? NULL : key, klen, ctx) < 0 || (more = separator(s, '}')) < 0)
            return JSON_BAD;
    }
    return 0;
}
