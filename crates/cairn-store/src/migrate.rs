//! Embedded, forward-only, numbered migrations per engine, applied at start-up and by
//! `cairn migrate`. Never edit an applied migration: add the next number.

use sqlx::{AssertSqlSafe, Executor};

use crate::{Dialect, Store, StoreError, StoreResult};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tracking",
        sqlite: include_str!("../migrations/sqlite/0001_tracking.sql"),
        postgres: include_str!("../migrations/postgres/0001_tracking.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sqlite: include_str!("../migrations/sqlite/0002_audit.sql"),
        postgres: include_str!("../migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "identity",
        sqlite: include_str!("../migrations/sqlite/0003_identity.sql"),
        postgres: include_str!("../migrations/postgres/0003_identity.sql"),
    },
    Migration {
        version: 4,
        name: "teams",
        sqlite: include_str!("../migrations/sqlite/0004_teams.sql"),
        postgres: include_str!("../migrations/postgres/0004_teams.sql"),
    },
    Migration {
        version: 5,
        name: "registry",
        sqlite: include_str!("../migrations/sqlite/0005_registry.sql"),
        postgres: include_str!("../migrations/postgres/0005_registry.sql"),
    },
    Migration {
        version: 6,
        name: "governance",
        sqlite: include_str!("../migrations/sqlite/0006_governance.sql"),
        postgres: include_str!("../migrations/postgres/0006_governance.sql"),
    },
    Migration {
        version: 7,
        name: "serving",
        sqlite: include_str!("../migrations/sqlite/0007_serving.sql"),
        postgres: include_str!("../migrations/postgres/0007_serving.sql"),
    },
    Migration {
        version: 8,
        name: "monitoring",
        sqlite: include_str!("../migrations/sqlite/0008_monitoring.sql"),
        postgres: include_str!("../migrations/postgres/0008_monitoring.sql"),
    },
    Migration {
        version: 9,
        name: "compute",
        sqlite: include_str!("../migrations/sqlite/0009_compute.sql"),
        postgres: include_str!("../migrations/postgres/0009_compute.sql"),
    },
    Migration {
        version: 10,
        name: "datasets",
        sqlite: include_str!("../migrations/sqlite/0010_datasets.sql"),
        postgres: include_str!("../migrations/postgres/0010_datasets.sql"),
    },
    Migration {
        version: 11,
        name: "workspaces",
        sqlite: include_str!("../migrations/sqlite/0011_workspaces.sql"),
        postgres: include_str!("../migrations/postgres/0011_workspaces.sql"),
    },
    Migration {
        version: 12,
        name: "ui_sessions",
        sqlite: include_str!("../migrations/sqlite/0012_ui_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0012_ui_sessions.sql"),
    },
    Migration {
        version: 13,
        name: "comments",
        sqlite: include_str!("../migrations/sqlite/0013_comments.sql"),
        postgres: include_str!("../migrations/postgres/0013_comments.sql"),
    },
];

/// A lock id shared by every Cairn process, so concurrent start-ups migrate once.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6361_6972_6e00;

/// The newest schema version this build knows: the number of its last migration.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// Applies every pending migration numbered at most `up_to` (all of them when `None`).
pub(crate) async fn run(store: &Store, up_to: Option<i64>) -> StoreResult<Vec<i64>> {
    let mut connection = store.writer.acquire().await?;
    if store.dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(POSTGRES_MIGRATION_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    let outcome = apply_pending(store.dialect, &mut connection, up_to).await;
    if store.dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(POSTGRES_MIGRATION_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    outcome
}

async fn apply_pending(
    dialect: Dialect,
    connection: &mut sqlx::AnyConnection,
    up_to: Option<i64>,
) -> StoreResult<Vec<i64>> {
    connection
        .execute(
            "CREATE TABLE IF NOT EXISTS cairn_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM cairn_migrations")
        .fetch_all(&mut *connection)
        .await?;
    let mut newly_applied = Vec::new();
    let pending = MIGRATIONS.iter().filter(|m| !applied.contains(&m.version));
    for migration in pending.filter(|m| up_to.is_none_or(|last| m.version <= last)) {
        let script = match dialect {
            Dialect::Sqlite => migration.sqlite,
            Dialect::Postgres => migration.postgres,
        };
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        transaction
            .execute(sqlx::raw_sql(AssertSqlSafe(script)))
            .await
            .map_err(|source| StoreError::Migration { version: migration.version, source })?;
        sqlx::query("INSERT INTO cairn_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(cairn_domain::time::now_millis())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        tracing::info!(
            migration.version = migration.version,
            migration.name = migration.name,
            "applied migration"
        );
        newly_applied.push(migration.version);
    }
    Ok(newly_applied)
}
