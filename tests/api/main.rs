//! Integration tests against real Postgres + pgvector, a real S3 server and the fake
//! embeddings server. One binary, a module per feature.

#[path = "../support/mod.rs"]
mod support;

mod batching;
mod demo;
mod drizzle;
mod embedding_faults;
mod failures;
mod formats;
mod index_policy;
mod ingest;
mod ledger;
mod local_model;
mod local_search;
mod models;
mod pooler;
mod queue;
mod resync;
mod rls;
mod search;
mod security;
mod service;
mod uploads;
mod usage;
