-- strata.http: HTTP for scripts.  The helpers (url_decode, url_encode,
-- reason) and the transfer primitives are C (strata.httpc,
-- core/lua/lmod_http.c); request() is here so that on_chunk runs as plain
-- Lua in the handler's coroutine, where it may wait itself (res.sse, db
-- queries) — a C callback could not yield.
--
--   http.request{ method, url, headers, body, timeout_ms, connect_timeout_ms,
--                 max_bytes, on_chunk } -> status, headers, body | nil, err
-- err = { code = "timeout"|"connect"|"dns"|"tls"|"too_large"|"cancelled"|
--         "http"|"url"|"internal", message = "..." }.
--   opts.cancel_key = key: http.cancel(key) stops that request from any
--   handler of the process (this worker's at once, another worker's within
--   about a second, even when the upstream sends nothing), and a request
--   started later with that key is refused ("cancelled");
--   http.cancelled(key) says whether cancel(key) was called.

local core = require("strata.httpc")

local start, wait = core.start, core.wait

local M = {
  url_decode = core.url_decode,
  url_encode = core.url_encode,
  reason = core.reason,
  cancel = core.cancel,
  cancelled = core.cancelled,
}

--- One outbound HTTP request; the handler waits for it (the worker serves
-- others meanwhile).  With on_chunk, a 2xx body is handed over piece by
-- piece as it arrives (the returned body is then ""); on_chunk returning
-- false stops the transfer (nil, {code = "cancelled"}).  A non-2xx body is
-- returned whole, never streamed.
function M.request(opts)
  local on_chunk = opts.on_chunk
  if on_chunk ~= nil and type(on_chunk) ~= "function" then
    error("http.request: on_chunk must be a function", 2)
  end
  -- <close>: the transfer stops however this function is left (an error in
  -- on_chunk, the handler stopped).
  local t <close>, err = start(opts)
  if not t then return nil, err end
  while true do
    local kind, a, b, c = wait(t)
    if kind == "chunk" then
      if on_chunk(a) == false then
        return nil, { code = "cancelled", message = "on_chunk returned false" }
      end
    elseif kind == "done" then
      return a, b, c
    else
      return nil, a
    end
  end
end

return M
