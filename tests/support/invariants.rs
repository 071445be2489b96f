//! Whole-queue invariants, asserted after a drain.

use uuid::Uuid;

use super::env::TestEnv;

impl TestEnv {
    /// Asserts the whole-queue invariants after a drain: every file completed, exactly one
    /// contiguous chunk set each, one usage row per completed processing.
    pub async fn assert_all_completed_exactly_once(&self, ids: &[Uuid]) {
        let not_completed: i64 = sqlx::query_scalar(
            "select count(*) from files where id = any($1) and processing_status <> 'completed'",
        )
        .bind(ids)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        assert_eq!(not_completed, 0, "every file completed");
        let bad_chunk_sets: i64 = sqlx::query_scalar(
            "select count(*) from files f
             where f.id = any($1) and (
               f.chunk_count <> (select count(*) from document_chunks c where c.file_id = f.id)
               or f.chunk_count <> (select count(distinct chunk_index) from document_chunks c where c.file_id = f.id)
               or (select max(chunk_index) from document_chunks c where c.file_id = f.id) <> f.chunk_count - 1)",
        )
        .bind(ids)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        assert_eq!(
            bad_chunk_sets, 0,
            "chunk sets are exact: no duplicates, no gaps"
        );
        let usage_rows: Vec<(String, i64)> = sqlx::query_as(
            "select f.id::text, (select count(*) from usage_logs u
                                 where u.metadata->>'file_id' = f.id::text
                                   and u.metadata->>'outcome' = 'completed')
             from files f where f.id = any($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        for (id, n) in usage_rows {
            assert_eq!(
                n, 1,
                "file {id}: one usage row for its completed processing"
            );
        }
    }
}
