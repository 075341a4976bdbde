-- /rest/v1 errors end to end: PostgREST's codes and statuses for unknown
-- tables and columns, unparsable parameters, and SQLSTATEs.
local cjson = require("cjson")
local R = require("fixtures.rest")

local get, call, count_rows, is_error, reset = R.get, R.call, R.count_rows, R.is_error, R.reset

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("errors", function()
    setup(reset)

    it("404 PGRST205 for an unknown table", function()
      local code, doc = get("no_such_table")
      assert.equal(404, code)
      is_error(404, "PGRST205", doc)
      assert.equal("Could not find the table 'public.no_such_table' in the schema cache", doc.message)
    end)

    it("400 42703 for an unknown column in a filter, select, order", function()
      for _, q in ipairs({ { { "nope", "eq.1" } }, { { "select", "id,nope" } }, { { "order", "nope.desc" } },
          { { "or", "(id.eq.1,nope.eq.2)" } } }) do
        local code, doc = get("rest_spec_items", q)
        assert.equal(400, code)
        is_error(400, "42703", doc)
        assert.equal("column rest_spec_items.nope does not exist", doc.message)
      end
    end)

    -- PostgREST's (Parsec's) words, from its test suite (QuerySpec,
    -- AndOrParamsSpec, InsertSpec) and the doctests of
    -- src/PostgREST/ApiRequest/QueryParams.hs.
    local function pgrst100(code, doc, message, details)
      assert.equal(400, code)
      assert.same({ code = "PGRST100", message = message, details = details, hint = cjson.null }, doc)
    end

    it("400 PGRST100 for a filter without a known operator or value, worded as PostgREST", function()
      local cases = {
        { "0", '"failed to parse filter (0)" (line 1, column 1)', 'unexpected "0" expecting "not" or operator (eq, gt, ...)' },
        { "noop.0", '"failed to parse filter (noop.0)" (line 1, column 1)',
          'unexpected "o" expecting "not" or operator (eq, gt, ...)' },
        { "xx.1", '"failed to parse filter (xx.1)" (line 1, column 1)',
          'unexpected "x" expecting "not" or operator (eq, gt, ...)' },
        { "fts().value", '"failed to parse filter (fts().value)" (line 1, column 5)',
          'unexpected ")" expecting operator (eq, gt, ...)' },
        { "eq().value", '"failed to parse filter (eq().value)" (line 1, column 4)',
          'unexpected ")" expecting operator (eq, gt, ...)' },
        { "is().value", '"failed to parse filter (is().value)" (line 1, column 3)',
          'unexpected "(" expecting operator (eq, gt, ...)' },
        { "eq", '"failed to parse filter (eq)" (line 1, column 3)', "unexpected end of input expecting operator (eq, gt, ...)" },
        { "not.eq", '"failed to parse filter (not.eq)" (line 1, column 7)',
          "unexpected end of input expecting operator (eq, gt, ...)" },
        { "in.(1,2", '"failed to parse filter (in.(1,2)" (line 1, column 8)', 'unexpected end of input expecting "," or ")"' },
        { "is.maybe", '"failed to parse filter (is.maybe)" (line 1, column 4)',
          'unexpected "m" expecting isVal: (null, not_null, true, false, unknown)' },
        { "é.1", '"failed to parse filter (\\233.1)" (line 1, column 1)',
          'unexpected "\\233" expecting "not" or operator (eq, gt, ...)' },
      }
      for _, c in ipairs(cases) do
        local code, doc = get("rest_spec_items", { { "qty", c[1] } })
        pgrst100(code, doc, c[2], c[3])
      end
      -- An embedded resource's filter is worded the same.
      local code, doc = get("rest_spec_items", { { "select", "id,rest_spec_children(id)" },
        { "rest_spec_children.id", "0" } })
      pgrst100(code, doc, '"failed to parse filter (0)" (line 1, column 1)',
        'unexpected "0" expecting "not" or operator (eq, gt, ...)')
    end)

    it("400 PGRST100 for a logic tree, order, select or columns that does not parse, worded as PostgREST", function()
      local code, doc = get("rest_spec_items", { { "or", "()" } })
      pgrst100(code, doc, '"failed to parse logic tree (())" (line 1, column 4)', 'unexpected ")" expecting field name '
        .. "(* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)")
      code, doc = get("rest_spec_items", { { "or", "(id.in.1,2,id.eq.3)" } })
      pgrst100(code, doc, '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
        'unexpected "1" expecting "("')
      code, doc = get("rest_spec_items", { { "or", "(id.eq.1,id.xx.2)" } })
      pgrst100(code, doc, '"failed to parse logic tree ((id.eq.1,id.xx.2))" (line 1, column 15)',
        'unexpected "x" expecting "not" or operator (eq, gt, ...)')
      for _, c in ipairs({
        { "id.asc.nullslasttt", 17, [[unexpected 't' expecting "," or end of input]] },
        { "id.ac", 4, 'unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"' },
        { "id.descc", 8, [[unexpected 'c' expecting delimiter (.), "," or end of input]] },
        { "id.asc.nlsfst", 8, 'unexpected "l" expecting "nullsfirst" or "nullslast"' },
      }) do
        code, doc = get("rest_spec_items", { { "order", c[1] } })
        pgrst100(code, doc, ('"failed to parse order (%s)" (line 1, column %d)'):format(c[1], c[2]), c[3])
      end
      code, doc = get("rest_spec_items", { { "select", "id,rest_spec_children(id" } })
      pgrst100(code, doc, '"failed to parse select parameter (id,rest_spec_children(id)" (line 1, column 25)',
        'unexpected end of input expecting letter, digit, "-", "->>", "->", "::", ".", ")", "," or end of input')
      for _, c in ipairs({
        { "meta->>--34", 9, 'unexpected "-" expecting digit' }, -- JsonOperatorSpec.hs
        { "meta->(!@#$%^&*_d->>!@#$%^&*_e::integer", 7,
          'unexpected "(" expecting "-", digit or any non reserved character different from: .,>()' },
        { "id,rest_spec_children(name[])", 27,
          [[unexpected '[' expecting letter, digit, "-", "->>", "->", "::", ".", ")", "," or end of input]] },
        { "name!hint", 5, [[unexpected '!' expecting letter, digit, "-", "->>", "->", "::", ".", ")", "," or end of input]] },
        { "*!hint", 2, [[unexpected '!' expecting ")", "," or end of input]] },
        { "name::", 7, "unexpected end of input expecting letter or digit" },
      }) do
        code, doc = get("rest_spec_items", { { "select", c[1] } })
        pgrst100(code, doc, ('"failed to parse select parameter (%s)" (line 1, column %d)'):format(c[1], c[2]), c[3])
      end
      code, doc = call("POST", "rest_spec_items", { query = { { "columns", "" } }, body = { { name = "x" } } })
      pgrst100(code, doc, '"failed to parse columns parameter ()" (line 1, column 1)',
        "unexpected end of input expecting field name (* or [a..z0..9_$])")
      assert.equal(0, count_rows("name = 'x'"))
    end)

    it("400 PGRST100 in strata's words where PostgREST's parser accepts what strata does not", function()
      local code, doc = get("rest_spec_items", { { "select", "qty::money" } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("money", doc.details)
    end)

    it("maps SQLSTATEs: 23505 and 23503 to 409, 23514 and 23502 to 400, with message, details and hint", function()
      local code, doc = call("POST", "rest_spec_items", { body = { name = "apple" } })
      assert.equal(409, code)
      is_error(409, "23505", doc)
      assert.matches("duplicate key value violates unique constraint", doc.message)
      assert.equal("Key (name)=(apple) already exists.", doc.details)
      assert.equal(cjson.null, doc.hint)
      code, doc = call("POST", "rest_spec_children", { body = { item_id = 999, label = "orphan" } })
      assert.equal(409, code)
      is_error(409, "23503", doc)
      assert.matches("foreign key", doc.message)
      assert.matches("is not present in table", doc.details)
      code, doc = call("POST", "rest_spec_items", { body = { name = "neg", qty = -1 } })
      assert.equal(400, code)
      is_error(400, "23514", doc)
      assert.matches("check constraint", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = { qty = 1 } })
      assert.equal(400, code)
      is_error(400, "23502", doc)
      assert.matches("not%-null", doc.message)
      code, doc = call("POST", "rpc/rest_spec_fail", { body = { msg = "refused by rule" } })
      assert.equal(400, code)
      is_error(400, "P0001", doc)
      assert.same({ code = "P0001", message = "refused by rule", details = "the detail", hint = "the hint" }, doc)
      code, doc = call("POST", "rest_spec_items", { body = { name = "x", qty = "many" } })
      assert.equal(400, code)
      assert.equal("22P02", doc.code)
      assert.equal(5, count_rows())
    end)
  end)
end)
