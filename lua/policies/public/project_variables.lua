-- Members of a project (a user_projects row for their uid) read its variables, as seed 001's RLS says; only service_role writes them.

local kit = require("strata.policy_kit")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid)
    return { project_id = kit.sel("user_projects", "project_id", { user_id = uid }) }
  end),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A },
      expect = { project_id = { "in_select", "user_projects", "project_id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
