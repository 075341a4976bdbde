-- strata.requests: which request each coroutine is serving, for libraries
-- that need the caller's identity (strata.db sets it in every transaction).
local running = coroutine.running

local M = {}

local by_thread = setmetatable({}, { __mode = "k" })

--- Records req as the request of the running coroutine.
function M.enter(req)
  by_thread[running()] = req
end

--- Forgets it (the coroutine goes back to the pool).
function M.leave()
  by_thread[running()] = nil
end

--- The request the running coroutine serves, or nil.
function M.current()
  return by_thread[running()]
end

return M
