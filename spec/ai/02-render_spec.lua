-- POST /v1/ai/render against bin/strata: seed 001's priority table case by
-- case with every source real (computed, client, a broker value from the
-- native engine, project / org / user variables, the prompt's defaults),
-- the caller's policies (a project the caller does not belong to lends no
-- value, and the value appears nowhere in the answer), missing names, and
-- the 4xx answers (template syntax with its position, bad context, a prompt
-- the caller may not read).
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "ai-render-spec-secret"

describe("POST /v1/ai/render #server", function()
  local s, w = nil, {}

  local function render(tok, body)
    return srv.rest(s.port, "POST", "/v1/ai/render", body,
      { ["Content-Type"] = "application/json", Authorization = tok and ("Bearer " .. tok) or nil })
  end

  setup(function()
    w.me, w.other = h.user(), h.user()
    w.org, w.project, w.foreign = h.uuid(), h.uuid(), h.uuid()
    w.broker, w.prompt, w.others_prompt = h.uuid(), h.uuid(), h.uuid()
    local L = h.lit
    -- Every name below is held by the sources from its winner down, so
    -- each source must beat the ones under it.
    h.accepts(table.concat({
      ("insert into organizations(id, name, slug) values (%s, 'o', %s)"):format(L(w.org), L("r-" .. w.org)),
      ("insert into user_organizations(user_id, org_id) values (%s, %s)"):format(L(w.me), L(w.org)),
      ("insert into projects(id, name) values (%s, 'p'), (%s, 'hidden')"):format(L(w.project), L(w.foreign)),
      ("insert into user_projects(user_id, project_id) values (%s, %s)"):format(L(w.me), L(w.project)),
      ("insert into project_variables(project_id, key, value) values (%s, 'v_project', 'P'), (%s, 'v_broker', 'P'), (%s, 'secret_plan', 'TOP-SECRET-PLAN')")
        :format(L(w.project), L(w.project), L(w.foreign)),
      ("insert into org_variables(org_id, key, value) values (%s, 'v_project', 'O'), (%s, 'v_org', 'O')"):format(L(w.org), L(w.org)),
      ("insert into user_variables(user_id, key, value) values (%s, 'v_org', 'U'), (%s, 'v_user', 'U'), (%s, 'v_client', 'U')")
        :format(L(w.me), L(w.me), L(w.me)),
      ("insert into user_variables(user_id, key, value) values (%s, 'v_user', 'OTHER')"):format(L(w.other)),
      ("insert into data_broker(id, name) values (%s, 'v_broker')"):format(L(w.broker)),
      ("insert into broker_values(broker_id, project_id, value) values (%s, %s, '\"B\"')"):format(L(w.broker), L(w.project)),
      ("insert into prompts(id, user_id, name, messages, variable_defaults) values (%s, %s, 'mine', %s, %s)"):format(
        L(w.prompt), L(w.me),
        L(cjson.encode({ { role = "system", content = "date {{current_date}} c {{v_client}} b {{v_broker}}" },
          { role = "user", content = "p {{v_project}} o {{v_org}} u {{v_user}} d {{v_default}} m {{v_missing}} cd {{ current_date }}" } })),
        L(cjson.encode({ { name = "v_default", defaultValue = "D" }, { name = "v_user", defaultValue = "no" },
          { name = "current_date", defaultValue = "no" } }))),
      ("insert into prompts(id, user_id, name, messages) values (%s, %s, 'theirs', '[{\"role\":\"user\",\"content\":\"x\"}]')")
        :format(L(w.others_prompt), L(w.other)),
    }, ";\n"))
    s = srv.start({ STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(s.port, "/ready", 200, 20)), s.log())
    w.tok = srv.token(SECRET, "--sub " .. w.me .. " --role authenticated")
  end)

  teardown(function() if s then s.stop(); s.cleanup() end end)

  it("fills each name from its highest source, says which, and lists the missing", function()
    local code, body = render(w.tok, { prompt_id = w.prompt,
      variables = { v_client = "C", current_date = "no" },
      context = { organization_id = w.org, project_id = w.project } })
    assert.equal(200, code, cjson.encode(body))
    local today = h.scalar("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD')")
    assert.same({ value = today, source = "computed" }, body.provenance.current_date)
    assert.same({ value = "C", source = "client" }, body.provenance.v_client)
    assert.same({ value = "B", source = "broker", scope = "project" }, body.provenance.v_broker, s.log())
    assert.same({ value = "P", source = "project" }, body.provenance.v_project)
    assert.same({ value = "O", source = "org" }, body.provenance.v_org)
    assert.same({ value = "U", source = "user" }, body.provenance.v_user)
    assert.same({ value = "D", source = "default" }, body.provenance.v_default)
    assert.same({ "v_missing" }, body.missing)
    assert.equal("date " .. today .. " c C b B", body.messages[1].content)
    assert.equal("p P o O u U d D m {{v_missing}} cd " .. today, body.messages[2].content)
    assert.equal("user", body.messages[2].role)
  end)

  it("takes the client's value over a broker's", function()
    local _, body = render(w.tok, { messages = { { role = "user", content = "{{v_broker}}" } },
      variables = { v_broker = "mine" }, context = { project_id = w.project } })
    assert.same({ value = "mine", source = "client" }, body.provenance.v_broker)
  end)

  it("takes the variables of a lower source when the higher ones have none", function()
    local code, body = render(w.tok, { messages = { { role = "user", content = "{{v_project}} {{v_broker}}" } },
      context = { organization_id = w.org } })
    assert.equal(200, code, cjson.encode(body))
    -- No project in the context: v_project falls to the org, v_broker (a
    -- project-scoped broker value and a project variable) to nothing.
    assert.equal("O {{v_broker}}", body.messages[1].content)
    assert.same({ "v_broker" }, body.missing)
  end)

  it("computes the dates in the caller's time zone", function()
    local code, body = render(w.tok, { messages = { { role = "user", content = "{{current_date}} {{current_timezone}}" } },
      variables = { user_timezone = "Asia/Tokyo" } })
    assert.equal(200, code)
    local d = h.scalar("select to_char(now() at time zone 'Asia/Tokyo', 'YYYY-MM-DD')")
    assert.equal(d .. " Asia/Tokyo", body.messages[1].content)
    code, body = render(w.tok, { messages = { { role = "user", content = "{{current_timezone}}" } },
      variables = { user_timezone = "Not/AZone" } })
    assert.equal("UTC", body.messages[1].content)
  end)

  it("does not leak a variable of a project the caller's policies hide", function()
    local code, body, _, raw = render(w.tok, { messages = { { role = "user", content = "plan: {{secret_plan}}" } },
      context = { project_id = w.foreign } })
    assert.equal(200, code, raw)
    assert.same({ "secret_plan" }, body.missing)
    assert.is_nil(body.provenance.secret_plan)
    assert.is_nil(raw:find("TOP-SECRET-PLAN", 1, true))
  end)

  it("reads only the caller's own user variables", function()
    local other = srv.token(SECRET, "--sub " .. w.other .. " --role authenticated")
    local _, body = render(other, { messages = { { role = "user", content = "{{v_user}}{{v_client}}" } } })
    assert.equal("OTHER{{v_client}}", body.messages[1].content)
  end)

  it("answers 422 with the position of a template error", function()
    local code, body = render(w.tok, { messages = { { role = "system", content = "fine" },
      { role = "user", content = "a\nb {{name" } } })
    assert.equal(422, code)
    assert.equal("template_syntax", body.code)
    assert.same({ message_index = 2, line = 2, column = 3, offset = 5 }, body.details)
    assert.matches("messages%[2%]%.content: unclosed {{ at line 2, column 3", body.message)
  end)

  it("answers 400 naming the field of a bad body", function()
    local code, body = render(w.tok, { messages = {}, context = { project_id = "nope" } })
    assert.equal(400, code)
    assert.equal("context.project_id: must be a uuid", body.message)
    code, body = render(w.tok, { messages = { { role = "robot", content = "x" } } })
    assert.equal(400, code)
    assert.equal("messages[1].role: must be system, user or assistant", body.message)
    code, body = render(w.tok, { variables = {} })
    assert.equal(400, code)
    assert.matches("^prompt_id", body.message)
  end)

  it("answers 404 for a prompt the caller may not read", function()
    local code, body = render(w.tok, { prompt_id = w.others_prompt })
    assert.equal(404, code)
    assert.equal("prompt_id: no prompt with this id", body.message)
  end)

  it("answers an empty missing list as a JSON array", function()
    local _, _, _, raw = render(w.tok, { messages = { { role = "user", content = "no names" } } })
    assert.matches('"missing":%[%]', raw)
  end)
end)
