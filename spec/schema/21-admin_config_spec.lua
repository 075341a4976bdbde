-- Seed 003 configuration tables (sql/021_admin_config.sql): admin_config and
-- model_config, their updated_at triggers and the one-default-per-provider
-- trigger.
local h = require("helpers")

local function key()
  return "spec_config_" .. h.uuid()
end

-- A model row with a fresh model_id; not the default unless asked.
local function model(provider, is_default)
  local id = "spec-model-" .. h.uuid()
  h.accepts(([[insert into public.model_config(model_id, name, provider, is_default,
                 input_pricing_per_million_tokens, output_pricing_per_million_tokens)
               values (%s, 'Spec model', %s, %s, 1.5, 2.5)]])
    :format(h.lit(id), h.lit(provider), is_default and "true" or "false"))
  return id
end

local function defaults_of(provider)
  local rows = assert(h.query(([[select model_id from public.model_config
                                  where provider = %s and is_default order by model_id]]):format(h.lit(provider))))
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.model_id end
  return ids
end

describe("admin_config", function()
  it("accepts a configuration under a new key", function()
    h.accepts(("insert into public.admin_config(config_key, config_data) values (%s, '{\"enabled\": true}')")
      :format(h.lit(key())))
  end)

  it("refuses a second configuration under the same key", function()
    local k = key()
    h.refuses("23505", ([[insert into public.admin_config(config_key, config_data) values (%s, '{}');
                          insert into public.admin_config(config_key, config_data) values (%s, '{}')]])
      :format(h.lit(k), h.lit(k)))
  end)

  it("refuses a configuration without data", function()
    h.refuses("23502", ("insert into public.admin_config(config_key) values (%s)"):format(h.lit(key())))
  end)

  it("moves updated_at forward on update (trigger_admin_config_updated_at)", function()
    local k = key()
    h.accepts(("insert into public.admin_config(config_key, config_data) values (%s, '{}')"):format(h.lit(k)))
    h.accepts(("update public.admin_config set config_data = '{\"enabled\": false}' where config_key = %s")
      :format(h.lit(k)))
    assert.equal("t", h.scalar(("select updated_at > created_at from public.admin_config where config_key = %s")
      :format(h.lit(k))))
  end)

  it("keeps updated_at as given on insert", function()
    local k = key()
    h.accepts(([[insert into public.admin_config(config_key, config_data, updated_at, created_at)
                 values (%s, '{}', '2020-01-01', '2020-01-01')]]):format(h.lit(k)))
    assert.equal("2020-01-01 00:00:00",
      h.scalar(("select updated_at::text from public.admin_config where config_key = %s"):format(h.lit(k))))
  end)
end)

describe("model_config", function()
  after_each(function()
    h.accepts("delete from public.model_config where model_id like 'spec-model-%' and not is_default")
  end)

  it("accepts a model with pricing, active and thinking-enabled by default", function()
    local id = model("openai")
    assert.same({ { is_active = "t", is_default = "f", thinking_enabled = "t", metadata = "{}" } },
      assert(h.query(([[select is_active, is_default, thinking_enabled, metadata::text as metadata
                          from public.model_config where model_id = %s]]):format(h.lit(id)))))
  end)

  it("refuses a provider other than google, openai or anthropic", function()
    h.refuses("23514", [[insert into public.model_config(model_id, name, provider,
                           input_pricing_per_million_tokens, output_pricing_per_million_tokens)
                         values ('spec-model-unknown-provider', 'x', 'mistral', 1, 1)]])
  end)

  it("refuses a second model with the same model_id", function()
    local id = model("anthropic")
    h.refuses("23505", ([[insert into public.model_config(model_id, name, provider,
                            input_pricing_per_million_tokens, output_pricing_per_million_tokens)
                          values (%s, 'again', 'anthropic', 1, 1)]]):format(h.lit(id)))
  end)

  it("refuses a model without output pricing", function()
    h.refuses("23502", [[insert into public.model_config(model_id, name, provider, input_pricing_per_million_tokens)
                         values ('spec-model-no-price', 'x', 'google', 1)]])
  end)

  it("moves updated_at forward on update (trigger_model_config_updated_at)", function()
    local id = model("google")
    h.accepts(("update public.model_config set description = 'changed' where model_id = %s"):format(h.lit(id)))
    assert.equal("t", h.scalar(("select updated_at > created_at from public.model_config where model_id = %s")
      :format(h.lit(id))))
  end)
end)

describe("ensure_single_default_model_per_provider()", function()
  -- These cases move the seeded defaults: each puts them back.
  local saved
  before_each(function()
    saved = { google = defaults_of("google"), openai = defaults_of("openai") }
  end)
  after_each(function()
    for provider, ids in pairs(saved) do
      for _, id in ipairs(ids) do
        h.accepts(("update public.model_config set is_default = true where model_id = %s"):format(h.lit(id)))
      end
      assert.same(ids, defaults_of(provider))
    end
    h.accepts("delete from public.model_config where model_id like 'spec-model-%' and not is_default")
  end)

  it("unsets the first default of a provider when a second default model is inserted", function()
    local first = model("google", true)
    local second = model("google", true)
    assert.same({ second }, defaults_of("google"))
    assert.equal("f", h.scalar(("select is_default from public.model_config where model_id = %s"):format(h.lit(first))))
  end)

  it("unsets the previous default when another model is updated to default", function()
    local first = model("openai", true)
    local second = model("openai")
    h.accepts(("update public.model_config set is_default = true where model_id = %s"):format(h.lit(second)))
    assert.same({ second }, defaults_of("openai"))
    assert.equal("f", h.scalar(("select is_default from public.model_config where model_id = %s"):format(h.lit(first))))
  end)

  it("leaves the defaults of other providers alone", function()
    local anthropic = defaults_of("anthropic")
    model("google", true)
    assert.same(anthropic, defaults_of("anthropic"))
  end)

  it("refuses to take the flag away from the only default of a provider", function()
    local only = model("google", true)
    h.refuses("P0001", ("update public.model_config set is_default = false where model_id = %s"):format(h.lit(only)))
    assert.same({ only }, defaults_of("google"))
  end)

  it("accepts other changes to the default model", function()
    local only = model("google", true)
    h.accepts(("update public.model_config set is_active = true, description = 'still default' where model_id = %s")
      :format(h.lit(only)))
    assert.same({ only }, defaults_of("google"))
  end)
end)

describe("admin and model config indexes", function()
  it("exist under the names the seed gives", function()
    assert.equal(7, tonumber(h.scalar([[select count(*) from pg_indexes where schemaname = 'public' and indexname in
      ('idx_admin_config_key', 'idx_admin_config_updated', 'idx_model_config_model_id', 'idx_model_config_provider',
       'idx_model_config_provider_active', 'idx_model_config_provider_default', 'idx_model_config_active')]])))
  end)

  it("has no admin-config validation trigger: that validation is Lua", function()
    assert.equal("0", h.scalar([[select count(*) from pg_trigger where tgname = 'trigger_validate_admin_config']]))
  end)
end)
