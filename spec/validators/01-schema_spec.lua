-- strata.schema: the declarative schemas of lua/validators/ (unit, no
-- server, no database): every rule kind, nested JSON-pointer paths, every
-- failure reported together, partial mode, and check_rows.
local cjson = require("cjson")
local S = require("strata.schema")

-- validate(spec, value[, opts]) as a list of "path: message" strings ({} when valid).
local function fails(spec, value, opts)
  local ok, errs = S.validate(spec, value, opts)
  if ok then
    assert.is_nil(errs)
    return {}
  end
  assert.is_nil(ok)
  assert.is_true(#errs > 0, "invalid with an empty error list")
  local out = {}
  for i, e in ipairs(errs) do out[i] = e.path .. ": " .. e.message end
  return out
end

describe("strata.schema", function()
  describe("types", function()
    local cases = {
      { "string", "x", 1 },
      { "boolean", false, "true" },
      { "number", 1.5, "1.5" },
      { "integer", 3, 3.5 },
      { "integer", 3.0, math.huge },
      { "numeric", "0.0750", "abc" },
      { "numeric", 12, "1e400" },
      { "record", { a = 1 }, { 1, 2 } },
      { "map", { x = true }, "x" },
      { "array", { 1, 2 }, { a = 1 } },
      { "any", "anything", nil },
    }
    for _, c in ipairs(cases) do
      local kind, good, bad = c[1], c[2], c[3]
      it(("checks type %s (%s passes, %s fails)"):format(kind, tostring(good), tostring(bad)), function()
        assert.same({}, fails({ type = kind }, good))
        if bad ~= nil then
          local errs = fails({ type = kind }, bad)
          assert.equal(1, #errs)
          assert.matches("^: expected ", errs[1])
        end
      end)
    end

    it("names what it got", function()
      assert.same({ ": expected an integer, got 4096.5" }, fails({ type = "integer" }, 4096.5))
      assert.same({ ": expected a boolean, got a string" }, fails({ type = "boolean" }, "yes"))
      assert.same({ ": expected a string, got an array" }, fails({ type = "string" }, { 1 }))
      assert.same({ ": expected an array, got an object" }, fails({ type = "array" }, { a = 1 }))
      assert.same({ ": expected a number, got true" }, fails({ type = "number" }, true))
    end)

    it("takes an empty table (cjson decodes {} and [] alike) as a record and as an array", function()
      assert.same({}, fails({ type = "record" }, cjson.decode("{}")))
      assert.same({}, fails({ type = "array" }, cjson.decode("[]")))
      assert.same({ ": expected a string, got an empty object" }, fails({ type = "string" }, {}))
    end)

    it("tells JSON types apart", function()
      assert.equal("null", S.json_type(cjson.null))
      assert.equal("null", S.json_type(nil))
      assert.equal("object", S.json_type(cjson.decode('{"a":1}')))
      assert.equal("array", S.json_type(cjson.decode('[1,{"b":2}]')))
      assert.equal("empty", S.json_type({}))
      assert.equal("table", S.json_type({ 1, a = 2 }))
      assert.equal("table", S.json_type({ [1] = 1, [3] = 3 }))
    end)

    it("refuses an unknown type in a schema", function()
      assert.has_error(function() S.validate({ type = "strnig" }, "x") end)
    end)
  end)

  describe("required, null and default", function()
    local spec = { type = "record", fields = {
      { a = { type = "string", required = true } },
      { b = { type = "string" } },
      { c = { type = "string", required = true, default = "x" } },
    } }

    it("requires present values, and takes null for absent only where optional", function()
      assert.same({ "/a: is required" }, fails(spec, {}))
      assert.same({ "/a: must not be null" }, fails(spec, { a = cjson.null }))
      assert.same({}, fails(spec, { a = "x", b = cjson.null }))
    end)

    it("does not require a field with a default, and does not fill it in", function()
      local v = { a = "x" }
      assert.same({}, fails(spec, v))
      assert.is_nil(v.c)
    end)

    it("requires the value itself unless told otherwise", function()
      assert.same({ ": is required" }, fails({ type = "record" }, nil))
      assert.same({ ": must not be null" }, fails({ type = "record" }, cjson.null))
      assert.same({}, fails({ type = "record", required = false }, nil))
    end)
  end)

  describe("rules", function()
    it("one_of / enum", function()
      assert.same({}, fails({ type = "string", one_of = { "a", "b" } }, "b"))
      assert.same({ ": must be one of a, b (got 'c')" }, fails({ type = "string", one_of = { "a", "b" } }, "c"))
      assert.same({ ": must be one of 1, 2 (got 3)" }, fails({ type = "integer", enum = { 1, 2 } }, 3))
    end)

    it("gt, ge, lt, le and between", function()
      assert.same({ ": must be greater than 0" }, fails({ type = "integer", gt = 0 }, 0))
      assert.same({}, fails({ type = "integer", ge = 0 }, 0))
      assert.same({ ": must be at least 0" }, fails({ type = "number", ge = 0 }, -0.5))
      assert.same({ ": must be less than 10" }, fails({ type = "number", lt = 10 }, 10))
      assert.same({ ": must be at most 10" }, fails({ type = "number", le = 10 }, 10.5))
      assert.same({ ": must be between 0 and 1" }, fails({ type = "number", between = { 0, 1 } }, 1.5))
      assert.same({}, fails({ type = "number", between = { 0, 1 } }, 1))
    end)

    it("applies bounds to decimal strings of type numeric", function()
      assert.same({}, fails({ type = "numeric", ge = 0 }, " 0.0750 "))
      assert.same({ ": must be at least 0" }, fails({ type = "numeric", ge = 0 }, "-1.5"))
      assert.same({ ": must be less than 1000000" }, fails({ type = "numeric", lt = 1e6 }, "1e7"))
    end)

    it("reports every bound that fails", function()
      assert.same({ ": must be greater than 5", ": must be at least 6" }, fails({ type = "integer", gt = 5, ge = 6 }, 5))
    end)

    it("len_min and len_max count characters, elements and entries", function()
      assert.same({}, fails({ type = "string", len_max = 3 }, "héé"))
      assert.same({ ": must have at least 1 character" }, fails({ type = "string", len_min = 1 }, ""))
      assert.same({ ": must have at most 2 elements" }, fails({ type = "array", len_max = 2 }, { 1, 2, 3 }))
      assert.same({ ": must have at least 1 element" }, fails({ type = "array", len_min = 1 }, {}))
      assert.same({ ": must have at least 2 entries" }, fails({ type = "map", len_min = 2 }, { a = 1 }))
    end)

    it("pattern", function()
      assert.same({}, fails({ type = "string", pattern = "^/" }, "/api"))
      assert.same({ ": does not have the expected format (Lua pattern ^/)" }, fails({ type = "string", pattern = "^/" }, "api"))
    end)

    it("msg replaces the messages of the field's own rules", function()
      assert.same({ ": must be a path" }, fails({ type = "string", pattern = "^/", msg = "must be a path" }, "api"))
      assert.same({ ": must be a path" }, fails({ type = "string", msg = "must be a path" }, 3))
    end)

    it("a wrong type stops the value's other rules", function()
      assert.same({ ": expected an integer, got a string" },
        fails({ type = "integer", gt = 0, one_of = { 1 }, custom = function() error("not reached") end }, "x"))
    end)
  end)

  describe("arrays", function()
    local spec = { type = "array", unique = true, elements = { type = "string", one_of = { "a", "b", "c" } } }

    it("checks each element under its 0-based index", function()
      assert.same({}, fails(spec, { "a", "c" }))
      assert.same({ "/1: must be one of a, b, c (got 'x')", "/2: expected a string, got 3" }, fails(spec, { "a", "x", 3 }))
    end)

    it("refuses null elements and duplicates", function()
      assert.same({ "/1: must not be null" }, fails(spec, cjson.decode('["a", null]')))
      assert.same({ "/2: duplicate of element 0" }, fails(spec, { "a", "b", "a" }))
    end)
  end)

  describe("records and maps", function()
    local spec = { type = "record", fields = {
      { name = { type = "string", required = true } },
      { limits = { type = "record", required = true, fields = {
        { perMinute = { type = "integer", required = true, gt = 0 } },
        { perHour = { type = "integer", required = true, gt = 0 } },
      } } },
      { tags = { type = "array", elements = { type = "string" } } },
    } }

    it("reports nested failures with JSON-pointer paths, all of them, in field order (checks after fields)", function()
      assert.same({
        "/name: expected a string, got 1",
        "/limits/perMinute: is required",
        "/limits/perHour: must be greater than 0",
        "/tags/1: expected a string, got true",
      }, fails(spec, { name = 1, limits = { perHour = -3 }, tags = { "a", true } }))
    end)

    it("accepts a valid value and ignores unknown fields unless strict", function()
      assert.same({}, fails(spec, { name = "x", limits = { perMinute = 1, perHour = 2 }, extra = true }))
      local strict = S.with(spec, { strict = true })
      assert.same({ "/extra: unknown field", "/more: unknown field" },
        fails(strict, { name = "x", limits = { perMinute = 1, perHour = 2 }, more = 1, extra = true }))
    end)

    it("takes fields as a name -> schema map too, checked in name order", function()
      local m = { type = "record", fields = { b = { type = "string", required = true }, a = { type = "string", required = true } } }
      assert.same({ "/a: is required", "/b: is required" }, fails(m, {}))
    end)

    it("refuses a record given a list", function()
      assert.same({ "/limits: expected an object, got an array" }, fails(spec, { name = "x", limits = { 1, 2 } }))
    end)

    it("checks map keys and values, in key order", function()
      local tools = { type = "map", keys = { type = "string", pattern = "^%a+$", msg = "must be letters" },
        values = { type = "record", fields = { { enabled = { type = "boolean", required = true } } } } }
      assert.same({}, fails(tools, { search = { enabled = true }, code = { enabled = false } }))
      assert.same({
        "/a_b: key must be letters",
        "/search/enabled: is required",
        "/zeta: must not be null",
      }, fails(tools, { search = {}, a_b = { enabled = true }, zeta = cjson.null }))
    end)

    it("escapes ~ and / in keys (RFC 6901)", function()
      assert.same({ "/a~1b~0c: expected a boolean, got 1" }, fails({ type = "map", values = { type = "boolean" } }, { ["a/b~c"] = 1 }))
      assert.equal("/x/a~1b", S.join("/x", "a/b"))
    end)
  end)

  describe("custom", function()
    it("answers true, or nil and a message", function()
      local even = { type = "integer", custom = function(v) if v % 2 == 0 then return true end return nil, "must be even" end }
      assert.same({}, fails(even, 4))
      assert.same({ ": must be even" }, fails(even, 3))
    end)

    it("gets ctx and may report several failures below the value", function()
      local seen
      local spec = { type = "record", custom = function(v, ctx, report)
        seen = ctx
        report("a", "first")
        report({ "b", 0 }, "second")
        report("/c/d", "third")
        report(nil, "fourth")
        return nil
      end }
      assert.same({ "/a: first", "/b/0: second", "/c/d: third", ": fourth" }, fails(spec, { x = 1 }, { ctx = { who = "me" } }))
      assert.same({ who = "me" }, seen)
    end)

    it("fails closed when it answers nothing", function()
      assert.same({ ": is invalid" }, fails({ type = "string", custom = function() return false end }, "x"))
    end)

    it("runs only when the value passed its other rules", function()
      local calls = 0
      local spec = { type = "record", fields = { { a = { type = "integer" } } }, custom = function() calls = calls + 1; return true end }
      fails(spec, { a = "x" })
      assert.equal(0, calls)
      fails(spec, { a = 1 })
      assert.equal(1, calls)
    end)
  end)

  describe("cross-field checks", function()
    local rate = { type = "record", fields = {
      { perMinute = { type = "integer", required = true, gt = 0 } },
      { perHour = { type = "integer", required = true, gt = 0 } },
      { perDay = { type = "integer", required = true, gt = 0 } },
    }, checks = { S.ordered({ "perMinute", "perHour", "perDay" }) } }

    it("ordered reports at the later field of each pair out of order", function()
      assert.same({}, fails(rate, { perMinute = 1, perHour = 1, perDay = 2 }))
      assert.same({ "/perHour: must be at least perMinute (100)" }, fails(rate, { perMinute = 100, perHour = 10, perDay = 1000 }))
      assert.same({ "/perHour: must be at least perMinute (100)", "/perDay: must be at least perHour (50)" },
        fails(rate, { perMinute = 100, perHour = 50, perDay = 10 }))
    end)

    it("runs a check only on present, valid fields, beside the fields' own failures", function()
      assert.same({ "/perDay: expected an integer, got a string", "/perHour: must be at least perMinute (100)" },
        fails(rate, { perMinute = 100, perHour = 10, perDay = "x" }))
      assert.same({ "/perDay: is required" }, fails(rate, { perMinute = 100, perHour = 1000 }))
    end)

    it("member_of", function()
      local spec = { type = "record", fields = {
        { active = { type = "string", required = true } },
        { available = { type = "array", required = true, elements = { type = "string" } } },
      }, checks = { S.member_of("active", "available") } }
      assert.same({}, fails(spec, { active = "a", available = { "b", "a" } }))
      assert.same({ "/active: must be one of available (b, c)" }, fails(spec, { active = "a", available = { "b", "c" } }))
    end)

    it("a plain check function runs when the whole record is valid, and may name a field", function()
      local spec = { type = "record", fields = { { a = { type = "integer" } }, { b = { type = "integer" } } },
        checks = { function(r) if (r.a or 0) + (r.b or 0) > 10 then return nil, "a + b must be at most 10", "b" end return true end } }
      assert.same({ "/b: a + b must be at most 10" }, fails(spec, { a = 6, b = 6 }))
      assert.same({ "/a: expected an integer, got a string" }, fails(spec, { a = "6", b = 6 }))
    end)
  end)

  describe("partial (PATCH)", function()
    local spec = { type = "record", fields = {
      { a = { type = "string", required = true } },
      { n = { type = "record", required = true, fields = { { x = { type = "integer", required = true } } } } },
      { lo = { type = "integer" } },
      { hi = { type = "integer" } },
    }, checks = { S.ordered({ "lo", "hi" }), function() return nil, "whole-record check" end } }

    it("does not require absent top-level fields", function()
      assert.same({}, fails(spec, { lo = 1 }, { partial = true }))
      assert.same({ "/a: is required", "/n: is required" }, fails(spec, { lo = 1 }))
      assert.same({ ": whole-record check" }, fails(spec, { a = "x", n = { x = 1 } }), "a valid record runs the plain check")
    end)

    it("still refuses null for a required field", function()
      assert.same({ "/a: must not be null" }, fails(spec, { a = cjson.null }, { partial = true }))
    end)

    it("checks present nested records in full", function()
      assert.same({ "/n/x: is required" }, fails(spec, { n = {} }, { partial = true }))
    end)

    it("runs top-level checks only when their fields are all present", function()
      assert.same({}, fails(spec, { hi = 1 }, { partial = true }))
      assert.same({ "/hi: must be at least lo (5)" }, fails(spec, { lo = 5, hi = 1 }, { partial = true }))
    end)
  end)

  describe("helpers", function()
    it("extend appends fields and replaces those of the same name in place", function()
      local base = { { a = { type = "string" } }, { b = { type = "string" } } }
      local ext = S.extend(base, { { b = { type = "string", required = true } }, { c = { type = "integer" } } })
      assert.same({ "a", "b", "c" }, { (next(ext[1])), (next(ext[2])), (next(ext[3])) })
      assert.same({ "/b: is required" }, fails({ type = "record", fields = ext }, {}))
      assert.same({}, fails({ type = "record", fields = base }, {}), "the base is unchanged")
    end)

    it("validator builds a validator module whose ctx.partial selects the partial mode", function()
      local v = S.validator({ type = "record", fields = { { a = { type = "string", required = true } } } })
      assert.is_true(v.validate({ a = "x" }))
      assert.is_nil((v.validate({})))
      assert.is_true(v.validate({}, { partial = true }))
      assert.is_true(require("strata.checks").validator("x.lua", v))
    end)

    it("prefix puts a path before every failure", function()
      assert.same({ { path = "/config_data/a", message = "m" } }, S.prefix({ { path = "/a", message = "m" } }, "/config_data"))
    end)
  end)

  describe("check_rows", function()
    local function preload(name, mod)
      package.loaded["validators." .. name] = nil
      package.preload["validators." .. name] = mod
    end

    it("answers nil when the table has no validator", function()
      assert.is_nil(S.check_rows("spec_no_such_table", { { a = 1 } }, {}))
    end)

    it("collects the failures of every row, with the row's index when the payload is a list", function()
      preload("spec_even", function()
        return { validate = function(row)
          if row.n % 2 == 0 then return true end
          return nil, { { path = "/n", message = "must be even" }, "plain string" }
        end }
      end)
      assert.is_nil(S.check_rows("spec_even", { { n = 2 } }, {}))
      local bad = S.check_rows("spec_even", { { n = 1 } }, {})
      assert.same({ file = "validators/spec_even.lua", errors = {
        { path = "/n", message = "must be even" }, { path = "", message = "plain string" } } }, bad)
      bad = S.check_rows("spec_even", { { n = 2 }, { n = 3 }, { n = 5 } }, {}, true)
      assert.same({ "/1/n", "/1", "/2/n", "/2" }, { bad.errors[1].path, bad.errors[2].path, bad.errors[3].path, bad.errors[4].path })
    end)

    it("passes ctx to the validator", function()
      local got
      preload("spec_ctx", function() return { validate = function(_, ctx) got = ctx; return true end } end)
      S.check_rows("spec_ctx", { {} }, { partial = true })
      assert.same({ partial = true }, got)
    end)

    it("fails closed when the validator raises, answers nonsense or cannot load", function()
      preload("spec_raises", function() return { validate = function() error("boom") end } end)
      preload("spec_false", function() return { validate = function() return false end } end)
      preload("spec_empty", function() return { validate = function() return nil, {} end } end)
      preload("spec_shape", function() return { check = function() return true end } end)
      preload("spec_broken", function() return require("spec_no_such_module_anywhere") end)
      for _, name in ipairs({ "spec_raises", "spec_false", "spec_empty", "spec_shape", "spec_broken" }) do
        local bad = S.check_rows(name, { {} }, {})
        assert.is_table(bad, name)
        assert.is_true(bad.failed, name)
      end
    end)
  end)
end)
