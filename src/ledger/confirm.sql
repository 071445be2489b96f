-- The provider answered request $1 with 200: each file's share of what it billed.
update embedding_requests r
set status = 'billed', tokens_billed = s.billed, http_status = 200, answered_at = now()
from unnest($2::uuid[], $3::bigint[]) as s(file_id, billed)
where r.request_id = $1 and r.file_id = s.file_id
