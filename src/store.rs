//! Writing results: a file's chunks, its usage row and its `completed` status commit in one
//! transaction, so a retry or a second worker never leaves duplicates or half a file.
//! Statements are unnamed, inside transactions (see `queue`), and vectors travel as text:
//! binding pgvector's own type would make sqlx look its type up with a named statement.

use std::collections::HashMap;

use pgvector::HalfVector;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::chunk::{Chunk, Chunked};
use crate::embed::Usage;
use crate::ledger;
use crate::queue::{ClaimedFile, Lease, Provenance, QueueError};

/// Who and what a usage row is for, when it is written directly rather than rolled up from
/// the ledger (a search query's embedding).
#[derive(Debug, Clone)]
pub struct UsageRecord<'a> {
    /// `embedding` (a file's chunks) or `search` (a query).
    pub action: &'a str,
    pub user_id: Uuid,
    pub org_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub provider: &'a str,
    pub model: &'a str,
    pub price_per_million: f64,
    pub usage: Usage,
    /// Goes into `metadata` beside the request counts (file id, outcome, ...).
    pub metadata: serde_json::Value,
}

/// Inserts one usage_logs row inside the caller's transaction; `cost_usd` = tokens × price
/// / 1e6, computed in numeric so it is exact to the tenth decimal.
pub async fn record_usage<'e>(
    executor: impl PgExecutor<'e>,
    record: &UsageRecord<'_>,
) -> Result<(), sqlx::Error> {
    let mut metadata = record.metadata.clone();
    if let Some(map) = metadata.as_object_mut() {
        map.insert("requests".into(), record.usage.requests.into());
        map.insert("retries".into(), record.usage.retries.into());
        map.insert("rate_limited".into(), record.usage.rate_limited.into());
        map.insert(
            "price_per_million_usd".into(),
            record.price_per_million.into(),
        );
    }
    sqlx::query(
        "insert into usage_logs (user_id, org_id, conversation_id, action, provider, model,
                                 tokens_used, cost_usd, metadata)
         values ($1, $2, $3, $9, $4, $5, $6, $6::numeric * $7::text::numeric / 1000000, $8)",
    )
    .persistent(false)
    .bind(record.user_id)
    .bind(record.org_id)
    .bind(record.conversation_id)
    .bind(record.provider)
    .bind(record.model)
    .bind(record.usage.tokens as i64)
    // The price goes through text so 0.02 stays 0.02 rather than its nearest double.
    .bind(record.price_per_million.to_string())
    .bind(metadata)
    .bind(record.action)
    .execute(executor)
    .await?;
    Ok(())
}

/// Commits a processed file: `vectors` holds one vector per chunk, in order (the worker
/// checks it), and the claim's requests are rolled from the ledger into its usage row.
/// `wait` writes the chunks as waiting to be merged into the HNSW index (`index::Deferral`).
/// Fails with `LeaseLost` (and writes nothing) when another worker has taken the file over
/// meanwhile.
#[allow(clippy::too_many_arguments)] // one transaction's worth of what a file became
pub async fn complete_file(
    pool: &PgPool,
    lease: &Lease,
    file: &ClaimedFile,
    chunked: &Chunked,
    vectors: Vec<HalfVector>,
    model: &str,
    made_from: &Provenance,
    reuse: &Reuse,
    wait: bool,
) -> Result<(), QueueError> {
    let chunks = &chunked.chunks;
    let mut tx = pool.begin().await?;
    // The fenced status change goes first: if the lease is gone, nothing else is written.
    lease
        .complete(
            &mut *tx,
            &chunked.extracted_text,
            chunks.len() as i32,
            made_from,
        )
        .await?;
    sqlx::query("delete from document_chunks where file_id = $1")
        .persistent(false)
        .bind(file.id)
        .execute(&mut *tx)
        .await?;
    // Bulk insert through UNNEST: one statement and one round trip however many chunks,
    // with every value bound as a parameter. Sent in slices to keep each message modest.
    // The vectors travel as one flat binary `real[]`, cut per row in SQL and cast to
    // halfvec: a built-in type needs no named type lookup (which transaction poolers
    // break), and neither side prints or parses 1,536 decimal numbers a chunk. f16 → f32
    // is exact and the cast rounds back to the same f16, so the stored halfvec is the
    // embedder's bit for bit.
    const ROWS_PER_STATEMENT: usize = 1000;
    let dimension = vectors.first().map_or(0, |v| v.as_slice().len());
    let mut vectors = vectors.into_iter();
    for slice in chunks.chunks(ROWS_PER_STATEMENT) {
        let mut embeddings: Vec<f32> = Vec::with_capacity(slice.len() * dimension);
        for vector in vectors.by_ref().take(slice.len()) {
            // The embedder checked every vector against embedding.dimensions; a mixed
            // length here would shift every later row's slice, so it is refused outright.
            if vector.as_slice().len() != dimension {
                return Err(QueueError::Database(sqlx::Error::Encode(
                    "vectors of different dimensions for one file".into(),
                )));
            }
            embeddings.extend(vector.as_slice().iter().map(|x| f32::from(*x)));
        }
        let contents: Vec<&str> = slice.iter().map(|c| c.content.as_str()).collect();
        let indexes: Vec<i32> = slice.iter().map(|c| c.index).collect();
        let pages: Vec<Option<i32>> = slice.iter().map(|c| c.page_number).collect();
        let headings: Vec<Option<&str>> = slice.iter().map(|c| c.heading.as_deref()).collect();
        let tokens: Vec<i32> = slice.iter().map(|c| c.token_count).collect();
        let hashes: Vec<&str> = slice.iter().map(|c| c.content_hash.as_str()).collect();
        let metadata: Vec<serde_json::Value> = slice
            .iter()
            .map(|c| chunk_metadata(c, &chunked.embed_template))
            .collect();
        sqlx::query(
            "insert into document_chunks (file_id, user_id, org_id, embedding_model, content,
                                          chunk_index, page_number, heading, token_count,
                                          embedding, metadata, content_hash, index_pending)
             select $1, $2, $3, $4, c.content, c.chunk_index, c.page_number, c.heading,
                    c.token_count,
                    ($10::real[])[(c.row - 1) * $13 + 1 : c.row * $13]::halfvec,
                    c.metadata, c.content_hash, $14
             from unnest($5::text[], $6::int[], $7::int[], $8::text[], $9::int[],
                         $11::jsonb[], $12::text[]) with ordinality
                  as c(content, chunk_index, page_number, heading, token_count,
                       metadata, content_hash, row)",
        )
        .persistent(false)
        .bind(file.id)
        .bind(file.user_id)
        .bind(file.org_id)
        .bind(model)
        .bind(&contents)
        .bind(&indexes)
        .bind(&pages)
        .bind(&headings)
        .bind(&tokens)
        .bind(&embeddings)
        .bind(&metadata)
        .bind(&hashes)
        .bind(dimension as i32)
        .bind(wait)
        .execute(&mut *tx)
        .await?;
    }
    ledger::settle(&mut *tx, lease, "completed", &reuse.metadata()).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a file completed as it is (its bytes and settings are those its chunks were made
/// from), rolling up whatever its claim spent.
pub async fn complete_unchanged(
    pool: &PgPool,
    lease: &Lease,
    version: Option<&str>,
) -> Result<(), QueueError> {
    let mut tx = pool.begin().await?;
    lease.complete_unchanged(&mut *tx, version).await?;
    ledger::settle(
        &mut *tx,
        lease,
        "completed",
        &serde_json::json!({ "unchanged": true }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How much of a file's new chunk set came from its previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reuse {
    pub chunks_embedded: usize,
    pub chunks_reused: usize,
    /// Tokens of the reused chunks: what was not paid for again.
    pub tokens_reused: u64,
}

impl Reuse {
    /// For the usage row's metadata.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "tokens_reused": self.tokens_reused,
        })
    }
}

