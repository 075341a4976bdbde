-- GitHub webhooks of AgentFlow projects (seed 004): POST
-- /v1/agentflow/github/webhook.  The project is the one whose
-- repository_url is the payload's repository.html_url; the delivery must
-- carry X-Hub-Signature-256 = "sha256=" .. hex(HMAC-SHA-256(secret, body))
-- with the project's github_webhook_secret, else the server's
-- STRATA_GITHUB_WEBHOOK_SECRET (compared in constant time; 401 otherwise);
-- an X-GitHub-Delivery id seen before is answered 200 and changes nothing.
-- Then, in one transaction as the server (the signature is the check):
--   issues opened / edited / reopened: the linked task is created or its
--     title and description updated; closed: the task moves to completed
--     (state_reason "completed") or cancelled, when lua/rules/transitions.lua
--     allows it; assigned: a github_issue_assigned event;
--   pull_request opened: github_pr_opened; closed and merged:
--     github_pr_merged, and each task its body names ("fixes #N", "closes
--     #N", "resolves #N") completes (through in_progress if the rules need
--     it), its assignee's KPIs and trust recalculated ("PR merged").
-- Events the route does not handle (ping included) are answered 200.

local cjson = require("cjson")
local crypto = require("strata.crypto")
local data = require("strata.data")
local af = require("strata.agentflow")

local NULL = cjson.null
local type, pcall, ipairs, tostring = type, pcall, ipairs, tostring

local problem = af.problem

local function present(v) return v ~= nil and v ~= NULL end

local function int(v) return type(v) == "number" and math.tointeger(v) or nil end

local function project_of(repo)
  if type(repo) ~= "table" or type(repo.html_url) ~= "string" then return nil end
  local rows = data.as_service().select("agentflow.projects", { repository_url = "eq." .. repo.html_url,
    deleted_at = "is.null", order = "created_at", limit = 1, select = "id,github_webhook_secret" })
  return rows and rows[1]
end

local function signed(secret, body, header)
  if type(header) ~= "string" then return false end
  return crypto.equal("sha256=" .. crypto.hex(crypto.hmac_sha256(secret, body)), header)
end

