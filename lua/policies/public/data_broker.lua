-- Anyone reads brokers marked public_read or is_public, signed-in users also read authenticated_read brokers and their own (user_id = their uid); users create, change and delete only their own brokers, and ownerless (system) brokers only service_role.

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local uid = kit.uid(ctx)
    if not uid then
      return { ["$or"] = { { public_read = true }, { is_public = true } } }
    end
    return { ["$or"] = {
      { public_read = true }, { is_public = true }, { authenticated_read = true }, { user_id = uid },
    } }
  end,
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "anon" }, expect = { ["$or"] = { { public_read = true }, { is_public = true } } } },
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { ["$or"] = {
      { public_read = true }, { is_public = true }, { authenticated_read = true }, { user_id = A } } } },
    { action = "update", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
