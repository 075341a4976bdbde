-- /auth/v1 as GoTrue answers it: sign-up, password sign-in, the user,
-- refresh-token rotation and reuse detection, logout, settings, health;
-- every error in GoTrue's shape and status; nothing half written.
local h = require("helpers")
local srv = require("server_helpers")
local A = require("fixtures.auth")

describe("/auth/v1 #server", function()
  local server, port

  setup(function()
    server = A.start()
    port = server.port
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  local function call(...) return A.call(port, ...) end

  local function signup(email, password, data)
    return call("POST", "/signup", { email = email, password = password or "secret-pw", data = data })
  end

  describe("health and settings", function()
    it("answers GoTrue's health and settings", function()
      local code, doc = call("GET", "/health")
      assert.equal(200, code)
      assert.equal("GoTrue", doc.name)
      code, doc = call("GET", "/settings")
      assert.equal(200, code)
      assert.is_true(doc.external.email)
      assert.is_false(doc.external.phone)
      assert.is_false(doc.disable_signup)
      assert.is_true(doc.mailer_autoconfirm)
    end)
  end)

  describe("sign-up", function()
    it("creates a confirmed user and answers a session with GoTrue's claims", function()
      local email = A.email("signup")
      local code, doc = signup(email, "secret-pw", { name = "Ada" })
      assert.equal(200, code)
      assert.equal("bearer", doc.token_type)
      assert.equal(3600, doc.expires_in)
      assert.is_string(doc.refresh_token)
      assert.equal(email, doc.user.email)
      assert.equal("Ada", doc.user.user_metadata.name)
      assert.same({ provider = "email", providers = { "email" } }, doc.user.app_metadata)
      assert.equal("email", doc.user.identities[1].provider)
      assert.is_string(doc.user.email_confirmed_at)
      local c = A.payload(doc.access_token)
      assert.equal(doc.user.id, c.sub)
      assert.equal("authenticated", c.role)
      assert.equal("authenticated", c.aud)
      assert.equal(email, c.email)
      assert.equal("aal1", c.aal)
      assert.equal("password", c.amr[1].method)
      assert.equal(c.iat + 3600, c.exp)
      assert.equal(doc.expires_at, c.exp)
      assert.is_false(c.is_anonymous)
      assert.equal("Ada", c.user_metadata.name)
      assert.equal("1", h.scalar(("select count(*) from auth.sessions where id = '%s' and user_id = '%s'")
        :format(c.session_id, c.sub)))
      -- The refresh token is stored hashed, never as sent.
      assert.equal("0", h.scalar(("select count(*) from auth.refresh_tokens where token = %s"):format(h.lit(doc.refresh_token))))
      assert.equal("1", h.scalar(("select count(*) from auth.refresh_tokens where session_id = '%s'"):format(c.session_id)))
      assert.truthy(h.scalar(("select encrypted_password from auth.users where id = '%s'"):format(c.sub)):match("^%$2b%$04%$"))
    end)

    it("refuses a duplicate, whatever the case of the email", function()
      local email = A.email("dup")
      assert.equal(200, (signup(email)))
      local code, doc, hdrs = signup(email:upper())
      assert.equal(422, code)
      assert.same({ code = 422, error_code = "user_already_exists", msg = "User already registered" }, doc)
      assert.equal("user_already_exists", hdrs["x-sb-error-code"])
    end)

    it("answers the 2024-01-01 error shape to clients that ask for it", function()
      local email = A.email("dup2")
      assert.equal(200, (signup(email)))
      local code, doc = call("POST", "/signup", { email = email, password = "secret-pw" }, nil,
        { ["X-Supabase-Api-Version"] = "2024-01-01" })
      assert.equal(422, code)
      assert.same({ code = "user_already_exists", message = "User already registered" }, doc)
    end)

    it("refuses bad input with GoTrue's errors and writes nothing", function()
      local email = A.email("bad")
      local code, doc = signup("not-an-email", "secret-pw")
      assert.equal(400, code)
      assert.equal("validation_failed", doc.error_code)
      assert.equal("Unable to validate email address: invalid format", doc.msg)
      code, doc = signup(email, "short")
      assert.equal(422, code)
      assert.equal("weak_password", doc.error_code)
      assert.same({ reasons = { "length" } }, doc.weak_password)
      code, doc = signup(email, string.rep("x", 73))
      assert.equal(400, code)
      assert.same({ code = 400, error_code = "validation_failed", msg = "Password cannot be longer than 72 characters" }, doc)
      code, doc = call("POST", "/signup", { email = email })
      assert.equal(400, code)
      assert.equal("Signup requires a valid password", doc.msg)
      code, doc = call("POST", "/signup", '{"email": "x@y.z", "password": ')
      assert.equal(400, code)
      assert.equal("bad_json", doc.error_code)
      assert.equal("0", h.scalar(("select count(*) from auth.users where email = %s"):format(h.lit(email))))
    end)

    it("accepts exactly 72 bytes", function()
      local pw = string.rep("p", 71) .. "q"
      local email = A.email("long")
      assert.equal(200, (signup(email, pw)))
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = email, password = pw })))
    end)
  end)

  describe("password sign-in", function()
    it("answers a new session for the right password", function()
      local email = A.email("signin")
      local _, first = signup(email)
      local code, doc = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal(200, code)
      assert.equal(first.user.id, doc.user.id)
      assert.is_string(doc.user.last_sign_in_at)
      assert.are_not.equal(A.payload(first.access_token).session_id, A.payload(doc.access_token).session_id)
    end)

    it("answers invalid_credentials for a wrong password and an unknown email alike", function()
      local email = A.email("wrong")
      signup(email)
      local c1, d1 = call("POST", "/token?grant_type=password", { email = email, password = "not-the-pw" })
      local c2, d2 = call("POST", "/token?grant_type=password", { email = A.email("nobody"), password = "secret-pw" })
      local want = { code = 400, error_code = "invalid_credentials", msg = "Invalid login credentials" }
      assert.equal(400, c1)
      assert.same(want, d1)
      assert.equal(400, c2)
      assert.same(want, d2)
      local c3, d3 = call("POST", "/token?grant_type=password", { email = email, password = string.rep("x", 100) })
      assert.equal(400, c3)
      assert.same(want, d3)
    end)

    it("signs in a user row exported from Supabase ($2a$ bcrypt) unchanged", function()
      local id, email = h.uuid(), A.email("exported")
      h.accepts(([[insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
          raw_app_meta_data, raw_user_meta_data)
        values ('%s', 'authenticated', 'authenticated', %s, extensions.crypt('from-supabase', extensions.gen_salt('bf', 10)),
          now(), '{"provider":"email","providers":["email"]}', '{"plan":"pro"}')]]):format(id, h.lit(email)))
      assert.truthy(h.scalar(("select encrypted_password from auth.users where id = '%s'"):format(id)):match("^%$2a%$10%$"))
      local code, doc = call("POST", "/token?grant_type=password", { email = email, password = "from-supabase" })
      assert.equal(200, code)
      assert.equal(id, doc.user.id)
      assert.equal("pro", A.payload(doc.access_token).user_metadata.plan)
    end)

    it("refuses banned and unconfirmed users, and unknown grant types", function()
      local email = A.email("banned")
      local _, s = signup(email)
      h.accepts(("update auth.users set banned_until = now() + interval '1 day' where id = '%s'"):format(s.user.id))
      local code, doc = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal(400, code)
      assert.equal("user_banned", doc.error_code)
      email = A.email("unconfirmed")
      _, s = signup(email)
      h.accepts(("update auth.users set email_confirmed_at = null where id = '%s'"):format(s.user.id))
      code, doc = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal(400, code)
      assert.same({ code = 400, error_code = "email_not_confirmed", msg = "Email not confirmed" }, doc)
      code, doc = call("POST", "/token?grant_type=magic", {})
      assert.equal(400, code)
      assert.equal("unsupported_grant_type", doc.msg)
      code, doc = call("POST", "/token?grant_type=password", { password = "x" })
      assert.equal(400, code)
      assert.equal("missing email or phone", doc.msg)
    end)
  end)

  describe("the user", function()
    it("answers the caller, and refuses without a token or without a sub", function()
      local email = A.email("me")
      local _, s = signup(email)
      local code, doc = call("GET", "/user", nil, s.access_token)
      assert.equal(200, code)
      assert.equal(s.user.id, doc.id)
      code, doc = call("GET", "/user")
      assert.equal(401, code)
      assert.equal("no_authorization", doc.error_code)
      code, doc = call("GET", "/user", nil, srv.token(A.SECRET, "--role anon"))
      assert.equal(403, code)
      assert.equal("bad_jwt", doc.error_code)
    end)

    it("merges user_metadata key by key (null removes) and changes the password", function()
      local email = A.email("upd")
      local _, s = signup(email, "secret-pw", { a = 1, b = 2 })
      local code, doc = call("PUT", "/user", '{"data": {"b": null, "c": 3}}', s.access_token)
      assert.equal(200, code)
      assert.same({ a = 1, c = 3 }, doc.user_metadata)
      code, doc = call("PUT", "/user", { password = "secret-pw" }, s.access_token)
      assert.equal(422, code)
      assert.equal("same_password", doc.error_code)
      code = call("PUT", "/user", { password = "new-secret" }, s.access_token)
      assert.equal(200, code)
      assert.equal(400, (call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })))
      assert.equal(200, (call("POST", "/token?grant_type=password", { email = email, password = "new-secret" })))
      code, doc = call("PUT", "/user", { email = "nope" }, s.access_token)
      assert.equal(400, code)
      assert.equal("validation_failed", doc.error_code)
      local new = A.email("moved")
      code, doc = call("PUT", "/user", { email = new }, s.access_token)
      assert.equal(200, code)
      assert.equal(new, doc.email)
      code, doc = call("PUT", "/user", { data = { role = "admin" } }, s.access_token)
      assert.equal(403, code)
      assert.equal("not_admin", doc.error_code)
      code, doc = call("POST", "/signup", { email = A.email("wannabe"), password = "secret-pw", data = { role = "admin" } })
      assert.equal(403, code)
      assert.equal("not_admin", doc.error_code)
      code, doc = call("PUT", "/user", { password = string.rep("y", 73) }, s.access_token)
      assert.equal(400, code)
      assert.equal("Password cannot be longer than 72 characters", doc.msg)
    end)
  end)

  describe("refresh tokens", function()
    local function refresh(tok)
      return call("POST", "/token?grant_type=refresh_token", { refresh_token = tok })
    end

    it("rotate on every use, keeping the session", function()
      local _, s = signup(A.email("rot"))
      local code, r1 = refresh(s.refresh_token)
      assert.equal(200, code)
      assert.are_not.equal(s.refresh_token, r1.refresh_token)
      assert.equal(A.payload(s.access_token).session_id, A.payload(r1.access_token).session_id)
      assert.equal(s.user.id, r1.user.id)
      local code2, r2 = refresh(r1.refresh_token)
      assert.equal(200, code2)
      assert.are_not.equal(r1.refresh_token, r2.refresh_token)
    end)

    it("let a rotated token be used again within the grace window", function()
      local _, s = signup(A.email("grace"))
      assert.equal(200, (refresh(s.refresh_token)))
      local code, again = refresh(s.refresh_token)
      assert.equal(200, code)
      assert.equal(A.payload(s.access_token).session_id, A.payload(again.access_token).session_id)
    end)

    it("end the whole session when a rotated token comes back after the grace window", function()
      local _, s = signup(A.email("reuse"))
      local sid = A.payload(s.access_token).session_id
      local _, r1 = refresh(s.refresh_token)
      h.accepts(("update auth.refresh_tokens set updated_at = now() - interval '11 seconds' where session_id = '%s' and revoked")
        :format(sid))
      local code, doc = refresh(s.refresh_token)
      assert.equal(400, code)
      assert.same({ code = 400, error_code = "refresh_token_already_used", msg = "Invalid Refresh Token: Already Used" }, doc)
      assert.equal("0", h.scalar(("select count(*) from auth.sessions where id = '%s'"):format(sid)))
      assert.equal("1", h.scalar(("select count(*) from auth.revoked_sessions where session_id = '%s'"):format(sid)))
      code, doc = refresh(r1.refresh_token)
      assert.equal(400, code)
      assert.equal("refresh_token_not_found", doc.error_code)
    end)

    it("refuses unknown and missing tokens", function()
      local code, doc = refresh("no-such-token")
      assert.equal(400, code)
      assert.same({ code = 400, error_code = "refresh_token_not_found",
                    msg = "Invalid Refresh Token: Refresh Token Not Found" }, doc)
      code, doc = call("POST", "/token?grant_type=refresh_token", {})
      assert.equal(400, code)
      assert.equal("validation_failed", doc.error_code)
    end)
  end)

  describe("logout", function()
    it("ends this session (local), the others, or all of them (global)", function()
      local email = A.email("out")
      local _, s1 = signup(email)
      local function signin()
        local _, s = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
        return s
      end
      local s2, s3 = signin(), signin()
      local function alive(s)
        return h.scalar(("select count(*) from auth.sessions where id = '%s'"):format(A.payload(s.access_token).session_id)) == "1"
      end
      assert.equal(204, (call("POST", "/logout?scope=local", nil, s1.access_token)))
      assert.is_false(alive(s1))
      assert.is_true(alive(s2))
      assert.equal(204, (call("POST", "/logout?scope=others", nil, s2.access_token)))
      assert.is_true(alive(s2))
      assert.is_false(alive(s3))
      local s4 = signin()
      assert.equal(204, (call("POST", "/logout", nil, s2.access_token)))
      assert.is_false(alive(s2))
      assert.is_false(alive(s4))
      local code, doc = call("POST", "/logout?scope=all", nil, signin().access_token)
      assert.equal(400, code)
      assert.equal('Unsupported logout scope "all"', doc.msg)
      -- The refresh token of an ended session is gone with it.
      code = call("POST", "/token?grant_type=refresh_token", { refresh_token = s4.refresh_token })
      assert.equal(400, code)
    end)
  end)
  describe("activity logs", function()
    local saved
    setup(function()
      saved = h.scalar("select config_data::text from public.admin_config where config_key = 'logging_settings'")
      h.accepts([[update public.admin_config set config_data = config_data
        || '{"user_activity_logging_enabled": true}'::jsonb
        || jsonb_build_object('category_toggles', config_data->'category_toggles' || '{"log_auth_events": true}'::jsonb)
        || jsonb_build_object('performance_settings', config_data->'performance_settings'
             || '{"batch_interval_ms": 100, "sampling_enabled": false}'::jsonb)
        where config_key = 'logging_settings']])
    end)
    teardown(function()
      h.accepts("update public.admin_config set config_data = " .. h.lit(saved)
        .. "::jsonb where config_key = 'logging_settings'")
    end)

    local function rows(uid)
      return h.query(("select activity_type, success from public.user_activity_logs where user_id = '%s'"
        .. " order by created_at, activity_type"):format(uid))
    end
    local function await(uid, n)
      local got
      for _ = 1, 100 do
        got = rows(uid)
        if #got >= n then return got end
        srv.sleep(0.05)
      end
      return got
    end

    it("writes sign-up, sign-in, failed sign-in and sign-out as seed 003's auth activity", function()
      -- The settings reach the log writer by NOTIFY: sign up until one is logged.
      local email, session, uid
      for _ = 1, 50 do
        email = A.email("logged")
        local _, doc = signup(email)
        session, uid = doc, doc.user.id
        if #await(uid, 1) == 1 then break end
      end
      assert.same({ { activity_type = "auth_register", success = "t" } }, rows(uid))
      local code = call("POST", "/token?grant_type=password", { email = email, password = "wrong-pw" })
      assert.equal(400, code)
      code = call("POST", "/token?grant_type=password", { email = email, password = "secret-pw" })
      assert.equal(200, code)
      assert.equal(204, (call("POST", "/logout", nil, session.access_token)))
      local got = await(uid, 4)
      local kinds = {}
      for _, r in ipairs(got) do kinds[#kinds + 1] = r.activity_type .. (r.success == "t" and "" or " (failed)") end
      table.sort(kinds)
      assert.same({ "auth_login", "auth_login (failed)", "auth_logout", "auth_register" }, kinds)
    end)

    it("writes a failed sign-in of an unknown address, without a user, its e-mail hashed under hash_email", function()
      h.accepts([[update public.admin_config set config_data = jsonb_set(config_data,
        '{privacy_settings,hash_email}', 'true') where config_key = 'logging_settings']])
      local email = A.email("Nobody")
      local where = "from public.user_activity_logs where correlation_id = '%s'"
      -- The settings reach the log writer by NOTIFY: try until a hashed one is logged.
      local rid, hashed
      for _ = 1, 50 do
        rid = h.uuid()
        local code = call("POST", "/token?grant_type=password", { email = email, password = "wrong-pw" }, nil,
          { ["X-Request-Id"] = rid })
        assert.equal(400, code)
        for _ = 1, 40 do
          hashed = h.scalar(("select activity_metadata->>'email' " .. where):format(rid))
          if hashed then break end
          srv.sleep(0.05)
        end
        if hashed and hashed:find("^hmac%-sha256:") then break end
      end
      assert.matches("^hmac%-sha256:%x+$", hashed)
      assert.equal(64, #hashed - #"hmac-sha256:")
      assert.equal("t", h.scalar(("select user_id is null and success is false and activity_type = 'auth_login' "
        .. "and error_message = 'invalid_credentials' " .. where):format(rid)))
      assert.equal("0", h.scalar(("select count(*) " .. where .. " and row_to_json(user_activity_logs)::text ilike %s")
        :format(rid, h.lit("%" .. email .. "%"))))
    end)
  end)
end)
