//! The native API under `/api/v1`, described by the OpenAPI document served at
//! `/api/v1/openapi.json`. Handlers are thin: extract, call one service method, answer.

mod audit;
mod comments;
mod compute;
mod datasets;
mod deployments;
mod document;
mod error;
mod extract;
mod governance;
mod identity;
mod jobs;
mod monitoring;
#[cfg(test)]
mod proptests;
mod search;
mod workspaces;

use axum::Json;
use axum::Router;
use axum::routing::get;
use cairn_service::Services;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};

use crate::routes::{Needs, RouteSpec};

#[derive(OpenApi)]
#[openapi(
    info(title = "Cairn native API", description = "The system of record's own API: audit now; identity, projects, registry, deployments and monitoring as they land."),
    tags(
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "identity", description = "Users, service accounts and API tokens"),
        (name = "projects", description = "Projects and their members"),
        (name = "serving", description = "Deployments of registered model versions"),
        (name = "monitoring", description = "Drift and quality monitors of deployments, checks, reports, ground truth and alerts"),
        (name = "compute", description = "Project files, environments, hardware tiers, quotas, jobs, schedules and secrets"),
        (name = "datasets", description = "Versioned datasets with file-level deduplication, table metadata and lineage"),
        (name = "workspaces", description = "JupyterLab workspaces on project snapshots, served through Cairn's proxy at /workspaces/{id}/"),
        (name = "governance", description = "Model cards, promotion policies, approval requests, the deploy gate, history and compliance bundles"),
        (name = "comments", description = "Comments on projects, runs and model versions, with @mentions"),
        (name = "search", description = "Global search across what the caller may read"),
    ),
)]
struct ApiDoc;

