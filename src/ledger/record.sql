-- One row per file a request carries, committed before the request is sent: $1 request,
-- $2 retry number, $3 provider, $4 model, $5 price per million tokens, then one array
-- element per file.
insert into embedding_requests (request_id, retry, provider, model, price_per_million_usd,
                                file_id, claim_seq, attempt, worker_id, user_id, org_id,
                                conversation_id, inputs, tokens_counted)
select $1, $2, $3, $4, $5::text::numeric,
       s.file_id, s.claim_seq, s.attempt, s.worker_id, s.user_id, s.org_id,
       s.conversation_id, s.inputs, s.tokens
from unnest($6::uuid[], $7::bigint[], $8::int[], $9::text[], $10::uuid[], $11::uuid[],
            $12::uuid[], $13::int[], $14::bigint[])
  as s(file_id, claim_seq, attempt, worker_id, user_id, org_id, conversation_id, inputs, tokens)
