-- Members (user_organizations) and the creator read an organization; any signed-in user creates one as its creator (created_by = their uid), and only the creator changes or deletes it.

local kit = require("strata.policy_kit")

local created = kit.own("created_by")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid)
    return { ["$or"] = {
      { created_by = uid },
      { id = kit.sel("user_organizations", "org_id", { user_id = uid }) },
    } }
  end),
  insert = created,
  update = created,
  delete = created,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { ["$or"] = {
      { created_by = A }, { id = { "in_select", "user_organizations", "org_id", { user_id = A } } } } } },
    { action = "update", ctx = { role = "authenticated", uid = A }, expect = { created_by = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
