//! Global search across what a person may read: projects, experiments, runs (by name, by a
//! `key=value` tag, or by id), registered models, datasets and comments. The search term is a
//! case-sensitive prefix of names (so every lookup is an index range); comments match a
//! case-insensitive substring of their text among the newest comments.

use serde::{Deserialize, Serialize};

/// The most hits of one kind a search returns.
pub const MAX_HITS_PER_KIND: i64 = 50;
/// The longest search term.
pub const MAX_TERM_CHARS: usize = 200;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    /// A project (its id is its name).
    Project,
    /// An experiment (its id is the decimal experiment id).
    Experiment,
    /// A run (its id is the run id).
    Run,
    /// A registered model (its id is its name).
    Model,
    /// A dataset (its id is its name).
    Dataset,
    /// A comment (its id is the comment id; `target` is what it annotates).
    Comment,
}

impl HitKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Project => "project",
            HitKind::Experiment => "experiment",
            HitKind::Run => "run",
            HitKind::Model => "model",
            HitKind::Dataset => "dataset",
            HitKind::Comment => "comment",
        }
    }
}

/// One thing a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// What it is.
    pub kind: HitKind,
    /// The project holding it.
    pub project: String,
    /// Its identifier within the project (see [`HitKind`]).
    pub id: String,
    /// What to show: a name, or the start of a comment.
    pub title: String,
    /// Context: the experiment of a run, the matching tag, a comment's author, a description.
    pub detail: String,
    /// For a comment, what it annotates (`run:<id>`, `model_version:<name>/<v>`, `project`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A parsed search term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    /// The whole term, trimmed (a name prefix).
    pub text: String,
    /// `key=value`: runs whose tag `key` starts with `value`.
    pub tag: Option<(String, String)>,
    /// Whether the term could be a run id (32 hexadecimal digits).
    pub run_id: bool,
}

impl SearchTerm {
    /// Parses a term; `None` when it is empty. Longer terms are cut to [`MAX_TERM_CHARS`].
    pub fn parse(raw: &str) -> Option<Self> {
        let text: String = raw.trim().chars().take(MAX_TERM_CHARS).collect();
        if text.is_empty() {
            return None;
        }
        let tag = text.split_once('=').and_then(|(key, value)| {
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), value.trim().to_string()))
        });
        let run_id = text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit());
        Some(Self { text, tag, run_id })
    }
}

/// The exclusive upper bound of the strings starting with `prefix` (for an index range
/// `name >= prefix AND name < bound` in a binary collation).
pub fn prefix_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_know_tags_and_run_ids() {
        assert_eq!(SearchTerm::parse("   "), None);
        let plain = SearchTerm::parse(" churn ").unwrap();
        assert_eq!((plain.text.as_str(), plain.tag, plain.run_id), ("churn", None, false));
        let tag = SearchTerm::parse("team = vision").unwrap();
        assert_eq!(tag.tag, Some(("team".into(), "vision".into())));
        assert!(SearchTerm::parse("=x").unwrap().tag.is_none());
        assert!(SearchTerm::parse("0123456789abcdef0123456789ABCDEF").unwrap().run_id);
        assert_eq!(SearchTerm::parse(&"x".repeat(500)).unwrap().text.len(), MAX_TERM_CHARS);
    }

    #[test]
    fn bounds_cover_every_continuation() {
        let bound = prefix_bound("lr");
        for name in ["lr", "lr-0.1", "lrz", "lr\u{FFFF}"] {
            assert!(name >= "lr" && name < bound.as_str(), "{name}");
        }
        assert!("ls" > bound.as_str() && "lq" < "lr");
    }
}
