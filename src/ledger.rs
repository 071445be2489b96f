//! The cost ledger (`embedding_requests`): every embedding request a file takes part in is
//! written down, and committed, before it is sent, then confirmed with the provider's own
//! count when the answer arrives. `usage_logs` is rolled up from it, so money spent stays
//! recorded when a worker is killed with requests in flight: the rows of a claim that is
//! no longer live are swept into `usage_logs` by the next claim, by any worker.
//!
//! Each statement is in its own file under `src/ledger/`; like the queue's, they are
//! unnamed and run inside transactions (transaction-mode poolers).

use std::sync::Arc;

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::queue::{ClaimedFile, Lease};

/// Who pays for a file's inputs: one claim of one file.
#[derive(Debug, Clone)]
pub struct Payer {
    pub file_id: Uuid,
    pub claim_seq: i64,
    pub attempt: i32,
    pub worker_id: Arc<str>,
    pub user_id: Uuid,
    pub org_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
}

impl Payer {
    pub fn new(file: &ClaimedFile, lease: &Lease) -> Self {
        Self {
            file_id: file.id,
            claim_seq: lease.claim,
            attempt: lease.attempt,
            worker_id: lease.worker_id.clone(),
            user_id: file.user_id,
            org_id: file.org_id,
            conversation_id: file.conversation_id,
        }
    }
}

/// One file's part of a request: how many of its inputs, and their tokens by our count.
#[derive(Debug, Clone)]
pub struct Share {
    pub payer: Arc<Payer>,
    pub inputs: usize,
    pub tokens: u64,
}

/// Writes the ledger for one provider and model.
#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
    provider: Arc<str>,
    model: Arc<str>,
    /// Text, so 0.02 stays 0.02 rather than its nearest double.
    price_per_million: Arc<str>,
}

/// A request written down and not yet answered.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    request_id: Uuid,
}

impl Ledger {
    pub fn new(pool: PgPool, provider: &str, model: &str, price_per_million: f64) -> Self {
        Self {
            pool,
            provider: provider.into(),
            model: model.into(),
            price_per_million: price_per_million.to_string().into(),
        }
    }

    /// Records a request before it is sent: one row per file in it. Fails when the
    /// database does, and then the request must not be sent (it could not be accounted for).
    pub async fn record(&self, shares: &[Share], retry: u32) -> Result<Entry, sqlx::Error> {
        let entry = Entry {
            request_id: Uuid::new_v4(),
        };
        let file_ids: Vec<Uuid> = column(shares, |s| s.payer.file_id);
        let claims: Vec<i64> = column(shares, |s| s.payer.claim_seq);
        let attempts: Vec<i32> = column(shares, |s| s.payer.attempt);
        let workers: Vec<&str> = shares.iter().map(|s| &*s.payer.worker_id).collect();
        let users: Vec<Uuid> = column(shares, |s| s.payer.user_id);
        let orgs: Vec<Option<Uuid>> = column(shares, |s| s.payer.org_id);
        let conversations: Vec<Option<Uuid>> = column(shares, |s| s.payer.conversation_id);
        let inputs: Vec<i32> = column(shares, |s| s.inputs as i32);
        let tokens: Vec<i64> = column(shares, |s| s.tokens as i64);
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("ledger/record.sql"))
            .persistent(false)
            .bind(entry.request_id)
            .bind(retry as i32)
            .bind(&*self.provider)
            .bind(&*self.model)
            .bind(&*self.price_per_million)
            .bind(&file_ids)
            .bind(&claims)
            .bind(&attempts)
            .bind(&workers)
            .bind(&users)
            .bind(&orgs)
            .bind(&conversations)
            .bind(&inputs)
            .bind(&tokens)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// The provider answered 200 and billed `billed` tokens: each file's share, split in
    /// proportion to its own tokens so the shares add up to the bill exactly.
    pub async fn confirm(&self, entry: Entry, shares: &[Share], billed: u64) {
        let own: Vec<u64> = shares.iter().map(|s| s.tokens).collect();
        let file_ids: Vec<Uuid> = shares.iter().map(|s| s.payer.file_id).collect();
        let billed: Vec<i64> = split_exactly(billed, &own)
            .into_iter()
            .map(|t| t as i64)
            .collect();
        let query = sqlx::query(include_str!("ledger/confirm.sql"))
            .persistent(false)
            .bind(entry.request_id)
            .bind(&file_ids)
            .bind(&billed);
        self.answer(query, entry).await;
    }

