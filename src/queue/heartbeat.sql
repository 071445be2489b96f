update files
set locked_until = now() + make_interval(secs => $4)
where id = $1 and locked_by = $2 and claim_seq = $3 and processing_status = 'processing'