-- The task of an issue (by GitHub's issue id), or nil.
local function task_of(svc, project_id, field, value)
  local rows, err = svc.select("agentflow.tasks", { project_id = "eq." .. project_id, [field] = "eq." .. value })
  if not rows then return nil, err end
  return rows[1] or false
end

-- Moves task to `to` if the rules allow it (through in_progress when
-- `via`), with the step's events.  Answers the task as it ends up.
local function move(tx, svc, task, to, reason, via)
  local rules = require("rules.transitions")
  local path = { to }
  if not rules.allowed(task.status, to) then
    if not (via and rules.allowed(task.status, "in_progress") and rules.allowed("in_progress", to)) then
      return task
    end
    path = { "in_progress", to }
  end
  for _, status in ipairs(path) do
    local rows, err = af.set_status(tx, svc, task, { status = status })
    if not rows then return nil, err end
    if not rows[1] then return af.fail(409, "PGRST409", "task " .. task.id .. " changed meanwhile") end
    task = rows[1]
    local ok
    ok, err = af.after_move(tx, task, reason)
    if not ok then return nil, err end
  end
  return task
end

local function on_issue(tx, svc, project_id, p)
  local issue = p.issue
  -- cjson decodes every number as a float
  local id, number = type(issue) == "table" and int(issue.id), type(issue) == "table" and int(issue.number)
  if not id or not number then return af.fail(400, "PGRST102", "an issues event needs issue.id and issue.number") end
  local task, err = task_of(svc, project_id, "github_issue_id", tostring(id))
  if task == nil then return nil, err end
  local fields = { title = issue.title, description = present(issue.body) and issue.body or NULL }
  if not task then
    local rows
    rows, err = svc.insert("agentflow.tasks", { project_id = project_id, github_issue_id = id,
      github_issue_number = number, title = fields.title, description = fields.description })
    if not rows then return nil, err end
    task = rows[1]
  elseif p.action == "edited" or p.action == "opened" or p.action == "reopened" then
    local rows
    rows, err = svc.update("agentflow.tasks", { id = "eq." .. task.id }, fields)
    if not rows then return nil, err end
    task = rows[1]
  end
  if p.action == "closed" then
    task, err = move(tx, svc, task, issue.state_reason == "not_planned" and "cancelled" or "completed",
      "GitHub issue closed")
    if not task then return nil, err end
  elseif p.action == "assigned" then
    local ok
    ok, err = af.emit(tx, "github_issue_assigned", { project_id = project_id, content = { issueNumber = number,
      title = task.title, taskId = task.id,
      assignee = type(issue.assignee) == "table" and issue.assignee.login or nil } })
    if not ok then return nil, err end
  end
  return { task = task }
end

-- The issue numbers a PR body closes (GitHub's keywords).
local function closed_issues(body)
  local out, seen = {}, {}
  if type(body) ~= "string" then return out end
  local lower = body:lower()
  for _, word in ipairs({ "fixes", "fixed", "fix", "closes", "closed", "close", "resolves", "resolved", "resolve" }) do
    for n in lower:gmatch("%f[%a]" .. word .. "%s*:?%s+#(%d+)") do
      n = math.tointeger(tonumber(n))
      if n and not seen[n] then seen[n] = true; out[#out + 1] = n end
    end
  end
  table.sort(out)
  return out
end

local function on_pull_request(tx, svc, project_id, p)
  local pr = p.pull_request
  local number = type(pr) == "table" and int(pr.number)
  if not number then return af.fail(400, "PGRST102", "a pull_request event needs pull_request.number") end
  -- Its event names the PR (seed 004's github_pr_* shape): bad input, not a server error.
  if type(pr.title) ~= "string" or pr.title == "" or (pr.html_url ~= nil and type(pr.html_url) ~= "string") then
    return af.fail(400, "PGRST102", "a pull_request event needs pull_request.title (and html_url, when sent, a string)")
  end
  local merged = p.action == "closed" and pr.merged == true
  if p.action ~= "opened" and not merged then return { ignored = p.action } end
  local tasks = {}
  for _, n in ipairs(closed_issues(pr.body)) do
    local task, err = task_of(svc, project_id, "github_issue_number", tostring(n))
    if task == nil then return nil, err end
    if task then tasks[#tasks + 1] = task end
  end
  local content = { number = number, title = pr.title, url = pr.html_url, taskId = tasks[1] and tasks[1].id }
  local ok, err = af.emit(tx, merged and "github_pr_merged" or "github_pr_opened", { project_id = project_id,
    content = content, metadata = { github_pr_id = pr.id } })
  if not ok then return nil, err end
  if not merged then return { tasks = #tasks } end
  local done = {}
  for i, task in ipairs(tasks) do
    task, err = move(tx, svc, task, "completed", "PR merged successfully", true)
    if not task then return nil, err end
    if task.status == "completed" and task.assigned_agent_id ~= NULL then
      ok, err = af.recalculate(tx, task.assigned_agent_id, { kind = "pr_merged" }, "PR merged successfully", project_id)
      if not ok then return nil, err end
    end
    done[i] = { id = task.id, status = task.status }
  end
  return { tasks = done }
end

local HANDLERS = { issues = on_issue, pull_request = on_pull_request }

local function webhook(req)
  local body = req.body or ""
  local ok, payload = pcall(cjson.decode, body)
  if not ok or type(payload) ~= "table" then return problem(400, "PGRST102", "the body must be a JSON object") end
  local project = project_of(payload.repository)
  local secret = project and present(project.github_webhook_secret) and project.github_webhook_secret
    or os.getenv("STRATA_GITHUB_WEBHOOK_SECRET")
  if not secret or secret == "" or not signed(secret, body, req.headers["x-hub-signature-256"]) then
    return problem(401, "PGRST301", "X-Hub-Signature-256 is missing or does not match")
  end
  if not project then return problem(404, "PGRST116", "no project has this repository") end
  local delivery, event = req.headers["x-github-delivery"], req.headers["x-github-event"]
  if type(delivery) ~= "string" or delivery == "" or type(event) ~= "string" then
    return problem(400, "PGRST102", "X-GitHub-Delivery and X-GitHub-Event are required")
  end
  local svc = data.as_service()
  return af.step(function(tx)
    local rows, e = svc.insert("agentflow.github_deliveries", { delivery_id = delivery, project_id = project.id,
      event = event }, { resolution = "ignore-duplicates", on_conflict = "delivery_id" })
    if not rows then return nil, e end
    if not rows[1] then return { delivery = delivery, replayed = true } end
    local handler = HANDLERS[event]
    if not handler then return { delivery = delivery, ignored = event } end
    local out
    out, e = handler(tx, svc, project.id, payload)
    if not out then return nil, e end
    out.delivery = delivery
    return out
  end, 200, svc)
end

return {
  { method = "POST", path = "/v1/agentflow/github/webhook", handler = webhook },
}
