//! The store's conformance suite, run against every real backend (SQLite and PostgreSQL), and
//! helpers that give each test an isolated database.

mod audit;
mod comments;
mod experiments;
mod projects;
mod runs;
mod search;
mod sessions;

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};

use crate::{Store, StoreOptions};

/// The context conformance checks act under.
pub(crate) fn ctx() -> cairn_domain::audit::RequestContext {
    cairn_domain::audit::RequestContext {
        actor: "conformance".into(),
        request_id: Some("test-request".into()),
        principal: None,
        project: None,
    }
}

/// Runs every conformance check against `store` (freshly migrated and empty but for Default).
pub async fn run_all(store: &Store) {
    experiments::run(store).await;
    runs::run(store).await;
    search::run(store).await;
    projects::run(store).await;
    audit::run(store).await;
    sessions::run(store).await;
    comments::run(store).await;
}

/// Whether CI demands every external service (`CAIRN_TEST_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("CAIRN_TEST_REQUIRE_SERVICES").is_ok_and(|value| value == "1")
}

/// A migrated store in a fresh SQLite file under `dir`.
pub async fn sqlite_store(dir: &std::path::Path) -> Store {
    let url = format!("sqlite://{}", dir.join("cairn.db").display());
    let store = Store::connect(&url, &StoreOptions::default()).await.expect("open sqlite store");
    store.migrate().await.expect("migrate sqlite store");
    store
}

/// A fresh, empty PostgreSQL database URL made from `CAIRN_TEST_DATABASE_URL`, or `None`
/// (after a loud notice) when that variable is unset and services are not required.
pub async fn postgres_database_url() -> Option<String> {
    let admin_url = match std::env::var("CAIRN_TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) if services_required() => {
            panic!("CAIRN_TEST_DATABASE_URL is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!("SKIPPED: PostgreSQL test (set CAIRN_TEST_DATABASE_URL to run it)");
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let name = format!("cairn_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AnyConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let mut url = url::Url::parse(&admin_url).expect("CAIRN_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// A migrated store in a fresh PostgreSQL database, or `None` when PostgreSQL is not configured.
pub async fn postgres_store() -> Option<Store> {
    let url = postgres_database_url().await?;
    let store = Store::connect(&url, &StoreOptions::default()).await.expect("open postgres store");
    store.migrate().await.expect("migrate postgres store");
    Some(store)
}
