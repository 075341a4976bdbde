-- Anthropic messages, streamed (POST /v1/messages with stream = true):
-- message_start (message.usage.input_tokens), content_block_start (text or
-- tool_use with id and name), content_block_delta (text_delta.text, or
-- input_json_delta.partial_json for a tool's input), content_block_stop,
-- message_delta (delta.stop_reason, usage.output_tokens: the total so far),
-- message_stop; "ping" keeps alive; an "error" event reports a failure
-- mid-stream.  The system prompt is a top-level field, not a message.
local cjson = require("cjson")
local kit = require("strata.ai.provider_kit")

local type, ipairs, tostring = type, ipairs, tostring -- the parser runs per streamed chunk

local M = { name = "anthropic", VERSION = "2023-06-01" }

-- strata's messages as Anthropic's: the system prompt apart, tool calls as
-- tool_use blocks of the assistant, tool results as tool_result blocks of
-- one user message.
local function convert(list)
  local system, messages = {}, {}
  for _, m in ipairs(list) do
    if m.role == "system" then
      system[#system + 1] = m.content
    elseif m.tool_calls then
      local blocks = {}
      if m.content ~= "" then blocks[1] = { type = "text", text = m.content } end
      for _, c in ipairs(m.tool_calls) do
        blocks[#blocks + 1] = { type = "tool_use", id = c.id, name = c.name, input = c.arguments }
      end
      messages[#messages + 1] = { role = "assistant", content = blocks }
    elseif m.role == "tool" then
      local last = messages[#messages]
      local block = { type = "tool_result", tool_use_id = m.tool_call_id, content = m.content }
      if last and last.tool_results then last.content[#last.content + 1] = block
      else messages[#messages + 1] = { role = "user", content = { block }, tool_results = true } end
    else
      messages[#messages + 1] = { role = m.role, content = m.content }
    end
  end
  for _, m in ipairs(messages) do m.tool_results = nil end
  return system, messages
end

function M.request(call)
  local system, messages = convert(call.messages)
  local body = { model = call.model, messages = messages, stream = true, max_tokens = call.max_tokens or 4096 }
  if #system > 0 then body.system = table.concat(system, "\n\n") end
  if call.tools and #call.tools > 0 then
    body.tools = {}
    for i, t in ipairs(call.tools) do
      body.tools[i] = { name = t.name, description = t.description,
        input_schema = t.parameters or { type = "object", properties = {} } }
    end
  end
  return { method = "POST", url = call.base_url .. "/v1/messages", body = cjson.encode(body),
    headers = { ["Content-Type"] = "application/json", Accept = "text/event-stream",
      ["x-api-key"] = call.api_key or "", ["anthropic-version"] = M.VERSION } }
end

function M.stream()
  local stopped, input, output, blocks = false, nil, nil, {}
  return kit.sse_parser(function(data, event, out)
    local j = kit.decode(data)
    if not j then return end
    local t = j.type or event
    if t == "message_start" then
      local u = type(j.message) == "table" and j.message.usage
      if type(u) == "table" then
        input, output = kit.num(u.input_tokens), kit.num(u.output_tokens)
        out[#out + 1] = { type = "usage", input = input, output = output }
      end
    elseif t == "content_block_start" then
      local b = j.content_block
      if type(b) == "table" and b.type == "tool_use" then
        blocks[kit.num(j.index) or 0] = { id = b.id, name = b.name, json = "" }
      end
    elseif t == "content_block_delta" then
      local d = j.delta
      if type(d) == "table" and d.type == "text_delta" and type(d.text) == "string" then
        out[#out + 1] = { type = "delta", text = d.text }
      elseif type(d) == "table" and d.type == "input_json_delta" then
        local b = blocks[kit.num(j.index) or 0]
        if b and type(d.partial_json) == "string" then b.json = b.json .. d.partial_json end
      end
    elseif t == "content_block_stop" then
      local i = kit.num(j.index) or 0
      local b = blocks[i]
      if b then
        blocks[i] = nil
        out[#out + 1] = { type = "tool_call", id = b.id, name = b.name, arguments = kit.decode(b.json ~= "" and b.json or "{}") or {} }
      end
    elseif t == "message_delta" then
      if type(j.usage) == "table" then
        output = kit.num(j.usage.output_tokens) or output
        out[#out + 1] = { type = "usage", input = kit.num(j.usage.input_tokens) or input, output = output }
      end
      local d = j.delta
      if type(d) == "table" and type(d.stop_reason) == "string" then
        out[#out + 1] = { type = "finish", reason = d.stop_reason }
      end
    elseif t == "message_stop" then
      stopped = true
    elseif t == "error" then
      local e = type(j.error) == "table" and j.error or {}
      out[#out + 1] = { type = "error", code = e.type == "overloaded_error" and "upstream_unavailable" or "upstream_error",
        message = tostring(e.message or "error event") }
    end
  end, function() return stopped end)
end

function M.error(status, body)
  local j = kit.decode(body or "")
  local msg = j and type(j.error) == "table" and j.error.message or nil
  -- 529: Anthropic's "overloaded".
  return kit.http_error("anthropic", status, type(msg) == "string" and msg or nil)
end

return M
