-- strata.ai.template and strata.ai.render.resolve (unit, no server): the
-- {{name}} syntax, its errors with their positions, and seed 001's
-- priority order applied layer by layer.
local template = require("strata.ai.template")
local render = require("strata.ai.render")

describe("strata.ai.template", function()
  it("splits text and placeholders, blanks inside the braces allowed", function()
    local parts = assert(template.parse("Hi {{ name }}, today is {{current_date}}."))
    assert.same({ "Hi ", { name = "name", offset = 4 }, ", today is ", { name = "current_date", offset = 25 }, "." }, parts)
  end)

  it("leaves single braces alone (JSON in prompts)", function()
    assert.same({ 'answer as {"a": 1}' }, template.parse('answer as {"a": 1}'))
  end)

  it("answers the position of an unclosed {{", function()
    local parts, err = template.parse("line one\n  see {{name and more")
    assert.is_nil(parts)
    assert.same({ line = 2, column = 7, offset = 16 }, { line = err.line, column = err.column, offset = err.offset })
    assert.matches("unclosed {{ at line 2, column 7", err.message, 1, true)
  end)

  it("refuses empty placeholders and bad names", function()
    local _, e1 = template.parse("a {{ }} b")
    assert.matches("empty placeholder", e1.message)
    assert.equal(3, e1.column)
    local _, e2 = template.parse("{{two words}}")
    assert.matches('invalid variable name "two words"', e2.message, 1, true)
    local _, e3 = template.parse("{{a {{b}}")
    assert.matches("unclosed {{ at line 1, column 1", e3.message, 1, true)
  end)

  it("names the message that does not parse", function()
    local names, err = template.names({ { role = "system", content = "ok {{a}}" }, { role = "user", content = "x\n{{" } })
    assert.is_nil(names)
    assert.equal(2, err.message_index)
    assert.matches("^messages%[2%]%.content: unclosed {{ at line 2, column 1", err.message)
  end)

  it("lists names once, in order, and fills them; the unfilled stay and are missing", function()
    local msgs = { { role = "system", content = "{{b}} {{a}}" }, { role = "user", content = "{{a}}{{c}}{{c}}" } }
    local names = assert(template.names(msgs))
    assert.same({ "b", "a", "c" }, names)
    local out, missing = template.fill(msgs, { a = "1", b = "2" })
    assert.same({ { role = "system", content = "2 1" }, { role = "user", content = "1{{c}}{{c}}" } }, out)
    assert.same({ "c" }, missing)
  end)

  it("does not re-expand placeholders inside values", function()
    local out = template.fill({ { role = "user", content = "{{a}}" } }, { a = "{{b}}" })
    assert.equal("{{b}}", out[1].content)
  end)
end)

describe("strata.ai.render.resolve", function()
  local ORDER = { "computed", "client", "broker", "project", "org", "user", "default" }

  -- Layers in seed 001's order, each holding `x` when its source is in `have`.
  local function layers(have, calls)
    local out = {}
    for _, source in ipairs(ORDER) do
      out[#out + 1] = { source = source, fetch = function(wanted)
        calls[#calls + 1] = source .. ":" .. table.concat(wanted, ",")
        return have[source] and { x = source .. "-value" } or {}
      end }
    end
    return out
  end

  -- Seed 001's priority table, case by case: with every source below and
  -- including a level holding x, that level wins.
  for i, winner in ipairs(ORDER) do
    it(("takes %s over every lower source"):format(winner), function()
      local have = {}
      for j = i, #ORDER do have[ORDER[j]] = true end
      local values, prov = render.resolve({ "x" }, layers(have, {}))
      assert.equal(winner .. "-value", values.x)
      assert.same({ value = winner .. "-value", source = winner }, prov.x)
    end)
  end

  it("asks each layer only for the names still unfilled, and stops when none is left", function()
    local calls = {}
    local ls = {
      { source = "client", fetch = function(w) calls[#calls + 1] = table.concat(w, ","); return { a = "A" } end },
      { source = "project", fetch = function(w) calls[#calls + 1] = table.concat(w, ","); return { a = "no", b = "B" } end },
      { source = "default", fetch = function(w) calls[#calls + 1] = table.concat(w, ","); return {} end },
    }
    local values, prov = render.resolve({ "a", "b" }, ls)
    assert.same({ a = "A", b = "B" }, values)
    assert.equal("project", prov.b.source)
    assert.same({ "a,b", "b" }, calls)
  end)

  it("writes values as text: numbers, booleans, JSON; null is absent", function()
    local values = render.resolve({ "n", "f", "b", "t", "z" }, {
      { source = "client", fetch = function() return { n = 3, f = 1.5, b = false, t = { k = 1 }, z = require("cjson").null } end },
    })
    assert.same({ n = "3", f = "1.5", b = "false", t = '{"k":1}' }, values)
  end)

  it("keeps a broker's scope in the provenance", function()
    local _, prov = render.resolve({ "brand" }, {
      { source = "broker", fetch = function() return { brand = { scoped = true, value = "blue", scope = "workspace" } } end },
    })
    assert.same({ value = "blue", source = "broker", scope = "workspace" }, prov.brand)
  end)

  it("answers the error of a layer that failed", function()
    local values, err = render.resolve({ "a" }, { { source = "project", fetch = function() return nil, { status = 403 } end } })
    assert.is_nil(values)
    assert.equal(403, err.status)
  end)
end)
