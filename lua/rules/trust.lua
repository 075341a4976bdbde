-- How an agent's trust score moves after a significant action (seed 004:
-- "trust_score is recalculated after significant actions").  score(facts,
-- metrics, action) answers the new score; the workflow clamps it to 0..100
-- and writes a trust_score_changed event when it changed.  facts: the
-- agent's standing and counts (agentflow_system.agent_facts: trust_score,
-- status, tasks_completed, late_completions, ...); metrics: the KPI record
-- just computed (lua/rules/kpis.lua); action: { kind = "task_completed" |
-- "task_blocked" | "task_blocked_too_long" | "pr_merged" | "review_response", late = bool,
-- approved = bool }.
-- Edit and save: the next significant action uses the new formula.

local DELTA = {
  task_completed = 2,
  task_blocked = -1,
  task_blocked_too_long = -2,
  pr_merged = 3,
  review_response = 1,
}

local M = {}

function M.score(facts, metrics, action)
  local s = tonumber(facts.trust_score) or 50
  s = s + (DELTA[action.kind] or 0)
  if action.kind == "task_completed" and action.late then s = s - 3 end
  if action.kind == "review_response" and action.approved == false then s = s - 2 end
  -- a quality score well below average drags trust down a little
  if (metrics.codeQualityScore or 50) < 30 then s = s - 1 end
  return math.max(0, math.min(100, s))
end

M.examples = {
  { fn = "score", args = { { trust_score = 50 }, { codeQualityScore = 50 }, { kind = "task_completed" } }, expect = 52 },
  { fn = "score", args = { { trust_score = 50 }, { codeQualityScore = 50 }, { kind = "task_completed", late = true } },
    expect = 49 },
  { fn = "score", args = { { trust_score = 99.5 }, { codeQualityScore = 80 }, { kind = "pr_merged" } }, expect = 100 },
  { fn = "score", args = { { trust_score = 0 }, { codeQualityScore = 80 }, { kind = "task_blocked" } }, expect = 0 },
}

return M
