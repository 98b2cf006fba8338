//! Route tables that declare, beside every route, what it needs from the caller. The router is
//! built from the table, and the table is public, so the permission-matrix test enumerates every
//! registered route: a route cannot be added without saying what it needs.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use cairn_service::Services;

/// What a route needs from an authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any authenticated caller.
    Authenticated,
    /// Read access to the project the request touches.
    Read,
    /// Write access to the project the request touches.
    Write,
    /// Owner access to the project the request touches (members, settings).
    Manage,
    /// A site admin.
    Admin,
    /// A governance reviewer (the `governance-reviewer` site role; site admins are not
    /// reviewers, so approving stays separate from administering).
    Reviewer,
}

/// One registered route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: &'static str,
    /// The full path pattern, e.g. `/api/2.0/mlflow/runs/get` or `/api/2.0/mlflow/logged-models/{model_id}`.
    pub path: String,
    /// What the caller needs.
    pub needs: Needs,
}

/// A router under construction together with its declarations.
pub struct RouteTable {
    router: Router<Services>,
    specs: Vec<RouteSpec>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self { router: Router::new(), specs: Vec::new() }
    }

    /// Registers `handler` for `method` on `path`.
    pub fn add<H, T>(
        mut self,
        method: &'static str,
        path: &'static str,
        needs: Needs,
        handler: H,
    ) -> Self
    where
        H: Handler<T, Services>,
        T: 'static,
    {
        let method_router: MethodRouter<Services> = match method {
            "GET" => get(handler),
            "POST" => post(handler),
            "PUT" => put(handler),
            "PATCH" => patch(handler),
            "DELETE" => delete(handler),
            other => panic!("unsupported method {other} in the route table"),
        };
        self.router = self.router.route(path, method_router);
        self.specs.push(RouteSpec { method, path: path.to_string(), needs });
        self
    }

    /// Mounts another table under `prefix`.
    pub fn nest(mut self, prefix: &str, other: RouteTable) -> Self {
        self.specs.extend(
            other
                .specs
                .into_iter()
                .map(|spec| RouteSpec { path: format!("{prefix}{}", spec.path), ..spec }),
        );
        self.router = self.router.nest(prefix, other.router);
        self
    }

    /// Applies a layer to every route so far.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    /// Splits into the router and the declarations.
    pub fn into_parts(self) -> (Router<Services>, Vec<RouteSpec>) {
        (self.router, self.specs)
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}
