-- auth.agentflow: AgentFlow (seed 004) callers on /auth/v1.
--
-- CEOs: an agentflow.users row signs in with its email and password (its
-- bcrypt password_hash).  On the first sign-in the CEO gets an auth.users
-- row with the same id, email and hash, so the token's sub is their
-- agentflow.users.id (what the agentflow policies compare) and sessions,
-- refresh, logout and PUT /user work as for anyone; from then on that
-- auth.users row is the login, and a password change is written to both.
-- An auth.users row with the same email but another id wins: the two
-- stores meet by id, never by merging accounts.

local crypto = require("strata.crypto")
local log = require("strata.log")
local pg = require("strata.pg")
local store = require("auth.store")

local type = type

local M = {}

local FIND_CEO = [[select id::text as id, email, password_hash, name from agentflow.users
  where lower(email) = lower($1) and deleted_at is null]]

local IMPORT_CEO = [[
  with u as (
    insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
                            raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values ($1::uuid, 'authenticated', 'authenticated', lower($2), $3, now(),
            '{"provider":"email","providers":["email"],"agentflow":true}', jsonb_build_object('name', $4::text),
            now(), now())
    on conflict (id) do nothing
    returning id, email)
  insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
    select u.id::text, u.id, jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true,
                                                'phone_verified', false), 'email', now(), now() from u]]

--- The auth user for an AgentFlow CEO whose email and password match
-- (made on their first sign-in), false when none matches, nil, err on
-- failure.  Only called when no auth.users row has that email.
function M.ceo_sign_in(email, password)
  local rows, err = pg.query(FIND_CEO, email)
  if not rows then
    log.warn("auth: agentflow.users cannot be read; CEO sign-in is off", { code = err and err.code })
    return false
  end
  local ceo = rows[1]
  if not ceo or crypto.bcrypt_verify(password, ceo.password_hash) ~= true then return false end
  rows, err = pg.query([[select u.id::text as id from auth.users u where u.id = $1::uuid]], ceo.id)
  if not rows then return nil, err end
  if not rows[1] then
    local ok
    ok, err = store.transaction(function()
      return pg.query(IMPORT_CEO, ceo.id, ceo.email, ceo.password_hash, ceo.name)
    end)
    if not ok then return nil, err end
  end
  return store.user_by_id(ceo.id)
end

--- Keeps a CEO's agentflow.users.password_hash equal to their new
-- password (inside the transaction that changes auth.users).
function M.sync_password(user_id, hash)
  return pg.query([[update agentflow.users set password_hash = $2 where id = $1::uuid
    and exists (select 1 from auth.users u where u.id = $1::uuid and u.raw_app_meta_data ->> 'agentflow' = 'true')]],
    user_id, hash)
end

return M
