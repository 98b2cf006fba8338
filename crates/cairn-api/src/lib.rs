//! Cairn's HTTP surfaces over the service layer: the MLflow wire adapter (`mlflow`), the
//! operator endpoints (`ops`), the mounting of the web UI's pages beside them ([`Pages`], built
//! by `cairn-ui`), and the request-id and tracing layers shared by all of them.

mod auth;
pub mod browser;
pub mod context;
mod inference;
mod metrics;
pub mod mlflow;
pub mod native;
mod routes;
mod workspace_proxy;

pub use routes::{Needs, RouteSpec};
mod ops;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use cairn_service::Services;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The header carrying each request's id, set when the client did not send one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": "no such endpoint",
        })),
    )
}

/// Every authenticated route with what it needs, taken from the same tables the router is
/// built from.
pub fn route_table() -> Vec<RouteSpec> {
    let (_, mut specs) = mlflow::routes().into_parts();
    specs.extend(native::routes().1);
    specs.extend(inference::routes().into_parts().1);
    specs.extend(workspace_proxy::route_specs());
    specs
}

/// Pages served beside the APIs (the web UI), mounted by [`router_with_pages`].
pub struct Pages {
    /// The pages' routes, with their own authentication (they never see the API middleware).
    pub routes: Router<Services>,
    /// What answers a path no route matches when the client asks for HTML (a browser); other
    /// clients get the MLflow-style JSON 404.
    pub not_found: Router<Services>,
}

/// Whether the client prefers an HTML answer (a browser navigating).
fn wants_html(request: &Request<axum::body::Body>) -> bool {
    request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Builds the whole HTTP application (the APIs only).
pub fn router(services: Services) -> Router {
    router_with_pages(services, None)
}

/// Builds the whole HTTP application with `pages` mounted beside the APIs, inside the same
/// request-id and tracing layers.
pub fn router_with_pages(services: Services, pages: Option<Pages>) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", request.id = %id, http.method = %request.method(), http.path = %request.uri().path())
    });
    let (mlflow_routes, _) = mlflow::routes().into_parts();
    let (native_routes, _) = native::routes();
    let (inference_routes, _) = inference::routes().into_parts();
    let authenticated = Router::new()
        .merge(mlflow_routes)
        .merge(native_routes)
        .merge(inference_routes)
        .merge(workspace_proxy::router())
        .layer(axum::middleware::from_fn_with_state(services.clone(), auth::authenticate))
        .layer(axum::Extension(metrics::Metrics::new()));
    let mut routed = Router::new().merge(ops::router()).merge(authenticated);
    let mut page_not_found = None;
    if let Some(pages) = pages {
        routed = routed.merge(pages.routes);
        page_not_found = Some(pages.not_found.with_state(services.clone()));
    }
    let fallback = move |request: Request<axum::body::Body>| {
        let page_not_found = page_not_found.clone();
        async move {
            match page_not_found {
                Some(pages) if wants_html(&request) => {
                    tower::ServiceExt::oneshot(pages, request).await.into_response()
                }
                _ => not_found().await.into_response(),
            }
        }
    };
    let routed = routed
        .fallback(fallback)
        .with_state(services)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // The project prefix is stripped before routing, so one route table serves both forms.
    Router::new().fallback_service(tower::ServiceExt::map_request(routed, context::scope_project))
}
