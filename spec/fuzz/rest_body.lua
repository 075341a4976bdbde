-- spec/fuzz/rest_body.lua: the JSON (and CSV) bodies of REST writes and
-- RPC calls, through strata.rest.run on the fixture schema
-- (spec/fuzz/catalog.lua).  The input is four lines and a body:
--   METHOD TARGET          POST Chat, PATCH Message_v2, POST rpc/add_numbers ...
--   QUERY                  a query string (columns=, on_conflict=, filters)
--   PREFER                 a Prefer header
--   CONTENT-TYPE           application/json or text/csv
--   BODY                   the rest
-- Each call runs as an owner and as the service.  The answer must be a
-- 2xx-4xx or the stub database's 503; a raise or another 5xx is a finding,
-- and so is a statement with client text outside parameters and quoted
-- identifiers (spec/fuzz/catalog.lua).
local stub = require("stub")
require("catalog")
local cjson = require("cjson")
local rest = require("strata.rest")
local prefer = require("strata.rest.prefer")

local METHODS = { "POST", "PATCH", "PUT", "DELETE", "GET" }
local CTXS = {
  { role = "authenticated", uid = "aaaaaaaa-0000-4000-8000-000000000001", claims = {} },
  { role = "service_role", claims = {} },
}

return function(data)
  local head, qs, pref, ctype, body = data:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
  if not head then head, qs, pref, ctype, body = "", "", "", "", data end
  local method, target = head:match("^(%u+) (.*)$")
  if not method then method, target = METHODS[#data % #METHODS + 1], "Chat" end
  local fn = target:match("^rpc/(.+)$")
  local ok, json = pcall(cjson.decode, body)
  for _, ctx in ipairs(CTXS) do
    local call = { ctx = ctx, method = method, table = not fn and target or nil, fn = fn,
      query = stub.query_of(qs), json = ok and json or nil, body = body,
      csv = ctype:find("^%s*[Tt][Ee][Xx][Tt]/[Cc][Ss][Vv]") ~= nil, prefer = prefer.parse(pref ~= "" and pref or nil) }
    local status, answer = rest.run(call)
    stub.check_rest(status, answer)
  end
end
