-- AI execution routes (/v1/ai, issue 13): render a prompt, start a run,
-- execute a message (streamed or not), cancel a task.  The work is in
-- lua/strata/ai/; these handlers check the body and map errors to answers.
local cjson = require("cjson")
local input = require("strata.ai.input")
local render = require("strata.ai.render")
local json = require("strata.ai.json")

local NULL = cjson.null

-- An error value ({ status, code, message, details }) as the answer.
local function fail(err)
  return err.status or 500, { code = err.code or "error", message = err.message or "failed",
    details = err.details or NULL, hint = err.hint or NULL }
end

local function body_of(req)
  if type(req.json) ~= "table" then return nil, { status = 400, code = "invalid_input", message = "a JSON object body is required" } end
  return req.json
end

--- The rendered messages of a body ({prompt_id | messages, variables, context}).
local function rendered(req, body)
  local src, err = input.source(body)
  if not src then return nil, err end
  local ctx
  ctx, err = input.context(body.context)
  if not ctx then return nil, err end
  local vars
  vars, err = input.variables(body.variables)
  if not vars then return nil, err end
  local out
  out, err = render.render({ messages = src.messages, defaults = src.defaults, client = vars, context = ctx,
    uid = req.auth.uid })
  if not out then return nil, err end
  return out, src, ctx
end

return {
  { method = "POST", path = "/v1/ai/render",
    handler = function(req)
      local body, err = body_of(req)
      if not body then return fail(err) end
      local out
      out, err = rendered(req, body)
      if not out then return fail(err) end
      return json.answer(200, { messages = out.messages, provenance = out.provenance, missing = json.array(out.missing) })
    end },
}
