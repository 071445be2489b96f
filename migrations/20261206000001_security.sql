-- Security: which objects a files row may name, grants locked down under Supabase's default
-- privileges, policies in Supabase's recommended form, and a pinned search_path on every
-- function. Rows written before this migration are kept as they are; the worker applies the
-- same ownership rule to them before it downloads anything.

-- The buckets files rows may name and the rule their object paths follow. `ragworker
-- migrate` writes it from storage.buckets and storage.ownership; the files_check_row trigger
-- below and the worker (src/ownership.rs) both enforce it.
--   user_folder: the object lies under "<user_id>/" (Supabase Storage's convention, which
--                its policies check with (storage.foldername(name))[1] = auth.uid()::text);
--                app users may register their own uploads.
--   server_only: any plain path; only trusted roles (the tables' owner, BYPASSRLS roles such
--                as service_role) may register or move files, app users may not.
create table if not exists ragworker_buckets (
  bucket    text primary key,
  ownership text not null default 'user_folder'
            check (ownership in ('user_folder', 'server_only'))
);
alter table ragworker_buckets enable row level security;
drop policy if exists ragworker_buckets_read on ragworker_buckets;
-- The rule is no secret, and the trigger reads it with the writer's rights.
create policy ragworker_buckets_read on ragworker_buckets for select to authenticated
  using (true);

-- Organisations: who belongs to which. Members read and search the files and chunks whose
-- org_id is their organisation (the policies below); the server (tables' owner or
-- service_role) manages memberships. Apps with their own membership table can keep this one
-- in step with it, or replace ragworker_user_orgs() to read theirs.
create table if not exists org_members (
  org_id     uuid not null,
  user_id    uuid not null,
  role       text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (org_id, user_id)
);
create index if not exists org_members_user_idx on org_members (user_id);
alter table org_members enable row level security;
drop policy if exists org_members_own on org_members;
create policy org_members_own on org_members for select to authenticated
  using ((select auth.uid()) = user_id);

-- The signed-in user's organisations, for policies. SECURITY DEFINER so a policy on one
-- table does not depend on the caller's rights (and RLS) on another.
create or replace function ragworker_user_orgs() returns setof uuid
language sql stable security definer as $$
  select m.org_id from public.org_members m where m.user_id = auth.uid()
$$;

-- Why `path` may not be read for `user_id` under `ownership`, or null when it may. Kept in
-- step with ownership::path_problem in the worker by a test that asks both the same cases.
create or replace function ragworker_path_violation(path text, user_id uuid, ownership text)
returns text language sql immutable as $$
  select case
    when path is null or path = '' then
      'the object path is empty'
    when octet_length(path) > 1024 then
      'the object path is over 1024 bytes'
    -- chr() rather than escapes: the body must not depend on standard_conforming_strings.
    when path ~ ('[' || chr(1) || '-' || chr(31) || chr(127) || ']') or strpos(path, chr(92)) > 0 then
      'the object path contains a control character or a backslash'
    when left(path, 1) = '/' or right(path, 1) = '/' or strpos(path, '//') > 0 then
      'the object path has an empty segment (leading, trailing or doubled "/")'
    when string_to_array(path, '/') && array['.', '..'] then
      'the object path has a "." or ".." segment'
    when ownership = 'user_folder'
         and (split_part(path, '/', 1) <> user_id::text or strpos(path, '/') = 0) then
      'object is not under this user''s folder'
    else null
  end
$$;

-- Guards what app users write to files. Under RLS they can only write their own rows; this
-- also keeps them to objects they own, to the status changes the contract allows, and away
-- from the object of a file once a worker has claimed it. The ownership rule applies to
-- trusted writers too: the worker would refuse such a row later anyway.
create or replace function ragworker_check_file_row() returns trigger language plpgsql as $$
declare
  trusted boolean;
  rule text;
  problem text;
