-- PostgREST 12 behaviour that supabase-js / postgrest-js users reach for:
-- quantified like/ilike/eq, nulls=stripped, ordering forms, CSV PATCH,
-- on_conflict on a unique key, missing=default in bulk, quoted identifiers,
-- Prefer: max-affected, and error bodies as PostgREST writes them (its
-- test/spec: NullsStripSpec, MaxAffectedSpec, QuerySpec, ErrorSpec).
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local call = R.call

local SQL = [[
drop table if exists public.rest_more cascade;
drop function if exists public.rest_more_take(int), public.rest_more_void();
create table public.rest_more (
  id serial primary key,
  code text not null unique,
  "column whitespace" text,
  qty int default 42,
  note text default 'none'
);
create function public.rest_more_take(n int) returns setof public.rest_more language sql volatile
  as $$ delete from public.rest_more where id <= n returning * $$;
create function public.rest_more_label(public.rest_more) returns text language sql stable
  as $$ select $1.code || ':' || coalesce($1.qty::text, '-') $$;
create function public.rest_more_void() returns void language sql volatile as $$ delete from public.rest_more $$;
drop table if exists public.rest_plan;
create table public.rest_plan (id int primary key);
insert into public.rest_plan select generate_series(1, 2000);
analyze public.rest_plan;
drop table if exists public.rest_tz;
create table public.rest_tz (t timestamptz primary key);
insert into public.rest_tz values ('2023-10-18 12:37:59.611+00');
]]

local function reset()
  h.accepts([[truncate public.rest_more restart identity;
    insert into public.rest_more(code, "column whitespace", qty, note) values
      ('a', 'x', 1, null), ('b', null, null, 'n'), ('c', 'z', 3, null);]])
end

local function names(doc)
  local out = {}
  for i, r in ipairs(doc) do out[i] = r.name or r.code end
  return out
end

