-- Rolls ledger rows into usage_logs, one row per claim of a file, outcome $3: the rows of
-- one claim ($1 file, $2 claim_seq) when its worker settles the file; with $1 null, the
-- rows of every claim that is over (the file was claimed again, settled, given up or
-- removed: its worker was killed, lost the lease, or could not record the outcome), which
-- each claim sweeps up. A claim whose lease has merely expired is not over until another
-- claim takes the file: its worker may still be alive and complete it (the transitions
-- are fenced by claim_seq, not by the clock), and its rows are then its own, counted under
-- the outcome it reached. Rows locked by a concurrent
-- roll-up are skipped, not waited for: that one records them, and each row is rolled up
-- exactly once (settled_at). A request with no answer counts at our own count, as the
-- provider may well have billed it; a refused one counts nothing, and a claim that cost
-- nothing gets no usage row.
with open as (
  select r.id
  from embedding_requests r
  where r.settled_at is null
    and case when $1::uuid is null
             then not exists (select 1 from files f
                              where f.id = r.file_id and f.claim_seq = r.claim_seq
                                and f.processing_status = 'processing')
             else r.file_id = $1 and r.claim_seq = $2 end
  for update skip locked
), settled as (
  update embedding_requests r
  set settled_at = now()
  from open
  where r.id = open.id
  returning r.*, case r.status when 'billed' then r.tokens_billed
                               when 'sent' then r.tokens_counted
                               else 0 end as spent
), claims as (
  select file_id, claim_seq, user_id, org_id, conversation_id, provider, model,
         max(attempt) as attempt,
         max(worker_id) as worker_id,
         sum(spent) as tokens,
         sum(spent * price_per_million_usd) / 1000000 as cost,
         max(price_per_million_usd) as price,
         count(*) as requests,
         count(*) filter (where retry > 0) as retries,
         count(*) filter (where http_status = 429) as rate_limited,
         coalesce(sum(tokens_counted) filter (where status = 'sent'), 0) as unconfirmed
  from settled
  group by file_id, claim_seq, user_id, org_id, conversation_id, provider, model
)
insert into usage_logs (user_id, org_id, conversation_id, action, provider, model,
                        tokens_used, cost_usd, metadata)
select user_id, org_id, conversation_id, 'embedding', provider, model, tokens, cost,
       jsonb_build_object('file_id', file_id, 'claim_seq', claim_seq, 'attempt', attempt,
                          'worker_id', worker_id, 'outcome', $3::text,
                          'requests', requests, 'retries', retries,
                          'rate_limited', rate_limited, 'unconfirmed_tokens', unconfirmed,
                          'price_per_million_usd', price) || $4::jsonb
from claims
where tokens > 0
