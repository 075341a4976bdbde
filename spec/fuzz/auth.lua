-- spec/fuzz/auth.lua: the input parsing of the GoTrue endpoints
-- (lua/auth/*, through auth.handle as the /auth/v1/*rest route calls it).
-- The input is three lines and a body:
--   METHOD PATH[?QUERY]    POST /token?grant_type=password, PUT /user, ...
--   AUTHORIZATION          the header's value (empty: none)
--   CONTENT-TYPE
--   BODY
-- Each request runs as anon and as a signed-in user, against a database
-- that is down and one that has no rows: the handlers read their input and
-- stop at their first statement, or answer from "nothing found".  An
-- answer is an HTTP status and a body; a raise is a finding.
local stub = require("stub")
local auth = require("auth.init")

local CTXS = {
  { role = "anon", claims = {} },
  { role = "authenticated", uid = "aaaaaaaa-0000-4000-8000-000000000001", is_admin = true,
    claims = { sub = "aaaaaaaa-0000-4000-8000-000000000001", session_id = "cccccccc-0000-4000-8000-000000000001",
      user_metadata = { role = "admin" } } },
}
local NO_ROWS = function() return {} end

return function(data)
  local head, authz, ctype, body = data:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
  if not head then head, authz, ctype, body = "POST /token?grant_type=password", "", "", data end
  local method, path = head:match("^(%u+) /?(.*)$")
  if not method then method, path = "POST", "signup" end
  local rest, qs = path:match("^([^?]*)%??(.*)$")
  for _, answer in ipairs({ false, NO_ROWS }) do
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
