-- auth.email: the links GoTrue mails, here handed to the send_email hook
-- (lua/auth/hooks.lua): POST /recover {email} and POST /verify {type,
-- token_hash} or {type, token, email}, GET /verify?token=&type=&redirect_to=
-- (the link itself: a 303 to redirect_to with the session in the
-- fragment).  A link's token is random; the tables keep its SHA-256.
-- Links expire after a day (GoTrue's mailer_otp_exp).

local cjson = require("cjson")
local crypto = require("strata.crypto")
local config = require("strata.config")
local http = require("strata.http")
local pg = require("strata.pg")
local store = require("auth.store")
local tokens = require("auth.tokens")
local reply = require("auth.reply")
local users = require("auth.users")

local type = type

local M = {}

local LINK_TTL = "1 day"

-- Per type: the column holding the token's digest, when it was sent, and
-- what verifying does (in the transaction that starts the session).
local KINDS = {
  signup = { token = "confirmation_token", sent = "confirmation_sent_at",
    apply = [[update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()),
      confirmation_token = '', updated_at = now() where id = $1::uuid]] },
  recovery = { token = "recovery_token", sent = "recovery_sent_at",
    apply = [[update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()),
      recovery_token = '', updated_at = now() where id = $1::uuid]] },
  email_change = { token = "email_change_token_new", sent = "email_change_sent_at",
    apply = [[with u as (update auth.users set email = email_change, email_change = '', email_change_token_new = '',
        updated_at = now() where id = $1::uuid returning id, email)
      update auth.identities i set identity_data = i.identity_data || jsonb_build_object('email', u.email::text),
        updated_at = now() from u where i.user_id = u.id and i.provider = 'email']] },
}
KINDS.email = KINDS.signup

local function recover(req)
  local body = type(req.json) == "table" and req.json or {}
  local bad = users.check_email(body.email)
  if bad then return table.unpack(bad) end
  local user, err = store.user_by_email(body.email)
  if user == nil then return reply.db_error(err, "Database error finding user") end
  -- An unknown address gets the same answer: no account enumeration.
  if user then
    local token = crypto.random_token(32)
    local ok
    ok, err = pg.query("update auth.users set recovery_token = $2, recovery_sent_at = now() where id = $1::uuid",
      user.id, store.digest(token))
    if not ok then return reply.db_error(err, "Error sending recovery email") end
    users.send_email("recovery", user, users.link(req, "recovery", token, body.redirect_to))
  end
  return reply.json(200, "{}")
end

-- The user a link's token belongs to, or false.
local function holder(kind, token, email)
  local k = KINDS[kind]
  local sql = ("select u.id::text as id from auth.users u where u.%s = $1 and u.%s > now() - interval '%s'")
    :format(k.token, k.sent, LINK_TTL)
  local rows, err
  if email then
    rows, err = pg.query(sql .. " and lower(u.email) = lower($2)", store.digest(token), email)
  else
    rows, err = pg.query(sql, store.digest(token))
  end
  if not rows then return nil, err end
  return rows[1] and rows[1].id or false
end

-- Verifies; the user and the new session, or nil and the error answer.
local function verify_token(req, kind, token, email)
  if not kind or kind == "" then
    return nil, { reply.error(400, "validation_failed", "Verify requires a verification type") }
  end
  if not KINDS[kind] then return nil, { reply.error(400, "validation_failed", "Unsupported verification type") } end
  if type(token) ~= "string" or token == "" then
    return nil, { reply.error(400, "validation_failed", "Verify requires a token or a token hash") }
  end
  local id, err = holder(kind, token, email)
  if id == nil then return nil, { reply.db_error(err, "Database error finding user") } end
  if not id then return nil, { reply.error(403, "otp_expired", "Email link is invalid or has expired") } end
  local user = store.user_by_id(id)
  if not user then return nil, { reply.error(403, "otp_expired", "Email link is invalid or has expired") } end
  if user.banned then return nil, { reply.error(403, "user_banned", "User is banned") } end
  local session
  session, err = tokens.grant(req, user, function() return pg.query(KINDS[kind].apply, user.id) end)
  if not session then
    if type(err) == "table" and err.code == "23505" then
      return nil, { reply.error(422, "email_exists", "A user with this email address has already been registered") }
    end
    return nil, { reply.db_error(err, "Error confirming user") }
  end
  return user, session
end

local function verify_post(req)
  local body = type(req.json) == "table" and req.json or {}
  local token, email = body.token_hash, nil
  if token == nil then token, email = body.token, body.email end
  if token == nil then return reply.error(400, "validation_failed", "Verify requires a token or a token hash") end
  local user, session = verify_token(req, body.type, token, email)
  if not user then return table.unpack(session) end
  return tokens.session_reply(req, user, session, "otp")
end

local function verify_get(req)
  local q = req.query
  local to = type(q.redirect_to) == "string" and q.redirect_to ~= "" and q.redirect_to or config.auth.site_url
  local user, session = verify_token(req, q.type, q.token)
  local fragment
  if not user then
    local _, text = table.unpack(session)
    local doc = cjson.decode(text)
    fragment = ("error=access_denied&error_code=%s&error_description=%s"):format(
      http.url_encode(doc.error_code or doc.code), http.url_encode(doc.msg or doc.message))
  else
    user = store.user_by_id(user.id) or user
    local access, claims = tokens.access(req, user, session, "otp")
    if not access then return reply.error(500, "unexpected_failure", claims) end
    fragment = ("access_token=%s&expires_at=%d&expires_in=%d&refresh_token=%s&token_type=bearer&type=%s"):format(
      access, claims.exp, claims.exp - claims.iat, session.refresh_token, http.url_encode(q.type))
  end
  return 303, nil, { Location = to .. "#" .. fragment }
end

--- The handler of a recovery or verification path, or nil.
function M.route(method, rest)
  if rest == "/recover" and method == "POST" then return recover end
  if rest == "/verify" and method == "POST" then return verify_post end
  if rest == "/verify" and method == "GET" then return verify_get end
end

return M
