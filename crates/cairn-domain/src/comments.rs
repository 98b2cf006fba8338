//! Comments on a project, a run or a model version: what they annotate ([`CommentTarget`]), the
//! rules for their bodies (plain text, 1–10,000 characters) and the `@mentions` a body names.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The longest comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// The most distinct users one comment may mention.
pub const MAX_MENTIONS: usize = 50;

/// What a comment annotates, always inside one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommentTarget {
    /// The project itself.
    Project,
    /// A run (its 32-hex id).
    Run(String),
    /// A version of a registered model.
    ModelVersion {
        /// The registered model's name.
        name: String,
        /// The version number.
        version: i64,
    },
}

impl CommentTarget {
    /// The stored kind: `project`, `run` or `model_version`.
    pub fn kind(&self) -> &'static str {
        match self {
            CommentTarget::Project => "project",
            CommentTarget::Run(_) => "run",
            CommentTarget::ModelVersion { .. } => "model_version",
        }
    }

    /// The stored key within the kind: empty, the run id, or `<name>/<version>`.
    pub fn key(&self) -> String {
        match self {
            CommentTarget::Project => String::new(),
            CommentTarget::Run(run_id) => run_id.clone(),
            CommentTarget::ModelVersion { name, version } => format!("{name}/{version}"),
        }
    }

    /// Rebuilds a target from its stored kind and key.
    pub fn from_parts(kind: &str, key: &str) -> Result<Self, DomainError> {
        match kind {
            "project" => Ok(CommentTarget::Project),
            "run" if !key.is_empty() => Ok(CommentTarget::Run(key.to_string())),
            "model_version" => {
                let invalid = || {
                    DomainError::invalid(format!(
                        "invalid model version '{key}': use <model name>/<version>"
                    ))
                };
                let (name, version) = key.rsplit_once('/').ok_or_else(invalid)?;
                let version: i64 = version.parse().map_err(|_| invalid())?;
                if name.is_empty() || version < 1 {
                    return Err(invalid());
                }
                Ok(CommentTarget::ModelVersion { name: name.to_string(), version })
            }
            _ => Err(DomainError::invalid(format!(
                "invalid comment target '{kind}:{key}': use project, run:<run id> or model_version:<name>/<version>"
            ))),
        }
    }

    /// Parses the wire form: `project`, `run:<run id>` or `model_version:<name>/<version>`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        match raw.split_once(':') {
            None => Self::from_parts(raw, ""),
            Some((kind, key)) => Self::from_parts(kind, key),
        }
    }
}

impl std::fmt::Display for CommentTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommentTarget::Project => f.write_str("project"),
            other => write!(f, "{}:{}", other.kind(), other.key()),
        }
    }
}

/// A stored comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    /// Id, increasing within the site.
    pub id: i64,
    /// The project's name.
    pub project: String,
    /// What it annotates, in the wire form (`run:<id>`, `model_version:<name>/<v>`, `project`).
    pub target: String,
    /// Who wrote it (a user name, or `anonymous` while authentication is off).
    pub author: String,
    /// The text (plain text; shown escaped).
    pub body: String,
    /// The users it mentions (resolved `@names`), by name.
    pub mentions: Vec<String>,
    /// Written, epoch ms.
    pub created_at: i64,
}

/// Checks a comment body and returns it without surrounding white space.
pub fn validate_body(body: &str) -> Result<&str, DomainError> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid("a comment cannot be empty"));
    }
    if trimmed.chars().count() > MAX_COMMENT_CHARS {
        return Err(DomainError::invalid(format!(
            "a comment may have at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    Ok(trimmed)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

/// The user names a body mentions, in order of first appearance, without duplicates: `@` at
/// the start or after a character that cannot be part of a name (so `a@b.example` is not a
/// mention), then letters, digits, `.`, `_`, `-` or `@`, lowercased, with trailing `.`, `-`
/// and `_` (sentence punctuation) dropped. At most [`MAX_MENTIONS`].
pub fn mentions(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let starts = chars[index] == '@' && (index == 0 || !is_name_char(chars[index - 1]));
        if !starts {
            index += 1;
            continue;
        }
        let mut end = index + 1;
        while end < chars.len() && is_name_char(chars[end]) {
            end += 1;
        }
        let raw: String = chars[index + 1..end].iter().collect();
        let name = raw.trim_end_matches(['.', '-', '_']).to_ascii_lowercase();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if valid && name.len() <= 64 && !found.contains(&name) {
            found.push(name);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
        index = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for raw in
            ["project", "run:0123456789abcdef0123456789abcdef", "model_version:churn model/3"]
        {
            let target = CommentTarget::parse(raw).unwrap();
            assert_eq!(target.to_string(), raw);
            assert_eq!(CommentTarget::from_parts(target.kind(), &target.key()).unwrap(), target);
        }
        let nested = CommentTarget::parse("model_version:a/b/2").unwrap();
        assert_eq!(nested, CommentTarget::ModelVersion { name: "a/b".into(), version: 2 });
        for bad in ["", "run:", "model_version:m", "model_version:m/0", "model_version:/1", "job:1"]
        {
            assert!(CommentTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mentions_are_names_after_an_at_sign() {
        assert_eq!(
            mentions("@ada please check, cc @bo.smith. Mail x@example.com (@Ada again) @-no @"),
            ["ada", "bo.smith"]
        );
        assert_eq!(mentions("(@ops-team)"), ["ops-team"]);
        assert!(mentions("no mentions here").is_empty());
    }

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(validate_body("  hi \n").unwrap(), "hi");
        assert!(validate_body(" \n ").is_err());
        assert!(validate_body(&"x".repeat(MAX_COMMENT_CHARS + 1)).is_err());
        assert!(validate_body(&"é".repeat(MAX_COMMENT_CHARS)).is_ok());
    }
}
