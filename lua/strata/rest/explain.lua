-- strata.rest.explain: POST /admin/policy/explain (service_role): which
-- policy file decides for a given caller and request, what it answered, and
-- the SQL predicate that answer compiles to — so a team can see why a row is
-- or is not visible.  Body:
--   { role =, uid =, claims =, is_admin =,            the caller to imagine
--     schema =, table =, action = "select"|"insert"|"update"|"delete", row = }
--   or { role =, ..., ["function"] = name, args = {...} } for rpc.lua.
-- The answer also lists hidden_columns: the columns that caller never reads
-- (the policy's `hidden`, null for none), whatever the action.
local cjson = require("cjson")
local catalog = require("strata.rest.catalog")
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
  return status, { code = "PGRST100", message = message, details = cjson.null, hint = cjson.null }
end

function M.handle(req)
  if req.auth.role ~= "service_role" then
    return 403, { code = "42501", message = "policy explain needs the service_role", details = cjson.null, hint = cjson.null }
  end
  local j = req.json
  if type(j) ~= "table" then return err(400, "expected a JSON object describing the caller and the request") end
  local ctx = { role = j.role or "anon", uid = j.uid, claims = type(j.claims) == "table" and j.claims or {},
    is_admin = j.is_admin == true }
  if j["function"] then
    local ok, pol = pcall(require, "policies.rpc")
    local f = ok and type(pol) == "table" and (pol[j["function"]] or pol["*"]) or nil
    local entry = ok and type(pol) == "table" and (pol[j["function"]] and j["function"] or (pol["*"] and "*")) or nil
    local allowed = ctx.role == "service_role" or (f and select(2, pcall(f, ctx, j.args or {})) == true) or false
    return 200, { file = "policies/rpc.lua", entry = entry or cjson.null, allowed = allowed }
  end
  local cat, e = catalog.get()
  if not cat then return err(503, e.message) end
  local schema = j.schema or cat.default_schema
  if not cat.schemas[schema] then return err(400, "unknown schema " .. tostring(schema)) end
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
  if not ok then return err(500, type(predicate) == "table" and predicate.message or tostring(predicate)) end
  out.decision = decision
  out.predicate = predicate
  out.params = b.params
  out.effect = decision == true and "every row" or decision == false and "no row" or "rows matching the predicate"
  return 200, out
end

return M
