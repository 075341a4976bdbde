-- auth.reply: GoTrue's answers.  Errors have two shapes, as GoTrue sends
-- them: a client that says X-Supabase-Api-Version 2024-01-01 or later
-- (auth-js does) gets {"code": error_code, "message": msg}; any other gets
-- {"code": status, "error_code": ..., "msg": ...}.  Both carry the
-- x-sb-error-code header.  Bodies built in SQL (users, sessions) are JSON
-- text and go out as they are.

local cjson = require("cjson")
local request = require("strata.request")

local type = type

local M = {}

local API_VERSION = "2024-01-01"

local function new_shape(req)
  local v = req and req.headers["x-supabase-api-version"]
  return type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%d$") and v >= API_VERSION
end

--- status, body, headers of an error; `extra` fields (weak_password) are
-- added to the body.
function M.error(status, code, msg, extra, headers)
  local req = request.current()
  local body
  if new_shape(req) then
    body = { code = code, message = msg }
  else
    body = { code = status, error_code = code, msg = msg }
  end
  for k, v in pairs(extra or {}) do body[k] = v end
  local h = { ["x-sb-error-code"] = code, ["X-Supabase-Api-Version"] = API_VERSION,
              ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return status, cjson.encode(body), h
end

--- A failure of the database (err from strata.pg) as GoTrue's 500, or
-- 503 with Retry-After when the database cannot be reached.
function M.db_error(err, what)
  local log = require("strata.log")
  log.error("auth: " .. (what or "database error"), { code = err and err.code, message = err and err.message })
  if type(err) == "table" and err.status == 503 then
    return M.error(503, "unexpected_failure", "Database unavailable", nil, { ["Retry-After"] = "1" })
  end
  return M.error(500, "unexpected_failure", what or "Database error")
end

--- status, the JSON text, headers.
function M.json(status, text)
  return status, text, { ["Content-Type"] = "application/json", ["X-Supabase-Api-Version"] = API_VERSION }
end

--- A Lua table as JSON.
function M.table(status, t)
  return M.json(status, cjson.encode(t))
end

return M
