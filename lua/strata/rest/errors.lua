-- strata.rest.errors: PostgREST's error bodies and statuses.  Every error
-- is { code, message, details, hint }; SQL errors keep their SQLSTATE.

local cjson = require("cjson")

local M = {}

local null = cjson.null

--- A PostgREST-style error as (status, body table).
function M.new(status, code, message, details, hint)
  return status, { code = code, message = message, details = details or null, hint = hint or null }
end

-- SQLSTATE -> HTTP status, as PostgREST maps them (exact codes first, then
-- classes); anything else is 400.
local EXACT = {
  ["23503"] = 409, ["23505"] = 409, ["25006"] = 405, ["42883"] = 404, ["42P01"] = 404,
  ["42501"] = 403, ["P0001"] = 400, ["57014"] = 504, ["40001"] = 409, ["40P01"] = 409,
}
local CLASS = {
  ["08"] = 503, ["09"] = 500, ["0L"] = 403, ["0P"] = 403, ["25"] = 500, ["28"] = 403,
  ["2D"] = 500, ["38"] = 500, ["39"] = 500, ["3B"] = 500, ["40"] = 500, ["53"] = 503,
  ["54"] = 413, ["55"] = 500, ["57"] = 500, ["58"] = 500, ["F0"] = 500, ["HV"] = 500,
  ["P0"] = 500, ["XX"] = 500,
}

--- The status and body for a strata.db error (err from db.query).
-- anon: the caller has no token (42501 is then 401, as PostgREST does).
function M.from_db(err, anon)
  local code = err.code or "XX000"
  local status = err.status or EXACT[code] or CLASS[code:sub(1, 2)] or 400
  if code == "42501" and anon then status = 401 end
  return status, { code = code, message = err.message or "database error", details = err.detail or null,
    hint = err.hint or null }
end

return M
