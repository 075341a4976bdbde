-- Auth hooks: the rules a team sets for sign-up and tokens, hot-reloaded
-- with the rest of lua/.  Each hook is optional.
--
--   before_user_created(user) -> true | false, message[, status[, error_code]]
--       user = { email, user_metadata }; refuse a sign-up (e.g. a domain
--       allowlist) with message, status (default 403) and error_code
--       (default "unknown", as GoTrue answers a hook's refusal).
--   custom_access_token(claims, user) -> claims
--       change or add claims (Supabase's Custom Access Token Hook); aud,
--       exp, iat, sub, role, aal and session_id must stay.
--   send_email(kind, user, link)
--       kind: "signup", "recovery" or "email_change"; there is no mail
--       server here: the default logs the link.
-- `examples` run at every reload (strata.checks.auth_hooks): a hook that
-- breaks them is not swapped in.
local log = require("strata.log")

return {
  before_user_created = function(user)
    return true
  end,

  custom_access_token = function(claims, user)
    return claims
  end,

  send_email = function(kind, user, link)
    log.info("auth: email link", { kind = kind, email = user.email, link = link })
  end,

  examples = {
    { hook = "before_user_created", user = { email = "ada@example.com", user_metadata = {} }, expect = true },
    { hook = "custom_access_token", claims = { sub = "u1", role = "authenticated" }, user = {},
      expect = { sub = "u1", role = "authenticated" } },
  },
}
