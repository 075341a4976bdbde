-- The scheduler (lua/jobs.lua, lua/strata/jobs.lua, core/lua/lua_tick.c):
-- two instances on one database run each job once per period, a job that
-- raises is an error_logs row and the others go on, the timeout job ends
-- orchestrator tasks past timeout_seconds, and a reload changes the list.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

-- The suite runs the #server specs twice on one database: names of this run.
local RUN = tostring(os.time()) .. tostring(math.random(1000, 9999))
local COUNT, RAISE, EXPIRE, ADDED = "spec.count." .. RUN, "spec.raise." .. RUN, "spec.expire." .. RUN,
  "spec.added." .. RUN
local BLOCKED = "spec.blocked." .. RUN

local function jobs_file(list)
  local out = { "return {" }
  for _, j in ipairs(list) do out[#out + 1] = ("  { name = %q, every_ms = %d, run = %s },"):format(j[1], j[2], j[3]) end
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

-- A run records the start its claim gave it (strata_jobs.jobs.last_started_at).
local COUNTING = [[function(tx) return tx.query("insert into spec_job_runs(job, instance, started) select $1, $2, "
  .. "last_started_at from strata_jobs.jobs where name = $1 returning 1", %q, os.getenv("STRATA_LISTEN")) end]]

local FIRST = jobs_file({
  { COUNT, 1000, COUNTING:format(COUNT) },
  { RAISE, 200, ("function() error(%q) end"):format("boom " .. RAISE) },
  { EXPIRE, 200, [[function(tx) return tx.query("select orchestrator.expire_timed_out_tasks() as n") end]] },
  { BLOCKED, 200, [[require("strata.agentflow").blocked_too_long]] },
})

-- Waits (at most `seconds`) until sql's scalar is "t".
local function eventually(sql, seconds)
  for _ = 1, seconds * 10 do
    if h.scalar(sql) == "t" then return true end
    srv.sleep(0.1)
  end
  return false
end

local function job_row(name)
  return h.query("select runs, failures, last_error from strata_jobs.jobs where name = " .. lit(name))[1]
end

describe("scheduled jobs #server", function()
  local dir, one, two

  setup(function()
    h.accepts([[drop table if exists spec_job_runs;
      create table spec_job_runs (id bigint generated always as identity primary key,
        job text not null, instance text, started timestamptz not null);
      grant all on spec_job_runs to service_role]])
    dir = srv.lua_dir({ ["jobs.lua"] = FIRST })
    local env = { STRATA_JWT_SECRET = F.SECRET, STRATA_LUA_DIR = dir, STRATA_RELOAD_WATCH = "false",
      STRATA_JOBS_TICK_MS = "100" }
    one, two = srv.start(env), srv.start(env)
    assert.equal(200, (srv.await(one.port, "/ready", 200, 10)), one.log())
    assert.equal(200, (srv.await(two.port, "/ready", 200, 10)), two.log())
  end)

  teardown(function()
    for _, s in ipairs({ one, two }) do
      assert.equal(0, s.stop(), s.log()) -- ticks in flight end cleanly (no leak under ASan)
      s.cleanup()
    end
    os.execute("rm -rf " .. srv.quote(dir))
    h.accepts("drop table spec_job_runs")
  end)

  it("ends an orchestrator task past its timeout within the job's period", function()
    local uid, task = h.uuid(), h.uuid()
    h.accepts(([[insert into orchestrator.users(id, email) values (%s, %s);
      insert into orchestrator.tasks(id, user_id, method, prompt, status, timeout_seconds)
        values (%s, %s, 'm', 'p', 'running', 1);
      update orchestrator.tasks set started_at = now() - interval '1 minute' where id = %s;
    ]]):format(lit(uid), lit(uid .. "@example.test"), lit(task), lit(uid), lit(task)))
    assert.is_true(eventually("select status = 'timeout' from orchestrator.tasks where id = " .. lit(task), 20))
    assert.equal("timeout", h.scalar("select error_code from orchestrator.tasks where id = " .. lit(task)))
  end)

  it("recalculates the assignee of a task blocked too long (the KPI event)", function()
    local c = F.company()
    local b = F.agent(c)
    local t = F.task(c, { status = "blocked", agent = b })
    h.accepts(("alter table agentflow.tasks disable trigger update_tasks_updated_at; "
      .. "update agentflow.tasks set updated_at = now() - interval '2 days' where id = %s; "
      .. "alter table agentflow.tasks enable trigger update_tasks_updated_at"):format(lit(t)))
    assert.is_true(eventually(("select count(*) = 1 from agentflow.events where type = 'kpi_updated' and "
      .. "content->>'changeReason' = 'task blocked too long' and %s = any(mentions)"):format(lit(b)), 20))
    assert.equal("48.00", h.scalar("select trust_score from agentflow.agents where id = " .. lit(b)))
  end)

  it("runs a job once per period across two instances", function()
    assert.is_true(eventually(("select count(*) >= 4 from spec_job_runs where job = %s"):format(lit(COUNT)), 30))
    -- one run per claimed period, whichever instance ran it, and no two
    -- periods closer than every_ms (less the claim's 5%)
    assert.equal("t", h.scalar(("select count(*) = count(distinct started) from spec_job_runs where job = %s")
      :format(lit(COUNT))))
    assert.equal("0", h.scalar(([[select count(*) from (select started - lag(started) over (order by started) as gap
      from spec_job_runs where job = %s) g where gap < interval '950 milliseconds']]):format(lit(COUNT))))
    -- the job's row counts each run once
    local row = job_row(COUNT)
    local runs = tonumber(h.scalar(("select count(*) from spec_job_runs where job = %s"):format(lit(COUNT))))
    assert.is_true(math.abs(tonumber(row.runs) - runs) <= 1, cjson.encode(row)) -- one may be between insert and finish
    assert.equal("0", row.failures)
  end)

  it("writes an error_logs row for a job that raises, and the others go on", function()
    assert.is_true(eventually(("select failures >= 2 from strata_jobs.jobs where name = %s"):format(lit(RAISE)), 20))
    assert.matches("boom " .. RAISE, job_row(RAISE).last_error, 1, true)
    assert.is_true(eventually(([[select count(*) >= 1 from public.error_logs where error_category = 'job'
      and error_message like %s]]):format(lit("job " .. RAISE .. " failed: %boom%")), 20))
    assert.is_true(eventually(("select runs >= 2 and failures = 0 from strata_jobs.jobs where name = %s")
      :format(lit(EXPIRE)), 20))
    -- service_role reads the counts; others may not
    local code, body = srv.http(one.port, "GET", "/_strata/jobs", nil,
      { Authorization = "Bearer " .. F.token("--role service_role") })
    assert.equal(200, code, body)
    local names = {}
    for _, j in ipairs(cjson.decode(body).jobs) do names[j.name] = j end
    assert.is_true(names[RAISE].failures >= 2)
    assert.equal(403, (srv.http(one.port, "GET", "/_strata/jobs", nil, { Authorization = "Bearer " .. F.token("--sub "
      .. h.uuid()) })))
    assert.equal(403, (srv.http(one.port, "POST", "/_strata/jobs/tick", "", { Authorization = "Bearer "
      .. F.token("--sub " .. h.uuid()) })))
  end)

  it("follows a reloaded jobs file", function()
    srv.write(dir .. "/jobs.lua", jobs_file({ { ADDED, 200, COUNTING:format(ADDED) } }))
    for _, s in ipairs({ one, two }) do assert.equal(200, (srv.http(s.port, "POST", "/admin/reload"))) end
    local added = ("select count(*) >= %%d from spec_job_runs where job = %s"):format(lit(ADDED))
    assert.is_true(eventually(added:format(2), 20))
    -- ticks of the new list ran the new job and not the one that left it
    local failures = job_row(RAISE).failures
    assert.is_true(eventually(added:format(6), 20))
    assert.equal(failures, job_row(RAISE).failures)
    -- a jobs file that is not a list of jobs is not swapped in
    srv.write(dir .. "/jobs.lua", 'return { { name = "x", every_ms = "soon", run = function() end } }')
    local code, body = srv.http(one.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("jobs.lua: job x needs every_ms", cjson.decode(body).error, 1, true)
  end)
end)
