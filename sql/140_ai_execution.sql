-- AI execution (issue 13): the exact cost of a call, the start of an AI
-- task (with its Idempotency-Key) and its completion, which records in one
-- transaction the task, the run's messages and aggregates, the bound
-- Chat's messages and totals, and one usage_logs row per provider call.
-- strata's /v1/ai routes call these as service_role after checking with
-- the caller's row policies that the run is theirs (lua/strata/ai/).

-- Cost = tokens_input x input price + tokens_output x output price, prices
-- per million tokens (model_config, numeric(10,4)).  Numeric all the way:
-- the products are exact (scale 10), and the sum is rounded once, half away
-- from zero, to the cost columns' scale (numeric(10,6)).  A declared
-- return typmod is ignored by PostgreSQL, so the body casts.
create function public.ai_cost(p_tokens_input integer, p_tokens_output integer,
                               p_input_price numeric, p_output_price numeric)
returns numeric
language sql immutable parallel safe as $$
  select (coalesce(p_tokens_input, 0)::numeric * p_input_price * 0.000001
        + coalesce(p_tokens_output, 0)::numeric * p_output_price * 0.000001)::numeric(10, 6)
$$;

-- One key per user: a retried execution with the same Idempotency-Key finds
-- the task of the first (ai_task_begin), whatever became of it.
create unique index ai_tasks_idempotency_key on public.ai_tasks
  (user_id, (request_data ->> 'idempotency_key'))
  where request_data ? 'idempotency_key';

-- The seed's aggregate trigger recounts the run from its tasks; two tasks
-- of one run completing at once would each recount without the other's
-- uncommitted change, and the later commit would write a total missing
-- the earlier task.  Locking the run first serialises the recounts: the
-- lock waits for the other transaction's commit, and the recount, a new
-- statement, then sees its task.  FOR NO KEY UPDATE, not FOR UPDATE: a
-- task's insert already holds FOR KEY SHARE on its run (the foreign key's
-- check), which FOR UPDATE would conflict with, so two inserts into one run
-- would deadlock; NO KEY UPDATE conflicts only with itself.  (Everything
-- that changes a task locks the task row first, then the run: one order.)
create or replace function public.update_run_aggregates_from_task()
returns trigger
language plpgsql
as $$
begin
  perform 1 from public.ai_runs r
   where r.id = new.run_id or (tg_op = 'UPDATE' and r.id = old.run_id)
   order by r.id
     for no key update;
  update public.ai_runs r
  set task_count = s.task_count,
      total_tokens = s.total_tokens,
      total_cost = s.total_cost
  from (
    select runs.run_id,
           count(t.id)::integer as task_count,
           coalesce(sum(t.tokens_total), 0)::integer as total_tokens,
           coalesce(sum(t.cost), 0) as total_cost
    from (select new.run_id
          union
          select old.run_id where tg_op = 'UPDATE') as runs (run_id)
    left join public.ai_tasks t on t.run_id = runs.run_id
    group by runs.run_id
  ) s
  where r.id = s.run_id;
  return null;
end;
$$;

-- Starts a task of p_run_id for p_user_id: p_task holds service,
-- task_name, provider, endpoint, model, model_id and request_data.  With
-- p_idempotency_key, an existing task of the user under that key is
-- answered instead (replayed = true), also when a concurrent call with the
-- same key commits first (the unique index makes this insert wait for it).
create function public.ai_task_begin(p_user_id uuid, p_run_id uuid, p_idempotency_key text, p_task jsonb)
returns table (task jsonb, replayed boolean)
language plpgsql
as $$
declare
  t public.ai_tasks;
  req jsonb := coalesce(p_task -> 'request_data', '{}'::jsonb);
begin
  if p_idempotency_key is not null then
    req := req || jsonb_build_object('idempotency_key', p_idempotency_key);
    select * into t from public.ai_tasks a
     where a.user_id = p_user_id and a.request_data ? 'idempotency_key'
       and a.request_data ->> 'idempotency_key' = p_idempotency_key;
    if found then
      return query select to_jsonb(t), true;
      return;
    end if;
  end if;
  insert into public.ai_tasks (run_id, user_id, task_id, service, task_name, provider, endpoint, model,
                               model_id, request_data, status)
  values (p_run_id, p_user_id, gen_random_uuid(), coalesce(p_task ->> 'service', 'chat'),
          coalesce(p_task ->> 'task_name', 'message'), p_task ->> 'provider', p_task ->> 'endpoint',
          p_task ->> 'model', (p_task ->> 'model_id')::uuid, req, 'pending')
  on conflict do nothing
  returning * into t;
  if not found then
    select * into t from public.ai_tasks a
     where a.user_id = p_user_id and a.request_data ? 'idempotency_key'
       and a.request_data ->> 'idempotency_key' = p_idempotency_key;
    return query select to_jsonb(t), true;
    return;
  end if;
  return query select to_jsonb(t), false;
