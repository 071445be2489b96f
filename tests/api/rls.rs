//! Row Level Security as the app's users meet it: role `authenticated` with JWT claims.

use sqlx::Acquire;
use uuid::Uuid;

use crate::support::TestEnv;

/// Counts rows of `table` visible to `user` through RLS, the way PostgREST runs queries.
async fn visible(env: &TestEnv, user: Option<Uuid>, sql: &str) -> i64 {
    as_user(env, user, sql).await
}

/// The one value `sql` returns to `user` (anonymous with `None`) through RLS, the way
/// PostgREST runs a request: role `authenticated`, the JWT's claims, one transaction.
pub(crate) async fn as_user<T>(env: &TestEnv, user: Option<Uuid>, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut conn = env.pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("set local role authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(user) = user {
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(serde_json::json!({ "sub": user, "role": "authenticated" }).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let value: T = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    value
}

#[tokio::test]
async fn users_see_only_their_own_files_chunks_and_usage() {
    let env = TestEnv::start().await;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    env.enqueue(alice, "handbook.pdf").await;
    env.enqueue(bob, "notes.txt").await;
    env.drain().await;

    let alice_chunks = env
        .count(
            "select count(*) from document_chunks where user_id = $1",
            alice,
        )
        .await;
    assert!(alice_chunks > 0);
    assert_eq!(
        visible(&env, Some(alice), "select count(*) from document_chunks").await,
        alice_chunks
    );
    assert_eq!(
        visible(&env, Some(alice), "select count(*) from files").await,
        1
    );
    assert_eq!(
        visible(&env, Some(alice), "select count(*) from usage_logs").await,
        1
    );
    // Without a JWT nothing is visible.
    assert_eq!(
        visible(&env, None, "select count(*) from document_chunks").await,
        0
    );
    assert_eq!(visible(&env, None, "select count(*) from files").await, 0);

    // Asking search_similar_chunks for Bob's chunks as Alice returns nothing: the function
    // runs with the caller's rights, so RLS applies inside it too.
    let q = format!(
        "select count(*) from search_similar_chunks(
           (select embedding from document_chunks limit 1), '{bob}'::uuid, -1, 100)"
    );
    assert_eq!(visible(&env, Some(alice), &q).await, 0);
    assert!(visible(&env, Some(bob), &q).await > 0);
}
