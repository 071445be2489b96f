-- Usage a billing page can read: `usage_metrics` holds one row per user, organisation, UTC
-- day, provider, model and action, and `usage_metrics_monthly` the same per month; both are
-- kept equal to the sums of `usage_logs` for their keys by triggers on usage_logs. The
-- triggers run in the transaction that writes the usage row (for embeddings, the one that
-- settles the file), so no worker, crash or retry can make them disagree: a usage row that
-- is written is counted, once, and one that is rolled back never was. Deletes and updates of
-- usage_logs are followed too (as negative deltas). `monthly_usage_summary` and
-- `current_day_usage` are plain views over them (security_invoker, so RLS applies to the
-- caller). The monthly table exists because summing an organisation's month from the daily
-- rows took 20 ms at p95 for an organisation with 45 % of a million usage rows (the README
-- has the figures); from the monthly rows it reads one row per member and model.
create table if not exists usage_metrics (
  id                 uuid primary key default gen_random_uuid(),
  user_id            uuid not null,
  -- Null for personal files (and searches of one's own files).
  org_id             uuid,
  -- The UTC day of usage_logs.created_at.
  day                date not null,
  month              date not null generated always as (date_trunc('month', day::timestamp)::date) stored,
  provider           text not null,
  model              text not null,
  -- usage_logs.action: 'embedding' or 'search'.
  action             text not null,
  tokens             bigint not null default 0,
  -- Of `tokens`, those counted by ragworker because the provider's answer never came (a
  -- killed worker's requests in flight): usage_logs.metadata.unconfirmed_tokens.
  unconfirmed_tokens bigint not null default 0,
  -- Provider requests (usage_logs.metadata.requests).
  requests           bigint not null default 0,
  -- Files whose processing completed with embedding spend (an embedding usage row with
  -- outcome 'completed'): a file retried after a crash counts once, a re-embedded one again.
  files              bigint not null default 0,
  cost_usd           numeric(20, 10) not null default 0,
  -- usage_logs rows counted here.
  events             bigint not null default 0,
  updated_at         timestamptz not null default now(),
  constraint usage_metrics_key unique nulls not distinct (user_id, org_id, day, provider, model, action)
);
create index if not exists usage_metrics_user_month_idx on usage_metrics (user_id, month);
create index if not exists usage_metrics_org_month_idx on usage_metrics (org_id, month)
  where org_id is not null;

create table if not exists usage_metrics_monthly (
  id                 uuid primary key default gen_random_uuid(),
  user_id            uuid not null,
  org_id             uuid,
  -- The month's first day (UTC).
  month              date not null,
  provider           text not null,
  model              text not null,
  action             text not null,
  tokens             bigint not null default 0,
  unconfirmed_tokens bigint not null default 0,
  requests           bigint not null default 0,
  files              bigint not null default 0,
  cost_usd           numeric(20, 10) not null default 0,
  events             bigint not null default 0,
  updated_at         timestamptz not null default now(),
  constraint usage_metrics_monthly_key
    unique nulls not distinct (user_id, month, org_id, provider, model, action)
);
create index if not exists usage_metrics_monthly_org_idx on usage_metrics_monthly (org_id, month)
  where org_id is not null;

-- Adds the usage rows of one statement (its transition table, named `delta` by every
-- trigger below) to usage_metrics and usage_metrics_monthly, times the trigger's argument:
-- 1 for rows written, -1 for rows deleted (an update is both). One upsert per key, in key
-- order, the daily rows before the monthly ones, so transactions adding several keys take
-- the rows' locks in one global order and cannot deadlock. SECURITY DEFINER: whoever may
-- write usage_logs (the worker's role) keeps the sums in step without a grant on them, and
-- nobody else can write them. Static SQL, so its plans are cached per session (formatting
-- the statement per call tripled its cost). The metadata counts are inline: a helper
-- function would have its search_path pinned like every ragworker function, and a pinned
-- function is never inlined (it cost 70 µs a row). A count that is not a JSON number
-- (metadata is free-form) counts as none rather than failing the usage row.
create or replace function ragworker_usage_metrics_apply() returns trigger
language plpgsql security definer as $$
declare
  factor integer := tg_argv[0]::integer;
begin
  insert into public.usage_metrics as m
    (user_id, org_id, day, provider, model, action, tokens, unconfirmed_tokens, requests,
     files, cost_usd, events)
  select user_id, org_id, (created_at at time zone 'UTC')::date, provider, model, action,
         factor * sum(tokens_used),
         factor * coalesce(sum(case when jsonb_typeof(metadata -> 'unconfirmed_tokens') = 'number'
                                    then (metadata ->> 'unconfirmed_tokens')::numeric end), 0),
         factor * coalesce(sum(case when jsonb_typeof(metadata -> 'requests') = 'number'
                                    then (metadata ->> 'requests')::numeric end), 0),
         factor * count(*) filter (where action = 'embedding'
                                     and metadata ->> 'outcome' = 'completed'),
         factor * sum(cost_usd),
         factor * count(*)
  from delta
  group by 1, 2, 3, 4, 5, 6
  order by 1, 2, 3, 4, 5, 6
  on conflict on constraint usage_metrics_key do update set
    tokens = m.tokens + excluded.tokens,
    unconfirmed_tokens = m.unconfirmed_tokens + excluded.unconfirmed_tokens,
    requests = m.requests + excluded.requests,
    files = m.files + excluded.files,
    cost_usd = m.cost_usd + excluded.cost_usd,
    events = m.events + excluded.events,
    updated_at = now();

  insert into public.usage_metrics_monthly as m
    (user_id, month, org_id, provider, model, action, tokens, unconfirmed_tokens, requests,
     files, cost_usd, events)
  select user_id, date_trunc('month', created_at at time zone 'UTC')::date, org_id, provider,
         model, action,
         factor * sum(tokens_used),
         factor * coalesce(sum(case when jsonb_typeof(metadata -> 'unconfirmed_tokens') = 'number'
                                    then (metadata ->> 'unconfirmed_tokens')::numeric end), 0),
         factor * coalesce(sum(case when jsonb_typeof(metadata -> 'requests') = 'number'
                                    then (metadata ->> 'requests')::numeric end), 0),
         factor * count(*) filter (where action = 'embedding'
                                     and metadata ->> 'outcome' = 'completed'),
         factor * sum(cost_usd),
         factor * count(*)
  from delta
  group by 1, 2, 3, 4, 5, 6
  order by 1, 2, 3, 4, 5, 6
  on conflict on constraint usage_metrics_monthly_key do update set
    tokens = m.tokens + excluded.tokens,
    unconfirmed_tokens = m.unconfirmed_tokens + excluded.unconfirmed_tokens,
    requests = m.requests + excluded.requests,
    files = m.files + excluded.files,
    cost_usd = m.cost_usd + excluded.cost_usd,
    events = m.events + excluded.events,
    updated_at = now();
  return null;
end
$$;

drop trigger if exists usage_metrics_insert on usage_logs;
create trigger usage_metrics_insert after insert on usage_logs
  referencing new table as delta
  for each statement execute function ragworker_usage_metrics_apply('1');
drop trigger if exists usage_metrics_update_old on usage_logs;
create trigger usage_metrics_update_old after update on usage_logs
  referencing old table as delta
  for each statement execute function ragworker_usage_metrics_apply('-1');
drop trigger if exists usage_metrics_update_new on usage_logs;
create trigger usage_metrics_update_new after update on usage_logs
  referencing new table as delta
  for each statement execute function ragworker_usage_metrics_apply('1');
drop trigger if exists usage_metrics_delete on usage_logs;
create trigger usage_metrics_delete after delete on usage_logs
  referencing old table as delta
  for each statement execute function ragworker_usage_metrics_apply('-1');

create or replace function ragworker_usage_metrics_truncate() returns trigger
language plpgsql security definer as $$
begin
  truncate public.usage_metrics, public.usage_metrics_monthly;
  return null;
end
$$;
drop trigger if exists usage_metrics_truncate on usage_logs;
create trigger usage_metrics_truncate after truncate on usage_logs
  for each statement execute function ragworker_usage_metrics_truncate();

-- The usage recorded before this migration goes through the triggers' own function: a
-- copy of usage_logs is inserted into a scratch table with the same columns and an insert
-- trigger. Creating the triggers above locked usage_logs against writes until this
-- transaction commits, so no row is counted twice or missed.
truncate usage_metrics, usage_metrics_monthly;
create temporary table ragworker_usage_backfill (like usage_logs) on commit drop;
create trigger usage_metrics_backfill after insert on ragworker_usage_backfill
  referencing new table as delta
  for each statement execute function ragworker_usage_metrics_apply('1');
insert into ragworker_usage_backfill select * from usage_logs;

-- Users read their own rows, organisation members their organisation's; nobody writes.
alter table usage_metrics enable row level security;
drop policy if exists usage_metrics_read on usage_metrics;
create policy usage_metrics_read on usage_metrics for select to authenticated
  using ((select auth.uid()) = user_id or org_id in (select public.ragworker_user_orgs()));
alter table usage_metrics_monthly enable row level security;
drop policy if exists usage_metrics_monthly_read on usage_metrics_monthly;
create policy usage_metrics_monthly_read on usage_metrics_monthly for select to authenticated
  using ((select auth.uid()) = user_id or org_id in (select public.ragworker_user_orgs()));

create or replace view monthly_usage_summary with (security_invoker = true) as
select month, org_id, user_id, provider, model, action, tokens, unconfirmed_tokens, requests,
       files, cost_usd, events, updated_at
from usage_metrics_monthly;

create or replace view current_day_usage with (security_invoker = true) as
select day, org_id, user_id, provider, model, action, tokens, unconfirmed_tokens, requests,
       files, cost_usd, events, updated_at
from usage_metrics
-- The month too, so the (user, month) and (organisation, month) indexes narrow the scan.
where month = date_trunc('month', now() at time zone 'UTC')::date
  and day = (now() at time zone 'UTC')::date;

-- Grants: app users read (RLS decides which rows); Supabase's service_role reads. Supabase's
-- default privileges handed all of these out on creation, so start from nothing.
do $$
declare
  r text;
  t text;
begin
  foreach t in array array['usage_metrics', 'usage_metrics_monthly', 'monthly_usage_summary',
                           'current_day_usage'] loop
    execute format('revoke all on table public.%I from public', t);
    for r in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
      execute format('revoke all on table public.%I from %I', t, r);
      if r <> 'anon' then
        execute format('grant select on table public.%I to %I', t, r);
      end if;
    end loop;
  end loop;
end
$$;

-- Pins the new functions' search_path and keeps EXECUTE from everyone else.
select ragworker_apply_grants();
