-- strata.ai.sse: a Server-Sent Events reader (the WHATWG rules the
-- providers stream by): lines end in LF, CR LF or CR; "event:" and "data:"
-- fields (one space after the colon dropped; several data lines joined by
-- LF); a line starting with ":" is a comment (keep-alive); a blank line
-- dispatches the event.  Chunks split anywhere, a line or a CR LF across two
-- chunks included.
--
--   local r = sse.reader()
--   for _, ev in ipairs(r:feed(chunk)) do ... ev.event, ev.data ... end

local find, sub = string.find, string.sub
local concat = table.concat

local M = {}

local Reader = {}
Reader.__index = Reader

function M.reader()
  return setmetatable({ buf = "", event = nil, data = nil, skip_lf = false }, Reader)
end

function Reader:line(line, out)
  if line == "" then
    if self.data then out[#out + 1] = { event = self.event or "message", data = concat(self.data, "\n") } end
    self.event, self.data = nil, nil
    return
  end
  if sub(line, 1, 1) == ":" then return end
  local colon = find(line, ":", 1, true)
  local field, value = line, ""
  if colon then
    field, value = sub(line, 1, colon - 1), sub(line, colon + 1)
    if sub(value, 1, 1) == " " then value = sub(value, 2) end
  end
  if field == "event" then
    self.event = value
  elseif field == "data" then
    self.data = self.data or {}
    self.data[#self.data + 1] = value
  end
end

--- The events completed by `chunk`.
function Reader:feed(chunk)
  local out = {}
  local buf = self.buf .. chunk
  local i = 1
  if self.skip_lf and sub(buf, 1, 1) == "\n" then i = 2 end
  self.skip_lf = false
  while true do
    local s, e = find(buf, "[\r\n]", i)
    if not s then break end
    if sub(buf, s, s) == "\r" then
      if s == #buf then self.skip_lf = true        -- maybe CR LF split across chunks
      elseif sub(buf, s + 1, s + 1) == "\n" then e = s + 1 end
    end
    self:line(sub(buf, i, s - 1), out)
    i = e + 1
  end
  self.buf = sub(buf, i)
  return out
end

--- True when bytes of an unfinished event are held (a stream cut there was truncated).
function Reader:pending()
  return self.buf ~= "" or self.data ~= nil
end

return M
