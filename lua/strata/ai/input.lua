-- strata.ai.input: checks the bodies of the /v1/ai routes and loads the
-- prompt they name.  Each check answers the value, or nil and a 4xx error
-- naming the field ({ status, code, message }).

local cjson = require("cjson")

local type, ipairs, pairs, next, tostring = type, ipairs, pairs, next, tostring
local NULL = cjson.null

local M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local ROLES = { system = true, user = true, assistant = true }
M.CONTEXT_KEYS = { "organization_id", "workspace_id", "project_id", "task_id", "ai_run_id", "ai_task_id" }

function M.bad(field, why, status)
  return nil, { status = status or 400, code = "invalid_input", message = field .. ": " .. why }
end

local function absent(v) return v == nil or v == NULL end

function M.uuid(v, field, optional)
  if absent(v) and optional then return nil end
  if type(v) ~= "string" or not v:match(UUID) then return M.bad(field, "must be a uuid") end
  return v:lower()
end

--- body.context as a table of uuids (keys: CONTEXT_KEYS).
function M.context(v)
  if absent(v) then return {} end
  if type(v) ~= "table" then return M.bad("context", "must be an object") end
  local out = {}
  for k in pairs(v) do
    local known = false
    for _, name in ipairs(M.CONTEXT_KEYS) do if k == name then known = true end end
    if not known then return M.bad("context." .. tostring(k), "is not a context key") end
  end
  for _, k in ipairs(M.CONTEXT_KEYS) do
    if not absent(v[k]) then
      local id, err = M.uuid(v[k], "context." .. k)
      if not id then return nil, err end
      out[k] = id
    end
  end
  return out
end

function M.variables(v)
  if absent(v) then return {} end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] ~= nil) then return M.bad("variables", "must be an object") end
  return v
end

--- A messages array of { role, content }.
function M.messages(v, field)
  field = field or "messages"
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then return M.bad(field, "must be an array") end
  local out = {}
  for i, m in ipairs(v) do
    local f = ("%s[%d]"):format(field, i)
    if type(m) ~= "table" then return M.bad(f, "must be an object") end
    if not ROLES[m.role] then return M.bad(f .. ".role", "must be system, user or assistant") end
    if type(m.content) ~= "string" then return M.bad(f .. ".content", "must be a string") end
    out[i] = { role = m.role, content = m.content }
  end
  return out
end

--- The prompt `id` as the caller may read it (prompts, then prompt_builtins).
function M.prompt(id)
  local data = require("strata.data")
  local q = { select = "id,messages,variable_defaults,settings", id = "eq." .. id }
  for _, tbl in ipairs({ "prompts", "prompt_builtins" }) do
    local rows, err = data.select(tbl, q)
    if not rows and err.status ~= 401 and err.status ~= 403 then return nil, err end
    if rows and rows[1] then return rows[1] end
  end
  return M.bad("prompt_id", "no prompt with this id", 404)
end

--- What to render from a body: { messages, defaults, allow_missing } from
-- body.prompt_id or body.messages.
function M.source(body)
  if not absent(body.prompt_id) then
    local id, err = M.uuid(body.prompt_id, "prompt_id")
    if not id then return nil, err end
    local p
    p, err = M.prompt(id)
    if not p then return nil, err end
    local messages
    messages, err = M.messages(p.messages, "prompt.messages")
    if not messages then err.status = 422; return nil, err end
    local settings = type(p.settings) == "table" and p.settings or {}
    return { prompt_id = id, messages = messages, defaults = type(p.variable_defaults) == "table" and p.variable_defaults or {},
      allow_missing = settings.allow_missing_variables == true }
  end
  if absent(body.messages) then return M.bad("prompt_id", "prompt_id or messages is required") end
  local messages, err = M.messages(body.messages)
  if not messages then return nil, err end
  return { messages = messages, defaults = type(body.variable_defaults) == "table" and body.variable_defaults or {},
    allow_missing = body.allow_missing_variables == true }
end

return M
