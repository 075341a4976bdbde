-- strata.ai.render: fills a prompt's {{name}} placeholders (seed 001) and
-- says where each value came from.  Priority, highest first:
--
--   computed  current_date, current_time, current_datetime, current_timezone
--             (in the caller's time zone: the variable user_timezone as the
--             client or the user's user_variables give it, else UTC)
--   client    the variables the request sends
--   broker    data_broker values named like the placeholder, resolved for
--             the request's context by the native engine (seed 000's eight
--             levels, ai_task first, global last)
--   project   project_variables of context.project_id
--   org       org_variables of context.organization_id
--   user      the caller's user_variables
--   default   the prompt's variable_defaults
--
-- Brokers stand right below the client: a broker value is already resolved
-- for the exact context, down to the AI task, by its own hierarchy, so it
-- is at least as specific as any project, org or user variable; and it is
-- data an application bound on purpose to this scope, where the variable
-- tables are general profile data.  The client's explicit value still wins.
--
-- Every read goes through strata.data (the broker values through the rpc
-- /rest/v1 answers from the native engine), as the caller: a row the
-- caller's policies hide is absent, never a value.  A layer is read only
-- for the names still unfilled, and not at all when none is left.
--
--   render.resolve(names, layers) -> values, provenance    (pure; layers: { {source, fetch(names)} })
--   render.render(input)          -> { messages, provenance, missing, values } | nil, err

local cjson = require("cjson")
local template = require("strata.ai.template")

local type, ipairs, pairs, tostring, concat = type, ipairs, pairs, tostring, table.concat
local NULL = cjson.null

local M = {}

M.COMPUTED = { current_date = true, current_time = true, current_datetime = true, current_timezone = true }

--- A variable's value as the text placed in the prompt; nil when absent.
function M.text(v)
  if v == nil or v == NULL then return nil end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(math.tointeger(v) or v) end
  if t == "boolean" then return tostring(v) end
  return cjson.encode(v)
end

