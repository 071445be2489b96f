//! Test harness, in parts: `env` (the per-test environment), `provision` (databases,
//! migrations and buckets, shared with the benchmarks), `clusters` (PgBouncer and Postgres
//! clusters a test starts and stops), `invariants` (what must hold after a drain),
//! `waiting`, and `fake_openai` (the embeddings API, shared with the benchmarks).

mod clusters;
mod env;
pub mod fake_openai;
mod invariants;
mod provision;
mod waiting;

pub use clusters::*;
pub use env::*;
pub use fake_openai::Fault;
pub use provision::create_database;
pub use waiting::wait_until;
