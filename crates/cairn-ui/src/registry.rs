//! The model registry: registered models (searched by name, in one project or across the
//! visitor's projects), a model (versions, aliases, tags, the alias and stage history), and a
//! version (its facts, tags, rendered model card, approval requests, promotion form, compliance
//! bundle download and comments).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cairn_domain::comments::CommentTarget;
use cairn_domain::entities::{ModelVersion, RegisteredModel};
use cairn_domain::governance::PromotionTarget;
use cairn_service::Services;
use serde::Deserialize;

use crate::comments::{CommentsView, load as load_comments};
use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath, PageQuery};
use crate::layout::{Choice, Layout, choices, encode, literal, optional, render, time};
use crate::session::Visitor;

/// Models listed per project.
const MODELS_PER_PAGE: i64 = 100;
/// Projects the cross-project list reads.
const MAX_PROJECTS: usize = 20;
/// Versions listed on a model's page.
const VERSIONS_SHOWN: i64 = 200;

struct ModelRow {
    project: String,
    name: String,
    href: String,
    description: String,
    latest: String,
    aliases: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    layout: Layout,
    query: String,
    project: String,
    projects: Vec<Choice>,
    rows: Vec<ModelRow>,
    next_href: Option<String>,
    more_projects: bool,
    error: Option<String>,
}

/// `?q=&project=&page=` of the models list.
#[derive(Deserialize)]
pub struct ModelsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    project: String,
    page: Option<String>,
}

fn model_href(project: &str, name: &str) -> String {
    format!("/projects/{}/models/{}", encode(project), encode(name))
}

fn version_href(project: &str, name: &str, version: i64) -> String {
    format!("{}/versions/{version}", model_href(project, name))
}

fn model_row(project: &str, model: RegisteredModel) -> ModelRow {
    let latest = model.latest_versions.iter().map(|version| version.version).max();
    let aliases: Vec<String> =
        model.aliases.iter().map(|(alias, version)| format!("@{alias} → v{version}")).collect();
    ModelRow {
        project: project.to_string(),
        href: model_href(project, &model.name),
        name: model.name,
        description: model.description.unwrap_or_default(),
        latest: latest.map(|version| format!("v{version}")).unwrap_or_default(),
        aliases: aliases.join(", "),
        updated: time(model.last_updated_timestamp),
    }
}

/// `GET /models`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PageQuery(query): PageQuery<ModelsQuery>,
) -> PageResult {
    let projects: Vec<String> =
        services.projects.list(&visitor.context).await?.into_iter().map(|p| p.name).collect();
    let text = query.q.trim().to_string();
    let filter = if text.is_empty() {
        String::new()
    } else {
        format!("name ILIKE {}", literal(&format!("%{text}%")))
    };
    let order = ["name ASC".to_string()];
    let mut rows = Vec::new();
    let mut next_href = None;
    let mut error = None;
    let chosen: Vec<&String> = match optional(&query.project) {
        Some(name) => vec![projects.iter().find(|p| *p == name).ok_or_else(|| {
            PageError::not_found(format!("you are not a member of a project named '{name}'"))
        })?],
        None => projects.iter().take(MAX_PROJECTS).collect(),
    };
    let page_token = query.page.clone().unwrap_or_default();
    for project in &chosen {
        let context = visitor.in_project(project);
        let found = services
            .registry
            .search_models(&context, &filter, &order, MODELS_PER_PAGE, &page_token)
            .await;
        match found {
            Ok((models, next)) => {
                rows.extend(models.into_iter().map(|model| model_row(project, model)));
                if chosen.len() == 1
                    && let Some(token) = next
                {
                    next_href = Some(format!(
                        "/models?project={}&q={}&page={}",
                        encode(project),
                        encode(&text),
                        encode(&token)
                    ));
                }
            }
            Err(failure) if failure.kind == cairn_domain::ErrorKind::InvalidArgument => {
                error = Some(failure.message);
                break;
            }
            Err(failure) => return Err(failure.into()),
        }
    }
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = ModelsPage {
        layout: Layout::new(&visitor, "models", "Registered models"),
        query: text,
        project: query.project.trim().to_string(),
        more_projects: optional(&query.project).is_none() && projects.len() > MAX_PROJECTS,
        projects: choices(&projects, query.project.trim()),
        rows,
        next_href,
        error,
    };
    crate::layout::render_with(status, &page)
}

