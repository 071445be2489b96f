-- Search that returns what was asked for at any tenant size, organisation-wide search, and
-- hybrid (full-text + vector) search with reciprocal rank fusion.
--
-- The filtered-HNSW pitfall: with `where user_id = $1 order by embedding <=> $2 limit k`,
-- the planner may pick the HNSW index for a large tenant; the index yields hnsw.ef_search
-- candidates from the whole table and the filter keeps only that tenant's few, so a user
-- with 10% of the rows got 2 rows of 10 and none of the true nearest. pgvector 0.8's
-- iterative index scans keep scanning until enough rows pass the filter.

-- The one nearest-chunks query behind search_similar_chunks and search_org_chunks, for one
-- user (`scope` 'user') or one organisation ('org'):
--   * a tenant with up to ragworker.exact_search_limit chunks (default 20,000) is searched
--     exactly: its rows through the user_id/org_id index, every distance computed, the
--     true nearest returned. The ordering expression (distance + 0) is one the HNSW index
--     cannot serve, so the planner cannot take the pitfall path;
--   * a larger tenant goes through the HNSW index with pgvector 0.8's iterative scans (the
--     function's SET clauses below), which keep scanning until enough of its rows pass the
--     filter; `relaxed_order` returns rows slightly out of order, so the outer query orders
--     them again. On pgvector 0.7 (no iterative scans) ef_search is raised to 1000 instead.
-- Dynamic SQL with fixed text and bound values: each call is planned for its tenant.
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
begin
  tenant_column := case scope when 'user' then 'user_id' when 'org' then 'org_id' end;
  if tenant_column is null then
    raise exception 'ragworker_search: scope must be user or org, not %', scope;
  end if;
  execute format('select count(*) from (select 1 from public.document_chunks c
                                        where c.%I = $1 limit $2) s', tenant_column)
    into tenant_rows using tenant, exact_limit + 1;
  return query execute format($q$
    with hits as materialized (
      select c.id, c.file_id, c.content, c.chunk_index, c.page_number, c.heading,
             c.embedding <=> $1 as distance
      from public.document_chunks c
      where c.%I = $2 and 1 - (c.embedding <=> $1) >= $3
      order by %s
      limit $4
    )
    select h.id, h.file_id, f.original_name, h.content, h.chunk_index, h.page_number,
           h.heading, 1 - h.distance
    from hits h join public.files f on f.id = h.file_id
    order by h.distance$q$,
    tenant_column,
    case when tenant_rows <= exact_limit then '(c.embedding <=> $1) + 0'
         else 'c.embedding <=> $1' end)
  using query_embedding, tenant, match_threshold, match_count;
end
$$;

