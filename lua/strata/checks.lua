-- strata.checks: what a script must look like before a reload may swap it
-- in.  Policy, validator and auth hook files may declare `examples` beside
-- their rules; they are run here, on every reload, against the new code.

local type, pairs, ipairs, pcall, tostring = type, pairs, ipairs, pcall, tostring

local M = {}

local ACTIONS = { select = true, insert = true, update = true, delete = true }

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deep_equal = deep_equal

local function show(v)
  if type(v) ~= "table" then return tostring(v) end
  local ok, cjson = pcall(require, "cjson")
  local s = ok and select(2, pcall(cjson.encode, v))
  return type(s) == "string" and s or tostring(v)
end

local function run_example(file, i, f, args, expect)
  local ok, got = pcall(f, table.unpack(args, 1, args.n))
  if not ok then
    return nil, ("%s: example %d raised: %s"):format(file, i, tostring(got))
  end
  if not deep_equal(got, expect) then
    return nil, ("%s: example %d: expected %s, got %s"):format(file, i, show(expect), show(got))
  end
  return true
end

-- `hidden`: a list of column names, or a function (its answers are checked
-- by the examples and, at request time, by strata.rest.policy).
local function check_hidden(file, v)
  if type(v) == "function" then return true end
  if type(v) ~= "table" then
    return nil, file .. ": 'hidden' must be a list of column names or a function of ctx answering one"
  end
  for i, name in pairs(v) do
    if type(i) ~= "number" or type(name) ~= "string" then
      return nil, file .. ": 'hidden' must be a list of column names"
    end
  end
  return true
end

--- A table policy: { select = f, insert = f, update = f, delete = f,
-- unfiltered = { update = true, delete = true },   (optional)
-- hidden = { "column", ... } or f(ctx) -> such a list,   (optional)
-- soft_delete = "deleted_at",   (optional: DELETE stamps it, reads hide stamped rows)
-- examples = { { action =, ctx =, row =, expect = } } }; an example's
-- action may be "hidden" (expect: the list).
function M.policy(file, p)
  if type(p) ~= "table" then
    return nil, file .. ": a policy must return a table of select/insert/update/delete functions"
  end
  for k, v in pairs(p) do
    if k == "unfiltered" then
      if type(v) ~= "table" then return nil, file .. ": 'unfiltered' must be a table such as { delete = true }" end
    elseif k == "soft_delete" then
      if type(v) ~= "string" then return nil, file .. ": 'soft_delete' must name a timestamp column such as \"deleted_at\"" end
    elseif k == "hidden" then
      local ok, err = check_hidden(file, v)
      if not ok then return nil, err end
    elseif k ~= "examples" and (not ACTIONS[k] or type(v) ~= "function") then
      return nil, ("%s: '%s' is not a policy action (select, insert, update, delete) with a function")
        :format(file, tostring(k))
    end
  end
  for i, ex in ipairs(p.examples or {}) do
    local f = p[ex.action]
    if not f then
      return nil, ("%s: example %d names action '%s', which the policy lacks"):format(file, i, tostring(ex.action))
    end
    if ex.action == "hidden" and type(f) == "table" then f = function() return p.hidden end end
    local ok, err = run_example(file, i, f, { n = 2, ex.ctx or {}, ex.row }, ex.expect)
    if not ok then return nil, err end
  end
  return true
end

--- The RPC policy: { [function name or "*"] = f(ctx, args), examples = { { fn =, ctx =, args =, expect = } } }.
function M.rpc_policy(file, p)
  if type(p) ~= "table" then
    return nil, file .. ": must return a table from function name to policy function"
  end
  for k, v in pairs(p) do
    if k ~= "examples" and (type(k) ~= "string" or type(v) ~= "function") then
      return nil, ("%s: entry '%s' must map a function name to a function"):format(file, tostring(k))
    end
  end
  for i, ex in ipairs(p.examples or {}) do
    local f = p[ex.fn] or p["*"]
    if not f then
      return nil, ("%s: example %d names function '%s', which has no policy"):format(file, i, tostring(ex.fn))
    end
    local ok, err = run_example(file, i, f, { n = 2, ex.ctx or {}, ex.args or {} }, ex.expect)
    if not ok then return nil, err end
  end
  return true
end

