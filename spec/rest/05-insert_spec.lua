-- /rest/v1 POST end to end: inserts, columns=, return= and Prefer, upserts
-- (on_conflict, merge- and ignore-duplicates), refusals, all-or-nothing.
local cjson = require("cjson")
local R = require("fixtures.rest")

local call, count_rows, is_error, reset, SINGLE = R.call, R.count_rows, R.is_error, R.reset, R.SINGLE

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("POST", function()
    before_each(reset)

    it("inserts one object; return=representation answers it with 201 and Preference-Applied", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { body = { name = "fig", qty = 4, tags = { "a,b", 'c"d' }, meta = { k = { 1, 2 } } },
        headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.equal("return=representation", hdrs["preference-applied"])
      assert.equal(1, #doc)
      assert.equal("fig", doc[1].name)
      assert.same({ "a,b", 'c"d' }, doc[1].tags)
      assert.same({ k = { 1, 2 } }, doc[1].meta)
      assert.equal(6, doc[1].id)
      assert.equal(1, count_rows("name = 'fig' and qty = 4"))
    end)

    it("inserts an array, answering the columns of select=", function()
      local code, doc = call("POST", "rest_spec_items", { query = { { "select", "name,qty" } },
        body = { { name = "fig", qty = 1 }, { name = "grape", qty = 2 } }, headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { name = "fig", qty = 1 }, { name = "grape", qty = 2 } }, doc)
      assert.equal(7, count_rows())
    end)

    it("inserts only the columns of columns=, plain or quoted as postgrest-js sends them", function()
      local code = call("POST", "rest_spec_items", { query = { { "columns", "name,qty" } },
        body = { { name = "fig", qty = 1, body = "ignored" }, { name = "grape", qty = 2, body = "ignored" } } })
      assert.equal(201, code)
      assert.equal(2, count_rows("name in ('fig', 'grape') and body is null"))
      code = call("POST", "rest_spec_items", { query = { { "columns", '"name","body"' } },
        body = { { name = "kiwi", qty = 9, body = "kept" } } })
      assert.equal(201, code)
      assert.equal(1, count_rows("name = 'kiwi' and qty is null and body = 'kept'"))
    end)

    it("return=minimal and no preference answer 201 without a body", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { body = { name = "fig" }, headers = { Prefer = "return=minimal" } })
      assert.equal(201, code)
      assert.is_nil(doc)
      assert.equal("return=minimal", hdrs["preference-applied"])
      code, doc = call("POST", "rest_spec_items", { body = { name = "grape" } })
      assert.equal(201, code)
      assert.is_nil(doc)
      assert.equal(2, count_rows("name in ('fig', 'grape')"))
    end)

    it("answers a single object with Accept: vnd.pgrst.object+json", function()
      local code, doc = call("POST", "rest_spec_items", { query = { { "select", "name" } }, body = { name = "fig" },
        headers = { Prefer = "return=representation", Accept = SINGLE } })
      assert.equal(201, code)
      assert.same({ name = "fig" }, doc)
    end)

    it("upserts with on_conflict and resolution=merge-duplicates", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" }, { "select", "id,name,qty" } },
        body = { { name = "apple", qty = 30 }, { name = "fig", qty = 1 } },
        headers = { Prefer = "return=representation,resolution=merge-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { id = 1, name = "apple", qty = 30 }, { id = doc[2].id, name = "fig", qty = 1 } }, doc)
      assert.matches("resolution=merge%-duplicates", hdrs["preference-applied"])
      assert.equal(1, count_rows("id = 1 and qty = 30 and body = 'the quick red apple'"), "only the sent columns change")
      assert.equal(6, count_rows())
    end)

    it("upserts on the primary key without on_conflict", function()
      local code = call("POST", "rest_spec_items", { body = { id = 2, name = "banana", qty = 5 },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(201, code)
      assert.equal(1, count_rows("id = 2 and qty = 5"))
      assert.equal(5, count_rows())
    end)

    it("skips existing rows with resolution=ignore-duplicates", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" }, { "select", "name,qty" } },
        body = { { name = "apple", qty = 99 }, { name = "grape", qty = 2 } },
        headers = { Prefer = "return=representation, resolution=ignore-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { name = "grape", qty = 2 } }, doc)
      assert.matches("resolution=ignore%-duplicates", hdrs["preference-applied"])
      assert.equal(1, count_rows("name = 'apple' and qty = 3"))
    end)

    it("refuses an unknown column in the body (400 PGRST204) and bad JSON", function()
      local code, doc = call("POST", "rest_spec_items", { body = { name = "fig", nope = 1 } })
      assert.equal(400, code)
      is_error(400, "PGRST204", doc)
      assert.matches("'nope'", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = "[1, 2]" })
      assert.equal(400, code)
      assert.equal("PGRST102", doc.code)
      code, doc = call("POST", "rest_spec_items", { query = { { "on_conflict", "nope" } }, body = { name = "fig" } })
      assert.equal(400, code)
      assert.equal("42703", doc.code)
      assert.equal(5, count_rows())
    end)

    it("writes nothing when one row of an array fails (one transaction)", function()
      local code, doc = call("POST", "rest_spec_items", { body = { { name = "fig", qty = 1 }, { name = "grape", qty = -1 } } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(0, count_rows("name in ('fig', 'grape')"))
      code, doc = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" } },
        body = { { name = "apple", qty = 50 }, { name = "grape" }, { name = "banana", qty = -5 } },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(1, count_rows("name = 'apple' and qty = 3"), "the merged row is rolled back too")
      assert.equal(5, count_rows())
    end)
  end)
end)
