//! Runs the store's conformance suite against SQLite and PostgreSQL.

use cairn_store::testsuite;

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = testsuite::sqlite_store(dir.path()).await;
    testsuite::run_all(&store).await;
    assert!(store.migrate().await.expect("re-migrate").is_empty(), "migrations are idempotent");
}

#[tokio::test]
async fn postgres_conformance() {
    let Some(store) = testsuite::postgres_store().await else {
        return;
    };
    testsuite::run_all(&store).await;
    assert!(store.migrate().await.expect("re-migrate").is_empty(), "migrations are idempotent");
}
