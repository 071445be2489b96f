-- `backfill --reembed`: completed files back to pending with a fresh retry budget, all of
-- them ($1) or those with chunks of another model than $2 (or none of $2's). Their chunks
-- stay searchable until each file's new ones replace them.
update files f
set processing_status = 'pending', attempts = 0, last_error = null,
    next_attempt_at = now(), locked_by = null, locked_until = null
where f.processing_status = 'completed'
  and ($1 or not exists (select 1 from document_chunks c
                         where c.file_id = f.id and c.embedding_model = $2)
          or exists (select 1 from document_chunks c
                     where c.file_id = f.id and c.embedding_model <> $2))
