-- spec/fuzz/sse.lua: the Server-Sent Events reader (strata.ai.sse) and the
-- stream parser of each provider adapter (lua/providers/*).  The input is
-- a stream; it is fed whole, in small pieces, and in two pieces split
-- where its first byte says.  The reader's events and each adapter's events must
-- be the same for all three (chunks split anywhere), and every adapter
-- event must have its documented shape (strata.ai.provider_kit).
local stub = require("stub")
local sse = require("strata.ai.sse")

local expect = stub.expect
local ADAPTERS = { "openai", "anthropic", "google" }
local TYPES = { delta = "text", error = "message", finish = "reason", usage = true, tool_call = true }

local function same(a, b)
  if a ~= a and b ~= b then return true end -- NaN from a decoded number
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Whole; in small pieces (bytes for a short input, else pieces of 1 to
-- 32 bytes as its second byte says, and at most about 64 of them: the
-- reader copies and rescans its unfinished line on every feed); in two
-- pieces.
local function chunkings(data)
  local cut = #data > 0 and data:byte(1) % (#data + 1) or 0
  local step = #data <= 256 and 1 or math.max(data:byte(2) % 32 + 1, #data // 64)
  local small = {}
  for i = 1, #data, step do small[#small + 1] = data:sub(i, i + step - 1) end
  return { { data }, small, { data:sub(1, cut), data:sub(cut + 1) } }
end

local function run(open, chunks, closing)
  local p, events = open(), {}
  for _, c in ipairs(chunks) do
    for _, ev in ipairs(p:feed(c)) do events[#events + 1] = ev end
  end
  if closing then
    for _, ev in ipairs(p:close()) do events[#events + 1] = ev end
  end
  return events
end

local function check_event(name, ev)
  local field = TYPES[ev.type]
  expect(field, "%s: event type %s", name, tostring(ev.type))
  if field ~= true then expect(type(ev[field]) == "string", "%s: %s event without %s", name, ev.type, field) end
  if ev.type == "usage" then
    expect(ev.input == nil or math.type(ev.input) == "integer", "%s: usage input %s", name, tostring(ev.input))
    expect(ev.output == nil or math.type(ev.output) == "integer", "%s: usage output %s", name, tostring(ev.output))
  elseif ev.type == "tool_call" then
    -- A call without a name is possible (a provider's garbage): execute
    -- answers it as an unknown tool.
    expect(ev.name == nil or type(ev.name) == "string", "%s: tool_call name", name)
    expect(type(ev.arguments) == "table", "%s: tool_call arguments", name)
  elseif ev.type == "error" then
    expect(type(ev.code) == "string", "%s: error without code", name)
  end
end

local adapters = {}
for i, name in ipairs(ADAPTERS) do adapters[i] = require("providers." .. name) end

return function(data)
  local ways = chunkings(data)
  local first = run(sse.reader, ways[1])
  for _, ev in ipairs(first) do
    expect(type(ev.event) == "string" and type(ev.data) == "string", "reader event shape")
  end
  for i = 2, #ways do expect(same(first, run(sse.reader, ways[i])), "reader: chunking %d differs", i) end
  for a, adapter in ipairs(adapters) do
    local name = ADAPTERS[a]
    local whole = run(adapter.stream, ways[1], true)
    for _, ev in ipairs(whole) do check_event(name, ev) end
    for i = 2, #ways do
      expect(same(whole, run(adapter.stream, ways[i], true)), "%s: chunking %d differs", name, i)
    end
    local e = adapter.error(400 + #data % 200, data)
    expect(type(e) == "table" and type(e.code) == "string" and type(e.message) == "string", "%s: error()", name)
  end
end
