-- Credentials are never readable or writable through the API (seed 004: "never expose credential hashes via API"), not even an agent's own: only service_role reads or writes them.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.

-- Rows hold credential_hash and salt, hidden below as a second fence: no
-- client role gets any row at all; the server (service_role, which bypasses
-- policies) issues, checks and rotates credentials.  select answers
-- false for every client rather than being left out only so that the rule
-- has examples; insert, update and delete are left out (403 / 401).
local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  hidden = { "credential_hash", "salt" },
  select = function(ctx) return ctx.role == "service_role" end,
  examples = {
    { action = "select", ctx = { role = "service_role", claims = {} }, expect = true },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = false },
    { action = "select", ctx = { role = "authenticated", uid = C, is_admin = true, claims = {} }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