/// What each native operation needs; every path of the OpenAPI document must appear here
/// (the permission-matrix test fails on a path without a rule).
pub fn needs_for(method: &str, path: &str) -> Option<Needs> {
    match (method, path) {
        ("GET", "/api/v1/audit-events" | "/api/v1/audit-chain") => Some(Needs::Admin),
        ("GET", "/api/v1/search") => Some(Needs::Authenticated),
        ("GET", "/api/v1/openapi.json") => Some(Needs::Authenticated),
        ("GET", "/api/v1/me") => Some(Needs::Authenticated),
        ("GET" | "POST", "/api/v1/users") => Some(Needs::Admin),
        ("POST", "/api/v1/users/{username}/deactivate") => Some(Needs::Admin),
        ("PUT", "/api/v1/users/{username}/site-role") => Some(Needs::Admin),
        ("GET" | "POST", "/api/v1/tokens") | ("DELETE", "/api/v1/tokens/{id}") => {
            Some(Needs::Authenticated)
        }
        ("GET", "/api/v1/projects") => Some(Needs::Authenticated),
        ("POST", "/api/v1/projects") => Some(Needs::Admin),
        ("GET", "/api/v1/projects/{project}/members") => Some(Needs::Read),
        ("PUT" | "DELETE", "/api/v1/projects/{project}/members/{username}") => Some(Needs::Manage),
        ("GET" | "POST", "/api/v1/teams")
        | ("PUT" | "DELETE", "/api/v1/teams/{team}/members/{username}") => Some(Needs::Admin),
        ("GET", "/api/v1/projects/{project}/comments") => Some(Needs::Read),
        ("POST", "/api/v1/projects/{project}/comments")
        | ("DELETE", "/api/v1/projects/{project}/comments/{id}") => Some(Needs::Write),
        ("PUT" | "DELETE", "/api/v1/projects/{project}/teams/{team}") => Some(Needs::Manage),
        ("GET", "/api/v1/models/{name}/versions/{version}/card")
        | ("GET", "/api/v1/models/{name}/versions/{version}/card/revisions")
        | ("GET", "/api/v1/models/{name}/versions/{version}/deploy-gate")
        | ("GET", "/api/v1/models/{name}/versions/{version}/bundle")
        | ("GET", "/api/v1/models/{name}/history")
        | ("GET", "/api/v1/approvals")
        | ("GET", "/api/v1/approvals/{id}")
        | ("GET", "/api/v1/policies")
        | ("GET", "/api/v1/policies/{id}") => Some(Needs::Read),
        ("PUT", "/api/v1/models/{name}/versions/{version}/card")
        | ("POST", "/api/v1/models/{name}/versions/{version}/promote")
        | ("POST", "/api/v1/approvals/{id}/withdraw") => Some(Needs::Write),
        ("POST", "/api/v1/policies") | ("PUT" | "DELETE", "/api/v1/policies/{id}") => {
            Some(Needs::Manage)
        }
        ("GET", "/api/v1/deployments")
        | ("GET", "/api/v1/deployments/{deployment}")
        | ("GET", "/api/v1/deployments/{deployment}/history") => Some(Needs::Read),
        ("POST", "/api/v1/deployments")
        | ("PUT" | "DELETE", "/api/v1/deployments/{deployment}")
        | ("POST", "/api/v1/deployments/{deployment}/rollback") => Some(Needs::Write),
        ("GET", "/api/v1/deployments/{deployment}/monitor")
        | ("GET", "/api/v1/deployments/{deployment}/checks")
        | ("GET", "/api/v1/deployments/{deployment}/checks/{id}")
        | ("GET", "/api/v1/deployments/{deployment}/checks/{id}/report")
        | ("GET", "/api/v1/deployments/{deployment}/alerts")
        | ("GET", "/api/v1/alerts") => Some(Needs::Read),
        ("PUT" | "DELETE", "/api/v1/deployments/{deployment}/monitor")
        | ("POST", "/api/v1/deployments/{deployment}/checks")
        | ("POST", "/api/v1/deployments/{deployment}/ground-truth") => Some(Needs::Write),
        ("GET", "/api/v1/environments" | "/api/v1/environments/{name}")
        | ("GET", "/api/v1/tiers" | "/api/v1/tiers/{name}" | "/api/v1/quotas")
        | ("GET" | "PUT" | "DELETE", "/api/v1/me/secrets" | "/api/v1/me/secrets/{name}") => {
            Some(Needs::Authenticated)
        }
        ("POST", "/api/v1/environments")
        | ("POST", "/api/v1/environments/{name}/revisions" | "/api/v1/environments/{name}/state")
        | ("PUT", "/api/v1/tiers/{name}" | "/api/v1/quotas") => Some(Needs::Admin),
        ("GET", "/api/v1/projects/{project}/files/blobs/{sha256}")
        | ("GET", "/api/v1/projects/{project}/snapshots")
        | ("GET", "/api/v1/projects/{project}/snapshots/{digest}")
        | ("GET", "/api/v1/projects/{project}/jobs")
        | ("GET", "/api/v1/projects/{project}/jobs/{id}")
        | ("GET", "/api/v1/projects/{project}/jobs/{id}/logs")
        | ("GET", "/api/v1/projects/{project}/schedules")
        | ("GET", "/api/v1/projects/{project}/schedules/{name}")
        | ("GET", "/api/v1/projects/{project}/secrets")
        | ("GET", "/api/v1/projects/{project}/runs/{run_id}/lineage")
        | ("GET", "/api/v1/projects/{project}/datasets")
        | ("GET", "/api/v1/projects/{project}/datasets/{name}")
        | ("GET", "/api/v1/projects/{project}/datasets/{name}/versions/{version}") => {
            Some(Needs::Read)
        }
        ("PUT" | "DELETE", "/api/v1/projects/{project}/datasets/{name}")
        | ("POST", "/api/v1/projects/{project}/datasets/{name}/versions")
        | ("DELETE", "/api/v1/projects/{project}/datasets/{name}/versions/{version}") => {
            Some(Needs::Write)
        }
        ("PUT", "/api/v1/projects/{project}/files/blobs/{sha256}")
        | ("POST", "/api/v1/projects/{project}/files/missing")
        | ("POST", "/api/v1/projects/{project}/snapshots")
        | ("POST", "/api/v1/projects/{project}/jobs")
        | ("POST", "/api/v1/projects/{project}/jobs/{id}/cancel")
        | ("POST", "/api/v1/projects/{project}/runs/{run_id}/reproduce")
        | ("POST", "/api/v1/projects/{project}/schedules")
        | ("PUT" | "DELETE", "/api/v1/projects/{project}/schedules/{name}") => Some(Needs::Write),
        ("PUT" | "DELETE", "/api/v1/projects/{project}/secrets/{name}") => Some(Needs::Manage),
        ("GET", "/api/v1/projects/{project}/workspaces")
        | ("GET", "/api/v1/projects/{project}/workspaces/{id}") => Some(Needs::Read),
        ("POST", "/api/v1/projects/{project}/workspaces")
        | ("POST", "/api/v1/projects/{project}/workspaces/{id}/sync")
        | ("POST", "/api/v1/projects/{project}/workspaces/{id}/stop")
        | ("POST", "/api/v1/projects/{project}/workspaces/{id}/start") => Some(Needs::Write),
        ("POST", "/api/v1/approvals/{id}/approve" | "/api/v1/approvals/{id}/reject") => {
            Some(Needs::Reviewer)
        }
        _ => None,
    }
}

