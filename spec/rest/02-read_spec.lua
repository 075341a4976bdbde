-- /rest/v1 reads end to end: the columns of select= (aliases, JSON paths,
-- casts, embeds) and the single object of Accept: vnd.pgrst.object+json.
local cjson = require("cjson")
local R = require("fixtures.rest")

local get, is_error, reset, SINGLE = R.get, R.is_error, R.reset, R.SINGLE

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("select", function()
    before_each(reset)

    it("answers every column with * and by default, with the SQL types as JSON", function()
      local code, doc, hdrs = get("rest_spec_items", { { "id", "eq.1" } })
      assert.equal(200, code)
      assert.matches("^application/json", hdrs["content-type"])
      assert.equal(1, #doc)
      local r = doc[1]
      assert.equal(1, r.id)
      assert.equal("apple", r.name)
      assert.equal(3, r.qty)
      assert.same({ "fruit", "red" }, r.tags)
      assert.same({ color = "red", size = { w = 2 } }, r.meta)
      assert.is_string(r.created_at)
      local _, star = get("rest_spec_items", { { "select", "*" }, { "id", "eq.1" } })
      assert.same(doc, star)
    end)

    it("answers the columns asked for, aliases, JSON paths and casts", function()
      local code, doc = get("rest_spec_items", { { "select", "id,label:name,meta->color,meta->>color,w:meta->size->>w,qty::text" },
        { "id", "in.(1,3)" }, { "order", "id" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({
        { id = 1, label = "apple", color = "red", w = "2", qty = "3" },
        { id = 3, label = 'carrot, "orange" (v.)', color = cjson.null, w = cjson.null, qty = "7" },
      }, doc)
      local _, raw = select(3, get("rest_spec_items", { { "select", "meta->size" }, { "id", "eq.1" } }))
      assert.same({ { size = { w = 2 } } }, cjson.decode(raw))
    end)

    it("embeds related tables (spec/rest/11-embed_spec.lua and 24-embed_more_spec.lua)", function()
      local code, doc = get("rest_spec_items", { { "select", "id,rest_spec_children(*)" }, { "id", "eq.1" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { id = 1, rest_spec_children = {} } }, doc)
    end)
  end)

  describe("single object (Accept: application/vnd.pgrst.object+json)", function()
    setup(reset)

    it("answers the one row as an object", function()
      local code, doc = get("rest_spec_items", { { "select", "id,name" }, { "id", "eq.4" } }, { Accept = SINGLE })
      assert.equal(200, code)
      assert.same({ id = 4, name = "date" }, doc)
    end)

    it("answers 406 PGRST116 for no row and for several rows", function()
      local code, doc = get("rest_spec_items", { { "id", "eq.999" } }, { Accept = SINGLE })
      assert.equal(406, code)
      is_error(406, "PGRST116", doc)
      assert.equal("Cannot coerce the result to a single JSON object", doc.message)
      assert.equal("The result contains 0 rows", doc.details)
      code, doc = get("rest_spec_items", { { "qty", "gte.3" } }, { Accept = SINGLE })
      assert.equal(406, code)
      assert.equal("PGRST116", doc.code)
      assert.equal("The result contains 3 rows", doc.details)
    end)
  end)
end)
