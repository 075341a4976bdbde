-- Users read, create, change and delete only their own suggestions (user_id = their uid, "similar to Document" in seed 003), and create or move them only onto their own documents.

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

-- Writes also keep the suggestion on one of the user's own documents.
local own_on_own_document = kit.for_user(function(uid)
  return { user_id = uid, documentId = kit.sel("Document", "id", { user_id = uid }) }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own_on_own_document,
  update = own_on_own_document,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { user_id = A, documentId = { "in_select", "Document", "id", { user_id = A } } } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
