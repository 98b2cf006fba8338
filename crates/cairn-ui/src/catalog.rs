//! What IT offers jobs and workspaces: environments (revisions with their state; site admins
//! approve or deprecate a revision), hardware tiers and quotas (site admins create and change
//! tiers and set quotas). Everyone signed in reads them; the catalogue service refuses writes
//! by anyone but a site admin.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::compute::{ExecutorKind, Quota, QuotaScope, RevisionState, TierSpec};
use cairn_service::{Authorizer, Services};
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Layout, encode, maybe_time, number, optional, render, time};
use crate::session::Visitor;

struct EnvironmentRow {
    name: String,
    href: String,
    description: String,
    latest: String,
    approved: String,
}

#[derive(Template)]
#[template(path = "environments.html")]
struct EnvironmentsPage {
    layout: Layout,
    rows: Vec<EnvironmentRow>,
}

/// `GET /environments`.
pub async fn environments(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let found = services.catalog.environments(&visitor.context).await?;
    let rows = found
        .into_iter()
        .map(|environment| EnvironmentRow {
            href: format!("/environments/{}", encode(&environment.name)),
            latest: environment
                .revisions
                .iter()
                .map(|revision| revision.revision)
                .max()
                .map(|revision| revision.to_string())
                .unwrap_or_default(),
            approved: environment
                .latest_approved()
                .map(|revision| revision.revision.to_string())
                .unwrap_or_default(),
            description: environment.description,
            name: environment.name,
        })
        .collect();
    render(&EnvironmentsPage { layout: Layout::new(&visitor, "compute", "Environments"), rows })
}

struct RevisionRow {
    revision: i64,
    state: String,
    python: String,
    image: String,
    requirements: Vec<String>,
    digest: String,
    created: String,
    decided: String,
}

#[derive(Template)]
#[template(path = "environment.html")]
struct EnvironmentPage {
    layout: Layout,
    name: String,
    description: String,
    created: String,
    revisions: Vec<RevisionRow>,
    is_admin: bool,
}

/// `GET /environments/{name}`.
pub async fn environment(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(name): PagePath<String>,
) -> PageResult {
    let found = services.catalog.environment(&visitor.context, &name).await?;
    let mut revisions: Vec<RevisionRow> = found
        .revisions
        .into_iter()
        .map(|revision| RevisionRow {
            revision: revision.revision,
            state: revision.state.as_str().to_string(),
            python: revision.definition.python.unwrap_or_default(),
            image: revision.definition.image.unwrap_or_default(),
            requirements: revision.definition.requirements,
            digest: revision.digest.get(..12).unwrap_or(&revision.digest).to_string(),
            created: format!("{} by {}", time(revision.created_at), revision.created_by),
            decided: match (revision.decided_by, revision.decided_at) {
                (Some(by), at) => format!("{} by {by}", maybe_time(at)),
                _ => String::new(),
            },
        })
        .collect();
    revisions.sort_by_key(|row| std::cmp::Reverse(row.revision));
    render(&EnvironmentPage {
        layout: Layout::new(&visitor, "compute", found.name.clone()),
        description: found.description,
        created: format!("{} by {}", time(found.created_at), found.created_by),
        name: found.name,
        revisions,
        is_admin: Authorizer::is_unrestricted(&visitor.context),
    })
}

/// The approve or deprecate form.
#[derive(Deserialize)]
pub struct StateForm {
    state: String,
}

/// `POST /environments/{name}/revisions/{revision}/state`.
pub async fn set_state(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((name, revision)): PagePath<(String, i64)>,
    PageForm(form): PageForm<StateForm>,
) -> PageResult {
    let state =
        RevisionState::parse(&form.state).map_err(|error| PageError::bad_request(error.message))?;
    services.catalog.set_revision_state(&visitor.context, &name, revision, state).await?;
    Ok(Redirect::to(&format!("/environments/{}", encode(&name))).into_response())
}

struct TierRow {
    name: String,
    cpu: String,
    memory_mib: u64,
    gpus: u32,
    max_runtime: String,
    cost: String,
    executor: String,
    active: bool,
    updated: String,
}

