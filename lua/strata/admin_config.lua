-- strata.admin_config: the configuration rows of public.admin_config as
-- the runtime uses them (agent rate limits; the AI and logging settings),
-- validated.  The table is re-read when it changes: a trigger NOTIFYs
-- strata_admin_config (sql/091_admin_config_notify.sql), the server's
-- LISTEN connection counts it and broker.admin_config_version() moves (also
-- when that connection comes back, as it may have missed changes).  While
-- nothing listens the table is polled once a second; and every 30 s anyway,
-- in case a notification was lost.
--
-- Each row read is checked by lua/validators/admin_config.lua, as a write
-- through strata would have been.  A row an operator wrote around the
-- validators (scripts/db psql) that fails is not served: each worker's
-- state keeps the last valid data of that key it read (none if it never
-- read one: a state built after the row went bad), the failure is logged
-- once per process, and a warning that GET /ready lists and /metrics
-- counts (strata.health, source "admin_config") stays until the row is
-- valid or gone.

local broker = require("strata.broker")
local pg = require("strata.pg")
local log = require("strata.log")
local health = require("strata.health")
local validation = require("strata.schema")

local ipairs, pairs, clock, time, format = ipairs, pairs, os.clock, os.time, string.format

local M = {}

local SOURCE = "admin_config"
local POLL_S = 1        -- re-read period while no feed listens
local SAFETY_S = 30     -- re-read period even while it does

local cache, loaded_at, loaded_version = nil, -math.huge, nil

local function now() return time() + (clock() % 1) end

local function stale(version, t)
  if not cache then return true end
  if version == nil then return t - loaded_at >= POLL_S end
  return version ~= loaded_version or t - loaded_at >= SAFETY_S
end

-- The validator's verdict on one stored row: nil when valid, else a message.
local function invalid(row)
  local bad = validation.check_rows(SOURCE, { { config_key = row.config_key, config_data = row.config_data } },
    { action = "insert", partial = false, schema = "public", table = SOURCE, auth = { role = "service_role" },
      filters = {} })
  if not bad then return nil end
  if bad.failed then return format("the validator %s failed on it (the log has its error)", bad.file) end
  local parts = {}
  for _, e in ipairs(bad.errors) do parts[#parts + 1] = e.path .. ": " .. e.message end
  return table.concat(parts, "; ")
end

-- The new view from the rows read: valid rows as they are, an invalid
-- row's key with its previous valid data.  The warnings are the process's
-- (every state may raise and clear them, and a new Lua generation starts
-- with an empty view): held ones whose row is valid or gone are cleared.
local function rebuild(rows, previous)
  local by_key, held = {}, {}
  for _, key in ipairs(health.keys(SOURCE)) do held[key] = true end
  for _, r in ipairs(rows) do
    local key = r.config_key
    local why = invalid(r)
    if not why then
      by_key[key] = r.config_data
      if held[key] and health.clear(SOURCE, key) then log.info("admin_config row valid again", { config_key = key }) end
    else
      by_key[key] = previous[key]
      local message = format("admin_config row %q is invalid and not served: %s", key, why)
      if health.warn(SOURCE, key, message) then
        log.error(message, { config_key = key, kept = previous[key] ~= nil and "the last valid data" or "nothing" })
      end
    end
    held[key] = nil
  end
  for key in pairs(held) do health.clear(SOURCE, key) end
  return by_key
end

--- Every valid configuration: { [config_key] = config_data }.  Read as
-- strata's own role (strata.pg: no caller settings, no RLS): the
-- configuration applies to callers who may not read admin_config.
function M.all()
  -- The version is read before the query: a change committed during it
  -- moves the version past the one kept, so the next call reads again.
  local version, t = broker.admin_config_version(), now()
  if not stale(version, t) then return cache end
  local rows, err = pg.query("select config_key, config_data from public.admin_config")
  if not rows then
    log.warn("cannot read admin_config; keeping the last known", { error = err.message })
    return cache or {}
  end
  cache, loaded_at, loaded_version = rebuild(rows, cache or {}), t, version
  return cache
end

--- One key's valid configuration, or nil.
function M.get(key)
  return M.all()[key]
end

return M
