-- No request can make the REST handler raise: random and hostile inputs
-- for every part of PostgREST's grammar (select with embeds, casts, JSON
-- paths and aliases; every filter operator, negated, with all/any, inside
-- or/and; order; limit/offset/Range; Prefer; Accept; bodies; rpc) must
-- answer 2xx, or 4xx with a PostgREST error body, never 5xx.  The random
-- source is seeded: REST_FUZZ_SEED=<n> replays a run, and a failure
-- prints its seed and request.
local cjson = require("cjson")
local R = require("fixtures.rest")

local SEED = tonumber(os.getenv("REST_FUZZ_SEED") or "") or os.time()
local ROUNDS = tonumber(os.getenv("REST_FUZZ_ROUNDS") or "") or 300

-- Every operator of PostgREST's grammar (QueryParams.hs pOpExpr), each
-- quantifiable one with (any) and (all), the full-text ones with a
-- language, and near misses; any of them may come negated (filter()).
local OPS = { "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is", "isdistinct",
  "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "bogus", "eqq", "no", "not",
  "in()", "is()", "fts()", "eq()", "eq(some)", "fts(english", "fts(a b)", "is.not_null", "is.NULL", "is.nul" }
for _, q in ipairs({ "eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch" }) do
  OPS[#OPS + 1] = q .. "(any)"
  OPS[#OPS + 1] = q .. "(all)"
end
for _, f in ipairs({ "fts", "plfts", "phfts", "wfts" }) do OPS[#OPS + 1] = f .. "(english)" end
local COLUMNS = { "id", "name", "qty", "tags", "meta", "body", "created_at", "meta->color", "meta->>color",
  "meta->size->>w", "meta->'x'", "meta->0", "meta->>-1", "meta->>--1", "nope", '"name"', '"with space"', '"a\\"b"', '"',
  '"unterminated', "rest_spec_children", "c", "*", "", "é✓", "\u{202E}id", "\xff\xfe", "id\0" }
local VALUES = { "1", "-1", "0", "1.5", "1e999", "apple", "a,b", "(1,2)", "{1,2}", "{a,\"b,c\"}", "null", "true",
  "unknown", "not_null", "%", "*pp*", "\"quoted\"", "\"unterminated", "\"a\\\"b\"", "'", "\\", "é✓", "\u{10FFFF}",
  "\u{1F600}\u{200D}\u{1F4BB}", "e\u{301}", "\xff\xfe", "\xc3", "", " ", "()", "((", ")", "{", "}", "[1]", "[1,5)",
  "\0x", "a.b.c", "eq.1", "not.", "2020-01-01", "'; drop table x; --", string.rep("x", 3000) }
local CASTS = { "", "::text", "::int", "::json", "::nope", "::", "::text::int" }

local rng
local function pick(list) return list[rng(#list)] end
local function chance(p) return rng(1000) <= p * 1000 end

local function big_list()
  local out = {}
  for i = 1, rng(2000) do out[i] = tostring(rng(100000)) end
  return "(" .. table.concat(out, ",") .. ")"
end

local function value()
  if chance(0.05) then return big_list() end
  local v = pick(VALUES)
  if chance(0.2) then v = "(" .. v .. "," .. pick(VALUES) .. ")" end
  if chance(0.1) then v = "{" .. v .. "}" end
  return v
end

-- A {a,b,...} list of up to 2000 values, some quoted, for (any)/(all).
local function big_braces()
  local out = {}
  for i = 1, rng(2000) do out[i] = chance(0.1) and ('"' .. pick(VALUES) .. '"') or tostring(rng(100000)) end
  return "{" .. table.concat(out, ",") .. "}"
end

local function filter(small)
  local op = pick(OPS)
  local v = not small and op:find("%(a[nl][yl]%)$") and chance(0.3) and big_braces() or value()
  return (chance(0.25) and "not." or "") .. op .. "." .. v
end

local function logic(depth)
  local parts = {}
  local huge = chance(0.02) -- sometimes a huge list of conditions (of short values)
  for i = 1, (huge and rng(500) or rng(4)) do
    if depth < 3 and chance(0.3) then
      parts[i] = pick({ "or", "and", "not.or", "not.and" }) .. logic(depth + 1)
    else
      parts[i] = pick(COLUMNS) .. "." .. filter(huge)
    end
  end
  local text = "(" .. table.concat(parts, ",") .. ")"
  if chance(0.1) then text = text:sub(1, rng(#text)) end -- truncated
  return text
end

local function select_list(depth)
  local items = {}
  for i = 1, rng(5) do
    local c = pick(COLUMNS)
    if chance(0.3) then c = "alias" .. i .. ":" .. c end
    c = c .. pick(CASTS)
    if depth < 3 and chance(0.2) then
      c = pick({ "rest_spec_children", "rest_spec_items", "nope", "rest_spec_children!inner", "rest_spec_children!left",
        "...rest_spec_children", "c:rest_spec_children!item_id", "rest_spec_children!item_id!inner",
        "...rest_spec_items!inner", "rest_spec_children!!", "count", "c:...rest_spec_children" })
        .. "(" .. select_list(depth + 1) .. ")"
    end
    if chance(0.1) then
      c = c .. pick({ ".sum()", ".count()", "count()", ".avg()::int", ".max()", ".min()::text", "(", ")", ",", "!", "->" })
    end
    items[i] = c
  end
  return table.concat(items, ",")
end

local function order()
  local parts = {}
  for i = 1, rng(3) do
    parts[i] = pick(COLUMNS) .. pick({ "", ".asc", ".desc", ".nullsfirst", ".desc.nullslast", ".bogus", "(id)",
      ".asc.nullsfirst.x" })
  end
  return table.concat(parts, ",")
end

local PREFERS = { "count=exact", "count=planned", "count=estimated", "count=bogus", "return=representation",
  "return=minimal", "return=headers-only", "resolution=merge-duplicates", "resolution=ignore-duplicates",
  "missing=default", "handling=strict", "handling=lenient", "tx=rollback", "tx=commit", "max-affected=1",
  "max-affected=-1", "timezone=UTC", "timezone=Nowhere/Else", "params=single-object", "bogus" }
local ACCEPTS = { "application/json", "*/*", "text/csv", "application/vnd.pgrst.object+json",
  "application/vnd.pgrst.plan+json; options=analyze|verbose", "application/vnd.pgrst.plan+text; for=\"text/csv\"",
  "application/vnd.pgrst.array+json;nulls=stripped", "application/vnd.pgrst.plan+json", "image/png", "text/plain;q=0",
  "application/geo+json", ";;;", "application/json;q=x" }

-- The URL stays under what a command line holds (the specs call curl):
-- past it, the longest parameters are cut short.
local MAX_QUERY = 60000

local function bounded(q)
  local total = 0
  for _, kv in ipairs(q) do total = total + #kv[1] + #kv[2] end
  while total > MAX_QUERY do
    local longest = 1
    for i, kv in ipairs(q) do if #kv[2] > #q[longest][2] then longest = i end end
    local cut = math.min(#q[longest][2], total - MAX_QUERY + 1)
    q[longest][2] = q[longest][2]:sub(1, #q[longest][2] - cut)
    total = total - cut
  end
  return q
end

local function request()
  local q = {}
  if chance(0.6) then q[#q + 1] = { "select", select_list(1) } end
  for _ = 1, rng(4) - 1 do
    if chance(0.3) then
      q[#q + 1] = { pick({ "or", "and", "not.or", "not.and", "rest_spec_children.or" }), logic(1) }
    else
      q[#q + 1] = { pick(COLUMNS), filter() }
    end
  end
  -- Null filtering on an embed, by name or alias, and other operators on it.
  if chance(0.1) then q[#q + 1] = { pick({ "rest_spec_children", "c", "rest_spec_items" }), filter() } end
  if chance(0.3) then q[#q + 1] = { "order", order() } end
  if chance(0.1) then q[#q + 1] = { "order", order() } end -- repeated: the first applies
  if chance(0.05) then q[#q + 1] = { "select", select_list(1) } end -- repeated too
  if chance(0.1) then q[#q + 1] = { "rest_spec_children.order", order() } end
  if chance(0.2) then q[#q + 1] = { pick({ "limit", "offset", "rest_spec_children.limit" }), pick(VALUES) } end
  if chance(0.1) then q[#q + 1] = { "on_conflict", pick(COLUMNS) } end
  if chance(0.1) then q[#q + 1] = { "columns", pick(COLUMNS) .. "," .. pick(COLUMNS) } end
  local headers = {}
  if chance(0.4) then headers.Prefer = pick(PREFERS) .. (chance(0.5) and (", " .. pick(PREFERS)) or "") end
  if chance(0.3) then headers.Accept = pick(ACCEPTS) end
  if chance(0.1) then headers.Range = pick({ "0-1", "5-2", "x", "1-", "99999999999999999999-1" }) end
  -- HEAD runs the GET path; curl -X HEAD would wait out its timeout for the announced body.
  local method = pick({ "GET", "GET", "GET", "POST", "PATCH", "DELETE", "PUT" })
  local path = pick({ "rest_spec_items", "rest_spec_items", "rest_spec_children", "rest_spec_nope", "rpc/rest_spec_add",
    "rpc/rest_spec_items_over", "rpc/nope", "rpc/rest_spec_fail", "rpc/rest_spec_bump", "rpc/rest_spec_pick", "" })
  local body
  if method ~= "GET" and method ~= "HEAD" then
    body = pick({ '{"name":"fuzz' .. rng(1e6) .. '","qty":1}', '[{"name":"f' .. rng(1e6) .. '"},{"qty":2}]',
      '{"a":1,"b":2}', '{"min_qty":"x"}', "[]", "{}", "null", "not json", '{"nope":1}', '{"qty":"é✓"}',
      '[1,2]', '{"name":' .. string.rep("[", 300) .. string.rep("]", 300) .. "}" })
    if path:match("^rpc/") and chance(0.5) then method = pick({ "POST", "GET" }) end
  end
  return method, path, bounded(q), headers, body
end

-- PostgREST's error body: exactly code, message, details, hint.
local function is_error_body(doc)
  if type(doc) ~= "table" then return false end
  for k in pairs(doc) do
    if k ~= "code" and k ~= "message" and k ~= "details" and k ~= "hint" then return false end
  end
  return type(doc.code) == "string" and type(doc.message) == "string" and doc.details ~= nil and doc.hint ~= nil
end

describe("REST fuzz #server", function()
  -- Aggregates and plans on, so that their grammar and statements are fed too.
  setup(function() R.setup({ env = { STRATA_REST_AGGREGATES = "true", STRATA_REST_PLANS = "true" } }) end)
  teardown(R.teardown)

  it(("answers every random request 2xx or 4xx with a PostgREST error body (seed %d)"):format(SEED), function()
    rng = (function()
      local s = SEED % 2147483647
      if s <= 0 then s = s + 2147483646 end
      return function(n) s = s * 16807 % 2147483647; return s % n + 1 end -- Park-Miller: the same run for a seed
    end)()
    for i = 1, ROUNDS do
      local method, path, q, headers, body = request()
      local code, doc, _, raw = R.call(method, path, { query = q, headers = headers, body = body })
      local what = ("seed %d round %d: %s %s %s %s body %s -> %d %s"):format(SEED, i, method, path, cjson.encode(q):sub(1, 1500),
        cjson.encode(headers), tostring(body):sub(1, 200), code, tostring(raw):sub(1, 300))
      assert.is_true(code >= 200 and code < 500, what)
      -- 414: the HTTP layer's max_uri_bytes, before any REST code runs.
      if code >= 300 and code ~= 414 and method ~= "HEAD" then assert.is_true(is_error_body(doc), what) end
    end
  end)

  -- Hostile inputs every run: deep nesting, huge lists, broken quoting,
  -- bytes that are not UTF-8.
  it("answers hostile requests 4xx with a PostgREST error body or 2xx", function()
    local deep_select = string.rep("rest_spec_children(", 200) .. "id" .. string.rep(")", 200)
    local deep_logic = "(" .. string.rep("or(", 300) .. "id.eq.1" .. string.rep(")", 300) .. ")"
    local many = {}
    for i = 1, 3000 do many[i] = tostring(i) end
    local cases = {
      { { "select", deep_select } }, { { "select", string.rep("(", 500) } }, { { "select", string.rep(")", 500) } },
      { { "or", deep_logic } }, { { "and", "(" .. string.rep("id.eq.1,", 1500) .. "id.eq.2)" } },
      { { "id", "in.(" .. table.concat(many, ",") .. ")" } }, { { "id", "eq(any).{" .. table.concat(many, ",") .. "}" } },
      { { "name", 'in.("a,"b",c)' } }, { { "name", 'eq."\\' } }, { { "or", '(name.eq."a,b),id.eq.1)' } },
      { { '"name', "eq.x" } }, { { "select", '"name' } }, { { "order", '"name.desc' } },
      { { "name", "eq.\xff\xfe\xfd" } }, { { "\xff", "eq.1" } }, { { "select", "\xc3(id)" } },
      { { "order", "\xe2\x82.desc" } }, { { "or", "(\xf0\x9f.eq.1)" } }, { { "name", "\xf0\x9f\x98" } },
      { { "rest_spec_children", "is.null" } }, { { "select", "id,...rest_spec_children(id)" }, { "rest_spec_children", "eq.1" } },
      { { "select", "id,rest_spec_children(id.sum())" } }, { { "order", "id" }, { "order", "id.x" } },
    }
    for i, q in ipairs(cases) do
      local code, doc, _, raw = R.call("GET", "rest_spec_items", { query = q })
      local what = ("case %d %s -> %d %s"):format(i, cjson.encode(q):sub(1, 300), code, tostring(raw):sub(1, 300))
      assert.is_true(code >= 200 and code < 500, what)
      if code >= 300 and code ~= 414 then assert.is_true(is_error_body(doc), what) end
    end
  end)
end)