struct QuotaRow {
    scope: String,
    max_jobs: String,
    max_gpus: String,
}

#[derive(Template)]
#[template(path = "tiers.html")]
struct TiersPage {
    layout: Layout,
    tiers: Vec<TierRow>,
    quotas: Vec<QuotaRow>,
    is_admin: bool,
}

fn limit(value: Option<i64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_else(|| "unlimited".to_string())
}

/// `GET /tiers`: hardware tiers and quotas.
pub async fn tiers(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let tiers = services
        .catalog
        .tiers(&visitor.context)
        .await?
        .into_iter()
        .map(|tier| TierRow {
            cpu: number(tier.spec.cpu),
            memory_mib: tier.spec.memory_mib,
            gpus: tier.spec.gpus,
            max_runtime: format!("{} s", tier.spec.max_runtime_s),
            cost: number(tier.spec.cost_per_hour),
            executor: tier.spec.executor.map(|kind| kind.as_str().to_string()).unwrap_or_default(),
            active: tier.active,
            updated: time(tier.updated_at),
            name: tier.name,
        })
        .collect();
    let quotas = services
        .catalog
        .quotas(&visitor.context)
        .await?
        .into_iter()
        .map(|quota| QuotaRow {
            scope: format!("{}:{}", quota.scope.kind(), quota.scope.name()),
            max_jobs: limit(quota.max_jobs),
            max_gpus: limit(quota.max_gpus),
        })
        .collect();
    render(&TiersPage {
        layout: Layout::new(&visitor, "compute", "Hardware tiers and quotas"),
        tiers,
        quotas,
        is_admin: Authorizer::is_unrestricted(&visitor.context),
    })
}

/// The create-or-replace tier form.
#[derive(Deserialize)]
pub struct TierForm {
    name: String,
    cpu: String,
    memory_mib: String,
    #[serde(default)]
    gpus: String,
    max_runtime_s: String,
    #[serde(default)]
    cost_per_hour: String,
    #[serde(default)]
    executor: String,
    #[serde(default)]
    active: Option<String>,
}

fn parse<T: std::str::FromStr>(field: &str, text: &str) -> PageResult<T> {
    text.trim().parse().map_err(|_| PageError::bad_request(format!("{field} is not a number")))
}

/// `POST /tiers`.
pub async fn put_tier(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<TierForm>,
) -> PageResult {
    services.catalog.require_admin(&visitor.context)?;
    let executor = match optional(&form.executor) {
        Some(text) => {
            Some(ExecutorKind::parse(text).map_err(|error| PageError::bad_request(error.message))?)
        }
        None => None,
    };
    let spec = TierSpec {
        cpu: parse("cpu", &form.cpu)?,
        memory_mib: parse("memory", &form.memory_mib)?,
        gpus: optional(&form.gpus).map(|text| parse("gpus", text)).transpose()?.unwrap_or(0),
        max_runtime_s: parse("the longest runtime", &form.max_runtime_s)?,
        cost_per_hour: optional(&form.cost_per_hour)
            .map(|text| parse("the cost per hour", text))
            .transpose()?
            .unwrap_or(0.0),
        executor,
    };
    let active = form.active.is_some();
    services.catalog.put_tier(&visitor.context, form.name.trim(), &spec, active).await?;
    Ok(Redirect::to("/tiers").into_response())
}

/// The quota form.
#[derive(Deserialize)]
pub struct QuotaForm {
    scope: String,
    #[serde(default)]
    max_jobs: String,
    #[serde(default)]
    max_gpus: String,
}

/// `POST /tiers/quotas`: sets a quota (both limits empty: removes it).
pub async fn set_quota(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<QuotaForm>,
) -> PageResult {
    let scope = QuotaScope::parse(form.scope.trim())
        .map_err(|error| PageError::bad_request(error.message))?;
    let quota = Quota {
        scope,
        max_jobs: optional(&form.max_jobs).map(|text| parse("max jobs", text)).transpose()?,
        max_gpus: optional(&form.max_gpus).map(|text| parse("max GPUs", text)).transpose()?,
    };
    services.catalog.set_quota(&visitor.context, &quota).await?;
    Ok(Redirect::to("/tiers#quotas").into_response())
}
