-- The cost ledger: one row per embedding request and file, committed before the request
-- is sent and confirmed with the provider's own count when its answer arrives. usage_logs
-- rows are rolled up from it (one per file and claim), so a worker killed with requests in
-- flight leaves its spend here, and the next claim of the file, its give-up, or any later
-- claim by any worker records it. A request several files share has one row per file,
-- with the provider's count split among them so the shares add up to what it billed.
create table if not exists embedding_requests (
  id              uuid primary key default gen_random_uuid(),
  -- One HTTP request (one attempt of it): the rows of the files it carried share it.
  request_id      uuid not null,
  -- No foreign key: what a request cost stays recorded when its file is deleted.
  file_id         uuid not null,
  claim_seq       bigint not null,
  attempt         int not null,
  -- 0 for a request's first try, n for its n-th retry.
  retry           int not null default 0,
  worker_id       text not null,
  user_id         uuid not null,
  org_id          uuid,
  conversation_id uuid,
  provider        text not null,
  model           text not null,
  inputs          int not null,
  -- The configured price when the request was sent, so whoever rolls the row up (another
  -- worker, with another model) prices it as its sender did.
  price_per_million_usd numeric not null default 0,
  -- Our tokenizer's count of this file's inputs (for OpenAI models, what the provider bills).
  tokens_counted  bigint not null,
  -- The provider's count for this file's share; 0 when it refused the request.
  tokens_billed   bigint,
  -- sent: no answer yet, or none will come (the worker died, the connection broke): the
  -- provider may have billed it, so it counts at tokens_counted. billed: answered 200.
  -- refused: answered with an error, which providers do not bill.
  status          text not null default 'sent' check (status in ('sent', 'billed', 'refused')),
  http_status     int,
  sent_at         timestamptz not null default now(),
  answered_at     timestamptz,
  -- When the row was rolled into usage_logs (metadata.file_id and metadata.claim_seq
  -- name the rows a usage row came from).
  settled_at      timestamptz
);
-- Only rows not yet rolled up: the requests of files in flight, which every claim sweeps.
create index if not exists embedding_requests_open_idx
  on embedding_requests (file_id, claim_seq) where settled_at is null;
-- Reconciling a day or a month with a provider's usage export.
create index if not exists embedding_requests_sent_idx on embedding_requests (sent_at);

-- The operator's table: app users have no access (RLS on and no policy, so even a grant
-- added by hand shows nothing), Supabase's service_role what a worker connecting as it
-- needs. A uuid key rather than an identity column: no sequence for default privileges
-- to hand out.
alter table embedding_requests enable row level security;
revoke all on table embedding_requests from public;
do $$
declare
  r text;
begin
  for r in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
    execute format('revoke all on table public.embedding_requests from %I', r);
  end loop;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant select, insert, update, delete on public.embedding_requests to service_role;
  end if;
end
$$;

