//! Identity operations: bootstrapping the first admin, users, tokens, and authenticating the
//! credentials the MLflow client sends (`Bearer <token>`, or Basic with a token or password).
//! Token checks are one SHA-256 and one indexed lookup; argon2 runs only on the first use of a
//! password, whose verification is then cached briefly (by a digest, never the password).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{
    Principal, SiteRole, TOKEN_PREFIX, TokenInfo, User, hash_password, token_digest,
    token_from_bytes, token_hint, validate_username, verify_password,
};
use cairn_domain::time::now_millis;
use cairn_store::{NewUser, Store};

use crate::{ServiceError, ServiceResult};

/// How long a verified password stays trusted without running argon2 again.
const PASSWORD_CACHE_TTL: Duration = Duration::from_secs(300);

/// Credentials presented with a request.
#[derive(Clone)]
pub enum Credentials {
    /// `Authorization: Bearer <token>` (what `MLFLOW_TRACKING_TOKEN` sends).
    Bearer(String),
    /// `Authorization: Basic` (what `MLFLOW_TRACKING_USERNAME`/`PASSWORD` send): the secret is a
    /// token or the user's password.
    Basic {
        /// The user name.
        username: String,
        /// A token or a password.
        secret: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// A new user's settings.
#[derive(Clone)]
pub struct UserSpec {
    /// The user name.
    pub username: String,
    /// The site role.
    pub site_role: SiteRole,
    /// A service account (no password).
    pub service_account: bool,
    /// An initial password, for people who log in interactively.
    pub password: Option<String>,
    /// A display name.
    pub display_name: Option<String>,
    /// An e-mail address.
    pub email: Option<String>,
}

/// Users, tokens and authentication.
#[derive(Clone)]
pub struct IdentityService {
    store: Store,
    authz: crate::Authorizer,
    password_cache: Arc<Mutex<HashMap<String, (Principal, Instant)>>>,
}

fn unauthenticated() -> ServiceError {
    ServiceError {
        kind: ErrorKind::Unauthenticated,
        message: "invalid or expired credentials".into(),
    }
}

/// A new token's secret with its stored digest and hint (for tokens Cairn issues itself).
pub(crate) fn new_token_secret() -> (String, String, String) {
    let secret = new_secret();
    let (digest, hint) = (token_digest(&secret), token_hint(&secret));
    (secret, digest, hint)
}

fn new_secret() -> String {
    let mut bytes = [0_u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    token_from_bytes(bytes)
}

impl IdentityService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self {
            authz: crate::Authorizer::new(store.clone()),
            store,
            password_cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Creates the first admin and a token for it, if the site has no users yet. Returns the
    /// token's secret (shown once) or `None` when users already exist.
    pub async fn bootstrap(
        &self,
        context: &RequestContext,
        username: &str,
    ) -> ServiceResult<Option<(User, String)>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let spec = UserSpec {
            username: username.to_string(),
            site_role: SiteRole::Admin,
            service_account: false,
            password: None,
            display_name: None,
            email: None,
        };
        let user = self.create_user(context, &spec).await?;
        let (_, secret) = self.create_token(context, &user.username, "bootstrap", None).await?;
        Ok(Some((user, secret)))
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        context: &RequestContext,
        spec: &UserSpec,
    ) -> ServiceResult<User> {
        self.authz.require_admin(context)?;
        validate_username(&spec.username)?;
        if spec.service_account && spec.password.is_some() {
            return Err(ServiceError::invalid(
                "service accounts have no password; give them tokens",
            ));
        }
        let password_hash = match spec.password.clone() {
            Some(password) => Some(
                tokio::task::spawn_blocking(move || hash_password(&password))
                    .await
                    .map_err(|_| ServiceError::invalid("could not hash the password"))??,
            ),
            None => None,
        };
        let new_user = NewUser {
            username: spec.username.clone(),
            display_name: spec.display_name.clone(),
            email: spec.email.clone(),
            password_hash,
            site_role: spec.site_role,
            service_account: spec.service_account,
        };
        Ok(self.store.create_user(context, &new_user).await?)
    }

    /// Loads a user.
    pub async fn get_user(&self, username: &str) -> ServiceResult<User> {
        Ok(self.store.get_user(username).await?)
    }

    /// Lists users (site admins only).
    pub async fn list_users(&self, context: &RequestContext) -> ServiceResult<Vec<User>> {
        self.authz.require_admin(context)?;
        Ok(self.store.list_users().await?)
    }

    /// Deactivates a user: their tokens and password stop working, everything they made stays.
    /// Projects they own pass to `transfer_to`; without one, a project they alone own stops the
    /// deactivation (it would be left without an owner).
    pub async fn deactivate_user(
        &self,
        context: &RequestContext,
        username: &str,
        transfer_to: Option<&str>,
    ) -> ServiceResult<User> {
        self.authz.require_admin(context)?;
        let user = self.store.get_user(username).await?;
        let heir = match transfer_to {
            Some(name) if name == username => {
                return Err(ServiceError::invalid(
                    "cannot transfer ownership to the user being deactivated",
                ));
            }
            Some(name) => Some(self.store.get_user(name).await?),
            None => None,
        };
        for project in self.store.owned_projects(user.id).await? {
            match &heir {
                Some(heir) => {
                    self.store
                        .set_member(
                            context,
                            &project,
                            heir.id,
                            &heir.username,
                            cairn_domain::identity::ProjectRole::Owner,
                        )
                        .await?;
                }
                None if self.store.active_owner_count(project.id).await? <= 1 => {
                    return Err(ServiceError {
                        kind: ErrorKind::FailedPrecondition,
                        message: format!(
                            "'{username}' is the only owner of project '{}': name a user to transfer ownership to",
                            project.name
                        ),
                    });
                }
                None => {}
            }
        }
        self.set_user_active(context, username, false).await
    }

    /// Deactivates or reactivates a user; a deactivated user's tokens and password stop working.
    pub async fn set_user_active(
        &self,
        context: &RequestContext,
        username: &str,
        active: bool,
    ) -> ServiceResult<User> {
        self.authz.require_admin(context)?;
        let user = self.store.set_user_active(context, username, active).await?;
        if let Ok(mut cache) = self.password_cache.lock() {
            cache.retain(|_, (principal, _)| principal.username != username);
        }
        Ok(user)
    }

    /// Checks, before a request body is even read, that the caller is a site admin.
    pub fn authorize_admin(&self, context: &RequestContext) -> ServiceResult<()> {
        self.authz.require_admin(context)
    }

    /// Changes a user's site role (site admins; not their own, so a site keeps the admin who
    /// acts). Sessions and tokens carry the new role from their next request.
    pub async fn set_site_role(
        &self,
        context: &RequestContext,
        username: &str,
        role: SiteRole,
    ) -> ServiceResult<User> {
        self.authz.require_admin(context)?;
        if context.principal.as_ref().is_some_and(|principal| principal.username == username) {
            return Err(ServiceError::precondition(
                "an admin cannot change their own site role; ask another admin",
            ));
        }
        let user = self.store.set_site_role(context, username, role).await?;
        if let Ok(mut cache) = self.password_cache.lock() {
            cache.retain(|_, (principal, _)| principal.username != username);
        }
        Ok(user)
    }

    /// Sets a user's default project (site admins, or the user for themselves).
    pub async fn set_default_project(
        &self,
        context: &RequestContext,
        username: &str,
        project: Option<&str>,
    ) -> ServiceResult<()> {
        self.require_self_or_admin(context, username)?;
        let project = match project {
            Some(name) => Some(self.store.get_project(name).await?),
            None => None,
        };
        Ok(self.store.set_default_project(context, username, project.as_ref()).await?)
    }

    /// Creates a token for `username`; returns its metadata and its secret (shown once).
    pub async fn create_token(
        &self,
        context: &RequestContext,
        username: &str,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<(TokenInfo, String)> {
        self.require_self_or_admin(context, username)?;
        let user = self.store.get_user(username).await?;
        if !user.active {
            return Err(ServiceError::invalid(format!("user '{username}' is deactivated")));
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(ServiceError::invalid("a token name must have 1-100 characters"));
        }
        let secret = new_secret();
        let expires_at = expires_in_days.map(|days| now_millis() + i64::from(days) * 86_400_000);
        let info = self
            .store
            .create_token(
                context,
                user.id,
                name,
                &token_digest(&secret),
                &token_hint(&secret),
                expires_at,
            )
            .await?;
        Ok((info, secret))
    }

    /// Lists a user's tokens (never their secrets).
    pub async fn list_tokens(
        &self,
        context: &RequestContext,
        username: &str,
    ) -> ServiceResult<Vec<TokenInfo>> {
        self.require_self_or_admin(context, username)?;
        let user = self.store.get_user(username).await?;
        Ok(self.store.list_tokens(user.id).await?)
    }

    /// Revokes a token; `owner` limits it to that user's tokens.
    pub async fn revoke_token(
        &self,
        context: &RequestContext,
        token_id: i64,
        owner: Option<&str>,
    ) -> ServiceResult<()> {
        if let Some(username) = owner {
            self.require_self_or_admin(context, username)?;
        } else {
            self.authz.require_admin(context)?;
        }
        let owner_id = match owner {
            Some(username) => Some(self.store.get_user(username).await?.id),
            None => None,
        };
        Ok(self.store.revoke_token(context, token_id, owner_id).await?)
    }

    /// Allows a user to act on their own tokens, and site admins on anyone's.
    fn require_self_or_admin(&self, context: &RequestContext, username: &str) -> ServiceResult<()> {
        if let Some(principal) = &context.principal
            && principal.scope_project.is_some()
        {
            return Err(ServiceError {
                kind: cairn_domain::ErrorKind::PermissionDenied,
                message: "a token confined to a project cannot manage users or tokens".into(),
            });
        }
        if context.principal.as_ref().is_some_and(|principal| principal.username == username) {
            return Ok(());
        }
        self.authz.require_admin(context)
    }

    /// Authenticates credentials; an unknown, revoked or expired secret is `Unauthenticated`.
    pub async fn authenticate(&self, credentials: &Credentials) -> ServiceResult<Principal> {
        match credentials {
            Credentials::Bearer(token) => self.principal_for_token(token).await,
            Credentials::Basic { username, secret } if secret.starts_with(TOKEN_PREFIX) => {
                let principal = self.principal_for_token(secret).await?;
                if &principal.username != username {
                    return Err(unauthenticated());
                }
                Ok(principal)
            }
            Credentials::Basic { username, secret } => self.password_login(username, secret).await,
        }
    }

    async fn principal_for_token(&self, token: &str) -> ServiceResult<Principal> {
        self.store.principal_for_token(&token_digest(token)).await?.ok_or_else(unauthenticated)
    }

    async fn password_login(&self, username: &str, password: &str) -> ServiceResult<Principal> {
        let cache_key = token_digest(&format!("{username}\u{0}{password}"));
        if let Ok(cache) = self.password_cache.lock()
            && let Some((principal, verified_at)) = cache.get(&cache_key)
            && verified_at.elapsed() < PASSWORD_CACHE_TTL
        {
            return Ok(principal.clone());
        }
        let Some((user, stored)) = self.store.password_login(username).await? else {
            return Err(unauthenticated());
        };
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(unauthenticated());
        }
        let principal = user.principal();
        if let Ok(mut cache) = self.password_cache.lock() {
            cache.retain(|_, (_, verified_at)| verified_at.elapsed() < PASSWORD_CACHE_TTL);
            cache.insert(cache_key, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }
}
