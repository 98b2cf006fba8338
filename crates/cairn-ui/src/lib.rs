//! Cairn's web UI: server-rendered pages (askama templates compiled into the binary, static
//! files embedded) over the service layer, mounted beside the APIs by `cairn-api`.
//!
//! The URL scheme (nothing here collides with `/api`, `/ajax-api`, `/p`, `/workspaces`,
//! `/serve`, `/v2`, `/get-artifact` or the operator endpoints):
//!
//! | path | page |
//! |---|---|
//! | `/` | home: my projects, recent runs, pending approvals, open alerts |
//! | `/login`, `/logout` | the session (POST `/logout`) |
//! | `/projects` | projects (POST: create) |
//! | `/projects/{project}` | a project's experiments (POST `…/experiments`: create one) |
//! | `/projects/{project}/members` | members and roles (POST: set, `…/remove`: remove) |
//! | `/projects/{project}/experiments/{id}` | the runs table: columns, filter, sort, pages |
//! | `/projects/{project}/runs/{run_id}` | a run with its lineage (POST `…/rename`, `…/tags`) |
//! | `/projects/{project}/runs/{run_id}/artifacts/{path}` | an artifact download |
//! | `/projects/{project}/runs/{run_id}/preview/{path}` | an artifact's preview (`…/raw/{path}`: an image) |
//! | `/projects/{project}/compare?runs=…` | 2–10 runs side by side |
//! | `/projects/{project}/jobs` | jobs with state and run |
//! | `/projects/{project}/jobs/{id}` | a job and its log (`…/log?offset=`: new bytes; POST `…/cancel`) |
//! | `/projects/{project}/schedules…` | schedules; one with its jobs (POST `…/pause`, `…/resume`, `…/delete`) |
//! | `/projects/{project}/datasets…` | datasets; one with its versions; a version's files and tables |
//! | `/projects/{project}/deployments…` | deployments; one with traffic and revisions (POST `…/rollback`) |
//! | `/projects/{project}/deployments/{name}/monitor…` | its monitor, checks and alerts (POST `…/check`); `…/checks/{id}` |
//! | `/projects/{project}/policies…` | approval policies (POST: create; `…/{id}`: new rules; `…/{id}/delete`) |
//! | `/projects/{project}/secrets` | secret names (POST: set; `…/delete`) |
//! | `/secrets` | my own secrets |
//! | `/environments`, `/environments/{name}` | environments and revisions (POST `…/revisions/{n}/state`) |
//! | `/tiers` | hardware tiers and quotas (POST: a tier; `/tiers/quotas`: a quota) |
//! | `/projects/{project}/workspaces…` | POST: start; `…/{id}/stop`, `…/sync`, `…/start` |
//! | `/projects/{project}/comments` | POST: comment; `…/{id}/delete` |
//! | `/models` | registered models (search by name, per project or across projects) |
//! | `/projects/{project}/models/{name}` | a model: versions, aliases, tags, history |
//! | `/projects/{project}/models/{name}/versions/{v}` | a version: card, requests, comments (POST `…/promote`; `…/bundle` download) |
//! | `/approvals`, `/approvals/{id}` | approval requests (POST `…/approve`, `…/reject`, `…/withdraw`) |
//! | `/audit` | the audit log and chain verification (site admins) |
//! | `/search?q=` | global search |
//! | `/admin/users`, `/admin/teams` | users and teams (site admins) |
//! | `/tokens` | my API tokens (POST: create; `…/{id}/revoke`) |
//! | `/ui/static/{file}` | embedded CSS, JS and icon |
//!
//! Sessions, CSRF and error pages: [`session`]. Pages call `cairn-service` only.

mod admin;
mod approvals;
mod artifacts;
mod assets;
mod audit;
mod catalog;
mod charts;
mod comments;
mod compare;
#[cfg(test)]
mod contrast;
mod datasets;
mod deployments;
mod error;
mod extract;
mod home;
mod job;
mod layout;
mod login;
mod markdown;
mod monitors;
mod policies;
mod projects;
mod registry;
mod run;
mod runs;
mod schedules;
mod search;
mod secrets;
pub mod session;
mod tokens;
mod work;

use axum::Router;
use axum::routing::{get, post};
use cairn_service::Services;

pub use error::PageError;

