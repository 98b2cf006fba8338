//! The frame every page shares (header, navigation, the authentication-disabled banner, the
//! logout form) and small formatting helpers for templates.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};

use crate::error::{PageError, PageResult};
use crate::session::Visitor;

/// One entry of the main navigation.
pub struct NavItem {
    /// Its URL.
    pub href: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Whether the current page belongs to it (`aria-current="page"`).
    pub current: bool,
}

/// Who sees a section in the navigation (the pages check for themselves anyway).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Everyone who may see pages.
    Everyone,
    /// Signed-in users (their own things, like tokens).
    SignedIn,
    /// Site admins (and everyone while authentication is off).
    Admins,
}

/// Sections of the site, in navigation order: key, URL, label, audience.
const SECTIONS: &[(&str, &str, &str, Audience)] = &[
    ("home", "/", "Home", Audience::Everyone),
    ("projects", "/projects", "Projects", Audience::Everyone),
    ("models", "/models", "Models", Audience::Everyone),
    ("approvals", "/approvals", "Approvals", Audience::Everyone),
    ("compute", "/environments", "Compute", Audience::Everyone),
    ("audit", "/audit", "Audit", Audience::Admins),
    ("admin", "/admin/users", "Admin", Audience::Admins),
    ("tokens", "/tokens", "My tokens", Audience::SignedIn),
    ("secrets", "/secrets", "My secrets", Audience::SignedIn),
];

/// What the shared frame needs.
pub struct Layout {
    /// The page's title (the `<title>` adds " · Cairn").
    pub title: String,
    /// The signed-in user, if any.
    pub user: Option<String>,
    /// The token every form carries.
    pub csrf: String,
    /// The global search box's current text.
    pub search: String,
    /// Whether the server runs without authentication (shows the banner).
    pub auth_disabled: bool,
    /// The navigation.
    pub nav: Vec<NavItem>,
    /// The stylesheet's URL.
    pub css: String,
    /// The script's URL.
    pub js: String,
    /// The icon's URL.
    pub icon: String,
}

impl Layout {
    /// The frame for `visitor` on a page of `section` (see [`SECTIONS`]).
    pub fn new(visitor: &Visitor, section: &str, title: impl Into<String>) -> Self {
        let admin = cairn_service::Authorizer::is_unrestricted(&visitor.context);
        let nav = SECTIONS
            .iter()
            .filter(|(_, _, _, audience)| match audience {
                Audience::Everyone => true,
                Audience::SignedIn => visitor.signed_in(),
                Audience::Admins => admin,
            })
            .map(|&(key, href, label, _)| NavItem { href, label, current: key == section })
            .collect();
        Self {
            title: title.into(),
            user: visitor.context.principal.as_ref().map(|principal| principal.username.clone()),
            csrf: visitor.csrf.clone(),
            search: String::new(),
            auth_disabled: !visitor.auth_required,
            nav,
            css: crate::assets::url("cairn.css"),
            js: crate::assets::url("cairn.js"),
            icon: crate::assets::url("favicon.svg"),
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The frame.
    pub layout: Layout,
    /// The status code.
    pub status: u16,
    /// What happened.
    pub message: String,
    /// The request id, for reporting.
    pub request_id: String,
    /// Whether to offer the login link.
    pub offer_login: bool,
}

/// Renders a template as an HTML response with `status`.
pub fn render_with(status: StatusCode, template: &impl Template) -> PageResult {
    let html = template.render().map_err(PageError::from)?;
    Ok((status, Html(html)).into_response())
}

/// Renders a template as a 200 HTML response.
pub fn render(template: &impl Template) -> PageResult {
    render_with(StatusCode::OK, template)
}

/// Epoch milliseconds as `2026-11-27 10:15 UTC`.
pub fn time(millis: i64) -> String {
    let stamp = cairn_domain::time::format_utc(millis);
    format!("{} UTC", stamp.get(..16).unwrap_or(&stamp).replace('T', " "))
}

impl Layout {
    /// The frame with `text` in the search box.
    pub fn with_search(mut self, text: &str) -> Self {
        self.search = text.to_string();
        self
    }
}

/// An optional time, or an empty string.
pub fn maybe_time(millis: Option<i64>) -> String {
    millis.map(time).unwrap_or_default()
}

/// A metric value for tables: integers plainly, others with up to six significant digits.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "∞".into() } else { "−∞".into() };
    }
    if value == value.trunc() && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let magnitude = value.abs();
    if !(1e-4..1e6).contains(&magnitude) {
        return format!("{value:.4e}");
    }
    let decimals = (5 - magnitude.log10().floor() as i32).clamp(0, 9) as usize;
    let text = format!("{value:.decimals$}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_string()
}

/// What [`encode`] leaves as is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a value for a URL path segment or query value.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// A string literal of MLflow's filter grammar (`'…'` with `\` and `'` escaped).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One option of a `<select>`.
pub struct Choice {
    /// Its value (and label).
    pub value: String,
    /// Whether it is selected.
    pub selected: bool,
}

/// The options `values`, with `selected` marked.
pub fn choices<S: AsRef<str>>(values: &[S], selected: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|value| Choice {
            value: value.as_ref().to_string(),
            selected: value.as_ref() == selected,
        })
        .collect()
}

/// An optional form field: trimmed, `None` when empty.
pub fn optional(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.912345678), "0.912346");
        assert_eq!(number(123.456789), "123.457");
        assert_eq!(number(1.5e-7), "1.5000e-7");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn encoding_keeps_unreserved_characters() {
        assert_eq!(encode("made-here_1.x~"), "made-here_1.x~");
        assert_eq!(encode("/a b?"), "%2Fa%20b%3F");
    }

    #[test]
    fn literals_escape_quotes() {
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(literal("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn times_are_minutes_in_utc() {
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
    }
}