begin
  -- SECURITY INVOKER, so current_user is the writer (authenticated under PostgREST).
  select r.rolsuper or r.rolbypassrls
         or pg_has_role(current_user, (select c.relowner from pg_class c
                                       where c.oid = 'public.files'::regclass), 'MEMBER')
    into trusted
    from pg_roles r where r.rolname = current_user;
  trusted := coalesce(trusted, false);

  if not trusted then
    if tg_op = 'INSERT' then
      -- A file shared with an organisation becomes readable by its members: only a member
      -- may share it there.
      if new.org_id is not null and not exists (
           select 1 from public.org_members m
           where m.org_id = new.org_id and m.user_id = new.user_id) then
        raise exception using errcode = '42501',
          message = 'the user is not a member of this organisation';
      end if;
      if new.processing_status <> 'pending' then
        raise exception using errcode = '42501',
          message = 'a new file must be pending; ragworker sets every other status';
      end if;
      -- The queue's and the worker's columns start as the defaults whatever the insert
      -- says: ORMs such as Drizzle list every column (with DEFAULT) in an insert, so
      -- column-level INSERT grants would refuse them; the trigger holds the line instead.
      new.attempts := 0;
      new.extracted_text := null;
      new.chunk_count := 0;
      new.last_error := null;
      new.locked_by := null;
      new.locked_until := null;
      new.next_attempt_at := now();
      new.processed_at := null;
      new.created_at := now();
      new.updated_at := now();
    end if;
    if tg_op = 'UPDATE' then
      if (new.user_id, new.storage_bucket, new.storage_path)
           is distinct from (old.user_id, old.storage_bucket, old.storage_path)
         and (old.attempts > 0 or old.processing_status <> 'pending') then
        raise exception using errcode = '42501',
          message = 'the object of a file cannot change once ragworker has claimed it',
          hint = 'upload the new version as a new file';
      end if;
      if new.processing_status is distinct from old.processing_status then
        if new.processing_status <> 'pending' or old.processing_status = 'processing' then
          raise exception using errcode = '42501',
            message = 'users may only set processing_status to pending, on a file that is not being processed';
        end if;
        -- Processing again on the user's request: a fresh attempt budget.
        new.attempts := 0;
        new.last_error := null;
        new.next_attempt_at := now();
        new.locked_by := null;
        new.locked_until := null;
      end if;
    end if;
  end if;

  if tg_op = 'INSERT'
     or (new.user_id, new.storage_bucket, new.storage_path)
          is distinct from (old.user_id, old.storage_bucket, old.storage_path) then
    select b.ownership into rule from public.ragworker_buckets b
      where b.bucket = new.storage_bucket;
    if rule is null then
      raise exception using errcode = '42501',
        message = format('bucket %L is not one ragworker may read (storage.buckets)', new.storage_bucket);
    end if;
    if rule = 'server_only' and not trusted then
      raise exception using errcode = '42501',
        message = format('files in bucket %L are registered by the server only (storage.ownership = "server_only")', new.storage_bucket);
    end if;
    problem := public.ragworker_path_violation(new.storage_path, new.user_id, rule);
    if problem is not null then
      raise exception using errcode = '42501', message = problem;
    end if;
  end if;
  return new;
end
$$;
drop trigger if exists files_check_row on files;
-- Only statements that set these columns fire it: heartbeats do not.
create trigger files_check_row
  before insert or update of user_id, storage_bucket, storage_path, processing_status on files
  for each row execute function ragworker_check_file_row();

-- Policies in Supabase's recommended form: for the authenticated role only, with
-- (select auth.uid()) evaluated once per statement instead of once per row.
drop policy if exists files_owner on files;
create policy files_owner on files for all to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
drop policy if exists document_chunks_owner on document_chunks;
create policy document_chunks_owner on document_chunks for all to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
drop policy if exists usage_logs_owner on usage_logs;
create policy usage_logs_owner on usage_logs for select to authenticated
  using ((select auth.uid()) = user_id);
-- Members of a file's organisation read it and its chunks (and so search them); only the
-- owner changes them.
drop policy if exists files_org_read on files;
create policy files_org_read on files for select to authenticated
  using (org_id in (select public.ragworker_user_orgs()));
drop policy if exists document_chunks_org_read on document_chunks;
create policy document_chunks_org_read on document_chunks for select to authenticated
  using (org_id in (select public.ragworker_user_orgs()));
create index if not exists document_chunks_org_idx on document_chunks (org_id)
  where org_id is not null;

-- sqlx's own bookkeeping: Supabase exposes public through PostgREST, and a deleted row here
-- makes every later `migrate` and every worker refuse to run. RLS without a policy and no
-- grants: only its owner (the role that migrates) reads and writes it.
alter table _sqlx_migrations enable row level security;