/// The stored vectors of a file's current chunks embedded by `model`, by content hash: what
/// a new version of the file may reuse. Only this file's, and only while it still belongs
/// to `user` (reuse never crosses users or organisations).
pub async fn previous_vectors(
    pool: &PgPool,
    file: &ClaimedFile,
    model: &str,
) -> Result<HashMap<String, HalfVector>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Binary `real[]`, as vectors are written (see `complete_file`): exact, and no parsing.
    let rows: Vec<(String, Vec<f32>)> = sqlx::query_as(
        "select content_hash, embedding::real[] from document_chunks
         where file_id = $1 and user_id = $2 and org_id is not distinct from $3
           and embedding_model = $4 and content_hash is not null",
    )
    .persistent(false)
    .bind(file.id)
    .bind(file.user_id)
    .bind(file.org_id)
    .bind(model)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(hash, values)| {
            let vector = values
                .into_iter()
                .map(half::f16::from_f32)
                .collect::<Vec<_>>();
            (hash, HalfVector::from(vector))
        })
        .collect())
}

/// `document_chunks.metadata`: where the chunk is in `files.extracted_text`, the page it
/// ends on when it runs over a page break, and, when a heading path was embedded with it,
/// the template and the path, so that what was embedded can be rebuilt exactly.
fn chunk_metadata(chunk: &Chunk, template: &str) -> serde_json::Value {
    let mut metadata = serde_json::json!({
        "start_char": chunk.start_char,
        "end_char": chunk.end_char,
    });
    if let Some(page) = chunk.last_page {
        metadata["last_page"] = page.into();
    }
    if chunk.ocr {
        metadata["ocr"] = true.into();
    }
    if let Some(context) = &chunk.context {
        metadata["embed_template"] = template.into();
        metadata["embed_heading"] = context.as_str().into();
    }
    metadata
}

/// A vector in pgvector's text form, `[0.5,-1,...]`. Each f16 is printed as the shortest f32
/// text that reads back as the same value, so the stored halfvec is bit for bit the same as
/// a binary one.
pub fn vector_text(vector: &HalfVector) -> String {
    use std::fmt::Write;
    let values = vector.as_slice();
    let mut text = String::with_capacity(values.len() * 10 + 2);
    text.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{}", f32::from(*v));
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn vector_text_reads_back_exactly() {
        let values: Vec<f16> = [0.0, -0.0, 1.0, -2.5, 0.1, 65504.0, 6.1e-5, 1e-7]
            .into_iter()
            .map(f16::from_f32)
            .collect();
        let text = vector_text(&HalfVector::from(values.clone()));
        assert!(
            text.starts_with("[0,-0,1,-2.5,0.099975586,65504,"),
            "{text}"
        );
        let parsed: Vec<f16> = text[1..text.len() - 1]
            .split(',')
            .map(|t| f16::from_f32(t.parse::<f32>().unwrap()))
            .collect();
        assert_eq!(
            parsed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
