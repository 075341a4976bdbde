-- The two benchmark routes of scripts/bench/run.sh, as strata serves them.
-- nginx serves the same two from scripts/bench/nginx.conf.in.
local policy = require("bench.policy")

return {
  {
    method = "GET", path = "/bench/hello",
    handler = function()
      return 200, { hello = "world" }
    end,
  },
  {
    -- strata's runtime has already decoded the body into req.json
    -- (Content-Type: application/json) and encodes the reply table.
    method = "POST", path = "/bench/policy",
    handler = function(req)
      return policy.evaluate(req.json)
    end,
  },
}