    /// The provider answered with an error status (none: the in-process model failed),
    /// which it does not bill.
    pub async fn refuse(&self, entry: Entry, status: Option<u16>) {
        let query = sqlx::query(include_str!("ledger/refuse.sql"))
            .persistent(false)
            .bind(entry.request_id)
            .bind(status.map(i32::from));
        self.answer(query, entry).await;
    }

    /// Writes an answer down. Should that fail, the row stays `sent` and counts at our own
    /// count, which for OpenAI models is what the provider bills: a warning, not an error
    /// that would throw away vectors already paid for.
    async fn answer(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        entry: Entry,
    ) {
        let written = async {
            let mut tx = self.pool.begin().await?;
            query.execute(&mut *tx).await?;
            tx.commit().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, request_id = %entry.request_id, "could not record the provider's answer in the ledger; it counts at our own token count");
        }
    }
}

/// One field of every share, as a statement's array parameter.
fn column<T>(shares: &[Share], field: impl Fn(&Share) -> T) -> Vec<T> {
    shares.iter().map(field).collect()
}

/// Rolls the ledger rows of one claim into a usage_logs row (none when it cost nothing),
/// inside the caller's transaction, so the usage row commits with the file's transition;
/// `metadata` goes into the row's metadata beside the ledger's counts.
pub async fn settle<'e>(
    executor: impl PgExecutor<'e>,
    lease: &Lease,
    outcome: &str,
    metadata: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("ledger/settle.sql"))
        .persistent(false)
        .bind(Some(lease.file_id))
        .bind(lease.claim)
        .bind(outcome)
        .bind(metadata)
        .execute(executor)
        .await?;
    Ok(())
}

/// Rolls up the rows of every claim that is over (a killed worker's once its file is claimed
/// again, a lost lease's, late answers to a settled claim): run in every claim's
/// transaction.
pub async fn sweep<'e>(executor: impl PgExecutor<'e>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(include_str!("ledger/settle.sql"))
        .persistent(false)
        .bind(None::<Uuid>)
        .bind(0i64)
        .bind("recovered")
        .bind(serde_json::json!({}))
        .execute(executor)
        .await?;
    Ok(done.rows_affected())
}

/// Splits `total` in proportion to `weights` so that the parts add up to `total` exactly
/// (largest remainders get the leftover units).
pub fn split_exactly(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum == 0 {
        let mut parts = vec![0; weights.len()];
        parts[0] = total;
        return parts;
    }
    let mut parts: Vec<u64> = weights
        .iter()
        .map(|&w| (u128::from(total) * u128::from(w) / u128::from(sum)) as u64)
        .collect();
    let mut left = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(u128::from(total) * u128::from(weights[i]) % u128::from(sum))
    });
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shares_add_up_exactly() {
        assert_eq!(split_exactly(100, &[50, 50]), vec![50, 50]);
        assert_eq!(split_exactly(10, &[1, 1, 1]).iter().sum::<u64>(), 10);
        assert_eq!(split_exactly(7, &[0, 0]), vec![7, 0]);
        let parts = split_exactly(1001, &[333, 333, 334]);
        assert_eq!(parts.iter().sum::<u64>(), 1001);
        // The provider counted the same as we did: shares equal own counts.
        assert_eq!(split_exactly(900, &[100, 300, 500]), vec![100, 300, 500]);
    }
}
