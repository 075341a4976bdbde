-- /rest/v1/rpc for every kind of function PostgREST tells apart (its
-- RpcSpec.hs, "proc return types", VARIADIC, single unnamed param): void,
-- scalars (null included), records, one composite, setof scalars, TABLE,
-- IN/OUT/INOUT/VARIADIC parameters, defaults, one unnamed json/jsonb
-- parameter taking the whole body; count, HEAD and GET with repeated keys.
local cjson = require("cjson")
local R = require("fixtures.rest")

local call = R.call

local FUNCTIONS = [[
create function public.rk_void() returns void language sql as $$ select $$;
create function public.rk_void_arg(a int) returns void language plpgsql as $$ begin perform a; end $$;
create function public.rk_add(a int, b int default 2) returns int language sql immutable as $$ select a + b $$;
create function public.rk_null() returns int language sql stable as $$ select null::int $$;
create function public.rk_text(name text) returns text language sql stable as $$ select 'Hello, ' || name $$;
create function public.rk_out(a int, out x int, out y text) language sql stable as $$ select a * 2, 'y' $$;
create function public.rk_inout(inout a int, out b int) language sql stable as $$ select a + 1, a + 2 $$;
create function public.rk_setof_int(n int) returns setof int language sql stable as $$ select generate_series(1, n) $$;
create function public.rk_table(n int) returns table(i int, sq int) language sql stable
  as $$ select g, g * g from generate_series(1, n) g $$;
create function public.rk_one_item(item_id int) returns public.rest_spec_items language sql stable
  as $$ select * from public.rest_spec_items where id = item_id $$;
create function public.rk_variadic(variadic v text[]) returns text[] language sql immutable as $$ select v $$;
create function public.rk_int_array(arr int[]) returns int[] language sql immutable as $$ select arr $$;
create function public.rk_defaults(a int default 1, b text default 'b', c boolean default true) returns text
  language sql immutable as $$ select a::text || b || c::text $$;
create function public.rk_unnamed_json(json) returns json language sql immutable as $$ select $1 $$;
create function public.rk_unnamed_jsonb(jsonb) returns jsonb language sql immutable as $$ select $1 $$;
create function public.rk_named_json(j json) returns json language sql immutable as $$ select j $$;
create function public.rk_setof_vol(n int) returns setof int language sql volatile as $$ select generate_series(1, n) $$;
]]

local DROP = [[
drop function if exists public.rk_void(), public.rk_void_arg(int), public.rk_add(int, int), public.rk_null(),
  public.rk_text(text), public.rk_out(int), public.rk_inout(int), public.rk_setof_int(int), public.rk_table(int),
  public.rk_one_item(int), public.rk_variadic(text[]), public.rk_int_array(int[]), public.rk_defaults(int, text, boolean),
  public.rk_unnamed_json(json), public.rk_unnamed_jsonb(jsonb), public.rk_named_json(json), public.rk_setof_vol(int);
]]

local function post(fn, body, headers, query)
  return call("POST", "rpc/" .. fn, { body = body or {}, headers = headers, query = query })
end

local function get(fn, query, headers)
  return call("GET", "rpc/" .. fn, { query = query, headers = headers })
end

