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
//! | `/ui/static/{file}` | embedded CSS, JS and icon |
//!
//! Sessions, CSRF and error pages: [`session`]. Pages call `cairn-service` only.

mod assets;
mod charts;
mod compare;
mod error;
mod extract;
mod home;
mod layout;
mod login;
mod projects;
mod run;
mod runs;
pub mod session;

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
