//! Users and API tokens. Token secrets never reach the store: it keeps their SHA-256 digests
//! and answers "whose digest is this" with one indexed lookup.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{Principal, SiteRole, TokenInfo, User};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::{Store, StoreError, StoreResult};

const USER_COLUMNS: &str =
    "id, username, display_name, email, site_role, service_account, active, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, hint, created_at, expires_at, revoked_at";

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The unique user name (validated by the caller).
    pub username: String,
    /// A display name.
    pub display_name: Option<String>,
    /// An e-mail address.
    pub email: Option<String>,
    /// An argon2id PHC string, or none for service accounts and token-only users.
    pub password_hash: Option<String>,
    /// The site role.
    pub site_role: SiteRole,
    /// Whether this is a service account.
    pub service_account: bool,
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        site_role: SiteRole::parse(&row.try_get::<String, _>("site_role")?)?,
        service_account: row.try_get::<i64, _>("service_account")? != 0,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> StoreResult<TokenInfo> {
    Ok(TokenInfo {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        hint: row.try_get("hint")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn user_not_found(username: &str) -> StoreError {
    DomainError::not_found(format!("no user named '{username}'")).into()
}

impl Store {
    /// How many users exist (zero means the site still needs bootstrapping).
    pub async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.reader()).await?)
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        context: &RequestContext,
        new_user: &NewUser,
    ) -> StoreResult<User> {
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (username, display_name, email, password_hash, site_role, service_account, \
             active, created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) RETURNING {USER_COLUMNS}"
        )))
        .bind(&new_user.username)
        .bind(new_user.display_name.clone())
        .bind(new_user.email.clone())
        .bind(new_user.password_hash.clone())
        .bind(new_user.site_role.as_str())
        .bind(i64::from(new_user.service_account))
        .bind(now_millis())
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let row = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a user named '{}' already exists",
                    new_user.username
                ))
                .into());
            }
            other => other?,
        };
        let user = user_from_row(&row)?;
        let details = serde_json::json!({
            "site_role": user.site_role.as_str(),
            "service_account": user.service_account,
        });
        self.commit_audited(
            transaction,
            context,
            entry("user.create", format!("user:{}", user.username), details),
        )
        .await?;
        Ok(user)
    }

    /// Loads a user by name.
    pub async fn get_user(&self, username: &str) -> StoreResult<User> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| user_not_found(username))?;
        user_from_row(&row)
    }

    /// Lists every user, by name.
    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        )))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Sets (or clears) a user's default project.
    pub async fn set_default_project(
        &self,
        context: &RequestContext,
        username: &str,
        project: Option<&cairn_domain::identity::Project>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let updated = sqlx::query("UPDATE users SET default_project_id = $1 WHERE username = $2")
            .bind(project.map(|project| project.id))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(user_not_found(username));
        }
        let details = serde_json::json!({"project": project.map(|project| project.name.clone())});
        self.commit_audited(
            transaction,
            context,
            entry("user.default_project", format!("user:{username}"), details),
        )
        .await?;
        Ok(())
    }

    /// The name of a user's default project, if one is set.
    pub async fn default_project_name(&self, user_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT p.name FROM users u JOIN projects p ON p.id = u.default_project_id WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.reader())
        .await?)
    }

    /// The active user of this name and their password hash, for a password login.
    pub async fn password_login(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1 AND active = 1"
        )))
        .bind(username)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let hash: Option<String> = row.try_get("password_hash")?;
        hash.map(|hash| user_from_row(&row).map(|user| (user, hash))).transpose()
    }

    /// Activates or deactivates a user. Deactivated users cannot authenticate and their web
    /// sessions are deleted; everything they made stays in place and readable.
    pub async fn set_user_active(
        &self,
        context: &RequestContext,
        username: &str,
        active: bool,
    ) -> StoreResult<User> {
        let mut transaction = self.begin().await?;
        let deactivated_at = (!active).then(now_millis);
        let updated =
            sqlx::query("UPDATE users SET active = $1, deactivated_at = $2 WHERE username = $3")
                .bind(i64::from(active))
                .bind(deactivated_at)
                .bind(username)
                .execute(&mut *transaction)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(user_not_found(username));
        }
        if !active {
            // Their web sessions end for good: reactivating the user must not bring them back.
            sqlx::query(
                "DELETE FROM ui_sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            )
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        }
        let action = if active { "user.activate" } else { "user.deactivate" };
        self.commit_audited(
            transaction,
            context,
            entry(action, format!("user:{username}"), serde_json::json!({})),
        )
        .await?;
        self.get_user(username).await
    }

    /// Changes a user's site role.
    pub async fn set_site_role(
        &self,
        context: &RequestContext,
        username: &str,
        role: SiteRole,
    ) -> StoreResult<User> {
        let before = self.get_user(username).await?;
        let mut transaction = self.begin().await?;
        let updated = sqlx::query("UPDATE users SET site_role = $1 WHERE username = $2")
            .bind(role.as_str())
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(user_not_found(username));
        }
        let details = serde_json::json!({
            "site_role": role.as_str(),
            "previous": before.site_role.as_str(),
        });
        self.commit_audited(
            transaction,
            context,
            entry("user.site_role", format!("user:{username}"), details),
        )
        .await?;
        self.get_user(username).await
    }

    /// Stores a new token's digest for `user_id`.
    pub async fn create_token(
        &self,
        context: &RequestContext,
        user_id: i64,
        name: &str,
        digest: &str,
        hint: &str,
        expires_at: Option<i64>,
    ) -> StoreResult<TokenInfo> {
        let mut transaction = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens (user_id, name, digest, hint, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(user_id)
        .bind(name)
        .bind(digest)
        .bind(hint)
        .bind(now_millis())
        .bind(expires_at)
        .fetch_one(&mut *transaction)
        .await?;
        let token = token_from_row(&row)?;
        let details = serde_json::json!({"user_id": user_id, "name": name, "hint": hint, "expires_at": expires_at});
        self.commit_audited(
            transaction,
            context,
            entry("token.create", format!("token:{}", token.id), details),
        )
        .await?;
        Ok(token)
    }

    /// Lists a user's tokens, newest first.
    pub async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"
        )))
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token; `owner` restricts it to that user's tokens (none: any token, for admins).
    pub async fn revoke_token(
        &self,
        context: &RequestContext,
        token_id: i64,
        owner: Option<i64>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 < 0 OR user_id = $3)",
        )
        .bind(now_millis())
        .bind(token_id)
        .bind(owner.unwrap_or(-1))
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(
                DomainError::not_found(format!("no active token with id {token_id}")).into()
            );
        }
        self.commit_audited(
            transaction,
            context,
            entry("token.revoke", format!("token:{token_id}"), serde_json::json!({})),
        )
        .await?;
        Ok(())
    }

    /// The principal owning a live token with this digest: not revoked, not expired, and its
    /// user active.
    pub async fn principal_for_token(&self, digest: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.email, u.site_role, u.service_account, u.active, \
             u.created_at, t.scope_project FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.digest = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
             AND u.active = 1",
        )
        .bind(digest)
        .bind(now_millis())
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut principal = user_from_row(&row)?.principal();
        principal.scope_project = row.try_get("scope_project")?;
        Ok(Some(principal))
    }
}

/// Inserts a token of `user_id` confined to `project_id` inside a caller's transaction (a job's
/// or workspace's token, recorded with what it serves) and returns its id.
pub(crate) async fn insert_confined_token(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: i64,
    name: &str,
    digest: &str,
    hint: &str,
    expires_at: i64,
    project_id: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, digest, hint, created_at, expires_at, scope_project) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(digest)
    .bind(hint)
    .bind(now_millis())
    .bind(expires_at)
    .bind(project_id)
    .fetch_one(&mut **transaction)
    .await?)
}