-- Same signature and columns as before; now correct for large tenants too.
create or replace function search_similar_chunks(
  query_embedding halfvec,
  user_id uuid,
  match_threshold double precision default 0.0,
  match_count integer default 5
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
language sql stable as $$
  select * from public.ragworker_search(query_embedding, 'user', search_similar_chunks.user_id,
                                        match_threshold, match_count)
$$;

-- An organisation's chunks. SECURITY INVOKER like the others: RLS lets members (and only
-- them) see the organisation's chunks, so a non-member gets nothing.
create or replace function search_org_chunks(
  query_embedding halfvec,
  org_id uuid,
  match_threshold double precision default 0.0,
  match_count integer default 5
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
language sql stable as $$
  select * from public.ragworker_search(query_embedding, 'org', search_org_chunks.org_id,
                                        match_threshold, match_count)
$$;

-- pgvector >= 0.8: iterative index scans where the nearest-chunks query runs. ef_search 100
-- (default 40) for recall; max_scan_tuples stays at pgvector's 20,000.
do $$
declare
  v text := (select extversion from pg_extension where extname = 'vector');
  parts int[] := string_to_array(split_part(v, '-', 1), '.')::int[];
begin
  -- Load pgvector's library first, so its settings are real ones: a role that is not a
  -- superuser (Supabase's postgres) may not attach a setting Postgres does not know yet.
  perform '[1]'::halfvec <=> '[1]'::halfvec;
  if parts[1] > 0 or parts[2] >= 8 then
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.iterative_scan = relaxed_order';
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.ef_search = 100';
  else
    -- pgvector 0.7 has no iterative scans: the widest candidate list it allows.
    execute 'alter function ragworker_search(halfvec, text, uuid, double precision, integer)
             set hnsw.ef_search = 1000';
  end if;
end
$$;

-- Full text: a GIN index on each chunk's tsvector, in the text-search configuration
-- `ragworker migrate` sets (search.text_search_config) through the two functions below.
-- An expression index rather than a stored tsvector column: adding a column would rewrite
-- document_chunks (and rebuild its HNSW index) on every existing deployment, and the
-- vector is only read for rows that match.
create or replace function ragworker_text_search_config() returns regconfig
language sql immutable as $$ select 'simple'::regconfig $$;

-- Sets the configuration and rebuilds the index when it changes (a no-op otherwise).
create or replace function ragworker_set_text_search_config(config regconfig) returns void
language plpgsql as $$
begin
  if ragworker_text_search_config() = config
     and to_regclass('public.document_chunks_fts_idx') is not null then
    return;
  end if;
  -- config is a regconfig, so its text is a valid, quoted configuration name.
  execute format('create or replace function public.ragworker_text_search_config()
                  returns regconfig language sql immutable set search_path = pg_catalog
                  as $f$ select %L::regconfig $f$', config::text);
  drop index if exists public.document_chunks_fts_idx;
  execute 'create index document_chunks_fts_idx on public.document_chunks
           using gin (to_tsvector(public.ragworker_text_search_config(), content))';
end
$$;

-- Hybrid search: full text and vectors each rank up to 2 × match_count chunks (at most 60)
-- of the user's, reciprocal rank fusion combines the two lists (score = Σ weight / (rrf_k +
-- rank)), best first. `similarity` is the cosine similarity, as in the others.
create or replace function hybrid_search_chunks(
  query_text text,
  query_embedding halfvec,
  user_id uuid,
  match_count integer default 5,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50
) returns table (
  id uuid,
  file_id uuid,
  file_name text,
  content text,
  chunk_index integer,
  page_number integer,
  heading text,
  similarity double precision,
  score double precision
)
language plpgsql stable as $$
begin
  return query execute $q$
    with semantic as (
      select s.id, row_number() over (order by s.similarity desc) as rank_ix
      from public.ragworker_search($2, 'user', $3, -1, least($4, 30) * 2) s
    ),
    full_text as (
      select c.id,
             row_number() over (
               order by ts_rank_cd(to_tsvector(public.ragworker_text_search_config(), c.content),
                                   websearch_to_tsquery(public.ragworker_text_search_config(), $1))
                        desc) as rank_ix
      from public.document_chunks c
      where c.user_id = $3
        and to_tsvector(public.ragworker_text_search_config(), c.content)
            @@ websearch_to_tsquery(public.ragworker_text_search_config(), $1)
      order by rank_ix
      limit least($4, 30) * 2
    )
    select c.id, c.file_id, f.original_name, c.content, c.chunk_index, c.page_number, c.heading,
           1 - (c.embedding <=> $2)::double precision,
           (coalesce(1.0 / ($7 + ft.rank_ix), 0.0) * $5
            + coalesce(1.0 / ($7 + s.rank_ix), 0.0) * $6)::double precision as score
    from full_text ft
    full outer join semantic s on s.id = ft.id
    join public.document_chunks c on c.id = coalesce(ft.id, s.id)
    join public.files f on f.id = c.file_id
    order by score desc, c.id
    limit $4$q$
  using query_text, query_embedding, user_id, match_count, full_text_weight, semantic_weight,
        rrf_k;
end
$$;

select ragworker_set_text_search_config('simple');
select ragworker_apply_grants();
