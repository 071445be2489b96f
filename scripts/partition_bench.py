#!/usr/bin/env python3
"""Partitioning benchmark for document_chunks: one table vs hash partitions by user_id.

Run through scripts/partition_bench.sh (which starts PostgreSQL when needed), or directly with
RAGWORKER_TEST_DATABASE_URL set to an admin URL of a server with pgvector >= 0.7.
Python 3.11 standard library only; everything goes through `psql`.

Both layouts get the same rows, generated server-side and deterministically (setseed):
  (A) chunks_single: one table, btree on user_id, one HNSW index (halfvec_cosine_ops);
  (B) chunks_part:   partition by hash (user_id) into P partitions, btree on user_id and an
                     HNSW index created on the parent (so one per partition).
Tenants are skewed: one user with 10 % of the rows, one with 5 %, one with 1 %, the rest
users of 100 rows. Vectors are clustered: 200 random centres, each row = centre + noise,
normalised; each user's rows come from a few "topics" (~50 rows per user and topic), and a
query is a fresh point from one of the user's topics, so a tenant's top 10 are real
neighbours, not the noise floor of random vectors.

Measured per layout, phases interleaved A, B so that background load hits both alike:
  1. insert rate with the HNSW index live (empty table with its indexes, N rows in
     INSERT ... SELECT batches of --batch rows, one transaction each);
  2. HNSW build: truncate, drop the HNSW index, reload (timed too: bulk load rate without
     HNSW), vacuum analyze, then CREATE INDEX with maintenance_work_mem = 1GB and
     max_parallel_maintenance_workers = 1;
  3. tenant-filtered top-10 search (`where user_id = $u order by embedding <=> $q limit 10`)
     for the 10 % user, the 1 % user and a 100-row user: latency = EXPLAIN (ANALYZE, TIMING
     OFF) planning + execution time, i.e. measured inside the server, after one untimed
     warm-up pass; hnsw.ef_search = 100 and, on pgvector >= 0.8, hnsw.iterative_scan =
     relaxed_order;
  4. recall@10 of those queries against the exact answer (ordered by `(embedding <=> $q) + 0`,
     which no HNSW index can serve; checked with EXPLAIN), and the rows returned.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse

TENANTS = [  # (label, user index k in the users table)
    ("10% user", 0),
    ("1% user", 2),
    ("100-row user", 3),
]


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", "-n", type=int, default=env_int("PARTBENCH_ROWS", 100000))
    p.add_argument("--dims", "-d", type=int, default=env_int("PARTBENCH_DIMS", 384))
    p.add_argument("--partitions", "-p", type=int, default=env_int("PARTBENCH_PARTITIONS", 8))
    p.add_argument("--queries", "-q", type=int, default=env_int("PARTBENCH_QUERIES", 30),
                   help="queries per tenant (default 30)")
    p.add_argument("--batch", type=int, default=1000, help="rows per INSERT (default 1000)")
    p.add_argument("--noise", type=float, default=0.5,
                   help="per-dimension noise amplitude around a centre in [-1,1]^D (default 0.5)")
    p.add_argument("--seed", type=float, default=0.42)
    p.add_argument("--quick", action="store_true", help="N = 20000 (overrides --rows)")
    p.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    a = p.parse_args()
    if a.quick:
        a.rows = 20000
    if a.rows < 2000 or a.dims < 2 or a.partitions < 2 or a.queries < 1:
        p.error("need --rows >= 2000, --dims >= 2, --partitions >= 2, --queries >= 1")
    return a


def with_database(url, dbname):
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))
    return f"{url} dbname={dbname}"  # keyword/value conninfo


def psql(url, sql, quiet_notices=True):
    """Runs sql (a script, statements sent one by one, autocommit) and returns stdout."""
    proc = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=sql, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"psql failed (exit {proc.returncode}) running:\n{sql[:2000]}")
    if not quiet_notices and proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    return proc.stdout


def timed(url, sql):
    t0 = time.perf_counter()
    psql(url, sql)
    return time.perf_counter() - t0


def log(msg, t_start):
    print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)


def generate_sql(a):
    """Centres, users, rows (table source) and queries, deterministic via setseed."""
    n, d, noise = a.rows, a.dims, a.noise
    labels = ", ".join(f"('{label}', {k})" for label, k in TENANTS)
    # A row's vector: its centre plus uniform noise per dimension, normalised. The ARRAY
    # subquery references the outer row (c.v), so it is evaluated per row.
    vec = (f"l2_normalize(array(select (c.v[i] + {noise} * (random() * 2 - 1))::real "
           f"from generate_series(1, {d}) i)::vector)::halfvec({d})")
    # Users: 0 = 10 %, 1 = 5 %, 2 = 1 %, 3.. = 100 rows each (the last one the remainder).
    # A user's rows spread over ntopics centres, ~50 rows each (2..200 topics).
    return f"""
