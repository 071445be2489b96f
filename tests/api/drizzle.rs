//! The Drizzle schema apps use (`clients/drizzle/schema.ts`) against the migrated database:
//! the SQL drizzle-kit generates from it builds the same tables, indexes, constraints and
//! policies (`pg_dump -s`, apart from what Drizzle cannot express: triggers and grants), it
//! type-checks, and a typed round trip (insert as the user, the worker completes the file,
//! read chunks and search) works. Runs Node from `clients/drizzle/node_modules`, which
//! `scripts/test.sh` installs with `npm ci`.

use std::path::{Path, PathBuf};
use std::process::Output;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::support::{fixture, TestEnv, DIMENSIONS};

const TABLES: [&str; 8] = [
    "files",
    "document_chunks",
    "usage_logs",
    "ragworker_buckets",
    "usage_metrics",
    "usage_metrics_monthly",
    "monthly_usage_summary",
    "current_day_usage",
];

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/drizzle")
}

/// Runs a tool of `clients/drizzle/node_modules/.bin` there; panics with its output on failure.
fn node_tool(tool: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let bin = client_dir().join("node_modules/.bin").join(tool);
    assert!(
        bin.exists(),
        "{} is missing: run `npm ci` in clients/drizzle (scripts/test.sh does)",
        bin.display()
    );
    let out: Output = std::process::Command::new(&bin)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(client_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `pg_dump -s` of ragworker's tables, without what Drizzle cannot express (triggers,
/// grants, ownership) and without pg_dump's own comments, settings and session keys.
fn schema_dump(url: &str) -> String {
    let mut cmd = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump");
    cmd.args(["--schema-only", "--no-owner", "--no-privileges"]);
    for table in TABLES {
        cmd.args(["-t", &format!("public.{table}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("--")
                || l.starts_with("SET ")
                || l.starts_with("SELECT pg_catalog.set_config")
                // psql meta-commands with a random key (pg_dump 15.14+)
                || l.starts_with("\\restrict")
                || l.starts_with("\\unrestrict")
                || l.starts_with("CREATE TRIGGER"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_drizzle_schema_builds_what_the_migrations_build() {
    let env = TestEnv::start().await;
    let dims = DIMENSIONS.to_string();
    let out_dir = tempfile::tempdir().unwrap();
    node_tool(
        "drizzle-kit",
        &[
            "generate",
            "--dialect",
            "postgresql",
            "--schema",
            "./schema.ts",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
        &[("RAGWORKER_EMBEDDING_DIMENSIONS", &dims)],
    );
    let generated: String = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(generated.contains("CREATE TABLE \"files\""), "{generated}");

    // An empty database with what the schema builds on: pgvector, auth.uid(), the role, and
    // (as stand-ins) the two functions of ragworker's that its index and policies name.
    let url = crate::support::fresh_database("dz").await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "create extension vector;
         create schema auth;
         create function auth.uid() returns uuid language sql stable as
           $$ select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid $$;
         create function ragworker_text_search_config() returns regconfig language sql immutable
           as $$ select 'simple'::regconfig $$;
         create function ragworker_user_orgs() returns setof uuid language sql stable
           as $$ select null::uuid where false $$;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // drizzle-kit's statement breakpoints are SQL comments: the file runs as it is.
    sqlx::raw_sql(&generated).execute(&mut conn).await.unwrap();

    let migrated = schema_dump(&env.database_url);
    let from_drizzle = schema_dump(&url);
    assert!(migrated.contains("CREATE POLICY files_owner"), "{migrated}");
    if migrated != from_drizzle {
        let m: Vec<&str> = migrated.lines().collect();
        let d: Vec<&str> = from_drizzle.lines().collect();
        let only_m: Vec<_> = m.iter().filter(|l| !d.contains(l)).collect();
        let only_d: Vec<_> = d.iter().filter(|l| !m.contains(l)).collect();
        panic!("schemas differ\nonly in the migrated database: {only_m:#?}\nonly in Drizzle's: {only_d:#?}");
    }
    let labels = "select enum_range(null::processing_status)::text";
    let from_drizzle_enum: String = sqlx::query_scalar(labels)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let migrated_enum: String = sqlx::query_scalar(labels)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(migrated_enum, from_drizzle_enum);
    conn.close().await.ok();

    node_tool("tsc", &["--noEmit", "-p", "."], &[]);
}

#[tokio::test]
async fn a_typed_drizzle_round_trip_through_the_worker() {
    let env = TestEnv::start().await;
    let user = Uuid::new_v4();
    let id = Uuid::new_v4();
    let path = format!("{user}/{id}/notes.txt");
    env.storage
        .put(
            &env.bucket,
            &path,
            std::fs::read(fixture("notes.txt")).unwrap(),
            "text/plain",
        )
        .await
        .unwrap();
    let db = [("DATABASE_URL", env.database_url.as_str())];
    let (id_s, user_s) = (id.to_string(), user.to_string());
    let inserted: serde_json::Value = serde_json::from_str(&node_tool(
        "tsx",
        &["roundtrip.ts", "insert", &id_s, &user_s, &env.bucket, &path],
        &db,
    ))
    .unwrap();
    assert_eq!(
        inserted,
        serde_json::json!({ "id": id_s, "status": "pending" })
    );

    let done = env.drain().await;
    assert_eq!(done.len(), 1);
    let read: serde_json::Value =
        serde_json::from_str(&node_tool("tsx", &["roundtrip.ts", "read", &id_s], &db)).unwrap();
    let chunks = env.chunk_count(id).await;
    assert!(chunks > 0);
    assert_eq!(read["status"], "completed");
    assert_eq!(read["chunkCount"], chunks);
    assert_eq!(read["chunks"], chunks);
    assert_eq!(read["dimensions"], DIMENSIONS);
    assert_eq!(read["startChar"], 0);
    assert!(!read["firstContent"].as_str().unwrap().is_empty());
    // Searching with the first chunk's own vector finds that chunk first.
    assert_eq!(read["top"]["fileId"], id_s);
    assert_eq!(read["top"]["chunkIndex"], 0);
    assert!(
        read["top"]["similarity"].as_f64().unwrap() > 0.999,
        "{read}"
    );
}
