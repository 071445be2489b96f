//! Usage a billing page reads: `usage_metrics` equals the sums of `usage_logs` per key
//! whatever the workers go through, RLS shows users their own and their organisations'
//! rows, the month and current-day views agree with it, and `ragworker usage` prints it.

use std::time::Duration;

use uuid::Uuid;

use crate::support::{wait_until, TestEnv};

/// Keys on which usage_metrics and the sums of usage_logs differ (an empty list when they
/// agree), each as one line of text for the assertion's message.
async fn disagreements(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(
        "with logs as (
           select user_id, org_id, (created_at at time zone 'UTC')::date as day, provider, model,
                  action, sum(tokens_used)::bigint as tokens, sum(cost_usd) as cost_usd,
                  count(*) as events,
                  count(*) filter (where action = 'embedding'
                                     and metadata ->> 'outcome' = 'completed') as files,
                  coalesce(sum((metadata ->> 'requests')::bigint)
                             filter (where jsonb_typeof(metadata -> 'requests') = 'number'),
                           0)::bigint as requests,
                  coalesce(sum((metadata ->> 'unconfirmed_tokens')::bigint)
                             filter (where jsonb_typeof(metadata -> 'unconfirmed_tokens') = 'number'),
                           0)::bigint as unconfirmed_tokens
           from usage_logs group by 1, 2, 3, 4, 5, 6)
         select format('%s/%s/%s/%s/%s/%s: logs %s, metrics %s',
                       coalesce(l.user_id, m.user_id), coalesce(l.org_id, m.org_id),
                       coalesce(l.day, m.day), coalesce(l.provider, m.provider),
                       coalesce(l.model, m.model), coalesce(l.action, m.action),
                       row(l.tokens, l.cost_usd, l.events, l.files, l.requests, l.unconfirmed_tokens),
                       row(m.tokens, m.cost_usd, m.events, m.files, m.requests, m.unconfirmed_tokens))
         from logs l
         full join usage_metrics m
           on m.user_id = l.user_id and m.org_id is not distinct from l.org_id
          and m.day = l.day and m.provider = l.provider and m.model = l.model
          and m.action = l.action
         where case when l.user_id is null then m.events <> 0
                    when m.user_id is null then true
                    else row(l.tokens, l.cost_usd, l.events, l.files, l.requests, l.unconfirmed_tokens)
                         is distinct from
                         row(m.tokens, m.cost_usd, m.events, m.files, m.requests, m.unconfirmed_tokens)
               end",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn scalar(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&env.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_services_and_a_kill_9_keep_usage_metrics_equal_to_usage_logs() {
    let env = TestEnv::with_config(
        "[worker]\nconcurrency = 4\n[embedding]\nmax_inputs_per_request = 2\n\
         [queue]\nlease_secs = 30\nheartbeat_secs = 5",
    )
    .await;
    let (alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let org = Uuid::new_v4();
    let mut ids = crate::ledger::enqueue_prose(&env, alice, 24).await;
    ids.extend(crate::ledger::enqueue_prose(&env, bob, 24).await);
    let personal = crate::ledger::enqueue_prose(&env, carol, 12).await;
    sqlx::query("update files set org_id = $1 where id = any($2)")
        .bind(org)
        .bind(&ids)
        .execute(&env.pool)
        .await
        .unwrap();
    ids.extend(personal);
    env.fake.set_latency(Duration::from_millis(60));

    let mut services: Vec<_> = (0..3)
        .map(|i| {
            env.command(&["run"], &format!("service-{i}.log"))
                .spawn()
                .unwrap()
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "the services to send requests",
        || async { scalar(&env, "select count(*) from embedding_requests").await >= 40 },
    )
    .await;
    // SIGKILL one with requests in flight, and take every lease over, the live services'
    // included: a worker that loses its lease must not count what it spent twice.
    services[0].kill().await.unwrap();
    services[0].wait().await.unwrap();
    sqlx::query(
        "update files set locked_until = now() - interval '1 second'
         where processing_status = 'processing'",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    env.fake.set_latency(Duration::from_millis(5));
    wait_until(
        Duration::from_secs(120),
        "every file to complete",
        || async {
            scalar(
                &env,
                "select count(*) from files where processing_status <> 'completed'",
            )
            .await
                == 0
        },
    )
    .await;
    for service in &mut services[1..] {
        service.kill().await.unwrap();
        service.wait().await.unwrap();
    }
    // A search is billed too, under its own action.
    let (code, stderr) = env
        .run(&[
            "search",
            "--user",
            &alice.to_string(),
            "dredging near the berth",
        ])
        .await;
    assert_eq!(code, Some(0), "{stderr}");

    assert_eq!(disagreements(&env).await, Vec::<String>::new());
    let lease_lost_or_recovered = scalar(
        &env,
        "select count(*) from usage_logs
         where metadata ->> 'outcome' in ('lease_lost', 'recovered')",
    )
    .await;
    assert!(
        lease_lost_or_recovered > 0,
        "the kill and the takeover left usage of claims that did not complete"
    );
    assert_eq!(
        scalar(&env, "select sum(files)::bigint from usage_metrics").await,
        ids.len() as i64,
        "each file counted once, however many claims it took"
    );
    assert_eq!(
        scalar(
            &env,
            "select sum(tokens)::bigint from usage_metrics where action = 'search'"
        )
        .await,
        scalar(
            &env,
            "select sum(tokens_used)::bigint from usage_logs where action = 'search'"
        )
        .await
    );
    // The organisation's month through the view and through the command agree with the log.
    let org_tokens = scalar(
        &env,
        &format!("select sum(tokens_used)::bigint from usage_logs where org_id = '{org}'"),
    )
    .await;
    let out = env
        .command(&["usage", "--org", &org.to_string()], "usage.log")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", env.log("usage.log"));
    let report = String::from_utf8(out.stdout).unwrap();
    let total = report
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no total in:\n{report}"));
    let total_tokens: i64 = total
        .split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(total_tokens, org_tokens, "{report}");
    assert!(report.contains(&format!("organisation {org}")), "{report}");
}

/// What `user` sees through RLS, the way PostgREST runs a request.
async fn visible(env: &TestEnv, user: Uuid, sql: &str) -> String {
    crate::rls::as_user(env, Some(user), sql).await
}

async fn log_usage(
    env: &TestEnv,
    user: Uuid,
    org: Option<Uuid>,
    action: &str,
    tokens: i64,
    at: &str,
) {
    sqlx::query(
        "insert into usage_logs (user_id, org_id, action, provider, model, tokens_used,
                                 cost_usd, metadata, created_at)
         values ($1, $2, $3, 'openai', 'text-embedding-3-small', $4, $4 * 0.02 / 1000000,
                 jsonb_build_object('requests', 1, 'outcome', 'completed'), $5::timestamptz)",
    )
    .bind(user)
    .bind(org)
    .bind(action)
    .bind(tokens)
    .bind(at)
    .execute(&env.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_read_their_own_and_their_organisations_usage_and_the_views_agree() {
    let env = TestEnv::start().await;
    let (alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("insert into org_members (org_id, user_id) values ($1, $2), ($1, $3), ($4, $5)")
        .bind(acme)
        .bind(alice)
        .bind(bob)
        .bind(other)
        .bind(carol)
        .execute(&env.pool)
        .await
        .unwrap();
    let now = "now";
    log_usage(
        &env,
        alice,
        Some(acme),
        "embedding",
        1000,
        "2026-10-31 23:59:59+00",
    )
    .await;
    log_usage(
        &env,
        alice,
        Some(acme),
        "embedding",
        500,
        "2026-11-01 00:00:00+00",
    )
    .await;
    log_usage(&env, alice, None, "search", 7, "2026-11-02 12:00:00+00").await;
    log_usage(
        &env,
        bob,
        Some(acme),
        "embedding",
        300,
        "2026-11-15 08:00:00+00",
    )
    .await;
    log_usage(&env, bob, None, "embedding", 40, "2026-11-15 09:00:00+00").await;
    log_usage(
        &env,
        carol,
        Some(other),
        "embedding",
        9000,
        "2026-11-15 10:00:00+00",
    )
    .await;
    log_usage(&env, carol, Some(other), "embedding", 11, now).await;
    // Free-form metadata that is not a count is counted as none, never an error.
    sqlx::query(
        "insert into usage_logs (user_id, provider, model, tokens_used, cost_usd, metadata)
         values ($1, 'openai', 'text-embedding-3-small', 3, 0, '{\"requests\": \"many\"}')",
    )
    .bind(Uuid::new_v4())
    .execute(&env.pool)
    .await
    .unwrap();
    // Many writers on the same keys at once: increments, not overwrites.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let pool = env.pool.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    // Two keys per statement, in either order: no deadlock.
                    sqlx::query(
                        "insert into usage_logs (user_id, org_id, action, provider, model,
                                                 tokens_used, cost_usd, created_at)
                         select u, $3, 'embedding', 'openai', 'text-embedding-3-small', 2,
                                0.00000004, '2026-11-20 00:00:00+00'
                         from unnest(case when random() < 0.5 then array[$1::uuid, $2::uuid]
                                          else array[$2::uuid, $1::uuid] end) u",
                    )
                    .bind(alice)
                    .bind(bob)
                    .bind(acme)
                    .execute(&pool)
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(disagreements(&env).await, Vec::<String>::new());
    assert_eq!(
        scalar(
            &env,
            &format!(
                "select tokens from usage_metrics where user_id = '{alice}' and day = '2026-11-20'"
            )
        )
        .await,
        400
    );

    // Alice: her rows (personal and acme) and Bob's acme rows; not Bob's personal usage,
    // not Carol's organisation.
    let who = "select coalesce(string_agg(distinct user_id::text || '/' || coalesce(org_id::text, '-'), ' ' order by user_id::text || '/' || coalesce(org_id::text, '-')), '')
               from usage_metrics";
    let expect = |rows: &[(Uuid, Option<Uuid>)]| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|(u, o)| format!("{u}/{}", o.map(|o| o.to_string()).unwrap_or("-".into())))
            .collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(
        visible(&env, alice, who).await,
        expect(&[(alice, Some(acme)), (alice, None), (bob, Some(acme))])
    );
    assert_eq!(
        visible(&env, bob, who).await,
        expect(&[(alice, Some(acme)), (bob, Some(acme)), (bob, None)])
    );
    assert_eq!(
        visible(&env, carol, who).await,
        expect(&[(carol, Some(other))])
    );
    let nobody = Uuid::new_v4();
    assert_eq!(visible(&env, nobody, who).await, "");

    // The month view: November is acme's 500 + 300 + 2 × 400 (the writers), October its 1000.
    let acme_month = |month: &str| {
        format!(
            "select coalesce(sum(tokens), 0)::text from monthly_usage_summary
             where org_id = '{acme}' and month = '{month}'"
        )
    };
    assert_eq!(
        visible(&env, alice, &acme_month("2026-11-01")).await,
        "1600"
    );
    assert_eq!(
        visible(&env, alice, &acme_month("2026-10-01")).await,
        "1000"
    );
    assert_eq!(visible(&env, carol, &acme_month("2026-11-01")).await, "0");
    // Every row of the month view is the sum of its days; today's view is today's rows.
    assert_eq!(
        scalar(
            &env,
            "select count(*) from monthly_usage_summary s,
               lateral (select sum(tokens)::bigint as tokens, sum(requests)::bigint as requests,
                               sum(files)::bigint as files, sum(cost_usd) as cost_usd,
                               sum(events)::bigint as events
                        from usage_metrics m
                        where m.month = s.month and m.user_id = s.user_id
                          and m.org_id is not distinct from s.org_id and m.provider = s.provider
                          and m.model = s.model and m.action = s.action) d
             where (s.tokens, s.requests, s.files, s.cost_usd, s.events)
                   is distinct from (d.tokens, d.requests, d.files, d.cost_usd, d.events)"
        )
        .await,
        0
    );
    assert_eq!(
        visible(
            &env,
            carol,
            "select string_agg(tokens::text, ',') from current_day_usage"
        )
        .await,
        "11"
    );
    assert_eq!(
        scalar(&env, "select count(*) from current_day_usage").await,
        2,
        "Carol's and the free-form metadata's"
    );

    // Deleting and moving usage rows moves the totals with them.
    sqlx::query("delete from usage_logs where user_id = $1 and tokens_used = 40")
        .bind(bob)
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query(
        "update usage_logs set created_at = '2026-09-01 00:00:00+00', tokens_used = 1001
         where user_id = $1 and tokens_used = 1000",
    )
    .bind(alice)
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(disagreements(&env).await, Vec::<String>::new());
    assert_eq!(visible(&env, alice, &acme_month("2026-10-01")).await, "0");
    assert_eq!(
        visible(&env, alice, &acme_month("2026-09-01")).await,
        "1001"
    );

    // The command, for a user and a month.
    let out = env
        .command(
            &["usage", "--user", &alice.to_string(), "--month", "2026-11"],
            "usage.log",
        )
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", env.log("usage.log"));
    let report = String::from_utf8(out.stdout).unwrap();
    let line = |action: &str| {
        report
            .lines()
            .find(|l| l.starts_with(action))
            .unwrap_or_else(|| panic!("no {action} line in:\n{report}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // action provider model tokens requests files cost
    assert_eq!(line("embedding")[3], "900", "{report}");
    assert_eq!(line("search")[3], "7", "{report}");
    assert_eq!(line("total")[1], "907", "{report}");
    let (code, stderr) = env.run(&["usage", "--month", "2026-13"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("YYYY-MM"), "{stderr}");
}
