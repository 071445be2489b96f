-- Uploads that queue themselves (opt-in per bucket, storage.register_uploads): a trigger on
-- Supabase Storage's storage.objects keeps files in step with the bucket. A new object
-- becomes a pending files row, a new version of it makes the row pending again, a deleted
-- object deletes the row (its chunks cascade; usage_logs stays, it records money spent).
-- The functions live in public: Supabase no longer lets projects create them in storage.

alter table ragworker_buckets add column if not exists register_uploads boolean not null default false;

-- The trigger finds a file by its object.
create index if not exists files_object_idx on files (storage_bucket, storage_path);

-- SECURITY DEFINER: Storage writes storage.objects as its own role, which has no rights on
-- ragworker's tables; this runs as their owner. It must never make an upload fail, so a row
-- it cannot register (no owner, a path outside the owner's folder) is skipped, and any
-- error is turned into a warning in Storage's log.
create or replace function ragworker_register_upload() returns trigger
language plpgsql security definer as $$
declare
  obj jsonb;
  owner text;
  rule text;
begin
  if tg_op = 'DELETE'
     or (tg_op = 'UPDATE' and (new.bucket_id, new.name) is distinct from (old.bucket_id, old.name)) then
    -- Deleted, or moved: the file at the old place is gone.
    delete from public.files f
      using public.ragworker_buckets b
      where b.bucket = old.bucket_id and b.register_uploads
        and f.storage_bucket = old.bucket_id and f.storage_path = old.name;
    if tg_op = 'DELETE' then
      return null;
    end if;
  elsif tg_op = 'UPDATE'
        and (to_jsonb(new) ->> 'version') is not distinct from (to_jsonb(old) ->> 'version') then
    -- Same object, same version (metadata touched, last access recorded): nothing new.
    return null;
  end if;

  select b.ownership into rule from public.ragworker_buckets b
    where b.bucket = new.bucket_id and b.register_uploads;
  if rule is null then
    return null;
  end if;
  -- Columns read through jsonb, so every Storage version's table shape works: owner_id
  -- (text, the uploader's JWT sub) in current ones, owner (uuid) in older ones; an upload
  -- with the service key has neither, and the folder names the user.
  obj := to_jsonb(new);
  owner := coalesce(nullif(obj ->> 'owner_id', ''), obj ->> 'owner', split_part(new.name, '/', 1));
  if owner !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
     or public.ragworker_path_violation(new.name, owner::uuid, rule) is not null then
    return null;
  end if;

  begin
    update public.files f
    set processing_status = 'pending', attempts = 0, last_error = null,
        next_attempt_at = now(), locked_by = null, locked_until = null,
        mime_type = coalesce(obj -> 'metadata' ->> 'mimetype', f.mime_type),
        file_size = coalesce((obj -> 'metadata' ->> 'size')::bigint, f.file_size)
    where f.storage_bucket = new.bucket_id and f.storage_path = new.name
      and f.user_id = owner::uuid;
    if not found then
      insert into public.files (user_id, original_name, storage_bucket, storage_path,
                                mime_type, file_size)
      values (owner::uuid, regexp_replace(new.name, '^.*/', ''), new.bucket_id, new.name,
              obj -> 'metadata' ->> 'mimetype', (obj -> 'metadata' ->> 'size')::bigint);
    end if;
  exception when others then
    raise warning 'ragworker could not register %/%: %', new.bucket_id, new.name, sqlerrm;
  end;
  return null;
end
$$;

-- Installs the trigger on storage.objects when a bucket registers its uploads; `ragworker
-- migrate` calls it with whether storage.register_uploads names any bucket. It never drops
-- the trigger: only the table's owner may (Supabase's storage admin, not `postgres`), and a
-- trigger whose buckets all have register_uploads off does nothing.
create or replace function ragworker_set_upload_trigger(enabled boolean) returns void
language plpgsql as $$
declare
  installed boolean;
begin
  if to_regclass('storage.objects') is null then
    if enabled then
      raise exception 'storage.register_uploads needs Supabase Storage''s storage.objects table in this database';
    end if;
    return;
  end if;
  installed := exists (select 1 from pg_trigger
                       where tgrelid = 'storage.objects'::regclass
                         and tgname = 'ragworker_register_upload');
  if enabled and not installed then
    execute 'create trigger ragworker_register_upload
               after insert or update or delete on storage.objects
               for each row execute function public.ragworker_register_upload()';
  end if;
end
$$;

-- The new functions start without grants and with a pinned search_path, like the rest.
select ragworker_apply_grants();
