-- scripts/bench/logs.sh's route: one user activity logged per request
-- (strata.activity: settings, rules, privacy, then the queue).
local log = require("strata.log")
return {
  { method = "GET", path = "/bench/logged", handler = function()
      log.activity("chat", "view", { resource_type = "Chat" })
      return 200, { ok = true }
    end },
}
