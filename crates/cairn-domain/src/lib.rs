//! Cairn's domain: entities, identifiers, validated names, error kinds, the search grammar,
//! page tokens and the drift statistics. No I/O and no async: every other crate builds on these
//! types.

pub mod audit;
pub mod comments;
pub mod compute;
pub mod datasets;
pub mod drift;
pub mod entities;
pub mod error;
pub mod global_search;
pub mod governance;
pub mod identity;
pub mod ids;
pub mod monitoring;
pub mod page_token;
pub mod quality;
pub mod search;
pub mod serving;
pub mod time;
pub mod validation;
pub mod workspaces;

pub use error::{DomainError, ErrorKind};
