-- /rest/v1/rpc end to end: native and SQL functions, table and scalar,
-- select/filters/order on results, GET for stable ones, overload errors.
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local get, call, count_rows, is_error, reset, SINGLE = R.get, R.call, R.count_rows, R.is_error, R.reset, R.SINGLE

describe("REST API #server", function()
  local brokers, org

  setup(function()
    -- Broker fixtures for the RPC specs: an organization, three brokers,
    -- a global value and two organization values, there before the server
    -- starts (its native engine loads them then).
    org = h.uuid()
    brokers = { h.uuid(), h.uuid(), h.uuid() }
    R.setup({ sql = ([[
      insert into organizations(id, name, slug) values (%s, 'rest spec', %s);
      insert into data_broker(id, name, default_value) values (%s, 'rest b1', 'd1'), (%s, 'rest b2', null), (%s, 'rest b3', null);
      insert into broker_values(broker_id, is_global, value) values (%s, true, '"global one"');
      insert into broker_values(broker_id, organization_id, value) values (%s, %s, '{"o":1}'), (%s, %s, '2');
    ]]):format(h.lit(org), h.lit("rest-" .. org), h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]),
      h.lit(brokers[1]), h.lit(brokers[1]), h.lit(org), h.lit(brokers[2]), h.lit(org)) })
  end)

  teardown(function()
    R.teardown()
    h.exec(([[
      delete from broker_values where broker_id in (%s, %s, %s);
      delete from data_broker where id in (%s, %s, %s);
      delete from organizations where id = %s;
    ]]):format(h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]),
      h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]), h.lit(org)))
  end)

  describe("RPC", function()
    setup(reset)

    local function context()
      return { p_broker_ids = brokers, p_organization_id = org }
    end

    it("answers a table function with rows keyed by the SQL column names, equal to SQL", function()
      local code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context() })
      assert.equal(200, code, cjson.encode(doc))
      local byid = {}
      for _, r in ipairs(doc) do byid[r.broker_id] = r end
      assert.equal(2, #doc)
      assert.same({ broker_id = brokers[1], value = { o = 1 }, scope_level = "organization", scope_id = org }, byid[brokers[1]])
      assert.same({ broker_id = brokers[2], value = 2, scope_level = "organization", scope_id = org }, byid[brokers[2]])
      local rows = h.query(("select broker_id, scope_level from get_broker_values_for_context(array[%s, %s, %s]::uuid[], p_organization_id => %s)")
        :format(h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]), h.lit(org)))
      assert.equal(#rows, #doc)
      for _, r in ipairs(rows) do assert.equal(r.scope_level, byid[r.broker_id].scope_level) end
    end)

    it("applies select, filters, order and limit to table-function results", function()
      local code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "select", "id:broker_id,scope_level,o:value->o" }, { "order", "broker_id.desc" } } })
      assert.equal(200, code, cjson.encode(doc))
      local expect = {
        { id = brokers[1], scope_level = "organization", o = 1 },
        { id = brokers[2], scope_level = "organization", o = cjson.null },
      }
      if brokers[1] < brokers[2] then expect = { expect[2], expect[1] } end
      assert.same(expect, doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "broker_id", "eq." .. brokers[2] }, { "select", "broker_id" } } })
      assert.equal(200, code)
      assert.same({ { broker_id = brokers[2] } }, doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "select", "broker_id" }, { "order", "broker_id" }, { "limit", "1" } } })
      assert.equal(200, code)
      assert.equal(1, #doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "nope", "eq.1" } } })
      assert.equal(400, code)
      assert.equal("42703", doc.code)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(), query = { { "limit", "many" } } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("limit must be a non%-negative integer", doc.message)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(), query = { { "scope_level", "xx.1" } } })
      assert.equal(400, code)
      assert.equal('"failed to parse filter (xx.1)" (line 1, column 1)', doc.message) -- PostgREST's words
      -- A function returning rows of a table: its columns, filtered and ordered.
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 3 },
        query = { { "select", "name,qty" }, { "order", "qty.desc" }, { "name", "neq.date" } } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { name = 'carrot, "orange" (v.)', qty = 7 }, { name = "apple", qty = 3 } }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 3 },
        query = { { "select", "name" }, { "or", "(qty.eq.3,qty.eq.10)" }, { "order", "id" } } })
      assert.same({ { name = "apple" }, { name = "date" } }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 10 }, query = { { "select", "name" } },
        headers = { Accept = SINGLE } })
      assert.equal(200, code)
      assert.same({ name = "date" }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 0 }, headers = { Accept = SINGLE } })
      assert.equal(406, code)
      assert.equal("PGRST116", doc.code)
    end)

    it("answers a scalar function with the JSON scalar", function()
      local code, doc = call("POST", "rpc/get_missing_broker_ids", { body = context() })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ brokers[3] }, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 2, b = 5 } })
      assert.equal(200, code)
      assert.equal(7, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 2 } })
      assert.equal(3, doc, "a default argument may be left out")
    end)

    it("GET calls a stable function with query arguments", function()
      local code, doc = get("rpc/get_missing_broker_ids", { { "p_broker_ids", "{" .. table.concat(brokers, ",") .. "}" },
        { "p_organization_id", org } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ brokers[3] }, doc)
      code, doc = get("rpc/rest_spec_add", { { "a", "40" }, { "b", "2" } })
      assert.equal(200, code)
      assert.equal(42, doc)
      code, doc = get("rpc/get_broker_values_for_context", { { "p_broker_ids", "{" .. table.concat(brokers, ",") .. "}" },
        { "p_organization_id", org }, { "scope_level", "eq.organization" }, { "broker_id", "eq." .. brokers[1] },
        { "select", "broker_id,value" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { broker_id = brokers[1], value = { o = 1 } } }, doc, "GET separates arguments from filters")
      code, doc = get("rpc/rest_spec_items_over", { { "min_qty", "7" }, { "select", "id" }, { "order", "id" } })
      assert.equal(200, code)
      assert.same({ { id = 3 }, { id = 4 } }, doc)
    end)

    it("runs a GET of a volatile function read-only, as PostgREST: its write is 405 25006; POST runs it", function()
      local code, doc = get("rpc/rest_spec_bump", { { "p_name", "apple" } })
      assert.equal(405, code)
      assert.same({ code = "25006", message = "cannot execute UPDATE in a read-only transaction",
        details = cjson.null, hint = cjson.null }, doc)
      assert.equal(1, count_rows("name = 'apple' and qty = 3"), "nothing ran")
      code, doc = call("POST", "rpc/rest_spec_bump", { body = { p_name = "apple" } })
      assert.equal(200, code)
      assert.equal(4, doc)
      reset()
    end)

    it("answers 404 PGRST202 for an unknown function or argument, 300 PGRST203 for an ambiguous overload", function()
      local code, doc = call("POST", "rpc/no_such_function", { body = {} })
      assert.equal(404, code)
      is_error(404, "PGRST202", doc)
      assert.equal("Could not find the function public.no_such_function without parameters in the schema cache", doc.message)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 1, zzz = 2 } })
      assert.equal(404, code)
      assert.equal("Could not find the function public.rest_spec_add(a, zzz) in the schema cache", doc.message)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { b = 1 } })
      assert.equal(404, code, "a required argument is missing")
      assert.equal("PGRST202", doc.code)
      code, doc = call("POST", "rpc/rest_spec_pick", { body = { x = 1 } })
      assert.equal(300, code)
      is_error(300, "PGRST203", doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = "[1]" })
      assert.equal(400, code)
      assert.equal("PGRST102", doc.code)
    end)
  end)
end)
