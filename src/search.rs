//! The read side, as an app would use it: embed the query, call search_similar_chunks().

use pgvector::HalfVector;
use sqlx::PgPool;
use uuid::Uuid;

use crate::chunk::Chunker;
use crate::embed::{EmbedError, Embedder, Usage};

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
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Embeds `query` and returns the user's best chunks, with what the query embedding cost.
pub async fn search(
    pool: &PgPool,
    embedder: &Embedder,
    chunker: &Chunker,
    user_id: Uuid,
    query: &str,
    threshold: f64,
    limit: i32,
) -> Result<(Vec<Hit>, Usage), SearchError> {
    let mut usage = Usage::default();
    let tokens = chunker.count_tokens(query);
    let vector: HalfVector = embedder
        .embed(&[query], &[tokens], &mut usage)
        .await?
        .pop()
        .expect("one vector per input, checked by the embedder");
    // Unnamed, in a transaction, the vector as text: see `queue` and `store`.
    let mut tx = pool.begin().await?;
    let hits = sqlx::query_as::<_, Hit>(
        "select id, file_id, file_name, content, chunk_index, page_number, heading, similarity
         from search_similar_chunks($1::text::halfvec, $2, $3, $4)",
    )
    .persistent(false)
    .bind(crate::store::vector_text(&vector))
    .bind(user_id)
    .bind(threshold)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((hits, usage))
}
