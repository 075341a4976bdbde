-- auth: Supabase Auth's (GoTrue's) API under /auth/v1, so supabase-js's
-- `auth` client works unchanged: sign-up, sign-in with a password,
-- refresh-token rotation, the user, logout, settings, health; recovery and
-- verification links (auth.email) and the admin endpoints (auth.admin).
-- Passwords are bcrypt on the bcrypt threads (strata.crypto), never on a
-- worker's loop; each request's writes are one transaction.

local cjson = require("cjson")
local crypto = require("strata.crypto")
local config = require("strata.config")
local events = require("strata.auth")
local log = require("strata.log")
local store = require("auth.store")
local tokens = require("auth.tokens")
local reply = require("auth.reply")
local users = require("auth.users")

local type, tostring = type, tostring

local M = {}

-- A hash no password matches, verified when the email is unknown so that
-- both answers take as long.
local DUMMY_HASH = "$2b$10$CwTycUXWue0Thq9StjUM0uJ8.lzV8GrCPHZJx6cYk5o4Bx1UySm4O"

-- An auth event: counted in /metrics, and a user_activity_logs row when
-- logging_settings and lua/logging.lua say so (seed 003's auth_login,
-- auth_logout, auth_register; a failed sign-in is auth_login with success
-- false, and has no user when the address is unknown: user_id is null
-- then, not the caller's, sql/161).
local function note(event, action, user_id, fields)
  events.count(event)
  fields = fields or {}
  if not user_id and not (action == "login" and fields.success == false) then return end
  fields.user_id = user_id or cjson.null
  log.activity("auth", action, fields)
end

local function body_of(req)
  if type(req.json) == "table" then return req.json end
  if req.body == nil or req.body == "" then return {} end
  local ok, doc = pcall(cjson.decode, req.body)
  if ok and type(doc) == "table" then return doc end
  return nil
end

local function str(v)
  return type(v) == "string" and v or nil
end

--- GoTrue's answer to a request refused by lua/ratelimits.lua (the
-- Retry-After and RateLimit headers kept).
function M.limit_error(headers)
  return reply.error(429, "over_request_rate_limit", "Request rate limit reached", nil, headers)
end

--- GoTrue's answer to a body that does not parse.
function M.json_error(message)
  return reply.error(400, "bad_json", "Could not parse request body as JSON: " .. message)
end

-- POST /token?grant_type=password {email, password}
local function password_grant(req, body)
  local email, password = str(body.email), str(body.password)
  if body.phone and body.phone ~= "" and email and email ~= "" then
    return reply.error(400, "validation_failed", "Only an email address or phone number should be provided on login.")
  end
  if not email or email == "" then
    if body.phone and body.phone ~= "" then return reply.error(422, "phone_provider_disabled", "Phone logins are disabled") end
    return reply.error(400, "validation_failed", "missing email or phone")
  end
  password = password or ""
  local user, err = store.user_by_email(email)
  if user == nil then return reply.db_error(err, "Database error querying schema") end
  if not user and #password <= 72 then
    local ceo
    ceo, err = require("auth.agentflow").ceo_sign_in(email, password)
    if ceo == nil then return reply.db_error(err, "Database error granting user") end
    if ceo then
      note("signin", "login", ceo.id, { metadata = { provider = "agentflow" } })
      return tokens.sign_in(req, ceo, "password")
    end
  end
  local hash = user and type(user.encrypted_password) == "string" and user.encrypted_password or DUMMY_HASH
  local ok = #password <= 72 and crypto.bcrypt_verify(password, hash)
  if not user or ok ~= true then
    -- The address tried is kept (privacy_settings.hash_email: as its keyed hash).
    note("signin_failed", "login", user and user.id, { success = false, error_message = "invalid_credentials",
      metadata = { email = email } })
    return reply.error(400, "invalid_credentials", "Invalid login credentials")
  end
  if user.banned then return reply.error(400, "user_banned", "User is banned") end
  if not user.email_confirmed then return reply.error(400, "email_not_confirmed", "Email not confirmed") end
  note("signin", "login", user.id)
  return tokens.sign_in(req, user, "password")
end

local function token(req)
  local body = body_of(req)
  if not body then return M.json_error("not an object") end
  local grant = req.query.grant_type
  if grant == "password" then return password_grant(req, body) end
  if grant == "refresh_token" then return tokens.refresh(req, body) end
  if grant == "agent_key" then return require("auth.agent_keys").exchange(req, body) end
  return reply.error(400, "invalid_credentials", "unsupported_grant_type")
