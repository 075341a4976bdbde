/* uuid.c: the uuid text syntax, as PostgreSQL's uuid type reads and writes it. */
#include "uuid.h"

#include "base/hex.h"

#include <string.h>

int rs_uuid_parse(const char *s, size_t n, rs_uuid *out)
{
    rs_uuid u;
    size_t i = 0;
    int braces = n > 0 && s[0] == '{';
    i += (size_t)braces;
    for (int k = 0; k < 16; k++) {
        if (n - i < 2)
            return -1;
        int hi = hex_digit((unsigned char)s[i]), lo = hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        u.b[k] = (uint8_t)(hi << 4 | lo);
        i += 2;
        /* PostgreSQL's string_to_uuid: a '-' may follow any group of four. */
        if (i < n && s[i] == '-' && k % 2 == 1 && k < 15)
            i++;
    }
    if (braces) {
        if (i >= n || s[i] != '}')
            return -1;
        i++;
    }
    if (i != n)
        return -1;
    *out = u;
    return 0;
}

void rs_uuid_format(const rs_uuid *u, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int k = 0; k < 16; k++) {
        if (k == 4 || k == 6 || k == 8 || k == 10)
            *p++ = '-';
        *p++ = hex[u->b[k] >> 4];
        *p++ = hex[u->b[k] & 15];
    }
    *p = '\0';
}

int rs_uuid_cmp(const rs_uuid *a, const rs_uuid *b)
{
    return memcmp(a->b, b->b, sizeof a->b);
}
