-- Rows of public.model_config (seed 003): a known provider, a model id and
-- display name that fit their columns, prices per million tokens that are
-- numbers >= 0 fitting DECIMAL(10,4), and metadata an object whose
-- contextWindow / maxOutputTokens, when given, are positive integers with
-- maxOutputTokens <= contextWindow.  Other columns are left to PostgreSQL.
-- The REST layer runs validate on every object of a POST (insert, upsert)
-- and on the fields present in a PATCH (ctx.partial).

local S = require("strata.schema")

local PROVIDERS = { "google", "openai", "anthropic" }

-- DECIMAL(10,4): at most 6 digits before the point.
local price = { type = "numeric", required = true, ge = 0, lt = 1000000 }

local spec = {
  type = "record",
  fields = {
    { model_id = { type = "string", required = true, len_min = 1, len_max = 100, pattern = "^[%w][%w%._:/%-]*$",
      msg = "must be 1 to 100 letters, digits and . _ : / - starting with a letter or digit" } },
    { name = { type = "string", required = true, len_min = 1, len_max = 200 } },
    { description = { type = "string" } },
    { provider = { type = "string", required = true, one_of = PROVIDERS } },
    { is_active = { type = "boolean" } },
    { is_default = { type = "boolean" } },
    { thinking_enabled = { type = "boolean" } },
    { input_pricing_per_million_tokens = price },
    { output_pricing_per_million_tokens = price },
    { metadata = { type = "record",
      fields = {
        { contextWindow = { type = "integer", gt = 0 } },
        { maxOutputTokens = { type = "integer", gt = 0 } },
      },
      checks = { S.ordered({ "maxOutputTokens", "contextWindow" }) },
    } },
  },
}

local GOOD = {
  model_id = "gemini-2.0-flash", name = "Gemini 2.0 Flash", description = "Fast, efficient model for most tasks",
  provider = "google", is_active = true, is_default = true, thinking_enabled = true,
  input_pricing_per_million_tokens = 0.075, output_pricing_per_million_tokens = 0.3,
  metadata = { contextWindow = 1048576, maxOutputTokens = 8192 },
}

local function with(changes)
  local row = {}
  for k, v in pairs(GOOD) do row[k] = v end
  for k, v in pairs(changes) do row[k] = v end
  return row
end

local M = S.validator(spec, {
  { input = GOOD, valid = true },
  -- Prices as decimal strings (what PostgreSQL's numeric accepts), no metadata.
  { input = { model_id = "gpt-4o-mini", name = "GPT-4o Mini", provider = "openai",
      input_pricing_per_million_tokens = "0.1500", output_pricing_per_million_tokens = "0.6000" }, valid = true },
  { input = with({ provider = "anthropic", model_id = "claude-3-opus-20240229", is_active = false,
      input_pricing_per_million_tokens = 0, metadata = {} }), valid = true },
  -- PATCH of the price alone.
  { input = { input_pricing_per_million_tokens = 1.25 }, ctx = { partial = true }, valid = true },
  { input = with({ provider = "mistral" }), errors = {
    { path = "/provider", message = "must be one of google, openai, anthropic (got 'mistral')" } } },
  { input = with({ input_pricing_per_million_tokens = -1, output_pricing_per_million_tokens = "free" }), errors = {
    { path = "/input_pricing_per_million_tokens", message = "must be at least 0" },
    { path = "/output_pricing_per_million_tokens", message = "expected a number or a decimal string, got a string" } } },
  { input = with({ metadata = { contextWindow = 0, maxOutputTokens = 4096.5 } }), errors = {
    { path = "/metadata/contextWindow", message = "must be greater than 0" },
    { path = "/metadata/maxOutputTokens", message = "expected an integer, got 4096.5" } } },
  { input = with({ metadata = { contextWindow = 8192, maxOutputTokens = 16384 } }), errors = {
    { path = "/metadata/contextWindow", message = "must be at least maxOutputTokens (16384)" } } },
  { input = { name = "No id" }, errors = {
    { path = "/model_id", message = "is required" },
    { path = "/provider", message = "is required" },
    { path = "/input_pricing_per_million_tokens", message = "is required" },
    { path = "/output_pricing_per_million_tokens", message = "is required" } } },
})

M.providers = PROVIDERS
M.spec = spec

return M
