-- AgentFlow tasks (seed 004): the priority-queue claim and the status
-- machine of lua/rules/transitions.lua.  Each request is one transaction:
-- the task's change, its automatic event (task_assigned, task_completed,
-- task_blocked) and, after a significant arrival, the assignee's KPI
-- record and trust score with their events commit together or not at all.
--
--   POST /v1/agentflow/tasks/claim           an agent's token: 200 + the task, or 204
--   POST /v1/agentflow/tasks/:id/transition  { "to": status, "agent_id"?: (to assigned), "reason"? }
--   POST /v1/agentflow/jobs/blocked-tasks     service_role: the blocked-tasks job of lua/jobs.lua, now
--
-- Who may move which task is the row policy of agentflow.tasks (a CEO the
-- tasks of their workspaces; an agent the tasks assigned to it).

local cjson = require("cjson")
local data = require("strata.data")
local af = require("strata.agentflow")

local NULL = cjson.null
local type = type

local STATUSES = { backlog = true, assigned = true, in_progress = true, blocked = true, completed = true,
  cancelled = true }
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function one_task(id)
  local rows, err = data.select("agentflow.tasks", { id = "eq." .. id })
  if not rows then return nil, err end
  if not rows[1] then return af.fail(404, "PGRST116", "task " .. id .. " not found") end
  return rows[1]
end

local function claim(req)
  if not af.agent_id(req) then
    return af.problem(403, "42501", "only an agent's token claims tasks")
  end
  return af.step(function(tx)
    local rows, err = af.query(tx, "select id from agentflow_system.claim_task()")
    if not rows then return nil, err end
    if not rows[1] then return NULL end
    local task
    task, err = one_task(rows[1].id)
    if not task then return nil, err end
    local ok
    ok, err = af.after_move(tx, task)
    if not ok then return nil, err end
    return task
  end)
end

local function transition(req)
  local id, body = req.params.id, req.json
  if not id:find(UUID) then return af.problem(400, "22P02", "task id must be a UUID") end
  if type(body) ~= "table" or type(body.to) ~= "string" or not STATUSES[body.to] then
    return af.problem(400, "PGRST102", "body.to must be one of backlog, assigned, in_progress, blocked, completed, cancelled")
  end
  local to = body.to
  return af.step(function(tx)
    local rules = require("rules.transitions")
    local task, err = one_task(id)
    if not task then return nil, err end
    if not rules.allowed(task.status, to) then
      return af.fail(409, "PGRST409", ("task %s cannot move from %s to %s"):format(id, task.status, to),
        { from = task.status, to = to, allowed = rules.next(task.status) })
    end
    local patch = { status = to }
    if to == "assigned" then
      local agent = body.agent_id or task.assigned_agent_id
      if type(agent) ~= "string" then
        return af.fail(422, "PGRST422", "moving a task to assigned needs body.agent_id", { field = "agent_id" })
      end
      -- one who may work, in this project (the policies check the task, not the agent)
      local fit
      fit, err = af.query(tx, [[select 1 as ok from agentflow.agents a where a.id = $1::uuid
        and a.deleted_at is null and a.status in ('active', 'probation')
        and $2::uuid in (select agentflow_system.agent_projects(a))]], agent, task.project_id)
      if not fit then return nil, err end
      if not fit[1] then
        return af.fail(422, "PGRST422", ("agent %s cannot work on the tasks of project %s"):format(agent, task.project_id),
          { field = "agent_id" })
      end
      patch.assigned_agent_id = agent
    elseif to == "backlog" then
      patch.assigned_agent_id = NULL
    end
    -- Only from the status just read: a concurrent move makes this match nothing.
    local rows
    rows, err = af.set_status(tx, data, task, patch)
    if not rows then return nil, err end
    if not rows[1] then
      local now = one_task(id)
      if now and now.status == task.status then
        return af.fail(403, "42501", ("the row policy of agentflow.tasks does not let this caller move task %s"):format(id))
      end
      return af.fail(409, "PGRST409", ("task %s changed meanwhile (it was %s)"):format(id, task.status),
        { from = task.status, to = to })
    end
    local ok
    ok, err = af.after_move(tx, rows[1], type(body.reason) == "string" and body.reason or nil)
    if not ok then return nil, err end
    return rows[1]
  end)
end

-- The blocked-tasks job on demand (lua/jobs.lua runs it on a schedule).
local function blocked_job(req)
  if not (req.auth and req.auth.role == "service_role") then
    return af.problem(403, "42501", "the blocked-tasks job is service_role's")
  end
  return af.step(af.blocked_too_long, 200, data.as_service())
end

return {
  { method = "POST", path = "/v1/agentflow/jobs/blocked-tasks", handler = blocked_job },
  { method = "POST", path = "/v1/agentflow/tasks/claim", handler = claim },
  { method = "POST", path = "/v1/agentflow/tasks/:id/transition", handler = transition },
}
