-- The scheduled jobs (lua/strata/jobs.lua runs them): each runs once per
-- every_ms across the strata instances sharing the database, in one
-- service transaction `tx`; an error (a raise, or nil, err) is an
-- error_logs row and rolls the run back, and the other jobs run all the
-- same.  Edit and save: the next tick follows the new list.  conf
-- jobs_tick_ms is how often the list is looked at.

local af = require("strata.agentflow")
local config = require("strata.config")

return {
  -- orchestrator tasks running past timeout_seconds become `timeout` (seed 002)
  { name = "orchestrator.expire_timed_out_tasks", every_ms = 10000,
    run = function(tx) return tx.query("select orchestrator.expire_timed_out_tasks() as expired") end },

  -- agentflow tasks blocked longer than lua/rules/transitions.lua's
  -- blocked_too_long_seconds recalculate their assignee's KPIs and trust once
  { name = "agentflow.blocked_tasks", every_ms = 60000, run = af.blocked_too_long },

  -- AI tasks an earlier start of this instance left unfinished (a crash, a
  -- kill -9) are failed: at the first tick after a start, then every minute.
  { name = "ai.orphaned_tasks", every_ms = 60000, each_instance = true,
    run = function(tx)
      return tx.query("select public.ai_fail_orphaned_tasks($1, $2) as failed", config.instance, config.boot_id)
    end },
}
