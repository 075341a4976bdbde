-- strata.rest.errors: PostgREST's error bodies and statuses.  Every error
-- is { code, message, details, hint }; SQL errors keep their SQLSTATE.
--
-- When REST code raises and when it returns:
-- * The parsers (strata.rest.grammar, csv.decode) return nil, err: callers
--   also use them as tests, and only the caller knows which parameter the
--   text came from, which the message names.
-- * Below the handlers (the SQL builder, embed planning, relations, policy
--   compilation, media and Prefer checks, RPC overload choice, the
--   handlers' own argument checks) a request that cannot be answered raises
--   M.raise(status, code, message, details, hint): a structured value that
--   crosses every frame unchanged, so the builders keep answering plain SQL
--   text.
-- * It is caught in one place per route, with pcall: strata.rest.handle
--   (for tables and rpc/) and strata.rest.explain, which turn it into the
--   (status, body) answer with M.caught.  A value that is not a REST error
--   is a bug: M.caught raises it again and the server answers 500.
-- * A handler that has decided the answer itself (a policy's denial, a
--   database error, no single row, a validator's 422) returns M.new's
--   (status, body) as its answer, as it returns a success.

local cjson = require("cjson")

local M = {}

local null = cjson.null

--- A PostgREST-style error as (status, body table).
function M.new(status, code, message, details, hint)
  return status, { code = code, message = message, details = details or null, hint = hint or null }
end

--- Raises a REST error: the request cannot be answered (see above).
function M.raise(status, code, message, details, hint)
  error({ rest_error = true, status = status, code = code, message = message, details = details, hint = hint }, 0)
end

--- The (status, body) of an error value caught by pcall at a route's
-- boundary; anything but a REST error is raised again (a bug: 500).
function M.caught(e)
  if type(e) == "table" and e.rest_error then return M.new(e.status, e.code, e.message, e.details, e.hint) end
  error(e, 0)
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

-- Levenshtein distance of a and b (bytes; names are short).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur, ca = { [0] = i }, a:byte(i)
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

--- The name of `names` (a table keyed by name) closest to `name`, when its
-- similarity 1 - distance / longer length (the Levenshtein score of the
-- fuzzyset PostgREST's hints use) is at least 0.75; else nil.
function M.closest(name, names)
  if #name > 128 then return nil end -- no table name is that long; the distance would cost
  local best, score = nil, 0.75
  local lname = name:lower()
  for other in pairs(names) do
    local s = 1 - distance(lname, other:lower()) / math.max(#name, #other)
    if s > score or s == score and (best == nil or other < best) then best, score = other, s end
  end
  return best
end

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
