-- A database as Supabase sets it up before an app's migrations run, for what ragworker
-- meets of it (from Supabase's own init scripts, see ../shared/SETUP.md): run as the
-- superuser supabase_admin on a fresh database of a private cluster.

-- Roles. `postgres` is what the dashboard's connection string logs in as: no superuser, but
-- BYPASSRLS, CREATEROLE, and membership in the API roles (so it can `set role`).
create role postgres login createrole createdb replication bypassrls;
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
create role supabase_auth_admin login noinherit createrole;
create role supabase_storage_admin login noinherit createrole;
alter role postgres set search_path = "$user", public, extensions;
alter role authenticator set search_path = public, extensions;

do $$
begin
  execute format('grant all on database %I to postgres', current_database());
end
$$;
grant all on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;

-- Everything created in public, by postgres or by supabase_admin, is open to the API roles
-- unless a migration revokes it.
do $$
declare
  creator text;
  kind text;
begin
  foreach creator in array array['postgres', 'supabase_admin'] loop
    foreach kind in array array['tables', 'functions', 'sequences'] loop
      execute format('alter default privileges for role %I in schema public
                      grant all on %s to anon, authenticated, service_role', creator, kind);
    end loop;
  end loop;
end
$$;

-- Extensions live in their own schema; pgvector is enabled from the dashboard (which runs
-- it with supautils' rights; a non-superuser cannot create it on plain Postgres).
create schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension pgcrypto with schema extensions;
create extension vector with schema extensions;

-- GoTrue's schema and auth.uid(), owned by its service role.
create schema auth authorization supabase_auth_admin;
create function auth.uid() returns uuid language sql stable as $$
  select nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                         (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')), '')::uuid
$$;
alter function auth.uid() owner to supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role;

-- Storage's metadata tables (the columns ingestion meets), owned by its service role; the
-- API roles reach them under RLS.
create schema storage authorization supabase_storage_admin;
create table storage.buckets (
  id         text primary key,
  name       text not null,
  owner      uuid,
  owner_id   text,
  public     boolean default false,
  created_at timestamptz default now()
);
create table storage.objects (
  id         uuid primary key default gen_random_uuid(),
  bucket_id  text references storage.buckets (id),
  name       text,
  owner      uuid,
  owner_id   text,
  metadata   jsonb,
  version    text,
  created_at timestamptz default now(),
  unique (bucket_id, name)
);
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant usage on schema storage to postgres, anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres, anon, authenticated, service_role;
