-- Users read, create, change and delete only the steps of their own projects (projects of conversations with user_id = their uid).
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local function own_projects(uid)
  return { "in_select", "projects", "id",
    { conversation_id = { "in_select", "agent_conversations", "id", { user_id = uid } } } }
end

local own = kit.for_user(function(uid) return { project_id = own_projects(uid) } end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { project_id = { "in_select", "projects", "id",
      { conversation_id = { "in_select", "agent_conversations", "id", { user_id = A } } } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
