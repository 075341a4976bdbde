-- strata.rest.explain: POST /admin/policy/explain (service_role): which
-- policy file decides for a given caller and request, what it answered, and
-- the SQL predicate that answer compiles to — so a team can see why a row is
-- or is not visible.  Body:
--   { role =, uid =, claims =, is_admin =,            the caller to imagine
--     schema =, table =, action = "select"|"insert"|"update"|"delete", row = }
--   or { role =, ..., schema =, ["function"] = name, args = {...} } for
--   rpc.lua, decided as /rest/v1/rpc decides (strata.rest.policy.rpc_entry:
--   a bare name there is the public schema's function only).
-- The answer also lists hidden_columns: the columns that caller never reads
-- (the policy's `hidden`, null for none), whatever the action.
local cjson = require("cjson")
local catalog = require("strata.rest.catalog")
local errors = require("strata.rest.errors")
local policy = require("strata.rest.policy")
local sqlmod = require("strata.rest.sql")

local M = {}

-- The hidden columns as a sorted JSON array, null when there are none (this
-- cjson encodes an empty table as {}); a string when the policy's `hidden`
-- failed, which denies every request to the table.
local function hidden_columns(ctx, schema, table_name)
  local set = policy.hidden(ctx, schema, table_name)
  if not set then return "the policy's hidden failed: every request to this table is denied" end
  local list = {}
  for name in pairs(set) do list[#list + 1] = name end
  table.sort(list)
  return #list > 0 and list or cjson.null
end

local function err(status, message)
  return errors.new(status, "PGRST100", message)
end

-- Which entry of rpc.lua decides a call of schema.fn and what it answers.
local function explain_rpc(ctx, schema, fn, args)
  local entry = policy.rpc_entry(schema, fn)
  return 200, { file = "policies/rpc.lua", schema = schema, entry = entry or cjson.null,
    allowed = policy.rpc_allowed(ctx, schema, fn, args) }
end

function M.handle(req)
  if req.auth.role ~= "service_role" then
    return errors.new(403, "42501", "policy explain needs the service_role")
  end
  local j = req.json
  if type(j) ~= "table" then return err(400, "expected a JSON object describing the caller and the request") end
  local ctx = { role = j.role or "anon", uid = j.uid, claims = type(j.claims) == "table" and j.claims or {},
    is_admin = j.is_admin == true }
  local cat, e = catalog.get()
  if not cat then return err(503, e.message) end
  local schema = j.schema or cat.default_schema
  if not cat.schemas[schema] then return err(400, "unknown schema " .. tostring(schema)) end
  if j["function"] then
    return explain_rpc(ctx, schema, tostring(j["function"]), type(j.args) == "table" and j.args or {})
  end
  local t = cat.schemas[schema].tables[j.table or ""]
  if not t then return err(404, ("no table %s.%s"):format(schema, tostring(j.table))) end
  local action = j.action or "select"
  if action ~= "select" and action ~= "insert" and action ~= "update" and action ~= "delete" then
    return err(400, "action must be select, insert, update or delete")
  end
  local decision, file = policy.decide(ctx, schema, t.name, action, j.row)
  local out = { file = file, action = action, hidden_columns = hidden_columns(ctx, schema, t.name) }
  if decision == nil then
    out.decision, out.predicate = "none", cjson.null
    out.effect = "no policy for this action: only service_role reaches the table"
    return 200, out
  end
  local b = sqlmod.builder(t)
  local ok, predicate = pcall(policy.compile, b, t, decision, nil, cat.schemas[schema])
  if not ok then return err(500, select(2, errors.caught(predicate)).message) end
  out.decision = decision
  out.predicate = predicate
  out.params = b.params
  out.effect = decision == true and "every row" or decision == false and "no row" or "rows matching the predicate"
  return 200, out
end

return M
