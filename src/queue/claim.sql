-- Claims up to $2 files for worker $1 in one statement. SKIP LOCKED lets any number of
-- workers run this at once without waiting on each other; the row lock lasts only until
-- this statement commits, after which the lease columns alone say who owns the file.
-- The two halves of the predicate match the two partial indexes of the files table.
with next as (
  select id
  from files
  where (processing_status = 'pending' and next_attempt_at <= now())
     or (processing_status = 'processing' and locked_until < now())
  order by next_attempt_at, created_at
  limit $2
  for update skip locked
)
update files f
set processing_status = 'processing',
    locked_by = $1,
    locked_until = now() + make_interval(secs => $3),
    attempts = f.attempts + 1,
    claim_seq = f.claim_seq + 1,
    last_error = null
from next
where f.id = next.id
returning f.id, f.user_id, f.org_id, f.conversation_id, f.original_name, f.storage_bucket,
          f.storage_path, f.mime_type, f.file_size, f.attempts, f.claim_seq,
          f.chunk_count, f.content_sha256, f.storage_version, f.processed_with
