-- Users read and add messages only in their own chats ("chatId" of a Chat whose user_id is their uid), as seed 003's RLS says; nobody but service_role edits or deletes a message.

local kit = require("strata.policy_kit")

local in_own_chat = kit.for_user(function(uid) return { chatId = kit.sel("Chat", "id", { user_id = uid }) } end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = in_own_chat,
  insert = in_own_chat,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A },
      expect = { chatId = { "in_select", "Chat", "id", { user_id = A } } } },
    { action = "insert", ctx = { role = "authenticated", uid = A, is_admin = true },
      expect = { chatId = { "in_select", "Chat", "id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
