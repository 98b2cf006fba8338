//! The workspace proxy: every request under `/workspaces/<id>/` (and `/p/<project>/workspaces/…`)
//! goes, after Cairn's authentication and the workspace's access rule, to that workspace's
//! JupyterLab on loopback — HTTP streamed both ways, WebSocket upgrades (kernel channels,
//! terminals) spliced byte for byte after JupyterLab accepted them.
//!
//! A browser logged in to the web UI is authenticated by its session cookie here too. The
//! caller's Cairn credentials (the `Authorization` header, Cairn's own cookies) never reach
//! JupyterLab: the proxy replaces them with JupyterLab's own token (`Authorization: token …`),
//! and blanks that token out of the HTML pages JupyterLab renders with it, so no browser ever
//! holds it. Token-authenticated requests skip JupyterLab's XSRF and origin checks, so the
//! proxy makes them itself: a WebSocket upgrade or an unsafe method (anything but GET, HEAD,
//! OPTIONS) whose `Origin` is not this server's own (its `Host`, or `X-Forwarded-Host` behind a
//! reverse proxy), or that a browser marks `Sec-Fetch-Site: cross-site`/`same-site`, is refused
//! with 403 ([`crate::browser::same_origin`], shared with the web UI).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use cairn_domain::ErrorKind;
use cairn_service::workspaces::ProxyTarget;
use cairn_service::{ServiceError, Services};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::browser::same_origin;
use crate::context::Caller;
use crate::native::ApiError;
use crate::routes::{Needs, RouteSpec};

/// The largest HTML page the proxy reads whole to blank out the token.
const MAX_PAGE_BYTES: usize = 64 << 20;
/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Client headers JupyterLab would trust (it runs with `trust_xheaders`); only the proxy says
/// where a request came from.
const FORWARDING: [&str; 4] = ["x-forwarded-for", "x-real-ip", "x-scheme", "x-forwarded-proto"];

/// The pooled HTTP/1 client to JupyterLab servers on loopback.
#[derive(Clone)]
struct Upstream(Client<HttpConnector, Body>);

/// The proxy's routes (behind the authentication middleware).
pub fn router() -> Router<Services> {
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build_http();
    Router::new()
        .route("/workspaces/{id}", any(redirect_to_lab))
        .route("/workspaces/{id}/", any(proxy))
        .route("/workspaces/{id}/{*rest}", any(proxy))
        .layer(axum::Extension(Upstream(client)))
}

/// The proxy's declarations for the route table: write access to the workspace's project (and
/// being its owner unless it is shared, which the service decides per workspace).
pub fn route_specs() -> Vec<RouteSpec> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .map(|method| RouteSpec {
            method,
            path: "/workspaces/{id}/{*path}".to_string(),
            needs: Needs::Write,
        })
        .collect()
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    ApiError::from(ServiceError { kind, message: message.into() }).into_response()
}

/// The workspace id of a proxied path (`/workspaces/<id>/…`).
fn workspace_id(uri: &Uri) -> Option<i64> {
    let rest = uri.path().strip_prefix("/workspaces/")?;
    let id = rest.split('/').next()?;
    id.parse().ok().filter(|id: &i64| *id > 0)
}

async fn redirect_to_lab(request: Request) -> Response {
    match workspace_id(request.uri()) {
        Some(id) => Redirect::temporary(&format!("/workspaces/{id}/lab")).into_response(),
        None => error(ErrorKind::NotFound, "no such workspace"),
    }
}

async fn proxy(
    State(services): State<Services>,
    axum::Extension(upstream): axum::Extension<Upstream>,
    Caller(context): Caller,
    request: Request,
) -> Response {
    let Some(id) = workspace_id(request.uri()) else {
        return error(ErrorKind::NotFound, "no such workspace");
    };
    let upgrade = is_websocket_upgrade(request.headers());
    if let Err(message) = same_origin(request.method(), request.headers(), upgrade) {
        return error(
            ErrorKind::PermissionDenied,
            format!("{message}: open the workspace on this server's own address"),
        );
    }
    let target = match services.workspaces.proxy_target(&context, id).await {
        Ok(target) => target,
        Err(failure) => return ApiError::from(failure).into_response(),
    };
    target.touch();
    let outcome = if upgrade {
        websocket(&target, request).await
    } else {
        forward(&upstream, &target, request).await
    };
    outcome.unwrap_or_else(|message| {
        tracing::warn!(workspace.id = id, %message, "proxying to a workspace failed");
        error(ErrorKind::Unavailable, message)
    })
}

/// Whether the request asks to become a WebSocket.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|text| {
                text.split(',').any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// Copies the request's headers for JupyterLab: without hop-by-hop headers (unless
/// `keep_upgrade`), the caller's credentials or forwarding claims, with JupyterLab's token.
fn upstream_headers(headers: &HeaderMap, target: &ProxyTarget, keep_upgrade: bool) -> HeaderMap {
    let mut out = headers.clone();
    strip_hop_by_hop(&mut out, keep_upgrade);
    for name in FORWARDING {
        out.remove(name);
    }
    // Identity encoding, so HTML pages can be checked for the token.
    out.remove(header::ACCEPT_ENCODING);
    out.remove(header::AUTHORIZATION);
    if let Ok(value) = HeaderValue::from_str(target.authorization()) {
        out.insert(header::AUTHORIZATION, value);
    }
    strip_cairn_cookies(&mut out);
    out
}

