-- Status rules: what an agent's status becomes once its trust score moved
-- (seed 004: agents on probation get no critical task).  next(status,
-- trust) answers the new status (the same one for no change).  Only
-- 'active' and 'probation' move; 'inactive' and 'terminated' are the CEO's.

local PROBATION_BELOW = 30 -- active agents below this go on probation
local RESTORE_FROM = 60     -- agents on probation at or above this are active again

local M = {}

function M.next(status, trust)
  if status == "active" and trust < PROBATION_BELOW then return "probation" end
  if status == "probation" and trust >= RESTORE_FROM then return "active" end
  return status
end

M.examples = {
  { fn = "next", args = { "active", 29.5 }, expect = "probation" },
  { fn = "next", args = { "active", 30 }, expect = "active" },
  { fn = "next", args = { "probation", 60 }, expect = "active" },
  { fn = "next", args = { "terminated", 10 }, expect = "terminated" },
}

return M
