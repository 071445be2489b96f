//! Security as a Supabase project meets it: who may do what (roles, grants, default
//! privileges), the ownership rule that keeps one user from having the worker read another
//! user's object, search from any search_path, and storage credential failures that pause
//! work instead of failing files.

use std::collections::BTreeSet;
use std::sync::Arc;

use ragworker::config::{Ownership, Settings};
use ragworker::worker::{Outcome, Worker};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::support::{fixture, TestEnv};

/// A PostgREST-style request: `set local role`, the JWT's claims, and the search_path
/// given (PostgREST's own is `public, extensions`; `public` alone is the harder case).
async fn session(env: &TestEnv, role: &str, user: Option<Uuid>) -> Transaction<'static, Postgres> {
    let mut tx = env.pool.begin().await.unwrap();
    // `role` is one of the tests' own literals.
    sqlx::query(&format!("set local role {role}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("set local search_path = public")
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(user) = user {
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(serde_json::json!({ "sub": user, "role": role }).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx
}

/// Runs `sql` as `role` (for `user`) and returns the database's error, if any.
async fn attempt(env: &TestEnv, role: &str, user: Option<Uuid>, sql: &str) -> Option<String> {
    let mut tx = session(env, role, user).await;
    let result = sqlx::query(sql).execute(&mut *tx).await;
    tx.rollback().await.ok();
    match result {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => {
            Some(format!("{} {}", e.code().unwrap_or_default(), e.message()))
        }
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Every privilege `role` holds on ragworker's objects in public (tables, their columns,
/// functions that no extension owns), as "table: PRIV", "table.column: PRIV" (only where
/// the table-level privilege is absent) and "execute function".
async fn privileges(env: &TestEnv, role: &str) -> BTreeSet<String> {
    let rows: Vec<String> = sqlx::query_scalar(
        "with rels as (
           select c.oid, c.relname::text as name from pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
         )
         select r.name || ': ' || p
         from rels r,
              unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
         where has_table_privilege($1, r.oid, p)
         union all
         select r.name || '.' || a.attname || ': ' || p
         from rels r
         join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped,
              unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
         where has_column_privilege($1, r.oid, a.attnum, p) and not has_table_privilege($1, r.oid, p)
         union all
         select 'execute ' || f.proname
         from pg_proc f
         where f.pronamespace = 'public'::regnamespace
           and not exists (select 1 from pg_depend d where d.objid = f.oid and d.deptype = 'e')
           and has_function_privilege($1, f.oid, 'execute')",
    )
    .bind(role)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The functions app users (and service_role) may call: the search functions, what they
/// call with the caller's rights, and what the trigger and policies call.
fn callable_functions() -> BTreeSet<String> {
    [
        "search_similar_chunks",
        "search_org_chunks",
        "hybrid_search_chunks",
        "ragworker_search",
        "ragworker_text_search_config",
        "ragworker_path_violation",
        "ragworker_user_orgs",
    ]
    .iter()
    .map(|f| format!("execute {f}"))
    .collect()
}

/// What the README's schema contract promises app users (PostgREST's `authenticated`).
fn authenticated_contract() -> BTreeSet<String> {
    let mut expected = set(&[
        "files: SELECT",
        "files: INSERT",
        "files: DELETE",
        "document_chunks: SELECT",
        "document_chunks: DELETE",
        "usage_logs: SELECT",
        "usage_metrics: SELECT",
        "usage_metrics_monthly: SELECT",
        "monthly_usage_summary: SELECT",
        "current_day_usage: SELECT",
        "ragworker_buckets: SELECT",
        "org_members: SELECT",
    ]);
    expected.extend(callable_functions());
    for col in [
        "original_name",
        "conversation_id",
        "mime_type",
        "file_size",
        "storage_bucket",
        "storage_path",
        "processing_status",
    ] {
        expected.insert(format!("files.{col}: UPDATE"));
    }
    expected
}

/// What a worker connecting as Supabase's service_role needs.
fn service_role_contract() -> BTreeSet<String> {
    let mut expected = set(&[
        "ragworker_buckets: SELECT",
        "_sqlx_migrations: SELECT",
        "org_members: SELECT",
        "org_members: INSERT",
        "org_members: UPDATE",
        "org_members: DELETE",
        "usage_metrics: SELECT",
        "usage_metrics_monthly: SELECT",
        "monthly_usage_summary: SELECT",
        "current_day_usage: SELECT",
    ]);
    expected.extend(callable_functions());
    for table in [
        "files",
        "document_chunks",
        "usage_logs",
        "embedding_requests",
    ] {
        for p in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
            expected.insert(format!("{table}: {p}"));
        }
    }
    expected
}

fn assert_privileges(actual: &BTreeSet<String>, expected: &BTreeSet<String>, role: &str) {
    let extra: Vec<_> = actual.difference(expected).collect();
    let missing: Vec<_> = expected.difference(actual).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{role}: privileges beyond the contract {extra:?}, missing {missing:?}"
    );
}

/// Denials anon and authenticated must meet whatever the platform's defaults say.
async fn assert_denials(env: &TestEnv) {
    let user = Some(Uuid::new_v4());
    for sql in [
        "select * from files",
        "select * from document_chunks",
        "select * from usage_logs",
        "select * from usage_metrics",
        "select * from monthly_usage_summary",
        "select * from current_day_usage",
        "insert into files (user_id, original_name, storage_bucket, storage_path) values (gen_random_uuid(), 'x', 'b', 'p')",
        "delete from _sqlx_migrations",
        "select * from _sqlx_migrations",
        "truncate files cascade",
        "select ragworker_set_embedding_dimension(8)",
        "select ragworker_apply_grants()",
    ] {
        let err = attempt(env, "anon", None, sql)
            .await
            .unwrap_or_else(|| panic!("anon may run {sql}"));
        assert!(err.starts_with("42501"), "anon, {sql}: {err}");
    }
    for sql in [
        "truncate files cascade",
        "truncate document_chunks",
        "truncate usage_logs",
        "update document_chunks set content = 'x'",
        "insert into document_chunks (content) values ('x')",
        "update files set attempts = 0",
        "update files set extracted_text = 'x'",
        "update files set user_id = gen_random_uuid()",
        "insert into usage_logs (user_id, provider, model, tokens_used, cost_usd) values (gen_random_uuid(), 'p', 'm', 1, 0)",
        "delete from usage_logs",
        "insert into usage_metrics (user_id, day, provider, model, action) values (gen_random_uuid(), current_date, 'p', 'm', 'embedding')",
        "update usage_metrics set tokens = 0",
        "delete from usage_metrics",
        "truncate usage_metrics",
        "update usage_metrics_monthly set tokens = 0",
        "delete from _sqlx_migrations",
        "select * from _sqlx_migrations",
        "insert into ragworker_buckets values ('mine', 'server_only')",
        "select ragworker_set_embedding_dimension(8)",
        "select ragworker_apply_grants()",
    ] {
        let err = attempt(env, "authenticated", user, sql)
            .await
            .unwrap_or_else(|| panic!("authenticated may run {sql}"));
        assert!(err.starts_with("42501"), "authenticated, {sql}: {err}");
    }
}

#[tokio::test]
async fn supabase_migrate_is_silent_and_grants_exactly_the_contract() {
    let env = TestEnv::supabase("").await;
    let log = env.log("migrate.log");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "migrate printed: {log}"
    );
    let schema: String = sqlx::query_scalar(
        "select n.nspname::text from pg_extension e join pg_namespace n on n.oid = e.extnamespace
         where e.extname = 'vector'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(schema, "extensions");
    let superuser: bool =
        sqlx::query_scalar("select rolsuper from pg_roles where rolname = current_user")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(
        !superuser,
        "the worker runs as Supabase's postgres, not a superuser"
    );

    assert_privileges(&privileges(&env, "anon").await, &BTreeSet::new(), "anon");
    assert_privileges(
        &privileges(&env, "authenticated").await,
        &authenticated_contract(),
        "authenticated",
    );
    assert_privileges(
        &privileges(&env, "service_role").await,
        &service_role_contract(),
        "service_role",
    );
    assert_denials(&env).await;

    // Every function of ours pins a search_path that reaches pgvector's schema.
    let unpinned: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
           and not exists (select 1 from unnest(p.proconfig) c
                           where c like 'search_path=%' and c like '%extensions%')",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(
        unpinned.is_empty(),
        "functions without a pinned search_path: {unpinned:?}"
    );

    // Migrating again (a new worker version, a second replica) changes nothing and stays
    // silent, and the worker starts: its start-up checks pass as `postgres`.
    let (code, log) = env.run(&["migrate"]).await;
    assert!(code == Some(0) && !log.contains("WARN"), "{log}");
    let (code, log) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn vector_goes_to_the_extensions_schema_where_there_is_one() {
    let env = TestEnv::start().await;
    let name = format!("ext_{}", Uuid::new_v4().simple());
    let url = crate::support::create_database(
        &std::env::var("RAGWORKER_TEST_DATABASE_URL").unwrap(),
        &name,
    )
    .await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("create schema extensions")
        .execute(&mut conn)
        .await
        .unwrap();
    // The name was generated above, so formatting it in is safe.
    sqlx::query(&format!(
        "alter database {name} set search_path = \"$user\", public, extensions"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    ragworker::db::migrate(
        &pool,
        &env.settings.embedding,
        &env.settings.storage,
        &env.settings.search,
    )
    .await
    .unwrap();
    let schema: String = sqlx::query_scalar(
        "select n.nspname::text from pg_extension e join pg_namespace n on n.oid = e.extnamespace
         where e.extname = 'vector'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(schema, "extensions");
    pool.close().await;
}

#[tokio::test]
async fn plain_postgres_grants_exactly_the_contract() {
    let env = TestEnv::start().await;
    // The platform's own role for app users exists; PUBLIC is every role, anon included.
    assert_privileges(
        &privileges(&env, "authenticated").await,
        &authenticated_contract(),
        "authenticated",
    );
    assert_privileges(
        &privileges(&env, "public").await,
        &BTreeSet::new(),
        "PUBLIC",
    );
    let user = Some(Uuid::new_v4());
    for sql in [
        "truncate files cascade",
        "update document_chunks set content = 'x'",
        "delete from _sqlx_migrations",
        "select ragworker_set_embedding_dimension(8)",
    ] {
        let err = attempt(&env, "authenticated", user, sql).await;
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("42501")),
            "authenticated, {sql}: {err:?}"
        );
    }
}

/// The vector of some chunk, as the literal an app would send.
async fn some_vector(env: &TestEnv, file: Uuid) -> String {
    sqlx::query_scalar("select embedding::text from document_chunks where file_id = $1 limit 1")
        .bind(file)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Uploads a fixture to `<user>/<file id>/<name>` and records it in storage.objects as
/// Supabase Storage would (owner_id = the uploader's JWT sub); returns (file id, path).
async fn upload(env: &TestEnv, user: Uuid, name: &str) -> (Uuid, String) {
    let id = Uuid::new_v4();
    let path = format!("{user}/{id}/{name}");
    env.storage
        .put(
            &env.bucket,
            &path,
            std::fs::read(fixture(name)).unwrap(),
            "text/plain",
        )
        .await
        .unwrap();
    let mut admin = PgConnection::connect(&env.superuser_url).await.unwrap();
    sqlx::query("insert into storage.buckets (id, name) values ($1, $1) on conflict do nothing")
        .bind(&env.bucket)
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("insert into storage.objects (bucket_id, name, owner_id) values ($1, $2, $3)")
        .bind(&env.bucket)
        .bind(&path)
        .bind(user.to_string())
        .execute(&mut admin)
        .await
        .unwrap();
    (id, path)
}

/// Registers an upload as the app does through PostgREST, as `user`.
async fn register(env: &TestEnv, user: Uuid, id: Uuid, bucket: &str, path: &str) -> Option<String> {
    let mut tx = session(env, "authenticated", Some(user)).await;
    let result = sqlx::query(
        "insert into files (id, user_id, original_name, storage_bucket, storage_path, mime_type)
         values ($1, $2, 'upload.txt', $3, $4, 'text/plain')",
    )
    .bind(id)
    .bind(user)
    .bind(bucket)
    .bind(path)
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {
            tx.commit().await.unwrap();
            None
        }
        Err(sqlx::Error::Database(e)) => {
            Some(format!("{} {}", e.code().unwrap_or_default(), e.message()))
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_postgrest_session_registers_uploads_and_searches_under_rls() {
    let env = TestEnv::supabase("").await;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let (id, path) = upload(&env, alice, "notes.txt").await;
    assert_eq!(register(&env, alice, id, &env.bucket, &path).await, None);
    let done = env.drain().await;
    assert!(
        matches!(done[..], [(_, Outcome::Completed { .. })]),
        "{done:?}"
    );

    // search_path = public: the function finds pgvector's operators through its own path.
    let q = format!(
        "select count(*) from search_similar_chunks('{}', $1, -1, 10)",
        some_vector(&env, id).await
    );
    for (user, sees) in [(alice, true), (bob, false)] {
        let mut tx = session(&env, "authenticated", Some(user)).await;
        let n: i64 = sqlx::query_scalar(&q)
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n > 0, sees, "{user}: {n} chunks");
        // Asking for the other user's chunks by id does not get around RLS either.
        let n: i64 = sqlx::query_scalar(&q)
            .bind(alice)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n > 0, sees, "{user} asking for alice's chunks: {n}");
    }

    // The user may ask for processing again (a fresh attempt budget), nothing else.
    let err = attempt(
        &env,
        "authenticated",
        Some(alice),
        &format!("update files set processing_status = 'failed' where id = '{id}'"),
    )
    .await;
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("only set processing_status to pending")),
        "{err:?}"
    );
    let pending = "update files set processing_status = 'pending' where id = $1";
    assert_eq!(rows_as(&env, alice, pending, id).await, 1);
    let row = env.file(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    // Bob cannot touch Alice's row at all (RLS: zero rows).
    let rename = "update files set original_name = 'mine' where id = $1";
    assert_eq!(rows_as(&env, bob, rename, id).await, 0);
}

/// Runs `sql` (with `$1` = `id`) as app user `user` and commits; returns the rows it touched.
async fn rows_as(env: &TestEnv, user: Uuid, sql: &str, id: Uuid) -> u64 {
    let mut tx = session(env, "authenticated", Some(user)).await;
    let n = sqlx::query(sql)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn a_user_cannot_register_or_move_a_row_onto_another_users_object() {
    let env = TestEnv::supabase("").await;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let (_, alices) = upload(&env, alice, "notes.txt").await;
    let bucket = env.bucket.clone();
    let denied = |e: Option<String>, reason: &str| {
        let e = e.expect("refused");
        assert!(e.starts_with("42501") && e.contains(reason), "{e}");
    };
    // Directly, with "..", and in a bucket ragworker does not read.
    denied(
        register(&env, bob, Uuid::new_v4(), &bucket, &alices).await,
        "object is not under this user's folder",
    );
    denied(
        register(
            &env,
            bob,
            Uuid::new_v4(),
            &bucket,
            &format!("{bob}/../{alices}"),
        )
        .await,
        "\"..\" segment",
    );
    denied(
        register(&env, bob, Uuid::new_v4(), &bucket, &format!("{bob}//x.txt")).await,
        "empty segment",
    );
    denied(
        register(
            &env,
            bob,
            Uuid::new_v4(),
            "avatars",
            &format!("{bob}/x.txt"),
        )
        .await,
        "not one ragworker may read",
    );
    // A row of his own is fine; moving it onto Alice's object is not, before or after a
    // claim.
    let (own, bobs) = upload(&env, bob, "guide.md").await;
    assert_eq!(register(&env, bob, own, &bucket, &bobs).await, None);
    // An insert that names the worker's columns (as ORMs do) gets their defaults.
    let (forged, forged_path) = upload(&env, bob, "notes.txt").await;
    let insert = format!(
        "insert into files (id, user_id, original_name, storage_bucket, storage_path,
                            attempts, extracted_text, chunk_count, locked_by, last_error)
         values ('{forged}', '{bob}', 'n.txt', '{bucket}', '{forged_path}',
                 99, 'forged text', 7, 'someone', 'x')"
    );
    let mut tx = session(&env, "authenticated", Some(bob)).await;
    sqlx::query(&insert).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let row = env.file(forged).await;
    assert_eq!(
        (
            row.attempts,
            row.extracted_text,
            row.chunk_count,
            row.last_error
        ),
        (0, None, 0, None)
    );
    let mv = format!("update files set storage_path = '{alices}' where id = '{own}'");
    denied(
        attempt(&env, "authenticated", Some(bob), &mv).await,
        "not under this user's folder",
    );
    let (file, _) = env.worker.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(file.id, own);
    let mv = format!("update files set storage_path = '{bob}/other.txt' where id = '{own}'");
    denied(
        attempt(&env, "authenticated", Some(bob), &mv).await,
        "cannot change once ragworker has claimed it",
    );
    denied(
        attempt(
            &env,
            "authenticated",
            Some(bob),
            &format!("update files set user_id = '{alice}' where id = '{own}'"),
        )
        .await,
        "permission denied",
    );
}

/// A worker of `env` whose storage credentials storage rejects: any download it tried would
/// fail with "storage rejected the worker's credentials".
async fn worker_with_wrong_secret(env: &TestEnv, extra: &str) -> Arc<Worker> {
    let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let layer = format!(
        "[storage]\naccess_key_id = \"{id}\"\nsecret_access_key = \"not-the-secret\"\n{extra}"
    );
    let settings = Settings::from_toml_layers(&[&env.config_toml, &layer]).unwrap();
    Arc::new(
        ragworker::build_worker(Arc::new(settings), env.pool.clone(), "wrong-secret".into())
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn rows_that_break_the_rule_fail_before_anything_is_downloaded() {
    let env = TestEnv::supabase("").await;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let (a_id, alices) = upload(&env, alice, "notes.txt").await;
    assert_eq!(
        register(&env, alice, a_id, &env.bucket, &alices).await,
        None
    );
    env.drain().await;
    assert_eq!(env.file(a_id).await.status, "completed");

    // Rows the trigger would refuse, written around it (written before this version, or by
    // a superuser with triggers off): the worker applies the rule itself.
    let (_, uploaded_by_alice) = upload(&env, alice, "guide.md").await;
    let in_bobs_folder = format!("{bob}/{}", uploaded_by_alice.split_once('/').unwrap().1);
    sqlx::query("update storage.objects set name = $1 where name = $2")
        .bind(&in_bobs_folder)
        .bind(&uploaded_by_alice)
        .execute(&mut PgConnection::connect(&env.superuser_url).await.unwrap())
        .await
        .unwrap();
    let cases = [
        (
            env.bucket.clone(),
            alices.clone(),
            "object is not under this user's folder",
        ),
        (
            env.bucket.clone(),
            format!("{bob}/../{alices}"),
            "the object path has a \".\" or \"..\" segment",
        ),
        (
            env.bucket.clone(),
            in_bobs_folder,
            "object was uploaded by another user",
        ),
        (
            "avatars".to_string(),
            format!("{bob}/x.txt"),
            "bucket \"avatars\" is not one ragworker may read (storage.buckets)",
        ),
    ];
    let mut admin = PgConnection::connect(&env.superuser_url).await.unwrap();
    sqlx::query("set session_replication_role = replica")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (bucket, path, _) in &cases {
        let id: Uuid = sqlx::query_scalar(
            "insert into files (user_id, original_name, storage_bucket, storage_path)
             values ($1, 'stolen.txt', $2, $3) returning id",
        )
        .bind(bob)
        .bind(bucket)
        .bind(path)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        ids.push(id);
    }
    let requests_before = env.fake.requests();
    let worker = worker_with_wrong_secret(&env, "").await;
    while let Some((id, outcome)) = worker.run_once().await.unwrap() {
        let (_, _, reason) = &cases[ids.iter().position(|i| *i == id).unwrap()];
        assert_eq!(
            outcome,
            Outcome::Failed {
                error: reason.to_string()
            }
        );
    }
    for (id, (_, _, reason)) in ids.iter().zip(&cases) {
        let row = env.file(*id).await;
        assert_eq!(row.status, "failed");
        assert_eq!(row.last_error.as_deref(), Some(*reason));
        assert_eq!(row.extracted_text, None);
        assert_eq!(env.chunk_count(*id).await, 0);
    }
    assert_eq!(env.fake.requests(), requests_before, "nothing was embedded");
    // Bob sees none of Alice's text anywhere.
    let mut tx = session(&env, "authenticated", Some(bob)).await;
    let leaked: i64 = sqlx::query_scalar(
        "select (select count(*) from document_chunks)
              + (select count(*) from files where extracted_text is not null)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn the_database_and_the_worker_word_the_path_rule_alike() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let cases = [
        format!("{user}/f/a.pdf"),
        format!("{user}/a.pdf"),
        String::new(),
        user.to_string(),
        format!("{user}/"),
        format!("/{user}/a.pdf"),
        format!("{user}//a.pdf"),
        format!("{user}/../x/a.pdf"),
        format!("{user}/./a.pdf"),
        format!("{user}/a\\b.pdf"),
        format!("{user}/a\tb.pdf"),
        format!("{user}/a\u{7f}.pdf"),
        format!("{user}/é/ü.pdf"),
        format!("{}/a.pdf", user.to_string().to_uppercase()),
        format!("{}/a.pdf", Uuid::new_v4()),
        format!("{user}/{}", "é".repeat(512)),
        format!("{user}/{}", "x".repeat(1000)),
        "imports/2026/a.pdf".to_string(),
        "..".to_string(),
    ];
    for ownership in [Ownership::UserFolder, Ownership::ServerOnly] {
        for path in &cases {
            let sql: Option<String> =
                sqlx::query_scalar("select ragworker_path_violation($1, $2, $3)")
                    .bind(path)
                    .bind(user)
                    .bind(ownership.as_str())
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            let rust = ragworker::ownership::path_problem(path, user, ownership);
            assert_eq!(sql.as_deref(), rust, "{ownership:?} {path:?}");
        }
    }
}

#[tokio::test]
async fn rejected_storage_credentials_pause_claiming_and_keep_the_file_pending() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let id = env.enqueue(user, "notes.txt").await;
    let wrong = worker_with_wrong_secret(&env, "pause_secs = 600").await;
    let (_, outcome) = wrong.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Retrying { .. }), "{outcome:?}");
    let row = env.file(id).await;
    assert_eq!(row.status, "pending");
    assert_eq!(row.attempts, 0, "credentials are not the document's fault");
    let error = row.last_error.unwrap();
    assert!(
        error.starts_with("storage rejected the worker's credentials: HTTP 403"),
        "{error}"
    );
    assert!(
        error.len() < 300 && !error.contains('{'),
        "short and readable: {error}"
    );
    // Claiming is paused, even for a file that is due.
    env.make_due(id).await;
    assert!(wrong.claim(4).await.unwrap().is_empty());
    // With working credentials the file completes, its attempt budget intact.
    let done = env.drain().await;
    assert!(
        matches!(done[..], [(_, Outcome::Completed { .. })]),
        "{done:?}"
    );
    assert_eq!(env.file(id).await.attempts, 1);

    // The start-up check refuses to run with credentials storage rejects.
    env.set_storage_config([
        (
            "access_key_id",
            std::env::var("AWS_ACCESS_KEY_ID").unwrap().into(),
        ),
        ("secret_access_key", "not-the-secret".into()),
    ]);
    env.enqueue(user, "guide.md").await;
    let (code, log) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("storage rejected the worker's credentials: HTTP 403"),
        "{log}"
    );
    assert!(!log.contains("not-the-secret"), "secrets are never logged");
}

#[tokio::test]
async fn a_missing_bucket_says_so_and_the_default_bucket_is_not_required() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let good = env.enqueue(user, "notes.txt").await;
    // The configuration lists a bucket that does not exist, and its default bucket (which
    // only `enqueue` uses) does not exist either.
    let absent = format!("absent-{}", Uuid::new_v4().simple());
    env.set_storage_config([
        ("bucket", absent.clone().into()),
        ("buckets", vec![env.bucket.clone()].into()),
    ]);
    let (code, log) = env.run(&["migrate"]).await;
    assert_eq!(code, Some(0), "{log}");
    let lost: Uuid = sqlx::query_scalar(
        "insert into files (user_id, original_name, storage_bucket, storage_path)
         values ($1, 'lost.txt', $2, $3) returning id",
    )
    .bind(user)
    .bind(&absent)
    .bind(format!("{user}/lost.txt"))
    .fetch_one(&env.pool)
    .await
    .unwrap();

    let (code, log) = env.run(&["backfill"]).await;
    assert_eq!(code, Some(2), "one file failed: {log}");
    assert!(
        log.contains(&format!("bucket {absent:?} does not exist or these storage credentials cannot see it (1 queued files name it)")),
        "{log}"
    );
    assert_eq!(env.file(good).await.status, "completed");
    let row = env.file(lost).await;
    assert_eq!(row.status, "failed");
    assert_eq!(
        row.last_error.as_deref(),
        Some(&*format!(
            "bucket {absent:?} does not exist or these storage credentials cannot see it"
        ))
    );
}

#[tokio::test]
async fn upgrading_from_the_first_migration_keeps_every_row() {
    let env = TestEnv::start().await;
    // A database as the previous version left it: the first migration, the dimension set
    // by its `migrate`, and data, including rows today's rule would refuse.
    let url = crate::support::fresh_database("up").await;
    let dir = tempfile::tempdir().unwrap();
    let first = ragworker::db::MIGRATOR.iter().next().unwrap();
    std::fs::write(
        dir.path().join(format!(
            "{}_{}.sql",
            first.version,
            first.description.replace(' ', "_")
        )),
        &*first.sql,
    )
    .unwrap();
    let old = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    old.run(&pool).await.unwrap();
    sqlx::query("select ragworker_set_embedding_dimension($1)")
        .bind(crate::support::DIMENSIONS as i32)
        .execute(&pool)
        .await
        .unwrap();
    let user = Uuid::new_v4();
    let vector = format!("[{}]", vec!["0.5"; crate::support::DIMENSIONS].join(","));
    let done: Uuid = sqlx::query_scalar(
        "insert into files (user_id, original_name, storage_bucket, storage_path,
                            processing_status, extracted_text, chunk_count)
         values ($1, 'old.txt', 'documents', 'anywhere/old.txt', 'completed', 'old text', 1)
         returning id",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into document_chunks (file_id, user_id, content, chunk_index, token_count,
                                      embedding, embedding_model)
         values ($1, $2, 'old text', 0, 2, $3::halfvec, 'm')",
    )
    .bind(done)
    .bind(user)
    .bind(&vector)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into usage_logs (user_id, provider, model, tokens_used, cost_usd, metadata)
         values ($1, 'openai', 'm', 2, 0.00000004, jsonb_build_object('file_id', $2::text))",
    )
    .bind(user)
    .bind(done)
    .execute(&pool)
    .await
    .unwrap();
    let legacy: Uuid = sqlx::query_scalar(
        "insert into files (user_id, original_name, storage_bucket, storage_path)
         values ($1, 'legacy.txt', 'documents', 'someone/else/legacy.txt') returning id",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    let snapshot = "select (select jsonb_agg(f order by id) from (select id, user_id, original_name, storage_bucket, storage_path, processing_status, extracted_text, chunk_count, attempts from files) f)::text
                    || (select jsonb_agg(c order by id) from (select id, file_id, content, embedding::text, embedding_model from document_chunks) c)::text
                    || (select jsonb_agg(u order by id) from (select id, tokens_used, cost_usd, metadata from usage_logs) u)::text";
    let before: String = sqlx::query_scalar(snapshot).fetch_one(&pool).await.unwrap();

    // Today's migrate, with the defaults' bucket.
    ragworker::db::migrate(
        &pool,
        &env.settings.embedding,
        &Settings::from_toml_layers(&[]).unwrap().storage,
        &env.settings.search,
    )
    .await
    .unwrap();
    let after: String = sqlx::query_scalar(snapshot).fetch_one(&pool).await.unwrap();
    assert_eq!(before, after, "no row changed");
    // The chunks written before deferral existed count as indexed (the index the first
    // migration built holds them).
    let waiting: i64 =
        sqlx::query_scalar("select count(*) from document_chunks where index_pending")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(waiting, 0);
    // The usage recorded before usage_metrics existed is in it.
    let metrics: (i64, String, i64, String) = sqlx::query_as(
        "select tokens, cost_usd::text, events, month::text from usage_metrics where user_id = $1",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    let month: String =
        sqlx::query_scalar("select date_trunc('month', now() at time zone 'UTC')::date::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(metrics, (2, "0.0000000400".to_string(), 1, month));
    let monthly: (i64, String) = sqlx::query_as(
        "select tokens, cost_usd::text from monthly_usage_summary where user_id = $1",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(monthly, (2, "0.0000000400".to_string()));
    let versions: Vec<i64> = sqlx::query_scalar("select version from _sqlx_migrations order by 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        versions,
        ragworker::db::MIGRATOR
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    // The legacy row is kept; the rule says why the worker will refuse it.
    let why: Option<String> = sqlx::query_scalar(
        "select ragworker_path_violation(storage_path, user_id, 'user_folder') from files where id = $1",
    )
    .bind(legacy)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        why.as_deref(),
        Some("object is not under this user's folder")
    );
    // Its owner still finds the old chunks, now through the locked-down grants.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("set local role authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(serde_json::json!({ "sub": user }).to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let hits: i64 = sqlx::query_scalar(&format!(
        "select count(*) from search_similar_chunks('{vector}', $1, -1, 5)"
    ))
    .bind(user)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(hits, 1);
    tx.rollback().await.unwrap();
    pool.close().await;
}
