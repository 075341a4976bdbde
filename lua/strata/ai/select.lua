-- strata.ai.select: which provider and model answer an agent's call.
-- The provider is app_settings.activeProvider; its agent configuration
-- admin_config "{agent_type}_{provider}" must exist with enabled = true,
-- else the call is refused with 403 naming the key (fail closed).  The
-- fallbacks are the other providers of app_settings.availableProviders
-- whose configuration is enabled, in that order.  The model: the request's
-- model_id (model_config.model_id or id) when it is active and of that
-- provider, else the provider's default (is_default).
--
--   select.candidates(agent_type, model_id) -> { {provider, config, model}, ... } | nil, err

local pg = require("strata.pg")
local admin_config = require("strata.admin_config")

local type, ipairs = type, ipairs

local M = {}

local function refuse(status, code, message)
  return nil, { status = status, code = code, message = message }
end

local function enabled(cfg) return type(cfg) == "table" and cfg.enabled == true end

local MODELS_SQL = [[select id::text, model_id, provider, is_default from public.model_config
  where is_active is true order by provider, is_default desc, model_id]]

local function model_for(models, provider, wanted)
  local default
  for _, m in ipairs(models) do
    if m.provider == provider then
      if wanted and (m.model_id == wanted or m.id == wanted) then return m end
      if m.is_default and not default then default = m end
    end
  end
  return default
end

function M.candidates(agent_type, model_id)
  local all = admin_config.all()
  local app = all.app_settings
  local active = type(app) == "table" and app.activeProvider
  if type(active) ~= "string" then
    return refuse(403, "ai_not_configured", "admin_config app_settings has no activeProvider")
  end
  local key = agent_type .. "_" .. active
  if all[key] == nil then return refuse(403, "agent_not_configured", ("admin_config %s is missing"):format(key)) end
  if not enabled(all[key]) then return refuse(403, "agent_disabled", ("admin_config %s is not enabled"):format(key)) end
  local models, err = pg.query(MODELS_SQL)
  if not models then return nil, { status = 503, code = "unavailable", message = err.message } end
  local out = {}
  local function add(provider)
    local m = model_for(models, provider, model_id)
    if m then out[#out + 1] = { provider = provider, config = all[agent_type .. "_" .. provider], model = m } end
  end
  add(active)
  if #out == 0 then
    return refuse(403, "no_model", ("model_config has no active default model for provider %s"):format(active))
  end
  if type(app.availableProviders) == "table" then
    for _, p in ipairs(app.availableProviders) do
      if p ~= active and type(p) == "string" and enabled(all[agent_type .. "_" .. p]) then add(p) end
    end
  end
  return out
end

return M
