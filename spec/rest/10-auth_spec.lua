-- /rest/v1 auth end to end: bad and expired tokens, anon and users on a
-- table without policy, anon RPC; and the CORS preflight.
local h = require("helpers")
local srv = require("server_helpers")
local R = require("fixtures.rest")

local get, call, is_error, reset, mint = R.get, R.call, R.is_error, R.reset, R.mint

describe("REST API #server", function()
  local server, SERVICE, USER

  setup(function()
    server = R.setup()
    SERVICE, USER = R.SERVICE, R.USER
  end)

  teardown(R.teardown)

  describe("auth", function()
    it("answers 401 for a tampered token and for an expired one", function()
      local parts = {}
      for p in SERVICE:gmatch("[^.]+") do parts[#parts + 1] = p end
      local sig = parts[3]
      local flipped = (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2)
      local code, doc, hdrs = get("rest_spec_items", nil, nil, parts[1] .. "." .. parts[2] .. "." .. flipped)
      assert.equal(401, code)
      assert.is_string(doc.code)
      assert.is_not_nil(hdrs["www-authenticate"])
      -- The payload of another token (a user's) under the service token's signature.
      local user_payload = USER:match("^[^.]+%.([^.]+)%.")
      code = get("rest_spec_items", nil, nil, parts[1] .. "." .. user_payload .. "." .. sig)
      assert.equal(401, code)
      -- Signed with another secret.
      local p = assert(io.popen("STRATA_JWT_SECRET=some-other-secret scripts/token --role service_role"))
      local other = p:read("l")
      p:close()
      code = get("rest_spec_items", nil, nil, other)
      assert.equal(401, code)
      code, doc = get("rest_spec_items", nil, nil, mint("--role service_role --exp-in -100"))
      assert.equal(401, code)
      code = get("rest_spec_items", nil, nil, "not-a-jwt")
      assert.equal(401, code)
    end)

    it("answers 401 to anon and 403 to a user on a table without policy; service_role passes", function()
      local code, doc = get("rest_spec_secret", nil, nil, false)
      assert.equal(401, code)
      is_error(401, "42501", doc)
      code, doc = get("rest_spec_secret", nil, nil, USER)
      assert.equal(403, code)
      assert.equal("42501", doc.code)
      code, doc = call("DELETE", "rest_spec_secret", { query = { { "id", "eq.1" } }, token = false })
      assert.equal(401, code)
      code, doc = get("rest_spec_secret", { { "select", "v" } })
      assert.equal(200, code)
      assert.same({ { v = "hidden" } }, doc)
      assert.equal("1", h.scalar("select count(*) from public.rest_spec_secret"))
    end)

    it("lets anon through a table whose policy allows it, and refuses anon RPC without an rpc policy", function()
      reset()
      local code, doc = get("rest_spec_items", { { "select", "id" }, { "id", "eq.1" } }, nil, false)
      assert.equal(200, code)
      assert.same({ { id = 1 } }, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 1 }, token = false })
      assert.equal(401, code)
      assert.equal("42501", doc.code)
    end)
  end)

  it("answers the CORS preflight on /rest/v1", function()
    local code, _, hdrs = srv.http(server.port, "OPTIONS", "/rest/v1/rest_spec_items", nil, {
      Origin = "https://app.example.test", ["Access-Control-Request-Method"] = "PATCH",
      ["Access-Control-Request-Headers"] = "authorization, content-type, prefer, accept-profile, range" })
    assert.is_true(code == 200 or code == 204, "status " .. code)
    assert.is_not_nil(hdrs["access-control-allow-origin"])
    assert.matches("PATCH", hdrs["access-control-allow-methods"])
    for _, name in ipairs({ "authorization", "apikey", "content-type", "prefer", "range", "accept-profile", "content-profile" }) do
      assert.matches(name, hdrs["access-control-allow-headers"]:lower(), 1, true)
    end
    local _, _, got = get("rest_spec_items", { { "limit", "1" } }, { Origin = "https://app.example.test" })
    assert.matches("content-range", (got["access-control-expose-headers"] or ""):lower(), 1, true)
  end)
end)
