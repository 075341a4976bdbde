-- Sessions that really end: once a session is deleted (logout, refresh-
-- token reuse, a user deleted), every strata instance on the database
-- refuses its access tokens (401), from memory fed by NOTIFY; an instance
-- started later loads the ended sessions from auth.revoked_sessions.
local h = require("helpers")
local srv = require("server_helpers")
local A = require("fixtures.auth")

describe("revoked sessions #server", function()
  local a, b

  setup(function()
    a = A.start()
    b = A.start()
  end)

  teardown(function()
    for _, s in ipairs({ a, b }) do
      assert.equal(0, s.stop(), s.log())
      s.cleanup()
    end
  end)

  local function rest(server, token)
    return (srv.http(server.port, "GET", "/rest/v1/Chat?select=id&limit=1", nil, { Authorization = "Bearer " .. token }))
  end

  -- Polls until the token is refused; the status seen last.
  local function refused(server, token)
    local code
    for _ = 1, 100 do
      code = rest(server, token)
      if code == 401 then break end
      srv.sleep(0.05)
    end
    return code
  end

  local function session()
    local _, s = A.call(a.port, "POST", "/signup", { email = A.email("rev"), password = "secret-pw" })
    return s
  end

  it("refuses a logged-out session's token on the other instance", function()
    local s = session()
    assert.equal(200, rest(b, s.access_token))
    assert.equal(200, rest(a, s.access_token))
    assert.equal(204, (A.call(a.port, "POST", "/logout", nil, s.access_token)))
    -- The instance that ended it refuses the token at once; the other one
    -- once the NOTIFY arrives.
    assert.equal(401, rest(a, s.access_token))
    assert.equal(401, refused(b, s.access_token))
    local code, body = srv.http(b.port, "GET", "/rest/v1/Chat", nil, { Authorization = "Bearer " .. s.access_token })
    assert.equal(401, code)
    assert.truthy(body:find("session ended", 1, true))
  end)

  it("keeps the user's other sessions working after a local logout", function()
    local s1 = session()
    local _, s2 = A.call(a.port, "POST", "/token?grant_type=password", { email = s1.user.email, password = "secret-pw" })
    assert.equal(204, (A.call(a.port, "POST", "/logout?scope=local", nil, s1.access_token)))
    assert.equal(401, refused(b, s1.access_token))
    assert.equal(200, rest(b, s2.access_token))
  end)

  it("refuses the tokens of a session ended by refresh-token reuse", function()
    local s = session()
    local sid = A.payload(s.access_token).session_id
    local _, r1 = A.call(a.port, "POST", "/token?grant_type=refresh_token", { refresh_token = s.refresh_token })
    assert.equal(200, rest(b, r1.access_token))
    h.accepts(("update auth.refresh_tokens set updated_at = now() - interval '1 minute' where session_id = '%s'"):format(sid))
    assert.equal(400, (A.call(b.port, "POST", "/token?grant_type=refresh_token", { refresh_token = s.refresh_token })))
    assert.equal(401, refused(a, r1.access_token))
    assert.equal(401, refused(b, s.access_token))
  end)

  it("refuses the tokens of a deleted user's sessions", function()
    local s = session()
    assert.equal(200, rest(b, s.access_token))
    h.accepts(("delete from auth.users where id = '%s'"):format(s.user.id))
    assert.equal(401, refused(b, s.access_token))
  end)

  it("loads the ended sessions when an instance starts, and counts them in /metrics", function()
    local s = session()
    assert.equal(204, (A.call(a.port, "POST", "/logout", nil, s.access_token)))
    local c = A.start()
    local code = refused(c, s.access_token)
    local _, metrics = srv.http(c.port, "GET", "/metrics")
    assert.equal(0, c.stop(), c.log())
    c.cleanup()
    assert.equal(401, code)
    local held = tonumber(metrics:match("\nstrata_auth_revoked_sessions (%d+)"))
    assert.is_true(held >= 1)
  end)
end)
