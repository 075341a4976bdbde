/* test_usage.c: tests of core/usage.c (the agent usage counts waiting for
 * rate_limit_tracking): hour and day alignment, merging, the bound, the
 * put-back of a failed write, and threads recording at once.  Built with
 * ASan and UBSan (spec/c/usage.mk).  Prints each failure with its case
 * name, then exactly one line "N passed, N failed"; exits 1 on a failure. */
#include "engine/usage.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed CHECK jumps to the test function's out: label, which frees. */
#define HARNESS_CHECK_EXIT goto out
#include "test_harness.h"

#define T0 1700000000 /* 2023-11-14T22:13:20Z */

static const unsigned char U1[16] = {1}, U2[16] = {2};

static usage *new_usage(size_t max_rows)
{
    usage *u = usage_new(max_rows);
    if (!u) {
        perror("test_usage: usage_new");
        exit(2);
    }
    return u;
}

static int rec(usage *u, const unsigned char *user, const char *agent, int32_t h, int32_t d, int64_t now)
{
    return usage_record(u, user, agent, strlen(agent), h, d, now);
}

static const usage_row *find(const usage_row *rows, size_t n, const unsigned char *user, int kind, int64_t start)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(rows[i].user, user, 16) == 0 && rows[i].kind == kind && rows[i].period_start == start)
            return &rows[i];
    return NULL;
}

static void aligns_and_merges(void)
{
    usage *u = new_usage(100);
    usage_row *rows = NULL;
    CHECK(rec(u, U1, "chat", 50, 500, T0) == 0, "record");
    CHECK(rec(u, U1, "chat", 60, 500, T0 + 10) == 0, "record");
    CHECK(rec(u, U2, "chat", 50, 0, T0) == 0, "record without a daily limit");
    size_t n = usage_take(u, &rows);
    CHECK(n == 3, "3 rows, got %zu", n);
    const usage_row *h = find(rows, n, U1, USAGE_HOURLY, T0 - T0 % 3600);
    const usage_row *d = find(rows, n, U1, USAGE_DAILY, T0 - T0 % 86400);
    CHECK(h && h->count == 2 && h->limit == 60, "hourly row: 2 requests, the last limit");
    CHECK(d && d->count == 2 && d->limit == 500, "daily row");
    CHECK(strcmp(h->agent, "chat") == 0, "agent type kept");
    CHECK(!find(rows, n, U2, USAGE_DAILY, T0 - T0 % 86400), "no daily row without a daily limit");
    free(rows);
    rows = NULL;
    CHECK(usage_take(u, &rows) == 0 && rows == NULL, "empty after a take");
out:
    free(rows);
    usage_free(u);
}

static void next_hour_is_a_new_row(void)
{
    usage *u = new_usage(100);
    usage_row *rows = NULL;
    int64_t end = T0 - T0 % 3600 + 3599;
    CHECK(rec(u, U1, "chat", 5, 0, end) == 0 && rec(u, U1, "chat", 5, 0, end + 1) == 0, "record");
    size_t n = usage_take(u, &rows);
    CHECK(n == 2, "two hours, two rows: %zu", n);
out:
    free(rows);
    usage_free(u);
}

static void refuses_bad_agent_types(void)
{
    usage *u = new_usage(10);
    char longer[USAGE_AGENT_MAX + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    errno = 0;
    CHECK(rec(u, U1, "", 1, 1, T0) < 0 && errno == EINVAL, "empty agent type refused");
    CHECK(rec(u, U1, longer, 1, 1, T0) < 0 && errno == EINVAL, "51 bytes refused");
    longer[USAGE_AGENT_MAX] = '\0';
    CHECK(rec(u, U1, longer, 1, 1, T0) == 0, "50 bytes accepted");
    CHECK(usage_record(u, U1, "a\0b", 3, 1, 1, T0) < 0, "NUL refused");
out:
    usage_free(u);
}

static void bounded_and_counted(void)
{
    usage *u = new_usage(3);
    usage_stats st;
    CHECK(rec(u, U1, "a", 1, 1, T0) == 0, "2 rows");
    CHECK(rec(u, U1, "b", 1, 1, T0) < 0 && errno == ENOSPC, "the 4th row does not fit");
    CHECK(rec(u, U1, "a", 1, 1, T0) == 0, "existing rows still count");
    usage_stats_get(u, &st);
    CHECK(st.pending == 3 && st.dropped == 1 && st.recorded == 3, "pending %llu dropped %llu recorded %llu",
          (unsigned long long)st.pending, (unsigned long long)st.dropped, (unsigned long long)st.recorded);
out:
    usage_free(u);
}

static void put_back_merges(void)
{
    usage *u = new_usage(2);
    usage_row *rows = NULL, *again = NULL;
    CHECK(rec(u, U1, "a", 10, 0, T0) == 0, "record");
    size_t n = usage_take(u, &rows);
    CHECK(rec(u, U1, "a", 20, 0, T0) == 0 && rec(u, U2, "a", 10, 0, T0) == 0, "record meanwhile");
    usage_put_back(u, rows, n); /* the write failed */
    size_t m = usage_take(u, &again);
    const usage_row *r = find(again, m, U1, USAGE_HOURLY, T0 - T0 % 3600);
    CHECK(m == 2 && r && r->count == 2 && r->limit == 20, "merged: count 2, the newer limit kept");
    usage_put_back(u, again, m);
    usage_put_back(u, rows, n); /* fits: U1's row exists */
    usage_row other = rows[0];
    other.user[0] = 9;
    usage_put_back(u, &other, 1); /* a third row: dropped */
    usage_stats st;
    usage_stats_get(u, &st);
    CHECK(st.pending == 2 && st.dropped == 1, "pending %llu dropped %llu", (unsigned long long)st.pending,
          (unsigned long long)st.dropped);
out:
    free(rows);
    free(again);
    usage_free(u);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    usage *u = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        unsigned char user[16] = {(unsigned char)(i % 50)};
        usage_record(u, user, "chat", 4, 100, 1000, T0);
    }
    return NULL;
}

static void threads_lose_nothing(void)
{
    usage *u = new_usage(1000);
    usage_row *rows = NULL;
    pthread_t t[THREADS];
    int started = 0;
    while (started < THREADS && pthread_create(&t[started], NULL, hammer, u) == 0)
        started++;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    CHECK(started == THREADS, "started %d threads", started);
    size_t n = usage_take(u, &rows);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += rows[i].count;
    CHECK(n == 100, "50 users x 2 rows: %zu", n);
    CHECK(total == 2ull * THREADS * PER_THREAD, "every request counted twice: %llu", (unsigned long long)total);
out:
    free(rows);
    usage_free(u);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } CASES[] = {
        {"aligns to the UTC hour and day and merges a user's requests", aligns_and_merges},
        {"starts a new row at the next hour", next_hour_is_a_new_row},
        {"refuses agent types that do not fit the column", refuses_bad_agent_types},
        {"is bounded and counts what it drops", bounded_and_counted},
        {"merges a failed batch back", put_back_merges},
        {"loses no count with threads recording at once", threads_lose_nothing},
    };
    for (size_t i = 0; i < COUNT(CASES); i++) {
        case_name = CASES[i].name;
        CASES[i].fn();
        finish_case();
    }
    return report();
}