describe("REST RPC kinds #server", function()
  setup(function() R.setup({ sql = DROP .. FUNCTIONS }) end)
  teardown(function()
    R.teardown()
    require("helpers").exec(DROP)
  end)

  describe("void", function()
    it("answers 204 without a body or Content-Type, as PostgREST", function()
      for _, c in ipairs({ { "rk_void", {} }, { "rk_void_arg", { a = 1 } } }) do
        local code, doc, hdrs, raw = post(c[1], c[2])
        assert.equal(204, code, raw)
        assert.is_nil(doc)
        assert.equal("", raw)
        assert.is_nil(hdrs["content-type"])
        assert.equal("0-0/*", hdrs["content-range"])
      end
    end)
  end)

  describe("scalars", function()
    it("answer the JSON value, null for NULL, with Content-Range 0-0", function()
      local code, _, hdrs, raw = post("rk_add", { a = 3, b = 4 })
      assert.equal(200, code)
      assert.equal("7", raw)
      assert.equal("application/json; charset=utf-8", hdrs["content-type"])
      assert.equal("0-0/*", hdrs["content-range"])
      code, _, _, raw = post("rk_null")
      assert.equal(200, code)
      assert.equal("null", raw)
      code, _, _, raw = post("rk_text", { name = "￥" })
      assert.equal(200, code)
      assert.equal('"Hello, ￥"', raw)
    end)

    it("count the single value as 1 (Prefer: count=exact)", function()
      local code, _, hdrs, raw = get("rk_add", { { "a", "3" }, { "b", "4" } }, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal("7", raw)
      assert.equal("0-0/1", hdrs["content-range"])
      assert.equal("count=exact", hdrs["preference-applied"])
    end)

    it("take default arguments; a GET key given twice counts its last value", function()
      assert.equal('"1btrue"', select(4, post("rk_defaults")))
      assert.equal('"5bfalse"', select(4, post("rk_defaults", { a = 5, c = false })))
      assert.equal("3", select(4, get("rk_add", { { "a", "7" }, { "a", "1" } })))
    end)
  end)

  describe("records", function()
    it("OUT and INOUT parameters answer one object", function()
      local code, doc = post("rk_out", { a = 3 })
      assert.equal(200, code)
      assert.same({ x = 6, y = "y" }, doc)
      code, doc = get("rk_inout", { { "a", "3" } })
      assert.equal(200, code)
      assert.same({ a = 4, b = 5 }, doc)
    end)

    it("one composite answers an object, select applied", function()
      local code, doc = post("rk_one_item", { item_id = 2 }, nil, { { "select", "id,name" } })
      assert.equal(200, code)
      assert.same({ id = 2, name = "banana" }, doc)
    end)
  end)

  describe("sets", function()
    it("setof a scalar answers an array of the values, filtered and ordered by the function's name", function()
      local code, doc, hdrs = post("rk_setof_int", { n = 3 })
      assert.equal(200, code)
      assert.same({ 1, 2, 3 }, doc)
      assert.equal("0-2/*", hdrs["content-range"])
      code, doc, hdrs = get("rk_setof_int", { { "n", "5" }, { "rk_setof_int", "gt.2" }, { "order", "rk_setof_int.desc" },
        { "limit", "2" } }, { Prefer = "count=exact" })
      assert.equal(206, code)
      assert.same({ 5, 4 }, doc)
      assert.equal("0-1/3", hdrs["content-range"])
    end)

    it("a volatile function that writes nothing answers a GET (run read-only, as PostgREST)", function()
      local code, doc = get("rk_setof_vol", { { "n", "2" } })
      assert.equal(200, code)
      assert.same({ 1, 2 }, doc)
    end)

    it("TABLE functions answer rows; count=exact on POST, GET and HEAD", function()
      local code, doc, hdrs = post("rk_table", { n = 3 }, { Prefer = "count=exact" }, { { "sq", "gt.1" }, { "select", "sq" } })
      assert.equal(200, code)
      assert.same({ { sq = 4 }, { sq = 9 } }, doc)
      assert.equal("0-1/2", hdrs["content-range"])
      code, doc, hdrs = get("rk_table", { { "n", "3" }, { "limit", "1" }, { "offset", "1" } }, { Prefer = "count=exact" })
      assert.equal(206, code)
      assert.same({ { i = 2, sq = 4 } }, doc)
      assert.equal("1-1/3", hdrs["content-range"])
      local raw
      code, _, hdrs, raw = call("HEAD", "rpc/rk_table", { query = { { "n", "4" } }, headers = { Prefer = "count=exact" } })
      assert.equal(200, code)
      assert.equal("", raw)
      assert.equal("0-3/4", hdrs["content-range"])
    end)

    it("the Range header pages a function's rows", function()
      local code, doc, hdrs = post("rk_setof_int", { n = 4 }, { Range = "1-2" })
      assert.equal(200, code)
      assert.same({ 2, 3 }, doc)
      assert.equal("1-2/*", hdrs["content-range"])
    end)
  end)

  describe("arrays and VARIADIC", function()
    it("VARIADIC takes an array on POST, repeated or single keys on GET, none through its default", function()
      assert.same({ "hi", "hello", "there" }, select(2, post("rk_variadic", { v = { "hi", "hello", "there" } })))
      assert.same({ "hi" }, select(2, get("rk_variadic", { { "v", "hi" } })))
      assert.same({ "hi", "there" }, select(2, get("rk_variadic", { { "v", "hi" }, { "v", "there" } })))
    end)

    it("an array argument reads {a,b} literals and repeated keys on GET", function()
      assert.same({ 1, 2 }, select(2, get("rk_int_array", { { "arr", "{1,2}" } })))
      assert.same({ 1, 2, 3 }, select(2, get("rk_int_array", { { "arr", "1" }, { "arr", "2" }, { "arr", "3" } })))
      assert.same({ 4, 5 }, select(2, post("rk_int_array", { arr = { 4, 5 } })))
    end)
  end)

  describe("a single unnamed json or jsonb parameter", function()
    it("receives the whole body, objects and arrays alike", function()
      assert.same({ A = 1, B = 2, C = 3 }, select(2, post("rk_unnamed_json", { A = 1, B = 2, C = 3 })))
      assert.same({ 1, 2 }, select(2, post("rk_unnamed_jsonb", { 1, 2 })))
    end)

    it("a named one does not: PGRST202 as PostgREST words it", function()
      local code, _, _, raw = post("rk_named_json", { A = 1, B = 2, C = 3 })
      assert.equal(404, code)
      assert.same({ code = "PGRST202", message = "Could not find the function public.rk_named_json(A, B, C) in the schema cache",
        details = "Searched for the function public.rk_named_json with parameters A, B, C or with a single unnamed "
          .. "json/jsonb parameter, but no matches were found in the schema cache.", hint = cjson.null }, cjson.decode(raw))
    end)
  end)

  describe("errors", function()
    it("a GET names its keys without the json alternative; none at all reads 'without parameters'", function()
      local code, doc = get("rk_add", { { "zz", "1" } })
      assert.equal(404, code)
      assert.equal("Could not find the function public.rk_add(zz) in the schema cache", doc.message)
      assert.equal("Searched for the function public.rk_add with parameter zz, but no matches were found in the schema cache.",
        doc.details)
      code, doc = get("rk_text")
      assert.equal(404, code)
      assert.equal("Could not find the function public.rk_text without parameters in the schema cache", doc.message)
    end)
  end)
end)
