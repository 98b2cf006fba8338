//! Logging in and out. A login takes a user name with a password or an API token, opens a
//! session and sets its cookie; a failed login shows the form again with a 401 and a message
//! that does not say which part was wrong. Logging out ends the session and clears the cookie.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cairn_api::browser::SESSION_COOKIE;
use cairn_domain::ErrorKind;
use cairn_service::{SESSION_MAX, Services};
use serde::Deserialize;

use crate::error::PageResult;
use crate::extract::{PageForm, PageQuery};
use crate::layout::{Layout, render, render_with};
use crate::session::Visitor;

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    username: String,
    error: Option<String>,
}

/// `?next=` of the login page.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    secret: String,
    next: Option<String>,
}

/// Where to go after logging in: a path on this site, never another site (`//host`, `/\host`;
/// only visible ASCII, since browsers drop tabs and newlines from URLs).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with("/login")
                && path.bytes().all(|byte| byte.is_ascii_graphic()) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// `GET /login`.
pub async fn show(visitor: Visitor, PageQuery(query): PageQuery<LoginQuery>) -> PageResult {
    let next = safe_next(query.next.as_deref());
    if visitor.signed_in() {
        return Ok(Redirect::to(&next).into_response());
    }
    render(&LoginPage {
        layout: Layout::new(&visitor, "", "Log in"),
        next,
        username: String::new(),
        error: None,
    })
}

/// `POST /login`.
pub async fn submit(
    axum::extract::State(services): axum::extract::State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_string();
    let request_id = visitor.context.request_id.clone();
    match services.sessions.login(request_id, &username, &form.secret).await {
        Ok((secret, _session)) => {
            let cookie = visitor.cookie(SESSION_COOKIE, &secret, SESSION_MAX / 1000);
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Err(error) if error.kind == ErrorKind::Unauthenticated => {
            tracing::info!(user.name = %username, "a UI login was refused");
            let page = LoginPage {
                layout: Layout::new(&visitor, "", "Log in"),
                next,
                username,
                error: Some(
                    "Wrong user name, password or token (or the user is deactivated).".into(),
                ),
            };
            render_with(StatusCode::UNAUTHORIZED, &page)
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /logout`.
pub async fn logout(
    axum::extract::State(services): axum::extract::State<Services>,
    visitor: Visitor,
) -> PageResult {
    if let Some(secret) = &visitor.session_secret {
        services.sessions.logout(&visitor.context, secret).await?;
    }
    let mut response: Response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, visitor.cookie(SESSION_COOKIE, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/projects/churn")), "/projects/churn");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/projects/é")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
