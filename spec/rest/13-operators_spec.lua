-- The filter operators beyond comparison end to end, against PostgreSQL's
-- own types: match / imatch (regular expressions), isdistinct, ov on
-- arrays and ranges, the range operators sl, sr, nxr, nxl, adj, each also
-- negated with not. and inside or= groups.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "operators-spec-secret-0123456789"

local FIXTURES = [[
drop table if exists public.ops_spec_items;
create table public.ops_spec_items (id int primary key, name text, qty int, tags text[], span int4range);
insert into public.ops_spec_items values
  (1, 'Apple', 3, '{fruit,red}', '[1,5)'),
  (2, 'banana', null, '{fruit,yellow}', '[5,10)'),
  (3, 'carrot', 7, '{veg}', '[20,30)'),
  (4, 'avocado', 3, '{}', null);
]]

local function encode(s)
  return (tostring(s):gsub("[^%w_%.~%-]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("filter operators #server", function()
  local server, service

  setup(function()
    h.accepts(FIXTURES)
    server = srv.start({ STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
    service = srv.rest_client(server.port, srv.token(SECRET, "--role service_role"))
  end)

  teardown(function()
    if server then
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    h.exec("drop table if exists public.ops_spec_items")
  end)

  -- The ids (in order) of the rows the filter `key=value` keeps.
  local function ids(key, value)
    local code, rows = service.get(("ops_spec_items?select=id&order=id&%s=%s"):format(encode(key), encode(value)))
    assert.equal(200, code, cjson.encode(rows))
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.id end
    return out
  end

  it("matches regular expressions, case-sensitive or not", function()
    assert.same({ 2, 3 }, ids("name", "match.^[bc]"))
    assert.same({ 1, 4 }, ids("name", "imatch.^a"))
    assert.same({ 4 }, ids("name", "match.^a"))
    assert.same({ 2, 3 }, ids("name", "not.imatch.^a"))
  end)

  it("compares with IS DISTINCT FROM, nulls included", function()
    assert.same({ 2, 3 }, ids("qty", "isdistinct.3"))
    assert.same({ 1, 4 }, ids("qty", "not.isdistinct.3"))
  end)

  it("overlaps arrays and ranges", function()
    assert.same({ 1, 2 }, ids("tags", "ov.{red,yellow}"))
    assert.same({ 1, 2 }, ids("span", "ov.[4,6)"))
    assert.same({ 3 }, ids("span", "not.ov.[0,10)"))
  end)

  it("answers the range operators as PostgreSQL does", function()
    assert.same({ 1, 2 }, ids("span", "sl.[10,20)"))
    assert.same({ 3 }, ids("span", "sr.[10,20)"))
    assert.same({ 1, 2 }, ids("span", "nxr.[0,10)"))
    assert.same({ 2, 3 }, ids("span", "nxl.[5,6)"))
    assert.same({ 2, 3 }, ids("span", "adj.[10,20)"))
    assert.same({ 1 }, ids("span", "not.adj.[10,20)"))
  end)

  it("works inside or= groups, a range quoted to carry its comma", function()
    assert.same({ 2, 3, 4 }, ids("or", '(span.adj."[10,20)",name.imatch.^av)'))
    assert.same({ 2, 3 }, ids("or", "(tags.ov.{veg,yellow},qty.not.isdistinct.7)"))
  end)

  it("answers 400 for a value PostgreSQL cannot read as the column's type", function()
    local code, doc = service.get("ops_spec_items?span=adj.notarange")
    assert.equal(400, code, cjson.encode(doc))
    assert.equal("22P02", doc.code)
  end)
end)
