-- OpenAI chat completions, streamed (POST /v1/chat/completions with
-- stream = true and stream_options.include_usage): each data line is a
-- chat.completion.chunk; choices[1].delta.content is text,
-- delta.tool_calls carry tool calls in pieces (arguments as JSON text split
-- anywhere); a last chunk with empty choices holds usage (prompt_tokens,
-- completion_tokens); "data: [DONE]" ends the stream.
local cjson = require("cjson")
local kit = require("strata.ai.provider_kit")

local type, ipairs, tostring = type, ipairs, tostring -- the parser runs per streamed chunk

local M = { name = "openai" }

-- strata's messages ({role, content[, tool_calls]} and {role = "tool",
-- tool_call_id, content}) as chat completions messages.
local function messages(list)
  local out = {}
  for i, m in ipairs(list) do
    if m.tool_calls then
      local calls = {}
      for j, c in ipairs(m.tool_calls) do
        calls[j] = { id = c.id, type = "function", ["function"] = { name = c.name, arguments = cjson.encode(c.arguments) } }
      end
      out[i] = { role = "assistant", content = m.content ~= "" and m.content or cjson.null, tool_calls = calls }
    elseif m.role == "tool" then
      out[i] = { role = "tool", tool_call_id = m.tool_call_id, content = m.content }
    else
      out[i] = { role = m.role, content = m.content }
    end
  end
  return out
end

function M.request(call)
  local body = { model = call.model, messages = messages(call.messages), stream = true,
    stream_options = { include_usage = true } }
  if call.max_tokens then body.max_tokens = call.max_tokens end
  if call.tools and #call.tools > 0 then
    body.tools = {}
    for i, t in ipairs(call.tools) do
      body.tools[i] = { type = "function", ["function"] = { name = t.name, description = t.description,
        parameters = t.parameters or { type = "object", properties = {} } } }
    end
  end
  return { method = "POST", url = call.base_url .. "/v1/chat/completions", body = cjson.encode(body),
    headers = { ["Content-Type"] = "application/json", Accept = "text/event-stream",
      Authorization = "Bearer " .. (call.api_key or "") } }
end

function M.stream()
  local done, finished, calls = false, false, {}
  local function flush_calls(out)
    for _, c in ipairs(calls) do
      out[#out + 1] = { type = "tool_call", id = c.id, name = c.name, arguments = kit.decode(c.args) or {} }
    end
    calls = {}
  end
  return kit.sse_parser(function(data, event, out)
    if data == "[DONE]" then done = true; flush_calls(out); return end
    local j = kit.decode(data)
    if not j then return end
    if j.error then
      -- "error" may be any JSON value: only an object has a message.
      local e = type(j.error) == "table" and j.error or { message = j.error }
      out[#out + 1] = { type = "error", code = "upstream_error", message = tostring(e.message or "error event") }
      return
    end
    local choice = type(j.choices) == "table" and j.choices[1]
    if type(choice) == "table" then
      local d = choice.delta
      if type(d) == "table" then
        if type(d.content) == "string" and d.content ~= "" then out[#out + 1] = { type = "delta", text = d.content } end
        if type(d.tool_calls) == "table" then
          for _, tc in ipairs(d.tool_calls) do
            local i = (kit.num(tc.index) or 0) + 1
            local c = calls[i] or { args = "" }
            calls[i] = c
            if type(tc.id) == "string" then c.id = tc.id end
            local fn = type(tc["function"]) == "table" and tc["function"] or {}
            if type(fn.name) == "string" then c.name = fn.name end
            if type(fn.arguments) == "string" then c.args = c.args .. fn.arguments end
          end
        end
      end
      if type(choice.finish_reason) == "string" then
        finished = true
        flush_calls(out)
        out[#out + 1] = { type = "finish", reason = choice.finish_reason }
      end
    end
    if type(j.usage) == "table" then
      out[#out + 1] = { type = "usage", input = kit.num(j.usage.prompt_tokens), output = kit.num(j.usage.completion_tokens) }
    end
  end, function() return done and finished end)
end

function M.error(status, body)
  local j = kit.decode(body or "")
  local msg = j and type(j.error) == "table" and j.error.message or nil
  return kit.http_error("openai", status, type(msg) == "string" and msg or nil)
end

return M
