//! The search benchmark: a table of `--chunks` chunks (default 200,000) at `--dims`
//! dimensions (384) with skewed tenants (users with 10 %, 5 % and 1 % of the rows, many
//! small ones, organisations of 10 %, 2.5 % and 1 %), then, per tenant size: rows returned of
//! those asked for, recall@10 against the exact top 10, and p50 / p95 latency of
//! `search_similar_chunks`, `search_org_chunks` and `hybrid_search_chunks`, beside the
//! search function of the first migration ("v1") on the same table. Also what the
//! full-text index costs on the write path, and search through the index path while some
//! of a large tenant's chunks wait outside the index (deferred index maintenance).
//!
//! `bash scripts/search_bench.sh [--chunks N] [--dims D] [--queries Q]` starts PostgreSQL.
//!
//! Vectors are synthetic but shaped like embeddings of real documents: 200 topics, 20
//! subtopics each, a chunk is topic + subtopic + noise (uniform random vectors have no
//! meaningful nearest neighbours at all). Queries are perturbed subtopic centres.

#[path = "common/flags.rs"]
mod flags;
#[path = "common/rng.rs"]
mod rng;

#[path = "../tests/support/provision.rs"]
#[allow(dead_code)] // the database half only; no bucket here
mod provision;

use rng::Rng;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const TOPICS: usize = 200;
const SUBTOPICS: usize = 20;

struct Args {
    chunks: usize,
    dims: usize,
    queries: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut flags = [("--chunks", 200_000), ("--dims", 384), ("--queries", 20)];
    flags::parse(&mut flags)?;
    Ok(Args {
        chunks: flags[0].1,
        dims: flags[1].1,
        queries: flags[2].1,
    })
}

/// (label, tenant column, function, tenant, its chunks, ragworker.exact_search_limit, how
/// many of its chunks wait outside the HNSW index)
type Case = (
    String,
    &'static str,
    &'static str,
    Uuid,
    usize,
    Option<i64>,
    usize,
);

/// A user and how many chunks it owns.
struct Tenant {
    user: Uuid,
    rows: usize,
}

