-- Users read their own memberships and the creator of an organization reads, adds and removes its members; a member may also leave (delete their own row); nobody edits a membership in place.

local kit = require("strata.policy_kit")

local function created_orgs(uid) return kit.sel("organizations", "id", { created_by = uid }) end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

local own_or_managed = kit.for_user(function(uid) return { ["$or"] = { { user_id = uid }, { org_id = created_orgs(uid) } } } end)

return {
  select = own_or_managed,
  insert = kit.for_user(function(uid) return { org_id = created_orgs(uid) } end),
  delete = own_or_managed,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { org_id = { "in_select", "organizations", "id", { created_by = A } } } },
    { action = "delete", ctx = { role = "authenticated", uid = A }, expect = { ["$or"] = {
      { user_id = A }, { org_id = { "in_select", "organizations", "id", { created_by = A } } } } } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
