-- error_logs' resolution stamp (sql/160) tells a client's update from the
-- server's by the request's role claim, not by current_user: strata's REST
-- layer runs a caller's statements under the SQL role service_role when it
-- has compiled the caller's Lua policy into them (conf rest_rls off), and
-- the claims still say who the caller is.  Statements without request
-- settings (strata's own, an operator's psql) and service_role's are
-- trusted as before.
create or replace function public.strata_stamp_error_resolution() returns trigger
language plpgsql as $$
begin
  if coalesce(auth.role(), '') not in ('anon', 'authenticated') then
    return new;
  end if;
  if coalesce(new.resolved, false) and not coalesce(old.resolved, false) then
    new.resolved_by := auth.uid();
    new.resolved_at := localtimestamp;
  elsif not coalesce(new.resolved, false) then
    new.resolved_by := null;
    new.resolved_at := null;
  else
    new.resolved_by := old.resolved_by;
    new.resolved_at := old.resolved_at;
  end if;
  return new;
end
$$;
