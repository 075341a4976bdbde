/* test_harness.h: the small harness shared by the C unit test programs
 * (spec/c/test_*.c).  Test-only: everything here is static, so each
 * program that includes it gets its own copy; include it once, from the
 * program's single .c file.
 *
 * Cases.  A case is a void function.  Before calling it, the program sets
 * case_name (printed with every failure of the case); after it returns,
 * finish_case() counts the case as passed or failed and clears
 * case_failed for the next one.
 *
 * Checks.  CHECK(cond, fmt, ...) reports a false cond as one line
 * "FAIL <case_name>: <message>" on stdout (failf) and then leaves the void
 * test function at that first failure: by default it returns.  A program
 * whose test functions free their fixtures at a common label defines
 * HARNESS_CHECK_EXIT before including this header, e.g.
 *     #define HARNESS_CHECK_EXIT goto out
 * and CHECK jumps there instead.  failf() alone reports without leaving,
 * for loops that count failures before stopping; case_failed tells whether
 * the current case has failed so far.
 *
 * Guard page.  A program that defines ARENA_SIZE (a multiple of the page
 * size) and HARNESS_PROG (its name, for the error message) before
 * including this header also gets arena: ARENA_SIZE readable and writable
 * bytes from mmap, immediately followed by a PROT_NONE page, set up by
 * arena_init() (the program exits 2 if that fails).  guarded(src, n)
 * copies an input so that its last byte is the arena's last readable byte:
 * a parser reading (or writing) one byte past the input faults at once,
 * even where ASan would see a valid neighbouring allocation.
 *
 * Summary.  At the end, main() returns report(), which prints exactly one
 * line "N passed, N failed" and gives the exit status: 1 if any case
 * failed, else 0. */
#ifndef STRATA_TEST_HARNESS_H
#define STRATA_TEST_HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *case_name;
static int case_failed;
static int passed, failed;

/* Reports a failure of the current case and marks it failed. */
static inline void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", case_name);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    case_failed = 1;
}

#ifndef HARNESS_CHECK_EXIT
#define HARNESS_CHECK_EXIT return
#endif

/* Reports and leaves the (void) test function at the first failed check. */
#define CHECK(cond, ...)        \
    do {                        \
        if (!(cond)) {          \
            failf(__VA_ARGS__); \
            HARNESS_CHECK_EXIT; \
        }                       \
    } while (0)

/* Counts the case just run and clears case_failed for the next one. */
static inline void finish_case(void)
{
    if (case_failed)
        failed++;
    else
        passed++;
    case_failed = 0;
}

/* Prints the one summary line; main() returns its result. */
static inline int report(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#ifdef ARENA_SIZE
#include <sys/mman.h>
#include <unistd.h>

#ifndef HARNESS_PROG
#error "define HARNESS_PROG (the program's name) with ARENA_SIZE"
#endif

static char *arena;

static inline void arena_init(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, ARENA_SIZE + (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || ARENA_SIZE % page != 0 ||
        mprotect(m + ARENA_SIZE, (size_t)page, PROT_NONE) != 0) {
        perror(HARNESS_PROG ": guard page");
        exit(2);
    }
    arena = m;
}

/* Copies src[0..n) so that its last byte is the last readable one. */
static inline char *guarded(const void *src, size_t n)
{
    char *p = arena + ARENA_SIZE - n;
    if (n)
        memmove(p, src, n);
    return p;
}
#endif /* ARENA_SIZE */

#endif /* STRATA_TEST_HARNESS_H */
