-- Rate-limit rules, in order: each rule's match(req, ctx, route) answers
-- nil (does not apply), or a key and a limit { rate = n, per = seconds,
-- burst = n }, or a list of { key =, rate =, per =, burst =, name = } for
-- several windows.  Every window that applies must allow the request; the
-- counters are strata.limit's (GCRA, shared by the workers of a process),
-- or, with policy = "cluster" in the limit, one row per key in PostgreSQL
-- shared by every instance (sql/070_rate_limit_cells.sql).
-- Edit freely: this file hot-reloads like the rest of lua/.
local config = require("strata.config")
local agents = require("strata.agent_limits")

-- Brute force on /auth/v1: sign-in (token), sign-up, recovery and
-- verification, per client address (this instance) and per email address
-- (counted in PostgreSQL: shared by every instance), conf
-- auth_rate_limit_address and auth_rate_limit_email per 5 minutes (GoTrue's
-- defaults: 30 per address).  Refused with GoTrue's 429
-- over_request_rate_limit and Retry-After.
local AUTH_PATHS = { ["/auth/v1/token"] = true, ["/auth/v1/signup"] = true, ["/auth/v1/recover"] = true,
                     ["/auth/v1/verify"] = true }

return {
  { name = "auth", match = function(req)
      if req.method ~= "POST" or not AUTH_PATHS[req.path] then return nil end
      local windows, per_address, per_email = {}, config.auth.rate_limit_address, config.auth.rate_limit_email
      if per_address > 0 then
        windows[1] = { name = "auth_address", key = "auth-ip:" .. req.remote_addr, rate = per_address, per = 300 }
      end
      local body = req.json
      local email = type(body) == "table" and type(body.email) == "string" and body.email:lower()
      if email and per_email > 0 then
        windows[#windows + 1] = { name = "auth_email", key = "auth-email:" .. email, rate = per_email, per = 300,
                                  policy = "cluster" }
      end
      return windows
    end },

  -- Every authenticated user's budget for the whole API (conf rate_limit_user_per_minute).
  { name = "user", match = function(req, ctx)
      local n = config.rate_limit_user_per_minute
      if n > 0 and ctx.uid then return "user:" .. ctx.uid, { rate = n, per = 60 } end
    end },

  -- A stricter budget per client address for requests without a token.
  { name = "anon", match = function(req, ctx)
      local n = config.rate_limit_anon_per_minute
      if n > 0 and ctx.role == "anon" then return "ip:" .. req.remote_addr, { rate = n, per = 60 } end
    end },

  -- Routes that start AI work for an agent type (route.agent_type, or what
  -- route.agent_type_of(req) answers when the request names it): the
  -- rateLimit of the active provider's admin_config entry for that agent,
  -- per minute, hour and day.
  { name = "agent", match = function(req, ctx, route)
      local agent_type = route.agent_type_of and route.agent_type_of(req) or route.agent_type
      if agent_type then return agents.windows(agent_type, ctx.uid or ("ip:" .. req.remote_addr)) end
    end },
}
