-- /rest/v1 order, limit, offset, Range, counts (Content-Range, 206, 416,
-- HEAD) and the max_rows cap on every read.
local srv = require("server_helpers")
local R = require("fixtures.rest")

local get, call, ids, is_error, reset = R.get, R.call, R.ids, R.is_error, R.reset

describe("REST API #server", function()
  local server, SERVICE

  setup(function()
    server = R.setup()
    SERVICE = R.SERVICE
  end)

  teardown(R.teardown)

  describe("order, limit, offset, Range, counts", function()
    setup(reset)

    it("orders by several columns with directions and nulls placement", function()
      assert.same({ 4, 3, 1, 5, 2 }, ids({ { "order", "qty.desc.nullslast,name" } }))
      assert.same({ 2, 5, 1, 3, 4 }, ids({ { "order", "qty.asc.nullsfirst" } }))
      assert.same({ 2, 4, 3, 1, 5 }, ids({ { "order", "qty.desc" } }))
      assert.same({ 5, 4, 1, 2, 3 }, ids({ { "order", "meta->>color.asc,id.desc" } }))
    end)

    it("applies the first of repeated order= and select= and the last limit=, as PostgREST; parses every order=", function()
      -- PostgREST folds its order parameters from the right (the first one
      -- set last), looks select= up as the first, keeps limits in a map.
      assert.same({ 2, 4, 3, 1, 5 }, ids({ { "order", "qty.desc" }, { "order", "id" } }))
      assert.same({ 2, 4 }, ids({ { "order", "qty.desc" }, { "limit", "1" }, { "limit", "2" } }))
      local code, doc = get("rest_spec_items", { { "select", "id" }, { "select", "name" }, { "id", "eq.1" } })
      assert.equal(200, code)
      assert.same({ { id = 1 } }, doc)
      code, doc = get("rest_spec_items", { { "order", "id" }, { "order", "id.sideways" } })
      assert.equal(400, code)
      assert.same({ code = "PGRST100", message = '"failed to parse order (id.sideways)" (line 1, column 4)',
        details = 'unexpected "s" expecting "asc", "desc", "nullsfirst" or "nullslast"', hint = require("cjson").null }, doc)
    end)

    it("pages with limit and offset", function()
      assert.same({ 2, 3 }, ids({ { "limit", "2" }, { "offset", "1" } }))
      assert.same({ 5 }, ids({ { "offset", "4" } }))
      assert.same({}, ids({ { "limit", "0" } }))
      local code, doc = get("rest_spec_items", { { "limit", "-1" } })
      assert.equal(400, code)
      is_error(400, "PGRST100", doc)
      assert.matches("limit", doc.message)
    end)

    it("pages with the Range header", function()
      local code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" } }, { Range = "1-2" })
      assert.equal(200, code)
      assert.same({ { id = 2 }, { id = 3 } }, doc)
      assert.equal("1-2/*", hdrs["content-range"])
      code, doc = get("rest_spec_items", { { "select", "id" }, { "order", "id" } }, { Range = "3-" })
      assert.same({ { id = 4 }, { id = 5 } }, doc)
    end)

    it("counts with Prefer: count=exact: 200 for all rows, 206 for a part, 416 past the end", function()
      local code, doc, hdrs = get("rest_spec_items", { { "select", "id" } }, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal(5, #doc)
      assert.equal("0-4/5", hdrs["content-range"])
      assert.equal("count=exact", hdrs["preference-applied"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" }, { "limit", "2" } }, { Prefer = "count=exact" })
      assert.equal(206, code)
      assert.same({ { id = 1 }, { id = 2 } }, doc)
      assert.equal("0-1/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" } },
        { Prefer = "count=exact", Range = "2-3" })
      assert.equal(206, code)
      assert.equal("2-3/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "qty", "gt.3" } }, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal("0-1/2", hdrs["content-range"], "the count follows the filters")
      code, doc, hdrs = get("rest_spec_items", { { "offset", "5" } }, { Prefer = "count=exact" })
      assert.equal(206, code, "an offset at the end is an empty page")
      assert.same({}, doc)
      assert.equal("*/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "offset", "6" } }, { Prefer = "count=exact" })
      assert.equal(416, code)
      is_error(416, "PGRST103", doc)
      assert.equal("An offset of 6 was requested, but there are only 5 rows.", doc.details)
      assert.equal("*/5", hdrs["content-range"])
    end)

    it("answers HEAD with the count and no body", function()
      -- Raw HTTP: a HEAD answer announces a Content-Length it does not send.
      local c = srv.connect(server.port)
      assert(c:send("HEAD /rest/v1/rest_spec_items?qty=gte.3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " .. SERVICE
        .. "\r\nPrefer: count=exact\r\nConnection: close\r\n\r\n"))
      local status = tonumber(assert(c:receive("*l")):match("^HTTP/1%.1 (%d+)"))
      local hdrs = {}
      while true do
        local line = assert(c:receive("*l"))
        if line == "" then break end
        local k, v = line:match("^([^:]+):%s*(.*)$")
        hdrs[k:lower()] = v
      end
      local rest, _, partial = c:receive("*a")
      rest = rest or partial
      c:close()
      assert.equal(200, status)
      assert.equal("0-2/3", hdrs["content-range"])
      assert.equal("", rest)
    end)

    it("without a count, Content-Range names the page only", function()
      local code, _, hdrs = get("rest_spec_items", { { "limit", "2" } })
      assert.equal(200, code)
      assert.equal("0-1/*", hdrs["content-range"])
    end)
  end)
end)

describe("REST API with max_rows #server", function()
  local s

  setup(function()
    s = R.setup({ env = { STRATA_MAX_ROWS = "5" },
      sql = "insert into public.rest_spec_items(name, qty) select 'extra ' || g, g from generate_series(1, 4) g" })
  end)

  teardown(R.teardown)

  it("caps every read at max_rows, whatever limit or Range asks", function()
    local code, doc, hdrs = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" } },
      headers = { Prefer = "count=exact" } }, s)
    assert.equal(206, code)
    assert.same({ { id = 1 }, { id = 2 }, { id = 3 }, { id = 4 }, { id = 5 } }, doc)
    assert.equal("0-4/9", hdrs["content-range"])
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "limit", "100" } } }, s)
    assert.equal(5, #doc)
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" } },
      headers = { Range = "2-100" } }, s)
    assert.same({ { id = 3 }, { id = 4 }, { id = 5 }, { id = 6 }, { id = 7 } }, doc)
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "limit", "2" } } }, s)
    assert.equal(2, #doc, "a smaller limit still applies")
    code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 0 }, query = { { "select", "id" } } }, s)
    assert.equal(200, code)
    assert.equal(5, #doc, "table functions are capped too")
  end)
end)
