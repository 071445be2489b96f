-- A deployment problem (storage rejected the worker's credentials): back to pending, not
-- before $5 seconds from now, with the attempt refunded because the file did nothing wrong.
update files
set processing_status = 'pending',
    attempts = attempts - 1,
    last_error = $4,
    next_attempt_at = now() + make_interval(secs => $5),
    locked_by = null,
    locked_until = null
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
