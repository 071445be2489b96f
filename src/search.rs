//! The read side, as an app would use it: embed the query, call search_similar_chunks()
//! (or search_org_chunks(), hybrid_search_chunks()), and record what the query cost.

use pgvector::HalfVector;
use sqlx::PgPool;
use uuid::Uuid;

use crate::chunk::Chunker;
use crate::config::EmbeddingSettings;
use crate::embed::{EmbedError, Embedder, Usage};
use crate::store::{record_usage, UsageRecord};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hit {
    pub id: Uuid,
    pub file_id: Uuid,
    pub file_name: String,
    pub content: String,
    pub chunk_index: i32,
    pub page_number: Option<i32>,
    pub heading: Option<String>,
    pub similarity: f64,
    /// Hybrid search's fused score (reciprocal rank fusion); `None` for vector search.
    pub score: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Whose chunks, and how.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The user's own chunks (`search_similar_chunks`).
    User,
    /// An organisation's chunks (`search_org_chunks`), for a member.
    Org(Uuid),
    /// The user's chunks by full text on this web-search-style query (all words must
    /// appear; `or`, quotes and `-` work) fused with vectors (`hybrid_search_chunks`).
    Hybrid(&'a str),
}

/// Embeds `query` and returns the best chunks for `user_id` in `scope`, with what the
/// query embedding cost, which is recorded in usage_logs (`action` = `search`) in the same
/// transaction as the search.
#[allow(clippy::too_many_arguments)]
pub async fn search(
    pool: &PgPool,
    embedder: &Embedder,
    settings: &EmbeddingSettings,
    chunker: &Chunker,
    user_id: Uuid,
    scope: Scope<'_>,
    query: &str,
    threshold: f64,
    limit: i32,
) -> Result<(Vec<Hit>, Usage), SearchError> {
    let mut usage = Usage::default();
    let tokens = chunker.count_tokens(query);
    let vector: HalfVector = embedder
        .embed(&[(query, tokens)], &mut usage)
        .await?
        .pop()
        .ok_or_else(|| EmbedError::BadResponse("no vector for the query".into()))?;
    // Unnamed, in a transaction, the vector as text: see `queue` and `store`.
    let mut tx = pool.begin().await?;
    let vector = crate::store::vector_text(&vector);
    let columns = "id, file_id, file_name, content, chunk_index, page_number, heading, similarity";
    let (hits, mode) = match scope {
        Scope::User | Scope::Org(_) => {
            let (function, tenant, mode) = match scope {
                Scope::Org(org) => ("search_org_chunks", org, "org"),
                _ => ("search_similar_chunks", user_id, "vector"),
            };
            let sql = format!(
                "select {columns}, null::float8 as score from {function}($1::text::halfvec, $2, $3, $4)"
            );
            let hits = sqlx::query_as::<_, Hit>(&sql)
                .persistent(false)
                .bind(&vector)
                .bind(tenant)
                .bind(threshold)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            (hits, mode)
        }
        // Fused scores are not similarities: the threshold does not apply.
        Scope::Hybrid(text) => {
            let sql = format!(
                "select {columns}, score from hybrid_search_chunks($1, $2::text::halfvec, $3, $4)"
            );
            let hits = sqlx::query_as::<_, Hit>(&sql)
                .persistent(false)
                .bind(text)
                .bind(&vector)
                .bind(user_id)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            (hits, "hybrid")
        }
    };
    if usage.tokens > 0 {
        let record = UsageRecord {
            action: "search",
            user_id,
            org_id: match scope {
                Scope::Org(org) => Some(org),
                _ => None,
            },
            conversation_id: None,
            provider: &settings.provider,
            model: embedder.model(),
            price_per_million: settings.price_per_million(),
            usage,
            metadata: serde_json::json!({ "mode": mode, "results": hits.len() }),
        };
        record_usage(&mut *tx, &record).await?;
    }
    tx.commit().await?;
    Ok((hits, usage))
}
