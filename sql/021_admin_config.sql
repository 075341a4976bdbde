-- Seed 003 (chat platform), configuration tables: admin_config (agent
-- configurations keyed "{agent_type}_{provider}", plus app_settings and
-- logging_settings) and model_config (models with pricing, one default per
-- provider), their updated_at triggers, the one-default-per-provider trigger
-- and their indexes.  Seed rows are in 029_seed_data.sql.

create table public.admin_config (
  id uuid primary key default gen_random_uuid(),
  config_key varchar(100) unique not null,
  config_data jsonb not null,
  -- No FK: auth.users is another schema in Supabase; the seed's
  -- handle_auth_user_deletion() clears it instead (023_functions.sql).
  updated_by uuid,
  updated_at timestamp default now(),
  created_at timestamp default now()
);

create table public.model_config (
  id uuid primary key default gen_random_uuid(),
  model_id varchar(100) unique not null,
  name varchar(200) not null,
  description text,
  provider varchar(50) not null
    check (provider in ('google', 'openai', 'anthropic')),
  is_active boolean default true,
  is_default boolean default false,
  thinking_enabled boolean default true,
  input_pricing_per_million_tokens decimal(10, 4) not null,
  output_pricing_per_million_tokens decimal(10, 4) not null,
  metadata jsonb default '{}',
  created_at timestamp default now(),
  updated_at timestamp default now()
);

create function public.update_admin_config_timestamp() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger trigger_admin_config_updated_at
  before update on public.admin_config
  for each row execute function public.update_admin_config_timestamp();

create function public.update_model_config_timestamp() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger trigger_model_config_updated_at
  before update on public.model_config
  for each row execute function public.update_model_config_timestamp();

-- Making a model the default of its provider demotes the previous default;
-- taking the flag away from the only default of a provider is refused, so
-- a provider that has a default keeps one.
create function public.ensure_single_default_model_per_provider() returns trigger
language plpgsql as $$
begin
  if new.is_default then
    -- Compared by model_id, not id: an INSERT ... ON CONFLICT (model_id) DO
    -- NOTHING of an existing default carries a fresh id and must not demote
    -- the very row it conflicts with.
    update public.model_config
       set is_default = false
     where provider = new.provider
       and model_id <> new.model_id
       and is_default;
  end if;

  -- The demotion issued just above re-enters this trigger one level deeper;
  -- the new default is not visible yet at that point, so the guard only
  -- applies to the statement that started it all (depth 1).
  if tg_op = 'UPDATE' and pg_trigger_depth() = 1 and old.is_default
     and (new.is_default is not true or new.provider is distinct from old.provider)
     and not exists (select 1
                       from public.model_config
                      where provider = old.provider
                        and model_id <> old.model_id
                        and is_default) then
    raise exception 'Cannot remove default flag - at least one model must be default for provider %', old.provider
      using hint = 'Make another model of this provider the default instead.';
  end if;

  return new;
end
$$;

create trigger trigger_ensure_single_default_model
  before insert or update on public.model_config
  for each row execute function public.ensure_single_default_model_per_provider();

-- Not created: the seed's trigger_validate_admin_config /
-- validate_admin_config_data() (agent configs need enabled + rateLimit
-- {perMinute, perHour, perDay}, tool agents need tools, ...).  In strata
-- admin-config validation is Lua (lua/validators/), a later issue.

-- idx_admin_config_key and idx_model_config_model_id duplicate the UNIQUE
-- indexes; they are kept because the seed names them.
create index idx_admin_config_key on public.admin_config(config_key);
create index idx_admin_config_updated on public.admin_config(updated_at desc);

create index idx_model_config_model_id on public.model_config(model_id);
create index idx_model_config_provider on public.model_config(provider);
create index idx_model_config_provider_active on public.model_config(provider, is_active);
create index idx_model_config_provider_default on public.model_config(provider, is_default)
  where is_default = true;
create index idx_model_config_active on public.model_config(is_active)
  where is_active = true;

-- Left to Lua (lua/policies/public/), not created here: the seed's RLS
-- policies "Admins can read admin_config", "Admins can update admin_config",
-- "Authenticated users can read model_config" and "Admins can manage
-- model_config".
