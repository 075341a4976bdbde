-- Brute force on /auth/v1: the rules of lua/ratelimits.lua refuse sign-in
-- attempts past the per-email and per-address budgets with GoTrue's 429
-- and Retry-After, and /metrics counts failed sign-ins.
local srv = require("server_helpers")
local A = require("fixtures.auth")

describe("/auth/v1 brute-force limits #server", function()
  local server

  setup(function()
    server = A.start({ STRATA_AUTH_RATE_LIMIT_ADDRESS = "8", STRATA_AUTH_RATE_LIMIT_EMAIL = "3" })
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  local function signin(email, password)
    return A.call(server.port, "POST", "/token?grant_type=password", { email = email, password = password })
  end

  local function failed_signins()
    local _, text = srv.http(server.port, "GET", "/metrics")
    return tonumber(text:match('strata_auth_events_total{event="signin_failed"} (%d+)'))
  end

  it("refuses an email's fourth attempt with 429 and Retry-After, then the address's ninth", function()
    local before = failed_signins()
    local email = A.email("brute")
    assert.equal(200, (A.call(server.port, "POST", "/signup", { email = email, password = "secret-pw" })))
    for _ = 1, 2 do assert.equal(400, (signin(email, "guess"))) end
    local code, doc, hdrs = signin(email, "secret-pw")
    assert.equal(429, code)
    assert.same({ code = 429, error_code = "over_request_rate_limit", msg = "Request rate limit reached" }, doc)
    assert.truthy(tonumber(hdrs["retry-after"]) >= 1)
    assert.equal("over_request_rate_limit", hdrs["x-sb-error-code"])
    assert.equal(before + 2, failed_signins())
    -- Other emails from the same address, until its budget (8) is spent.
    local statuses = {}
    for i = 1, 5 do statuses[i] = (signin(A.email("other"), "guess")) end
    assert.same({ 400, 400, 400, 400, 429 }, statuses)
  end)
end)
