//! Browser sessions of the web UI. The cookie's secret never reaches the store: it keeps the
//! secret's SHA-256 digest and answers "whose live session is this" with one indexed lookup.
//! Logging in and out are audited in the same transaction as the change.

use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{SiteRole, User};
use sqlx::Row;

use crate::audit::entry;
use crate::{Store, StoreResult};

/// What logging in stores.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The SHA-256 digest (hex) of the session secret the cookie carries.
    pub digest: String,
    /// The user it authenticates.
    pub user_id: i64,
    /// The user's name (for the audit record).
    pub username: String,
    /// The session's CSRF token, embedded in every form.
    pub csrf_token: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// When it expires unless used again (epoch ms).
    pub expires_at: i64,
    /// How the user proved who they are (`password` or `token`), for the audit record.
    pub method: &'static str,
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The user (always active: sessions of deactivated users are not found).
    pub user: User,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Expiry (epoch ms).
    pub expires_at: i64,
    /// Last use that moved the expiry (epoch ms).
    pub last_seen_at: i64,
}

impl Store {
    /// Stores a new session, deleting expired ones, and audits the login.
    pub async fn create_session(
        &self,
        context: &RequestContext,
        session: &NewSession,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (digest, user_id, csrf_token, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(&session.digest)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *transaction)
        .await?;
        let details =
            serde_json::json!({"method": session.method, "expires_at": session.expires_at});
        self.commit_audited(
            transaction,
            context,
            entry("session.login", format!("user:{}", session.username), details),
        )
        .await
    }

    /// The live session with this digest at `now`, with its active user.
    pub async fn find_session(&self, digest: &str, now: i64) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.email, u.site_role, u.service_account, \
             u.active, u.created_at AS user_created_at, s.csrf_token, s.created_at, s.expires_at, \
             s.last_seen_at FROM ui_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.digest = $1 AND s.expires_at > $2 AND u.active = 1",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = User {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            site_role: SiteRole::parse(&row.try_get::<String, _>("site_role")?)?,
            service_account: row.try_get::<i64, _>("service_account")? != 0,
            active: row.try_get::<i64, _>("active")? != 0,
            created_at: row.try_get("user_created_at")?,
        };
        Ok(Some(SessionRecord {
            user,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        }))
    }

    /// Moves a live session's expiry (sliding expiry); not audited, as it changes no record.
    pub async fn touch_session(&self, digest: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ui_sessions SET last_seen_at = $1, expires_at = $2 WHERE digest = $3 AND expires_at > $1",
        )
        .bind(now)
        .bind(expires_at)
        .bind(digest)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Deletes the session with this digest and audits the logout; false when there was none.
    pub async fn delete_session(
        &self,
        context: &RequestContext,
        digest: &str,
        username: &str,
    ) -> StoreResult<bool> {
        let mut transaction = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM ui_sessions WHERE digest = $1")
            .bind(digest)
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        self.commit_audited(
            transaction,
            context,
            entry("session.logout", format!("user:{username}"), serde_json::json!({})),
        )
        .await?;
        Ok(true)
    }
}
