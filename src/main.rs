use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use uuid::Uuid;

use ragworker::config::Settings;
use ragworker::progress::Progress;
use ragworker::{db, enqueue, http, search, service, storage, telemetry};

/// The local model allocates and frees multi-megabyte tensors for every operation. glibc's
/// malloc hands blocks that large back to the kernel on free and faults them in again on the
/// next allocation; mimalloc keeps them for reuse, which is what made the MALLOC_* variables
/// the demo used to need unnecessary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns documents in S3-compatible storage into halfvec embeddings in Postgres.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file layered over config/default.toml.
    #[arg(long, global = true, env = "RAGWORKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the schema and set the embedding dimension.
    Migrate,
    /// Run as a service: process files as they become pending, until SIGTERM/SIGINT.
    Run,
    /// Process every eligible file, print a summary and exit (status 2 if any file failed).
    /// Shows a progress bar on a terminal, periodic log lines otherwise.
    Backfill {
        /// Re-embed completed files first: `stale` (the default) those whose chunks come
        /// from another model than embedding.model, `all` every completed file (after a
        /// chunking change). When embedding.dimensions differs from the column's, all
        /// chunks are dropped, the column and its HNSW index are rebuilt at the new
        /// dimension, and every completed file is queued again.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "stale")]
        reembed: Option<db::Reembed>,
        /// A large load: drop the HNSW index first and build it again at the end if the
        /// table holds index.hnsw_min_rows chunks (meanwhile search is exact: correct, and
        /// slower for very large tenants).
        #[arg(long)]
        bulk: bool,
    },
    /// Remove files rows whose storage object is gone, with their chunks (usage rows stay);
    /// rows being processed are left alone. Prints what it removed.
    Cleanup {
        /// Print what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Upload local files to the bucket and queue them for processing.
    Enqueue {
        /// Owner of the files (files.user_id).
        #[arg(long)]
        user: Uuid,
        #[arg(long)]
        org: Option<Uuid>,
        #[arg(long)]
        conversation: Option<Uuid>,
        /// Bucket to upload to (default: storage.bucket).
        #[arg(long)]
        bucket: Option<String>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Search a user's chunks (or an organisation's) for the passages closest to a query.
    /// The query embedding's cost is recorded in usage_logs (action `search`).
    Search {
        /// Who searches (files.user_id); pays for the query embedding.
        #[arg(long)]
        user: Uuid,
        /// Search this organisation's chunks (search_org_chunks) instead of the user's.
        #[arg(long, conflicts_with = "hybrid")]
        org: Option<Uuid>,
        /// Hybrid search (hybrid_search_chunks): full text fused with vectors.
        #[arg(long)]
        hybrid: bool,
        /// With --hybrid: the full-text query, web-search style (all words must appear;
        /// `or`, quotes and `-` work); defaults to the query itself.
        #[arg(long, requires = "hybrid")]
        text: Option<String>,
        /// Number of passages to print.
        #[arg(long, default_value_t = 5)]
        limit: i32,
        /// Minimum cosine similarity.
        #[arg(long, default_value_t = 0.0)]
        threshold: f64,
        query: String,
    },
    /// Print a month's usage (tokens, requests, files, cost) by action, provider and
    /// model: one user's, one organisation's, or everyone's.
    Usage {
        #[arg(long, conflicts_with = "org")]
        user: Option<Uuid>,
        #[arg(long)]
        org: Option<Uuid>,
        /// YYYY-MM (UTC); the current month by default.
        #[arg(long)]
        month: Option<ragworker::usage::Month>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let progress_bar =
        matches!(cli.command, Command::Backfill { .. }) && std::io::stderr().is_terminal();
    telemetry::init(&settings.log, progress_bar);
    telemetry::log_panics();
    match execute(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn execute(command: Command, settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    // Every command but `migrate` works on the worker's pool (a transaction pooler is fine).
    let pool = match command {
        Command::Migrate => {
            migrate(&settings).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => db::connect(&settings.database)
            .await
            .map_err(pooler_hint)
            .with_context(|| {
                format!(
                    "cannot connect to the database at {} (database.url / DATABASE_URL)",
                    db::server_of(&settings.database.url)
                )
            })?,
    };
    match command {
        Command::Migrate => {}
        Command::Run => {
            let worker = start_worker(&settings, pool.clone()).await?;
            http::metrics_handle();
            let _http = if settings.http.listen.is_empty() {
                None
            } else {
                Some(
                    http::serve(&settings.http.listen, pool)
                        .await
                        .with_context(|| {
                            format!("cannot listen on {} (http.listen)", settings.http.listen)
                        })?,
                )
            };
            service::run(worker.clone(), shutdown_signal()).await;
            if let Some(reason) = worker.engine_stopped() {
                eprintln!(
                    "error: the embedding engine stopped ({reason}); its files were released"
                );
                return Ok(ExitCode::from(2));
            }
        }
        Command::Backfill { reembed, bulk } => {
            if let Some(scope) = reembed {
                let plan = db::reembed(&pool, &settings.embedding, scope).await?;
                println!("{plan}");
            }
            if bulk && ragworker::index::drop_for_bulk(&settings.database).await? {
                println!("bulk load: dropped the HNSW index; it is built again at the end");
            }
            let worker = start_worker(&settings, pool.clone()).await?;
            let eligible = worker.queue.count_claimable().await?;
            let mut progress = Progress::new(
                eligible,
                settings.embedding.price_per_million(),
                std::io::stderr().is_terminal(),
            );
            // Whether the user stopped it: then the merge at the end is left to `run`.
            let interrupted = std::sync::atomic::AtomicBool::new(false);
            let stopped = async {
                shutdown_signal().await;
                interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
            };
            let summary = service::backfill(worker.clone(), stopped, |s| progress.update(s)).await;
            progress.finish();
            let summary = summary?;
            // The files are done whatever happens to the index: a failed check is a warning.
            match ragworker::index::apply(&settings.database, &settings.index).await {
                Ok(action) => report_index(action),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "index policy check failed"),
            }
            // The chunks that waited outside the index go into it now, on every connection
            // of the pool (the files are done and searchable already; search scans waiting
            // chunks exactly). Interrupted, `run` merges the rest in its idle time.
            if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                println!("interrupted: chunks waiting for the HNSW index are left to `ragworker run`, which merges them in its idle time");
            } else {
                tokio::select! {
                    merged = ragworker::index::merge_all(&pool, settings.database.max_connections as usize) => match merged {
                        Ok((0, _)) => {}
                        Ok((chunks, took)) => println!(
                            "merged {chunks} chunks that waited into the HNSW index in {:.1} s (index.defer_max_rows)",
                            took.as_secs_f64()
                        ),
                        Err(e) => tracing::warn!(error = %e, "merging waiting chunks into the HNSW index failed; `ragworker run` merges them in its idle time"),
                    },
                    _ = shutdown_signal() => println!("interrupted while merging waiting chunks into the HNSW index; `ragworker run` merges the rest in its idle time"),
                }
            }
            let waiting = worker.queue.count_pending().await?;
            println!(
                "backfill done: {} completed, {} failed, {} to retry later, {} released; {} chunks, {} tokens; {} files still pending",
                summary.completed,
                summary.failed,
                summary.retrying,
                summary.released,
                summary.chunks,
                summary.tokens,
                waiting
            );
            if let Some(reason) = worker.engine_stopped() {
                eprintln!("error: stopped early, the embedding engine stopped ({reason}); its files were released");
                return Ok(ExitCode::from(2));
            }
            if let Some(err) = worker.embedder.halted() {
                eprintln!("error: stopped early, the embedding provider refuses requests: {err}");
                return Ok(ExitCode::from(2));
            }
            if let Some(err) = worker.storage_paused.current() {
                eprintln!("error: stopped early, {err}; the files stay pending");
                return Ok(ExitCode::from(2));
            }
            if summary.failed > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Usage { user, org, month } => {
            use ragworker::usage::{self, Scope};
            let scope = match (user, org) {
                (Some(id), _) => Scope::User(id),
                (None, Some(id)) => Scope::Org(id),
                (None, None) => Scope::All,
            };
            let month = month.unwrap_or_else(usage::Month::current);
            let lines = usage::month(&pool, scope, month).await?;
            print!("{}", usage::render(scope, month, &lines));
        }
        Command::Cleanup { dry_run } => {
            let storage = storage::Storage::from_settings(&settings.storage).await?;
            let queue = ragworker::queue::Queue::new(
                pool,
                ragworker::default_worker_id(),
                settings.queue.clone(),
            );
            let orphans = ragworker::cleanup::orphans(&queue, &storage, dry_run).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for o in &orphans {
                println!("{verb}\t{}\t{}/{}", o.file_id, o.bucket, o.path);
            }
            let chunks: i64 = orphans.iter().map(|o| o.chunks).sum();
            if dry_run {
                println!(
                    "cleanup (dry run): {} files whose objects are gone",
                    orphans.len()
                );
            } else {
                println!(
                    "cleanup: removed {} files whose objects are gone, with {chunks} chunks",
                    orphans.len()
                );
            }
        }
        Command::Enqueue {
            user,
            org,
            conversation,
            bucket,
            paths,
        } => {
            let storage = storage::Storage::from_settings(&settings.storage).await?;
            let bucket = bucket.unwrap_or_else(|| settings.storage.bucket.clone());
            // Before anything is uploaded: the database refuses rows naming other buckets.
            if !settings
                .storage
                .allowed_buckets()
                .contains(&bucket.as_str())
            {
                anyhow::bail!("bucket {bucket:?} is not one ragworker may read: add it to storage.buckets and run `ragworker migrate`");
            }
            let owner = enqueue::Owner {
                user_id: user,
                org_id: org,
                conversation_id: conversation,
            };
            for path in &paths {
                let id = enqueue::enqueue_file(&pool, &storage, &bucket, owner, path).await?;
                println!("{id}\t{}", path.display());
            }
        }
        Command::Search {
            user,
            org,
            hybrid,
            text,
            limit,
            threshold,
            query,
        } => {
            settings.embedding.check_api_key()?;
            let embedder = ragworker::embed::Embedder::new(&settings.embedding)?;
            let chunker = ragworker::chunk::Chunker::new(&settings.chunking, embedder.tokenizer())?;
            let scope = match (org, hybrid) {
                (Some(org), _) => search::Scope::Org(org),
                (None, true) => search::Scope::Hybrid(text.as_deref().unwrap_or(&query)),
                (None, false) => search::Scope::User,
            };
            let (hits, _usage) = search::search(
                &pool,
                &embedder,
                &settings.embedding,
                &chunker,
                user,
                scope,
                &query,
                threshold,
                limit,
            )
            .await?;
            if hits.is_empty() {
                println!("no matching passages");
            }
            for (rank, hit) in hits.iter().enumerate() {
                let page = hit
                    .page_number
                    .map(|p| format!(", page {p}"))
                    .unwrap_or_default();
                let heading = hit
                    .heading
                    .as_deref()
                    .map(|h| format!(", section \"{h}\""))
                    .unwrap_or_default();
                let score = hit
                    .score
                    .map(|s| format!(", score {s:.4}"))
                    .unwrap_or_default();
                println!(
                    "{}. {}{page}{heading} (similarity {:.3}{score})",
                    rank + 1,
                    hit.file_name,
                    hit.similarity
                );
                // One line per passage: layout whitespace (PDF columns, indented licence
                // text) collapsed.
                let words: Vec<&str> = hit.content.split_whitespace().collect();
                let excerpt: String = words.join(" ").chars().take(300).collect();
                println!("   {excerpt}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `migrate` on the direct (or session) connection: DDL under sqlx's session advisory lock
/// and its named statements, which a transaction pooler cannot carry.
async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let direct = db::connect_direct(&settings.database)
        .await
        .map_err(pooler_hint)
        .with_context(|| {
            format!(
                "cannot connect to the database at {} (database.direct_url / DATABASE_DIRECT_URL, else database.url)",
                db::server_of(settings.database.direct_url())
            )
        })?;
    db::migrate(&direct, &settings.embedding, &settings.storage, &settings.search)
        .await
        .map_err(|e| {
            if format!("{e:#}").contains("prepared statement") {
                e.context("the connection looks like a transaction pooler (Supabase's port 6543, PgBouncer in transaction mode), which cannot run migrations: set database.direct_url (DATABASE_DIRECT_URL) to the direct or session-pooler connection string")
            } else {
                e
            }
        })?;
    println!(
        "schema up to date; embedding dimension {}",
        settings.embedding.dimensions
    );
    report_index(ragworker::index::apply(&settings.database, &settings.index).await?);
    Ok(())
}

fn report_index(action: ragworker::index::Action) {
    match action {
        ragworker::index::Action::Built { rows, took } => println!(
            "built the HNSW index over {rows} chunks in {:.1} s (index.hnsw_min_rows)",
            took.as_secs_f64()
        ),
        ragworker::index::Action::NoSession => {
            tracing::warn!("{}", ragworker::index::NO_SESSION)
        }
        ragworker::index::Action::Nothing => {}
    }
}

/// Stock PgBouncer refuses the `extra_float_digits` start-up parameter sqlx sends; say how
/// to fix it rather than only that the connection failed.
fn pooler_hint(e: sqlx::Error) -> anyhow::Error {
    let hint = e.to_string().contains("unsupported startup parameter").then_some(
        "PgBouncer refuses a start-up parameter: add `ignore_startup_parameters = extra_float_digits` to its configuration (Supabase's poolers accept it)",
    );
    match hint {
        Some(hint) => anyhow::Error::new(e).context(hint),
        None => e.into(),
    }
}

/// Builds the worker after the checks that would otherwise make every file fail late.
async fn start_worker(
    settings: &Arc<Settings>,
    pool: sqlx::PgPool,
) -> anyhow::Result<Arc<ragworker::worker::Worker>> {
    db::preflight(&pool, &settings.embedding)
        .await
        .context("refusing to claim files")?;
    let worker =
        ragworker::build_worker(settings.clone(), pool, ragworker::default_worker_id()).await?;
    let queued = worker.queue.queued_buckets().await?;
    let warnings = worker
        .storage
        .check_access(&settings.storage.allowed_buckets(), &queued)
        .await
        .context("refusing to claim files: storage check failed (storage.*, AWS_* settings)")?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if settings.extract.ocr.enabled {
        if let Some(missing) = ragworker::extract::ocr_missing() {
            tracing::warn!("{missing}: images and scanned PDFs will fail until it is installed (apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils), or set extract.ocr.enabled = false");
        }
    }
    if worker.ownership.checks_uploader() {
        tracing::info!(
            "storage.objects is in this database: objects uploaded by another user are refused"
        );
    }
    Ok(Arc::new(worker))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
