-- spec/fuzz/webhook.lua: the GitHub webhook route
-- (lua/routes/agentflow_github.lua): its signature check and its reading
-- of the payload.  The input is three lines and a body:
--   X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256, body.
-- Delivered with the input's signature, the route answers 401 (or 400 for
-- a body that is no JSON object) unless that signature is right; with the
-- right one it never answers 401 when a project has the repository.  The
-- project store (strata.data) is a stub: one project for any repository
-- URL, no tasks, inserts echoed back; transactions reach the stub database.
local stub = require("stub")
local cjson = require("cjson")
local fuzzc = require("fuzz.c")

local SECRET = "fuzz-webhook-secret"

local function copy(t)
  local out = { id = "bbbbbbbb-0000-4000-8000-000000000001", status = "todo" }
  for k, v in pairs(t) do out[k] = v end
  return out
end

local svc = {
  select = function(rel)
    if rel == "agentflow.projects" then return { { id = "p1", github_webhook_secret = SECRET } } end
    return {}
  end,
  insert = function(_, row) return { copy(row) } end,
  update = function() return {} end,
}
svc.transaction = function(fn) return fn({ query = function() return nil, stub.DB_DOWN end }) end
package.loaded["strata.data"] = { as_service = function() return svc end, transaction = svc.transaction }

local route = require("routes.agentflow_github")[1]

local function signature(body)
  return "sha256=" .. require("strata.crypto").hex(fuzzc.hmac_sha256(SECRET, body))
end

local function deliver(event, delivery, sig, body)
  local status, answer = route.handler({ method = "POST", body = body, query = {}, params = {},
    headers = { ["x-github-event"] = event, ["x-github-delivery"] = delivery, ["x-hub-signature-256"] = sig } })
  stub.check_answer(status, answer)
  return status
end

return function(data)
  local event, delivery, sig, body = data:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
  if not event then event, delivery, sig, body = "issues", "d1", "", data end
  local ok, payload = pcall(cjson.decode, body)
  local object = ok and type(payload) == "table"
  local right = signature(body)
  local status = deliver(event, delivery, sig, body)
  if not object then
    stub.expect(status == 400, "a body that is no object answered %d", status)
  elseif sig ~= right then
    stub.expect(status == 401, "a wrong signature answered %d", status)
  end
  status = deliver(event, delivery, right, body)
  local repo = object and payload.repository
  if object and type(repo) == "table" and type(repo.html_url) == "string" then
    stub.expect(status ~= 401, "the right signature answered 401")
  end
end
