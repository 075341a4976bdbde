-- The cluster rate limiter (sql/070_rate_limit_cells.sql): GCRA cells in
-- PostgreSQL with the same semantics as core/engine/limiter.c, the check and the
-- increment in one statement, so concurrent sessions never overshoot.
local h = require("helpers")

local function take(key, rate, period_ms, burst, consume)
  return ("select * from strata_rate_limit_take(%s, %d, %d, %d, %s)"):format(
    h.lit(key), rate, period_ms, burst, consume == false and "false" or "true")
end

local function row(sql, setup)
  local rows, err = h.query(sql, setup)
  assert(rows, err and err.raw)
  local r = rows[1]
  return { allowed = r.allowed == "t", remaining = tonumber(r.remaining),
    reset_ms = tonumber(r.reset_ms), retry_after_ms = tonumber(r.retry_after_ms) }
end

local function fresh(prefix) return prefix .. ":" .. h.uuid() end

describe("strata_rate_limit_take", function()
  it("allows exactly burst takes at once, then refuses with the time until the next one", function()
    local key = fresh("burst")
    local got = {}
    for i = 1, 4 do got[i] = row(take(key, 3, 60000, 3)) end
    for i = 1, 3 do
      assert.is_true(got[i].allowed, "take " .. i)
      assert.equal(3 - i, got[i].remaining)
      assert.equal(0, got[i].retry_after_ms)
    end
    -- T = 20 s: each take adds 20 s of debt.
    assert.is_true(got[1].reset_ms <= 20000 and got[1].reset_ms > 19000, tostring(got[1].reset_ms))
    assert.is_true(got[3].reset_ms <= 60000 and got[3].reset_ms > 59000, tostring(got[3].reset_ms))
    assert.is_false(got[4].allowed)
    assert.equal(0, got[4].remaining)
    -- Debt 60 s, T 20 s, W 60 s: the next take is possible in 20 s.
    assert.is_true(got[4].retry_after_ms <= 20000 and got[4].retry_after_ms > 19000, tostring(got[4].retry_after_ms))
    -- A refused take is not counted.
    local again = row(take(key, 3, 60000, 3))
    assert.is_false(again.allowed)
    assert.is_true(again.retry_after_ms <= got[4].retry_after_ms)
  end)

  it("lets a burst larger than the rate through at once, and burst 1 spaces requests", function()
    local big, strict = fresh("big"), fresh("strict")
    local n = 0
    for _ = 1, 8 do if row(take(big, 2, 60000, 5)).allowed then n = n + 1 end end
    assert.equal(5, n)
    assert.is_true(row(take(strict, 10, 60000, 1)).allowed)
    local r = row(take(strict, 10, 60000, 1))
    assert.is_false(r.allowed)
    assert.is_true(r.retry_after_ms <= 6000 and r.retry_after_ms > 5000, tostring(r.retry_after_ms))
  end)

  it("recovers one take per interval T", function()
    local key = fresh("recover")
    -- 2 per 400 ms, burst 2: T = 200 ms.
    local setup = take(key, 2, 400, 2) .. ";\n" .. take(key, 2, 400, 2)
    local refused = row(take(key, 2, 400, 2), setup)
    assert.is_false(refused.allowed)
    assert.is_true(refused.retry_after_ms > 0 and refused.retry_after_ms <= 200, tostring(refused.retry_after_ms))
    local later = row(take(key, 2, 400, 2), "select pg_sleep(0.25)")
    assert.is_true(later.allowed)
    assert.equal(0, later.remaining)
    -- Idle for a full window: the whole burst again.
    local idle = row(take(key, 2, 400, 2), "select pg_sleep(0.45)")
    assert.is_true(idle.allowed)
    assert.equal(1, idle.remaining)
  end)

  it("peeks without counting, also for a key never seen", function()
    local key = fresh("peek")
    local p = row(take(key, 3, 60000, 3, false))
    assert.is_true(p.allowed)
    assert.equal(3, p.remaining)
    assert.equal(0, p.reset_ms)
    assert.equal("0", h.scalar(("select count(*) from strata_rate_limits where key = %s"):format(h.lit(key))))
    row(take(key, 3, 60000, 3))
    p = row(take(key, 3, 60000, 3, false))
    assert.is_true(p.allowed)
    assert.equal(2, p.remaining)
    assert.equal(2, row(take(key, 3, 60000, 3, false)).remaining)
  end)

  it("refuses rules that are not positive or out of range", function()
    h.refuses("22023", take("x", 0, 1000, 1))
    h.refuses("22023", take("x", 1, 0, 1))
    h.refuses("22023", take("x", 1, 1000, 0))
    h.refuses("22023", take("x", 2000, 1, 1)) -- T would be under 1 µs
    h.refuses("22023", take("", 1, 1000, 1))
    h.refuses("22023", take("x", 1, 4000000000000, 2000000000)) -- burst * T past 2^62 µs
  end)

  it("sweeps idle keys and keeps limiting ones", function()
    local idle, busy = fresh("idle"), fresh("busy")
    h.accepts(take(idle, 1000, 1000, 1) .. ";\n" .. take(busy, 1, 3600000, 1))
    h.accepts("select pg_sleep(0.01)")
    assert.is_true(tonumber(h.scalar("select strata_rate_limit_sweep()")) >= 1)
    assert.equal("0", h.scalar(("select count(*) from strata_rate_limits where key = %s"):format(h.lit(idle))))
    assert.equal("1", h.scalar(("select count(*) from strata_rate_limits where key = %s"):format(h.lit(busy))))
    assert.is_false(row(take(busy, 1, 3600000, 1)).allowed)
  end)

  it("never allows more than the budget to concurrent sessions", function()
    local key = fresh("race")
    local sessions, per_session, budget = 8, 50, 20
    local sqlfile = os.tmpname()
    local f = assert(io.open(sqlfile, "w"))
    for _ = 1, per_session do
      f:write(("select allowed from strata_rate_limit_take(%s, %d, 3600000, %d);\n"):format(h.lit(key), budget, budget))
    end
    f:close()
    local url = "'" .. h.url:gsub("'", "'\\''") .. "'"
    local outs, cmds = {}, {}
    for i = 1, sessions do
      outs[i] = os.tmpname()
      cmds[i] = ("psql -X -q -At -v ON_ERROR_STOP=1 -d %s -f %s >%s 2>&1 &"):format(url, sqlfile, outs[i])
    end
    assert(os.execute("sh -c '" .. table.concat(cmds, " "):gsub("'", "'\\''") .. " wait'"))
    os.remove(sqlfile)
    local allowed, refused = 0, 0
    for i = 1, sessions do
      local g = assert(io.open(outs[i]))
      local text = g:read("a")
      g:close()
      os.remove(outs[i])
      for line in text:gmatch("[^\n]+") do
        if line == "t" then allowed = allowed + 1
        elseif line == "f" then refused = refused + 1
        else error("session " .. i .. ": " .. text) end
      end
    end
    assert.equal(sessions * per_session, allowed + refused)
    assert.equal(budget, allowed)
  end)
end)
