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
//! | `/projects/{project}/runs/{run_id}` | a run (POST `…/rename`, `…/tags`) |
//! | `/projects/{project}/runs/{run_id}/artifacts/{path}` | an artifact download |
//! | `/projects/{project}/compare?runs=…` | 2–10 runs side by side |
//! | `/projects/{project}/jobs` | jobs with state and run |
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
mod assets;
mod audit;
mod charts;
mod comments;
mod compare;
mod error;
mod extract;
mod home;
mod layout;
mod login;
mod projects;
mod registry;
mod run;
mod runs;
mod search;
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
        .route("/projects/{project}/compare", get(compare::show))
        .route("/projects/{project}/jobs", get(work::jobs))
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
