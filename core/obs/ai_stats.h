/* ai_stats.h: the AI executions' figures for /metrics (strata.aimetrics,
 * lua/strata/ai/execute.lua): executions by provider and outcome, tokens
 * by provider, the time to first token, the streamed executions running.
 * Process-wide atomics: an execution is counted once, at its end, so the
 * counters are far from the request path's rate. */
#ifndef STRATA_AI_STATS_H
#define STRATA_AI_STATS_H

#include "base/buf.h"

#include <stdint.h>

/* The providers of lua/providers/ and the outcomes of an ai_tasks row;
 * another name counts as "other" / is refused (-1). */
enum { AI_GOOGLE, AI_OPENAI, AI_ANTHROPIC, AI_OTHER, AI_PROVIDERS };
enum { AI_COMPLETED, AI_FAILED, AI_CANCELLED, AI_OUTCOMES };

int ai_stats_provider(const char *name);
int ai_stats_outcome(const char *name);

/* An execution ended with `outcome`; tokens as the provider reported. */
void ai_stats_execution(int provider, int outcome, uint64_t tokens_in, uint64_t tokens_out);

/* An execution's first token came ms after its request's first byte. */
void ai_stats_first_token(uint64_t ms);

/* A streamed execution started (+1) or ended (-1). */
void ai_stats_stream(int delta);

/* Appends the AI metrics; 0, or -1 when out of memory. */
int ai_stats_render(buf *out);

#endif