/// The native routes with their declarations (taken from the OpenAPI document the router
/// produces), mounted at `/api/v1`.
pub fn routes() -> (Router<Services>, Vec<RouteSpec>) {
    let (routes, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(audit::search))
        .routes(routes!(audit::verify))
        .routes(routes!(search::search))
        .routes(routes!(comments::list, comments::add))
        .routes(routes!(comments::delete))
        .routes(routes!(identity::me))
        .routes(routes!(identity::list_users, identity::create_user))
        .routes(routes!(identity::deactivate_user))
        .routes(routes!(identity::set_site_role))
        .routes(routes!(identity::list_tokens, identity::create_token))
        .routes(routes!(identity::revoke_token))
        .routes(routes!(identity::list_projects, identity::create_project))
        .routes(routes!(identity::list_members))
        .routes(routes!(identity::set_member, identity::remove_member))
        .routes(routes!(identity::list_teams, identity::create_team))
        .routes(routes!(identity::add_team_member, identity::remove_team_member))
        .routes(routes!(identity::set_project_team, identity::remove_project_team))
        .routes(routes!(deployments::list, deployments::create))
        .routes(routes!(deployments::get, deployments::update, deployments::delete))
        .routes(routes!(deployments::rollback))
        .routes(routes!(deployments::history))
        .routes(routes!(
            monitoring::get_monitor,
            monitoring::set_monitor,
            monitoring::delete_monitor
        ))
        .routes(routes!(monitoring::run_check, monitoring::list_checks))
        .routes(routes!(monitoring::get_check))
        .routes(routes!(monitoring::report))
        .routes(routes!(monitoring::ground_truth))
        .routes(routes!(monitoring::deployment_alerts))
        .routes(routes!(monitoring::alerts))
        .routes(routes!(compute::list_environments, compute::create_environment))
        .routes(routes!(compute::get_environment))
        .routes(routes!(compute::revise_environment))
        .routes(routes!(compute::set_revision_state))
        .routes(routes!(compute::list_tiers))
        .routes(routes!(compute::get_tier, compute::put_tier))
        .routes(routes!(compute::list_quotas, compute::set_quota))
        .routes(routes!(compute::missing_blobs))
        .routes(routes!(compute::put_blob, compute::get_blob))
        .routes(routes!(compute::list_snapshots, compute::create_snapshot))
        .routes(routes!(compute::get_snapshot))
        .routes(routes!(jobs::list, jobs::submit))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::logs))
        .routes(routes!(jobs::reproduce))
        .routes(routes!(jobs::lineage))
        .routes(routes!(datasets::list))
        .routes(routes!(datasets::get, datasets::configure, datasets::delete))
        .routes(routes!(datasets::push))
        .routes(routes!(datasets::version, datasets::delete_version))
        .routes(routes!(jobs::list_schedules, jobs::create_schedule))
        .routes(routes!(jobs::get_schedule, jobs::update_schedule, jobs::delete_schedule))
        .routes(routes!(jobs::list_project_secrets))
        .routes(routes!(jobs::put_project_secret, jobs::delete_project_secret))
        .routes(routes!(jobs::list_my_secrets))
        .routes(routes!(jobs::put_my_secret, jobs::delete_my_secret))
        .routes(routes!(workspaces::list, workspaces::start))
        .routes(routes!(workspaces::get))
        .routes(routes!(workspaces::sync))
        .routes(routes!(workspaces::stop))
        .routes(routes!(workspaces::restart))
        .routes(routes!(governance::get_card, governance::save_card))
        .routes(routes!(governance::card_revisions))
        .routes(routes!(governance::promote))
        .routes(routes!(governance::deploy_gate))
        .routes(routes!(governance::bundle))
        .routes(routes!(governance::history))
        .routes(routes!(governance::list_approvals))
        .routes(routes!(governance::get_approval))
        .routes(routes!(governance::approve))
        .routes(routes!(governance::reject))
        .routes(routes!(governance::withdraw))
        .routes(routes!(governance::list_policies, governance::create_policy))
        .routes(routes!(
            governance::get_policy,
            governance::update_policy,
            governance::delete_policy
        ))
        .split_for_parts();
    document.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    document::add_shared_answers(&mut document);
    let document = std::sync::Arc::new(document);
    let mut specs = vec![RouteSpec {
        method: "GET",
        path: "/api/v1/openapi.json".into(),
        needs: Needs::Authenticated,
    }];
    for (path, item) in &document.paths.paths {
        let full = format!("/api/v1{path}");
        let methods: [(&'static str, bool); 5] = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                let needs = needs_for(method, &full).unwrap_or(Needs::Admin);
                specs.push(RouteSpec { method, path: full.clone(), needs });
            }
        }
    }
    let openapi = Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    );
    (Router::new().nest("/api/v1", routes.merge(openapi)), specs)
}
