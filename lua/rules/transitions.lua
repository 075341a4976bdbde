-- Which status an agentflow task may move to from which (seed 004: backlog
-- -> assigned -> in_progress -> (blocked <-> in_progress) -> completed |
-- cancelled), and which automatic event each arrival writes.  The routes of
-- lua/routes/agentflow_tasks.lua refuse any other move with 409 naming from
-- and to.  Edit and save: the next request follows the new machine.

local NEXT = {
  backlog = { assigned = true, cancelled = true },
  -- back to the queue: the assignee gives the task up
  assigned = { in_progress = true, backlog = true, cancelled = true },
  in_progress = { blocked = true, completed = true, cancelled = true },
  blocked = { in_progress = true, cancelled = true },
  completed = {},
  cancelled = {},
}

local M = {}

--- True when a task in status `from` may move to `to`.
function M.allowed(from, to)
  local next = NEXT[from]
  return next ~= nil and next[to] == true
end

--- The statuses that may follow `from`, sorted (for error messages).
function M.next(from)
  local out = {}
  for to in pairs(NEXT[from] or {}) do out[#out + 1] = to end
  table.sort(out)
  return out
end

-- The automatic event written when a task arrives in a status.
M.events = { assigned = "task_assigned", completed = "task_completed", blocked = "task_blocked" }

-- Arrivals after which the assignee's KPIs and trust are recalculated, with
-- the reason recorded in the kpi_updated / trust_score_changed events.
M.significant = { completed = "task completed", blocked = "task blocked" }

-- A task blocked (and not changed since) for longer than this is a
-- significant action too: POST /v1/agentflow/jobs/blocked-tasks (a
-- scheduled job) recalculates its assignee once, reason "task blocked too long".
M.blocked_too_long_seconds = 24 * 3600

-- The statuses that leave no work for an assignee (no further moves).
M.final = { completed = true, cancelled = true }

M.examples = {
  { fn = "allowed", args = { "backlog", "assigned" }, expect = true },
  { fn = "allowed", args = { "blocked", "in_progress" }, expect = true },
  { fn = "allowed", args = { "backlog", "completed" }, expect = false },
  { fn = "allowed", args = { "completed", "in_progress" }, expect = false },
  { fn = "next", args = { "in_progress" }, expect = { "blocked", "cancelled", "completed" } },
}

return M
