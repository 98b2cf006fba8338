//! The audit log for site admins: newest records first, filtered by actor, action (exact or a
//! `prefix.`), target and a UTC time range, in stable keyset pages; and, on request, the hash
//! chain's verification (it reads every record, so it runs only when asked).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::ErrorKind;
use cairn_domain::time::parse_utc;
use cairn_service::{AuditQuery, ChainStatus, Services};
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::PageQuery;
use crate::layout::{Layout, optional, render_with, time};
use crate::session::Visitor;

/// Records per page unless `per` says otherwise.
const DEFAULT_PER_PAGE: i64 = 50;

struct RecordRow {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    details: String,
    request_id: String,
}

enum Chain {
    NotChecked,
    Intact(i64),
    Broken(i64, String),
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    actor: String,
    action: String,
    target: String,
    since: String,
    until: String,
    per: i64,
    rows: Vec<RecordRow>,
    first_href: Option<String>,
    next_href: Option<String>,
    verify_href: String,
    chain: Chain,
    error: Option<String>,
}

/// The filters and page of the audit log.
#[derive(Deserialize, Clone, Default)]
pub struct AuditParams {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    per: Option<i64>,
    page: Option<String>,
    verify: Option<String>,
}

/// The link to the same filters on another page (`page`), with or without verification.
fn href(params: &AuditParams, per: i64, page: Option<&str>, verify: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("actor", &params.actor),
        ("action", &params.action),
        ("target", &params.target),
        ("since", &params.since),
        ("until", &params.until),
    ] {
        if let Some(value) = optional(value) {
            query.append_pair(key, value);
        }
    }
    query.append_pair("per", &per.to_string());
    if let Some(page) = page {
        query.append_pair("page", page);
    }
    if verify {
        query.append_pair("verify", "1");
    }
    format!("/audit?{}", query.finish())
}

/// A `since`/`until` field as epoch ms.
fn bound(name: &str, text: &str) -> Result<Option<i64>, String> {
    match optional(text) {
        None => Ok(None),
        Some(text) => parse_utc(text).map(Some).ok_or_else(|| {
            format!("'{name}' must be a UTC date or time like 2026-11-27 or 2026-11-27T10:15")
        }),
    }
}

/// `GET /audit`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PageQuery(params): PageQuery<AuditParams>,
) -> PageResult {
    services.identity.authorize_admin(&visitor.context)?;
    let per = params.per.unwrap_or(DEFAULT_PER_PAGE).clamp(1, 500);
    let mut error = None;
    let (since, until) = match (bound("since", &params.since), bound("until", &params.until)) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(message), _) | (_, Err(message)) => {
            error = Some(message);
            (None, None)
        }
    };
    let mut rows = Vec::new();
    let mut next_href = None;
    if error.is_none() {
        let query = AuditQuery {
            actor: optional(&params.actor).map(str::to_string),
            action: optional(&params.action).map(str::to_string),
            target: optional(&params.target).map(str::to_string),
            since,
            until,
            limit: per,
            ..AuditQuery::default()
        };
        let token = params.page.clone().unwrap_or_default();
        match services.audit.recent(&visitor.context, query, &token).await {
            Ok((records, next)) => {
                rows = records
                    .into_iter()
                    .map(|record| RecordRow {
                        seq: record.seq,
                        time: time(record.time),
                        actor: record.actor,
                        action: record.action,
                        target: record.target,
                        details: record.details,
                        request_id: record.request_id.unwrap_or_default(),
                    })
                    .collect();
                next_href = next.map(|token| href(&params, per, Some(&token), false));
            }
            Err(failure) if failure.kind == ErrorKind::InvalidArgument => {
                error = Some(failure.message);
            }
            Err(failure) => return Err(PageError::from(failure)),
        }
    }
    let chain = if params.verify.is_some() {
        match services.audit.verify(&visitor.context).await? {
            ChainStatus::Intact(count) => Chain::Intact(count),
            ChainStatus::Broken(failure) => Chain::Broken(failure.seq, failure.reason),
        }
    } else {
        Chain::NotChecked
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = AuditPage {
        layout: Layout::new(&visitor, "audit", "Audit log"),
        first_href: params.page.is_some().then(|| href(&params, per, None, false)),
        next_href,
        verify_href: href(&params, per, params.page.as_deref(), true),
        actor: params.actor.trim().to_string(),
        action: params.action.trim().to_string(),
        target: params.target.trim().to_string(),
        since: params.since.trim().to_string(),
        until: params.until.trim().to_string(),
        per,
        rows,
        chain,
        error,
    };
    render_with(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filters() {
        let params =
            AuditParams { actor: "ada".into(), action: " run. ".into(), ..Default::default() };
        assert_eq!(
            href(&params, 50, Some("xyz"), false),
            "/audit?actor=ada&action=run.&per=50&page=xyz"
        );
        assert!(href(&params, 10, None, true).ends_with("per=10&verify=1"));
    }
}
