-- Users read, create, change and delete only their own deliverables (user_id = their uid), linked only to their own conversations and tasks.
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

-- Optional links (conversation, task) stay inside the user's own data.
local own_with_own_links = kit.for_user(function(uid)
  return { user_id = uid, ["$and"] = {
    { ["$or"] = { { conversation_id = { "is", nil } },
      { conversation_id = { "in_select", "agent_conversations", "id", { user_id = uid } } } } },
    { ["$or"] = { { task_id = { "is", nil } },
      { task_id = { "in_select", "tasks", "id", { user_id = uid } } } } },
  } }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own_with_own_links,
  update = own_with_own_links,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
