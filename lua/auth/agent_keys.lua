-- auth.agent_keys: AgentFlow agents' API keys (seed 004).
--
-- A CEO creates a key for one of their agents (POST
-- /v1/agentflow/agents/:id/keys, lua/routes/agentflow_keys.lua): shown
-- once, stored as HMAC-SHA-256 keyed with a random per-row salt in
-- agent_credentials (and agents.api_key_hash, the newest key), with an
-- expiry.  Rotation: a new key shortens the agent's older active keys to a
-- grace period (default an hour); past their expiry they are refused and
-- deactivated.  An agent trades its key for a short-lived access token
-- (POST /auth/v1/token?grant_type=agent_key {"api_key"}: sub = agent_id =
-- the agent's id, role authenticated); every exchange is logged in
-- agent_credential_uses; last_used_at is written in batches (at most
-- every FLUSH_S seconds per worker; a few seconds of it are lost at a
-- restart).

local cjson = require("cjson")
local crypto = require("strata.crypto")
local config = require("strata.config")
local log = require("strata.log")
local pg = require("strata.pg")
local store = require("auth.store")
local reply = require("auth.reply")

local type, os_time, tostring, tonumber = type, os.time, tostring, tonumber

local M = {}

M.TOKEN_EXP = 900        -- an agent's access token lives 15 minutes
M.DEFAULT_GRACE = 3600   -- older keys stay valid this long after a rotation
local FLUSH_S = 10
local PREFIX = "sfak_"

local function digest(salt, secret)
  return "hmac-sha256$" .. crypto.hex(crypto.hmac_sha256(salt, secret))
end

local function err_body(status, code, message)
  return status, { code = code, message = message, details = cjson.null, hint = cjson.null }
end

--- POST /v1/agentflow/agents/:id/keys {expires_in_days?, grace_seconds?}
-- as the CEO owning the agent's workspace: 201 {id, api_key, expires_at}.
function M.create(req)
  local auth = req.auth
  if auth.role ~= "authenticated" or not auth.uid or auth.claims.agent_id ~= nil then
    return err_body(401, "unauthorized", "a CEO's token is required")
  end
  local body = type(req.json) == "table" and req.json or {}
  local days, grace = body.expires_in_days, body.grace_seconds or M.DEFAULT_GRACE
  if days ~= nil and (type(days) ~= "number" or days % 1 ~= 0 or days < 1 or days > 3650) then
    return err_body(400, "invalid_expires_in_days", "expires_in_days must be an integer from 1 to 3650")
  end
  if type(grace) ~= "number" or grace % 1 ~= 0 or grace < 0 or grace > 30 * 86400 then
    return err_body(400, "invalid_grace_seconds", "grace_seconds must be an integer from 0 to 2592000")
  end
  local rows, err = pg.query([[select a.id::text as id, a.status from agentflow.agents a
      join agentflow.workspaces w on w.id = a.workspace_id
    where a.id = $1::uuid and w.owner_id = $2::uuid and a.deleted_at is null]], req.params.id, auth.uid)
  if not rows then
    if err and err.code == "22P02" then return err_body(404, "not_found", "no such agent of yours") end
    return err_body(500, "internal_error", "database error finding the agent")
  end
  local agent = rows[1]
  if not agent then return err_body(404, "not_found", "no such agent of yours") end
  if agent.status == "terminated" then return err_body(409, "agent_terminated", "a terminated agent gets no key") end
  local secret, salt = crypto.random_token(32), crypto.hex(crypto.random_bytes(16))
  local hash = digest(salt, secret)
  local made
  made, err = store.transaction(function()
    local r, e = pg.query([[update agentflow.agent_credentials
        set expires_at = least(coalesce(expires_at, 'infinity'), localtimestamp + make_interval(secs => $2::int))
      where agent_id = $1::uuid and credential_type = 'api_key' and is_active and deleted_at is null]],
      agent.id, math.tointeger(grace))
    if not r then return nil, e end
    r, e = pg.query([[insert into agentflow.agent_credentials (agent_id, credential_type, credential_hash, salt, expires_at)
      values ($1::uuid, 'api_key', $2, $3, localtimestamp + make_interval(days => $4::int))
      returning id::text as id, to_json(expires_at) #>> '{}' as expires_at]], agent.id, hash, salt, math.tointeger(days or 365))
    if not r then return nil, e end
    local q, e2 = pg.query("update agentflow.agents set api_key_hash = $2 where id = $1::uuid", agent.id, hash)
    if not q then return nil, e2 end
    return r[1]
  end)
  if not made then
    log.error("agent keys: cannot create a key", { error = err and err.message })
    return err_body(500, "internal_error", "database error creating the key")
  end
  return 201, { id = made.id, agent_id = agent.id, api_key = PREFIX .. made.id .. "_" .. secret,
                expires_at = made.expires_at }
end

-- last_used_at waiting to be written: credential id -> Unix time.
local pending, last_flush = {}, os_time()

local function note_use(id)
  pending[id] = os_time()
  if os_time() - last_flush < FLUSH_S then return end
  local batch = pending
  pending, last_flush = {}, os_time()
  local ok, err = pg.query([[update agentflow.agent_credentials c set last_used_at = to_timestamp(v.value::float8)::timestamp
    from jsonb_each_text($1::jsonb) v where c.id = v.key::uuid]], batch)
  if not ok then log.warn("agent keys: last_used_at not written", { error = err and err.message }) end
end

local CHECK = [[select c.id::text as id, c.agent_id::text as agent_id, c.credential_hash, c.salt,
    c.is_active and c.deleted_at is null as active,
    (c.expires_at is null or c.expires_at > localtimestamp) as fresh,
    a.status <> 'terminated' and a.deleted_at is null as agent_ok
  from agentflow.agent_credentials c join agentflow.agents a on a.id = c.agent_id
  where c.id = $1::uuid and c.credential_type = 'api_key']]

-- The credential row and the result ("ok", "unknown", ...).
local function check(api_key)
  local id, secret = api_key:match("^" .. PREFIX .. "(%x+%-%x+%-%x+%-%x+%-%x+)_([%w_-]+)$")
  if not id then return nil, "unknown" end
  local rows = pg.query(CHECK, id)
  local c = rows and rows[1]
  if not c then return nil, "unknown" end
  if not crypto.equal(digest(c.salt, secret), c.credential_hash) then return c, "bad_secret" end
  if not c.active then return c, "inactive" end
  if not c.fresh then
    pg.query("update agentflow.agent_credentials set is_active = false where id = $1::uuid", c.id)
    return c, "expired"
  end
  if not c.agent_ok then return c, "agent_unavailable" end
  return c, "ok"
end

--- POST /auth/v1/token?grant_type=agent_key {"api_key": "..."}.
function M.exchange(req, body)
  local api_key = body.api_key
  if type(api_key) ~= "string" or api_key == "" or #api_key > 256 then
    return reply.error(400, "validation_failed", "agent_key grant requires an api_key")
  end
  local c, result = check(api_key)
  local logged, err = pg.query([[insert into agentflow.agent_credential_uses
      (credential_id, agent_id, remote_addr, user_agent, result) values ($1::uuid, $2::uuid, $3, $4, $5)]],
    c and c.id or cjson.null, c and c.agent_id or cjson.null, req.remote_addr, req.headers["user-agent"], result)
  if not logged then log.warn("agent keys: use not logged", { error = err and err.message, result = result }) end
  if result ~= "ok" then
    require("strata.auth").count("signin_failed")
    return reply.error(401, "invalid_credentials", "Invalid API key")
  end
  note_use(c.id)
  local now = os_time()
  local host = req.headers.host
  local claims = { aud = "authenticated", exp = now + M.TOKEN_EXP, iat = now, sub = c.agent_id, agent_id = c.agent_id,
                   role = "authenticated", aal = "aal1", amr = { { method = "agent_key", timestamp = now } },
                   iss = host and ("http://" .. host .. "/auth/v1") or (config.auth.site_url .. "/auth/v1"),
                   is_anonymous = false }
  local token = assert(crypto.jwt_sign(claims))
  return reply.table(200, { access_token = token, token_type = "bearer", expires_in = M.TOKEN_EXP,
                            expires_at = claims.exp })
end

return M
