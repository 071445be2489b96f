-- Shutdown: hand the file back untouched; the claim's attempt is refunded because the file
-- did nothing wrong.
update files
set processing_status = 'pending',
    attempts = attempts - 1,
    next_attempt_at = now(),
    locked_by = null,
    locked_until = null
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
