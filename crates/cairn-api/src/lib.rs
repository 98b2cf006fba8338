//! Cairn's HTTP surfaces over the service layer: the MLflow wire adapter (`mlflow`), the
//! operator endpoints (`ops`), and the request-id and tracing layers shared by all of them.

mod auth;
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

/// Builds the whole HTTP application.
pub fn router(services: Services) -> Router {
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
    let routed = Router::new()
        .merge(ops::router())
        .merge(authenticated)
        .fallback(not_found)
        .with_state(services)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // The project prefix is stripped before routing, so one route table serves both forms.
    Router::new().fallback_service(tower::ServiceExt::map_request(routed, context::scope_project))
}
