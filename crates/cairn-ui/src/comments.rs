//! Comments shown under a project, a run or a model version, and their forms: writing one
//! (contributors) and deleting one (its author, or a project owner). Bodies are plain text,
//! escaped like everything else; `@mentions` of known users are marked, never linked as HTML
//! from the text itself.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::comments::CommentTarget;
use cairn_service::Services;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{encode, time};
use crate::session::Visitor;

/// The most comments shown under one target.
const SHOWN: i64 = 200;

/// A piece of a comment's text: plain, or an `@mention` of a known user.
pub struct Part {
    /// The text (escaped when rendered).
    pub text: String,
    /// Whether it is a mention.
    pub mention: bool,
}

/// One comment as shown.
pub struct CommentRow {
    /// Its id.
    pub id: i64,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created: String,
    /// Its text in pieces.
    pub parts: Vec<Part>,
    /// The users it mentions, comma-separated.
    pub mentions: String,
    /// Whether the visitor may delete it.
    pub can_delete: bool,
}

/// The comments of one target with the form to add one.
pub struct CommentsView {
    /// The project.
    pub project: String,
    /// The target's wire form (the form's hidden field).
    pub target: String,
    /// The comments, oldest first.
    pub items: Vec<CommentRow>,
    /// Whether only the first [`SHOWN`] are listed.
    pub more: bool,
    /// Whether the visitor may comment.
    pub can_write: bool,
}

/// Splits `body` into plain text and the `@name` mentions among `known` users.
fn parts(body: &str, known: &[String]) -> Vec<Part> {
    let mut result: Vec<Part> = Vec::new();
    let mut plain = String::new();
    let mut rest = body;
    while let Some(at) = rest.find('@') {
        let (before, from_at) = rest.split_at(at);
        plain.push_str(before);
        let previous = plain.chars().last();
        let boundary = previous.is_none_or(|c| !(c.is_ascii_alphanumeric() || "._-@".contains(c)));
        let name: String = from_at[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "._-@".contains(*c))
            .collect();
        let trimmed = name.trim_end_matches(['.', '-', '_']);
        match trimmed.to_ascii_lowercase() {
            mentioned if boundary && !trimmed.is_empty() && known.contains(&mentioned) => {
                let length = 1 + trimmed.len();
                if !plain.is_empty() {
                    result.push(Part { text: std::mem::take(&mut plain), mention: false });
                }
                result.push(Part { text: from_at[..length].to_string(), mention: true });
                rest = &from_at[length..];
            }
            _ => {
                let skip = 1 + name.len();
                plain.push_str(&from_at[..skip]);
                rest = &from_at[skip..];
            }
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        result.push(Part { text: plain, mention: false });
    }
    result
}

/// The comments on `target` in `project` for `visitor`.
pub async fn load(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    target: &CommentTarget,
    can_write: bool,
    can_manage: bool,
) -> PageResult<CommentsView> {
    let found =
        services.comments.list(&visitor.context, project, Some(target), 0, SHOWN + 1).await?;
    let me = visitor.context.principal.as_ref().map(|principal| principal.username.as_str());
    let more = found.len() as i64 > SHOWN;
    let items = found
        .into_iter()
        .take(SHOWN as usize)
        .map(|comment| CommentRow {
            id: comment.id,
            can_delete: can_write && (can_manage || me == Some(comment.author.as_str())),
            created: time(comment.created_at),
            parts: parts(&comment.body, &comment.mentions),
            mentions: comment.mentions.join(", "),
            author: comment.author,
        })
        .collect();
    Ok(CommentsView {
        project: project.to_string(),
        target: target.to_string(),
        items,
        more,
        can_write,
    })
}

/// The page a target's comments are shown on.
pub fn page_of(project: &str, target: &CommentTarget) -> String {
    let base = format!("/projects/{}", encode(project));
    match target {
        CommentTarget::Project => format!("{base}#comments"),
        CommentTarget::Run(run_id) => format!("{base}/runs/{}#comments", encode(run_id)),
        CommentTarget::ModelVersion { name, version } => {
            format!("{base}/models/{}/versions/{version}#comments", encode(name))
        }
    }
}

/// The comment form.
#[derive(Deserialize)]
pub struct CommentForm {
    target: String,
    body: String,
}

fn parse_target(raw: &str) -> PageResult<CommentTarget> {
    CommentTarget::parse(raw).map_err(|error| PageError::bad_request(error.message))
}

/// `POST /projects/{project}/comments`.
pub async fn add(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<CommentForm>,
) -> PageResult {
    let target = parse_target(&form.target)?;
    let comment = services.comments.add(&visitor.context, &project, &target, &form.body).await?;
    let page = page_of(&project, &target).replace("#comments", &format!("#comment-{}", comment.id));
    Ok(Redirect::to(&page).into_response())
}

/// The delete form.
#[derive(Deserialize)]
pub struct DeleteForm {
    target: String,
}

/// `POST /projects/{project}/comments/{id}/delete`.
pub async fn delete(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
    PageForm(form): PageForm<DeleteForm>,
) -> PageResult {
    let target = parse_target(&form.target)?;
    services.comments.delete(&visitor.context, &project, id).await?;
    Ok(Redirect::to(&page_of(&project, &target)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(parts: &[Part]) -> String {
        parts
            .iter()
            .map(|part| if part.mention { format!("[{}]", part.text) } else { part.text.clone() })
            .collect()
    }

    #[test]
    fn known_mentions_are_marked() {
        let known = vec!["ada".to_string(), "bo.smith".to_string()];
        let body = "@ada see a@ada.org, @nobody and @bo.smith. @ada";
        assert_eq!(
            render(&parts(body, &known)),
            "[@ada] see a@ada.org, @nobody and [@bo.smith]. [@ada]"
        );
        assert_eq!(render(&parts("no at sign", &known)), "no at sign");
        assert_eq!(render(&parts("trailing @", &known)), "trailing @");
        assert_eq!(render(&parts("@-x then @ada", &known)), "@-x then [@ada]");
    }
}
