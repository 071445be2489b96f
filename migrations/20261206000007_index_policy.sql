-- The HNSW index follows a policy instead of always being there: inserting into a live
-- HNSW index is most of the database's work while ingesting (about 5 ms of CPU per
-- 1536-dimension chunk), and below ~100,000 chunks an exact scan is exact and fast. The
-- worker creates the index (CONCURRENTLY, which no function can) once the table reaches
-- `index.hnsw_min_rows`; search is correct either way (exact without it). From now on
-- setting the dimension only shapes the column.
create or replace function ragworker_set_embedding_dimension(dim integer) returns void
language plpgsql as $$
declare
  current_dim integer;
  existing bigint;
begin
  if dim is null or dim < 1 or dim > 4000 then
    raise exception 'embedding dimension % is outside 1..4000, the range pgvector can index for halfvec', dim;
  end if;
  select atttypmod into current_dim from pg_attribute
    where attrelid = 'public.document_chunks'::regclass and attname = 'embedding';
  if current_dim = dim then
    return;
  end if;
  select count(*) into existing from public.document_chunks;
  if existing > 0 then
    raise exception 'document_chunks holds % embeddings of dimension %, the configuration asks for %; re-embed with `ragworker backfill --reembed` instead',
      existing, current_dim, dim;
  end if;
  -- The index of the old dimension cannot serve the new one; the policy builds the next.
  drop index if exists public.document_chunks_embedding_idx;
  -- dim is an integer checked above, so formatting it into the DDL is safe.
  execute format('alter table public.document_chunks alter column embedding type halfvec(%s)', dim);
end
$$;

-- A new installation starts without the index (its table is empty); one with chunks keeps
-- it until an operator decides otherwise (`backfill --bulk`).
do $$
begin
  if not exists (select 1 from public.document_chunks limit 1) then
    drop index if exists public.document_chunks_embedding_idx;
  end if;
end
$$;

select ragworker_apply_grants();