/// Every page, with the session middleware, ready to mount beside the APIs.
pub fn pages(services: Services) -> cairn_api::Pages {
    let visit = axum::middleware::from_fn_with_state(services, session::visit);
    let routes = Router::new()
        .route("/", get(home::show))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{project}", get(projects::show))
        .route("/projects/{project}/experiments", post(projects::create_experiment))
        .route("/projects/{project}/experiments/{experiment_id}", get(runs::table))
        .route("/projects/{project}/members", get(projects::members).post(projects::set_member))
        .route("/projects/{project}/members/remove", post(projects::remove_member))
        .route("/projects/{project}/runs/{run_id}", get(run::show))
        .route("/projects/{project}/runs/{run_id}/rename", post(run::rename))
        .route("/projects/{project}/runs/{run_id}/tags", post(run::set_tag))
        .route("/projects/{project}/runs/{run_id}/artifacts/{*path}", get(run::artifact))
        .route("/projects/{project}/runs/{run_id}/preview/{*path}", get(artifacts::preview))
        .route("/projects/{project}/runs/{run_id}/raw/{*path}", get(artifacts::raw))
        .route("/projects/{project}/compare", get(compare::show))
        .route("/projects/{project}/jobs", get(work::jobs))
        .route("/projects/{project}/jobs/{id}", get(job::show))
        .route("/projects/{project}/jobs/{id}/log", get(job::log))
        .route("/projects/{project}/jobs/{id}/cancel", post(job::cancel))
        .route("/projects/{project}/schedules", get(schedules::list))
        .route("/projects/{project}/schedules/{name}", get(schedules::show))
        .route("/projects/{project}/schedules/{name}/pause", post(schedules::pause))
        .route("/projects/{project}/schedules/{name}/resume", post(schedules::resume))
        .route("/projects/{project}/schedules/{name}/delete", post(schedules::delete))
        .route("/projects/{project}/datasets", get(datasets::list))
        .route("/projects/{project}/datasets/{name}", get(datasets::show))
        .route("/projects/{project}/datasets/{name}/versions/{version}", get(datasets::version))
        .route("/projects/{project}/deployments", get(deployments::list))
        .route("/projects/{project}/deployments/{name}", get(deployments::show))
        .route("/projects/{project}/deployments/{name}/rollback", post(deployments::rollback))
        .route("/projects/{project}/deployments/{name}/monitor", get(monitors::show))
        .route("/projects/{project}/deployments/{name}/monitor/check", post(monitors::run_now))
        .route("/projects/{project}/deployments/{name}/monitor/checks/{id}", get(monitors::check))
        .route("/projects/{project}/policies", get(policies::list).post(policies::create))
        .route("/projects/{project}/policies/{id}", get(policies::show).post(policies::update))
        .route("/projects/{project}/policies/{id}/delete", post(policies::delete))
        .route("/projects/{project}/secrets", get(secrets::project).post(secrets::set_project))
        .route("/projects/{project}/secrets/delete", post(secrets::delete_project))
        .route("/secrets", get(secrets::mine).post(secrets::set_mine))
        .route("/secrets/delete", post(secrets::delete_mine))
        .route("/environments", get(catalog::environments))
        .route("/environments/{name}", get(catalog::environment))
        .route("/environments/{name}/revisions/{revision}/state", post(catalog::set_state))
        .route("/tiers", get(catalog::tiers).post(catalog::put_tier))
        .route("/tiers/quotas", post(catalog::set_quota))
        .route("/projects/{project}/workspaces", post(work::start))
        .route("/projects/{project}/workspaces/{id}/stop", post(work::stop))
        .route("/projects/{project}/workspaces/{id}/sync", post(work::sync))
        .route("/projects/{project}/workspaces/{id}/start", post(work::restart))
        .route("/projects/{project}/comments", post(comments::add))
        .route("/projects/{project}/comments/{id}/delete", post(comments::delete))
        .route("/models", get(registry::list))
        .route("/projects/{project}/models/{name}", get(registry::model))
        .route("/projects/{project}/models/{name}/versions/{version}", get(registry::version))
        .route("/projects/{project}/models/{name}/versions/{version}/bundle", get(registry::bundle))
        .route(
            "/projects/{project}/models/{name}/versions/{version}/promote",
            post(registry::promote),
        )
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/approvals/{id}/withdraw", post(approvals::withdraw))
        .route("/audit", get(audit::show))
        .route("/search", get(search::show))
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{username}/role", post(admin::set_role))
        .route("/admin/users/{username}/deactivate", post(admin::deactivate))
        .route("/admin/users/{username}/activate", post(admin::activate))
        .route("/admin/teams", get(admin::teams).post(admin::create_team))
        .route("/admin/teams/{team}/members", post(admin::add_member))
        .route("/admin/teams/{team}/members/remove", post(admin::remove_member))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .layer(visit.clone())
        // Static files need no session.
        .route("/ui/static/{name}", get(assets::serve));
    let not_found = Router::new().fallback(not_found).layer(visit);
    cairn_api::Pages { routes, not_found }
}

/// The page of a path nothing matches (for browsers; other clients get the API's JSON 404).
async fn not_found() -> PageError {
    PageError::not_found("there is no page at this address")
}
