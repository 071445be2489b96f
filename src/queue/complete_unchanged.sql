-- Fenced: the object's bytes and the settings are those the file's chunks were made
-- from, so it completes again as it is (chunks, extracted_text, chunk_count unchanged);
-- the object's version may be new ($4: the same bytes uploaded again).
update files
set processing_status = 'completed',
    last_error = null,
    locked_by = null,
    locked_until = null,
    processed_at = now(),
    storage_version = $4
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
