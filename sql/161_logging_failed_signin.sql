-- Issue 14: a failed sign-in is logged even when no user has the address
-- tried (seed 003 lists failed sign-ins among the auth events).  Such a
-- row has no user: user_activity_logs.user_id may be NULL for a failed
-- auth_login only; every other row still names its user.
alter table public.user_activity_logs alter column user_id drop not null;
alter table public.user_activity_logs add constraint user_activity_logs_user_required
  check (user_id is not null or (activity_type = 'auth_login' and success is false));
