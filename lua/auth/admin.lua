-- auth.admin: GoTrue's admin user endpoints, for the service_role only, so
-- supabase.auth.admin.* works: list (page/per_page, X-Total-Count and
-- Link as GoTrue), create, read, update (ban_duration, email_confirm,
-- metadata merged), delete (hard, or should_soft_delete).  Banning or
-- deleting a user ends their sessions, on every instance.

local cjson = require("cjson")
local pg = require("strata.pg")
local http = require("strata.http")
local store = require("auth.store")
local reply = require("auth.reply")
local users = require("auth.users")

local type, tonumber, tostring = type, tonumber, tostring

local M = {}

local PER_PAGE = 50

local function body_of(req)
  return type(req.json) == "table" and req.json or {}
end

-- GoTrue's ban_duration: "none", or a Go duration ("24h", "1h30m", "90s").
-- Seconds (0 for none), or nil when it does not parse.
local UNITS = { h = 3600, m = 60, s = 1, ms = 0.001 }
local function ban_seconds(text)
  if text == "none" then return 0 end
  if type(text) ~= "string" or text == "" then return nil end
  local total, rest = 0, text
  while rest ~= "" do
    local n, unit, tail = rest:match("^(%d+%.?%d*)(%a+)(.*)$")
    if not n or not UNITS[unit] then return nil end
    total, rest = total + tonumber(n) * UNITS[unit], tail
  end
  return total
end

local function forbidden(req)
  if not req.headers.authorization then
    return { reply.error(401, "no_authorization", "This endpoint requires a valid Bearer token") }
  end
  if req.auth.role ~= "service_role" then return { reply.error(403, "not_admin", "User not allowed") } end
end

