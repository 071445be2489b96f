-- ragworker schema: files (the queue), document_chunks (the embeddings), usage_logs (the bill).
-- Runs unchanged on Supabase and on plain Postgres with pgvector >= 0.7 (halfvec).

create extension if not exists vector;
create extension if not exists pgcrypto; -- gen_random_uuid() on Postgres < 13 and on Supabase's older images

-- Supabase provides auth.uid(); plain Postgres gets a compatible one that reads the same
-- request.jwt.claims setting PostgREST sets, so RLS policies are written once for both.
create schema if not exists auth;
do $$
begin
  if not exists (
    select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'uid'
  ) then
    execute $f$
      create function auth.uid() returns uuid language sql stable as
      'select nullif(coalesce(current_setting(''request.jwt.claim.sub'', true),
                              (nullif(current_setting(''request.jwt.claims'', true), '''')::jsonb ->> ''sub'')), '''')::uuid'
    $f$;
  end if;
  -- The role app users reach the database as, on Supabase and through PostgREST. Roles are
  -- shared by all databases of a server, so two databases migrating at once may race here.
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    begin
      create role authenticated nologin;
    exception when duplicate_object or unique_violation then
      null;
    end;
  end if;
end
$$;
grant usage on schema auth to authenticated;

do $$
begin
  if not exists (select 1 from pg_type where typname = 'processing_status') then
    create type processing_status as enum ('pending', 'processing', 'completed', 'failed');
  end if;
end
$$;

create table if not exists files (
  id               uuid primary key default gen_random_uuid(),
  user_id          uuid not null,
  org_id           uuid,
  conversation_id  uuid,
  original_name    text not null,
  storage_bucket   text not null,
  storage_path     text not null,
  mime_type        text,
  file_size        bigint,
  processing_status processing_status not null default 'pending',
  extracted_text   text,
  chunk_count      integer not null default 0,
  attempts         integer not null default 0,
  last_error       text,
  -- Queue columns. A claim is a lease held in these columns, never an open transaction:
  -- locked_by/attempts fence every later transition, locked_until lets a crashed worker's
  -- files be claimed again, next_attempt_at spaces out retries of transient failures.
  locked_by        text,
  locked_until     timestamptz,
  next_attempt_at  timestamptz not null default now(),
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  processed_at     timestamptz
);

-- These two partial indexes match the two halves of the claim predicate exactly
-- (queue/claim.sql): ready pending files, and processing files whose lease expired.
create index if not exists files_claimable_pending_idx on files (next_attempt_at)
  where processing_status = 'pending';
create index if not exists files_lease_expiry_idx on files (locked_until)
  where processing_status = 'processing';
create index if not exists files_user_idx on files (user_id);

create table if not exists document_chunks (
  id              uuid primary key default gen_random_uuid(),
  file_id         uuid not null references files (id) on delete cascade,
  user_id         uuid not null,
  org_id          uuid,
  content         text not null,
  chunk_index     integer not null,
  page_number     integer,
  heading         text,
  token_count     integer not null,
  -- The dimension is set from configuration by ragworker_set_embedding_dimension() below,
  -- which `ragworker migrate` calls; an HNSW index needs a fixed dimension.
  embedding       halfvec not null,
  embedding_model text not null,
  metadata        jsonb not null default '{}'::jsonb,
  created_at      timestamptz not null default now(),
  unique (file_id, chunk_index)
);
create index if not exists document_chunks_user_idx on document_chunks (user_id);

create table if not exists usage_logs (
  id              uuid primary key default gen_random_uuid(),
  user_id         uuid not null,
  org_id          uuid,
  conversation_id uuid,
  message_id      uuid,
  action          text not null default 'embedding',
  provider        text not null,
  model           text not null,
  tokens_used     bigint not null,
  cost_usd        numeric(20, 10) not null,
  metadata        jsonb not null default '{}'::jsonb,
  created_at      timestamptz not null default now()
);
create index if not exists usage_logs_user_idx on usage_logs (user_id, created_at);
create index if not exists usage_logs_file_idx on usage_logs ((metadata ->> 'file_id'));

-- Row Level Security: app users see and change only their own rows. The worker connects as
-- the tables' owner (or a role with BYPASSRLS, such as Supabase's service_role), which RLS
-- does not restrict.
alter table files enable row level security;
alter table document_chunks enable row level security;
alter table usage_logs enable row level security;

drop policy if exists files_owner on files;
create policy files_owner on files for all
  using (auth.uid() = user_id) with check (auth.uid() = user_id);
drop policy if exists document_chunks_owner on document_chunks;
create policy document_chunks_owner on document_chunks for all
  using (auth.uid() = user_id) with check (auth.uid() = user_id);
drop policy if exists usage_logs_owner on usage_logs;
create policy usage_logs_owner on usage_logs for select
  using (auth.uid() = user_id);

grant select, insert, update, delete on files to authenticated;
grant select, delete on document_chunks to authenticated;
grant select on usage_logs to authenticated;

create or replace function ragworker_touch_updated_at() returns trigger language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;
drop trigger if exists files_touch_updated_at on files;
create trigger files_touch_updated_at before update on files
  for each row execute function ragworker_touch_updated_at();

-- Wakes a running `ragworker run` at once when a file becomes pending; the worker still
-- polls, so a lost notification only delays a file, it never loses it.
create or replace function ragworker_notify_pending() returns trigger language plpgsql as $$
begin
  if new.processing_status = 'pending'
     and (tg_op = 'INSERT' or old.processing_status is distinct from 'pending') then
    perform pg_notify('ragworker_files', new.id::text);
  end if;
  return null;
end
$$;
drop trigger if exists files_notify_pending on files;
create trigger files_notify_pending after insert or update of processing_status on files
  for each row execute function ragworker_notify_pending();

-- Fixes the embedding column's dimension and (re)builds its HNSW index. Called by
-- `ragworker migrate` with the configured dimension; a no-op when it already matches.
-- Refuses to change the dimension while embeddings of another size exist.
create or replace function ragworker_set_embedding_dimension(dim integer) returns void
language plpgsql as $$
declare
  current_dim integer;
  existing bigint;
begin
  if dim is null or dim < 1 or dim > 4000 then
    raise exception 'embedding dimension % is outside 1..4000, the range pgvector can index for halfvec', dim;
  end if;
  select atttypmod into current_dim from pg_attribute
    where attrelid = 'public.document_chunks'::regclass and attname = 'embedding';
  if current_dim = dim then
    execute 'create index if not exists document_chunks_embedding_idx on public.document_chunks
             using hnsw (embedding halfvec_cosine_ops)';
    return;
  end if;
  select count(*) into existing from public.document_chunks;
  if existing > 0 then
    raise exception 'document_chunks holds % embeddings of dimension %, the configuration asks for %; re-embed with `ragworker backfill --reembed` instead',
      existing, current_dim, dim;
  end if;
  drop index if exists public.document_chunks_embedding_idx;
  -- dim is an integer checked above, so formatting it into the DDL is safe.
  execute format('alter table public.document_chunks alter column embedding type halfvec(%s)', dim);
  execute 'create index document_chunks_embedding_idx on public.document_chunks
           using hnsw (embedding halfvec_cosine_ops)';
end
$$;

-- The app's read side. SECURITY INVOKER (the default) keeps RLS in force for app users;
-- the user_id argument narrows the worker's own (RLS-exempt) searches the same way.
create or replace function search_similar_chunks(
  query_embedding halfvec,
  user_id uuid,
  match_threshold double precision default 0.0,
  match_count integer default 5
) returns table (
  id uuid,
  file_id uuid,
  file_name text,
  content text,
  chunk_index integer,
  page_number integer,
  heading text,
  similarity double precision
)
language sql stable as $$
  select c.id, c.file_id, f.original_name, c.content, c.chunk_index, c.page_number, c.heading,
         1 - (c.embedding <=> query_embedding) as similarity
  from public.document_chunks c
  join public.files f on f.id = c.file_id
  where c.user_id = search_similar_chunks.user_id
    and 1 - (c.embedding <=> query_embedding) >= match_threshold
  order by c.embedding <=> query_embedding
  limit match_count
$$;
grant execute on function search_similar_chunks(halfvec, uuid, double precision, integer) to authenticated;
