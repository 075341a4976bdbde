-- Users read, create, change and delete only projects of their own conversations (conversation_id of an agent_conversations row with user_id = their uid), and a parent project must be theirs too.
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local function own_conversations(uid) return { "in_select", "agent_conversations", "id", { user_id = uid } } end

local own = kit.for_user(function(uid) return { conversation_id = own_conversations(uid) } end)

local own_with_own_parent = kit.for_user(function(uid)
  return { conversation_id = own_conversations(uid), ["$or"] = {
    { parent_project_id = { "is", nil } },
    { parent_project_id = { "in_select", "projects", "id", { conversation_id = own_conversations(uid) } } },
  } }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own_with_own_parent,
  update = own_with_own_parent,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A },
      expect = { conversation_id = { "in_select", "agent_conversations", "id", { user_id = A } } } },
    { action = "update", ctx = { role = "anon" }, expect = false },
  },
}
