//! Test harness, in parts: `env` (the per-test environment), `clusters` (databases,
//! PgBouncer and Postgres clusters a test starts and stops), `waiting`, and `fake_openai`
//! (the embeddings API).

mod clusters;
mod env;
pub mod fake_openai;
mod waiting;

pub use clusters::*;
pub use env::*;
pub use fake_openai::Fault;
pub use waiting::wait_until;