end;
$$;

-- One usage_logs row for one provider call.
create function public.ai_usage_log(p_user_id uuid, p_chat_id uuid, p_agent_type text, p_call jsonb,
                                    p_input_price numeric, p_output_price numeric, p_cost numeric)
returns void
language sql
as $$
  insert into public.usage_logs (user_id, chat_id, agent_type, model_used, provider, input_tokens, output_tokens,
                                 total_tokens, input_cost, output_cost, total_cost, request_timestamp,
                                 response_timestamp, duration_ms, metadata)
  values (p_user_id, p_chat_id, coalesce(p_agent_type, 'chat_model_agent'), p_call ->> 'model', p_call ->> 'provider',
          coalesce((p_call ->> 'tokens_input')::integer, 0), coalesce((p_call ->> 'tokens_output')::integer, 0),
          coalesce((p_call ->> 'tokens_input')::integer, 0) + coalesce((p_call ->> 'tokens_output')::integer, 0),
          public.ai_cost((p_call ->> 'tokens_input')::integer, 0, coalesce(p_input_price, 0), 0),
          public.ai_cost(0, (p_call ->> 'tokens_output')::integer, 0, coalesce(p_output_price, 0)),
          coalesce(p_cost, 0),
          (now() at time zone 'UTC') - make_interval(secs => coalesce((p_call ->> 'duration_ms')::integer, 0) / 1000.0),
          now() at time zone 'UTC', (p_call ->> 'duration_ms')::integer,
          jsonb_strip_nulls(jsonb_build_object('status', p_call ->> 'status', 'error', p_call -> 'error',
            'task_id', p_call ->> 'task_id', 'run_id', p_call ->> 'run_id')))
$$;

-- Completes task p_task_id once (a task already completed, failed or
-- cancelled is answered as it is: a retried completion charges nothing).
-- p_result: status (completed | failed | cancelled), tokens_input,
-- tokens_output, response_text, response_data, response_errors,
-- tool_updates, time_to_first_token, total_time, provider, model,
-- model_id, agent_type, user_message ({role, content}), attempts (the
-- calls before the last: failed ones {provider, model, status, error,
-- duration_ms}, and the rounds of a tool conversation {status =
-- 'tool_round', provider, model, tokens_input, tokens_output,
-- duration_ms}) and duration_ms of the last call.  The task's tokens are
-- the totals of all its calls.
-- In this one transaction: the task's figures and cost; a usage_logs row
-- per call; when completed, the user and assistant messages appended to
-- the run (the trigger recounts its aggregates) and, for a run bound to a
-- Chat (source_type 'chat'), written as Message_v2 rows and added to the
-- Chat's totals.  Answers the task row.
create function public.ai_task_complete(p_task_id uuid, p_result jsonb)
returns jsonb
language plpgsql
as $$
declare
  t public.ai_tasks;
  run public.ai_runs;
  m public.model_config;
  st text := p_result ->> 'status';
  tin integer := (p_result ->> 'tokens_input')::integer;
  tout integer := (p_result ->> 'tokens_output')::integer;
  v_cost numeric;
  chat uuid;
  a jsonb;
  answer text := coalesce(p_result ->> 'response_text', '');
  cum_in integer := 0;
  cum_out integer := 0;
  so_far numeric;
  charged numeric := 0;
