-- The provider adapters of lua/providers/ (unit, no server): the request
-- each builds, and its stream parser fed with the provider's wire format as
-- the providers document it, whole, byte by byte, and cut short.
local cjson = require("cjson")
local sse = require("strata.ai.sse")

local P = {
  google = require("providers.google"),
  openai = require("providers.openai"),
  anthropic = require("providers.anthropic"),
}

-- Every event a parser yields for `text` fed in pieces of `step` bytes, then closed.
local function run(provider, text, step)
  local p, out = P[provider].stream(), {}
  local i = 1
  while i <= #text do
    for _, e in ipairs(p:feed(text:sub(i, i + step - 1))) do out[#out + 1] = e end
    i = i + step
  end
  for _, e in ipairs(p:close()) do out[#out + 1] = e end
  return out
end

local function summary(events)
  local s = { text = "", tools = {}, types = {} }
  for _, e in ipairs(events) do
    s.types[#s.types + 1] = e.type
    if e.type == "delta" then s.text = s.text .. e.text
    elseif e.type == "usage" then s.input, s.output = e.input or s.input, e.output or s.output
    elseif e.type == "finish" then s.finish = e.reason
    elseif e.type == "tool_call" then s.tools[#s.tools + 1] = { name = e.name, arguments = e.arguments }
    elseif e.type == "error" then s.error = e.code end
  end
  return s
end

local GEMINI = table.concat({
  'data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9},"modelVersion": "gemini-2.0-flash"}\r\n\r\n',
  'data: {"candidates": [{"content": {"parts": [{"text": " sky is blue"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 4,"totalTokenCount": 13},"modelVersion": "gemini-2.0-flash"}\r\n\r\n',
  'data: {"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 5,"thoughtsTokenCount": 2,"totalTokenCount": 16},"modelVersion": "gemini-2.0-flash"}\r\n\r\n',
})

local OPENAI = table.concat({
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"The sky"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" is blue."},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}\n\n',
  'data: [DONE]\n\n',
})

local ANTHROPIC = table.concat({
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-3-5-sonnet-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
  'event: ping\ndata: {"type": "ping"}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The sky"}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" is blue."}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
})

describe("strata.ai.sse", function()
  it("joins data lines, skips comments, accepts CR, LF and CR LF split across chunks", function()
    local r = sse.reader()
    local got = {}
    for _, piece in ipairs({ ": keep-alive\r", "\nevent: a\r", "\ndata: 1\ndata:2\r\r", "data: x\n", "\n" }) do
      for _, e in ipairs(r:feed(piece)) do got[#got + 1] = e end
    end
    assert.same({ { event = "a", data = "1\n2" }, { event = "message", data = "x" } }, got)
    assert.is_false(r:pending())
  end)
end)

describe("provider stream parsers", function()
  local cases = {
    { "google", GEMINI, "The sky is blue.", 9, 7, "STOP" },
    { "openai", OPENAI, "The sky is blue.", 9, 5, "stop" },
    { "anthropic", ANTHROPIC, "The sky is blue.", 25, 15, "end_turn" },
  }
  for _, c in ipairs(cases) do
    local name, wire, text, tin, tout, finish = table.unpack(c)
    it(name .. ": text, usage and the end, whole and byte by byte", function()
      for _, step in ipairs({ #wire, 1, 7 }) do
        local s = summary(run(name, wire, step))
        assert.equal(text, s.text)
        assert.same({ tin, tout, finish }, { s.input, s.output, s.finish })
        assert.is_nil(s.error)
      end
    end)

    it(name .. ": a stream cut before its end is an error 'truncated'", function()
      local s = summary(run(name, wire:sub(1, math.floor(#wire * 0.6)), 5))
      assert.equal("truncated", s.error)
    end)
  end

  it("openai: tool calls assembled from argument pieces", function()
    local wire = table.concat({
      'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create","arguments":""}}]},"finish_reason":null}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"title\\":"}}]},"finish_reason":null}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"Plan\\"}"}}]},"finish_reason":null}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
      'data: [DONE]\n\n' })
    local s = summary(run("openai", wire, 3))
    assert.same({ { name = "create", arguments = { title = "Plan" } } }, s.tools)
    assert.equal("tool_calls", s.finish)
  end)

  it("anthropic: tool_use blocks from input_json_delta pieces; an error event", function()
    local wire = table.concat({
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
      'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"create","input":{}}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"title\\": \\"Pl"}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"an\\"}"}}\n\n',
      'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n' })
    local s = summary(run("anthropic", wire, 4))
    assert.same({ { name = "create", arguments = { title = "Plan" } } }, s.tools)
    assert.equal("upstream_unavailable", s.error)
  end)

  it("google: functionCall parts", function()
    local wire = 'data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"create","args":{"title":"Plan"}}}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2}}\r\n\r\n'
    local s = summary(run("google", wire, 9))
    assert.same({ { name = "create", arguments = { title = "Plan" } } }, s.tools)
  end)

  -- Found by the sse fuzz target (spec/fuzz/sse.lua): "error": 5 raised.
  it("openai: an error that is not an object is an error event", function()
    for _, e in ipairs({ "5", '"quota"', "true", "[1]", "{}" }) do
      local events = run("openai", 'data: {"error":' .. e .. "}\n\n", 64)
      assert.equal("error", events[1].type)
      assert.equal("upstream_error", events[1].code)
      assert.is_string(events[1].message)
    end
  end)
end)

describe("provider requests", function()
  local call = { base_url = "http://fake", api_key = "k-123", model = "m-1", max_tokens = 100,
    messages = { { role = "system", content = "be brief" }, { role = "user", content = "hi" },
      { role = "assistant", content = "hello" }, { role = "user", content = "more" } },
    tools = { { name = "create", description = "make a doc", parameters = { type = "object" } } } }

  it("google: streamGenerateContent?alt=sse, the key in x-goog-api-key, systemInstruction, model role", function()
    local r = P.google.request(call)
    assert.equal("http://fake/v1beta/models/m-1:streamGenerateContent?alt=sse", r.url)
    assert.equal("k-123", r.headers["x-goog-api-key"])
    local b = cjson.decode(r.body)
    assert.same({ parts = { { text = "be brief" } } }, b.systemInstruction)
    assert.same({ "user", "model", "user" }, { b.contents[1].role, b.contents[2].role, b.contents[3].role })
    assert.equal("create", b.tools[1].functionDeclarations[1].name)
    assert.equal(100, b.generationConfig.maxOutputTokens)
  end)

  it("openai: chat completions with stream_options.include_usage and a bearer key", function()
    local r = P.openai.request(call)
    assert.equal("http://fake/v1/chat/completions", r.url)
    assert.equal("Bearer k-123", r.headers.Authorization)
    local b = cjson.decode(r.body)
    assert.is_true(b.stream)
    assert.is_true(b.stream_options.include_usage)
    assert.equal(4, #b.messages)
    assert.equal("function", b.tools[1].type)
  end)

  it("anthropic: messages with the system prompt on top, x-api-key and anthropic-version", function()
    local r = P.anthropic.request(call)
    assert.equal("http://fake/v1/messages", r.url)
    assert.same({ "k-123", "2023-06-01" }, { r.headers["x-api-key"], r.headers["anthropic-version"] })
    local b = cjson.decode(r.body)
    assert.equal("be brief", b.system)
    assert.equal(3, #b.messages)
    assert.equal(100, b.max_tokens)
    assert.equal("create", b.tools[1].name)
  end)

  it("maps HTTP errors: 429 and 5xx may fall back, 401 may not", function()
    local e = P.anthropic.error(429, '{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}')
    assert.same({ "upstream_rate_limited", true, "anthropic answered 429: slow down" }, { e.code, e.retryable, e.message })
    assert.is_true(P.google.error(503, "{}").retryable)
    assert.is_false(P.openai.error(401, '{"error":{"message":"bad key"}}').retryable)
  end)
end)
