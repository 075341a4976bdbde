-- strata driven by the real client, @supabase/supabase-js (the version
-- pinned in spec/js/package.json): spec/js/supabase_client.mjs signs a new
-- user up, signs in, reads and updates the user, refreshes the session,
-- inserts a Chat row as that user and signs out, then sends the old access
-- token to /rest/v1; the assertions are here.  Needs Node.js 20+ and npm
-- (`npm ci --prefix spec/js` runs when the modules are missing).
local cjson = require("cjson")
local srv = require("server_helpers")
local A = require("fixtures.auth")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or (code or 1), out
end

local function ensure_node_modules()
  local st, out = sh("node --version")
  assert(st == 0, "spec/auth/04-supabase_js_spec.lua needs Node.js 20+ (`node` not found: " .. out .. ")")
  local f = io.open("spec/js/node_modules/@supabase/supabase-js/package.json")
  if f then f:close() return end
  st, out = sh("npm ci --prefix spec/js --no-audit --no-fund --loglevel=error")
  assert(st == 0, "`npm ci --prefix spec/js` failed (is the npm registry reachable?):\n" .. out)
end

describe("supabase-js against /auth/v1 and /rest/v1 #server", function()
  local server, out

  setup(function()
    ensure_node_modules()
    server = A.start()
    local anon, service = srv.token(A.SECRET, "--role anon"), srv.token(A.SECRET, "--role service_role")
    local st, text = sh(("STRATA_URL=http://127.0.0.1:%d STRATA_ANON_KEY=%s STRATA_SERVICE_KEY=%s STRATA_EMAIL=%s node spec/js/supabase_client.mjs")
      :format(server.port, srv.quote(anon), srv.quote(service), srv.quote(A.email("js"))))
    assert.equal(0, st, text)
    out = cjson.decode(text:match("(%b{})%s*$"))
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  it("signs up with user metadata and gets a session", function()
    assert.equal(cjson.null, out.signUp.error)
    assert.is_string(out.signUp.user_id)
    assert.is_true(out.signUp.has_session)
    assert.equal("Grace", out.signUp.name)
  end)

  it("maps GoTrue's errors to AuthApiError with their codes", function()
    assert.same({ name = "AuthApiError", status = 422, code = "user_already_exists", message = "User already registered" },
      out.signUpAgain.error)
    assert.same({ name = "AuthApiError", status = 400, code = "invalid_credentials", message = "Invalid login credentials" },
      out.signInWrong.error)
    assert.is_false(out.signInWrong.has_session)
  end)

  it("signs in, reads and updates the user, refreshes the session", function()
    assert.equal(cjson.null, out.signIn.error)
    assert.equal(out.signUp.user_id, out.signIn.user_id)
    assert.is_string(out.signIn.session_id)
    assert.equal(out.signUp.user_id, out.getUser.user_id)
    assert.equal(cjson.null, out.updateUser.error)
    assert.equal("Grace", out.updateUser.name)
    assert.equal("pro", out.updateUser.plan)
    assert.equal(cjson.null, out.refreshSession.error)
    assert.is_true(out.refreshSession.rotated)
    assert.is_true(out.refreshSession.same_user)
  end)

  it("inserts a Chat row as the new user and reads it back", function()
    assert.equal(cjson.null, out.insertChat.error)
    assert.equal(201, out.insertChat.status)
    assert.equal("first chat", out.insertChat.title)
    assert.same({ "first chat" }, out.selectChats.titles)
  end)

  it("signs out for real: the old access token gets 401 from /rest/v1", function()
    assert.equal(cjson.null, out.signOut.error)
    assert.equal(cjson.null, out.signOut.session_after)
    assert.equal(401, out.oldTokenAfterSignOut.status)
    assert.equal(cjson.null, out.signInNewPassword.error)
    assert.is_true(out.signInNewPassword.has_session)
  end)

  it("serves supabase.auth.admin.* with the service_role key, and resetPasswordForEmail", function()
    assert.equal(cjson.null, out.adminCreate.error)
    assert.equal("ops", out.adminCreate.team)
    assert.equal(cjson.null, out.adminList.error)
    assert.equal(1, out.adminList.count)
    assert.is_true(out.adminList.total >= 2)
    assert.equal(2, out.adminList.nextPage)
    assert.is_true(out.adminList.has_last)
    assert.equal(out.adminCreate.email, out.adminGet.email)
    assert.equal("dev", out.adminUpdate.team)
    assert.equal(cjson.null, out.adminDelete.error)
    assert.same({ name = "AuthApiError", status = 404, code = "user_not_found", message = "User not found" },
      out.adminGetDeleted.error)
    assert.equal(cjson.null, out.resetPassword.error)
  end)
end)
