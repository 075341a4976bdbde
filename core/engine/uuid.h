/* uuid.h: PostgreSQL's uuid as 16 raw bytes in network order (the way
 * PostgreSQL stores and sorts it: memcmp order), its text input syntax and
 * its canonical text.  The one parser and formatter of the server: the
 * broker engine, the broker feed, the usage writer and the Lua bindings
 * all use these.  The names keep the rs_ prefix of the resolution engine,
 * whose API (resolve.h) is written in rs_uuid. */
#ifndef STRATA_UUID_H
#define STRATA_UUID_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_uuid {
    uint8_t b[16];
} rs_uuid;

/* Parses PostgreSQL's uuid input syntax from s[0..n): 32 hex digits (either
 * case), optionally '-' after any group of four, optionally within braces;
 * the canonical form is 8-4-4-4-12.  0, or -1 when s is not a uuid. */
int rs_uuid_parse(const char *s, size_t n, rs_uuid *out);

/* Writes the canonical lowercase form (36 characters) and a NUL. */
void rs_uuid_format(const rs_uuid *u, char out[37]);

/* memcmp order: the order of PostgreSQL's uuid type. */
int rs_uuid_cmp(const rs_uuid *a, const rs_uuid *b);

#endif
