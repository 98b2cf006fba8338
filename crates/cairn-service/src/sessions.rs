//! Browser sessions of the web UI. Logging in takes a user name with a password or one of the
//! user's API tokens (the same check as `Authorization: Basic`); it yields a random session
//! secret for the cookie, of which only the SHA-256 digest is stored, and a per-session CSRF
//! token. Sessions expire after [`SESSION_IDLE`] without use and at most [`SESSION_MAX`] after
//! login; logging out deletes the session. Logins and logouts are audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{Principal, TOKEN_PREFIX, token_digest};
use cairn_domain::time::now_millis;
use cairn_store::{NewSession, Store};

use crate::{Credentials, IdentityService, ServiceError, ServiceResult};

/// How long a session lives without being used (sliding expiry), in milliseconds: 12 hours.
pub const SESSION_IDLE: i64 = 12 * 3_600_000;
/// How long a session lives at most after login, in milliseconds: 7 days.
pub const SESSION_MAX: i64 = 7 * 86_400_000;
/// How often use of a session moves its expiry (at most one write per session and minute).
const TOUCH_INTERVAL: i64 = 60_000;

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who it authenticates.
    pub principal: Principal,
    /// The token every form posted in this session must carry.
    pub csrf_token: String,
    /// When it expires unless used (epoch ms).
    pub expires_at: i64,
}

/// Opens, checks and closes browser sessions.
#[derive(Clone)]
pub struct SessionService {
    store: Store,
    identity: IdentityService,
}

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn unauthenticated(message: &str) -> ServiceError {
    ServiceError { kind: ErrorKind::Unauthenticated, message: message.to_string() }
}

impl SessionService {
    /// Wraps the store and the identity service (which checks credentials).
    pub fn new(store: Store, identity: IdentityService) -> Self {
        Self { store, identity }
    }

    /// Logs a user in with a password or one of their API tokens; returns the session secret
    /// (for the cookie, never stored) and the session. Tokens confined to one project (a job's
    /// or a workspace's) cannot open sessions: a session acts with the user's full rights.
    pub async fn login(
        &self,
        request_id: Option<String>,
        username: &str,
        secret: &str,
    ) -> ServiceResult<(String, Session)> {
        if username.is_empty() || secret.is_empty() {
            return Err(unauthenticated("enter a user name and a password or token"));
        }
        let credentials =
            Credentials::Basic { username: username.to_string(), secret: secret.to_string() };
        let principal = self.identity.authenticate(&credentials).await?;
        if principal.scope_project.is_some() {
            return Err(unauthenticated("this token is confined to a project and cannot log in"));
        }
        let session_secret = random_token();
        let now = now_millis();
        let session = Session {
            principal: principal.clone(),
            csrf_token: random_token(),
            expires_at: now + SESSION_IDLE,
        };
        let record = NewSession {
            digest: token_digest(&session_secret),
            user_id: principal.user_id,
            username: principal.username.clone(),
            csrf_token: session.csrf_token.clone(),
            created_at: now,
            expires_at: session.expires_at,
            method: if secret.starts_with(TOKEN_PREFIX) { "token" } else { "password" },
        };
        let context = RequestContext::user(principal, request_id);
        self.store.create_session(&context, &record).await?;
        Ok((session_secret, session))
    }

    /// The live session of a cookie's secret, if any; moves its expiry when it was last moved
    /// more than a minute ago.
    pub async fn authenticate(&self, session_secret: &str) -> ServiceResult<Option<Session>> {
        if session_secret.is_empty() || session_secret.len() > 128 {
            return Ok(None);
        }
        let digest = token_digest(session_secret);
        let now = now_millis();
        let Some(record) = self.store.find_session(&digest, now).await? else {
            return Ok(None);
        };
        let mut expires_at = record.expires_at;
        if now - record.last_seen_at >= TOUCH_INTERVAL {
            expires_at = (now + SESSION_IDLE).min(record.created_at + SESSION_MAX);
            self.store.touch_session(&digest, now, expires_at).await?;
        }
        Ok(Some(Session {
            principal: record.user.principal(),
            csrf_token: record.csrf_token,
            expires_at,
        }))
    }

    /// Ends a session; false when it had already ended.
    pub async fn logout(
        &self,
        context: &RequestContext,
        session_secret: &str,
    ) -> ServiceResult<bool> {
        let username = context.principal.as_ref().map_or("anonymous", |p| p.username.as_str());
        Ok(self.store.delete_session(context, &token_digest(session_secret), username).await?)
    }
}