--- Walks `layers` in order; each fetch(wanted) answers { name = value
-- [, name = { value =, scope = }] } for some of the wanted names, or nil,
-- err.  Answers values (name -> text), provenance (name -> { value,
-- source[, scope] }), or nil, err from the first fetch that failed.
function M.resolve(names, layers)
  local values, provenance = {}, {}
  local wanted = {}
  for i, n in ipairs(names) do wanted[i] = n end
  for _, layer in ipairs(layers) do
    if #wanted == 0 then break end
    local got, err = layer.fetch(wanted)
    if not got then return nil, err end
    local still = {}
    for _, name in ipairs(wanted) do
      local v, scope = got[name], nil
      if type(v) == "table" and v.scoped then v, scope = v.value, v.scope end
      v = M.text(v)
      if v ~= nil then
        values[name] = v
        provenance[name] = { value = v, source = layer.source, scope = scope }
      else
        still[#still + 1] = name
      end
    end
    wanted = still
  end
  return values, provenance
end

-- PostgREST's in.(...) list of names (names are [%w_.-]: no quoting needed).
local function in_list(names) return "in.(" .. concat(names, ",") .. ")" end

local function key_values(rows)
  local out = {}
  for _, r in ipairs(rows) do out[r.key] = r.value end
  return out
end

-- The layers for one request.  `input`: client (variables), context,
-- uid, defaults (prompt variable_defaults).
local function layers(input)
  local data = require("strata.data")
  local ctx, uid, client = input.context or {}, input.uid, input.client or {}

  local function computed(wanted)
    local need = false
    for _, n in ipairs(wanted) do if M.COMPUTED[n] then need = true end end
    if not need then return {} end
    local tz = M.text(client.user_timezone)
    if not tz and uid then
      local rows = data.select("user_variables", { select = "value", user_id = "eq." .. uid, key = "eq.user_timezone" })
      tz = rows and rows[1] and rows[1].value
    end
    local db = require("strata.db")
    local sql = [[select to_char(t, 'YYYY-MM-DD') as d, to_char(t, 'HH24:MI:SS') as tm,
      to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS') as dt from (select now() at time zone $1 as t) s]]
    local rows, err
    if tz then rows, err = db.query(sql, tz) end
    if not rows and (not err or err.code == "22023") then -- no zone, or an unknown one: UTC
      tz = "UTC"
      rows, err = db.query(sql, tz)
    end
    if not rows then return nil, { status = err.status or 500, code = err.code, message = err.message } end
    local r = rows[1]
    return { current_date = r.d, current_time = r.tm, current_datetime = r.dt, current_timezone = tz }
  end

  local function from_client() return client end

  local function brokers(wanted)
    if not uid then return {} end
    local defs, err = data.select("data_broker", { select = "id,name,user_id", name = in_list(wanted), order = "id" })
    if not defs then return nil, err end
    local ids, by_id = {}, {}
    for _, d in ipairs(defs) do ids[#ids + 1] = d.id; by_id[d.id] = d end
    if #ids == 0 then return {} end
    local rows, rerr = data.rpc("get_broker_values_for_context", {
      p_broker_ids = ids, p_user_id = uid, p_organization_id = ctx.organization_id,
      p_workspace_id = ctx.workspace_id, p_project_id = ctx.project_id, p_task_id = ctx.task_id,
      p_ai_runs_id = ctx.ai_run_id, p_ai_tasks_id = ctx.ai_task_id })
    -- A context the caller may not read is refused by the rpc policy: its
    -- values are absent, as rows a policy hides are.
    if not rows and rerr.status ~= 403 and rerr.status ~= 401 then
      require("strata.log").warn("render: broker values unavailable", { code = rerr.code, message = rerr.message })
    end
    -- Names are not unique: among the brokers of one name that have a
    -- value here, the caller's own broker wins, then the lowest id.
    local out, from = {}, {}
    for _, r in ipairs(rows or {}) do
      local d = by_id[r.broker_id]
      local cur = from[d.name]
      if not cur or (d.user_id == uid and cur.user_id ~= uid)
          or ((d.user_id == uid) == (cur.user_id == uid) and d.id < cur.id) then
        from[d.name] = d
        out[d.name] = { scoped = true, value = r.value, scope = r.scope_level }
      end
    end
    return out
  end

  local function table_layer(tbl, column, id)
    return function(wanted)
      if not uid or not id then return {} end
      local rows, err = data.select(tbl, { select = "key,value", [column] = "eq." .. id, key = in_list(wanted) })
      if not rows then return nil, err end
      return key_values(rows)
    end
  end

  local function defaults()
    local out = {}
    for _, d in ipairs(input.defaults or {}) do
      if type(d) == "table" and type(d.name) == "string" then out[d.name] = d.defaultValue end
    end
    return out
  end

  return {
    { source = "computed", fetch = computed },
    { source = "client", fetch = from_client },
    { source = "broker", fetch = brokers },
    { source = "project", fetch = table_layer("project_variables", "project_id", ctx.project_id) },
    { source = "org", fetch = table_layer("org_variables", "org_id", ctx.organization_id) },
    { source = "user", fetch = table_layer("user_variables", "user_id", uid) },
    { source = "default", fetch = defaults },
  }
end

--- Renders input.messages ({role, content}) for input.uid in
-- input.context with input.client variables and input.defaults.  Answers
-- { messages, provenance, missing, values }, or nil and { status, code,
-- message, details } (422 with the position for a template that does not
-- parse).
function M.render(input)
  local names, err = template.names(input.messages)
  if not names then
    return nil, { status = 422, code = "template_syntax", message = err.message,
      details = { message_index = err.message_index, line = err.line, column = err.column, offset = err.offset } }
  end
  local values, provenance = M.resolve(names, layers(input))
  if not values then
    local e = provenance
    return nil, { status = e.status or 500, code = e.code, message = e.message, details = e.details }
  end
  local messages, missing = template.fill(input.messages, values)
  return { messages = messages, provenance = provenance, missing = missing, values = values }
end

return M
