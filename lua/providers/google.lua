-- Google Gemini, streamed (POST /v1beta/models/<model>:streamGenerateContent
-- ?alt=sse): each data line is a GenerateContentResponse; the text is in
-- candidates[1].content.parts[].text, function calls in parts[].functionCall
-- {name, args}; usageMetadata (promptTokenCount, candidatesTokenCount,
-- thoughtsTokenCount: billed as output) holds the totals so far; the last
-- chunk has candidates[1].finishReason, and the stream simply ends (no
-- [DONE]).  Roles are "user" and "model"; the system prompt goes in
-- systemInstruction.
local cjson = require("cjson")
local kit = require("strata.ai.provider_kit")

local type, ipairs, tostring = type, ipairs, tostring -- the parser runs per streamed chunk

local M = { name = "google" }

-- strata's messages as Gemini contents: the system prompt apart, tool calls
-- as functionCall parts of the model, tool results as functionResponse
-- parts of one user turn.
local function convert(list)
  local system, contents = {}, {}
  for _, m in ipairs(list) do
    if m.role == "system" then
      system[#system + 1] = { text = m.content }
    elseif m.tool_calls then
      local parts = {}
      if m.content ~= "" then parts[1] = { text = m.content } end
      for _, c in ipairs(m.tool_calls) do parts[#parts + 1] = { functionCall = { name = c.name, args = c.arguments } } end
      contents[#contents + 1] = { role = "model", parts = parts }
    elseif m.role == "tool" then
      local last = contents[#contents]
      local part = { functionResponse = { name = m.name, response = { result = kit.decode(m.content) or m.content } } }
      if last and last.results then last.parts[#last.parts + 1] = part
      else contents[#contents + 1] = { role = "user", parts = { part }, results = true } end
    else
      contents[#contents + 1] = { role = m.role == "assistant" and "model" or "user", parts = { { text = m.content } } }
    end
  end
  for _, c in ipairs(contents) do c.results = nil end
  return system, contents
end

function M.request(call)
  local system, contents = convert(call.messages)
  local body = { contents = contents }
  if #system > 0 then body.systemInstruction = { parts = system } end
  if call.max_tokens then body.generationConfig = { maxOutputTokens = call.max_tokens } end
  if call.tools and #call.tools > 0 then
    local decls = {}
    for i, t in ipairs(call.tools) do
      decls[i] = { name = t.name, description = t.description, parameters = t.parameters }
    end
    body.tools = { { functionDeclarations = decls } }
  end
  local model = call.model:gsub("[^%w%._%-]", function(ch) return ("%%%02X"):format(ch:byte()) end)
  local url = ("%s/v1beta/models/%s:streamGenerateContent?alt=sse"):format(call.base_url, model)
  return { method = "POST", url = url, body = cjson.encode(body),
    headers = { ["Content-Type"] = "application/json", Accept = "text/event-stream",
      ["x-goog-api-key"] = call.api_key or "" } }
end

function M.stream()
  local finished, n = false, 0
  return kit.sse_parser(function(data, event, out)
    local j = kit.decode(data)
    if not j then return end
    if type(j.error) == "table" then
      out[#out + 1] = { type = "error", code = "upstream_error", message = tostring(j.error.message) }
      return
    end
    local c = type(j.candidates) == "table" and j.candidates[1]
    local parts = type(c) == "table" and type(c.content) == "table" and c.content.parts
    if type(parts) == "table" then
      for _, p in ipairs(parts) do
        if type(p.text) == "string" and p.text ~= "" and not p.thought then
          out[#out + 1] = { type = "delta", text = p.text }
        elseif type(p.functionCall) == "table" then
          n = n + 1
          out[#out + 1] = { type = "tool_call", id = "call_" .. n, name = p.functionCall.name,
            arguments = type(p.functionCall.args) == "table" and p.functionCall.args or {} }
        end
      end
    end
    local u = j.usageMetadata
    if type(u) == "table" then
      local o = kit.num(u.candidatesTokenCount)
      if o or kit.num(u.thoughtsTokenCount) then o = (o or 0) + (kit.num(u.thoughtsTokenCount) or 0) end
      out[#out + 1] = { type = "usage", input = kit.num(u.promptTokenCount), output = o }
    end
    if type(c) == "table" and type(c.finishReason) == "string" then
      finished = true
      out[#out + 1] = { type = "finish", reason = c.finishReason }
    end
  end, function() return finished end)
end

function M.error(status, body)
  local j = kit.decode(body or "")
  local msg = j and type(j.error) == "table" and j.error.message or nil
  return kit.http_error("google", status, type(msg) == "string" and msg or nil)
end

return M
