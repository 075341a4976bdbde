-- Users read, create, change and delete only their own tasks (user_id = their uid), attached to no conversation or to one of their own.
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local own_in_own_conversation = kit.for_user(function(uid)
  return { user_id = uid, ["$or"] = {
    { agent_conversation_id = { "is", nil } },
    { agent_conversation_id = { "in_select", "agent_conversations", "id", { user_id = uid } } },
  } }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own_in_own_conversation,
  update = own_in_own_conversation,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = { user_id = A, ["$or"] = {
      { agent_conversation_id = { "is" } },
      { agent_conversation_id = { "in_select", "agent_conversations", "id", { user_id = A } } } } } },
    { action = "delete", ctx = { role = "anon" }, expect = false },
  },
}
