-- Aggregates (PostgREST 12, test/spec/Feature/Query/AggregateFunctionsSpec.hs):
-- select=col.sum(), avg(), min(), max(), count() with the other selected
-- columns as the grouping, aliases and casts; behind conf rest_aggregates
-- (env STRATA_REST_AGGREGATES, default off: 400 PGRST123); the row policies
-- filter the rows before they are aggregated.  And explain plans
-- (PlanSpec.hs): Accept: application/vnd.pgrst.plan, behind conf rest_plans.
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local A, B = h.uuid(), h.uuid()

local ROWS = ([[
truncate public.rest_spec_owned restart identity;
insert into public.rest_spec_owned(owner, title, status) values
  (%s, 'a1', 'draft'), (%s, 'a2', 'draft'), (%s, 'a3', 'done'), (%s, 'b1', 'draft');
insert into public.rest_spec_children(item_id, label) values (1, 'a'), (1, 'a'), (1, 'b'), (4, 'c');
]]):format(h.lit(A), h.lit(A), h.lit(A), h.lit(B))

describe("REST aggregates #server", function()
  local alice

  setup(function()
    R.setup({ sql = ROWS, env = { STRATA_REST_AGGREGATES = "true", STRATA_REST_PLANS = "true" } })
    alice = R.mint("--role authenticated --sub " .. A)
  end)
  teardown(R.teardown)

  local function get(path, query, tok)
    local code, doc, _, raw = R.call("GET", path, { query = query, token = tok })
    assert.equal(200, code, raw)
    return doc
  end

  it("sums, averages, takes min and max, counts, over the whole table", function()
    assert.same({ { sum = 20 } }, get("rest_spec_items", { { "select", "qty.sum()" } }))
    assert.same({ { count = 5 } }, get("rest_spec_items", { { "select", "count()" } }))
    assert.same({ { min = 0, max = 10 } }, get("rest_spec_items", { { "select", "qty.min(),qty.max()" } }))
    assert.same({ { avg = 5 } }, get("rest_spec_items", { { "select", "qty.avg()::int" } }))
    assert.same({ { count = 4 } }, get("rest_spec_items", { { "select", "qty.count()" } })) -- NULL not counted
  end)

  it("takes aliases and casts, and filters before aggregating", function()
    assert.same({ { total = 17, n = 2 } }, get("rest_spec_items", { { "select", "total:qty.sum()::int,n:count()" },
      { "qty", "gt.3" } }))
    assert.same({ { n = "5" } }, get("rest_spec_items", { { "select", "n:count()::text" } }))
  end)

  it("groups by the other selected columns", function()
    assert.same({ { status = "done", count = 1 }, { status = "draft", count = 3 } },
      get("rest_spec_owned", { { "select", "status,count()" }, { "order", "status" } }))
  end)

  it("aggregates only the rows the caller's policy lets them read", function()
    assert.same({ { status = "done", count = 1 }, { status = "draft", count = 2 } },
      get("rest_spec_owned", { { "select", "status,count()" }, { "order", "status" } }, alice))
    assert.same({ { count = 3 } }, get("rest_spec_owned", { { "select", "count()" } }, alice))
    assert.same({ { count = 0 } }, get("rest_spec_owned", { { "select", "count()" } }, R.mint("--role authenticated --sub "
      .. h.uuid())))
  end)

  it("aggregates inside an embed, grouped by the embed's other columns", function()
    assert.same({ { name = "apple", rest_spec_children = { { label = "a", count = 2 }, { label = "b", count = 1 } } },
      { name = "banana", rest_spec_children = {} } }, get("rest_spec_items", {
      { "select", "name,rest_spec_children(label,count())" }, { "id", "in.(1,2)" }, { "order", "id" },
      { "rest_spec_children.order", "label" } }))
    assert.same({ { name = "apple", rest_spec_children = { { first = "a", last = "b" } } } }, get("rest_spec_items", {
      { "select", "name,rest_spec_children(first:label.min(),last:label.max())" }, { "id", "eq.1" } }))
  end)

  it("refuses an unknown column inside an aggregate as a read does", function()
    local code, _, _, raw = R.call("GET", "rest_spec_items", { query = { { "select", "nope.sum()" } } })
    assert.equal(400, code)
    assert.equal("42703", cjson.decode(raw).code)
  end)

  describe("explain plans (conf rest_plans)", function()
    local function plan_of(accept, query)
      return R.call("GET", "rest_spec_items", { query = query or { { "id", "eq.1" } }, headers = { Accept = accept } })
    end

    it("answers the read's JSON plan with PostgREST's Content-Type, without running it", function()
      local code, _, hdrs, raw = plan_of("application/vnd.pgrst.plan+json")
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8', hdrs["content-type"])
      local plan = cjson.decode(raw)
      assert.is_table(plan[1].Plan)
      assert.is_nil(plan[1]["Execution Time"])
    end)

    it("takes options and the for= media type", function()
      local code, _, hdrs, raw = plan_of('application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object"; options=analyze|verbose')
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object+json"; options=analyze|verbose; '
        .. "charset=utf-8", hdrs["content-type"])
      assert.is_number(cjson.decode(raw)[1]["Execution Time"])
    end)

    -- PlanSpec.hs "writes plans" and "function plan": 200, the plan's
    -- Content-Type, a total cost; strata takes the statement back even
    -- under analyze (which runs it).
    local function cost(raw) return cjson.decode(raw)[1].Plan["Total Cost"] end

    it("answers the plans of inserts, upserts, updates, deletes and PUT, writing nothing", function()
      local json = { Accept = "application/vnd.pgrst.plan+json" }
      local analyze = { Accept = "application/vnd.pgrst.plan+json; options=analyze" }
      local before = h.scalar("select string_agg(id || ':' || name || ':' || coalesce(qty::text, ''), ',' order by id) "
        .. "from public.rest_spec_items")
      for _, c in ipairs({
        { "POST", { body = { name = "planned" }, headers = json } },
        { "POST", { body = { { id = 1, name = "apple" }, { name = "fig" } }, headers = { Accept = json.Accept,
          Prefer = "resolution=merge-duplicates" } } },
        { "PATCH", { query = { { "id", "eq.3" } }, body = { qty = 99 }, headers = analyze } },
        { "DELETE", { query = { { "id", "in.(1,2,3)" } }, headers = analyze } },
        { "DELETE", { query = { { "id", "eq.4" } }, headers = { Accept = 'application/vnd.pgrst.plan+json; '
          .. 'for="application/vnd.pgrst.object"; options=verbose', Prefer = "return=representation" } } },
      }) do
        local code, _, hdrs, raw = R.call(c[1], "rest_spec_items", c[2])
        assert.equal(200, code, raw)
        assert.matches('^application/vnd%.pgrst%.plan%+json; for="application/', hdrs["content-type"])
        assert.is_true(cost(raw) > 0, raw)
      end
      local code, _, hdrs, raw = R.call("PUT", "rest_spec_items", { query = { { "id", "eq.2" } },
        body = { { id = 2, name = "banana", qty = 1 } }, headers = analyze })
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+json; for="application/json"; options=analyze; charset=utf-8',
        hdrs["content-type"])
      assert.is_number(cjson.decode(raw)[1]["Execution Time"])
      assert.equal(before, h.scalar("select string_agg(id || ':' || name || ':' || coalesce(qty::text, ''), ',' "
        .. "order by id) from public.rest_spec_items"))
    end)

    it("answers the plans of function calls, POST and GET, in text too", function()
      local code, _, hdrs, raw = R.call("GET", "rpc/rest_spec_items_over", { query = { { "min_qty", "1" },
        { "id", "in.(1,2,3)" } }, headers = { Accept = "application/vnd.pgrst.plan+json" } })
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8', hdrs["content-type"])
      assert.is_true(cost(raw) > 0)
      code, _, hdrs, raw = R.call("POST", "rpc/rest_spec_add", { body = { a = 1 },
        headers = { Accept = "application/vnd.pgrst.plan" } })
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8', hdrs["content-type"])
      assert.truthy(raw:find("cost=", 1, true), raw)
      code, _, _, raw = R.call("POST", "rpc/rest_spec_bump", { body = { p_name = "apple" },
        headers = { Accept = "application/vnd.pgrst.plan+json; options=analyze" } })
      assert.equal(200, code, raw)
      assert.equal(1, R.count_rows("name = 'apple' and qty = 3"), "taken back")
    end)

    it("answers text plans", function()
      local code, _, hdrs, raw = plan_of("application/vnd.pgrst.plan+text")
      assert.equal(200, code, raw)
      assert.equal('application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8', hdrs["content-type"])
      assert.truthy(raw:find("rest_spec_items", 1, true), raw)
    end)
  end)
end)
