//! Global search from the header's box: projects, experiments, runs (by name, `key=value` tag
//! or id), registered models, datasets and comments the visitor may read, grouped by kind with
//! a link to each.

use askama::Template;
use axum::extract::State;
use cairn_domain::comments::CommentTarget;
use cairn_domain::global_search::{HitKind, SearchHit};
use cairn_service::Services;
use serde::Deserialize;

use crate::comments::page_of;
use crate::error::PageResult;
use crate::extract::PageQuery;
use crate::layout::{Layout, encode, render};
use crate::session::Visitor;

/// Hits per kind.
const PER_KIND: i64 = 20;

struct HitRow {
    href: String,
    title: String,
    project: String,
    detail: String,
}

struct Group {
    kind: &'static str,
    label: &'static str,
    hits: Vec<HitRow>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    query: String,
    groups: Vec<Group>,
    total: usize,
}

/// `?q=` of the search page.
#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Where a hit is shown.
fn href(hit: &SearchHit) -> String {
    let project = format!("/projects/{}", encode(&hit.project));
    match hit.kind {
        HitKind::Project => project,
        HitKind::Experiment => format!("{project}/experiments/{}", encode(&hit.id)),
        HitKind::Run => format!("{project}/runs/{}", encode(&hit.id)),
        HitKind::Model => format!("{project}/models/{}", encode(&hit.id)),
        HitKind::Dataset => format!("{project}#datasets"),
        HitKind::Comment => match hit.target.as_deref().map(CommentTarget::parse) {
            Some(Ok(target)) => {
                page_of(&hit.project, &target).replace("#comments", &format!("#comment-{}", hit.id))
            }
            _ => project,
        },
    }
}

/// `GET /search`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PageQuery(query): PageQuery<SearchQuery>,
) -> PageResult {
    let text = query.q.trim().to_string();
    let hits = services.search.search(&visitor.context, &text, PER_KIND).await?;
    let total = hits.len();
    let kinds = [
        (HitKind::Project, "Projects"),
        (HitKind::Experiment, "Experiments"),
        (HitKind::Run, "Runs"),
        (HitKind::Model, "Registered models"),
        (HitKind::Dataset, "Datasets"),
        (HitKind::Comment, "Comments"),
    ];
    let groups = kinds
        .into_iter()
        .map(|(kind, label)| Group {
            kind: kind.as_str(),
            label,
            hits: hits
                .iter()
                .filter(|hit| hit.kind == kind)
                .map(|hit| HitRow {
                    href: href(hit),
                    title: hit.title.clone(),
                    project: hit.project.clone(),
                    detail: hit.detail.clone(),
                })
                .collect(),
        })
        .filter(|group| !group.hits.is_empty())
        .collect();
    let title = if text.is_empty() { "Search".to_string() } else { format!("Search: {text}") };
    render(&SearchPage {
        layout: Layout::new(&visitor, "search", title).with_search(&text),
        query: text,
        groups,
        total,
    })
}
