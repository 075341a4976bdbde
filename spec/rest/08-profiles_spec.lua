-- /rest/v1 profiles end to end: Accept-Profile / Content-Profile on the
-- orchestrator and agentflow schemas, 406 PGRST106 for any other.
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local get, call, is_error = R.get, R.call, R.is_error

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("profiles", function()
    it("reads and writes orchestrator and agentflow tables with Accept-Profile / Content-Profile", function()
      local code, doc = get("rest_spec_things", { { "select", "label" } }, { ["Accept-Profile"] = "orchestrator" })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { label = "from orchestrator" } }, doc)
      code, doc = get("rest_spec_things", { { "select", "label" } }, { ["Accept-Profile"] = "agentflow" })
      assert.equal(200, code)
      assert.same({ { label = "from agentflow" } }, doc)
      code, doc = get("rest_spec_things")
      assert.equal(404, code, "public is the default profile")
      assert.equal("Could not find the table 'public.rest_spec_things' in the schema cache", doc.message)
      code, doc = call("POST", "rest_spec_things", { body = { label = "written" }, query = { { "select", "label" } },
        headers = { ["Content-Profile"] = "agentflow", Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { label = "written" } }, doc)
      assert.equal("1", h.scalar("select count(*) from agentflow.rest_spec_things where label = 'written'"))
      assert.equal("0", h.scalar("select count(*) from orchestrator.rest_spec_things where label = 'written'"))
      code, doc = call("POST", "rpc/rest_spec_hello", { headers = { ["Content-Profile"] = "orchestrator" } })
      assert.equal(200, code)
      assert.equal("orchestrator", doc)
      code, doc = get("rpc/rest_spec_hello", nil, { ["Accept-Profile"] = "orchestrator" })
      assert.equal(200, code)
      assert.equal("orchestrator", doc)
    end)

    it("answers 406 PGRST106 for an unknown profile", function()
      local code, doc = get("rest_spec_items", nil, { ["Accept-Profile"] = "secret_schema" })
      assert.equal(406, code)
      is_error(406, "PGRST106", doc)
      assert.equal("The schema must be one of the following: public, orchestrator, agentflow", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = { name = "x" }, headers = { ["Content-Profile"] = "auth" } })
      assert.equal(406, code)
      assert.equal("PGRST106", doc.code)
    end)
  end)
end)