-- Grants: start from nothing, then give exactly what the README's schema contract promises.
-- Supabase's default privileges grant ALL on every table and function a migration creates
-- in public to anon, authenticated and service_role (TRUNCATE included, which RLS does not
-- restrict), and Postgres grants EXECUTE on new functions to PUBLIC; the narrow grants of
-- the first migration were additions to those, not limits. Later migrations that create
-- objects call this function again (after replacing it if the contract changes), and a
-- test compares the privileges with the contract.
-- It also pins the search_path of every ragworker function to pg_catalog, public and the
-- schema pgvector lives in (extensions on Supabase), so they work from any caller's path.
create or replace function ragworker_apply_grants() returns void language plpgsql as $$
declare
  app_roles text[] := array(select rolname::text from pg_roles
                            where rolname in ('anon', 'authenticated', 'service_role'));
  r text;
  t text;
  f regprocedure;
  vector_schema text := (select n.nspname from pg_extension e
                         join pg_namespace n on n.oid = e.extnamespace
                         where e.extname = 'vector');
  path text;
begin
  foreach t in array array['files', 'document_chunks', 'usage_logs', 'ragworker_buckets',
                           'org_members', '_sqlx_migrations'] loop
    execute format('revoke all on table public.%I from public', t);
    foreach r in array app_roles loop
      execute format('revoke all on table public.%I from %I', t, r);
    end loop;
  end loop;

  path := case when vector_schema is null or vector_schema in ('public', 'pg_catalog')
               then 'pg_catalog, public'
               else format('pg_catalog, public, %I', vector_schema) end;
  for f in select p.oid::regprocedure from pg_proc p
           where p.pronamespace = 'public'::regnamespace
             and (p.proname like 'ragworker\_%' or p.proname like '%search\_%chunks') loop
    execute format('revoke all on function %s from public', f);
    foreach r in array app_roles loop
      execute format('revoke all on function %s from %I', f, r);
    end loop;
    execute format('alter function %s set search_path = %s', f, path);
    -- The app's read side (and what it calls with the caller's rights), the rule the files
    -- trigger applies with the writer's rights, and the organisations the policies ask for.
    if f::oid in (select p.oid from pg_proc p
                  where p.proname in ('search_similar_chunks', 'search_org_chunks',
                                      'hybrid_search_chunks', 'ragworker_search',
                                      'ragworker_text_search_config',
                                      'ragworker_path_violation', 'ragworker_user_orgs')) then
      foreach r in array app_roles loop
        if r <> 'anon' then
          execute format('grant execute on function %s to %I', f, r);
        end if;
      end loop;
    end if;
  end loop;

  -- App users (PostgREST's authenticated role), under RLS: their own rows only.
  if 'authenticated' = any(app_roles) then
    -- INSERT on the whole table (ORMs name every column); files_check_row resets the
    -- columns that are ragworker's. UPDATE only of the columns users may change.
    grant select, insert, delete on public.files to authenticated;
    grant update (original_name, conversation_id, mime_type, file_size, storage_bucket,
                  storage_path, processing_status)
      on public.files to authenticated;
    grant select, delete on public.document_chunks to authenticated;
    grant select on public.usage_logs to authenticated;
    grant select on public.ragworker_buckets to authenticated;
    grant select on public.org_members to authenticated;
  end if;
  -- Supabase's server-side role (BYPASSRLS): what a worker connecting as it needs.
  if 'service_role' = any(app_roles) then
    grant select, insert, update, delete on public.files, public.document_chunks,
      public.usage_logs to service_role;
    grant select, insert, update, delete on public.org_members to service_role;
    grant select on public.ragworker_buckets, public._sqlx_migrations to service_role;
  end if;
end
$$;
select ragworker_apply_grants();

-- auth.uid() is ours on plain Postgres (the first migration created it); on Supabase it
-- belongs to Supabase and is left alone.
do $$
begin
  if exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'auth' and p.proname = 'uid'
               and pg_has_role(current_user, p.proowner, 'MEMBER')) then
    alter function auth.uid() set search_path = pg_catalog;
    revoke all on function auth.uid() from public;
    grant execute on function auth.uid() to authenticated;
  end if;
end
$$;