fn vector_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
    format!("[{}]", parts.join(","))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let admin_url = std::env::var("RAGWORKER_TEST_DATABASE_URL")
        .context("RAGWORKER_TEST_DATABASE_URL (scripts/search_bench.sh sets it)")?;
    let db = format!("search_bench_{}", Uuid::new_v4().simple());
    let url = provision::create_database(&admin_url, &db).await;
    let settings = ragworker::config::Settings::from_toml_layers(&[&format!(
        "[database]\nurl = \"{url}\"\n[embedding]\ndimensions = {}\n",
        args.dims
    )])?;
    let pool = ragworker::db::connect(&settings.database).await?;
    provision::migrate(&pool, &settings).await;
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::raw_sql(
        "set maintenance_work_mem = '2GB'; set max_parallel_maintenance_workers = 1;
         set session_replication_role = replica;",
    )
    .execute(&mut conn)
    .await?;

    // Tenants: 10 %, 5 %, 1 % users, the rest in users of 100 chunks.
    let n = args.chunks;
    let mut tenants = vec![
        Tenant {
            user: Uuid::new_v4(),
            rows: n / 10,
        },
        Tenant {
            user: Uuid::new_v4(),
            rows: n / 20,
        },
        Tenant {
            user: Uuid::new_v4(),
            rows: n / 100,
        },
    ];
    let taken: usize = tenants.iter().map(|t| t.rows).sum();
    let small = (n - taken) / 100;
    for _ in 0..small {
        tenants.push(Tenant {
            user: Uuid::new_v4(),
            rows: 100,
        });
    }
    // Organisations: the 10 % user's chunks; the first 50 small users (2.5 %); the 1 % user.
    let org_a = Uuid::new_v4();
    let org_b = Uuid::new_v4();
    let org_c = Uuid::new_v4();
    let org_of = |i: usize| match i {
        0 => Some(org_a),
        2 => Some(org_c),
        i if (3..53).contains(&i) => Some(org_b),
        _ => None,
    };

    // Topic and subtopic centres.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dims = args.dims;
    let topics: Vec<Vec<f32>> = (0..TOPICS)
        .map(|_| (0..dims).map(|_| rng.gauss()).collect())
        .collect();
    let subtopics: Vec<Vec<f32>> = (0..TOPICS * SUBTOPICS)
        .map(|s| {
            let t = &topics[s / SUBTOPICS];
            (0..dims).map(|d| t[d] + 0.6 * rng.gauss()).collect()
        })
        .collect();

    println!(
        "loading {n} chunks at {dims} dimensions over {} users",
        tenants.len()
    );
    let started = Instant::now();
    sqlx::raw_sql(
        "drop index if exists document_chunks_embedding_idx; drop index document_chunks_fts_idx;",
    )
    .execute(&mut conn)
    .await?;
    let mut files = String::new();
    for (i, t) in tenants.iter().enumerate() {
        let org = org_of(i).map_or("\\N".to_string(), |o| o.to_string());
        files.push_str(&format!(
            "{}\t{}\t{org}\tf{i}\tdocuments\t{}/f\tcompleted\n",
            t.user, t.user, t.user
        ));
    }
    let mut copy = conn
        .copy_in_raw(
            "copy files (id, user_id, org_id, original_name, storage_bucket, storage_path,
                         processing_status) from stdin",
        )
        .await?;
    copy.send(files.into_bytes()).await?;
    copy.finish().await?;
    let mut copy = conn
        .copy_in_raw(
            "copy document_chunks (file_id, user_id, org_id, content, chunk_index, token_count,
                                   embedding, embedding_model) from stdin",
        )
        .await?;
    let mut batch = String::new();
    for (i, t) in tenants.iter().enumerate() {
        let org = org_of(i).map_or("\\N".to_string(), |o| o.to_string());
        for c in 0..t.rows {
            let s = rng.below((TOPICS * SUBTOPICS) as u64) as usize;
            let centre = &subtopics[s];
            let v: Vec<f32> = (0..dims).map(|d| centre[d] + 0.35 * rng.gauss()).collect();
            batch.push_str(&format!(
                "{}\t{}\t{org}\ttopic{} subtopic{s} chunk {c} of tenant {i}\t{c}\t10\t{}\tbench\n",
                t.user,
                t.user,
                s / SUBTOPICS,
                vector_text(&v)
            ));
            if batch.len() > 8 << 20 {
                copy.send(std::mem::take(&mut batch).into_bytes()).await?;
            }
        }
    }
    copy.send(batch.into_bytes()).await?;
    copy.finish().await?;
    println!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    let t = Instant::now();
    sqlx::raw_sql(
        "create index document_chunks_embedding_idx on document_chunks
           using hnsw (embedding halfvec_cosine_ops) where not index_pending",
    )
    .execute(&mut conn)
    .await?;
    println!("HNSW index built in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    sqlx::raw_sql(
        "create index document_chunks_fts_idx on document_chunks
           using gin (to_tsvector(ragworker_text_search_config(), content));
         analyze;",
    )
    .execute(&mut conn)
    .await?;
    println!(
        "full-text index built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The first migration's function, to compare with.
    sqlx::raw_sql(
        "create function search_v1(query_embedding halfvec, user_id uuid,
                                   match_threshold float8, match_count int)
         returns table (id uuid, similarity float8) language sql stable as $$
           select c.id, 1 - (c.embedding <=> query_embedding)
           from document_chunks c join files f on f.id = c.file_id
           where c.user_id = search_v1.user_id
             and 1 - (c.embedding <=> query_embedding) >= match_threshold
           order by c.embedding <=> query_embedding limit match_count
         $$;",
    )
    .execute(&mut conn)
    .await?;
    sqlx::raw_sql("set session_replication_role = origin")
        .execute(&mut conn)
        .await?;

    println!(
        "\n| tenant | function | chunks | rows of 10 (min / mean) | recall@10 | p50 ms | p95 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let pct = |rows: usize| format!("{:.2}%", rows as f64 * 100.0 / n as f64);
    let users = [0usize, 1, 2, 3].map(|i| (tenants[i].user, tenants[i].rows));
    let orgs = [(org_a, users[0].1), (org_b, 50 * 100), (org_c, users[2].1)];
    let mut cases: Vec<Case> = Vec::new();
    for (user, rows) in users {
        cases.push((
            format!("user {}", pct(rows)),
            "user_id",
            "search_similar_chunks",
            user,
            rows,
            None,
            0,
        ));
    }
    // The HNSW path with iterative scans, for tenants above ragworker.exact_search_limit.
    for (user, rows) in &users[..3] {
        cases.push((
            format!("user {}", pct(*rows)),
            "user_id",
            "search_similar_chunks (index path)",
            *user,
            *rows,
            Some(0),
            0,
        ));
    }
    for (user, rows) in users {
        cases.push((
            format!("user {}", pct(rows)),
            "user_id",
            "search_v1",
            user,
            rows,
            None,
            0,
        ));
    }
    for (org, rows) in orgs {
        cases.push((
            format!("org {}", pct(rows)),
            "org_id",
            "search_org_chunks",
            org,
            rows,
            None,
            0,
        ));
    }
    for (user, rows) in [users[0], users[2]] {
        cases.push((
            format!("user {}", pct(rows)),
            "user_id",
            "hybrid_search_chunks",
            user,
            rows,
            None,
            0,
        ));
    }
    // The largest user's index path again while some of its chunks wait to be merged (as
    // after a burst of uploads): an exact scan of those beside the index. The UPDATE gives
    // them new row versions the partial index leaves out, as the worker's inserts are.
    for waiting in [2_000, 10_000] {
        cases.push((
            format!("user {}, {waiting} of its chunks waiting", pct(users[0].1)),
            "user_id",
            "search_similar_chunks (index path)",
            users[0].0,
            users[0].1,
            Some(0),
            waiting,
        ));
    }
    let mut now_waiting = 0;
    for (label, column, function, tenant, rows, exact_limit, waiting) in cases {
        if waiting != now_waiting {
            sqlx::query(
                "update document_chunks set index_pending = true
                 where id in (select id from document_chunks where user_id = $1
                              and not index_pending order by id limit $2)",
            )
            .bind(tenant)
            .bind((waiting - now_waiting) as i64)
            .execute(&mut conn)
            .await?;
            sqlx::raw_sql("vacuum analyze document_chunks")
                .execute(&mut conn)
                .await?;
            now_waiting = waiting;
        }
        sqlx::query(&format!(
            "set ragworker.exact_search_limit = {}",
            exact_limit.unwrap_or(20_000)
        ))
        .execute(&mut conn)
        .await?;
        let function_sql = function.trim_end_matches(" (index path)");
        let mut q_rng = Rng(42);
        let mut times = Vec::new();
        let (mut min_rows, mut total_rows, mut recall) = (usize::MAX, 0usize, 0.0);
        for _ in 0..args.queries {
            let s = q_rng.below((TOPICS * SUBTOPICS) as u64) as usize;
            let q: Vec<f32> = subtopics[s]
                .iter()
                .map(|x| x + 0.35 * q_rng.gauss())
                .collect();
            let q = vector_text(&q);
            let sql = if function == "hybrid_search_chunks" {
                format!(
                    "select id from hybrid_search_chunks('topic{}', '{q}', '{tenant}', 10)",
                    s / SUBTOPICS
                )
            } else {
                format!("select id from {function_sql}('{q}', '{tenant}', -1, 10)")
            };
            let t = Instant::now();
            let found: Vec<Uuid> = sqlx::query_scalar(&sql).fetch_all(&mut conn).await?;
            times.push(t.elapsed());
            let exact: Vec<Uuid> = sqlx::query_scalar(&format!(
                "select c.id from document_chunks c where c.{column} = '{tenant}'
                 order by (c.embedding <=> '{q}') + 0 limit 10"
            ))
            .fetch_all(&mut conn)
            .await?;
            min_rows = min_rows.min(found.len());
            total_rows += found.len();
            recall += found.iter().filter(|id| exact.contains(id)).count() as f64 / 10.0;
        }
        times.sort();
        let queries = args.queries as f64;
        println!(
            "| {label} | {function} | {rows} | {min_rows} / {:.1} | {} | {:.1} | {:.1} |",
            total_rows as f64 / queries,
            if function == "hybrid_search_chunks" {
                "(fused)".to_string()
            } else {
                format!("{:.3}", recall / queries)
            },
            percentile(&times, 0.5),
            percentile(&times, 0.95)
        );
    }

    // The full-text index on the write path: 5,000 more chunks with and without it, with
    // the HNSW index in place as in production.
    println!("\n| write path (5,000 chunks, HNSW present) | ms per chunk |");
    println!("|---|---|");
    for with_fts in [true, false, true, false] {
        if !with_fts {
            sqlx::raw_sql("drop index document_chunks_fts_idx")
                .execute(&mut conn)
                .await?;
        }
        let t = Instant::now();
        sqlx::raw_sql(&format!(
            "insert into document_chunks (file_id, user_id, content, chunk_index, token_count,
                                          embedding, embedding_model)
             select '{u}', '{u}', 'topic' || (g % 200) || ' extra chunk ' || g, 1000000 + g, 10,
                    (select embedding from document_chunks where user_id = '{u}'
                     order by chunk_index limit 1 offset g % 100), 'bench'
             from generate_series(1, 5000) g",
            u = tenants[3].user
        ))
        .execute(&mut conn)
        .await?;
        println!(
            "| {} full-text index | {:.3} |",
            if with_fts { "with" } else { "without" },
            t.elapsed().as_secs_f64() * 1000.0 / 5000.0
        );
        sqlx::raw_sql("delete from document_chunks where chunk_index >= 1000000")
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql("vacuum document_chunks")
            .execute(&mut conn)
            .await?;
        if !with_fts {
            sqlx::raw_sql(
                "create index document_chunks_fts_idx on document_chunks
                   using gin (to_tsvector(ragworker_text_search_config(), content))",
            )
            .execute(&mut conn)
            .await?;
        }
    }
    conn.close().await?;
    pool.close().await;
    let mut admin = PgConnection::connect(&admin_url).await?;
    sqlx::query(&format!("drop database {db}"))
        .execute(&mut admin)
        .await?;
    Ok(())
}
