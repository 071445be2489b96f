-- Deferred index maintenance. Inserting a chunk into a live HNSW index costs the database
-- about 5 ms of CPU per 1536-dimension chunk, and once a table holds enough chunks for the
-- index to exist that insert was most of ingestion's work. Chunks the worker writes while
-- the index exists may now wait outside it (`index_pending`): the index only covers rows
-- that are not pending (the policy builds it with that predicate), search adds an exact
-- scan of the tenant's pending rows, and the worker merges them into the index (an UPDATE
-- that clears the flag, which is when the graph insert happens) when it is idle, or at
-- the end of a backfill. How many may wait is bounded (index.defer_max_rows).
--
-- The default (false) keeps every other writer's rows indexed at once, and adding a column
-- with a constant default rewrites nothing.
alter table public.document_chunks
  add column if not exists index_pending boolean not null default false;

-- The pending rows of a tenant (search) and all of them (the merge). Partial, so they hold
-- only the few rows waiting and cost nothing to keep once merged.
create index if not exists document_chunks_pending_user_idx
  on public.document_chunks (user_id) where index_pending;
create index if not exists document_chunks_pending_org_idx
  on public.document_chunks (org_id) where index_pending and org_id is not null;

-- The nearest-chunks query, as in 20261206000003_search.sql, with one change in the HNSW
-- branch (tenants above ragworker.exact_search_limit): the index answers for the rows it
-- covers (not pending) and an exact scan for the rows waiting to be merged; the union is
-- ordered again. Each row is one or the other in any snapshot, so none is missed or
-- returned twice, whatever a concurrent merge does. An index built before the predicate
-- existed (it covers every row) serves the first branch just as well.
create or replace function ragworker_search(
  query_embedding halfvec,
  scope text,
  tenant uuid,
  match_threshold double precision,
  match_count integer
) returns table (
  id uuid,
  file_id uuid,
  file_name text,
  content text,
  chunk_index integer,
  page_number integer,
  heading text,
  similarity double precision
)
language plpgsql stable as $$
declare
  tenant_column text;
  exact_limit bigint := coalesce(
    nullif(current_setting('ragworker.exact_search_limit', true), '')::bigint, 20000);
  tenant_rows bigint;
  candidates text;
  hits text;
begin
  tenant_column := case scope when 'user' then 'user_id' when 'org' then 'org_id' end;
  if tenant_column is null then
    raise exception 'ragworker_search: scope must be user or org, not %', scope;
  end if;
  execute format('select count(*) from (select 1 from public.document_chunks c
                                        where c.%I = $1 limit $2) s', tenant_column)
    into tenant_rows using tenant, exact_limit + 1;
  candidates := format('select c.id, c.file_id, c.content, c.chunk_index, c.page_number,
                               c.heading, c.embedding <=> $1 as distance
                        from public.document_chunks c
                        where c.%I = $2 and 1 - (c.embedding <=> $1) >= $3', tenant_column);
  -- (distance + 0) is an ordering the HNSW index cannot serve: an exact scan.
  if tenant_rows <= exact_limit then
    hits := candidates || ' order by (c.embedding <=> $1) + 0 limit $4';
  else
    hits := '(' || candidates || ' and not c.index_pending order by c.embedding <=> $1 limit $4)
             union all
             (' || candidates || ' and c.index_pending order by (c.embedding <=> $1) + 0 limit $4)
             order by distance limit $4';
  end if;
  return query execute
    'with hits as materialized (' || hits || ')
     select h.id, h.file_id, f.original_name, h.content, h.chunk_index, h.page_number,
            h.heading, 1 - h.distance
     from hits h join public.files f on f.id = h.file_id
     order by h.distance'
  using query_embedding, tenant, match_threshold, match_count;
end
$$;

-- CREATE OR REPLACE resets a function's SET clauses: the iterative-scan settings of
-- 20261206000003_search.sql, again.
do $$
declare
  v text := (select extversion from pg_extension where extname = 'vector');
  parts int[] := string_to_array(split_part(v, '-', 1), '.')::int[];
begin
  perform '[1]'::halfvec <=> '[1]'::halfvec;
  if parts[1] > 0 or parts[2] >= 8 then
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.iterative_scan = relaxed_order';
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.ef_search = 100';
  else
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.ef_search = 1000';
  end if;
end
$$;

select ragworker_apply_grants();