create extension if not exists vector;
select setseed({a.seed});
create table centres as
  select c, array(select (random() * 2 - 1)::real from generate_series(1, {d}) i
                  where c >= 0) v
  from generate_series(0, 199) c;
create table users as
  with big(k, n) as (values (0, round({n} * 0.10)::int), (1, round({n} * 0.05)::int),
                            (2, round({n} * 0.01)::int)),
       rest as (select {n} - sum(n)::int r from big),
       small as (select 3 + g k, least(100, r - g * 100) n
                 from rest, generate_series(0, ceil(r / 100.0)::int - 1) g)
  select k, md5('partbench-user-' || k)::uuid user_id, n,
         greatest(2, least(200, n / 50)) ntopics
  from (select * from big union all select * from small) s;
create table layout0 as
  select u.user_id, (u.k * 7919 + (j % u.ntopics) * 37) % 200 centre, random() r
  from users u, generate_series(0, u.n - 1) j;
create table source (id bigint primary key, user_id uuid not null,
                     embedding halfvec({d}) not null, content text not null);
insert into source
  select x.id, x.user_id, {vec},
         'chunk ' || x.id || ' ' || repeat(md5(x.id::text), 8)
  from (select row_number() over (order by r) id, user_id, centre from layout0) x
  join centres c on c.c = x.centre
  order by x.id;
drop table layout0;
create table queries as
  select t.label, q qn, u.user_id, u.n tenant_rows, {vec} embedding
  from (values {labels}) t(label, k)
  join users u on u.k = t.k
  cross join generate_series(0, {a.queries} - 1) q
  join centres c on c.c = (u.k * 7919 + (q % u.ntopics) * 37) % 200
  order by t.k, q;
vacuum analyze source;
vacuum analyze queries;
"""


def create_table_sql(layout, a, with_hnsw):
    d, p = a.dims, a.partitions
    cols = f"(id bigint not null, user_id uuid not null, embedding halfvec({d}), content text)"
    if layout == "A":
        sql = f"create table chunks_single {cols};\n"
        sql += "create index chunks_single_user_idx on chunks_single (user_id);\n"
    else:
        sql = f"create table chunks_part {cols} partition by hash (user_id);\n"
        for i in range(p):
            sql += (f"create table chunks_part_{i} partition of chunks_part "
                    f"for values with (modulus {p}, remainder {i});\n")
        sql += "create index chunks_part_user_idx on chunks_part (user_id);\n"
    if with_hnsw:
        sql += hnsw_sql(layout)
    return sql


def table(layout):
    return "chunks_single" if layout == "A" else "chunks_part"


def hnsw_sql(layout):
    t = table(layout)
    return f"create index {t}_hnsw on {t} using hnsw (embedding halfvec_cosine_ops);\n"


def insert_sql(layout, a):
    batches = (a.rows + a.batch - 1) // a.batch
    return f"""
do $$
begin
  for b in 0..{batches - 1} loop
    insert into {table(layout)} (id, user_id, embedding, content)
      select id, user_id, embedding, content from source
      where id > b::bigint * {a.batch} and id <= (b + 1)::bigint * {a.batch};
    commit;
  end loop;
end
$$;
"""


def index_size_mb(url, layout):
    # pg_partition_tree() is empty for an index that is not partitioned.
    out = psql(url, f"select greatest(pg_relation_size('{table(layout)}_hnsw'), "
                    f"(select coalesce(sum(pg_relation_size(relid)), 0) "
                    f"from pg_partition_tree('{table(layout)}_hnsw')));")
    return int(out.strip()) / 1048576


SEARCH_FUNCTION = """
create or replace function bench_search(tbl text) returns jsonb language plpgsql as $f$
declare
  r record;
  ann bigint[];
  ex bigint[];
  plan json;
  exact_plan json;
  result jsonb := '[]';
