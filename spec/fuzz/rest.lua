-- spec/fuzz/rest.lua: the REST query grammar (strata.rest.grammar through
-- strata.rest.query, as strata.rest reads a request's parameters).  The
-- input is a query string; every parameter either parses into the shape
-- the SQL builder reads or is refused: grammar functions answer nil,
-- message, strata.rest.query raises a REST error with a 4xx status.
-- Anything else raised, or a wrong shape, is a finding.  Then the same
-- query goes through strata.rest.run as a GET of a table of the fixture
-- schema (spec/fuzz/catalog.lua), by an owner and by the service: the
-- SQL builder and embedding must answer a 4xx or reach the (stub)
-- database, never raise or answer another 5xx; every statement they make
-- must keep client text inside parameters and quoted identifiers
-- (spec/fuzz/catalog.lua).
local stub = require("stub")
local fixture = require("catalog")
local rest = require("strata.rest")
local grammar = require("strata.rest.grammar")
local query = require("strata.rest.query")

local expect = stub.expect

local function refused(err)
  return type(err) == "string" and err ~= ""
end

-- What strata.rest.query raises for bad input: a REST error with a 4xx.
local function rest_4xx(ok, e)
  if ok then return end
  expect(type(e) == "table" and e.rest_error and e.status >= 400 and e.status < 500,
    "raised a non-4xx: %s", type(e) == "table" and tostring(e.status) .. " " .. tostring(e.message) or tostring(e))
end

local function check_field(f)
  expect(type(f) == "table" and type(f.name) == "string" and type(f.path) == "table", "field without name/path")
  for _, step in ipairs(f.path) do
    expect(step.op == "->" or step.op == "->>", "json path op %s", tostring(step.op))
    expect(type(step.key) == "string" and step.key ~= "", "empty json path key")
  end
end

local function check_select(items)
  expect(type(items) == "table", "select is a %s", type(items))
  for _, it in ipairs(items) do
    if it.embed then
      expect(type(it.name) == "string" and it.name ~= "", "embed without name")
      check_select(it.select)
    elseif not it.star then
      check_field(it)
    end
  end
end

local function check_node(n)
  if n.logic then
    expect(n.logic == "and" or n.logic == "or", "logic %s", tostring(n.logic))
    for _, c in ipairs(n.children) do check_node(c) end
  else
    check_field(n.field)
    expect(grammar.OPS[n.op], "unknown op %s accepted", tostring(n.op))
    expect(type(n.value) == "string" or type(n.values) == "table", "filter %s without value", n.op)
  end
end

local function param(k, v)
  if type(v) == "table" then
    for _, one in ipairs(v) do param(k, one) end
    return
  end
  if k == "select" then
    local items, err = grammar.select(v)
    if items then check_select(items) else expect(refused(err), "select: no message") end
  elseif k == "order" then
    local list, err = grammar.order(v)
    if list then
      for _, o in ipairs(list) do check_field(o.field) end
    else
      expect(refused(err), "order: no message")
    end
  elseif k == "columns" or k == "on_conflict" then
    local cols, err = grammar.columns(v)
    expect(cols or refused(err), "columns: no message")
  elseif k == "limit" or k == "offset" then
    rest_4xx(pcall(query.count, v, k))
  else
    local ok, node = pcall(query.filter_node, k, v)
    rest_4xx(ok, node)
    if ok then check_node(node) end
  end
end

local CTXS = {
  { role = "authenticated", uid = "aaaaaaaa-0000-4000-8000-000000000001", claims = {} },
  { role = "service_role", claims = {} },
}

return function(data)
  local q = stub.query_of(data)
  for k, v in pairs(q) do param(k, v) end
  -- limit, offset and a Range header together, as strata.rest reads them.
  local range = type(q.range) == "string" and q.range or nil
  q.range = nil
  rest_4xx(pcall(query.window, { range = range }, q, 1000))
  for i, ctx in ipairs(CTXS) do
    local t = fixture.TABLES[(#data + i) % #fixture.TABLES + 1].name
    local status, body = rest.run({ ctx = ctx, method = "GET", table = t, query = stub.query_of(data),
      prefer = { invalid = {} }, range = range })
    stub.check_rest(status, body)
  end
end
