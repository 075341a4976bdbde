-- Rows of agentflow.tasks written through /rest/v1 or strata.data: the
-- status is the workflow's.  A move goes through POST
-- /v1/agentflow/tasks/:id/transition (or the claim), which applies
-- lua/rules/transitions.lua with its stamps, events and KPI / trust
-- recalculation in one transaction; a plain write of `status` would skip
-- them, so it is refused (422 naming the route).  A new task may only start
-- in the backlog.  The workflows' own write (strata.agentflow.set_status)
-- passes.  Behind this, sql/156's trigger refuses the same to raw SQL.

local ROUTE = "POST /v1/agentflow/tasks/:id/transition"

local function moving()
  local ok, af = pcall(require, "strata.agentflow")
  return ok and af.moving()
end

local function validate(row, ctx)
  local status = row.status
  if status == nil then return true end
  local action = ctx and ctx.action
  if (action == "insert" or action == "upsert") and status == "backlog" then return true end
  if moving() then return true end
  local why = (action == "insert" or action == "upsert") and "a new task starts in the backlog; it then moves through "
    or "a task's status moves through "
  return nil, { { path = "/status", message = why .. ROUTE .. " (lua/rules/transitions.lua), not a plain write" } }
end

return {
  validate = validate,
  examples = {
    { input = { title = "renamed" }, ctx = { action = "update" }, valid = true },
    { input = { title = "new", status = "backlog" }, ctx = { action = "insert" }, valid = true },
    { input = { status = "completed" }, ctx = { action = "update" }, errors = { { path = "/status",
      message = "a task's status moves through " .. ROUTE .. " (lua/rules/transitions.lua), not a plain write" } } },
    { input = { status = "assigned" }, ctx = { action = "insert" } },
  },
}
