//! The usage benchmark: a year of a busy deployment's `usage_logs` (default 1,000,000 rows;
//! 1,000 users in 50 organisations of Zipf-skewed size, 100 users without one, one user
//! with 10 % of the rows), which the trigger sums into `usage_metrics` as they are written;
//! then p50 / p95 of reading one organisation's month and one user's month through
//! `monthly_usage_summary` (and today through `current_day_usage`) as PostgREST reads them
//! (role `authenticated`, JWT claims, RLS), beside the naive sum over `usage_logs`; and what
//! keeping the aggregate adds to each usage row's transaction on the write path (one row per
//! file, as the worker writes them), with one writer and with four writers on one hot key.
//!
//! `bash scripts/usage_bench.sh [--rows N] [--reads R]` starts PostgreSQL.

#[path = "common/flags.rs"]
mod flags;
#[path = "common/rng.rs"]
mod rng;

#[path = "../tests/support/provision.rs"]
#[allow(dead_code)] // the database half only; no bucket here
mod provision;

use std::time::{Duration, Instant};

use anyhow::Context;
use rng::Rng;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const USERS: usize = 1000;
const ORGS: usize = 50;
/// Users without an organisation (personal files).
const PERSONAL: usize = 100;
const DAYS: i64 = 365;
const ROWS_PER_STATEMENT: usize = 5000;

struct Args {
    rows: usize,
    reads: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut flags = [("--rows", 1_000_000), ("--reads", 200)];
    flags::parse(&mut flags)?;
    Ok(Args {
        rows: flags[0].1,
        reads: flags[1].1,
    })
}

struct User {
    id: Uuid,
    org: Option<Uuid>,
}

