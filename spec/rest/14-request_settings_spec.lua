-- PostgREST's per-request settings reach SQL on reads as well as writes:
-- request.jwt.claims (and auth.uid() / auth.role() over it), the legacy
-- request.jwt.claim.sub, request.method, request.path and request.headers,
-- so views and functions written for Supabase see the caller.
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "settings-spec-secret-0123456789abcdef"

local VIEW = [[
create or replace view public.rest_spec_whoami as
  select auth.uid() as uid, auth.role() as role,
    current_setting('request.jwt.claim.sub', true) as legacy_sub,
    current_setting('request.method', true) as method,
    current_setting('request.path', true) as path,
    current_setting('request.headers', true)::json ->> 'x-client-info' as client_info;
create table if not exists public.rest_spec_audit (
  id serial primary key,
  who uuid default auth.uid(),
  method text default current_setting('request.method', true),
  note text);
]]

describe("request settings through REST #server", function()
  local server, service

  setup(function()
    assert(h.exec(VIEW))
    local dir = srv.lua_dir({})
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
    local cleanup = server.cleanup
    server.cleanup = function() cleanup(); os.execute("rm -rf " .. srv.quote(dir)) end
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    h.exec("drop view if exists public.rest_spec_whoami; drop table if exists public.rest_spec_audit")
  end)

  it("a GET sees the caller and the request, as PostgREST sets them", function()
    local uid = h.uuid()
    service = srv.token(SECRET, "--sub " .. uid .. " --role service_role")
    local code, doc = srv.rest(server.port, "GET", "/rest/v1/rest_spec_whoami", nil,
      { Authorization = "Bearer " .. service, ["X-Client-Info"] = "postgrest-js/2.109.0" })
    assert.equal(200, code)
    assert.same({ { uid = uid, role = "service_role", legacy_sub = uid, method = "GET",
                    path = "/rest/v1/rest_spec_whoami", client_info = "postgrest-js/2.109.0" } }, doc)
  end)

  it("a write's column defaults see them too", function()
    local uid = h.uuid()
    local tok = srv.token(SECRET, "--sub " .. uid .. " --role service_role")
    local code, doc = srv.rest(server.port, "POST", "/rest/v1/rest_spec_audit", { note = "n" },
      { Authorization = "Bearer " .. tok, ["Content-Type"] = "application/json", Prefer = "return=representation" })
    assert.equal(201, code)
    assert.equal(uid, doc[1].who)
    assert.equal("POST", doc[1].method)
  end)
end)
