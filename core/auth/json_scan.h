/* json_scan.h: a strict, bounded, non-allocating JSON reader for pulling a
 * few fields out of a small document (the JWT header and payload) without
 * building a tree.  Not a JSON library: whoever needs the whole document
 * hands the same bytes to Lua (cjson).  Uses nothing but the C library.
 *
 * A json_scan is a cursor over buf[0..len).  Every function reads one value
 * at the cursor (after optional whitespace), advances past it, and returns
 * 0, or JSON_BAD when the input is not RFC 8259 JSON there (the cursor is
 * then unspecified).  Nothing reads past `end`.  Strings may hold any byte
 * >= 0x80 (not checked as UTF-8); escapes are decoded, a lone UTF-16
 * surrogate is JSON_BAD. */
#ifndef STRATA_JSON_SCAN_H
#define STRATA_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSON_BAD (-1)           /* malformed, too deep, or over a bound */
#define JSON_KEY_MAX 64         /* longest object key (decoded) passed to a member callback */
#define JSON_NUM_TEXT_MAX 64    /* longest number text json_number converts */
#define JSON_NUM_LIMIT 1000000000000000000LL /* |value| saturates here (1e18) */

typedef struct json_scan {
    const char *p;   /* next byte to read */
    const char *end; /* one past the last byte */
} json_scan;

/* Starts a cursor at buf[0..len). */
void json_scan_init(json_scan *s, const char *buf, size_t len);

/* Skips whitespace; answers the next byte, or -1 at the end. */
int json_peek(json_scan *s);

/* Reads a string into out[0..cap), decoding escapes (\u0000 becomes a NUL
 * byte: callers wanting C strings check with memchr).  *len gets the
 * decoded length.  Returns 0, 1 when it did not fit (the whole string is
 * still checked and consumed; out holds its first cap bytes and *len is
 * cap), or JSON_BAD, also when the value is not a string. */
int json_string(json_scan *s, char *out, size_t cap, size_t *len);

/* Reads a number and gives the integers just below and above it: *lo =
 * floor(v), *hi = ceil(v), both clamped to [-JSON_NUM_LIMIT,
 * JSON_NUM_LIMIT].  Exact for any JSON number (fractions and exponents
 * included, no floating point, no locale).  JSON_BAD when the value is not
 * a number or its text is longer than JSON_NUM_TEXT_MAX. */
int json_number(json_scan *s, int64_t *lo, int64_t *hi);

/* Skips one value of any type, checking it.  `depth` is how many levels of
 * objects/arrays may still open (0: only scalars); deeper is JSON_BAD. */
int json_skip(json_scan *s, int depth);

/* Called by json_object for each member, with the cursor at its value;
 * `depth` is what the value may use (pass it on to json_skip/json_object).
 * key[0..klen) is the decoded key, NUL-terminated; key is NULL when the key
 * is longer than JSON_KEY_MAX (no field we look for is).  The callback must
 * consume exactly one value (json_skip when it does not care) and return 0,
 * or JSON_BAD to stop. */
typedef int (*json_member_fn)(json_scan *s, int depth, const char *key, size_t klen,
                              void *ctx);

/* Reads an object, calling fn for each member in order; `depth` as for
 * json_skip, counting this object (so it must be >= 1).  Keys are not
 * checked for duplicates: callbacks that care do it.  JSON_BAD when the
 * value is not an object, is malformed, or fn failed. */
int json_object(json_scan *s, int depth, json_member_fn fn, void *ctx);

/* 0 when only whitespace is left, else JSON_BAD. */
int json_end(json_scan *s);

#endif
