-- The creator (created_by) and members (user_projects) read a project; any signed-in user creates one as its creator, and only the creator changes or deletes it.

local kit = require("strata.policy_kit")

local created = kit.own("created_by")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid)
    return { ["$or"] = {
      { created_by = uid },
      { id = kit.sel("user_projects", "project_id", { user_id = uid }) },
    } }
  end),
  insert = created,
  update = created,
  delete = created,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = { created_by = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
