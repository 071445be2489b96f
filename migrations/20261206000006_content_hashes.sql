-- Re-processing that does only what changed. files records what its chunks were made from:
-- the sha256 of the object's bytes, the storage object's version (ETag, or version id), and
-- the settings that shaped the chunks and vectors (model, dimension, chunking); a chunk
-- records the sha256 of exactly what it embedded (its text with the heading context the
-- template adds). All are written in the completion transaction, with the chunks they
-- describe, so they always describe the chunks the file has.
alter table files add column if not exists content_sha256 text;
alter table files add column if not exists storage_version text;
alter table files add column if not exists processed_with jsonb;
alter table document_chunks add column if not exists content_hash text;

-- A new row starts with none of them, whatever the insert says: an app user may insert
-- rows with every column (ORMs do), and a row claiming to be processed already would
-- complete without being read. Users cannot update them (ragworker_apply_grants grants
-- only the columns the contract names).
create or replace function ragworker_files_claim_seq_reset() returns trigger
language plpgsql as $$
begin
  new.claim_seq := 0;
  new.content_sha256 := null;
  new.storage_version := null;
  new.processed_with := null;
  return new;
end
$$;

-- Orphans: rows whose object is gone from Supabase Storage (storage.objects in the same
-- database), removed with their chunks; usage rows stay. Rows being processed are left
-- alone. With dry_run nothing is removed. Elsewhere `ragworker cleanup` asks the storage
-- backend instead.
create or replace function ragworker_cleanup_orphaned_files(dry_run boolean default false)
returns table (file_id uuid, storage_bucket text, storage_path text)
language plpgsql as $$
begin
  if to_regclass('storage.objects') is null then
    raise exception 'storage.objects is not in this database: run `ragworker cleanup`, which asks the storage backend';
  end if;
  if dry_run then
    return query
      select f.id, f.storage_bucket, f.storage_path from public.files f
      where f.processing_status <> 'processing'
        and not exists (select 1 from storage.objects o
                        where o.bucket_id = f.storage_bucket and o.name = f.storage_path)
      order by f.storage_bucket, f.storage_path;
  else
    return query
      delete from public.files f
      where f.processing_status <> 'processing'
        and not exists (select 1 from storage.objects o
                        where o.bucket_id = f.storage_bucket and o.name = f.storage_path)
      returning f.id, f.storage_bucket, f.storage_path;
  end if;
end
$$;

select ragworker_apply_grants();
