//! ragworker: turns documents in S3-compatible storage into halfvec embeddings in Postgres.
//!
//! The modules follow a file's path: [`config`] → [`queue`] (claim, lease, fenced
//! transitions) → [`ownership`] (may this row's owner read that object?) → [`storage`] →
//! [`extract`] → [`chunk`] → [`embed`] → [`store`], driven by [`worker`] (one file) and
//! [`service`] (the loops); [`ledger`] records what requests cost, [`usage`] reports it by
//! month, [`cleanup`] removes the rows whose objects are gone.

pub mod chunk;
pub mod cleanup;
pub mod config;
pub mod db;
pub mod embed;
pub mod enqueue;
pub mod error;
pub mod extract;
pub mod halt;
pub mod http;
pub mod index;
pub mod ledger;
mod lock;
pub mod ownership;
pub mod progress;
pub mod queue;
pub mod search;
pub mod service;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod worker;

use std::sync::Arc;

use sqlx::PgPool;

/// A worker id unique per process: host, pid and a random suffix (pids repeat across
/// containers).
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "ragworker".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// Builds a worker from settings and a pool.
pub async fn build_worker(
    settings: Arc<config::Settings>,
    pool: PgPool,
    worker_id: String,
) -> anyhow::Result<worker::Worker> {
    settings.embedding.check_api_key()?;
    let embedder = Arc::new(embed::Embedder::new(&settings.embedding)?);
    let ownership = ownership::Rules::load(&settings.storage, &pool).await?;
    let ledger = ledger::Ledger::new(
        pool.clone(),
        &settings.embedding.provider,
        &settings.embedding.model,
        settings.embedding.price_per_million(),
    );
    Ok(worker::Worker {
        ownership,
        storage_paused: halt::Halt::new(),
        deferral: Arc::new(index::Deferral::default()),
        queue: queue::Queue::new(pool, worker_id, settings.queue.clone()),
        storage: storage::Storage::from_settings(&settings.storage).await?,
        chunker: chunk::Chunker::new(&settings.chunking, embedder.tokenizer())?,
        batcher: embed::Batcher::spawn(embedder.clone(), Some(ledger)),
        embedder,
        settings,
    })
}