local function list(req)
  local page, per = tonumber(req.query.page or "1"), tonumber(req.query.per_page or tostring(PER_PAGE))
  if not page or not per or page < 1 or per < 1 or page % 1 ~= 0 or per % 1 ~= 0 then
    return reply.error(400, "validation_failed", "Bad Pagination Parameters")
  end
  local rows, err = pg.query([[select count(*) over () as total, ]] .. store.USER_COLS .. [[
    from auth.users u where u.deleted_at is null order by u.created_at desc, u.id limit $1 offset $2]],
    per, (page - 1) * per)
  if not rows then return reply.db_error(err, "Database error finding users") end
  local total = rows[1] and rows[1].total
  if not total then
    local c = pg.query("select count(*) as n from auth.users where deleted_at is null")
    total = c and c[1] and c[1].n or 0
  end
  local parts = {}
  for i, r in ipairs(rows) do parts[i] = r.json end
  local pages = math.max(1, (total + per - 1) // per)
  -- Query keys sorted, as GoTrue's url.Values.Encode writes them: auth-js
  -- reads the page number right after the first "=".
  local function url(p) return ("/auth/v1/admin/users?page=%d&per_page=%d"):format(p, per) end
  local link = (pages > page and ('<%s>; rel="next", '):format(url(page + 1)) or "")
    .. ('<%s>; rel="last"'):format(url(pages))
  local status, text, headers = reply.json(200, '{"users":[' .. table.concat(parts, ",") .. '],"aud":"authenticated"}')
  headers["X-Total-Count"], headers.Link = tostring(total), link
  return status, text, headers
end

local function create(req)
  local body = body_of(req)
  if (body.email == nil or body.email == "") and (body.phone == nil or body.phone == "") then
    return reply.error(400, "validation_failed", "Cannot create a user without either an email or phone")
  end
  if body.password ~= nil and body.password_hash ~= nil then
    return reply.error(400, "validation_failed", "Only a password or a password hash should be provided")
  end
  local user, why = users.create(req, body, { confirm = body.email_confirm == true, email_link = false,
                                              duplicate = { 422, "email_exists",
                                                "A user with this email address has already been registered" } })
  if not user then return table.unpack(why) end
  if body.ban_duration ~= nil or body.role ~= nil then
    local changed
    changed, why = M.apply(user, body)
    if not changed then return table.unpack(why) end
    user = changed
  end
  return reply.json(200, user.json)
end

local MERGE = [[update auth.users set %s =
    (coalesce(%s, '{}'::jsonb) || $2::jsonb)
      - coalesce((select array_agg(key) from jsonb_each($2::jsonb) where value = 'null'::jsonb), '{}'::text[]),
    updated_at = now() where id = $1::uuid]]

--- The admin changes of body on user (one transaction): the user after
-- them, or nil and the error answer.
function M.apply(user, body)
  local ban
  if body.ban_duration ~= nil then
    ban = ban_seconds(body.ban_duration)
    if not ban then
      return nil, { reply.error(400, "validation_failed", "invalid format for ban duration: " .. tostring(body.ban_duration)) }
    end
  end
  local email = body.email
  if email ~= nil and email ~= cjson.null then
    local bad = users.check_email(email)
    if bad then return nil, bad end
  end
  local hash
  if type(body.password) == "string" then
    local bad = users.check_password(body.password)
    if bad then return nil, bad end
    local err
    hash, err = require("strata.crypto").bcrypt_hash(body.password)
    if not hash then return nil, { reply.error(500, "unexpected_failure", "Error during password storage: " .. err) } end
  end
  local ended
  local ok, err = store.transaction(function()
    local function q(sql, ...)
      local r, e = pg.query(sql, ...)
      if not r then error(e, 0) end
      return r
    end
    if type(body.user_metadata) == "table" then q(MERGE:format("raw_user_meta_data", "raw_user_meta_data"), user.id, body.user_metadata) end
    if type(body.app_metadata) == "table" then q(MERGE:format("raw_app_meta_data", "raw_app_meta_data"), user.id, body.app_metadata) end
    if type(email) == "string" then
      q("update auth.users set email = lower($2), updated_at = now() where id = $1::uuid", user.id, email)
      q([[update auth.identities set identity_data = identity_data || jsonb_build_object('email', lower($2::text)),
          updated_at = now() where user_id = $1::uuid and provider = 'email']], user.id, email)
    end
    if hash then q("update auth.users set encrypted_password = $2, updated_at = now() where id = $1::uuid", user.id, hash) end
    if body.email_confirm == true then
      q("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1::uuid", user.id)
    end
    if type(body.role) == "string" then q("update auth.users set role = $2 where id = $1::uuid", user.id, body.role) end
    if ban then
      q([[update auth.users set banned_until = case when $2::float8 > 0 then now() + make_interval(secs => $2::float8) end,
          updated_at = now() where id = $1::uuid]], user.id, ban)
      if ban > 0 then ended = assert(store.end_sessions(user.id, nil, "global")) end
    end
    return true
  end)
  if not ok then
    if type(err) == "table" and err.code == "23505" then
      return nil, { reply.error(422, "email_exists", "A user with this email address has already been registered") }
    end
    return nil, { reply.db_error(err, "Error updating user") }
  end
  store.forget(ended)
  return store.user_by_id(user.id)
end

local function load(req)
  local id = req.params.rest:match("^admin/users/([^/]+)$")
  id = id and http.url_decode(id)
  if not id or not id:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then
    return nil, { reply.error(404, "validation_failed", "user_id must be an UUID") }
  end
  local user, err = store.user_by_id(id)
  if user == nil then return nil, { reply.db_error(err, "Database error loading user") } end
  if not user then return nil, { reply.error(404, "user_not_found", "User not found") } end
  return user
end

local function get(req)
  local user, why = load(req)
  if not user then return table.unpack(why) end
  return reply.json(200, user.json)
end

local function update(req)
  local user, why = load(req)
  if not user then return table.unpack(why) end
  user, why = M.apply(user, body_of(req))
  if not user then return table.unpack(why) end
  return reply.json(200, user.json)
end

local function delete(req)
  local user, why = load(req)
  if not user then return table.unpack(why) end
  local soft = body_of(req).should_soft_delete == true
  local ended
  local ok, err = store.transaction(function()
    local r, e = store.end_sessions(user.id, nil, "global")
    ended = r
    if r and soft then
      r, e = pg.query("delete from auth.identities where user_id = $1::uuid", user.id)
      if r then
        r, e = pg.query([[update auth.users set deleted_at = now(), email = null, phone = null,
          encrypted_password = '', updated_at = now() where id = $1::uuid]], user.id)
      end
    elseif r then
      r, e = pg.query("delete from auth.users where id = $1::uuid", user.id)
    end
    return r, e
  end)
  if not ok then return reply.db_error(err, "Database error deleting user") end
  store.forget(ended)
  return reply.json(200, "{}")
end

--- The handler of an admin path, or nil.
function M.route(method, rest)
  local h
  if rest == "/admin/users" then
    h = method == "GET" and list or method == "POST" and create or nil
  elseif rest:match("^/admin/users/[^/]+$") then
    h = method == "GET" and get or method == "PUT" and update or method == "DELETE" and delete or nil
  end
  if not h then return nil end
  return function(req)
    local why = forbidden(req)
    if why then return table.unpack(why) end
    return h(req)
  end
end

return M