struct VersionRow {
    version: i64,
    href: String,
    stage: String,
    aliases: String,
    user: String,
    created: String,
    run_href: Option<String>,
    run_id: String,
}

struct HistoryRow {
    at: String,
    what: String,
    version: String,
    previous: String,
    actor: String,
    request_id: Option<i64>,
}

struct KeyValue {
    key: String,
    value: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    layout: Layout,
    project: String,
    name: String,
    name_encoded: String,
    description: String,
    tags: Vec<KeyValue>,
    aliases: Vec<(String, i64, String)>,
    versions: Vec<VersionRow>,
    more_versions: bool,
    history: Vec<HistoryRow>,
}

fn version_row(project: &str, version: &ModelVersion) -> VersionRow {
    VersionRow {
        version: version.version,
        href: version_href(project, &version.name, version.version),
        stage: version.current_stage.as_str().to_string(),
        aliases: version
            .aliases
            .iter()
            .map(|alias| format!("@{alias}"))
            .collect::<Vec<_>>()
            .join(" "),
        user: version.user_id.clone().unwrap_or_default(),
        created: time(version.creation_timestamp),
        run_href: version
            .run_id
            .as_ref()
            .map(|run_id| format!("/projects/{}/runs/{}", encode(project), encode(run_id))),
        run_id: version.run_id.clone().unwrap_or_default(),
    }
}

/// `GET /projects/{project}/models/{name}`.
pub async fn model(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let model = services.registry.get_model(&context, &name).await?;
    let filter = format!("name = {}", literal(&name));
    let order = ["version_number DESC".to_string()];
    let (versions, more) =
        services.registry.search_versions(&context, &filter, &order, VERSIONS_SHOWN, "").await?;
    let history = services.governance.history(&context, &name).await?;
    let mut tags: Vec<KeyValue> = model
        .tags
        .iter()
        .map(|tag| KeyValue { key: tag.key.clone(), value: tag.value.clone() })
        .collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    let page = ModelPage {
        layout: Layout::new(&visitor, "models", model.name.clone()),
        name_encoded: encode(&model.name),
        description: model.description.clone().unwrap_or_default(),
        tags,
        aliases: model
            .aliases
            .iter()
            .map(|(alias, version)| {
                (alias.clone(), *version, version_href(&project, &model.name, *version))
            })
            .collect(),
        versions: versions.iter().map(|version| version_row(&project, version)).collect(),
        more_versions: more.is_some(),
        history: history
            .into_iter()
            .rev()
            .map(|entry| HistoryRow {
                at: time(entry.at),
                what: format!("{} {}", entry.kind, entry.target),
                version: entry.version.map(|v| format!("v{v}")).unwrap_or_else(|| "—".into()),
                previous: entry
                    .previous_version
                    .map(|v| format!("v{v}"))
                    .or(entry.previous_stage)
                    .unwrap_or_else(|| "—".into()),
                actor: entry.actor,
                request_id: entry.request_id,
            })
            .collect(),
        name: model.name,
        project,
    };
    render(&page)
}

struct CardView {
    revision: i64,
    author: String,
    saved: String,
    intended_use: String,
    limitations: String,
    owner: String,
    notes: String,
    training_data: Vec<String>,
    metrics: Vec<KeyValue>,
    missing: String,
}

struct RequestRow {
    id: i64,
    target: String,
    state: String,
    requested_by: String,
    created: String,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    layout: Layout,
    project: String,
    name: String,
    model_href: String,
    version: i64,
    stage: String,
    aliases: String,
    user: String,
    created: String,
    description: String,
    source: String,
    run_href: Option<String>,
    run_id: String,
    tags: Vec<KeyValue>,
    card: Option<CardView>,
    requests: Vec<RequestRow>,
    bundle_href: String,
    promote_href: String,
    can_write: bool,
    comments: CommentsView,
}