/// Picks an index by weight (cumulative weights, binary search).
fn pick(cumulative: &[f64], rng: &mut Rng) -> usize {
    let x = rng.unit() as f64 * cumulative.last().copied().unwrap_or(0.0);
    cumulative
        .partition_point(|&c| c < x)
        .min(cumulative.len() - 1)
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Times `reads` requests made by `reader` the way PostgREST makes them (role, claims,
/// query, in one transaction); returns (p50, p95) of the query and of the whole request, ms.
async fn time_reads(
    conn: &mut PgConnection,
    reader: Option<Uuid>,
    sql: &str,
    tenant: Uuid,
    months: &[chrono::NaiveDate],
    reads: usize,
    rng: &mut Rng,
) -> anyhow::Result<(f64, f64, f64, f64, usize)> {
    let mut query = Vec::with_capacity(reads);
    let mut request = Vec::with_capacity(reads);
    let mut rows = 0;
    for _ in 0..reads {
        let month = months[rng.below(months.len() as u64) as usize];
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        if let Some(reader) = reader {
            sqlx::query("set local role authenticated")
                .execute(&mut *tx)
                .await?;
            sqlx::query("select set_config('request.jwt.claims', $1, true)")
                .bind(serde_json::json!({ "sub": reader, "role": "authenticated" }).to_string())
                .execute(&mut *tx)
                .await?;
        }
        let q = Instant::now();
        let got = sqlx::query(sql)
            .bind(tenant)
            .bind(month)
            .fetch_all(&mut *tx)
            .await?;
        query.push(q.elapsed());
        tx.commit().await?;
        request.push(started.elapsed());
        rows = rows.max(got.len());
    }
    query.sort();
    request.sort();
    Ok((
        percentile(&query, 0.5),
        percentile(&query, 0.95),
        percentile(&request, 0.5),
        percentile(&request, 0.95),
        rows,
    ))
}

/// Mean time of `n` transactions each inserting one usage row for `user` (as the worker
/// settles a file), by `writers` connections at once; µs per transaction and rows per second.
async fn time_writes(
    pool: &PgPool,
    user: Uuid,
    org: Uuid,
    writers: usize,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut spent = Duration::ZERO;
            for _ in 0..n {
                let t = Instant::now();
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "insert into usage_logs (user_id, org_id, action, provider, model, tokens_used,
                                             cost_usd, metadata)
                     values ($1, $2, 'embedding', 'openai', 'text-embedding-3-small', 1234,
                             0.00002468, '{\"requests\": 2, \"outcome\": \"completed\"}')",
                )
                .bind(user)
                .bind(org)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                spent += t.elapsed();
            }
            anyhow::Ok(spent)
        }));
    }
    let mut spent = Duration::ZERO;
    for t in tasks {
        spent += t.await??;
    }
    let total = (writers * n) as f64;
    Ok((
        spent.as_secs_f64() * 1e6 / total,
        total / started.elapsed().as_secs_f64(),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let admin_url = std::env::var("RAGWORKER_TEST_DATABASE_URL")
        .context("RAGWORKER_TEST_DATABASE_URL (scripts/usage_bench.sh sets it)")?;
    let db = format!("usage_bench_{}", Uuid::new_v4().simple());
    let url = provision::create_database(&admin_url, &db).await;
    let settings = ragworker::config::Settings::from_toml_layers(&[&format!(
        "[database]\nurl = \"{url}\"\nmax_connections = 8\n[embedding]\ndimensions = 384\n"
    )])?;
    let pool = ragworker::db::connect(&settings.database).await?;
    provision::migrate(&pool, &settings).await;
    let mut conn = PgConnection::connect(&url).await?;

    // Organisations of Zipf size (weight 1/rank); users join them in proportion, so the
    // largest organisations have the most members and the most volume. One user of the
    // largest organisation writes 10 % of all rows.
    let mut rng = Rng(0x005E_ED0F_0A11_u64);
    let orgs: Vec<Uuid> = (0..ORGS).map(|_| Uuid::new_v4()).collect();
    let org_weights = cumulative((1..=ORGS).map(|r| 1.0 / r as f64));
    let mut users: Vec<User> = (0..USERS)
        .map(|i| User {
            id: Uuid::new_v4(),
            org: (i >= PERSONAL).then(|| orgs[pick(&org_weights, &mut rng)]),
        })
        .collect();
    users[PERSONAL].org = Some(orgs[0]);
    let heavy = PERSONAL;
    let user_weights = cumulative(users.iter().map(|u| match u.org {
        Some(o) => {
            let rank = orgs.iter().position(|x| *x == o).unwrap() + 1;
            // Members of large organisations are busier than those of small ones.
            1.0 / (rank as f64).sqrt()
        }
        None => 0.3,
    }));
    let members: Vec<(Uuid, Uuid)> = users
        .iter()
        .filter_map(|u| u.org.map(|o| (o, u.id)))
        .collect();
    sqlx::query(
        "insert into org_members (org_id, user_id) select * from unnest($1::uuid[], $2::uuid[])",
    )
    .bind(members.iter().map(|m| m.0).collect::<Vec<_>>())
    .bind(members.iter().map(|m| m.1).collect::<Vec<_>>())
    .execute(&mut conn)
    .await?;

    // A year of usage, oldest first, written in statements of 5,000 rows (the trigger sums
    // each statement's rows into usage_metrics).
    let load_started = Instant::now();
    let mut written = 0;
    while written < args.rows {
        let n = ROWS_PER_STATEMENT.min(args.rows - written);
        let mut user_ids = Vec::with_capacity(n);
        let mut org_ids = Vec::with_capacity(n);
        let mut actions = Vec::with_capacity(n);
        let mut models = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        let mut ages = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        for i in 0..n {
            let u = if rng.below(10) == 0 {
                &users[heavy]
            } else {
                &users[pick(&user_weights, &mut rng)]
            };
            user_ids.push(u.id);
            org_ids.push(u.org);
            let search = rng.below(100) < 15;
            actions.push(if search { "search" } else { "embedding" });
            models.push(if rng.below(10) < 7 {
                "text-embedding-3-small"
            } else {
                "all-MiniLM-L6-v2"
            });
            tokens.push(if search {
                5 + rng.below(45) as i64
            } else {
                200 + rng.below(20_000) as i64
            });
            requests.push(1 + rng.below(5) as i64);
            // Seconds before now, oldest rows first.
            let position = (written + i) as f64 / args.rows as f64;
            ages.push(((1.0 - position) * (DAYS * 86_400) as f64) as i64);
        }
        sqlx::query(
            "insert into usage_logs (user_id, org_id, action, provider, model, tokens_used,
                                     cost_usd, metadata, created_at)
             select u, o, a, case when m like 'text-%' then 'openai' else 'local' end, m, t,
                    case when m like 'text-%' then t * 0.02 / 1000000 else 0 end,
                    jsonb_build_object('requests', r, 'outcome', 'completed'),
                    now() - make_interval(secs => s)
             from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[],
                         $6::bigint[], $7::bigint[]) as x(u, o, a, m, t, r, s)",
        )
        .bind(&user_ids)
        .bind(&org_ids)
        .bind(&actions)
        .bind(&models)
        .bind(&tokens)
        .bind(&requests)
        .bind(&ages)
        .execute(&mut conn)
        .await?;
        written += n;
    }
    let load = load_started.elapsed();
    for table in ["usage_logs", "usage_metrics", "org_members"] {
        sqlx::query(&format!("vacuum analyze {table}"))
            .execute(&mut conn)
            .await?;
    }
    let metrics_rows: i64 = sqlx::query_scalar("select count(*) from usage_metrics")
        .fetch_one(&mut conn)
        .await?;
    let drift: i64 = sqlx::query_scalar(
        "select count(*) from (
           select user_id, org_id, (created_at at time zone 'UTC')::date d, provider, model, action,
                  sum(tokens_used) t, sum(cost_usd) c
           from usage_logs group by 1, 2, 3, 4, 5, 6) l
         full join usage_metrics m on m.user_id = l.user_id and m.org_id is not distinct from l.org_id
           and m.day = l.d and m.provider = l.provider and m.model = l.model and m.action = l.action
         where (l.t, l.c) is distinct from (m.tokens, m.cost_usd)",
    )
    .fetch_one(&mut conn)
    .await?;
    let monthly_drift: i64 = sqlx::query_scalar(
        "select count(*) from (
           select user_id, org_id, month, provider, model, action, sum(tokens) t, sum(cost_usd) c
           from usage_metrics group by 1, 2, 3, 4, 5, 6) d
         full join usage_metrics_monthly m on m.user_id = d.user_id
           and m.org_id is not distinct from d.org_id and m.month = d.month
           and m.provider = d.provider and m.model = d.model and m.action = d.action
         where (d.t, d.c) is distinct from (m.tokens, m.cost_usd)",
    )
    .fetch_one(&mut conn)
    .await?;
    println!(
        "usage_logs: {} rows over {DAYS} days, {USERS} users, {ORGS} organisations; loaded in {:.1} s ({:.0} rows/s, trigger included); usage_metrics: {metrics_rows} rows; keys where usage_metrics differs from the sum of usage_logs: {drift}, where usage_metrics_monthly differs from the sum of usage_metrics: {monthly_drift}",
        args.rows,
        load.as_secs_f64(),
        args.rows as f64 / load.as_secs_f64()
    );

    // Tenants to read: the largest and a middle organisation, the heavy user and a median one.
    let org_rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "select org_id, count(*) from usage_logs where org_id is not null group by 1 order by 2 desc",
    )
    .fetch_all(&mut conn)
    .await?;
    let user_rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select user_id, count(*) from usage_logs group by 1 order by 2 desc")
            .fetch_all(&mut conn)
            .await?;
    let total = args.rows as f64;
    let member_of = |org: Uuid| members.iter().find(|m| m.0 == org).map(|m| m.1).unwrap();
    let months: Vec<chrono::NaiveDate> = sqlx::query_scalar(
        "select distinct month from usage_metrics where month < date_trunc('month', now())::date order by 1",
    )
    .fetch_all(&mut conn)
    .await?;
    let (big_org, big_org_rows) = org_rows[0];
    let (mid_org, mid_org_rows) = org_rows[org_rows.len() / 2];
    let (heavy_user, heavy_rows) = user_rows[0];
    let (mid_user, mid_rows) = user_rows[user_rows.len() / 2];

    let org_month = "select provider, model, action, sum(tokens)::bigint, sum(requests)::bigint,
                            sum(files)::bigint, sum(cost_usd)
                     from monthly_usage_summary where org_id = $1 and month = $2
                     group by 1, 2, 3";
    let user_month = "select provider, model, action, sum(tokens)::bigint, sum(requests)::bigint,
                             sum(files)::bigint, sum(cost_usd)
                      from monthly_usage_summary where user_id = $1 and month = $2
                      group by 1, 2, 3";
    let org_month_naive = "select provider, model, action, sum(tokens_used)::bigint, count(*),
                                  sum(cost_usd)
                           from usage_logs
                           where org_id = $1 and created_at >= $2::date
                             and created_at < ($2::date + interval '1 month')
                           group by 1, 2, 3";
    let user_month_naive = "select provider, model, action, sum(tokens_used)::bigint, count(*),
                                   sum(cost_usd)
                            from usage_logs
                            where user_id = $1 and created_at >= $2::date
                              and created_at < ($2::date + interval '1 month')
                            group by 1, 2, 3";
    let org_month_daily =
        "select provider, model, action, sum(tokens)::bigint, sum(requests)::bigint,
                                  sum(files)::bigint, sum(cost_usd)
                           from usage_metrics where org_id = $1 and month = $2
                           group by 1, 2, 3";
    let today_org = "select provider, model, action, sum(tokens)::bigint, sum(cost_usd)
                     from current_day_usage where org_id = $1 and $2::date is not null
                     group by 1, 2, 3";

    println!(
        "\n{:<58} {:>9} {:>9} {:>11} {:>11}",
        "read (rows of usage_logs behind it)",
        "query p50",
        "query p95",
        "request p50",
        "request p95"
    );
    let cases: Vec<(String, Option<Uuid>, &str, Uuid)> = vec![
        (
            format!(
                "org month, largest org ({:.1} % of rows)",
                100.0 * big_org_rows as f64 / total
            ),
            Some(member_of(big_org)),
            org_month,
            big_org,
        ),
        (
            format!(
                "org month, median org ({:.2} %)",
                100.0 * mid_org_rows as f64 / total
            ),
            Some(member_of(mid_org)),
            org_month,
            mid_org,
        ),
        (
            format!(
                "user month, heaviest user ({:.1} %)",
                100.0 * heavy_rows as f64 / total
            ),
            Some(heavy_user),
            user_month,
            heavy_user,
        ),
        (
            format!(
                "user month, median user ({:.3} %)",
                100.0 * mid_rows as f64 / total
            ),
            Some(mid_user),
            user_month,
            mid_user,
        ),
        (
            "today, largest org (current_day_usage)".to_string(),
            Some(member_of(big_org)),
            today_org,
            big_org,
        ),
        (
            "org month from the daily rows (usage_metrics), largest org".to_string(),
            Some(member_of(big_org)),
            org_month_daily,
            big_org,
        ),
        (
            "naive: org month summed from usage_logs, largest org".to_string(),
            None,
            org_month_naive,
            big_org,
        ),
        (
            "naive: user month summed from usage_logs, heaviest user".to_string(),
            None,
            user_month_naive,
            heavy_user,
        ),
    ];
    let mut read_rng = Rng(0xBEEF);
    for (label, reader, sql, tenant) in cases {
        // Warm the cache once, as a deployed database would be.
        time_reads(&mut conn, reader, sql, tenant, &months, 5, &mut read_rng).await?;
        let (q50, q95, r50, r95, _) = time_reads(
            &mut conn,
            reader,
            sql,
            tenant,
            &months,
            args.reads,
            &mut read_rng,
        )
        .await?;
        println!("{label:<58} {q50:>7.2}ms {q95:>7.2}ms {r50:>9.2}ms {r95:>9.2}ms");
    }

    // The write path: one usage row per transaction, the aggregate on and off, alternating.
    println!(
        "\n{:<58} {:>12} {:>12}",
        "write path (one usage row per transaction)", "µs per row", "rows/s"
    );
    let hot_user = users[heavy].id;
    let hot_org = users[heavy].org.unwrap();
    for writers in [1usize, 4] {
        let mut with = Vec::new();
        let mut without = Vec::new();
        for round in 0..6 {
            let on = round % 2 == 0;
            sqlx::query(if on {
                "alter table usage_logs enable trigger usage_metrics_insert"
            } else {
                "alter table usage_logs disable trigger usage_metrics_insert"
            })
            .execute(&mut conn)
            .await?;
            let r = time_writes(&pool, hot_user, hot_org, writers, 300 / writers).await?;
            if on {
                with.push(r)
            } else {
                without.push(r)
            }
        }
        sqlx::query("alter table usage_logs enable trigger usage_metrics_insert")
            .execute(&mut conn)
            .await?;
        let mean = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
            v.iter().map(f).sum::<f64>() / v.len() as f64
        };
        for (label, v) in [
            ("with usage_metrics", &with),
            ("without (trigger disabled)", &without),
        ] {
            println!(
                "{:<58} {:>12.0} {:>12.0}",
                format!("{writers} writer(s), one hot key, {label}"),
                mean(v, |r| r.0),
                mean(v, |r| r.1)
            );
        }
    }
    drop(conn);
    pool.close().await;
    let mut admin = PgConnection::connect(&admin_url).await?;
    sqlx::query(&format!("drop database {db} with (force)"))
        .execute(&mut admin)
        .await?;
    Ok(())
}