end

local function signup(req)
  local body = body_of(req)
  if not body then return M.json_error("not an object") end
  if config.auth.disable_signup then
    return reply.error(422, "signup_disabled", "Signups not allowed for this instance")
  end
  local user, err_reply, session = users.create(req, body,
    { confirm = config.auth.autoconfirm, check_signup = true, session = true })
  if not user then return table.unpack(err_reply) end
  note("signup", "register", user.id)
  if session then return tokens.session_reply(req, user, session, "password") end
  return reply.json(200, user.json)
end

-- The caller of a user endpoint: its user and claims, or an error answer.
function M.caller(req)
  local auth = req.auth
  if not req.headers.authorization then
    return nil, { reply.error(401, "no_authorization", "This endpoint requires a valid Bearer token") }
  end
  if not auth.uid or auth.uid == "" then
    return nil, { reply.error(403, "bad_jwt", "invalid claim: missing sub claim") }
  end
  local claims = auth.claims
  local sid = type(claims.session_id) == "string" and claims.session_id or nil
  if sid then
    local s, err = store.session(sid)
    if s == nil then return nil, { reply.db_error(err, "Database error finding session") } end
    if not s then
      return nil, { reply.error(403, "session_not_found", "Session from session_id claim in JWT does not exist") }
    end
  end
  local user, err = store.user_by_id(auth.uid)
  if user == nil then return nil, { reply.db_error(err, "Database error finding user") } end
  if not user then return nil, { reply.error(403, "user_not_found", "User from sub claim in JWT does not exist") } end
  return user, claims, sid
end

local function get_user(req)
  local user, why = M.caller(req)
  if not user then return table.unpack(why) end
  return reply.json(200, user.json)
end

local function put_user(req)
  local user, why = M.caller(req)
  if not user then return table.unpack(why) end
  local body = body_of(req)
  if not body then return M.json_error("not an object") end
  local updated, err_reply = users.update(req, user, body)
  if not updated then return table.unpack(err_reply) end
  return reply.json(200, updated.json)
end

local SCOPES = { global = true, ["local"] = true, others = true }

local function logout(req)
  local user, claims, sid = M.caller(req)
  if not user then return table.unpack(claims) end
  local scope = req.query.scope or "global"
  if not SCOPES[scope] then
    return reply.error(400, "validation_failed", ("Unsupported logout scope %q"):format(tostring(scope)))
  end
  if not sid and scope ~= "global" then scope = "global" end
  local ids, err = store.transaction(function() return store.end_sessions(user.id, sid, scope) end)
  if not ids then return reply.db_error(err, "Error logging out user") end
  store.forget(ids)
  note("logout", "logout", user.id, { metadata = { scope = scope } })
  return 204
end

local function settings()
  return reply.table(200, {
    external = { email = true, phone = false, anonymous_users = false, apple = false, azure = false,
                 bitbucket = false, discord = false, facebook = false, github = false, gitlab = false,
                 google = false, keycloak = false, linkedin = false, notion = false, slack = false,
                 spotify = false, twitch = false, twitter = false, workos = false, zoom = false },
    disable_signup = config.auth.disable_signup, mailer_autoconfirm = config.auth.autoconfirm,
    phone_autoconfirm = false, sms_provider = "", saml_enabled = false,
  })
end

local function health()
  return reply.table(200, { version = "strata", name = "GoTrue",
    description = "GoTrue-compatible auth served by strata" })
end

local ROUTES = {
  ["POST /signup"] = signup,
  ["POST /token"] = token,
  ["GET /user"] = get_user,
  ["PUT /user"] = put_user,
  ["POST /logout"] = logout,
  ["GET /settings"] = settings,
  ["GET /health"] = health,
  ["GET /.well-known/jwks.json"] = function() return reply.json(200, crypto.jwks()) end,
}

function M.handle(req)
  local rest = "/" .. (req.params.rest or "")
  local method = req.method == "HEAD" and "GET" or req.method
  local h = ROUTES[method .. " " .. rest] or require("auth.email").route(method, rest)
    or require("auth.admin").route(method, rest)
  if h then return h(req) end
  for key in pairs(ROUTES) do
    if key:match("^%u+ (.*)$") == rest then return reply.error(405, "method_not_allowed", "Method not allowed") end
  end
  return reply.error(404, "not_found", "Not found")
end

return M
