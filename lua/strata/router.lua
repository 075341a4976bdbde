-- strata.router: matches a method and a path to a route.  Paths are
-- literal segments and captures (`/v1/runs/:id`); a last segment `*name`
-- captures the rest of the path.  Literal paths are one table lookup;
-- patterned ones are tried in the order they were added, among those with
-- the same number of segments.

local byte, find, gsub, sub, char = string.byte, string.find, string.gsub, string.sub, string.char
local tonumber, ipairs = tonumber, ipairs

local M = {}
M.__index = M

local function split(path)
  local segs, n = {}, 0
  for seg in path:gmatch("[^/]+") do
    n = n + 1
    segs[n] = seg
  end
  return segs, n
end

-- The segments of the paths requests use, kept: splitting costs a gmatch,
-- a table and its regrowth each time, and clients ask for the same paths
-- again and again.  The lists are shared, so read-only.  Paths are the
-- client's: the cache is bounded in entries and key length.
local SPLIT_MAX, SPLIT_KEY_MAX = 512, 256
local splits, nsplits = {}, 0

local function split_request_path(path)
  local segs = splits[path]
  if segs then return segs, #segs end
  local n
  segs, n = split(path)
  if #path <= SPLIT_KEY_MAX then
    if nsplits >= SPLIT_MAX then splits, nsplits = {}, 0 end
    splits[path], nsplits = segs, nsplits + 1
  end
  return segs, n
end

local function unescape(s)
  if not find(s, "%", 1, true) then return s end
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

--- A new, empty router.
function M.new()
  return setmetatable({ exact = {}, patterns = {}, shapes = {} }, M)
end

--- Adds `route` (a table with method, path, handler) declared in `file`.
-- Returns true, or nil and a message naming both files on a collision.
function M:add(route, file)
  local method, path = route.method, route.path
  local segs, n = split(path)
  -- kinds[i]: ":" or "*" where segment i captures, nil where it is literal.
  local shape, kinds, literal, rest = {}, {}, true, nil
  for i, seg in ipairs(segs) do
    local c = byte(seg)
    if c == 58 then -- ':'
      shape[i] = ":"; kinds[i] = ":"; literal = false
    elseif c == 42 and i == n then -- '*' last
      shape[i] = "*"; kinds[i] = "*"; literal = false; rest = sub(seg, 2)
    else
      shape[i] = seg
    end
  end
  -- Two routes collide when they would match the same paths.
  local key = method .. " /" .. table.concat(shape, "/")
  local other = self.shapes[key]
  if other then
    return nil, ("route %s %s in %s collides with %s %s in %s")
      :format(method, path, file, other.route.method, other.route.path, other.file)
  end
  local entry = { route = route, file = file, segs = segs, n = n, rest = rest, kinds = kinds }
  self.shapes[key] = entry
  if literal then
    local t = self.exact[method] or {}
    self.exact[method] = t
    t["/" .. table.concat(segs, "/")] = entry
  else
    local t = self.patterns[method] or {}
    self.patterns[method] = t
    t[#t + 1] = entry
  end
  return true
end

local function match_pattern(entry, segs, n)
  if entry.rest then
    if n < entry.n - 1 then return nil end
  elseif n ~= entry.n then
    return nil
  end
  -- The literal segments first: most candidates fail there, and then no
  -- capture table is made.
  local want, kinds = entry.segs, entry.kinds
  for i = 1, entry.n do
    if kinds[i] == nil and want[i] ~= segs[i] then return nil end
  end
  local params = {}
  for i = 1, entry.n do
    local kind = kinds[i]
    if kind == ":" then
      params[sub(want[i], 2)] = unescape(segs[i])
    elseif kind == "*" then
      params[entry.rest] = unescape(table.concat(segs, "/", i, n))
    end
  end
  return params
end

local function find_in(self, method, path, segs, n)
  local t = self.exact[method]
  local e = t and t[path]
  if e then return e, {} end
  local list = self.patterns[method]
  if list then
    for _, entry in ipairs(list) do
      local params = match_pattern(entry, segs, n)
      if params then return entry, params end
    end
  end
  return nil
end

--- The route for `method` and `path`, and its captures; or nil and
-- "not_found" / "method_not_allowed" (the path exists for another method).
-- HEAD falls back to the GET route; the server then sends no body.
function M:match(method, path)
  if #path > 1 and byte(path, -1) == 47 then path = sub(path, 1, -2) end -- trailing '/'
  -- Literal routes first: one lookup, no splitting.
  local t = self.exact[method]
  local hit = t and t[path]
  if hit then return hit.route, {} end
  local segs, n = split_request_path(path)
  local e, params = find_in(self, method, path, segs, n)
  if not e and method == "HEAD" then e, params = find_in(self, "GET", path, segs, n) end
  if not e then e, params = find_in(self, "*", path, segs, n) end
  if e then return e.route, params end
  for m in pairs(self.exact) do
    if find_in(self, m, path, segs, n) then return nil, "method_not_allowed" end
  end
  for m in pairs(self.patterns) do
    if find_in(self, m, path, segs, n) then return nil, "method_not_allowed" end
  end
  return nil, "not_found"
end

return M
