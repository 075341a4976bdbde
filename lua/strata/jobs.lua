-- strata.jobs: the scheduler.  lua/jobs.lua (hot-reloaded like every
-- script) lists the jobs:
--
--   return {
--     { name = "orchestrator.expire_timed_out_tasks", every_ms = 10000,
--       run = function(tx) return tx.query("select orchestrator.expire_timed_out_tasks()") end },
--   }
--
-- A job with each_instance = true runs once per period on every instance
-- instead (its period claimed as "name@host:listen": config.instance), and
-- at the first tick after a start or reload.
--
-- The C host ticks worker 0 of each instance every conf jobs_tick_ms
-- (core/lua/lua_tick.c) as a service_role request to POST /_strata/jobs/tick,
-- which runs M.tick.  Per job and tick: strata_jobs.claim (sql/157) gives
-- the job's turn to one instance per every_ms across the instances sharing
-- the database; the run is one service transaction holding the job's
-- advisory lock (pg_try_advisory_xact_lock: never two runs at once), in
-- which run(tx) does its work — it answers anything but nil (nil, err
-- or a raise is a failure, and its work is rolled back).  A failure is an
-- error_logs row (log.error_row, category "job") and counts in the job's
-- row; the other jobs run all the same.  The counts (runs, failures,
-- skipped, last error and duration) are the rows of strata_jobs.jobs, GET
-- /_strata/jobs (service_role).
--
--   jobs.check(file, list) -> true | nil, message (the reload's check of lua/jobs.lua)
--   jobs.tick(req)         -> status, body (POST /_strata/jobs/tick, the C host's tick)
--   jobs.list(req)         -> status, body (GET /_strata/jobs: the declared jobs and their counts)

local cjson = require("cjson")
local config = require("strata.config")
local data = require("strata.data")
local db = require("strata.db")
local log = require("strata.log")

local type, pcall, ipairs, tostring, format = type, pcall, ipairs, tostring, string.format
local math_type = math.type

local NULL = cjson.null

local M = {}

M.PATH = "/_strata/jobs/tick"

local NAME = "^[%w_.:-]+$"

--- Checks lua/jobs.lua's value: a list of { name (unique), every_ms, run }.
function M.check(file, list)
  if type(list) ~= "table" then return nil, file .. ": the jobs file must return a list of jobs" end
  local seen = {}
  for i, job in ipairs(list) do
    if type(job) ~= "table" then return nil, format("%s: job %d is not a table", file, i) end
    if type(job.name) ~= "string" or not job.name:find(NAME) then
      return nil, format("%s: job %d needs a name of letters, digits and _.:-", file, i)
    end
    if seen[job.name] then return nil, format("%s: job %s is declared twice", file, job.name) end
    seen[job.name] = true
    if math_type(job.every_ms) ~= "integer" or job.every_ms <= 0 then
      return nil, format("%s: job %s needs every_ms, a positive integer", file, job.name)
    end
    if type(job.run) ~= "function" then return nil, format("%s: job %s needs a run function", file, job.name) end
    if job.each_instance ~= nil and type(job.each_instance) ~= "boolean" then
      return nil, format("%s: job %s: each_instance is true or false", file, job.name)
    end
  end
  return true
end

local function jobs_file()
  local ok, list = pcall(require, "jobs")
  if ok then return list end
  if tostring(list):find("module 'jobs' not found", 1, true) then return {} end
  error(list, 0)
end

-- The name a job claims its periods under: an each_instance job runs once
-- per period on every instance ("name@host:listen"), others once across them.
local ran_here = {} -- job name -> true once run by this Lua state

local function claim_name(job)
  return job.each_instance and job.name .. "@" .. config.instance or job.name
end

-- One run of job in its service transaction: true, false (its lock is
-- held by a run elsewhere) or nil, err.
local function run_locked(job)
  return data.as_service().transaction(function(tx)
    local rows, err = tx.query("select pg_try_advisory_xact_lock(hashtextextended('strata.job:' || $1, 0)) as mine",
      claim_name(job))
    if not rows then return nil, err end
    if not rows[1].mine then return false end
    local res, rerr = job.run(tx)
    if res == nil then return nil, rerr or "the job answered nil" end
    return true
  end)
end

local function describe(err)
  if type(err) == "table" then return tostring(err.message or err.code or "error") end
  return tostring(err)
end

-- Runs job if its turn came; "ran", "failed", "skipped" or "not_due";
-- nil, err when the database does not answer (the tick stops there).
local function one(job)
  local name = claim_name(job)
  local rows, err = db.query_as_service("select strata_jobs.claim($1, $2) as due", name, job.every_ms)
  if not rows then return nil, err end
  -- An each_instance job also runs at its process's first tick, whatever
  -- the period the instance's previous process claimed.
  local first = job.each_instance and not ran_here[job.name]
  if rows[1].due ~= true and not first then return "not_due" end
  ran_here[job.name] = true
  local called, res, rerr = pcall(run_locked, job)
  local ok, message = true, nil
  if not called then ok, message = false, describe(res)
  elseif res == nil then ok, message = false, describe(rerr)
  elseif res == false then ok = nil end
  if ok == false then
    log.error_row({ error_message = format("job %s failed: %s", job.name, message), error_type = "system",
      error_category = "job", details = { job = job.name } })
  end
  rows, err = db.query_as_service("select strata_jobs.finish($1, $2, $3)", name,
    ok == nil and NULL or ok, message or NULL)
  if not rows then log.error("jobs: cannot record a run", { job = job.name, error = describe(err) }) end
  return ok and "ran" or ok == false and "failed" or "skipped"
end

local function refused()
  return 403, { code = "42501", message = "the jobs endpoints are service_role's", details = NULL, hint = NULL }
end

--- The tick: each job of lua/jobs.lua whose turn came, one after the
-- other.  Answers what happened to each ({ name = "ran" | ... }).
function M.tick(req)
  if not (req.auth and req.auth.role == "service_role") then return refused() end
  local out = {}
  for _, job in ipairs(jobs_file()) do
    local what, err = one(job)
    if not what then -- the C host logs the answer; the next tick tries again
      return 503, { code = err.code or "08000", message = describe(err), details = NULL, hint = NULL }
    end
    out[job.name] = what
  end
  return 200, out
end

--- The jobs lua/jobs.lua declares, each with its row of strata_jobs.jobs
-- (runs, failures, skipped, last_error, ...) when it has run (this
-- instance's row for an each_instance job).
function M.list(req)
  if not (req.auth and req.auth.role == "service_role") then return refused() end
  local rows, err = db.query_as_service("select * from strata_jobs.jobs")
  if not rows then return 503, { code = err.code, message = describe(err), details = NULL, hint = NULL } end
  local by = {}
  for _, row in ipairs(rows) do by[row.name] = row end
  local out = {}
  for i, job in ipairs(jobs_file()) do
    local row = by[claim_name(job)] or {}
    out[i] = { name = job.name, every_ms = job.every_ms, runs = row.runs or 0, failures = row.failures or 0,
      skipped = row.skipped or 0, last_started_at = row.last_started_at or NULL, last_duration_ms =
      row.last_duration_ms or NULL, last_error = row.last_error or NULL, last_error_at = row.last_error_at or NULL }
  end
  return 200, { jobs = out }
end

return M
