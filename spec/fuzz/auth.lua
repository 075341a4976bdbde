-- spec/fuzz/auth.lua: the input parsing of the GoTrue endpoints
-- (lua/auth/*, through auth.handle as the /auth/v1/*rest route calls it).
-- The input is three lines and a body:
--   METHOD PATH[?QUERY]    POST /token?grant_type=password, PUT /user, ...
--   AUTHORIZATION          the header's value (empty: none)
--   CONTENT-TYPE
--   BODY
-- Each request runs as anon and as a signed-in user, against a database
-- that is down, one that has no rows and one that answers one row: the
-- handlers read their input and stop at their first statement, answer
-- from "nothing found", or go on as with a known user.  An
-- answer is an HTTP status and a body; a raise is a finding.
local stub = require("stub")
local auth = require("auth.init")

local CTXS = {
  { role = "anon", claims = {} },
  { role = "authenticated", uid = "aaaaaaaa-0000-4000-8000-000000000001", is_admin = true,
    claims = { sub = "aaaaaaaa-0000-4000-8000-000000000001", session_id = "cccccccc-0000-4000-8000-000000000001",
      user_metadata = { role = "admin" } } },
}
-- One row with the columns lua/auth reads (a confirmed user, their
-- session and refresh token, an agent's key): the handlers then go past
-- their lookups (the stub bcrypt takes "fuzz-password").
local UID, SID = "aaaaaaaa-0000-4000-8000-000000000001", "cccccccc-0000-4000-8000-000000000001"
local HASH = "$2b$04$" .. ("x"):rep(53)
local ONE_ROW = function()
  return { { id = UID, user_id = UID, session_id = SID, agent_id = UID, email = "a@b.co", name = "A",
    encrypted_password = HASH, password_hash = HASH, api_key_hash = HASH, aud = "authenticated",
    role = "authenticated", phone = "", user_metadata = { name = "A" }, app_metadata = { provider = "email" },
    is_anonymous = false, email_confirmed = true, banned = false, deleted = false, revoked = false, active = true,
    json = '{"id":"' .. UID .. '","email":"a@b.co"}', created = 1700000000, total = 1, replayed = false } }
end
-- Nothing found: a select answers no row; a write still answers the row
-- it wrote (INSERT ... RETURNING never answers none).
local NO_ROWS = function(sql)
  if sql:match("^%s*[Ss][Ee][Ll][Ee][Cc][Tt]") then return {} end
  return ONE_ROW()
end

return function(data)
  local head, authz, ctype, body = data:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
  if not head then head, authz, ctype, body = "POST /token?grant_type=password", "", "", data end
  local method, path = head:match("^(%u+) /?(.*)$")
  if not method then method, path = "POST", "signup" end
  local rest, qs = path:match("^([^?]*)%??(.*)$")
  for _, answer in ipairs({ false, NO_ROWS, ONE_ROW }) do
    stub.answer = answer or nil
    for _, ctx in ipairs(CTXS) do
      local req = { method = method, path = "/auth/v1/" .. rest, params = { rest = rest }, query = stub.query_of(qs),
        headers = { authorization = authz ~= "" and authz or nil, ["content-type"] = ctype, host = "localhost" },
        body = body, auth = ctx, remote = "127.0.0.1" }
      stub.check_answer(auth.handle(req))
    end
  end
  stub.answer = nil
end
