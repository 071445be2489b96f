-- A transient failure: back to pending, not before $5 seconds from now.
update files
set processing_status = 'pending',
    last_error = $4,
    next_attempt_at = now() + make_interval(secs => $5),
    locked_by = null,
    locked_until = null
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
