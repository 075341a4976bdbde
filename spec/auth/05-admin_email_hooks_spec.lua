-- /auth/v1 beyond sign-in: the admin users endpoints (service_role only,
-- GoTrue's pagination), confirmation / recovery / email-change links
-- through the send_email hook, and the Lua hooks before_user_created and
-- custom_access_token, changed while the server runs.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local A = require("fixtures.auth")

local HOOKS = [[
local log = require("strata.log")
return {
  before_user_created = function(user)
    if not user.email:match("@example%.test$") then return false, "Only example.test addresses may sign up", 403 end
    return true
  end,
  custom_access_token = function(claims, user)
    claims.tier = "TIER"
    return claims
  end,
  send_email = function(kind, user, link)
    log.info("spec mail", { kind = kind, email = user.email, link = link })
  end,
  examples = {
    { hook = "before_user_created", user = { email = "x@elsewhere.test" }, expect = false },
    { hook = "custom_access_token", claims = {}, user = {}, expect = { tier = "TIER" } },
  },
}
]]

describe("/auth/v1 admin, links and hooks #server", function()
  local server, dir, port, service

  setup(function()
    dir = srv.lua_dir({ ["auth/hooks.lua"] = (HOOKS:gsub("TIER", "gold")) })
    server = A.start({ STRATA_LUA_DIR = dir, STRATA_AUTH_AUTOCONFIRM = "false", STRATA_RELOAD_DEBOUNCE_MS = "50" })
    port = server.port
    service = srv.token(A.SECRET, "--role service_role")
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  local function call(...) return A.call(port, ...) end

  -- The last link the send_email hook logged for kind and email.
  local function link(kind, email)
    local found
    for line in server.log():gmatch("[^\n]+") do
      if line:find("spec mail", 1, true) then
        local ok, doc = pcall(cjson.decode, line)
        local f = ok and (doc.fields or doc) or {}
        if f.kind == kind and f.email == email then found = f.link end
      end
    end
    return found
  end

  local function token_of(l) return l and l:match("[?&]token=([^&]+)") end

  describe("confirmation", function()
    it("answers the user without a session and sends the link to the hook; the link confirms and signs in", function()
      local email = A.email("confirm")
      local code, doc = call("POST", "/signup", { email = email, password = "secret-pw" })
      assert.equal(200, code)
      assert.equal(email, doc.email)
      assert.is_nil(doc.access_token)
      assert.equal(cjson.null, doc.email_confirmed_at)
      assert.is_string(doc.confirmation_sent_at)
      code, doc = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal(400, code)
      assert.equal("email_not_confirmed", doc.error_code)
      local l = link("signup", email)
      assert.truthy(l and l:find("/auth/v1/verify?token=", 1, true), server.log())
      code, doc = call("POST", "/verify", { type = "signup", token_hash = require("socket.url").unescape(token_of(l)) })
      assert.equal(200, code)
      assert.is_string(doc.access_token)
      assert.is_string(doc.user.email_confirmed_at)
      code, doc = call("POST", "/verify", { type = "signup", token_hash = require("socket.url").unescape(token_of(l)) })
      assert.equal(403, code)
      assert.same({ code = 403, error_code = "otp_expired", msg = "Email link is invalid or has expired" }, doc)
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })))
    end)

    it("follows the link itself: a 303 to redirect_to with the session in the fragment", function()
      local email = A.email("link")
      call("POST", "/signup", { email = email, password = "secret-pw", redirect_to = "http://app.test/welcome" })
      local l = link("signup", email)
      local path = l:match("^https?://[^/]+(/.*)$"):gsub("^/auth/v1", "")
      local code, _, hdrs = call("GET", path)
      assert.equal(303, code)
      local loc = hdrs.location
      assert.truthy(loc:match("^http://app%.test/welcome#access_token=[%w_.-]+&expires_at=%d+&expires_in=3600&refresh_token=[%w_-]+&token_type=bearer&type=signup$"), loc)
      code, _, hdrs = call("GET", path)
      assert.equal(303, code)
      assert.truthy(hdrs.location:find("#error=access_denied&error_code=otp_expired", 1, true), hdrs.location)
    end)

    it("refuses verify requests without type or token", function()
      local code, doc = call("POST", "/verify", { token_hash = "x" })
      assert.equal(400, code)
      assert.equal("Verify requires a verification type", doc.msg)
      code, doc = call("POST", "/verify", { type = "signup" })
      assert.equal(400, code)
      assert.equal("Verify requires a token or a token hash", doc.msg)
      code, doc = call("POST", "/verify", { type = "magic", token_hash = "x" })
      assert.equal(400, code)
      assert.equal("Unsupported verification type", doc.msg)
    end)
  end)

  describe("recovery", function()
    it("sends a recovery link whose session can set a new password; unknown emails get the same answer", function()
      local email = A.email("recover")
      local _, u = call("POST", "/admin/users", { email = email, password = "old-password", email_confirm = true }, service)
      assert.is_string(u.id)
      local code, doc = call("POST", "/recover", { email = email })
      assert.equal(200, code)
      assert.same({}, doc)
      code, doc = call("POST", "/recover", { email = A.email("nobody") })
      assert.equal(200, code)
      assert.same({}, doc)
      local t = require("socket.url").unescape(token_of(link("recovery", email)))
      local s
      code, s = call("POST", "/verify", { type = "recovery", token_hash = t })
      assert.equal(200, code)
      assert.equal(200, (call("PUT", "/user", { password = "new-password" }, s.access_token)))
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = email, password = "new-password" })))
    end)
  end)

  describe("email change", function()
    it("sends a link to the new address, and the link moves the email (user and identity)", function()
      local email, new = A.email("old"), A.email("new")
      call("POST", "/admin/users", { email = email, password = "secret-pw", email_confirm = true }, service)
      local _, s = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      local code, u = call("PUT", "/user", { email = new }, s.access_token)
      assert.equal(200, code)
      assert.equal(email, u.email)
      assert.equal(new, u.new_email)
      assert.is_nil(link("email_change", email))
      local t = require("socket.url").unescape(token_of(link("email_change", new)) or "")
      code, s = call("POST", "/verify", { type = "email_change", token_hash = t })
      assert.equal(200, code)
      assert.equal(new, s.user.email)
      assert.equal(new, s.user.identities[1].identity_data.email)
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = new, password = "secret-pw" })))
    end)
  end)

  describe("admin users", function()
    it("needs the service_role", function()
      local code, doc = call("GET", "/admin/users")
      assert.equal(401, code)
      assert.equal("no_authorization", doc.error_code)
      code, doc = call("GET", "/admin/users", nil, srv.token(A.SECRET, "--role authenticated --sub " .. h.uuid()))
      assert.equal(403, code)
      assert.same({ code = 403, error_code = "not_admin", msg = "User not allowed" }, doc)
    end)

    it("creates, reads, lists with GoTrue's pagination, updates and deletes users", function()
      local email = A.email("admin")
      local code, u = call("POST", "/admin/users", { email = email, password = "pw-123456", email_confirm = true,
        user_metadata = { name = "Lin" }, app_metadata = { plan = "team" } }, service)
      assert.equal(200, code)
      assert.equal("Lin", u.user_metadata.name)
      assert.equal("team", u.app_metadata.plan)
      assert.is_string(u.email_confirmed_at)
      code = call("POST", "/admin/users", { email = email }, service)
      assert.equal(422, code)
      code, u = call("GET", "/admin/users/" .. u.id, nil, service)
      assert.equal(200, code)
      assert.equal(email, u.email)
      assert.equal(404, (call("GET", "/admin/users/" .. h.uuid(), nil, service)))
      call("POST", "/admin/users", { email = A.email("admin2"), email_confirm = true }, service)
      local list, hdrs
      code, list, hdrs = call("GET", "/admin/users?page=1&per_page=1", nil, service)
      assert.equal(200, code)
      assert.equal(1, #list.users)
      assert.equal("authenticated", list.aud)
      local total = tonumber(hdrs["x-total-count"])
      assert.is_true(total >= 2)
      assert.equal(('</auth/v1/admin/users?page=2&per_page=1>; rel="next", </auth/v1/admin/users?page=%d&per_page=1>; rel="last"')
        :format(total), hdrs.link)
      code, u = call("PUT", "/admin/users/" .. u.id, { user_metadata = { name = cjson.null, team = "b" }, role = "authenticated" }, service)
      assert.equal(200, code)
      assert.same({ team = "b" }, u.user_metadata)
      -- A ban ends the user's sessions and refuses sign-in.
      local _, s = call("POST", "/token?grant_type=password", { email = email, password = "pw-123456" })
      assert.equal(200, (srv.http(port, "GET", "/rest/v1/Chat?select=id", nil, { Authorization = "Bearer " .. s.access_token })))
      code, u = call("PUT", "/admin/users/" .. u.id, { ban_duration = "24h" }, service)
      assert.equal(200, code)
      assert.is_string(u.banned_until)
      local c2
      for _ = 1, 100 do
        c2 = srv.http(port, "GET", "/rest/v1/Chat?select=id", nil, { Authorization = "Bearer " .. s.access_token })
        if c2 == 401 then break end
        srv.sleep(0.05)
      end
      assert.equal(401, c2)
      assert.equal("user_banned", select(2, call("POST", "/token?grant_type=password", { email = email, password = "pw-123456" })).error_code)
      assert.equal(400, (call("PUT", "/admin/users/" .. u.id, { ban_duration = "forever" }, service)))
      code, u = call("PUT", "/admin/users/" .. u.id, { ban_duration = "none" }, service)
      assert.equal(cjson.null, u.banned_until)
      code, u = call("DELETE", "/admin/users/" .. u.id, nil, service)
      assert.equal(200, code)
      assert.same({}, u)
      assert.equal("0", h.scalar(("select count(*) from auth.users where email = %s"):format(h.lit(email))))
    end)

    it("imports a bcrypt password_hash (a Supabase export), which then signs in", function()
      local email = A.email("import")
      local hash = h.scalar("select extensions.crypt('exported-pw', extensions.gen_salt('bf', 6))")
      local code = call("POST", "/admin/users", { email = email, password_hash = hash, email_confirm = true }, service)
      assert.equal(200, code)
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = email, password = "exported-pw" })))
      code = call("POST", "/admin/users", { email = A.email("import2"), password_hash = "md5:abc" }, service)
      assert.equal(400, code)
    end)
  end)

  describe("hooks", function()
    it("before_user_created refuses a sign-up with its message and status, writing nothing", function()
      local code, doc = call("POST", "/signup", { email = "someone@elsewhere.test", password = "secret-pw" })
      assert.equal(403, code)
      assert.same({ code = 403, error_code = "unknown", msg = "Only example.test addresses may sign up" }, doc)
      assert.equal("0", h.scalar("select count(*) from auth.users where email = 'someone@elsewhere.test'"))
    end)

    it("custom_access_token adds claims, and a changed hook applies without a restart", function()
      local email = A.email("claims")
      call("POST", "/admin/users", { email = email, password = "secret-pw", email_confirm = true }, service)
      local _, s = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal("gold", A.payload(s.access_token).tier)
      srv.write(dir .. "/auth/hooks.lua", (HOOKS:gsub("TIER", "platinum")))
      local tier
      for _ = 1, 100 do
        _, s = call("POST", "/token?grant_type=refresh_token", { refresh_token = s.refresh_token })
        tier = A.payload(s.access_token).tier
        if tier == "platinum" then break end
        srv.sleep(0.1)
      end
      assert.equal("platinum", tier)
    end)

    it("keeps the hooks serving when a new version breaks its examples, and says why", function()
      srv.write(dir .. "/auth/hooks.lua", (HOOKS:gsub("TIER", "gold"):gsub('expect = { tier = "gold" }', 'expect = { tier = "silver" }')))
      local body
      for _ = 1, 100 do
        _, body = srv.http(port, "GET", "/ready")
        if body:find("auth/hooks.lua", 1, true) then break end
        srv.sleep(0.1)
      end
      assert.truthy(body:find("auth/hooks.lua: example 2: expected claim tier", 1, true), body)
      local email = A.email("still")
      call("POST", "/admin/users", { email = email, password = "secret-pw", email_confirm = true }, service)
      local _, s = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal("platinum", A.payload(s.access_token).tier)
    end)
  end)
end)
