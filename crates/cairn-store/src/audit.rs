//! The audit log in the store: every mutation appends its record in the same transaction as
//! the change, so a record exists exactly when the change committed; reads for verification
//! and export walk the chain in order.

use cairn_domain::audit::{
    AuditEntry, AuditRecord, ChainBreak, ChainVerifier, GENESIS_HASH, RequestContext, record_hash,
};
use cairn_domain::time::now_millis;
use sqlx::{Any, Row, Transaction};

use crate::{Dialect, Store, StoreResult};

/// Serialises appends across PostgreSQL connections (SQLite has one writer already).
const POSTGRES_AUDIT_LOCK: i64 = 0x6361_6972_6e01;

/// Records read per query while walking the chain.
const PAGE: i64 = 5000;

/// Appends `entry` to the chain inside `transaction`.
pub(crate) async fn append(
    transaction: &mut Transaction<'static, Any>,
    dialect: Dialect,
    context: &RequestContext,
    entry: AuditEntry,
) -> StoreResult<()> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_AUDIT_LOCK)
            .execute(&mut **transaction)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **transaction)
        .await?;
    let (previous_seq, prev_hash) = match last {
        Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?),
        None => (0, GENESIS_HASH.to_string()),
    };
    let mut record = AuditRecord {
        seq: previous_seq + 1,
        time: now_millis(),
        actor: context.actor.clone(),
        action: entry.action,
        target: entry.target,
        request_id: context.request_id.clone(),
        details: entry.details.to_string(),
        prev_hash,
        hash: String::new(),
    };
    record.hash = record_hash(&record);
    sqlx::query(
        "INSERT INTO audit_events (seq, time, actor, action, target, request_id, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.seq)
    .bind(record.time)
    .bind(&record.actor)
    .bind(&record.action)
    .bind(&record.target)
    .bind(record.request_id.clone())
    .bind(&record.details)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Shorthand for an entry.
pub(crate) fn entry(action: &str, target: String, details: serde_json::Value) -> AuditEntry {
    AuditEntry { action: action.to_string(), target, details }
}

fn record_from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        request_id: row.try_get("request_id")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Every record fits; this many were checked.
    Intact(i64),
    /// The first record that does not fit.
    Broken(ChainBreak),
}

/// A query over the audit log; all given conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (e.g. `run.`).
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// Records at or after this time (epoch ms).
    pub since: Option<i64>,
    /// Records before this time (epoch ms).
    pub until: Option<i64>,
    /// Records after this sequence number (keyset pagination, oldest first).
    pub after_seq: i64,
    /// Records before this sequence number (keyset pagination, newest first).
    pub before_seq: Option<i64>,
    /// Newest first instead of in sequence order.
    pub newest_first: bool,
    /// Page size.
    pub limit: i64,
}

impl Store {
    /// Searches the audit log in sequence order (or newest first); returns a page and whether
    /// more follow.
    pub async fn search_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditRecord>, bool)> {
        let mut sql = crate::sql::Sql::new(
            "SELECT seq, time, actor, action, target, request_id, details, prev_hash, hash \
             FROM audit_events WHERE seq > ",
        );
        sql.bind(query.after_seq);
        if let Some(before) = query.before_seq {
            sql.push(" AND seq < ").bind(before);
        }
        if let Some(actor) = &query.actor {
            sql.push(" AND actor = ").bind(actor);
        }
        match query.action.as_deref() {
            Some(prefix) if prefix.ends_with('.') => {
                // The length is cast: PostgreSQL's substr takes an integer, binds are bigint.
                sql.push(" AND substr(action, 1, CAST(")
                    .bind(prefix.len() as i64)
                    .push(" AS INTEGER)) = ")
                    .bind(prefix);
            }
            Some(action) => {
                sql.push(" AND action = ").bind(action);
            }
            None => {}
        }
        if let Some(target) = &query.target {
            sql.push(" AND target = ").bind(target);
        }
        if let Some(since) = query.since {
            sql.push(" AND time >= ").bind(since);
        }
        if let Some(until) = query.until {
            sql.push(" AND time < ").bind(until);
        }
        let order =
            if query.newest_first { " ORDER BY seq DESC LIMIT " } else { " ORDER BY seq LIMIT " };
        sql.push(order).bind(query.limit + 1);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut records = rows.iter().map(record_from_row).collect::<sqlx::Result<Vec<_>>>()?;
        let has_more = records.len() as i64 > query.limit;
        records.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok((records, has_more))
    }

    /// Appends the audit record of a mutation and commits it with the change: every write
    /// path ends here, so a change and its record are durable together or not at all.
    pub(crate) async fn commit_audited(
        &self,
        mut transaction: Transaction<'static, Any>,
        context: &RequestContext,
        entry: AuditEntry,
    ) -> StoreResult<()> {
        append(&mut transaction, self.dialect, context, entry).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records an action that has no transaction of its own (an artifact upload, say).
    pub async fn record_audit(
        &self,
        context: &RequestContext,
        entry: AuditEntry,
    ) -> StoreResult<()> {
        let transaction = self.begin().await?;
        self.commit_audited(transaction, context, entry).await
    }

    /// Reads records with `seq > after_seq` and `time >= since`, in order, at most `limit`.
    pub async fn audit_records(
        &self,
        after_seq: i64,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT seq, time, actor, action, target, request_id, details, prev_hash, hash \
             FROM audit_events WHERE seq > $1 AND time >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after_seq)
        .bind(since)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(record_from_row).collect::<sqlx::Result<_>>()?)
    }

    /// Recomputes the whole chain and reports the first broken record, if any.
    pub async fn verify_audit_chain(&self) -> StoreResult<ChainStatus> {
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = self.audit_records(after, i64::MIN, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                if let Err(failure) = verifier.push(record) {
                    return Ok(ChainStatus::Broken(failure));
                }
            }
        }
        Ok(ChainStatus::Intact(verifier.verified()))
    }
}
