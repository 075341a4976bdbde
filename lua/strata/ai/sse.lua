-- strata.ai.sse: a Server-Sent Events reader (the WHATWG rules the
-- providers stream by): lines end in LF, CR LF or CR; "event:" and "data:"
-- fields (one space after the colon dropped; several data lines joined by
-- LF); a line starting with ":" is a comment (keep-alive); a blank line
-- dispatches the event.  Chunks split anywhere, a line or a CR LF across two
-- chunks included.
--
--   local r = sse.reader()
--   for _, ev in ipairs(r:feed(chunk)) do ... ev.event, ev.data ... end
--   r:feed(chunk, function(data, event) ... end)  -- the same, no tables
--
-- It runs once per streamed chunk of every open AI stream, so it copies
-- as little as it can: a line is read in place in the chunk (only its
-- value is copied out), a chunk is joined to the held bytes only when some
-- are held, the data of a one-line event stays a string, and with a
-- function an event is handed over without a table of its own.

local find, sub, byte = string.find, string.sub, string.byte
local concat = table.concat

local M = {}

local Reader = {}
Reader.__index = Reader

local COLON, SPACE, LF = 58, 32, 10

function M.reader()
  return setmetatable({ buf = "", event = nil, data = nil, skip_lf = false }, Reader)
end

-- The line buf[i..j] (j < i: a blank line); fn(data, event) gets an event.
local function line(self, buf, i, j, fn)
  if j < i then
    local d, ev = self.data, self.event
    self.event, self.data = nil, nil
    if d then fn(type(d) == "table" and concat(d, "\n") or d, ev or "message") end
    return
  end
  if byte(buf, i) == COLON then return end
  local colon = find(buf, ":", i, true)
  local field, value
  if colon and colon <= j then
    field = sub(buf, i, colon - 1)
    local v = colon + 1
    if v <= j and byte(buf, v) == SPACE then v = v + 1 end
    value = sub(buf, v, j)
  else
    field, value = sub(buf, i, j), ""
  end
  if field == "event" then
    self.event = value
  elseif field == "data" then
    local d = self.data
    if d == nil then self.data = value
    elseif type(d) == "table" then d[#d + 1] = value
    else self.data = { d, value } end
  end
end

--- The events completed by `chunk`: a list of {event, data}, or, given fn,
-- fn(data, event) for each, in order.
function Reader:feed(chunk, fn)
  local out
  if not fn then
    out = {}
    fn = function(data, event) out[#out + 1] = { event = event, data = data } end
  end
  local buf = self.buf
  if buf == "" then buf = chunk else buf = buf .. chunk end
  local i, n = 1, #buf
  if self.skip_lf and byte(buf, 1) == LF then i = 2 end
  self.skip_lf = false
  -- Plain finds of each ending, not find(buf, "[\r\n]"): a pattern with a
  -- class runs the matcher at every byte (a third of the instructions of a
  -- streamed delta); a CR absent from the chunk is looked for once.
  local lf, cr = find(buf, "\n", i, true), find(buf, "\r", i, true)
  while lf or cr do
    local s = (lf and (not cr or lf < cr)) and lf or cr
    local e = s
    if s == cr then
      if s == n then self.skip_lf = true            -- maybe CR LF split across chunks
      elseif lf == s + 1 then e = s + 1 end
    end
    line(self, buf, i, s - 1, fn)
    i = e + 1
    if lf and lf < i then lf = find(buf, "\n", i, true) end
    if cr and cr < i then cr = find(buf, "\r", i, true) end
  end
  self.buf = i > n and "" or sub(buf, i)
  return out
end

--- True when bytes of an unfinished event are held (a stream cut there was truncated).
function Reader:pending()
  return self.buf ~= "" or self.data ~= nil
end

return M
