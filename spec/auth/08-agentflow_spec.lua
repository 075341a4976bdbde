-- AgentFlow on /auth/v1 (seed 004): a CEO signs in with their
-- agentflow.users password and gets a token whose sub is their id; a CEO
-- creates API keys for their agents (shown once, stored as HMAC-SHA-256);
-- an agent trades its key for a short-lived token (sub = agent_id), and
-- expired, rotated-out, inactive, unknown keys and terminated agents get
-- 401; every exchange is logged for the CEO to read.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local A = require("fixtures.auth")

describe("AgentFlow CEOs and agent keys #server", function()
  local server, port
  local ceo, ceo_email, other, agent, agent2

  setup(function()
    server = A.start()
    port = server.port
    ceo, other, agent, agent2 = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    ceo_email = A.email("ceo")
    local ws, ws2 = h.uuid(), h.uuid()
    h.accepts(([[
      insert into agentflow.users (id, email, password_hash, name) values
        ('%s', %s, extensions.crypt('ceo-password', extensions.gen_salt('bf', 4)), 'Ada CEO'),
        ('%s', %s, extensions.crypt('other-password', extensions.gen_salt('bf', 4)), 'Other CEO');
      insert into agentflow.workspaces (id, owner_id, name, slug) values
        ('%s', '%s', 'WS', 'ws-%s'), ('%s', '%s', 'WS2', 'ws2-%s');
      insert into agentflow.agents (id, workspace_id, agent_level, agent_code, name, role_title, api_key_hash) values
        ('%s', '%s', 'organization', 'cto', 'CTO', 'Chief', extensions.crypt('x', extensions.gen_salt('bf', 4))),
        ('%s', '%s', 'organization', 'cfo', 'CFO', 'Chief', extensions.crypt('x', extensions.gen_salt('bf', 4)));
    ]]):format(ceo, h.lit(ceo_email), other, h.lit(A.email("other")), ws, ceo, ws:sub(1, 8), ws2, other, ws2:sub(1, 8),
      agent, ws, agent2, ws))
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  local ceo_token

  it("signs a CEO in with their agentflow password: sub is their agentflow.users id", function()
    local code, doc = A.call(port, "POST", "/token?grant_type=password", { email = ceo_email, password = "nope" })
    assert.equal(400, code)
    assert.equal("invalid_credentials", doc.error_code)
    code, doc = A.call(port, "POST", "/token?grant_type=password", { email = ceo_email, password = "ceo-password" })
    assert.equal(200, code)
    assert.equal(ceo, doc.user.id)
    local c = A.payload(doc.access_token)
    assert.equal(ceo, c.sub)
    assert.is_nil(c.agent_id)
    ceo_token = doc.access_token
    -- The agentflow policies apply: the CEO reads their agents.
    local _, body = srv.http(port, "GET", "/rest/v1/agents?select=id&order=name",
      nil, { Authorization = "Bearer " .. ceo_token, ["Accept-Profile"] = "agentflow" })
    assert.same({ { id = agent2 }, { id = agent } }, cjson.decode(body))
    -- A second sign-in uses the linked auth.users row; a new password reaches agentflow.users too.
    assert.equal(200, (A.call(port, "POST", "/token?grant_type=password", { email = ceo_email, password = "ceo-password" })))
    assert.equal(200, (A.call(port, "PUT", "/user", { password = "new-ceo-password" }, ceo_token)))
    -- The seed's hash was pgcrypto's $2a$; the new one is strata's $2b$, in both tables.
    assert.equal("t", h.scalar(([[select a.password_hash = u.encrypted_password and a.password_hash like '$2b$%%'
      from agentflow.users a join auth.users u using (id) where id = '%s']]):format(ceo)))
    assert.equal(200, (A.call(port, "POST", "/token?grant_type=password", { email = ceo_email, password = "new-ceo-password" })))
  end)

  local function new_key(id, body, token)
    return srv.rest(port, "POST", "/v1/agentflow/agents/" .. id .. "/keys", body or {},
      { Authorization = "Bearer " .. (token or ceo_token), ["Content-Type"] = "application/json" })
  end

  local function exchange(key)
    return A.call(port, "POST", "/token?grant_type=agent_key", { api_key = key })
  end

  local key1

  it("lets a CEO create a key for their agent, shown once and stored as a keyed hash", function()
    local code, doc = new_key(agent)
    assert.equal(201, code)
    assert.truthy(doc.api_key:match("^sfak_[%x-]+_[%w_-]+$"))
    assert.equal(agent, doc.agent_id)
    key1 = doc.api_key
    local stored = h.query(("select credential_hash, salt from agentflow.agent_credentials where id = '%s'"):format(doc.id))[1]
    assert.truthy(stored.credential_hash:match("^hmac%-sha256%$%x+$"))
    assert.falsy(stored.credential_hash:find(key1:match("_([^_]+)$"), 1, true))
    assert.equal(stored.credential_hash, h.scalar(("select api_key_hash from agentflow.agents where id = '%s'"):format(agent)))
    -- Another CEO's token, an agent's, or no token: refused.
    local _, o = A.call(port, "POST", "/token?grant_type=password", { email = h.scalar(("select email from agentflow.users where id = '%s'"):format(other)), password = "other-password" })
    assert.equal(404, (new_key(agent, nil, o.access_token)))
    assert.equal(401, (srv.rest(port, "POST", "/v1/agentflow/agents/" .. agent .. "/keys", {}, { ["Content-Type"] = "application/json" })))
  end)

  it("trades a key for a short-lived token whose sub and agent_id are the agent", function()
    local code, doc = exchange(key1)
    assert.equal(200, code)
    assert.equal("bearer", doc.token_type)
    assert.equal(900, doc.expires_in)
    assert.is_nil(doc.refresh_token)
    local c = A.payload(doc.access_token)
    assert.equal(agent, c.sub)
    assert.equal(agent, c.agent_id)
    assert.equal("authenticated", c.role)
    -- The agent's policies apply: it reads the live agents of its workspace.
    local _, body = srv.http(port, "GET", "/rest/v1/agents?select=id",
      nil, { Authorization = "Bearer " .. doc.access_token, ["Accept-Profile"] = "agentflow" })
    assert.equal(2, #cjson.decode(body))
  end)

  it("refuses unknown, tampered and expired keys with 401, and logs every use", function()
    local want = { code = 401, error_code = "invalid_credentials", msg = "Invalid API key" }
    local code, doc = exchange("sfak_" .. h.uuid() .. "_nothing")
    assert.equal(401, code)
    assert.same(want, doc)
    assert.equal(401, (exchange(key1:sub(1, -2) .. (key1:sub(-1) == "A" and "B" or "A"))))
    assert.equal(401, (exchange("garbage")))
    assert.equal(400, (A.call(port, "POST", "/token?grant_type=agent_key", {})))
    local _, made = new_key(agent2)
    h.accepts(("update agentflow.agent_credentials set expires_at = localtimestamp - interval '1 second' where id = '%s'"):format(made.id))
    assert.equal(401, (exchange(made.api_key)))
    assert.equal("f", h.scalar(("select is_active from agentflow.agent_credentials where id = '%s'"):format(made.id)))
    local results = h.query(("select result from agentflow.agent_credential_uses where agent_id = '%s' order by id"):format(agent))
    local list = {}
    for i, r in ipairs(results) do list[i] = r.result end
    assert.same({ "ok", "bad_secret" }, list)
    -- The CEO reads the log of their agents through the API.
    local _, body = srv.http(port, "GET", "/rest/v1/agent_credential_uses?select=result,remote_addr&agent_id=eq." .. agent,
      nil, { Authorization = "Bearer " .. ceo_token, ["Accept-Profile"] = "agentflow" })
    local rows = cjson.decode(body)
    assert.equal(2, #rows, body)
    assert.equal("127.0.0.1", rows[1].remote_addr)
  end)

  it("keeps the old key valid for the grace period after a rotation, then refuses it", function()
    local _, k1 = new_key(agent2, { grace_seconds = 3600 })
    local _, k2 = new_key(agent2, { grace_seconds = 3600 })
    assert.equal(200, (exchange(k1.api_key)))
    assert.equal(200, (exchange(k2.api_key)))
    local _, k3 = new_key(agent2, { grace_seconds = 0 })
    assert.equal(401, (exchange(k2.api_key)))
    assert.equal(200, (exchange(k3.api_key)))
  end)

  it("gives no token to a terminated or soft-deleted agent, nor a key", function()
    local _, k = new_key(agent2)
    h.accepts(("update agentflow.agents set status = 'terminated' where id = '%s'"):format(agent2))
    assert.equal(401, (exchange(k.api_key)))
    assert.equal(409, (new_key(agent2)))
    local _, k1 = new_key(agent)
    h.accepts(("update agentflow.agents set deleted_at = now() where id = '%s'"):format(agent))
    assert.equal(401, (exchange(k1.api_key)))
  end)
end)