--- A validator: { validate = f(value, ctx) -> true | nil, errors,
-- examples = { { input =, valid = true } | { input =, errors = {...} } } }.
function M.validator(file, v)
  if type(v) ~= "table" or type(v.validate) ~= "function" then
    return nil, file .. ": a validator must return a table with a validate function"
  end
  for i, ex in ipairs(v.examples or {}) do
    local ok, res, errors = pcall(v.validate, ex.input, ex.ctx)
    if not ok then
      return nil, ("%s: example %d raised: %s"):format(file, i, tostring(res))
    end
    if ex.valid and res ~= true then
      return nil, ("%s: example %d: expected valid, got errors %s"):format(file, i, show(errors))
    end
    if not ex.valid and res == true then
      return nil, ("%s: example %d: expected errors, got valid"):format(file, i)
    end
    if ex.errors and not deep_equal(errors, ex.errors) then
      return nil, ("%s: example %d: expected errors %s, got %s"):format(file, i, show(ex.errors), show(errors))
    end
  end
  return true
end

--- A rule file (lua/rules/*.lua): a table of the functions and values a
-- workflow reads, with examples = { { fn = "name", args = { ... }, expect = v } }
-- calling rules[fn](args...) and comparing its first answer with expect.
function M.rule(file, r)
  if type(r) ~= "table" then return nil, file .. ": a rule file must return a table" end
  for i, ex in ipairs(r.examples or {}) do
    local f = type(ex) == "table" and r[ex.fn]
    if type(f) ~= "function" then
      return nil, ("%s: example %d names '%s', which is not a function of the file"):format(file, i,
        tostring(type(ex) == "table" and ex.fn))
    end
    local args = ex.args or {}
    local ok, err = run_example(file, i, f, table.pack(table.unpack(args, 1, args.n or #args)), ex.expect)
    if not ok then return nil, err end
  end
  return true
end

local HOOKS = { before_user_created = true, custom_access_token = true, send_email = true }

--- lua/auth/hooks.lua returns { before_user_created, custom_access_token,
-- send_email } (each optional, a function) and may declare examples:
--   { hook = "before_user_created", user = {...}, expect = true | false }
--   { hook = "custom_access_token", claims = {...}, user = {...}, expect = { claim = value, ... } }
-- (the claims named in expect must come out with those values).
function M.auth_hooks(file, v)
  if type(v) ~= "table" then return nil, file .. ": the auth hooks file must return a table" end
  for name in pairs(HOOKS) do
    if v[name] ~= nil and type(v[name]) ~= "function" then return nil, ("%s: %s must be a function"):format(file, name) end
  end
  for i, ex in ipairs(v.examples or {}) do
    local f = type(ex) == "table" and HOOKS[ex.hook] and ex.hook ~= "send_email" and v[ex.hook]
    if not f then
      return nil, ("%s: example %d must name a defined before_user_created or custom_access_token hook"):format(file, i)
    end
    local ok, got = pcall(f, ex.hook == "before_user_created" and ex.user or ex.claims, ex.user)
    if not ok then return nil, ("%s: example %d raised: %s"):format(file, i, tostring(got)) end
    if ex.hook == "before_user_created" then
      if (got ~= false) ~= ex.expect then
        return nil, ("%s: example %d: expected %s, got %s"):format(file, i, show(ex.expect), show(got ~= false))
      end
    else
      for k, want in pairs(ex.expect or {}) do
        if type(got) ~= "table" or not deep_equal(got[k], want) then
          return nil, ("%s: example %d: expected claim %s = %s, got %s"):format(file, i, k, show(want),
            show(type(got) == "table" and got[k] or got))
        end
      end
    end
  end
  return true
end

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true,
  OPTIONS = true, ["*"] = true }

--- A route file returns a list of { method, path, handler[, agent_type] }.
function M.route(file, i, r)
  local where = ("%s: route %d"):format(file, i)
  if type(r) ~= "table" then return nil, where .. " must be a table" end
  if type(r.method) ~= "string" or not METHODS[r.method:upper()] then
    return nil, where .. ": method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or *"
  end
  if type(r.path) ~= "string" or r.path:sub(1, 1) ~= "/" then
    return nil, where .. ": path must be a string starting with /"
  end
  if type(r.handler) ~= "function" then return nil, where .. ": handler must be a function" end
  if r.agent_type ~= nil and type(r.agent_type) ~= "string" then
    return nil, where .. ": agent_type must be a string"
  end
  return true
end

return M
