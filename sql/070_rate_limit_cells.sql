-- Rate-limit cells shared by every strata instance on this database: the
-- `cluster` policy of lua/ratelimits.lua (lua/strata/ratelimit.lua).  The
-- same GCRA as core/limiter.c (see core/limiter.h): a rule "rate per period,
-- bursts of up to burst" gives T = period / rate and W = burst * T; a key
-- stores its TAT; a take at `now` sees the debt d = max(TAT, now) - now and
-- is allowed when d + T <= W, and then TAT becomes now + d + T.
--
-- Times are whole microseconds since the epoch on the database server's
-- clock (clock_timestamp()), so every instance judges by one clock; T is
-- period / rate rounded down to a microsecond (at most 1 µs per interval
-- generous).  A row whose TAT <= now is the same as no row:
-- strata_rate_limit_sweep() deletes them.
--
-- Unlogged: no WAL per request (the cost that matters here); after a crash
-- of PostgreSQL the table is empty, i.e. every key starts with a fresh budget.
create unlogged table public.strata_rate_limits (
  key text primary key,
  tat bigint not null -- theoretical arrival time, µs since the epoch
) with (fillfactor = 50); -- room for HOT updates: tat is in no index

-- One take (p_consume) or peek of p_key under "p_rate per p_period_ms,
-- bursts of p_burst".  allowed: the request is allowed (and, for a take,
-- counted); remaining: further requests allowed at this instant; reset_ms:
-- until the key is idle again; retry_after_ms: until a take would be
-- allowed (0 when allowed).  Durations are rounded up to the millisecond.
--
-- The check and the increment are one statement, INSERT ... ON CONFLICT DO
-- UPDATE ... WHERE <allowed>: PostgreSQL runs it on the newest version of
-- the key's row under that row's lock (a concurrent take waits and then
-- re-evaluates against the TAT just written), so concurrent takes never
-- allow more than the budget, unlike reading then incrementing.  A refused
-- take writes nothing; its row stays locked by the statement until the end
-- of the transaction, so reading its TAT afterwards (for Retry-After) sees
-- exactly the value the refusal was judged on.  (PostgreSQL 15's RETURNING
-- sees only the new row, hence the WHERE rather than a CASE plus RETURNING.)
create function public.strata_rate_limit_take(p_key text, p_rate int, p_period_ms bigint,
    p_burst int, p_consume bool default true)
  returns table (allowed bool, remaining int, reset_ms bigint, retry_after_ms bigint)
  language plpgsql volatile
  set search_path = public, pg_temp
as $$
declare
  v_now bigint := (extract(epoch from clock_timestamp()) * 1000000)::bigint;
  v_t bigint;
  v_w bigint;
  v_tat bigint;
  v_debt bigint;
begin
  if p_key is null or p_key = '' or p_rate is null or p_rate < 1 or p_burst is null or p_burst < 1
      or p_period_ms is null or p_period_ms < 1 or p_period_ms > 4611686018427387 -- 2^62 µs
      or p_period_ms * 1000 < p_rate then
    raise exception 'strata_rate_limit_take: rate, period and burst must be positive (period_ms * 1000 >= rate)'
      using errcode = '22023';
  end if;
  v_t := p_period_ms * 1000 / p_rate;
  if p_burst > 4611686018427387904 / v_t then
    raise exception 'strata_rate_limit_take: burst * period / rate is out of range' using errcode = '22023';
  end if;
  v_w := p_burst * v_t;

  if p_consume then
    -- A new key is always allowed (debt 0, T <= W because burst >= 1).
    insert into strata_rate_limits as c (key, tat) values (p_key, v_now + v_t)
    on conflict (key) do update
      set tat = greatest(c.tat, v_now) + v_t
      where greatest(c.tat, v_now) - v_now + v_t <= v_w
    returning c.tat into v_tat;
    if found then
      v_debt := v_tat - v_now; -- d + T after the take
      return query select true, ((v_w - v_debt) / v_t)::int, (v_debt + 999) / 1000, 0::bigint;
      return;
    end if;
  end if;

  select c.tat into v_tat from strata_rate_limits c where c.key = p_key;
  v_debt := greatest(coalesce(v_tat, v_now), v_now) - v_now;
  return query select
    v_debt + v_t <= v_w,
    (case when v_debt <= v_w then (v_w - v_debt) / v_t else 0 end)::int,
    (v_debt + 999) / 1000,
    (case when v_debt + v_t <= v_w then 0 else (v_debt + v_t - v_w + 999) / 1000 end)::bigint;
end
$$;

-- Deletes the keys that are idle (TAT <= now): the same as absent.  Safe
-- beside concurrent takes (a row a take just moved forward is re-checked
-- and kept).  Answers how many rows went.
create function public.strata_rate_limit_sweep() returns bigint
  language sql volatile
  set search_path = public, pg_temp
as $$
  with gone as (
    delete from strata_rate_limits
     where tat <= (extract(epoch from clock_timestamp()) * 1000000)::bigint
    returning 1)
  select count(*) from gone
$$;
