//! Who is visiting, decided once per page request by [`visit`], the middleware every page runs
//! behind:
//!
//! - the `cairn_session` cookie names a live session ([`cairn_service::SessionService`]); without
//!   one the visitor is anonymous, which pages accept only while the server runs without
//!   authentication (otherwise a page redirects to `/login`);
//! - every unsafe request (anything but GET, HEAD, OPTIONS) must come from this server's own
//!   origin ([`cairn_api::browser::same_origin`]) and carry the form field `csrf` equal to the
//!   session's CSRF token, or, before login and while authentication is off, to the
//!   `cairn_csrf` cookie (a double-submit token set on the first page view);
//! - a handler's [`PageError`] is rendered here as the error page in the layout, internal
//!   failures logged with the request id;
//! - every page gets `Cache-Control: no-store` and a strict content security policy.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cairn_api::REQUEST_ID_HEADER;
use cairn_api::browser::{SESSION_COOKIE, cookie, same_origin};
use cairn_domain::audit::RequestContext;
use cairn_service::{Services, random_token};

use crate::error::PageError;
use crate::layout::{ErrorPage, Layout, render_with};

/// The double-submit CSRF cookie used before login and while authentication is off.
pub const CSRF_COOKIE: &str = "cairn_csrf";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body a page accepts.
const MAX_FORM_BYTES: usize = 256 * 1024;
/// Paths a visitor without a session may open while authentication is required.
const PUBLIC_PATHS: &[&str] = &["/login"];
/// The content security policy of every page: nothing but this server's own files, no inline
/// script, no framing, forms posted only here.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The visitor of a page.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// Who acts (the session's user, or anonymous) and the request id.
    pub context: RequestContext,
    /// The token forms carry.
    pub csrf: String,
    /// Whether the server requires authentication.
    pub auth_required: bool,
    /// Whether the browser reached the server over https (cookies get `Secure`).
    pub secure: bool,
    /// The session cookie's secret, when there is a live session.
    pub session_secret: Option<String>,
    /// Whether [`CSRF_COOKIE`] must be set on the response (a new token).
    new_csrf_cookie: bool,
}

impl Visitor {
    /// Whether a user is signed in.
    pub fn signed_in(&self) -> bool {
        self.session_secret.is_some()
    }

    /// The visitor's context scoped to `project` (the service resolves entities inside it).
    pub fn in_project(&self, project: &str) -> RequestContext {
        let mut context = self.context.clone();
        context.project = Some(project.to_string());
        context
    }

    /// A `Set-Cookie` value with the site's flags; `max_age` zero deletes the cookie.
    pub fn cookie(&self, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Max-Age={max_age_seconds}; Path=/; HttpOnly; SameSite=Lax{secure}"
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .ok_or_else(|| PageError::internal("a page was served without the session middleware"))
    }
}

/// Whether the browser's connection is https: the request's scheme, a reverse proxy's
/// `X-Forwarded-Proto`, or a configured public URL.
fn is_secure(services: &Services, parts: &Parts) -> bool {
    let forwarded = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim() == "https"));
    forwarded
        || parts.uri.scheme_str() == Some("https")
        || services.jobs.public_url().is_some_and(|url| url.starts_with("https://"))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).map(str::to_string)
}

/// Compares two tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    if given.len() != expected.len() || expected.is_empty() {
        return false;
    }
    given.bytes().zip(expected.bytes()).fold(0_u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The middleware of every page (see the module's comment).
pub async fn visit(State(services): State<Services>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let request_id = request_id(&parts.headers);
    let session = match cookie(&parts.headers, SESSION_COOKIE) {
        Some(secret) => match services.sessions.authenticate(secret).await {
            Ok(session) => session.map(|session| (secret.to_string(), session)),
            Err(error) => {
                let visitor = anonymous(&services, &parts, request_id);
                return error_page(&visitor, PageError::from(error));
            }
        },
        None => None,
    };
    let visitor = match session {
        Some((secret, session)) => Visitor {
            context: RequestContext::user(session.principal, request_id),
            csrf: session.csrf_token,
            auth_required: services.auth_required,
            secure: is_secure(&services, &parts),
            session_secret: Some(secret),
            new_csrf_cookie: false,
        },
        None => anonymous(&services, &parts, request_id),
    };
    let path = parts.uri.path().to_string();
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if visitor.auth_required && !visitor.signed_in() && !PUBLIC_PATHS.contains(&path.as_str()) {
        if unsafe_method {
            let refusal = PageError::new(StatusCode::UNAUTHORIZED, "log in first");
            return error_page(&visitor, refusal);
        }
        let next_path = parts.uri.path_and_query().map_or("/", |value| value.as_str());
        let target = format!("/login?next={}", crate::layout::encode(next_path));
        return Redirect::to(&target).into_response();
    }
    let body = if unsafe_method {
        if let Err(message) = same_origin(&parts.method, &parts.headers, false) {
            return error_page(&visitor, PageError::forbidden(message));
        }
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => return error_page(&visitor, PageError::bad_request("the form is too large")),
        };
        let given = form_urlencoded::parse(&bytes)
            .find(|(key, _)| key == CSRF_FIELD)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if visitor.new_csrf_cookie || !same_token(&given, &visitor.csrf) {
            let refusal = PageError::forbidden(
                "the form's security token is missing or out of date: reload the page and submit it again",
            );
            return error_page(&visitor, refusal);
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(visitor.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(error) = response.extensions_mut().remove::<PageError>() {
        response = error_page(&visitor, error);
    }
    if visitor.new_csrf_cookie {
        let value = visitor.cookie(CSRF_COOKIE, &visitor.csrf, 12 * 3600);
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    protect(response.headers_mut());
    response
}

/// A visitor without a session: the pre-session CSRF token comes from its cookie, or is new.
fn anonymous(services: &Services, parts: &Parts, request_id: Option<String>) -> Visitor {
    let existing = cookie(&parts.headers, CSRF_COOKIE)
        .filter(|token| token.len() >= 32 && token.len() <= 64)
        .map(str::to_string);
    let new_csrf_cookie = existing.is_none();
    Visitor {
        context: RequestContext::anonymous(request_id),
        csrf: existing.unwrap_or_else(random_token),
        auth_required: services.auth_required,
        secure: is_secure(services, parts),
        session_secret: None,
        new_csrf_cookie,
    }
}

/// Security headers of every page.
fn protect(headers: &mut HeaderMap) {
    // A handler may set a stricter policy of its own (an image preview adds `sandbox`).
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

/// Renders `error` as the error page for `visitor`, logging internal failures.
pub fn error_page(visitor: &Visitor, error: PageError) -> Response {
    let request_id = visitor.context.request_id.clone().unwrap_or_else(|| "-".to_string());
    if let Some(cause) = &error.internal {
        tracing::error!(request.id = %request_id, error = %cause, "a page failed");
    }
    let page = ErrorPage {
        layout: Layout::new(visitor, "", error.title()),
        status: error.status.as_u16(),
        message: error.message.clone(),
        request_id,
        offer_login: error.status == StatusCode::UNAUTHORIZED,
    };
    let mut response = render_with(error.status, &page).unwrap_or_else(|failure| {
        tracing::error!(error = ?failure.internal, "rendering the error page failed");
        (error.status, error.message.clone()).into_response()
    });
    protect(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", ""));
    }
}