/// `GET /projects/{project}/models/{name}/versions/{version}`.
pub async fn version(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name, number)): PagePath<(String, String, i64)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let found = services.registry.get_version(&context, &name, number).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let revisions = services.governance.card_revisions(&context, &name, number).await?;
    let requests =
        services.governance.list_requests(&context, None, Some(name.clone()), false, 1000).await?;
    let card = revisions.into_iter().last().map(|revision| {
        let missing = revision.card.missing().join(", ");
        CardView {
            revision: revision.revision,
            author: revision.author,
            saved: time(revision.created_at),
            intended_use: revision.card.intended_use,
            limitations: revision.card.limitations,
            owner: revision.card.owner,
            notes: revision.card.notes,
            training_data: revision
                .card
                .training_data
                .iter()
                .map(|dataset| {
                    let mut text = dataset.name.clone();
                    if let Some(version) = &dataset.version {
                        text.push_str(&format!(" @ {version}"));
                    }
                    if let Some(source) = &dataset.source {
                        text.push_str(&format!(" ({source})"));
                    }
                    text
                })
                .collect(),
            metrics: revision
                .card
                .metrics
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.clone(),
                    value: crate::layout::number(*value),
                })
                .collect(),
            missing,
        }
    });
    let target = CommentTarget::ModelVersion { name: name.clone(), version: number };
    let comments =
        load_comments(&services, &visitor, &project, &target, access.can_write, access.can_manage)
            .await?;
    let row = version_row(&project, &found);
    let mut tags: Vec<KeyValue> = found
        .tags
        .iter()
        .map(|tag| KeyValue { key: tag.key.clone(), value: tag.value.clone() })
        .collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    let base = version_href(&project, &name, number);
    let page = VersionPage {
        layout: Layout::new(&visitor, "models", format!("{name} v{number}")),
        model_href: model_href(&project, &name),
        version: number,
        stage: row.stage,
        aliases: row.aliases,
        user: row.user,
        created: row.created,
        description: found.description.clone().unwrap_or_default(),
        source: found.source.clone(),
        run_href: row.run_href,
        run_id: row.run_id,
        tags,
        card,
        requests: requests
            .into_iter()
            .filter(|request| request.version == number)
            .map(|request| RequestRow {
                id: request.id,
                target: request.target.to_string(),
                state: request.state.as_str().to_string(),
                requested_by: request.requested_by,
                created: time(request.created_at),
            })
            .collect(),
        bundle_href: format!("{base}/bundle"),
        promote_href: format!("{base}/promote"),
        can_write: access.can_write,
        comments,
        name,
        project,
    };
    render(&page)
}

/// `GET /projects/{project}/models/{name}/versions/{version}/bundle`: the compliance bundle,
/// as a download (the export is audited).
pub async fn bundle(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name, number)): PagePath<(String, String, i64)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let archive = services.governance.bundle(&context, &name, number).await?;
    let file_name: String = format!("{name}-v{number}-bundle.tar.gz")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut response: Response = (StatusCode::OK, archive).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}

/// The promotion form.
#[derive(Deserialize)]
pub struct PromoteForm {
    kind: String,
    target: String,
    #[serde(default)]
    comment: String,
}

/// `POST /projects/{project}/models/{name}/versions/{version}/promote`: moves the alias or
/// stage at once, or opens an approval request when a policy covers it.
pub async fn promote(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name, number)): PagePath<(String, String, i64)>,
    PageForm(form): PageForm<PromoteForm>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let target = PromotionTarget::from_parts(form.kind.trim(), form.target.trim())
        .map_err(|error| PageError::bad_request(error.message))?;
    let promotion = services
        .governance
        .promote(&context, &name, number, &target, false, optional(&form.comment))
        .await?;
    let next = match promotion.request {
        Some(request) if !promotion.applied => format!("/approvals/{}", request.id),
        _ => version_href(&project, &name, number),
    };
    Ok(Redirect::to(&next).into_response())
}
