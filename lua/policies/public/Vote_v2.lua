-- Users read, cast, change and withdraw votes only in their own chats and only on messages of those chats, as seed 003's RLS says ("vote belongs to user's chat").

local kit = require("strata.policy_kit")

local own_chat_votes = kit.for_user(function(uid)
  local own_chats = kit.sel("Chat", "id", { user_id = uid })
  return {
    chatId = own_chats,
    -- The message must be one of the user's chats too, so a vote cannot
    -- point at someone else's message.
    messageId = kit.sel("Message_v2", "id", { chatId = own_chats }),
  }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"
local CHATS = { "in_select", "Chat", "id", { user_id = A } }

return {
  select = own_chat_votes,
  insert = own_chat_votes,
  update = own_chat_votes,
  delete = own_chat_votes,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { chatId = CHATS, messageId = { "in_select", "Message_v2", "id", { chatId = CHATS } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
    { action = "delete", ctx = { role = "service_role_lookalike", uid = A }, expect = false },
  },
}
