-- auth.store: the SQL of /auth/v1 on auth.users, auth.identities,
-- auth.sessions and auth.refresh_tokens (sql/130_auth.sql).  It runs as
-- strata's own database user (strata.pg without request settings), as
-- GoTrue runs as its own: the API roles cannot read these tables.  Users
-- and sessions are answered as GoTrue's JSON, built by PostgreSQL (its
-- timestamps in ISO 8601, empty arrays as []).

local pg = require("strata.pg")
local crypto = require("strata.crypto")
local events = require("strata.auth")

local pcall, error, type = pcall, error, type
local pack, unpack = table.pack, table.unpack

local M = {}

local USER_JSON = [[jsonb_build_object(
  'id', u.id, 'aud', coalesce(u.aud, 'authenticated'), 'role', coalesce(u.role, 'authenticated'),
  'email', coalesce(u.email, ''), 'email_confirmed_at', u.email_confirmed_at, 'phone', coalesce(u.phone, ''),
  'confirmation_sent_at', u.confirmation_sent_at, 'confirmed_at', u.confirmed_at,
  'recovery_sent_at', u.recovery_sent_at, 'new_email', nullif(u.email_change, ''),
  'email_change_sent_at', u.email_change_sent_at, 'last_sign_in_at', u.last_sign_in_at,
  'app_metadata', u.raw_app_meta_data, 'user_metadata', u.raw_user_meta_data,
  'identities', coalesce((select jsonb_agg(jsonb_build_object('identity_id', i.id, 'id', i.provider_id,
      'user_id', i.user_id, 'identity_data', i.identity_data, 'provider', i.provider,
      'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at, 'updated_at', i.updated_at,
      'email', i.email) order by i.created_at) from auth.identities i where i.user_id = u.id), '[]'::jsonb),
  'created_at', u.created_at, 'updated_at', u.updated_at, 'is_anonymous', u.is_anonymous,
  'banned_until', u.banned_until)::text]]

local USER_COLS = [[u.id::text as id, u.email, u.encrypted_password, coalesce(u.aud, 'authenticated') as aud,
  coalesce(u.role, 'authenticated') as role, coalesce(u.phone, '') as phone,
  u.raw_user_meta_data as user_metadata, u.raw_app_meta_data as app_metadata, u.is_anonymous,
  u.email_confirmed_at is not null as email_confirmed,
  coalesce(u.banned_until > now(), false) as banned, u.deleted_at is not null as deleted, ]] .. USER_JSON .. " as json"

M.USER_COLS = USER_COLS

local function one(rows, err)
  if not rows then return nil, err end
  return rows[1] or false
end

--- The user with this email (any case), false when none, nil, err on failure.
function M.user_by_email(email)
  return one(pg.query("select " .. USER_COLS .. " from auth.users u where lower(u.email) = lower($1) and u.deleted_at is null", email))
end

function M.user_by_id(id)
  return one(pg.query("select " .. USER_COLS .. " from auth.users u where u.id = $1::uuid and u.deleted_at is null", id))
end

--- The hex SHA-256 of a token: what the tables keep instead of it.
function M.digest(token)
  return crypto.hex(crypto.sha256(token))
end

--- Runs fn() inside BEGIN ... COMMIT on one connection as strata's own
-- user; ROLLBACK when it raises or answers nil, err (a raised table, a
-- statement's error, is answered as nil, err).  fn may answer
-- `false, why` to COMMIT what it did and still report a refusal (reuse
-- detection ends a session and answers an error).
function M.transaction(fn)
  local ok, err = pg.begin()
  if not ok then return nil, err end
  local res = pack(pcall(fn))
  if not res[1] then
    pg.rollback()
    if type(res[2]) == "table" then return nil, res[2] end -- a statement's error, raised to leave fn
    error(res[2], 0)
  end
  if res[2] == nil then
    pg.rollback()
    return nil, res[3]
  end
  ok, err = pg.commit()
  if not ok then return nil, err end
  return unpack(res, 2, res.n)
end

--- Starts a session for user_id with a new refresh token (inside a
-- transaction).  The session's id and the refresh token.
function M.new_session(user_id, user_agent, ip)
  local token = crypto.random_token(32)
  local rows, err = pg.query([[
    with s as (insert into auth.sessions (id, user_id, aal, user_agent, ip, refreshed_at)
               values (gen_random_uuid(), $1::uuid, 'aal1', $2, $3::inet, now()) returning id)
    insert into auth.refresh_tokens (token, user_id, revoked, session_id)
      select $4, $1, false, s.id from s returning session_id::text as id]],
    user_id, user_agent, ip, M.digest(token))
  if not rows then return nil, err end
  local id = rows[1].id
  rows, err = pg.query([[update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1::uuid]], user_id)
  if not rows then return nil, err end
  return { id = id, refresh_token = token }
end

function M.session(id)
  return one(pg.query([[select s.id::text as id, s.user_id::text as user_id,
    extract(epoch from s.created_at)::bigint as created from auth.sessions s where s.id = $1::uuid]], id))
end

--- Ends sessions (inside a transaction): "local" (session_id), "others"
-- (the user's but session_id), "global" (all of the user's).  The
-- trigger of sql/130 records them as revoked and tells every instance.
-- The ids ended, for M.forget once committed, or nil, err.
function M.end_sessions(user_id, session_id, scope)
  local rows, err
  if scope == "local" then
    rows, err = pg.query("delete from auth.sessions where id = $1::uuid returning id::text as id", session_id)
  elseif scope == "others" then
    rows, err = pg.query("delete from auth.sessions where user_id = $1::uuid and id <> $2::uuid returning id::text as id",
      user_id, session_id)
  else
    rows, err = pg.query("delete from auth.sessions where user_id = $1::uuid returning id::text as id", user_id)
  end
  if not rows then return nil, err end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

--- Refuses the ended sessions' tokens on this instance at once (the
-- NOTIFY reaches the others, and this one, a moment later).
function M.forget(ids)
  for _, id in ipairs(ids or {}) do events.revoke(id) end
end

return M
