-- auth.tokens: access tokens with GoTrue's claims, the session answer, and
-- the refresh-token grant (rotation on every use; a rotated token used
-- again after REUSE_GRACE_S ends the whole session, as GoTrue's reuse
-- detection does).

local cjson = require("cjson")
local crypto = require("strata.crypto")
local config = require("strata.config")
local log = require("strata.log")
local pg = require("strata.pg")
local events = require("strata.auth")
local store = require("auth.store")
local reply = require("auth.reply")

local os_time, type, pcall, tostring = os.time, type, pcall, tostring

local M = {}

M.REUSE_GRACE_S = 10 -- GoTrue's default refresh_token_reuse_interval

local REQUIRED = { "aud", "exp", "iat", "sub", "role", "aal", "session_id" }

local function issuer(req)
  local host = req.headers.host
  return host and ("http://" .. host .. "/auth/v1") or (config.auth.site_url .. "/auth/v1")
end

local function app_metadata(user)
  local app = type(user.app_metadata) == "table" and user.app_metadata or {}
  if app.provider == nil then app.provider = "email" end
  if type(app.providers) ~= "table" or app.providers[1] == nil then app.providers = { app.provider } end
  return app
end

--- The access token's claims for user in session (id, created), after
-- the custom_access_token hook (lua/auth/hooks.lua).  nil, err when the
-- hook fails or drops a required claim.
function M.claims(req, user, session, method)
  local now = os_time()
  local meta = user.user_metadata
  local claims = {
    aud = user.aud, exp = now + config.auth.jwt_exp, iat = now, iss = issuer(req), sub = user.id,
    email = user.email or "", phone = user.phone or "", app_metadata = app_metadata(user),
    user_metadata = type(meta) == "table" and meta or {}, role = user.role, aal = "aal1",
    amr = { { method = method or "password", timestamp = session.created or now } },
    session_id = session.id, is_anonymous = user.is_anonymous == true,
  }
  local hooks = require("auth.hooks")
  if hooks.custom_access_token then
    local ok, out = pcall(hooks.custom_access_token, claims, user)
    if not ok then
      log.error("auth: custom_access_token hook raised", { error = tostring(out) })
      return nil, "custom_access_token hook failed"
    end
    if type(out) == "table" then claims = out end
    for _, k in ipairs(REQUIRED) do
      if claims[k] == nil then return nil, "custom_access_token hook dropped the claim " .. k end
    end
  end
  return claims
end

--- A signed access token for user in session, and its claims; nil, err
-- when the hook failed.
function M.access(req, user, session, method)
  local claims, err = M.claims(req, user, session, method)
  if not claims then return nil, err end
  return assert(crypto.jwt_sign(claims)), claims
end

--- Starts a session for user in one transaction, after before() (its
-- writes, e.g. a confirmation) when given.  The session {id, created,
-- refresh_token}, or nil, err.
function M.grant(req, user, before)
  local session, err = store.transaction(function()
    if before then
      local ok, e = before()
      if not ok then return nil, e end
    end
    return store.new_session(user.id, req.headers["user-agent"], req.remote_addr)
  end)
  if not session then return nil, err end
  session.created = os_time()
  return session
end

--- The session answer (status, body, headers) for user, whose session
-- was just made or refreshed; the user is read again (last_sign_in_at).
function M.session_reply(req, user, session, method)
  user = store.user_by_id(user.id) or user
  local token, claims = M.access(req, user, session, method)
  if not token then return reply.error(500, "unexpected_failure", claims) end
  local head = cjson.encode({ access_token = token, token_type = "bearer", expires_in = claims.exp - claims.iat,
                              expires_at = claims.exp, refresh_token = session.refresh_token })
  return reply.json(200, head:sub(1, -2) .. ',"user":' .. user.json .. "}")
end

--- Signs user in: a new session and its answer.
function M.sign_in(req, user, method, before)
  local session, err = M.grant(req, user, before)
  if not session then return reply.db_error(err, "Database error granting user") end
  return M.session_reply(req, user, session, method)
end

local NOT_FOUND = { 400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found" }
local REUSED = { 400, "refresh_token_already_used", "Invalid Refresh Token: Already Used" }

-- Inside the transaction: the new refresh token and the session, or
-- false and the refusal (committed: reuse ends the session, whose id
-- comes third).
local function rotate(digest)
  local rows, err = pg.query([[select rt.id, rt.revoked, rt.session_id::text as session_id,
      extract(epoch from now() - rt.updated_at)::float8 as age
    from auth.refresh_tokens rt where rt.token = $1 for update]], digest)
  if not rows then return nil, err end
  local rt = rows[1]
  if not rt or rt.session_id == cjson.null then return false, NOT_FOUND end
  local session
  session, err = store.session(rt.session_id)
  if session == nil then return nil, err end
  if not session then return false, NOT_FOUND end
  if rt.revoked and rt.age > M.REUSE_GRACE_S then
    log.warn("auth: refresh token reused after rotation; the session ends", { session_id = rt.session_id })
    local ended
    ended, err = store.end_sessions(nil, rt.session_id, "local")
    if not ended then return nil, err end
    return false, REUSED, ended
  end
  -- Within the grace window a rotated token gets a sibling of the active
  -- one (two tabs refreshing at once), as GoTrue answers it.
  local token = crypto.random_token(32)
  rows, err = pg.query([[with old as (update auth.refresh_tokens set revoked = true, updated_at = now()
                           where id = $1 and not revoked returning id)
    insert into auth.refresh_tokens (token, user_id, revoked, session_id, parent)
      values ($2, $3, false, $4::uuid, $5)]], rt.id, store.digest(token), session.user_id, rt.session_id, digest)
  if not rows then return nil, err end
  rows, err = pg.query("update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1::uuid",
    rt.session_id)
  if not rows then return nil, err end
  return token, session
end

--- POST /token?grant_type=refresh_token {refresh_token}.
function M.refresh(req, body)
  local rtoken = body.refresh_token
  if type(rtoken) ~= "string" or rtoken == "" then
    return reply.error(400, "validation_failed", "Refresh token is not valid")
  end
  if #rtoken > 512 then return reply.error(table.unpack(NOT_FOUND)) end
  local token, session, ended = store.transaction(function() return rotate(store.digest(rtoken)) end)
  store.forget(ended)
  if token == nil then return reply.db_error(session, "Database error refreshing the session") end
  if not token then
    if session == REUSED then events.count("refresh_reused") end
    return reply.error(table.unpack(session))
  end
  events.count("refresh")
  local user, err = store.user_by_id(session.user_id)
  if user == nil then return reply.db_error(err, "Database error finding user") end
  if not user then return reply.error(table.unpack(NOT_FOUND)) end
  if user.banned then return reply.error(400, "user_banned", "User is banned") end
  session.refresh_token = token
  return M.session_reply(req, user, session, "password")
end

return M
