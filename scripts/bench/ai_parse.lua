-- scripts/bench/ai_parse.lua: the Lua share of one streamed delta, alone
-- (lua5.4 scripts/bench/ai_parse.lua, from the repository's root): the SSE
-- reader and the Gemini parser on one chunk as the provider sends it, and
-- the client's event as res.sse builds it.  Prints microseconds per chunk.
package.path = "lua/?.lua;" .. package.path
local cjson = require("cjson")
local google = require("providers.google")

local chunk = "data: " .. cjson.encode({ candidates = { { content = { role = "model", parts = { { text = "x" } } }, index = 0 } },
  usageMetadata = { promptTokenCount = 10, candidatesTokenCount = 5 } }) .. "\r\n\r\n"
local parser, n = google.stream(), 200000
local t = os.clock()
for _ = 1, n do
  for _, ev in ipairs(parser:feed(chunk)) do
    if ev.type == "delta" then
      local data = ('{"text":' .. cjson.encode(ev.text) .. "}"):gsub("\r?\n", "\ndata: ")
      local _ = "event: delta\ndata: " .. data .. "\n\n"
    end
  end
end
print(("ai_parse: %.2f us per chunk"):format((os.clock() - t) / n * 1e6))
