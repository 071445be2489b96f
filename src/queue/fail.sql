update files
set processing_status = 'failed',
    last_error = $4,
    locked_by = null,
    locked_until = null,
    processed_at = now()
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
