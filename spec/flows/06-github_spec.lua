-- The GitHub webhook (lua/routes/agentflow_github.lua): signatures (valid,
-- invalid, missing, replayed) on payloads shaped like GitHub's, issues
-- synced into tasks, a merged PR completing the task it fixes.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit
local SERVER_SECRET = "server-wide webhook secret"

-- hex HMAC-SHA-256 of body under secret, by openssl.
local function hmac(secret, body)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb")); f:write(body); f:close()
  local p = assert(io.popen(("openssl dgst -sha256 -hmac %s -r %s"):format(srv.quote(secret), srv.quote(path))))
  local out = p:read("a"); p:close()
  os.remove(path)
  return (assert(out:match("^(%x+)")))
end

describe("GitHub webhook #server", function()
  local server, c, repo, delivery = nil, nil, nil, 0

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET, STRATA_GITHUB_WEBHOOK_SECRET = SERVER_SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    c = F.company()
    repo = "https://github.com/acme/site-" .. c.project:sub(1, 8)
    h.accepts(("update agentflow.projects set repository_url = %s where id = %s"):format(lit(repo), lit(c.project)))
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  -- Sends an event; opts: secret (default the server's), signature (overrides), id (delivery id).
  local function send(event, payload, opts)
    opts = opts or {}
    payload.repository = payload.repository or { full_name = repo:match("github.com/(.*)$"), html_url = repo }
    local body = cjson.encode(payload)
    delivery = delivery + 1
    local headers = { ["Content-Type"] = "application/json", ["X-GitHub-Event"] = event,
      ["X-GitHub-Delivery"] = opts.id or (c.project .. "-" .. delivery), ["User-Agent"] = "GitHub-Hookshot/abc" }
    local sig = opts.signature
    if sig == nil then sig = "sha256=" .. hmac(opts.secret or SERVER_SECRET, body) end
    if sig then headers["X-Hub-Signature-256"] = sig end
    local code, doc = srv.rest(server.port, "POST", "/v1/agentflow/github/webhook", body, headers)
    return code, doc
  end

  local function issue(id, number, action, extra)
    local i = { id = id, number = number, title = "Issue " .. number, body = "Steps to reproduce", state = "open",
      html_url = repo .. "/issues/" .. number, user = { login = "octocat" } }
    for k, v in pairs(extra or {}) do i[k] = v end
    return { action = action, issue = i, sender = { login = "octocat" } }
  end

  local function task_by_number(n)
    return h.query(("select id, status, title, description from agentflow.tasks where project_id = %s and github_issue_number = %d")
      :format(lit(c.project), n))[1]
  end

  it("refuses a missing or wrong signature with 401 and changes nothing", function()
    assert.equal(401, (send("issues", issue(9001, 1, "opened"), { signature = false })))
    assert.equal(401, (send("issues", issue(9001, 1, "opened"), { signature = "sha256=" .. string.rep("0", 64) })))
    assert.equal(401, (send("issues", issue(9001, 1, "opened"), { secret = "another secret" })))
    assert.is_nil(task_by_number(1))
  end)

  it("creates a task for an opened issue and updates it when edited; a replayed delivery changes nothing", function()
    local code, res = send("issues", issue(9002, 2, "opened"), { id = "replay-" .. c.project })
    assert.equal(200, code, cjson.encode(res))
    local t = task_by_number(2)
    assert.same({ status = "backlog", title = "Issue 2", description = "Steps to reproduce" }, { status = t.status,
      title = t.title, description = t.description })
    assert.equal(200, (send("issues", issue(9002, 2, "edited", { title = "Login fails" }))))
    assert.equal("Login fails", task_by_number(2).title)
    code, res = send("issues", issue(9002, 2, "edited", { title = "Replayed" }), { id = "replay-" .. c.project })
    assert.equal(200, code)
    assert.is_true(res.replayed)
    assert.equal("Login fails", task_by_number(2).title)
  end)

  it("uses the project's own secret, set and read by its CEO only, before the server's", function()
    local ceo = srv.rest_client(server.port, F.token("--sub " .. c.ceo), { ["Accept-Profile"] = "agentflow",
      ["Content-Profile"] = "agentflow" })
    assert.equal(204, (ceo.patch("projects?id=eq." .. c.project, { github_webhook_secret = "project secret" },
      { Prefer = "return=minimal" })))
    assert.equal(401, (send("issues", issue(9003, 3, "opened")))) -- the server's secret no longer applies
    assert.equal(401, (send("issues", issue(9003, 3, "opened"), { secret = "another secret" })))
    assert.equal(401, (send("issues", issue(9003, 3, "opened"), { signature = false })))
    assert.equal(200, (send("issues", issue(9003, 3, "opened"), { secret = "project secret" })))
    -- the CEO reads it back; an agent of the project and another CEO do not
    local code, rows = ceo.get("projects?select=id,github_webhook_secret&id=eq." .. c.project)
    assert.same({ 200, { { id = c.project, github_webhook_secret = "project secret" } } }, { code, rows })
    local agent = srv.rest_client(server.port, F.agent_token(F.agent(c)), { ["Accept-Profile"] = "agentflow" })
    code, rows = agent.get("projects?id=eq." .. c.project)
    assert.equal(200, code, cjson.encode(rows))
    assert.equal(c.project, rows[1].id)
    assert.is_nil(rows[1].github_webhook_secret)
    assert.equal(403, (agent.get("projects?select=github_webhook_secret&id=eq." .. c.project)))
    local other = srv.rest_client(server.port, F.token("--sub " .. F.company().ceo), { ["Accept-Profile"] = "agentflow" })
    assert.same({ 200, {} }, { other.get("projects?select=id,github_webhook_secret&id=eq." .. c.project) })
    -- without it, the server's secret again
    assert.equal(204, (ceo.patch("projects?id=eq." .. c.project, { github_webhook_secret = cjson.null },
      { Prefer = "return=minimal" })))
    assert.equal(200, (send("issues", issue(9003, 3, "edited"))))
  end)

  it("writes github_issue_assigned and github_pr_opened events", function()
    send("issues", issue(9004, 4, "opened"))
    assert.equal(200, (send("issues", issue(9004, 4, "assigned", { assignee = { login = "alice" } }))))
    assert.equal(200, (send("pull_request", { action = "opened", number = 40, pull_request = { id = 777, number = 40,
      title = "Fix login", body = "Fixes #4", merged = false, html_url = repo .. "/pull/40" } })))
    local rows = h.query(("select type, author_id, content->>'taskId' as task from agentflow.events where project_id = %s "
      .. "and type in ('github_issue_assigned', 'github_pr_opened') order by type"):format(lit(c.project)))
    local t = task_by_number(4)
    assert.same({ { type = "github_issue_assigned", task = t.id }, { type = "github_pr_opened", task = t.id } }, rows)
  end)

  it("completes the task a merged PR fixes, with its events and the assignee's trust", function()
    local a = F.agent(c)
    send("issues", issue(9005, 5, "opened"))
    local t = task_by_number(5)
    h.accepts(("update agentflow.tasks set status = 'assigned', assigned_agent_id = %s where id = %s"):format(lit(a), lit(t.id)))
    local code, res = send("pull_request", { action = "closed", number = 41, pull_request = { id = 778, number = 41,
      title = "Fix it", body = "This closes #5.", merged = true, html_url = repo .. "/pull/41" } })
    assert.equal(200, code, cjson.encode(res))
    assert.equal("completed", task_by_number(5).status)
    local types = h.query(("select type from agentflow.events where content->>'taskId' = %s order by type"):format(lit(t.id)))
    assert.same({ { type = "github_pr_merged" }, { type = "task_completed" } }, types)
    -- 50 + 2 (task completed) + 3 (PR merged)
    assert.equal("55.00", h.scalar("select trust_score from agentflow.agents where id = " .. lit(a)))
  end)

  it("answers 400 to a pull_request event without a title, and writes nothing", function()
    local code, res = send("pull_request", { action = "opened", number = 42, pull_request = { id = 779, number = 42,
      body = "Fixes #4", merged = false } })
    assert.equal(400, code, cjson.encode(res))
    assert.equal("PGRST102", res.code)
    assert.truthy(res.message:find("pull_request.title", 1, true), res.message)
    assert.equal("0", h.scalar(("select count(*) from agentflow.events where project_id = %s and content->>'number' = '42'")
      :format(lit(c.project))))
  end)

  it("cancels the task of an issue closed as not planned", function()
    send("issues", issue(9006, 6, "opened"))
    assert.equal(200, (send("issues", issue(9006, 6, "closed", { state = "closed", state_reason = "not_planned" }))))
    assert.equal("cancelled", task_by_number(6).status)
  end)
end)
