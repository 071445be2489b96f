//! Test harness, in parts: `env` (the per-test environment), `provision` (databases,
//! migrations and buckets, shared with the benchmarks), `clusters` (PgBouncer and Postgres
//! clusters a test starts and stops), `invariants` (what must hold after a drain),
//! `waiting`, `pdf` (multi-page PDFs from text) and `fake_openai` (the embeddings API);
//! `provision`, `pdf` and `fake_openai` are shared with the benchmarks.

mod clusters;
mod env;
pub mod fake_openai;
mod invariants;
pub mod pdf;
mod provision;
mod waiting;

pub use clusters::*;
pub use env::*;
pub use fake_openai::Fault;
pub use provision::create_database;
pub use waiting::wait_until;
