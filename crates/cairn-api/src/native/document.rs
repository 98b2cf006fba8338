//! The answers every native operation can give besides its own, added to the OpenAPI document
//! in one place so that no operation's annotation can forget them: the credentials it takes
//! (a Bearer token, or Basic with a user name and a token or password), 401 without them, 400
//! for a malformed parameter or body, 403 where a role is needed, 404 where the path names a
//! resource, and 503 while a backend is down. Each is an [`ErrorBody`](super::error::ErrorBody).
//! Schemathesis checks the document against the server (`crates/cairn/tests/it/schemathesis.rs`).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, PathItem, Ref, RefOr, Response};

use crate::routes::Needs;

/// Operations whose path parameters name what they create, so a missing resource is never a
/// 404 (`PUT /tiers/{name}` creates or replaces the tier).
const UPSERTS: [(&str, &str); 2] = [("PUT", "/tiers/{name}"), ("PUT", "/me/secrets/{name}")];

/// Adds the shared security schemes and error answers to every operation of `document`, whose
/// paths are relative to `/api/v1`.
pub(super) fn add_shared_answers(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    document.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("basic", Vec::<String>::new()),
    ]);
    for (path, item) in &mut document.paths.paths {
        let full = format!("/api/v1{path}");
        for (method, operation) in operations(item) {
            let has_path_parameter = path.contains('{');
            let has_input = has_path_parameter
                || operation.request_body.is_some()
                || operation.parameters.as_ref().is_some_and(|parameters| !parameters.is_empty());
            let needs = super::needs_for(method, &full).unwrap_or(Needs::Admin);
            let answers = [
                (has_input, "400", "A parameter or the body is malformed or invalid"),
                (true, "401", "No credentials, or credentials that are not valid"),
                (needs != Needs::Authenticated, "403", "The caller's role does not allow this"),
                (
                    has_path_parameter && !UPSERTS.contains(&(method, path.as_str())),
                    "404",
                    "What the path names does not exist, or the caller may not see it",
                ),
                (true, "503", "The database or another backend is unavailable; retry later"),
            ];
            for (applies, status, description) in answers {
                if applies {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_answer(description));
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("POST", item.post.as_mut()),
        ("PUT", item.put.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("DELETE", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

fn error_answer(description: &str) -> RefOr<Response> {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_string(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("ErrorBody")))),
    );
    RefOr::T(response)
}
