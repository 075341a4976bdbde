-- Row policies of the orchestrator schema (lua/policies/orchestrator/*.lua)
-- end to end.  orchestrator.users.id is the auth uid of the signed-in user;
-- everything else hangs from a user's conversations (seed 002: "filter by
-- user_id").
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "policies-spec-secret"

local function token(args) return srv.token(SECRET, args) end

-- A REST client on the orchestrator profile, as the bearer of `tok` (nil: anon).
local function client(port, tok)
  return srv.rest_client(port, tok, { ["Accept-Profile"] = "orchestrator", ["Content-Profile"] = "orchestrator" })
end

local function pluck(rows, key)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[key] end
  table.sort(out)
  return out
end

local lit = h.lit

describe("row policies of the orchestrator schema #server", function()
  local server, alice, bob, admin, anon, service
  local A, B
  local conv_a, conv_b, proj_a, proj_b, step_a, step_b, deliv_a, deliv_b

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    A, B = h.uuid(), h.uuid()
    alice = client(server.port, token("--sub " .. A))
    bob = client(server.port, token("--sub " .. B))
    admin = client(server.port, token("--sub " .. h.uuid() .. " --admin"))
    anon = client(server.port, nil)
    service = client(server.port, token("--role service_role"))

    conv_a, conv_b, proj_a, proj_b = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    step_a, step_b, deliv_a, deliv_b = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    h.accepts(([[
      insert into orchestrator.users(id, email, role) values (%s, %s, 'user'), (%s, %s, 'user');
      insert into orchestrator.agent_conversations(id, user_id, agent_name, agent_type) values
        (%s, %s, 'planner', 'orchestrator'), (%s, %s, 'planner', 'orchestrator');
      insert into orchestrator.projects(id, conversation_id, name) values (%s, %s, 'Alice''s plan'), (%s, %s, 'Bob''s plan');
      insert into orchestrator.project_steps(id, project_id, step_id, step_index, step_type, step_name) values
        (%s, %s, 's1', 0, 'research', 'Read'), (%s, %s, 's1', 0, 'research', 'Read');
      insert into orchestrator.deliverables(id, user_id, conversation_id, title, type) values
        (%s, %s, %s, 'Alice''s report', 'document'), (%s, %s, %s, 'Bob''s report', 'document');
      insert into orchestrator.deliverable_versions(deliverable_id, version_number, content) values
        (%s, 1, 'draft A'), (%s, 1, 'draft B');
    ]]):format(lit(A), lit(A .. "@example.test"), lit(B), lit(B .. "@example.test"),
      lit(conv_a), lit(A), lit(conv_b), lit(B), lit(proj_a), lit(conv_a), lit(proj_b), lit(conv_b),
      lit(step_a), lit(proj_a), lit(step_b), lit(proj_b),
      lit(deliv_a), lit(A), lit(conv_a), lit(deliv_b), lit(B), lit(conv_b), lit(deliv_a), lit(deliv_b)))
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  describe("users", function()
    local function both() return ("users?select=id&id=in.(%s,%s)"):format(A, B) end

    it("shows a user only their own profile", function()
      assert.same({ A }, pluck(select(2, alice.get(both())), "id"))
      assert.same({ 200, {} }, { admin.get(both()) })
      assert.same({ 200, {} }, { anon.get(both()) })
    end)

    it("does not let a user grant themselves roles or namespaces", function()
      assert.equal(403, (alice.patch("users?id=eq." .. A, { roles = { "admin" }, namespace_access = { "*" } })))
      assert.equal("user", h.scalar("select role from orchestrator.users where id = " .. lit(A)))
    end)
  end)

  describe("agent_conversations", function()
    local function both() return ("agent_conversations?select=id&id=in.(%s,%s)"):format(conv_a, conv_b) end

    it("shows a user only their own conversations, and service_role all", function()
      assert.same({ conv_a }, pluck(select(2, alice.get(both())), "id"))
      assert.same({ conv_b }, pluck(select(2, bob.get(both())), "id"))
      assert.equal(2, #select(2, service.get(both())))
    end)

    it("changes nothing when a user ends someone else's conversation", function()
      assert.same({ 200, {} }, { bob.patch("agent_conversations?id=eq." .. conv_a, { agent_name = "hijacked" }) })
      assert.equal("planner", h.scalar("select agent_name from orchestrator.agent_conversations where id = " .. lit(conv_a)))
    end)

    it("lets a user start a conversation of their own and not one in someone else's name", function()
      assert.equal(201, (alice.post("agent_conversations", { user_id = A, agent_name = "coder", agent_type = "worker" })))
      assert.equal(403, (alice.post("agent_conversations", { user_id = B, agent_name = "coder", agent_type = "worker" })))
      assert.equal(401, (anon.post("agent_conversations", { user_id = A, agent_name = "coder", agent_type = "worker" })))
    end)
  end)

  describe("tasks", function()
    it("are filed only into the user's own conversations", function()
      assert.equal(201, (alice.post("tasks", { user_id = A, agent_conversation_id = conv_a, method = "plan", prompt = "go" })))
      local code, err = alice.post("tasks", { user_id = A, agent_conversation_id = conv_b, method = "plan", prompt = "spy" })
      assert.equal(403, code)
      assert.equal("42501", err.code)
    end)
  end)

  describe("projects and their steps", function()
    it("show a user only the projects and steps of their own conversations", function()
      assert.same({ proj_a }, pluck(select(2, alice.get(("projects?select=id&id=in.(%s,%s)"):format(proj_a, proj_b))), "id"))
      assert.same({ step_a }, pluck(select(2, alice.get(("project_steps?select=id&id=in.(%s,%s)"):format(step_a, step_b))), "id"))
    end)

    it("refuse a subproject under someone else's project, and a step in it", function()
      assert.equal(403, (alice.post("projects", { conversation_id = conv_a, name = "sub", parent_project_id = proj_b })))
      assert.equal(403, (alice.post("project_steps", { project_id = proj_b, step_id = "s2", step_index = 1,
        step_type = "research", step_name = "Sneak" })))
      assert.equal(201, (alice.post("project_steps", { project_id = proj_a, step_id = "s2", step_index = 1,
        step_type = "research", step_name = "Write" })))
    end)

    it("delete nothing of someone else's", function()
      assert.same({ 200, {} }, { alice.delete("project_steps?id=eq." .. step_b) })
      assert.equal("1", h.scalar("select count(*) from orchestrator.project_steps where id = " .. lit(step_b)))
    end)
  end)

  describe("deliverables and their versions", function()
    it("show a user only their own", function()
      assert.same({ deliv_a }, pluck(select(2, alice.get(("deliverables?select=id&id=in.(%s,%s)"):format(deliv_a, deliv_b))), "id"))
      assert.same({ deliv_a }, pluck(select(2, alice.get(("deliverable_versions?select=deliverable_id&deliverable_id=in.(%s,%s)")
        :format(deliv_a, deliv_b))), "deliverable_id"))
    end)

    it("take new versions from their owner only", function()
      assert.equal(201, (alice.post("deliverable_versions", { deliverable_id = deliv_a, version_number = 2, content = "final A" })))
      assert.equal(403, (alice.post("deliverable_versions", { deliverable_id = deliv_b, version_number = 2, content = "defaced" })))
    end)
  end)
end)
