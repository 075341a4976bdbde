-- The rate limiter under load: 10,000 requests from 1,000 users (distinct
-- tokens) within a minute against a budget of 60 a minute per user (policy
-- local), unevenly spread so that about a hundred users exceed it, some of
-- them from two connections at once (so two workers race on one key).
-- Every user must get exactly min(sent, 60) answers 2xx and the rest 429.
--
-- Each user's requests are written at once (pipelined on keep-alive
-- connections) so they arrive within far less than the second after which
-- GCRA would give the user one more request (T = 60 s / 60).
local h = require("helpers")
local srv = require("server_helpers")
local socket = require("socket")

local SECRET = "ratelimit-load-spec-secret"
local USERS, TOTAL, LIMIT = 1000, 10000, 60
local CONNECTIONS = 16

-- How many requests each user sends: every tenth user 58 to 100 (most of
-- them over the budget, a few at or just under it), the rest share what is
-- left of TOTAL (2 or 3 each).
local function distribution()
  local sent, heavy_sum, light = {}, 0, {}
  for i = 1, USERS do
    if i % 10 == 0 then
      sent[i] = 58 + (i // 10 * 7) % 43
      heavy_sum = heavy_sum + sent[i]
    else
      light[#light + 1] = i
    end
  end
  local rest = TOTAL - heavy_sum
  for k, i in ipairs(light) do
    sent[i] = rest // #light + (k <= rest % #light and 1 or 0)
  end
  return sent
end

-- The requests as jobs { user, n }; a heavy user's in two halves, sent at
-- once on two connections.
local function jobs(sent)
  local list = {}
  for i, n in ipairs(sent) do
    if n > 30 then
      list[#list + 1] = { user = i, n = n // 2 }
      list[#list + 1] = { user = i, n = n - n // 2 }
    else
      list[#list + 1] = { user = i, n = n }
    end
  end
  return list
end

describe("rate limits under load #server", function()
  it("gives each of 1,000 users exactly min(sent, 60) of 10,000 requests", function()
    local sent = distribution()
    local sum = 0
    for _, n in ipairs(sent) do sum = sum + n end
    assert.equal(TOTAL, sum)
    local subs = {}
    for i = 1, USERS do subs[i] = h.uuid() end
    local tokens = srv.tokens(SECRET, subs)
    local requests = {}
    for i = 1, USERS do
      requests[i] = "GET /v1/hello/load HTTP/1.1\r\nHost: strata\r\nAuthorization: Bearer " .. tokens[i] .. "\r\n\r\n"
    end
    local s = srv.start({ STRATA_JWT_SECRET = SECRET, STRATA_RATE_LIMIT_USER_PER_MINUTE = tostring(LIMIT),
      STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0", STRATA_ACCESS_LOG = "off" })
    assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
    local conns = {}
    for c = 1, CONNECTIONS do conns[c] = srv.connect(s.port) end

    local ok, refused, other = {}, {}, {}
    for i = 1, USERS do ok[i], refused[i] = 0, 0 end
    local list = jobs(sent)
    local t0 = socket.gettime()
    for first = 1, #list, CONNECTIONS do
      local round = {}
      for c = 1, CONNECTIONS do
        local job = list[first + c - 1]
        if job then
          round[c] = job
          assert(conns[c]:send(requests[job.user]:rep(job.n)))
        end
      end
      for c, job in pairs(round) do
        for _ = 1, job.n do
          local status = assert(srv.read_response(conns[c]))
          if status == 200 then
            ok[job.user] = ok[job.user] + 1
          elseif status == 429 then
            refused[job.user] = refused[job.user] + 1
          else
            other[#other + 1] = status
          end
        end
      end
    end
    local elapsed = socket.gettime() - t0
    for c = 1, CONNECTIONS do conns[c]:close() end
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    assert.equal(0, s.stop(), s.log())
    s.cleanup()

    local wrong, over, total_ok = {}, 0, 0
    for i = 1, USERS do
      local want = math.min(sent[i], LIMIT)
      if ok[i] ~= want or refused[i] ~= sent[i] - want then
        wrong[#wrong + 1] = ("user %d sent %d: %d ok, %d refused"):format(i, sent[i], ok[i], refused[i])
      end
      if sent[i] > LIMIT then over = over + 1 end
      total_ok = total_ok + ok[i]
    end
    print(("\nload: %d requests from %d users (%d over the budget) in %.2f s (%.0f/s): %d 2xx, %d 429")
      :format(TOTAL, USERS, over, elapsed, TOTAL / elapsed, total_ok, TOTAL - total_ok))
    assert.same({}, other)
    assert.same({}, wrong)
    assert.is_true(over >= 80, "users over the budget: " .. over)
    assert.matches("strata_ratelimit_evictions_active_total 0", metrics)
  end)
end)
