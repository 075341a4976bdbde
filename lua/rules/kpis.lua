-- An agent's KPI record after a significant action (seed 004's kpis.metrics
-- and trend_data shapes).  compute(facts, action) answers metrics, trend:
-- facts come from agentflow_system.agent_facts (the agent's task counts,
-- average task minutes, latest_metrics: the previous record or nil);
-- action is { kind = "task_completed" | "task_blocked" | "pr_merged" |
-- "review_response", approved = bool }.  The workflow writes the record
-- and a kpi_updated event with the previous and new metrics and the reason.
-- Edit and save: the next significant action uses the new rules.

local NULL = require("cjson").null

local M = {}

local function num(v, default)
  if v == nil or v == NULL then return default end
  return tonumber(v) or default
end

local function clamp(x, lo, hi) return math.max(lo, math.min(hi, x)) end

local function direction(new, old)
  if old == nil or new == old then return "stable" end
  return new > old and "up" or "down"
end

function M.compute(facts, action)
  local prev = facts.latest_metrics
  if prev == NULL or type(prev) ~= "table" then prev = nil end
  local p = prev or {}
  local completed = num(facts.tasks_completed, 0)
  local settled = completed + num(facts.tasks_open, 0) + num(facts.tasks_cancelled, 0)
  local quality = num(p.codeQualityScore, 50)
  if action.kind == "pr_merged" then quality = quality + 2 end
  if action.kind == "review_response" then quality = quality + (action.approved == false and -3 or 1) end
  local metrics = {
    tasksCompleted = completed,
    codeQualityScore = clamp(quality, 0, 100),
    positiveFeedbackCount = num(p.positiveFeedbackCount, 0)
      + ((action.kind == "review_response" and action.approved ~= false) and 1 or 0),
    featureCompletionRate = settled > 0 and math.floor(completed / settled * 1000 + 0.5) / 1000 or 0,
    bugsIntroduced = num(p.bugsIntroduced, 0),
    deploymentFailures = num(p.deploymentFailures, 0),
    codeChurn = num(p.codeChurn, 0),
    averageTaskDuration = num(facts.average_task_minutes, 0),
    customMetrics = { tasksBlocked = num(facts.tasks_blocked, 0), lateCompletions = num(facts.late_completions, 0) },
  }
  local t1 = direction(metrics.tasksCompleted, prev and num(p.tasksCompleted))
  local t2 = direction(metrics.codeQualityScore, prev and num(p.codeQualityScore))
  local overall = "stable"
  if (t1 == "up" or t2 == "up") and t2 ~= "down" then overall = "improving"
  elseif t2 == "down" or action.kind == "task_blocked" or action.kind == "task_blocked_too_long" then
    overall = "declining"
  end
  return metrics, { tasksCompletedTrend = t1, codeQualityTrend = t2, overallTrend = overall }
end

M.examples = {
  { fn = "compute", args = { { tasks_completed = 1, tasks_open = 1, average_task_minutes = 12 }, { kind = "task_completed" } },
    expect = { tasksCompleted = 1, codeQualityScore = 50, positiveFeedbackCount = 0, featureCompletionRate = 0.5,
      bugsIntroduced = 0, deploymentFailures = 0, codeChurn = 0, averageTaskDuration = 12,
      customMetrics = { tasksBlocked = 0, lateCompletions = 0 } } },
}

return M
