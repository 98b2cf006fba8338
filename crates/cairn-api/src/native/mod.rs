//! The native API under `/api/v1`, described by the OpenAPI document served at
//! `/api/v1/openapi.json`. Handlers are thin: extract, call one service method, answer.

mod audit;
mod error;
mod extract;

use axum::Json;
use axum::Router;
use axum::routing::get;
use cairn_service::Services;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};

#[derive(OpenApi)]
#[openapi(
    info(title = "Cairn native API", description = "The system of record's own API: audit now; identity, projects, registry, deployments and monitoring as they land."),
    tags((name = "audit", description = "The tamper-evident audit log")),
)]
struct ApiDoc;

/// The native routes and their OpenAPI document, mounted at `/api/v1`.
pub fn router() -> Router<Services> {
    let (routes, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(audit::search))
        .split_for_parts();
    document.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    let document = std::sync::Arc::new(document);
    let openapi = Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    );
    Router::new().nest("/api/v1", routes.merge(openapi))
}
