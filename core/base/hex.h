/* hex.h: the value of a hexadecimal digit (either case), or -1. */
#ifndef STRATA_HEX_H
#define STRATA_HEX_H

static inline int hex_digit(int c)
{
    unsigned u = (unsigned)c;
    if (u - '0' < 10u)
        return (int)(u - '0');
    u |= 0x20;
    return u - 'a' < 6u ? (int)(u - 'a' + 10) : -1;
}

#endif