/// Removes Cairn's own cookies (`cairn_…`: the UI session) and keeps JupyterLab's.
fn strip_cairn_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with("cairn_"))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(header::COOKIE, value);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(',').map(|part| part.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP.iter().map(|name| name.to_string()).chain(listed) {
        if keep_upgrade && (name == "upgrade" || name == "connection") {
            continue;
        }
        headers.remove(name.as_str());
    }
}

fn upstream_uri(target: &ProxyTarget, uri: &Uri) -> Result<Uri, String> {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    format!("http://{}{path}", target.address).parse().map_err(|_| "invalid path".to_string())
}

/// Forwards a plain HTTP request and streams the answer back (HTML pages are read whole and
/// the token blanked out).
async fn forward(
    upstream: &Upstream,
    target: &ProxyTarget,
    request: Request,
) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let mut outgoing = axum::http::Request::new(body);
    *outgoing.method_mut() = parts.method.clone();
    *outgoing.uri_mut() = upstream_uri(target, &parts.uri)?;
    *outgoing.headers_mut() = upstream_headers(&parts.headers, target, false);
    let answer = upstream
        .0
        .request(outgoing)
        .await
        .map_err(|failure| format!("the workspace's JupyterLab did not answer: {failure}"))?;
    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if !html {
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    if parts.headers.get(header::CONTENT_ENCODING).is_some_and(|value| value != "identity") {
        return Err("the workspace answered a compressed page the proxy cannot check".into());
    }
    let bytes = http_body_util::Limited::new(body, MAX_PAGE_BYTES)
        .collect()
        .await
        .map_err(|failure| format!("reading a workspace page failed: {failure}"))?
        .to_bytes();
    let bytes = target.scrub(&bytes).map_or(bytes, axum::body::Bytes::from);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Opens the WebSocket to JupyterLab; once it accepted (101), answers the client with its
/// handshake and splices the two upgraded connections. Anything else is returned as is.
/// The buffer of each direction of a spliced WebSocket.
const SPLICE_BUFFER: usize = 256 * 1024;

async fn websocket(target: &ProxyTarget, mut request: Request) -> Result<Response, String> {
    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str()).to_string();
    let mut outgoing = axum::http::Request::new(Body::empty());
    *outgoing.method_mut() = Method::GET;
    *outgoing.uri_mut() = path.parse().map_err(|_| "invalid path".to_string())?;
    *outgoing.headers_mut() = upstream_headers(&parts.headers, target, true);
    let stream = tokio::net::TcpStream::connect(target.address)
        .await
        .map_err(|failure| format!("the workspace's JupyterLab did not answer: {failure}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|failure| format!("connecting to the workspace's JupyterLab failed: {failure}"))?;
    tokio::spawn(async move {
        if let Err(failure) = connection.with_upgrades().await {
            tracing::debug!(%failure, "a workspace WebSocket connection ended with an error");
        }
    });
    let mut answer = sender
        .send_request(outgoing)
        .await
        .map_err(|failure| format!("the workspace's JupyterLab did not answer: {failure}"))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = answer.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let upstream_upgrade = hyper::upgrade::on(&mut answer);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = answer.headers().clone();
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok(pair) => pair,
            Err(failure) => {
                tracing::debug!(%failure, "a workspace WebSocket upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        // Kernel messages reach megabytes (plots, data frames): copy in large chunks, not the
        // default 8 KiB, which cost ~40% of throughput on 1 MiB messages here.
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            SPLICE_BUFFER,
            SPLICE_BUFFER,
        )
        .await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cairn_cookies_stay_behind() {
        let mut map =
            headers(&[("cookie", "_xsrf=abc; cairn_session=s"), ("cookie", "cairn_csrf=t")]);
        strip_cairn_cookies(&mut map);
        assert_eq!(map.get_all("cookie").iter().collect::<Vec<_>>(), ["_xsrf=abc"]);
        let mut only_ours = headers(&[("cookie", "cairn_session=s")]);
        strip_cairn_cookies(&mut only_ours);
        assert!(only_ours.get("cookie").is_none());
    }

    #[test]
    fn upgrades_and_ids_are_recognised() {
        let upgrade = headers(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")]);
        assert!(is_websocket_upgrade(&upgrade));
        assert!(!is_websocket_upgrade(&headers(&[("connection", "keep-alive")])));
        assert_eq!(workspace_id(&"/workspaces/12/lab?x=1".parse().unwrap()), Some(12));
        assert_eq!(workspace_id(&"/workspaces/abc/".parse().unwrap()), None);
        assert_eq!(workspace_id(&"/workspaces/-3/".parse().unwrap()), None);
    }

    #[test]
    fn hop_by_hop_and_listed_headers_are_dropped() {
        let mut map = headers(&[
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(map.len(), 1);
        assert!(map.contains_key("accept"));
    }
}
