-- spec/fuzz/template.lua: the prompt template renderer
-- (strata.ai.template, and strata.ai.render's value-to-text step).  The
-- input is the contents of a prompt's messages, separated by NUL bytes.
-- parse answers parts or nil and an error with a message and a position
-- inside the text; names fails exactly when some message does not parse;
-- filling with no values leaves every name missing, and filling each name
-- with its own placeholder gives back the same names.
local stub = require("stub")
local template = require("strata.ai.template")
local render = require("strata.ai.render")
local cjson = require("cjson")

local expect = stub.expect
local ROLES = { "system", "user", "assistant" }

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

return function(data)
  local messages, all_parse = {}, true
  for content in (data .. "\0"):gmatch("([^%z]*)%z") do
    messages[#messages + 1] = { role = ROLES[#messages % 3 + 1], content = content }
    local parts, err = template.parse(content)
    if parts then
      for _, p in ipairs(parts) do
        expect(type(p) == "string" and p ~= "" or type(p) == "table" and p.name:match("^[%a_][%w_%.%-]*$"),
          "bad part")
      end
    else
      all_parse = false
      expect(type(err) == "table" and type(err.message) == "string", "parse error without message")
      expect(math.type(err.offset) == "integer" and err.offset >= 1 and err.offset <= #content, "offset %s outside",
        tostring(err.offset))
      expect(err.line >= 1 and err.column >= 1, "bad line/column")
    end
  end
  local names, set = template.names(messages)
  expect((names ~= nil) == all_parse, "names and parse disagree")
  if not names then
    expect(type(set) == "table" and set.message_index >= 1 and set.message_index <= #messages, "bad message_index")
    return
  end
  local out, missing = template.fill(messages, {})
  expect(same_list(missing, names), "fill without values: missing differs from names")
  local values = {}
  for _, n in ipairs(names) do values[n] = "{{" .. n .. "}}" end
  out = template.fill(messages, values)
  local again = template.names(out)
  expect(again and same_list(again, names), "filling names with themselves changed the names")
  -- What render places in the prompt for a client's JSON value.
  local ok, v = pcall(cjson.decode, data)
  if ok then
    local text = render.text(v)
    expect(text == nil or type(text) == "string", "render.text answered a %s", type(text))
  end
end
