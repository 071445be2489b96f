-- The provider answered request $1 with error status $2, which it does not bill.
update embedding_requests
set status = 'refused', tokens_billed = 0, http_status = $2, answered_at = now()
where request_id = $1