begin
  if st is null or st not in ('completed', 'failed', 'cancelled') then
    raise exception 'ai_task_complete: status must be completed, failed or cancelled, not %', coalesce(st, 'null')
      using errcode = '22023';
  end if;
  select * into t from public.ai_tasks where task_id = p_task_id for update;
  if not found then
    raise exception 'ai_task_complete: no task %', p_task_id using errcode = 'P0002';
  end if;
  if t.status in ('completed', 'failed', 'cancelled') then
    return to_jsonb(t);
  end if;
  select * into m from public.model_config where id = coalesce((p_result ->> 'model_id')::uuid, t.model_id);
  v_cost := public.ai_cost(tin, tout, coalesce(m.input_pricing_per_million_tokens, 0),
                           coalesce(m.output_pricing_per_million_tokens, 0));

  update public.ai_tasks set
    status = st,
    provider = coalesce(p_result ->> 'provider', provider),
    model = coalesce(p_result ->> 'model', model),
    model_id = coalesce((p_result ->> 'model_id')::uuid, model_id),
    tokens_input = tin,
    tokens_output = tout,
    tokens_total = case when tin is null and tout is null then null else coalesce(tin, 0) + coalesce(tout, 0) end,
    cost = v_cost,
    response_text = p_result ->> 'response_text',
    response_data = p_result -> 'response_data',
    response_errors = p_result -> 'response_errors',
    tool_updates = p_result -> 'tool_updates',
    response_complete = (st = 'completed'),
    response_metadata = coalesce(response_metadata, '{}'::jsonb)
      || jsonb_build_object('attempts', coalesce(p_result -> 'attempts', '[]'::jsonb)),
    time_to_first_token = (p_result ->> 'time_to_first_token')::integer,
    total_time = (p_result ->> 'total_time')::integer,
    completed_at = now()
  where id = t.id
  returning * into t;

  -- The run is locked by the aggregate trigger of the update above.
  select * into run from public.ai_runs where id = t.run_id;
  if run.source_type = 'chat' and run.source_id is not null
     and exists (select 1 from public."Chat" c where c.id = run.source_id) then
    chat := run.source_id;
  end if;

  -- A failed call before a fallback costs nothing.  The rounds of a tool
  -- conversation (status 'tool_round', then the last call) are priced so
  -- that their rows add up to the task's cost exactly: each row is the
  -- cost of the tokens so far minus the cost of those before it.
  for a in select * from jsonb_array_elements(coalesce(p_result -> 'attempts', '[]'::jsonb)) loop
    a := a || jsonb_build_object('task_id', t.task_id, 'run_id', t.run_id);
    if a ->> 'status' = 'tool_round' then
      cum_in := cum_in + coalesce((a ->> 'tokens_input')::integer, 0);
      cum_out := cum_out + coalesce((a ->> 'tokens_output')::integer, 0);
      so_far := public.ai_cost(cum_in, cum_out, coalesce(m.input_pricing_per_million_tokens, 0),
                               coalesce(m.output_pricing_per_million_tokens, 0));
      perform public.ai_usage_log(t.user_id, chat, p_result ->> 'agent_type', a,
        m.input_pricing_per_million_tokens, m.output_pricing_per_million_tokens, so_far - charged);
      charged := so_far;
    else
      perform public.ai_usage_log(t.user_id, chat, p_result ->> 'agent_type', a, null, null, 0);
    end if;
  end loop;
  perform public.ai_usage_log(t.user_id, chat, p_result ->> 'agent_type',
    jsonb_build_object('provider', t.provider, 'model', t.model, 'status', st,
      'tokens_input', case when tin is null then null else tin - cum_in end,
      'tokens_output', case when tout is null then null else tout - cum_out end,
      'duration_ms', coalesce(p_result ->> 'duration_ms', p_result ->> 'total_time'),
      'error', p_result -> 'response_errors', 'task_id', t.task_id, 'run_id', t.run_id),
    m.input_pricing_per_million_tokens, m.output_pricing_per_million_tokens, v_cost - charged);

  if st = 'completed' then
    update public.ai_runs
       set messages = messages || jsonb_build_array(
             coalesce(p_result -> 'user_message', '{}'::jsonb),
             jsonb_build_object('role', 'assistant', 'content', answer, 'task_id', t.task_id))
     where id = t.run_id;
    if chat is not null then
      insert into public."Message_v2" ("chatId", role, parts, "createdAt")
      values (chat, 'user', json_build_array(json_build_object('type', 'text',
                'text', coalesce(p_result -> 'user_message' ->> 'content', ''))),
              t.created_at at time zone 'UTC');
      insert into public."Message_v2" ("chatId", role, parts, "createdAt", model_used, input_tokens, output_tokens, cost)
      values (chat, 'assistant', json_build_array(json_build_object('type', 'text', 'text', answer)),
              clock_timestamp() at time zone 'UTC', t.model, tin, tout, v_cost);
    end if;
  end if;
  if chat is not null then
    -- Increments: an UPDATE re-reads the row's latest version under its
    -- lock, so concurrent completions add up.
    update public."Chat"
       set total_input_tokens = coalesce(total_input_tokens, 0) + coalesce(tin, 0),
           total_output_tokens = coalesce(total_output_tokens, 0) + coalesce(tout, 0),
           total_cost = coalesce(total_cost, 0) + v_cost,
           updated_at = now()
     where id = chat;
  end if;
  return to_jsonb(t);
end;
$$;

-- The server's alone (strata calls them as service_role); a client could
-- otherwise complete its own tasks with invented figures.
revoke execute on function public.ai_task_begin(uuid, uuid, text, jsonb) from public;
revoke execute on function public.ai_task_complete(uuid, jsonb) from public;
revoke execute on function public.ai_usage_log(uuid, uuid, text, jsonb, numeric, numeric, numeric) from public;
grant execute on function public.ai_task_begin(uuid, uuid, text, jsonb) to service_role;
grant execute on function public.ai_task_complete(uuid, jsonb) to service_role;
grant execute on function public.ai_usage_log(uuid, uuid, text, jsonb, numeric, numeric, numeric) to service_role;
