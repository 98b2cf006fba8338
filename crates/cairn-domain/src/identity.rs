//! Identity: site roles, the authenticated principal, API tokens (random, shown once, stored as
//! a SHA-256 digest so verification is one fast hash and an indexed lookup), and argon2id
//! password hashes (slow on purpose; only for interactive logins, never per request).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::DomainError;

/// The prefix of every Cairn API token, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "cairn_";

/// A user's site-wide role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteRole {
    /// Administers users, teams, projects and the site.
    Admin,
    /// Reviews and approves governed promotions.
    GovernanceReviewer,
    /// An ordinary user.
    Member,
}

impl SiteRole {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteRole::Admin => "admin",
            SiteRole::GovernanceReviewer => "governance-reviewer",
            SiteRole::Member => "member",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "admin" => Ok(SiteRole::Admin),
            "governance-reviewer" => Ok(SiteRole::GovernanceReviewer),
            "member" => Ok(SiteRole::Member),
            other => Err(DomainError::invalid(format!(
                "unknown site role '{other}': use admin, governance-reviewer or member"
            ))),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's numeric id.
    pub user_id: i64,
    /// The unique user name.
    pub username: String,
    /// The site role.
    pub site_role: SiteRole,
    /// Whether this is a service account (no password, tokens only).
    pub service_account: bool,
    /// The one project a confined token (a job's) may act in; its rights there are the user's
    /// own, and it may do nothing elsewhere or site-wide.
    pub scope_project: Option<i64>,
}

/// Checks a user name: 1–64 characters of lowercase letters, digits, `.`, `_`, `-`, `@`,
/// starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), DomainError> {
    let valid_characters = name.chars().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@')
    });
    let valid_start =
        name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 64 || !valid_characters || !valid_start {
        return Err(DomainError::invalid(format!(
            "invalid user name '{name}': use 1-64 lowercase letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Builds a token from 32 random bytes: `cairn_` followed by 43 URL-safe characters.
pub fn token_from_bytes(bytes: [u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: its SHA-256 digest in hex. Tokens carry 256 bits of entropy, so
/// a fast unsalted hash is safe here (unlike passwords).
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short, non-secret label for showing a token in listings (`cairn_AbCd…`).
pub fn token_hint(token: &str) -> String {
    let visible: String = token.chars().take(TOKEN_PREFIX.len() + 4).collect();
    format!("{visible}…")
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, DomainError> {
    if password.chars().count() < 8 {
        return Err(DomainError::invalid("passwords must have at least 8 characters"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| DomainError::invalid("could not hash the password"))
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_and_digests_stable() {
        let token = token_from_bytes([7; 32]);
        assert!(token.starts_with("cairn_"));
        assert_eq!(token.len(), 6 + 43);
        assert_eq!(token_digest(&token), token_digest(&token));
        assert_ne!(token_digest(&token), token_digest(&token_from_bytes([8; 32])));
        assert_eq!(token_hint(&token).chars().count(), 11);
        assert!(!token_hint(&token).contains(&token[10..]), "the hint hides the secret");
    }

    #[test]
    fn passwords_round_trip() {
        let stored = hash_password("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("wrong horse", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn usernames_are_checked() {
        for good in ["ada", "ada.lovelace", "svc-train_01", "a@b.c", "7up"] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in ["", "Ada", "-ada", "a b", "x".repeat(65).as_str(), "../x"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_roles_parse() {
        for role in [SiteRole::Admin, SiteRole::GovernanceReviewer, SiteRole::Member] {
            assert_eq!(SiteRole::parse(role.as_str()).unwrap(), role);
        }
        assert!(SiteRole::parse("root").is_err());
    }
}

/// A user account (people and service accounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The numeric id.
    pub id: i64,
    /// The unique user name.
    pub username: String,
    /// A display name.
    pub display_name: Option<String>,
    /// An e-mail address.
    pub email: Option<String>,
    /// The site role.
    pub site_role: SiteRole,
    /// A service account has no password; it authenticates with tokens only.
    pub service_account: bool,
    /// Deactivated users cannot authenticate; their work stays readable.
    pub active: bool,
    /// Creation time in epoch milliseconds.
    pub created_at: i64,
}

impl User {
    /// The principal this user acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            username: self.username.clone(),
            site_role: self.site_role,
            service_account: self.service_account,
            scope_project: None,
        }
    }
}

/// An API token's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The numeric id (used to revoke it).
    pub id: i64,
    /// The owner.
    pub user_id: i64,
    /// A label chosen by its owner.
    pub name: String,
    /// The visible start of the token.
    pub hint: String,
    /// Creation time in epoch milliseconds.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// A member's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectRole {
    /// Reads everything in the project.
    Viewer,
    /// Reads and writes experiments, runs, artifacts and models.
    Contributor,
    /// Also manages members and settings.
    Owner,
}

/// What an operation needs on a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reading: viewers and up.
    Read,
    /// Changing the system of record: contributors and up.
    Write,
    /// Changing members and settings: owners.
    Manage,
}

impl ProjectRole {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Contributor => "contributor",
            ProjectRole::Owner => "owner",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "viewer" => Ok(ProjectRole::Viewer),
            "contributor" => Ok(ProjectRole::Contributor),
            "owner" => Ok(ProjectRole::Owner),
            other => Err(DomainError::invalid(format!(
                "unknown project role '{other}': use owner, contributor or viewer"
            ))),
        }
    }

    /// Whether this role grants `access` (the decision table of project RBAC).
    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => true,
            Access::Write => self >= ProjectRole::Contributor,
            Access::Manage => self == ProjectRole::Owner,
        }
    }
}

/// A project: the unit of work and permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The numeric id.
    pub id: i64,
    /// The unique name, used in tracking URIs (`/p/<name>`).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Creation time in epoch milliseconds.
    pub created_at: i64,
}

/// The project of MLflow calls that name no other.
pub const DEFAULT_PROJECT: &str = "default";

/// Checks a project name: the same rules as user names (it appears in URLs).
pub fn validate_project_name(name: &str) -> Result<(), DomainError> {
    validate_username(name).map_err(|_| {
        DomainError::invalid(format!(
            "invalid project name '{name}': use 1-64 lowercase letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        ))
    })
}

#[cfg(test)]
mod rbac_tests {
    use super::*;

    #[test]
    fn roles_grant_access_by_rank() {
        let table = [
            (ProjectRole::Viewer, [true, false, false]),
            (ProjectRole::Contributor, [true, true, false]),
            (ProjectRole::Owner, [true, true, true]),
        ];
        for (role, expected) in table {
            let granted =
                [Access::Read, Access::Write, Access::Manage].map(|access| role.allows(access));
            assert_eq!(granted, expected, "{role:?}");
            assert_eq!(ProjectRole::parse(role.as_str()).unwrap(), role);
        }
    }
}
