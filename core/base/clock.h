/* clock.h: the monotonic clock, for durations and deadlines (never for
 * dates).  One definition, so every room measures time the same way. */
#ifndef STRATA_CLOCK_H
#define STRATA_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock on Linux */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t mono_us(void)
{
    return mono_ns() / 1000u;
}

static inline uint64_t mono_ms(void)
{
    return mono_ns() / 1000000u;
}

/* The tick-granular clock (a few ms, but no system call): for checks made
 * often, such as a script's time limit. */
static inline uint64_t mono_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
