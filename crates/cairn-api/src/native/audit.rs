//! `GET /api/v1/audit-events`: the audit log, filtered by actor, action, target and time, in
//! sequence order with stable keyset pages.

use axum::Json;
use axum::extract::State;
use cairn_domain::audit::AuditRecord;
use cairn_service::{AuditQuery, ChainStatus, Services};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::Query;
use crate::context::Caller;

/// Filters of an audit search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact actor (user name, `anonymous`, `system`).
    actor: Option<String>,
    /// Exact action (`run.create`), or a prefix ending in `.` (`run.`).
    action: Option<String>,
    /// Exact target (`run:<id>`, `experiment:<id>`, `artifact:<path>`).
    target: Option<String>,
    /// Only records at or after this time, in epoch milliseconds.
    since: Option<i64>,
    /// Only records before this time, in epoch milliseconds.
    until: Option<i64>,
    /// Records per page (1–1000, default 100).
    page_size: Option<i64>,
    /// The `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Position in the hash chain, from 1.
    seq: i64,
    /// Epoch milliseconds.
    time: i64,
    /// Who acted.
    actor: String,
    /// What they did.
    action: String,
    /// To what.
    target: String,
    /// The request id, when the action came over HTTP.
    request_id: Option<String>,
    /// Action-specific details.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// The previous record's hash.
    prev_hash: String,
    /// This record's hash.
    hash: String,
}

impl From<AuditRecord> for AuditEvent {
    fn from(record: AuditRecord) -> Self {
        let details = serde_json::from_str(&record.details)
            .unwrap_or(serde_json::Value::String(record.details));
        Self {
            seq: record.seq,
            time: record.time,
            actor: record.actor,
            action: record.action,
            target: record.target,
            request_id: record.request_id,
            details,
            prev_hash: record.prev_hash,
            hash: record.hash,
        }
    }
}

/// A page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records, in sequence order.
    events: Vec<AuditEvent>,
    /// Pass as `page_token` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// Search the audit log.
#[utoipa::path(
    get,
    path = "/audit-events",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = OK, description = "A page of audit records", body = AuditPage),
        (status = BAD_REQUEST, description = "Bad filter or page token", body = ErrorBody),
    )
)]
pub async fn search(
    State(services): State<Services>,
    Caller(context): Caller,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let query = AuditQuery {
        actor: params.actor,
        action: params.action,
        target: params.target,
        since: params.since,
        until: params.until,
        after_seq: 0,
        before_seq: None,
        newest_first: false,
        limit: params.page_size.unwrap_or(100),
    };
    let page_token = params.page_token.unwrap_or_default();
    let (records, next_page_token) = services.audit.search(&context, query, &page_token).await?;
    Ok(Json(AuditPage {
        events: records.into_iter().map(AuditEvent::from).collect(),
        next_page_token,
    }))
}

/// The hash chain's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainAnswer {
    /// Whether every record fits the chain.
    intact: bool,
    /// How many records were checked (when intact).
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<i64>,
    /// The first record that does not fit (when broken).
    #[serde(skip_serializing_if = "Option::is_none")]
    broken_at: Option<i64>,
    /// What is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Verify the whole hash chain now (site admins); it reads every record.
#[utoipa::path(get, path = "/audit-chain", tag = "audit",
    responses((status = OK, description = "The chain's state", body = ChainAnswer)))]
pub async fn verify(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<Json<ChainAnswer>> {
    let answer = match services.audit.verify(&context).await? {
        ChainStatus::Intact(count) => {
            ChainAnswer { intact: true, verified: Some(count), broken_at: None, reason: None }
        }
        ChainStatus::Broken(failure) => ChainAnswer {
            intact: false,
            verified: None,
            broken_at: Some(failure.seq),
            reason: Some(failure.reason),
        },
    };
    Ok(Json(answer))
}
