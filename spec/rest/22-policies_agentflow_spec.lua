-- Row policies of the agentflow schema (lua/policies/agentflow/*.lua) end
-- to end.  A CEO's token has sub = agentflow.users.id; an agent's token
-- carries claims.agent_id = agentflow.agents.id (seed 004).
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local af = require("fixtures.agentflow")

local SECRET = "policies-spec-secret"

local function token(args) return srv.token(SECRET, args) end

local function agent_token(id)
  return token("--sub " .. id .. " --claims " .. srv.quote(cjson.encode({ agent_id = id })))
end

-- A REST client on the agentflow profile, as the bearer of `tok` (nil: anon).
local function client(port, tok)
  return srv.rest_client(port, tok, { ["Accept-Profile"] = "agentflow", ["Content-Profile"] = "agentflow" })
end

local function pluck(rows, key)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[key] end
  table.sort(out)
  return out
end

local function sorted(...)
  local t = { ... }
  table.sort(t)
  return t
end

-- "id=in.(a,b,...)"
local function ids(...) return "id=in.(" .. table.concat({ ... }, ",") .. ")" end

local lit = h.lit

describe("row policies of the agentflow schema #server", function()
  local server, ceo1, ceo2, cto, pm, dev, other_cto, admin, anon, service
  local C1, C2, W1, W2, P1, G_CTO, G_PM, G_DEV, G_OTHER, CRED, DRAFT, PENDING, APPROVED, TASK

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    C1, C2, W1, W2, P1 = h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid()
    G_CTO, G_PM, G_DEV, G_OTHER = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    CRED, DRAFT, PENDING, APPROVED, TASK = h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid()
    local hash = lit(af.HASH)
    h.accepts(([[
      insert into agentflow.users(id, email, password_hash, name) values
        (%s, %s, %s, 'CEO one'), (%s, %s, %s, 'CEO two');
      insert into agentflow.workspaces(id, owner_id, name, slug) values
        (%s, %s, 'One', %s), (%s, %s, 'Two', %s);
      insert into agentflow.projects(id, workspace_id, name, slug) values (%s, %s, 'Site', 'site');
      insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, api_key_hash) values
        (%s, %s, null, 'organization', 'cto', 'Ada', 'CTO', %s),
        (%s, %s, null, 'organization', 'pm', 'Pat', 'PM', %s),
        (%s, %s, %s, 'project', 'dev', 'Dan', 'Developer', %s),
        (%s, %s, null, 'organization', 'cto', 'Otto', 'CTO', %s);
      insert into agentflow.agent_credentials(id, agent_id, credential_type, credential_hash, salt) values
        (%s, %s, 'api_key', %s, 'salt');
      insert into agentflow.wiki_entries(id, workspace_id, proposed_by_agent_id, status, title, slug, content,
          approved_by, approved_at) values
        (%s, %s, %s, 'draft', 'Draft idea', 'draft-idea', 'not yet', null, null),
        (%s, %s, %s, 'pending_approval', 'Pending idea', 'pending-idea', 'please approve', null, null),
        (%s, %s, %s, 'approved', 'Coding style', 'coding-style', 'tabs', %s, now());
      insert into agentflow.tasks(id, project_id, github_issue_id, github_issue_number, assigned_agent_id, status, title)
        values (%s, %s, 1001, 1, %s, 'assigned', 'Build the site');
    ]]):format(
      lit(C1), lit(C1 .. "@example.test"), hash, lit(C2), lit(C2 .. "@example.test"), hash,
      lit(W1), lit(C1), lit("one-" .. W1:sub(1, 8)), lit(W2), lit(C2), lit("two-" .. W2:sub(1, 8)),
      lit(P1), lit(W1),
      lit(G_CTO), lit(W1), hash, lit(G_PM), lit(W1), hash, lit(G_DEV), lit(W1), lit(P1), hash, lit(G_OTHER), lit(W2), hash,
      lit(CRED), lit(G_CTO), hash,
      lit(DRAFT), lit(W1), lit(G_CTO), lit(PENDING), lit(W1), lit(G_CTO), lit(APPROVED), lit(W1), lit(G_PM), lit(C1),
      lit(TASK), lit(P1), lit(G_DEV)))

    ceo1 = client(server.port, token("--sub " .. C1))
    ceo2 = client(server.port, token("--sub " .. C2))
    cto = client(server.port, agent_token(G_CTO))
    pm = client(server.port, agent_token(G_PM))
    dev = client(server.port, agent_token(G_DEV))
    other_cto = client(server.port, agent_token(G_OTHER))
    admin = client(server.port, token("--sub " .. h.uuid() .. " --admin"))
    anon = client(server.port, nil)
    service = client(server.port, token("--role service_role"))
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  describe("agent_credentials", function()
    local path = function() return "agent_credentials?" .. ids(CRED) end

    it("are never readable by the agent they belong to, its CEO, an admin or anon", function()
      assert.same({ 200, {} }, { cto.get(path()) })
      assert.same({ 200, {} }, { ceo1.get(path()) })
      assert.same({ 200, {} }, { admin.get(path()) })
      assert.same({ 200, {} }, { anon.get(path()) })
    end)

    it("are read by service_role", function()
      assert.same({ CRED }, pluck(select(2, service.get(path())), "id"))
    end)

    it("hide credential_hash and salt from every client role, even by name", function()
      assert.equal(403, (ceo1.get("agent_credentials?select=credential_hash")))
      assert.equal(403, (cto.get("agent_credentials?salt=eq.salt")))
      assert.equal(401, (anon.get("agent_credentials?select=salt")))
      local _, rows = service.get("agent_credentials?select=credential_hash,salt&" .. ids(CRED))
      assert.same({ { credential_hash = af.HASH, salt = "salt" } }, rows)
    end)

    it("are never written through the API by a CEO, an agent or anon", function()
      local row = { agent_id = G_CTO, credential_type = "api_key", credential_hash = af.HASH, salt = "s" }
      assert.equal(403, (ceo1.post("agent_credentials", row)))
      assert.equal(403, (cto.patch("agent_credentials?" .. ids(CRED), { is_active = false })))
      assert.equal(401, (anon.post("agent_credentials", row)))
      assert.equal("t", h.scalar("select is_active from agentflow.agent_credentials where id = " .. lit(CRED)))
    end)
  end)

  describe("agents", function()
    local function all() return "agents?select=id&" .. ids(G_CTO, G_PM, G_DEV, G_OTHER) end

    it("are all visible to an organization-level agent of the same workspace", function()
      assert.same(sorted(G_CTO, G_PM, G_DEV), pluck(select(2, cto.get(all())), "id"))
    end)

    it("are visible to a project-level agent only within its project", function()
      assert.same({ G_DEV }, pluck(select(2, dev.get(all())), "id"))
    end)

    it("are visible to the CEO who owns the workspace and to no other CEO", function()
      assert.same(sorted(G_CTO, G_PM, G_DEV), pluck(select(2, ceo1.get(all())), "id"))
      assert.same({ G_OTHER }, pluck(select(2, ceo2.get(all())), "id"))
      assert.same({ 200, {} }, { anon.get(all()) })
    end)

    it("cannot raise their own trust score", function()
      assert.same({ 200, {} }, { cto.patch("agents?" .. ids(G_CTO), { trust_score = 100 }) })
      assert.equal("50.00", h.scalar("select trust_score from agentflow.agents where id = " .. lit(G_CTO)))
    end)

    it("never show api_key_hash to a CEO or an agent, even asked for by name or filtered on", function()
      local code, rows = ceo1.get("agents?" .. ids(G_CTO))
      assert.equal(200, code)
      assert.equal(1, #rows)
      assert.is_nil(rows[1].api_key_hash)
      assert.equal("Ada", rows[1].name)
      for _, path in ipairs({ "agents?select=id,api_key_hash&" .. ids(G_CTO), "agents?api_key_hash=eq." .. af.HASH,
        "agents?order=api_key_hash", "agents?select=k:api_key_hash::text" }) do
        local status, err = ceo1.get(path)
        assert.equal(403, status, path)
        assert.equal("42501", err.code, path)
        assert.equal(403, (cto.get(path)), path)
      end
      assert.equal(401, (anon.get("agents?select=api_key_hash")))
      code, rows = ceo1.patch("agents?" .. ids(G_DEV), { role_title = "Senior developer" })
      assert.equal(200, code)
      assert.is_nil(rows[1].api_key_hash)
    end)

    it("show api_key_hash to service_role", function()
      local code, rows = service.get("agents?select=api_key_hash&" .. ids(G_CTO))
      assert.equal(200, code)
      assert.same({ { api_key_hash = af.HASH } }, rows)
    end)

    it("are put on probation by their CEO only", function()
      assert.same({ 200, {} }, { ceo2.patch("agents?" .. ids(G_DEV), { status = "probation" }) })
      local code, rows = ceo1.patch("agents?" .. ids(G_PM), { status = "probation" })
      assert.equal(200, code)
      assert.same({ "probation" }, pluck(rows, "status"))
    end)
  end)

  describe("wiki_entries", function()
    local function entries() return "wiki_entries?select=id&" .. ids(DRAFT, PENDING, APPROVED) end

    it("show a draft only to the agent that proposed it, not to its CEO or the other agents", function()
      assert.same(sorted(DRAFT, PENDING, APPROVED), pluck(select(2, cto.get(entries())), "id"))
      assert.same({ APPROVED }, pluck(select(2, pm.get(entries())), "id"))
      assert.same(sorted(PENDING, APPROVED), pluck(select(2, ceo1.get(entries())), "id"))
    end)

    it("show approved entries to every agent of the workspace and to nobody outside it", function()
      assert.same({ APPROVED }, pluck(select(2, dev.get(entries())), "id"))
      assert.same({ 200, {} }, { other_cto.get(entries()) })
      assert.same({ 200, {} }, { ceo2.get(entries()) })
      assert.same({ 200, {} }, { anon.get(entries()) })
    end)

    it("take proposals from an agent in its own name only", function()
      local entry = { workspace_id = W1, proposed_by_agent_id = G_CTO, status = "draft", title = "Reviews", slug = "reviews",
        content = "two" }
      assert.equal(201, (cto.post("wiki_entries", entry)))
      entry.proposed_by_agent_id, entry.slug, entry.title = G_PM, "reviews-2", "Reviews 2"
      assert.equal(403, (cto.post("wiki_entries", entry)))
    end)

    it("take a proposal that leaves status to its default 'draft'", function()
      local code, rows = cto.post("wiki_entries", { workspace_id = W1, proposed_by_agent_id = G_CTO,
        title = "Defaults", slug = "defaults", content = "three" })
      assert.equal(201, code)
      assert.equal("draft", rows[1].status)
    end)

    it("do not let an agent approve its own proposal", function()
      local code, err = cto.patch("wiki_entries?" .. ids(PENDING), { status = "approved", approved_by = C1,
        approved_at = "2026-01-01T00:00:00" })
      assert.equal(403, code)
      assert.equal("42501", err.code)
      assert.equal("pending_approval", h.scalar("select status from agentflow.wiki_entries where id = " .. lit(PENDING)))
    end)

    it("are approved by their CEO in the CEO's own name only", function()
      local approval = { status = "approved", approved_by = C2, approved_at = "2026-01-01T00:00:00" }
      assert.equal(403, (ceo1.patch("wiki_entries?" .. ids(PENDING), approval)))
      approval.approved_by = C1
      local code, rows = ceo1.patch("wiki_entries?" .. ids(PENDING), approval)
      assert.equal(200, code)
      assert.same({ "approved" }, pluck(rows, "status"))
    end)
  end)

  describe("events", function()
    it("are appended by an agent in its own name only, and never by a CEO", function()
      local event = { type = "session_log", author_id = G_CTO, project_id = P1, content = { message = "planned" } }
      assert.equal(201, (cto.post("events", event)))
      event.author_id = G_DEV
      assert.equal(403, (cto.post("events", event)))
      event.author_id = cjson.null
      assert.equal(403, (ceo1.post("events", event)))
    end)

    it("can never be changed or deleted through the API", function()
      assert.equal(403, (cto.patch("events?author_id=eq." .. G_CTO, { content = { message = "rewritten" } })))
      assert.equal(403, (ceo1.delete("events?author_id=eq." .. G_CTO)))
    end)

    it("are read by the workspace's CEO and not by another CEO", function()
      assert.same({ G_CTO }, pluck(select(2, ceo1.get("events?select=author_id&author_id=eq." .. G_CTO)), "author_id"))
      assert.same({ 200, {} }, { ceo2.get("events?select=author_id&author_id=eq." .. G_CTO) })
    end)
  end)

  describe("sessions", function()
    it("are started by an agent in projects it works on, and not in another workspace's", function()
      assert.equal(201, (dev.post("sessions", { agent_id = G_DEV, project_id = P1 })))
      assert.equal(403, (other_cto.post("sessions", { agent_id = G_OTHER, project_id = P1 })))
      assert.equal(403, (dev.post("sessions", { agent_id = G_PM, project_id = P1 })))
    end)

    it("are read by the CEO of the workspace and not by another CEO", function()
      assert.same({ G_DEV }, pluck(select(2, ceo1.get("sessions?select=agent_id&agent_id=eq." .. G_DEV)), "agent_id"))
      assert.same({ 200, {} }, { ceo2.get("sessions?select=agent_id&agent_id=eq." .. G_DEV) })
    end)
  end)

  describe("tasks", function()
    it("are changed by the agent assigned to them (the status only through the workflow route)", function()
      local code, rows = dev.patch("tasks?" .. ids(TASK), { description = "started" })
      assert.equal(200, code)
      assert.same({ "started" }, pluck(rows, "description"))
      code, rows = dev.patch("tasks?" .. ids(TASK), { status = "in_progress" })
      assert.equal(422, code)
      assert.equal("/status", rows.details[1].path)
    end)

    it("cannot be handed to another agent by their assignee, nor changed by an agent not assigned", function()
      assert.equal(403, (dev.patch("tasks?" .. ids(TASK), { assigned_agent_id = G_CTO })))
      assert.same({ 200, {} }, { cto.patch("tasks?" .. ids(TASK), { description = "not mine" }) })
      assert.equal("started", h.scalar("select description from agentflow.tasks where id = " .. lit(TASK)))
    end)
  end)

  describe("users and workspaces", function()
    it("show a CEO their own account only, and agents none", function()
      assert.same({ C1 }, pluck(select(2, ceo1.get("users?select=id&" .. ids(C1, C2))), "id"))
      assert.same({ 200, {} }, { cto.get("users?select=id&" .. ids(C1, C2)) })
    end)

    it("never show a CEO their password_hash, which service_role reads", function()
      local code, rows = ceo1.get("users?" .. ids(C1))
      assert.equal(200, code)
      assert.equal(C1, rows[1].id)
      assert.is_nil(rows[1].password_hash)
      local status, err = ceo1.get("users?select=password_hash&" .. ids(C1))
      assert.equal(403, status)
      assert.equal("42501", err.code)
      assert.equal(403, (ceo1.get("users?password_hash=like.*&" .. ids(C1))))
      assert.same({ { password_hash = af.HASH } }, select(2, service.get("users?select=password_hash&" .. ids(C1))))
    end)

    it("let only the owner rename a workspace, and show an agent only its own", function()
      assert.same({ 200, {} }, { ceo2.patch("workspaces?" .. ids(W1), { name = "Mine" }) })
      assert.equal(200, (ceo1.patch("workspaces?" .. ids(W1), { name = "One Inc" })))
      assert.same({ W2 }, pluck(select(2, other_cto.get("workspaces?select=id&" .. ids(W1, W2))), "id"))
    end)
  end)
end)
