-- /rest/v1 PATCH and DELETE end to end: the filtered rows, return=representation,
-- constraints, and no write without a filter.
local cjson = require("cjson")
local R = require("fixtures.rest")

local call, count_rows, is_error, reset = R.call, R.count_rows, R.is_error, R.reset

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("PATCH and DELETE", function()
    before_each(reset)

    it("PATCH changes the filtered rows; return=representation answers them", function()
      local code, doc, hdrs = call("PATCH", "rest_spec_items", { query = { { "name", "eq.apple" }, { "select", "id,qty" } },
        body = { qty = 4 }, headers = { Prefer = "return=representation" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { id = 1, qty = 4 } }, doc)
      assert.equal("return=representation", hdrs["preference-applied"])
      code, doc = call("PATCH", "rest_spec_items", { query = { { "or", "(qty.is.null,qty.eq.0)" } }, body = { body = "patched" } })
      assert.equal(204, code)
      assert.is_nil(doc)
      assert.equal(2, count_rows("body = 'patched'"))
      code, doc = call("PATCH", "rest_spec_items", { query = { { "id", "eq.999" } }, body = { qty = 1 },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({}, doc)
    end)

    it("PATCH that breaks a constraint changes nothing", function()
      local code, doc = call("PATCH", "rest_spec_items", { query = { { "qty", "not.is.null" } }, body = { qty = -1 } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(0, count_rows("qty < 0"))
    end)

    it("DELETE removes the filtered rows; return=representation answers them", function()
      local code, doc = call("DELETE", "rest_spec_items", { query = { { "qty", "gte.7" }, { "select", "name" } },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({ { name = 'carrot, "orange" (v.)' }, { name = "date" } }, doc)
      code, doc = call("DELETE", "rest_spec_items", { query = { { "name", "eq.apple" } } })
      assert.equal(204, code)
      assert.is_nil(doc)
      code = call("DELETE", "rest_spec_items", { query = { { "not.or", "(qty.is.null,qty.gt.0)" } } })
      assert.equal(204, code)
      assert.equal(1, count_rows())
      assert.equal(1, count_rows("name = 'banana'"))
    end)

    it("refuses PATCH and DELETE without a filter (400 21000), changing nothing", function()
      local code, doc = call("PATCH", "rest_spec_items", { body = { qty = 1 } })
      assert.equal(400, code)
      is_error(400, "21000", doc)
      assert.matches("UPDATE requires a WHERE clause", doc.message)
      code, doc = call("DELETE", "rest_spec_items")
      assert.equal(400, code)
      is_error(400, "21000", doc)
      assert.matches("DELETE requires a WHERE clause", doc.message)
      code, doc = call("DELETE", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" }, { "limit", "1" } } })
      assert.equal(400, code, "select, order and limit are not filters")
      assert.equal("21000", doc.code)
      assert.equal(5, count_rows())
      assert.equal(0, count_rows("qty = 1"))
    end)
  end)
end)
