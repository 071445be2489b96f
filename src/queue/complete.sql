-- Fenced: only the holder of the current lease can complete the file.
update files
set processing_status = 'completed',
    extracted_text = $4,
    chunk_count = $5,
    last_error = null,
    locked_by = null,
    locked_until = null,
    processed_at = now(),
    content_sha256 = $6,
    storage_version = $7,
    processed_with = $8
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
