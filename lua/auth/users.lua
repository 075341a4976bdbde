-- auth.users: creating and changing users as GoTrue does: the checks on
-- email and password (bcrypt's 72-byte limit refused, never truncated),
-- the before_user_created hook, user_metadata merged key by key (a null
-- removes a key; its "role" is the admins'), email changes confirmed at once or through the
-- send_email hook.  Errors come back as { status, body, headers }.

local cjson = require("cjson")
local crypto = require("strata.crypto")
local config = require("strata.config")
local log = require("strata.log")
local pg = require("strata.pg")
local store = require("auth.store")
local reply = require("auth.reply")

local type, pcall, tostring = type, pcall, tostring

local M = {}

M.MIN_PASSWORD = 6

-- user_metadata.role = "admin" makes a caller admin (seed 003's
-- get_user_role(), core/auth/jwt.c's is_admin): unlike GoTrue, a user may
-- not set that key on themselves; the admin endpoints may.
local ADMIN_ROLE_MSG = "Setting user_metadata.role requires admin privileges"

local function fail(...) return nil, { reply.error(...) } end

--- nil when the email is acceptable, else the error answer.
function M.check_email(email)
  if type(email) ~= "string" or #email > 255 or not email:match("^[^%s@]+@[^%s@]+%.[^%s@.]+$") then
    return { reply.error(400, "validation_failed", "Unable to validate email address: invalid format") }
  end
end

--- nil when the password is acceptable, else the error answer.
function M.check_password(password)
  if #password > 72 then
    return { reply.error(400, "validation_failed", "Password cannot be longer than 72 characters") }
  end
  if #password < M.MIN_PASSWORD then
    return { reply.error(422, "weak_password", ("Password should be at least %d characters."):format(M.MIN_PASSWORD),
      { weak_password = { reasons = { "length" } } }) }
  end
end

local function hash(password)
  local h, err = crypto.bcrypt_hash(password)
  if not h then return fail(500, "unexpected_failure", "Error during password storage: " .. tostring(err)) end
  return h
end

--- A link the send_email hook gets: /auth/v1/verify with the token.
function M.link(req, kind, token, redirect_to)
  local http = require("strata.http")
  local host = req.headers.host or "localhost"
  return ("http://%s/auth/v1/verify?token=%s&type=%s&redirect_to=%s"):format(host, http.url_encode(token), kind,
    http.url_encode(redirect_to or config.auth.site_url))
end

function M.send_email(kind, user, link)
  local hooks = require("auth.hooks")
  if not hooks.send_email then return end
  local ok, err = pcall(hooks.send_email, kind, { id = user.id, email = user.email }, link)
  if not ok then log.error("auth: send_email hook raised", { kind = kind, error = tostring(err) }) end
end

local INSERT_USER = [[
  with u as (
    insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at, confirmation_token,
                            confirmation_sent_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values (gen_random_uuid(), 'authenticated', 'authenticated', lower($1), $2,
            case when $3::boolean then now() end, $4, case when $3::boolean then null else now() end,
            $5::jsonb, $6::jsonb, now(), now())
    returning id, email)
  insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
    select u.id::text, u.id, jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', $3::boolean,
                                                'phone_verified', false), 'email', now(), now() from u
  returning user_id::text as id]]

--- Creates a user from a sign-up or admin body {email, password |
-- password_hash (bcrypt, admin), data | user_metadata, app_metadata}.
-- opts.confirm: confirmed at once (else a confirmation link goes to
-- send_email, unless opts.email_link is false); opts.check_signup: run
-- the before_user_created hook; opts.duplicate: the error answer's
-- arguments for an email already taken; opts.session: a confirmed user
-- also gets a session, in the same transaction.  The user, nil and the
-- session (or nil), or nil and the error answer.
function M.create(req, body, opts)
  local email, password = body.email, body.password
  if opts.check_signup and (type(password) ~= "string" or password == "") then
    return fail(400, "validation_failed", "Signup requires a valid password")
  end
  if body.phone and body.phone ~= "" then
    if email and email ~= "" then
      return fail(400, "validation_failed", "Only an email address or phone number should be provided on signup.")
    end
    return fail(400, "phone_provider_disabled", "Phone signups are disabled")
  end
  if email == nil or email == "" then return fail(400, "validation_failed", "To signup, please provide your email") end
  local bad = M.check_email(email)
  if bad then return nil, bad end
  if password ~= nil then
    if type(password) ~= "string" then return fail(400, "validation_failed", "Signup requires a valid password") end
    bad = M.check_password(password)
    if bad then return nil, bad end
  end
  local meta = body.data or body.user_metadata
  if meta == nil or meta == cjson.null then meta = {} end
  if type(meta) ~= "table" then return fail(400, "validation_failed", "data must be an object") end
  if opts.check_signup and meta.role ~= nil then return fail(403, "not_admin", ADMIN_ROLE_MSG) end
  local app = type(body.app_metadata) == "table" and body.app_metadata or {}
  app.provider, app.providers = "email", { "email" }
  if opts.check_signup then
    local hooks = require("auth.hooks")
    if hooks.before_user_created then
      local ok, allowed, msg, status, code = pcall(hooks.before_user_created, { email = email:lower(), user_metadata = meta })
      if not ok then
        log.error("auth: before_user_created hook raised", { error = tostring(allowed) })
        return fail(500, "unexpected_failure", "Error invoking hook")
      end
      -- GoTrue answers a hook's refusal with its http_code and message, and
      -- no error code of its own ("unknown").
      if allowed == false then return fail(status or 403, code or "unknown", msg or "Sign-up refused") end
    end
  end
  local existing, err = store.user_by_email(email)
  if existing == nil then return fail(500, "unexpected_failure", "Database error finding user") end
  local duplicate = opts.duplicate or { 422, "user_already_exists", "User already registered" }
  if existing then return fail(table.unpack(duplicate)) end
  local h = cjson.null
  if body.password_hash ~= nil then
    h = body.password_hash
    if type(h) ~= "string" or #h ~= 60 or not h:match("^%$2[aby]%$%d%d%$[./%w]+$") then
      return fail(400, "validation_failed", "Invalid password hash: only bcrypt hashes are accepted")
    end
  elseif password then
    local e
    h, e = hash(password)
    if not h then return nil, e end
  end
  local confirm = opts.confirm and true or false
  local ctoken = not confirm and crypto.random_token(32) or nil
  local rows, session
  rows, err = store.transaction(function()
    local r, e = pg.query(INSERT_USER, email, h, confirm, ctoken and store.digest(ctoken) or cjson.null, app, meta)
    if r and confirm and opts.session then
      session, e = store.new_session(r[1].id, req.headers["user-agent"], req.remote_addr)
      if not session then return nil, e end
    end
    return r, e
  end)
  if not rows then
    if err and err.code == "23505" then return fail(table.unpack(duplicate)) end
    return fail(500, "unexpected_failure", "Database error saving new user")
  end
  local user = store.user_by_id(rows[1].id)
  if not user then return fail(500, "unexpected_failure", "Database error loading user after sign-up") end
  if ctoken and opts.email_link ~= false then
    M.send_email("signup", user, M.link(req, "signup", ctoken, body.redirect_to))
  end
  if session then session.created = os.time() end
  return user, nil, session
end

local MERGE_META = [[update auth.users set raw_user_meta_data =
    (coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb)
      - coalesce((select array_agg(key) from jsonb_each($2::jsonb) where value = 'null'::jsonb), '{}'::text[]),
    updated_at = now() where id = $1::uuid]]

--- PUT /user {email, password, data}: the updated user, or nil and the
-- error answer.
function M.update(req, user, body)
  local email, password, data = body.email, body.password, body.data
  if data ~= nil and data ~= cjson.null and type(data) ~= "table" then
    return fail(400, "validation_failed", "data must be an object")
  end
  if body.app_metadata ~= nil then
    return fail(403, "not_admin", "Updating app_metadata requires admin privileges")
  end
  if type(data) == "table" and data.role ~= nil then return fail(403, "not_admin", ADMIN_ROLE_MSG) end
  local new_hash
  if password ~= nil and password ~= cjson.null then
    if type(password) ~= "string" then return fail(400, "validation_failed", "password must be a string") end
    local bad = M.check_password(password)
    if bad then return nil, bad end
    if type(user.encrypted_password) == "string" and crypto.bcrypt_verify(password, user.encrypted_password) == true then
      return fail(422, "same_password", "New password should be different from the old password.")
    end
    local e
    new_hash, e = hash(password)
    if not new_hash then return nil, e end
  end
  local change_email
  if email ~= nil and email ~= cjson.null then
    local bad = M.check_email(email)
    if bad then return nil, bad end
  end
  if type(email) == "string" and email:lower() ~= (user.email or ""):lower() then
    local other = store.user_by_email(email)
    if other then
      return fail(422, "email_exists", "A user with this email address has already been registered")
    end
    change_email = email:lower()
  end
  local etoken = change_email and not config.auth.autoconfirm and crypto.random_token(32) or nil
  local ok, err = store.transaction(function()
    local r, e
    if type(data) == "table" then
      r, e = pg.query(MERGE_META, user.id, data)
      if not r then return nil, e end
    end
    if new_hash then
      r, e = pg.query("update auth.users set encrypted_password = $2, updated_at = now() where id = $1::uuid",
        user.id, new_hash)
      if r and type(user.app_metadata) == "table" and user.app_metadata.agentflow == true then
        r, e = require("auth.agentflow").sync_password(user.id, new_hash)
      end
      if not r then return nil, e end
    end
    if change_email and not etoken then
      r, e = pg.query([[update auth.users set email = $2, email_change = '', updated_at = now() where id = $1::uuid]],
        user.id, change_email)
      if not r then return nil, e end
      r, e = pg.query([[update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text),
          updated_at = now() where user_id = $1::uuid and provider = 'email']], user.id, change_email)
      if not r then return nil, e end
    elseif etoken then
      r, e = pg.query([[update auth.users set email_change = $2, email_change_token_new = $3, email_change_sent_at = now(),
          updated_at = now() where id = $1::uuid]], user.id, change_email, store.digest(etoken))
      if not r then return nil, e end
    end
    return true
  end)
  if not ok then
    if err and err.code == "23505" then
      return fail(422, "email_exists", "A user with this email address has already been registered")
    end
    return fail(500, "unexpected_failure", "Error updating user")
  end
  local updated = store.user_by_id(user.id)
  if not updated then return fail(500, "unexpected_failure", "Error updating user") end
  if etoken then -- the link goes to the new address
    M.send_email("email_change", { id = updated.id, email = change_email },
      M.link(req, "email_change", etoken, body.redirect_to))
  end
  return updated
end

return M
