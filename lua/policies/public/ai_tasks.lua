-- Users read, create, change and delete only their own AI tasks (user_id = their uid), and create or keep them only inside their own runs.

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local own_in_own_run = kit.for_user(function(uid)
  return { user_id = uid, run_id = kit.sel("ai_runs", "id", { user_id = uid }) }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own_in_own_run,
  update = own_in_own_run,
  delete = own,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { user_id = A, run_id = { "in_select", "ai_runs", "id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