begin
  for r in select * from queries order by label, qn loop
    execute format('select array_agg(id) from (select id from %I where user_id = $1
                    order by embedding <=> $2 limit 10) s', tbl)
      into ann using r.user_id, r.embedding;
    execute format('explain (analyze, timing off, format json) select id from %I
                    where user_id = %L order by embedding <=> %L::halfvec limit 10',
                   tbl, r.user_id, r.embedding::text)
      into plan;
    execute format('select array_agg(id) from (select id from %I where user_id = $1
                    order by (embedding <=> $2) + 0 limit 10) s', tbl)
      into ex using r.user_id, r.embedding;
    exact_plan := null;
    if r.qn = 0 then
      execute format('explain (format json) select id from %I where user_id = %L
                      order by (embedding <=> %L::halfvec) + 0 limit 10',
                     tbl, r.user_id, r.embedding::text)
        into exact_plan;
    end if;
    result := result || jsonb_build_array(jsonb_build_object(
      'label', r.label, 'qn', r.qn, 'ann', coalesce(ann, '{}'), 'exact', coalesce(ex, '{}'),
      'plan', plan, 'exact_plan', exact_plan));
  end loop;
  return result;
end
$f$;
"""


def walk(node):
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def describe_plan(plan_json, index_am):
    """('hnsw' | 'btree+sort' | 'seqscan+sort', relations scanned, used jit, parallel)."""
    root = plan_json[0]["Plan"]
    nodes = list(walk(root))
    ams = {index_am.get(n.get("Index Name"), "?") for n in nodes if n.get("Index Name")}
    rels = {n["Relation Name"] for n in nodes if n.get("Relation Name")}
    if "hnsw" in ams:
        kind = "hnsw"
    elif "btree" in ams:
        kind = "btree+sort"
    else:
        kind = "seqscan+sort"
    if any(n["Node Type"].startswith("Gather") for n in nodes):
        kind += "(parallel)"
    if "JIT" in plan_json[0]:
        kind += "(jit)"
    return kind, len(rels)


def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarise(results, index_am):
    """Per tenant label: latency p50/p95, planning p50, recall, rows, plan kinds."""
    out = {}
    exact_uses_hnsw = False
    for label, _ in TENANTS:
        rs = [r for r in results if r["label"] == label]
        lat, planning, recall, nret, kinds, nrels = [], [], [], [], {}, set()
        for r in rs:
            top = r["plan"][0]
            planning.append(top["Planning Time"])
            lat.append(top["Planning Time"] + top["Execution Time"])
            exact = set(r["exact"])
            recall.append(len(set(r["ann"]) & exact) / len(exact) if exact else 1.0)
            nret.append(len(r["ann"]))
            kind, nrel = describe_plan(r["plan"], index_am)
            kinds[kind] = kinds.get(kind, 0) + 1
            nrels.add(nrel)
            if r.get("exact_plan"):
                ekind, _ = describe_plan(r["exact_plan"], index_am)
                exact_uses_hnsw |= ekind.startswith("hnsw")
        out[label] = {
            "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "plan_p50": pct(planning, 0.5),
            "recall": sum(recall) / len(recall), "min_recall": min(recall),
            "rows_min": min(nret), "rows_mean": sum(nret) / len(nret),
            "plan": ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())),
            "rels": "/".join(str(x) for x in sorted(nrels)),
        }
    return out, exact_uses_hnsw


def main():
    a = parse_args()
    admin_url = os.environ.get("RAGWORKER_TEST_DATABASE_URL")
    if not admin_url:
        sys.exit("RAGWORKER_TEST_DATABASE_URL is not set (run scripts/partition_bench.sh)")
    t_start = time.perf_counter()
    dbname = "partbench_" + secrets.token_hex(4)
    url = with_database(admin_url, dbname)
    psql(admin_url, f"create database {dbname};")
    try:
        run(a, url, t_start, dbname)
    finally:
        if a.keep:
            print(f"kept database {dbname}", file=sys.stderr)
        else:
            psql(admin_url, f"drop database if exists {dbname} with (force);")


def run(a, url, t_start, dbname):
    log(f"database {dbname}: generating N={a.rows} D={a.dims} rows and queries", t_start)
    gen_s = timed(url, generate_sql(a))
    ext = psql(url, "select extversion from pg_extension where extname = 'vector';").strip()
    version = tuple(int(x) for x in ext.split(".")[:2])
    iterative = version >= (0, 8)
    n_users = int(psql(url, "select count(*) from users;"))
    tenant_rows = dict(
        line.split("|") for line in psql(
            url, "select distinct label, tenant_rows from queries;").splitlines())

    m = {"A": {}, "B": {}}
    # 1. Insert rate with the HNSW index live.
    for layout in "AB":
        psql(url, create_table_sql(layout, a, with_hnsw=True))
        log(f"{layout}: inserting {a.rows} rows with the HNSW index live", t_start)
        secs = timed(url, insert_sql(layout, a))
        m[layout]["insert_live"] = a.rows / secs
        m[layout]["size_live"] = index_size_mb(url, layout)
    # 2. Reload without HNSW, then time CREATE INDEX.
    for layout in "AB":
        t = table(layout)
        psql(url, f"drop index {t}_hnsw;\ntruncate {t};\n")
        log(f"{layout}: reloading without HNSW", t_start)
        secs = timed(url, insert_sql(layout, a))
        m[layout]["insert_bulk"] = a.rows / secs
        psql(url, f"vacuum analyze {t};\ncheckpoint;\n")
        log(f"{layout}: CREATE INDEX (HNSW)", t_start)
        m[layout]["build_s"] = timed(url, (
            "set maintenance_work_mem = '1GB';\n"
            "set max_parallel_maintenance_workers = 1;\n" + hnsw_sql(layout)))
        m[layout]["size_built"] = index_size_mb(url, layout)
        psql(url, f"vacuum analyze {t};\n")
    parts = psql(url, "select min(n), max(n) from (select count(*) n from chunks_part "
                      "group by tableoid) s;").strip().split("|")
    # 3 + 4. Search latency and recall.
    log("searching (one warm-up pass, one measured pass per layout)", t_start)
    index_am = dict(line.split("|") for line in psql(
        url, "select c.relname, am.amname from pg_class c join pg_am am on am.oid = c.relam "
             "where c.relkind in ('i', 'I');").splitlines())
    settings = "set hnsw.ef_search = 100;\n"
    if iterative:
        settings += "set hnsw.iterative_scan = relaxed_order;\n"
    out = psql(url, SEARCH_FUNCTION + settings + (
        "select 'warm', count(*) from jsonb_array_elements(bench_search('chunks_single'));\n"
        "select 'A', bench_search('chunks_single');\n"
        "select 'warm', count(*) from jsonb_array_elements(bench_search('chunks_part'));\n"
        "select 'B', bench_search('chunks_part');\n"))
    exact_hnsw = False
    for line in out.splitlines():
        tag, _, payload = line.partition("|")
        if tag in ("A", "B"):
            m[tag]["search"], uses = summarise(json.loads(payload), index_am)
            exact_hnsw |= uses
    wall = time.perf_counter() - t_start

    # Report.
    print(f"partition_bench: N={a.rows} D={a.dims} P={a.partitions} users={n_users} "
          f"pgvector {ext} (iterative scans: {'relaxed_order' if iterative else 'n/a'}) "
          f"ef_search=100 queries/tenant={a.queries} batch={a.batch}")
    print(f"partition sizes (rows): min {parts[0]} max {parts[1]}; "
          f"data generation {gen_s:.1f}s")
    w = 34
    print(f"{'metric':<{w}} {'A single':>12} {'B part/' + str(a.partitions):>12} {'B/A':>7}")

    def row(name, va, vb, fmt="{:.1f}"):
        ratio = f"{vb / va:7.2f}" if va else "      -"
        print(f"{name:<{w}} {fmt.format(va):>12} {fmt.format(vb):>12} {ratio}")

    A, B = m["A"], m["B"]
    row("insert, HNSW live (rows/s)", A["insert_live"], B["insert_live"])
    row("bulk load, no HNSW (rows/s)", A["insert_bulk"], B["insert_bulk"])
    row("HNSW build (s)", A["build_s"], B["build_s"], "{:.2f}")
    row("HNSW size, inserted live (MB)", A["size_live"], B["size_live"])
    row("HNSW size, built (MB)", A["size_built"], B["size_built"])
    for label, _ in TENANTS:
        sa, sb = A["search"][label], B["search"][label]
        print(f"-- {label} ({tenant_rows[label]} rows): top-10 search")
        row("  latency p50 (ms, plan+exec)", sa["p50"], sb["p50"], "{:.2f}")
        row("  latency p95 (ms, plan+exec)", sa["p95"], sb["p95"], "{:.2f}")
        row("  planning p50 (ms)", sa["plan_p50"], sb["plan_p50"], "{:.3f}")
        row("  recall@10 mean", sa["recall"], sb["recall"], "{:.3f}")
        row("  recall@10 min", sa["min_recall"], sb["min_recall"], "{:.2f}")
        row("  rows returned mean", sa["rows_mean"], sb["rows_mean"], "{:.1f}")
        row("  rows returned min", sa["rows_min"], sb["rows_min"], "{:.0f}")
        print(f"  plan A: {sa['plan']} ({sa['rels']} rel scanned); "
              f"B: {sb['plan']} ({sb['rels']} partition(s) scanned)")
    print("exact answers: " + ("WARNING: an exact query used an HNSW index" if exact_hnsw
                               else "no HNSW index in their plans (EXPLAIN checked)"))
    print(f"wall time {wall:.1f}s")


if __name__ == "__main__":
    main()
