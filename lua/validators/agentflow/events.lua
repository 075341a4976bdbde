-- Rows of agentflow.events (seed 004): the content of each event type has
-- the shape of seed 004's examples (its Zod shapes, written here), for
-- events clients append through /rest/v1 and for the automatic events the
-- workflows write (lua/strata/agentflow.lua runs this file before
-- inserting them).  Types without a shape of their own need an object.

local S = require("strata.schema")

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local uuid = { type = "string", required = true, pattern = UUID, msg = "must be a UUID" }
local opt_uuid = S.with(uuid, { required = false })
local text = { type = "string", required = true, len_min = 1 }
local count = { type = "integer", required = true, ge = 0 }
local score = { type = "number", required = true, between = { 0, 100 } }
local PRIORITIES = { "P0", "P1", "P2", "P3" }

local function record(fields) return { type = "record", required = true, fields = fields } end

local task = {
  { taskId = uuid }, { title = text }, { description = { type = "string" } },
  { priority = { type = "string", one_of = PRIORITIES } }, { deadline = { type = "string" } },
}

local CONTENT = {
  session_start = record({
    { pulled_updates = record({ { tasks = count }, { messages = count }, { role_changes = count },
      { events = { type = "array" } }, { assigned_tasks = { type = "array" } }, { wiki_entries = { type = "array" } } }) },
  }),
  session_log = record({ { message = text }, { context = { type = "map" } } }),
  session_stop = record({ { duration_seconds = { type = "integer", ge = 0 } } }),
  task_assigned = record(S.extend(task, { { priority = { type = "string", required = true, one_of = PRIORITIES } } })),
  task_completed = record(task),
  task_blocked = record(S.extend(task, { { reason = { type = "string" } } })),
  kpi_updated = record({ { agentId = uuid }, { previousKPIs = { type = "map" } }, { newKPIs = { type = "map", required = true } },
    { changeReason = text } }),
  trust_score_changed = record({ { agentId = uuid }, { previousScore = score }, { newScore = score }, { reason = text },
    { previousStatus = { type = "string" } }, { newStatus = { type = "string" } } }),
  github_pr_opened = record({ { number = count }, { title = text }, { url = { type = "string" } }, { taskId = opt_uuid } }),
  github_pr_merged = record({ { number = count }, { title = text }, { url = { type = "string" } }, { taskId = opt_uuid } }),
  github_issue_assigned = record({ { issueNumber = count }, { title = text }, { taskId = opt_uuid },
    { assignee = { type = "string" } } }),
  wiki_contribution = record({ { entryId = uuid }, { title = text }, { content = text },
    { status = { type = "string", required = true, one_of = { "draft", "pending_approval", "approved", "rejected" } } } }),
}

local ANY = { type = "map", required = true }

local function validate(row, ctx)
  if row.type == nil and ctx and ctx.partial then return true end
  local spec = CONTENT[row.type] or ANY
  local ok, errs = S.validate(spec, row.content)
  if ok then return true end
  return nil, S.prefix(errs, "/content")
end

local A = "99999999-0000-4000-8000-000000000001"

return {
  validate = validate,
  content = CONTENT,
  examples = {
    { input = { type = "session_log", content = { message = "Implemented authentication flow",
      context = { file = "src/auth.ts", progress = 50 } } }, valid = true },
    { input = { type = "session_log", content = {} }, errors = { { path = "/content/message", message = "is required" } } },
    { input = { type = "task_assigned", content = { taskId = A, title = "Login", priority = "P1",
      deadline = "2025-02-01T00:00:00Z" } }, valid = true },
    { input = { type = "trust_score_changed", content = { agentId = A, previousScore = 50, newScore = 101, reason = "x" } } },
    { input = { type = "advice_given", content = "use tabs" } },
    { input = { type = "advice_given", content = { text = "use tabs" } }, valid = true },
  },
}
