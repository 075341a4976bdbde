/* ai_stats.c: the AI executions' counters (see ai_stats.h).  Uses
 * metrics.h for the histogram's rendering. */
#include "ai_stats.h"

#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define TTFT_BUCKETS 9

static const char *const PROVIDERS[AI_PROVIDERS] = {"google", "openai", "anthropic", "other"};
static const char *const OUTCOMES[AI_OUTCOMES] = {"completed", "failed", "cancelled"};
static const double TTFT_BOUNDS[TTFT_BUCKETS] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};

static _Atomic uint64_t executions[AI_PROVIDERS][AI_OUTCOMES];
static _Atomic uint64_t tokens[AI_PROVIDERS][2]; /* input, output */
static _Atomic uint64_t ttft_bucket[TTFT_BUCKETS + 1];
static _Atomic uint64_t ttft_ms;                 /* sum, for _sum */
static _Atomic int64_t streams;

int ai_stats_provider(const char *name)
{
    for (int i = 0; i < AI_OTHER; i++)
        if (strcmp(name, PROVIDERS[i]) == 0)
            return i;
    return AI_OTHER;
}

int ai_stats_outcome(const char *name)
{
    for (int i = 0; i < AI_OUTCOMES; i++)
        if (strcmp(name, OUTCOMES[i]) == 0)
            return i;
    return -1;
}

void ai_stats_execution(int provider, int outcome, uint64_t tokens_in, uint64_t tokens_out)
{
    atomic_fetch_add_explicit(&executions[provider][outcome], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tokens[provider][0], tokens_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&tokens[provider][1], tokens_out, memory_order_relaxed);
}

void ai_stats_first_token(uint64_t ms)
{
    int b = 0;
    while (b < TTFT_BUCKETS && (double)ms / 1000 > TTFT_BOUNDS[b])
        b++;
    atomic_fetch_add_explicit(&ttft_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ttft_ms, ms, memory_order_relaxed);
}

void ai_stats_stream(int delta)
{
    atomic_fetch_add_explicit(&streams, delta, memory_order_relaxed);
}

int ai_stats_render(buf *out)
{
    char line[192];
    int rc = buf_add_str(out, "# HELP strata_ai_executions_total AI executions (ai_tasks) ended, by provider and outcome.\n"
                              "# TYPE strata_ai_executions_total counter\n");
    for (int p = 0; p < AI_PROVIDERS; p++)
        for (int o = 0; o < AI_OUTCOMES; o++) {
            snprintf(line, sizeof line, "strata_ai_executions_total{provider=\"%s\",outcome=\"%s\"} %llu\n",
                     PROVIDERS[p], OUTCOMES[o], (unsigned long long)atomic_load(&executions[p][o]));
            rc |= buf_add_str(out, line);
        }
    rc |= buf_add_str(out, "# HELP strata_ai_tokens_total Tokens of the AI executions as the providers counted them.\n"
                           "# TYPE strata_ai_tokens_total counter\n");
    for (int p = 0; p < AI_PROVIDERS; p++)
        for (int d = 0; d < 2; d++) {
            snprintf(line, sizeof line, "strata_ai_tokens_total{provider=\"%s\",direction=\"%s\"} %llu\n",
                     PROVIDERS[p], d ? "output" : "input", (unsigned long long)atomic_load(&tokens[p][d]));
            rc |= buf_add_str(out, line);
        }
    snprintf(line, sizeof line, "# HELP strata_ai_open_streams Streamed AI executions running.\n"
             "# TYPE strata_ai_open_streams gauge\nstrata_ai_open_streams %lld\n", (long long)atomic_load(&streams));
    rc |= buf_add_str(out, line);
    uint64_t counts[TTFT_BUCKETS + 1];
    for (int b = 0; b <= TTFT_BUCKETS; b++)
        counts[b] = atomic_load(&ttft_bucket[b]);
    return rc | metrics_render_histogram(out, "strata_ai_time_to_first_token_seconds",
                                         "AI executions: from the request's first byte to the provider's first token.",
                                         TTFT_BOUNDS, TTFT_BUCKETS, counts, (double)atomic_load(&ttft_ms) / 1000);
}
