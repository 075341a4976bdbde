-- Members of an organization (a user_organizations row for their uid) read its variables, as seed 001's RLS says; only service_role writes them.

local kit = require("strata.policy_kit")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid) return { org_id = kit.sel("user_organizations", "org_id", { user_id = uid }) } end),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A },
      expect = { org_id = { "in_select", "user_organizations", "org_id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
