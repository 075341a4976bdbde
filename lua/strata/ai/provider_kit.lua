-- strata.ai.provider_kit: what the adapters of lua/providers/ share: the
-- mapping of a provider's HTTP error to strata's error codes, and the JSON
-- helpers.  An adapter (lua/providers/<name>.lua) returns
--
--   { name,
--     request(call) -> { method, url, headers, body }      call: base_url, api_key, model,
--                                                         messages ({role, content}; system first),
--                                                         max_tokens, tools ({name, description, parameters})
--     stream() -> parser: parser:feed(chunk) -> events, parser:each(chunk, fn),
--                         parser:close() -> events
--     error(status, body) -> { code, message, retryable } }
--
-- Events: { type = "delta", text } | { type = "usage", input, output }
-- (totals so far) | { type = "tool_call", id, name, arguments } |
-- { type = "finish", reason } | { type = "error", code, message }.  A stream
-- that ends without "finish" was cut: close() answers an error "truncated".

local cjson = require("cjson")

local pcall, type, json_decode, tointeger = pcall, type, cjson.decode, math.tointeger

local M = {}

M.NULL = cjson.null

function M.decode(text)
  local ok, v = pcall(json_decode, text)
  if ok and type(v) == "table" then return v end
  return nil
end

function M.num(v)
  return type(v) == "number" and tointeger(v) or nil
end

--- strata's code for a provider's HTTP status; retryable errors let the
-- caller fall back to the next provider (before the first token only).
function M.http_error(provider, status, message)
  local code, retryable = "upstream_error", false
  if status == 429 then code, retryable = "upstream_rate_limited", true
  elseif status >= 500 then code, retryable = "upstream_unavailable", true
  elseif status == 401 or status == 403 then code = "upstream_auth"
  elseif status == 400 or status == 404 or status == 422 then code = "upstream_bad_request" end
  return { code = code, status = status, retryable = retryable,
    message = ("%s answered %d%s"):format(provider, status, message and (": " .. message) or "") }
end

--- A parser over SSE events: on_event(data, event, out) appends events to
-- out; finished() says whether the stream ended properly.
-- parser:each(chunk, fn) calls fn(event) for each event of chunk, in order,
-- with no list of its own (one list reused: the parser of one stream is fed
-- one chunk at a time); feed and close answer lists.
function M.sse_parser(on_event, finished)
  local reader = require("strata.ai.sse").reader()
  local p, failed, out = {}, false, {}
  local function dispatch(data, event) on_event(data, event, out) end
  function p:each(chunk, fn)
    for i = #out, 1, -1 do out[i] = nil end -- left by an fn that raised
    reader:feed(chunk, dispatch)
    for i = 1, #out do
      local e = out[i]
      if e.type == "error" then failed = true end
      fn(e)
    end
  end
  function p:feed(chunk)
    local list = {}
    p:each(chunk, function(e) list[#list + 1] = e end)
    return list
  end
  function p:close()
    local list = p:feed("\n\n")
    if not finished() and not failed then list[#list + 1] = { type = "error", code = "truncated", message = "the provider's stream ended early" } end
    return list
  end
  return p
end

return M
