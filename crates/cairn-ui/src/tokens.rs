//! My API tokens: the list (never a secret), creating one — its secret is shown on the answer
//! to the form and never again (the page is not cached and the secret never goes in a URL) —
//! and revoking one, which stops it at once.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::time::now_millis;
use cairn_service::Services;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Layout, render_with, time};
use crate::session::Visitor;

struct TokenRow {
    id: i64,
    name: String,
    hint: String,
    created: String,
    expires: String,
    status: &'static str,
    active: bool,
}

/// A token just created.
struct Created {
    id: i64,
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    username: String,
    tokens: Vec<TokenRow>,
    created: Option<Created>,
}

/// The signed-in user's name; tokens belong to users.
fn username(visitor: &Visitor) -> PageResult<String> {
    visitor.context.principal.as_ref().map(|principal| principal.username.clone()).ok_or_else(
        || {
            PageError::new(
                StatusCode::UNAUTHORIZED,
                "tokens belong to users: log in to manage yours",
            )
        },
    )
}

async fn page(
    services: &Services,
    visitor: &Visitor,
    created: Option<Created>,
    status: StatusCode,
) -> PageResult {
    let username = username(visitor)?;
    let now = now_millis();
    let tokens = services.identity.list_tokens(&visitor.context, &username).await?;
    render_with(
        status,
        &TokensPage {
            layout: Layout::new(visitor, "tokens", "My tokens"),
            tokens: tokens
                .into_iter()
                .map(|token| {
                    let (status, active) = match (token.revoked_at, token.expires_at) {
                        (Some(_), _) => ("revoked", false),
                        (None, Some(expires)) if expires <= now => ("expired", false),
                        _ => ("active", true),
                    };
                    TokenRow {
                        id: token.id,
                        name: token.name,
                        hint: token.hint,
                        created: time(token.created_at),
                        expires: token.expires_at.map(time).unwrap_or_else(|| "never".into()),
                        status,
                        active,
                    }
                })
                .collect(),
            username,
            created,
        },
    )
}

/// `GET /tokens`.
pub async fn list(State(services): State<Services>, visitor: Visitor) -> PageResult {
    page(&services, &visitor, None, StatusCode::OK).await
}

/// The new-token form.
#[derive(Deserialize)]
pub struct NewTokenForm {
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

/// `POST /tokens`: creates a token and shows its secret this once.
pub async fn create(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<NewTokenForm>,
) -> PageResult {
    let username = username(&visitor)?;
    let days = match crate::layout::optional(&form.expires_in_days) {
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            PageError::bad_request("the lifetime is a whole number of days (or empty for none)")
        })?),
        None => None,
    };
    let (info, secret) =
        services.identity.create_token(&visitor.context, &username, form.name.trim(), days).await?;
    let created = Created { id: info.id, name: info.name, secret };
    page(&services, &visitor, Some(created), StatusCode::CREATED).await
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let username = username(&visitor)?;
    services.identity.revoke_token(&visitor.context, id, Some(&username)).await?;
    Ok(Redirect::to("/tokens").into_response())
}