describe("REST PostgREST 12 #server", function()
  setup(function()
    R.setup({ sql = SQL })
  end)
  teardown(function()
    R.teardown()
    h.exec("drop table if exists public.rest_more, public.rest_plan, public.rest_tz cascade; drop function if exists public.rest_more_void()")
  end)
  before_each(reset)

  describe("quantified operators", function()
    it("like(any), like(all), ilike(any), ilike(all) over {a,b} lists, * as %", function()
      local function codes(k, v) return names(select(2, R.get("rest_more", { { "select", "code" }, { k, v },
        { "order", "id" } }))) end
      assert.same({ "a", "b" }, codes("code", "like(any).{a*,b%}"))
      assert.same({}, codes("code", "like(all).{a*,b%}"))
      assert.same({ "a" }, codes("code", "ilike(all).{A*,%a}"))
      assert.same({ "a", "c" }, codes("code", "ilike(any).{A,C}"))
      assert.same({ "b", "c" }, codes("code", "not.like(any).{a*,x*}"))
      assert.same({ "a", "c" }, codes("or", "(code.like(any).{a*,c*},qty.gt(all).{100})"))
      assert.same({ "a", "c" }, codes("id", "eq(any).{1,3}"))
      assert.same({ "c" }, codes("id", "gt(all).{1,2}"))
    end)

    it("a quantified operator without a {} list is a PGRST100", function()
      local code, doc = R.get("rest_more", { { "code", "like(any).a*" } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
    end)
  end)

  describe("Accept: nulls=stripped", function()
    it("strips null members from arrays and the single object, with PostgREST's Content-Type", function()
      local code, _, hdrs, raw = R.get("rest_more", { { "select", "code,qty,note" }, { "order", "id" } },
        { Accept = "application/vnd.pgrst.array+json;nulls=stripped" })
      assert.equal(200, code)
      assert.same({ { code = "a", qty = 1 }, { code = "b", note = "n" }, { code = "c", qty = 3 } }, cjson.decode(raw))
      assert.equal("application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8", hdrs["content-type"])
      code, _, hdrs, raw = R.get("rest_more", { { "select", "code,qty,note" }, { "id", "eq.2" } },
        { Accept = "application/vnd.pgrst.object+json;nulls=stripped" })
      assert.equal(200, code)
      assert.same({ code = "b", note = "n" }, cjson.decode(raw))
      assert.equal("application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8", hdrs["content-type"])
    end)

    it("strips the representation of a write", function()
      local code, _, _, raw = call("POST", "rest_more", { body = { code = "d", qty = cjson.null },
        query = { { "select", "code,qty" } },
        headers = { Prefer = "return=representation", Accept = "application/vnd.pgrst.array+json;nulls=stripped" } })
      assert.equal(201, code)
      assert.same({ { code = "d" } }, cjson.decode(raw))
    end)
  end)

  describe("ordering", function()
    it("reads a.desc.nullslast,b.asc as postgrest-js writes it", function()
      local _, doc = R.get("rest_more", { { "select", "code" }, { "order", "qty.desc.nullslast,code.asc" } })
      assert.same({ "c", "a", "b" }, names(doc))
      _, doc = R.get("rest_more", { { "select", "code" }, { "order", "qty.desc.nullsfirst" } })
      assert.same({ "b", "c", "a" }, names(doc))
    end)
  end)

  describe("CSV", function()
    it("reads a table as text/csv", function()
      local code, _, hdrs, raw = R.get("rest_more", { { "select", "code,qty" }, { "order", "id" } }, { Accept = "text/csv" })
      assert.equal(200, code)
      assert.equal("code,qty\na,1\nb,\nc,3", raw)
      assert.equal("text/csv; charset=utf-8", hdrs["content-type"])
    end)

    it("takes a CSV body on PATCH", function()
      local code, doc = call("PATCH", "rest_more", { query = { { "code", "eq.b" } }, body = "qty,note\n9,csv",
        headers = { ["Content-Type"] = "text/csv", Prefer = "return=representation" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.equal(9, doc[1].qty)
      assert.equal("csv", doc[1].note)
    end)
  end)

  describe("writes", function()
    it("upserts on a unique (non-primary) key with on_conflict; count=exact answers */n", function()
      local code, doc, hdrs = call("POST", "rest_more", { query = { { "on_conflict", "code" } },
        body = { { code = "a", qty = 7 }, { code = "e", qty = 8 } },
        headers = { Prefer = "resolution=merge-duplicates,return=representation,count=exact" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.equal("*/2", hdrs["content-range"])
      assert.equal("resolution=merge-duplicates, return=representation, count=exact", hdrs["preference-applied"])
      assert.equal("7", h.scalar("select qty from public.rest_more where code = 'a'"))
      assert.equal("1", h.scalar("select id from public.rest_more where code = 'a'"))
    end)

    it("bulk insert with missing=default gives each omitted column its default, not NULL", function()
      local code, doc = call("POST", "rest_more", { query = { { "columns", "code,qty,note" }, { "select", "code,qty,note" } },
        body = { { code = "f" }, { code = "g", qty = 5 }, { code = "h", note = cjson.null } },
        headers = { Prefer = "missing=default,return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { code = "f", qty = 42, note = "none" }, { code = "g", qty = 5, note = "none" },
        { code = "h", qty = 42, note = cjson.null } }, doc)
    end)

    it("bulk upsert with missing=default merges the given columns and defaults the rest", function()
      local code, doc = call("POST", "rest_more", { query = { { "on_conflict", "code" }, { "select", "code,qty,note" } },
        body = { { code = "a", note = "kept" }, { code = "i", qty = 2 } },
        headers = { Prefer = "missing=default,resolution=merge-duplicates,return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      table.sort(doc, function(x, y) return x.code < y.code end)
      assert.same({ { code = "a", qty = 42, note = "kept" }, { code = "i", qty = 2, note = "none" } }, doc)
    end)

    it("quoted identifiers with spaces in columns, select, filters and JSON bodies", function()
      local code, doc = call("POST", "rest_more", { query = { { "columns", '"column whitespace",code' },
        { "select", 'code,"column whitespace"' } }, body = { code = "j", ["column whitespace"] = "sp ace" },
        headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { code = "j", ["column whitespace"] = "sp ace" } }, doc)
      code, doc = R.get("rest_more", { { "select", 'ws:"column whitespace"' }, { '"column whitespace"', "eq.sp ace" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { ws = "sp ace" } }, doc)
    end)
  end)

  describe("Prefer: max-affected with handling=strict", function()
    local function strict(n) return { Prefer = "handling=strict, max-affected=" .. n } end

    it("refuses a PATCH or DELETE over the limit with PGRST124 and rolls it back", function()
      local code, _, _, raw = call("PATCH", "rest_more", { query = { { "id", "gt.0" } }, body = { note = "all" },
        headers = strict(2) })
      assert.equal(400, code)
      assert.same({ code = "PGRST124", message = "Query result exceeds max-affected preference constraint",
        details = "The query affects 3 rows", hint = cjson.null }, cjson.decode(raw))
      assert.equal("0", h.scalar("select count(*) from public.rest_more where note = 'all'"))
      code = call("DELETE", "rest_more", { query = { { "id", "gt.0" } }, headers = strict(0) })
      assert.equal(400, code)
      assert.equal("3", h.scalar("select count(*) from public.rest_more"))
    end)

    it("commits within the limit and says so in Preference-Applied", function()
      local code, _, hdrs = call("DELETE", "rest_more", { query = { { "id", "lt.3" } }, headers = strict(2) })
      assert.equal(204, code)
      assert.equal("handling=strict, max-affected=2", hdrs["preference-applied"])
      assert.equal("1", h.scalar("select count(*) from public.rest_more"))
    end)

    it("is ignored under handling=lenient", function()
      local code, _, hdrs = call("DELETE", "rest_more", { query = { { "id", "gt.0" } },
        headers = { Prefer = "handling=lenient, max-affected=1" } })
      assert.equal(204, code)
      assert.equal("handling=lenient", hdrs["preference-applied"])
    end)

    it("counts a setof function's rows; a void one is PGRST128", function()
      local code, _, _, raw = call("POST", "rpc/rest_more_take", { body = { n = 3 }, headers = strict(2) })
      assert.equal(400, code)
      assert.same({ code = "PGRST124", message = "Query result exceeds max-affected preference constraint",
        details = "The query affects 3 rows", hint = cjson.null }, cjson.decode(raw))
      assert.equal("3", h.scalar("select count(*) from public.rest_more"))
      local doc
      code, doc = call("POST", "rpc/rest_more_take", { body = { n = 2 }, headers = strict(2), query = { { "select", "code" } } })
      assert.equal(200, code)
      assert.same({ { code = "a" }, { code = "b" } }, doc)
      code, _, _, raw = call("POST", "rpc/rest_more_void", { body = {}, headers = strict(20) })
      assert.equal(400, code)
      assert.same({ code = "PGRST128", details = cjson.null, hint = cjson.null,
        message = "Function must return SETOF or TABLE when max-affected preference is used with handling=strict" },
        cjson.decode(raw))
      assert.equal("1", h.scalar("select count(*) from public.rest_more"))
    end)
  end)

  describe("computed columns", function()
    it("selects, filters and orders by a function of the row as by a column", function()
      local code, doc = R.get("rest_more", { { "select", "code,label:rest_more_label" },
        { "rest_more_label", "like.*:*" }, { "order", "rest_more_label.desc" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { code = "c", label = "c:3" }, { code = "b", label = "b:-" }, { code = "a", label = "a:1" } }, doc)
      code, doc = R.get("rest_more", { { "select", "rest_more_label" }, { "id", "eq.1" } })
      assert.same({ { rest_more_label = "a:1" } }, doc)
    end)
  end)

  describe("Prefer: count=planned and count=estimated", function()
    -- The planner's estimate, read as PostgREST reads it ("Plan Rows").
    local function explain(where)
      local plan = cjson.decode(h.scalar("explain (format json) select 1 from public.rest_plan" .. where))
      return math.tointeger(plan[1].Plan["Plan Rows"])
    end

    it("planned answers the planner's estimate in Content-Range", function()
      local code, _, hdrs = R.get("rest_plan", { { "select", "id" }, { "id", "lt.100" }, { "limit", "5" } },
        { Prefer = "count=planned" })
      assert.equal(206, code)
      assert.equal("0-4/" .. explain(" where id < 100"), hdrs["content-range"])
      assert.equal("count=planned", hdrs["preference-applied"])
    end)

    it("estimated counts exactly up to max_rows, past it takes the larger of that and the planner's", function()
      local _, _, hdrs = R.get("rest_plan", { { "select", "id" }, { "id", "lt.100" }, { "limit", "5" } },
        { Prefer = "count=estimated" })
      assert.equal("0-4/99", hdrs["content-range"])
      _, _, hdrs = R.get("rest_plan", { { "select", "id" }, { "limit", "5" } }, { Prefer = "count=estimated" })
      assert.equal("0-4/" .. math.max(1001, explain("")), hdrs["content-range"])
    end)
  end)

  describe("Prefer: timezone=", function()
    it("answers timestamps in the zone asked for, and says so", function()
      local code, doc, hdrs = R.get("rest_tz", nil, { Prefer = "handling=strict, timezone=America/Los_Angeles" })
      assert.equal(200, code)
      assert.same({ { t = "2023-10-18T05:37:59.611-07:00" } }, doc)
      assert.equal("handling=strict, timezone=America/Los_Angeles", hdrs["preference-applied"])
      code, doc, hdrs = R.get("rest_tz", nil, { Prefer = "timezone=+05:30" }) -- POSIX: west of Greenwich
      assert.same({ { t = "2023-10-18T07:07:59.611-05:30" } }, doc)
      assert.equal("timezone=+05:30", hdrs["preference-applied"])
    end)

    it("refuses a zone PostgreSQL does not know with its 22023, whatever the handling", function()
      for _, prefer in ipairs({ "timezone=Invalid/Timezone", "handling=lenient, timezone=Invalid/Timezone" }) do
        local code, _, _, raw = R.get("rest_tz", nil, { Prefer = prefer })
        assert.equal(400, code)
        assert.same({ code = "22023", details = cjson.null, hint = cjson.null,
          message = 'invalid value for parameter "TimeZone": "Invalid/Timezone"' }, cjson.decode(raw))
      end
    end)

    it("applies to a write's representation too", function()
      local code, doc = call("PATCH", "rest_tz", { query = { { "t", "lt.2024-01-01" } }, body = { t = "2023-10-18T12:37:59.611Z" },
        headers = { Prefer = "return=representation, timezone=Asia/Tokyo" } })
      assert.equal(200, code)
      assert.same({ { t = "2023-10-18T21:37:59.611+09:00" } }, doc)
    end)
  end)

  describe("error bodies as PostgREST's", function()
    it("an unknown column on a write is PGRST204, on a read 42703", function()
      local code, _, _, raw = call("POST", "rest_more", { body = { nope = 1 } })
      assert.equal(400, code)
      assert.same({ code = "PGRST204", message = "Could not find the 'nope' column of 'rest_more' in the schema cache",
        details = cjson.null, hint = cjson.null }, cjson.decode(raw))
      code, _, _, raw = R.get("rest_more", { { "select", "nope" } })
      assert.equal(400, code)
      assert.same({ code = "42703", message = "column rest_more.nope does not exist", details = cjson.null, hint = cjson.null },
        cjson.decode(raw))
    end)

    it("an unknown table is PGRST205 with the 'Perhaps you meant' hint when one is close", function()
      local code, _, _, raw = R.get("rest_mor")
      assert.equal(404, code)
      assert.same({ code = "PGRST205", message = "Could not find the table 'public.rest_mor' in the schema cache",
        details = cjson.null, hint = "Perhaps you meant the table 'public.rest_more'" }, cjson.decode(raw))
      code, _, _, raw = R.get("zzzzzzzzzzzz")
      assert.equal(404, code)
      assert.same({ code = "PGRST205", message = "Could not find the table 'public.zzzzzzzzzzzz' in the schema cache",
        details = cjson.null, hint = cjson.null }, cjson.decode(raw))
    end)

    it("aggregates are off by default (conf rest_aggregates): PGRST123", function()
      local code, _, _, raw = R.get("rest_more", { { "select", "qty.sum()" } })
      assert.equal(400, code)
      assert.same({ code = "PGRST123", message = "Use of aggregate functions is not allowed", details = cjson.null,
        hint = cjson.null }, cjson.decode(raw))
      code, _, _, raw = R.get("rest_spec_items", { { "select", "id,rest_spec_children(id.sum())" } })
      assert.equal(400, code)
      assert.equal("PGRST123", cjson.decode(raw).code)
    end)

    it("explain plans are off by default (conf rest_plans): 406 PGRST107 for reads, writes and calls", function()
      local code, _, _, raw = R.get("rest_more", nil, { Accept = "application/vnd.pgrst.plan+json" })
      assert.equal(406, code)
      assert.same({ code = "PGRST107", message = "None of these media types are available: application/vnd.pgrst.plan+json",
        details = cjson.null, hint = cjson.null }, cjson.decode(raw))
      local plan = { Accept = "application/vnd.pgrst.plan" }
      for _, c in ipairs({ { "DELETE", "rest_more", { query = { { "id", "in.(1,2,3)" } }, headers = plan } },
          { "POST", "rest_more", { body = { id = 100 }, headers = plan } },
          { "GET", "rpc/rest_spec_items_over", { query = { { "min_qty", "1" } }, headers = plan } } }) do
        code, _, _, raw = call(c[1], c[2], c[3])
        assert.equal(406, code, raw)
        assert.equal("PGRST107", cjson.decode(raw).code)
      end
    end)

    it("writes '/' unescaped, as PostgREST's JSON does", function()
      local _, _, _, raw = call("POST", "rpc/rest_more_nope", { body = { a = 1 } })
      assert.truthy(raw:find("single unnamed json/jsonb parameter", 1, true), raw)
    end)
  end)
end)
