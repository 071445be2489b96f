-- Usage a billing page can read: `usage_metrics` holds one row per user, organisation, UTC
-- day, provider, model and action, kept equal to the sums of `usage_logs` for the same keys
-- by a trigger on usage_logs. The trigger runs in the transaction that writes the usage row
-- (for embeddings, the one that settles the file), so no worker, crash or retry can make
-- the two disagree: a usage row that is written is counted, once, and one that is rolled back
-- never was. Deletes and updates of usage_logs are followed too (as negative deltas).
-- `monthly_usage_summary` and `current_day_usage` are plain views over it (security_invoker,
-- so RLS applies to the caller): reading an organisation's month reads at most its members'
-- rows of that month through an index (see the README for the measured figures).
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

-- Adds the usage rows of one statement (its transition table, named `delta` by every
-- trigger below) to usage_metrics, times the trigger's argument: 1 for rows written, -1 for
-- rows deleted (an update is both). One upsert per key, in key order, so two transactions
-- adding several keys take the rows' locks in the same order and cannot deadlock.
-- SECURITY DEFINER: whoever may write usage_logs (the worker's role) keeps usage_metrics in
-- step without a grant on it, and nobody else can write it. Static SQL, so its plan is
-- cached per session (formatting the statement per call tripled its cost).
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
         -- Counts from the free-form metadata: a JSON number, else 0 (a malformed value
         -- must not make recording usage fail). Inline: a helper function would have its
         -- search_path pinned like every ragworker function, and a pinned function is
         -- never inlined (it cost 70 µs a row).
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
  truncate public.usage_metrics;
  return null;
end
$$;
drop trigger if exists usage_metrics_truncate on usage_logs;
create trigger usage_metrics_truncate after truncate on usage_logs
  for each statement execute function ragworker_usage_metrics_truncate();

-- The usage recorded before this migration. Creating the triggers above locked usage_logs
-- against writes until this transaction commits, so no row is counted twice or missed.
delete from usage_metrics;
insert into usage_metrics (user_id, org_id, day, provider, model, action, tokens,
                           unconfirmed_tokens, requests, files, cost_usd, events)
select user_id, org_id, (created_at at time zone 'UTC')::date, provider, model, action,
       sum(tokens_used),
       coalesce(sum(case when jsonb_typeof(metadata -> 'unconfirmed_tokens') = 'number'
                         then (metadata ->> 'unconfirmed_tokens')::numeric end), 0),
       coalesce(sum(case when jsonb_typeof(metadata -> 'requests') = 'number'
                         then (metadata ->> 'requests')::numeric end), 0),
       count(*) filter (where action = 'embedding' and metadata ->> 'outcome' = 'completed'),
       sum(cost_usd),
       count(*)
from usage_logs
group by 1, 2, 3, 4, 5, 6;

-- Users read their own rows, organisation members their organisation's; nobody writes.
alter table usage_metrics enable row level security;
drop policy if exists usage_metrics_read on usage_metrics;
create policy usage_metrics_read on usage_metrics for select to authenticated
  using ((select auth.uid()) = user_id or org_id in (select public.ragworker_user_orgs()));

create or replace view monthly_usage_summary with (security_invoker = true) as
select month, org_id, user_id, provider, model, action,
       sum(tokens)::bigint as tokens,
       sum(unconfirmed_tokens)::bigint as unconfirmed_tokens,
       sum(requests)::bigint as requests,
       sum(files)::bigint as files,
       sum(cost_usd) as cost_usd,
       sum(events)::bigint as events,
       max(updated_at) as updated_at
from usage_metrics
group by month, org_id, user_id, provider, model, action;

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
  foreach t in array array['usage_metrics', 'monthly_usage_summary', 'current_day_usage'] loop
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
