-- bench/policy.lua: the "policy" benchmark handler's logic, loaded verbatim
-- by both servers of scripts/bench/run.sh (strata: routes/bench.lua; nginx:
-- content_by_lua_block), so the two run exactly the same Lua.  It takes the
-- decoded request document and answers status, reply table; each host does
-- its own JSON decoding and encoding with lua-cjson.

local type, pairs = type, pairs

local M = {}

local ROLES = { admin = true, editor = true, viewer = true, auditor = true }
local ACTIONS = { read = true, comment = true, update = true, share = true, delete = true }

-- Which actions each role may take.
local GRANTS = {
  admin = ACTIONS,
  editor = { read = true, comment = true, update = true, share = true },
  auditor = { read = true, comment = true },
  viewer = { read = true },
}

-- The rules, checked in order: a path into the document and what the value
-- there must be.  `required`: present; `kind`: its Lua type; `oneof`: a set;
-- `min`/`max`: a numeric range; `maxlen`: a string's or list's length.
local RULES = {
  { name = "user.id", path = { "user", "id" }, required = true, kind = "string", maxlen = 64 },
  { name = "user.role", path = { "user", "role" }, required = true, kind = "string", oneof = ROLES },
  { name = "user.org", path = { "user", "org" }, required = true, kind = "string", maxlen = 64 },
  { name = "action", path = { "action" }, required = true, kind = "string", oneof = ACTIONS },
  { name = "resource.id", path = { "resource", "id" }, required = true, kind = "string", maxlen = 64 },
  { name = "resource.size", path = { "resource", "size" }, kind = "number", min = 0, max = 10485760 },
  { name = "priority", path = { "priority" }, required = true, kind = "number", min = 1, max = 5 },
  { name = "tags", path = { "tags" }, kind = "table", maxlen = 8 },
}

local function lookup(doc, path)
  local v = doc
  for i = 1, #path do
    if type(v) ~= "table" then return nil end
    v = v[path[i]]
  end
  return v
end

-- One rule against the document: nil when it holds, else the complaint.
local function violation(rule, doc)
  local v = lookup(doc, rule.path)
  if v == nil or type(v) == "userdata" then -- absent, or JSON null (cjson.null)
    if rule.required then return rule.name .. " is required" end
    return nil
  end
  if rule.kind and type(v) ~= rule.kind then return rule.name .. " must be a " .. rule.kind end
  if rule.oneof and not rule.oneof[v] then return rule.name .. " is not an accepted value" end
  if rule.min and (v < rule.min or v > rule.max) then
    return rule.name .. " is out of range [" .. rule.min .. ", " .. rule.max .. "]"
  end
  if rule.maxlen and #v > rule.maxlen then return rule.name .. " is too long" end
  return nil
end

--- The decision for `doc` (a decoded JSON object, or nil): status, reply.
function M.evaluate(doc)
  if type(doc) ~= "table" then
    return 400, { decision = "invalid", errors = { "body must be a JSON object" } }
  end
  local errors, n = {}, 0
  for i = 1, #RULES do
    local why = violation(RULES[i], doc)
    if why then
      n = n + 1
      errors[n] = why
    end
  end
  if n > 0 then return 422, { decision = "invalid", errors = errors } end
  local user, resource = doc.user, doc.resource
  local granted = GRANTS[user.role][doc.action] == true
  local tags = 0
  if doc.tags then
    for _ in pairs(doc.tags) do tags = tags + 1 end
  end
  return 200, {
    decision = granted and "allow" or "deny",
    user = user.id,
    org = user.org,
    action = doc.action,
    resource = resource.id,
    priority = doc.priority,
    tags = tags,
    checked = #RULES,
  }
end

return M
