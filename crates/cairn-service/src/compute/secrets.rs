//! Secrets: project- or user-scoped values sealed at rest, injected into jobs as environment
//! variables, never returned by any API after they are set, every read audited.

use std::collections::BTreeMap;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{SecretInfo, SecretScope, validate_env_name};
use cairn_domain::identity::Access;
use cairn_store::{SealedSecret, Store};

use super::sealing::SecretKey;
use crate::{Authorizer, ServiceError, ServiceResult};

/// The largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Sets, lists and deletes secrets; opens them for jobs.
#[derive(Clone)]
pub struct SecretService {
    store: Store,
    authz: Authorizer,
    key: Option<SecretKey>,
}

/// What a sealed value is bound to: its scope and name.
fn identity(scope_kind: &str, scope_id: i64, name: &str) -> String {
    format!("{scope_kind}:{scope_id}/{name}")
}

impl SecretService {
    /// Wraps the store; without a key, secrets cannot be set or used.
    pub fn new(store: Store, key: Option<SecretKey>) -> Self {
        Self { authz: Authorizer::new(store.clone()), store, key }
    }

    fn key(&self) -> ServiceResult<&SecretKey> {
        self.key.as_ref().ok_or_else(|| {
            ServiceError::precondition(
                "secrets are not configured on this server: start it with --secrets-key-file or CAIRN_SECRETS_KEY",
            )
        })
    }

    /// Resolves a scope to its id, checking the caller may manage (`write`) or see it.
    async fn scope_id(
        &self,
        context: &RequestContext,
        scope: &SecretScope,
        write: bool,
    ) -> ServiceResult<i64> {
        match scope {
            SecretScope::Project(name) => {
                let project = self.store.get_project(name).await?;
                let access = if write { Access::Manage } else { Access::Read };
                self.authz.require(context, project.id, access).await?;
                Ok(project.id)
            }
            SecretScope::User(name) => {
                let user = self.store.get_user(name).await?;
                let own = context.principal.as_ref().is_some_and(|principal| {
                    principal.user_id == user.id && principal.scope_project.is_none()
                });
                if !own {
                    self.authz.require_admin(context).map_err(|_| ServiceError {
                        kind: cairn_domain::ErrorKind::PermissionDenied,
                        message: format!("only '{name}' manages their own secrets"),
                    })?;
                }
                Ok(user.id)
            }
        }
    }

    /// Sets a secret's value (creating it or replacing the value).
    pub async fn put(
        &self,
        context: &RequestContext,
        scope: &SecretScope,
        name: &str,
        value: &str,
    ) -> ServiceResult<SecretInfo> {
        validate_env_name(name)?;
        if value.len() > MAX_SECRET_BYTES || value.contains('\0') {
            return Err(ServiceError::invalid(format!(
                "a secret value has at most {MAX_SECRET_BYTES} bytes and no NUL byte"
            )));
        }
        let key = self.key()?;
        let scope_id = self.scope_id(context, scope, true).await?;
        let (nonce, sealed) =
            key.seal(&identity(scope.kind(), scope_id, name), value.as_bytes())?;
        Ok(self
            .store
            .put_secret(context, scope.kind(), scope_id, name, key.id(), &nonce, &sealed)
            .await?)
    }

    /// The names of a scope's secrets.
    pub async fn list(
        &self,
        context: &RequestContext,
        scope: &SecretScope,
    ) -> ServiceResult<Vec<SecretInfo>> {
        let scope_id = self.scope_id(context, scope, false).await?;
        Ok(self.store.list_secrets(scope.kind(), scope_id).await?)
    }

    /// Deletes a secret.
    pub async fn delete(
        &self,
        context: &RequestContext,
        scope: &SecretScope,
        name: &str,
    ) -> ServiceResult<()> {
        let scope_id = self.scope_id(context, scope, true).await?;
        Ok(self.store.delete_secret(context, scope.kind(), scope_id, name).await?)
    }

    /// Opens the secrets a job or workspace receives: its project's, then its user's (which win
    /// on equal names). Each read is audited with `reader` (`("job_id", 7)`).
    pub(crate) async fn open_for(
        &self,
        context: &RequestContext,
        reader: (&str, i64),
        project_id: i64,
        user_id: Option<i64>,
    ) -> ServiceResult<BTreeMap<String, String>> {
        let sealed = self.store.read_secrets_for(context, reader, project_id, user_id).await?;
        if sealed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let key = self.key()?;
        let mut values = BTreeMap::new();
        for kind in ["project", "user"] {
            for secret in sealed.iter().filter(|secret| secret.scope.kind() == kind) {
                let scope_id = if kind == "project" { project_id } else { user_id.unwrap_or(-1) };
                let value = self.open_with(key, secret, scope_id)?;
                values.insert(secret.name.clone(), value);
            }
        }
        Ok(values)
    }

    fn open_with(
        &self,
        key: &SecretKey,
        secret: &SealedSecret,
        scope_id: i64,
    ) -> ServiceResult<String> {
        if secret.key_id != key.id() {
            return Err(ServiceError::precondition(format!(
                "secret '{}' was sealed with key {}, not this server's key {}: rotate the secrets or start with that key",
                secret.name,
                secret.key_id,
                key.id()
            )));
        }
        let bytes = key.open(
            &identity(secret.scope.kind(), scope_id, &secret.name),
            &secret.nonce,
            &secret.ciphertext,
        )?;
        String::from_utf8(bytes).map_err(|_| ServiceError::internal("a secret is not UTF-8"))
    }
}

/// Re-seals every secret from `old` to `new` in one transaction; secrets already sealed with
/// `new` are left alone. Returns how many were re-sealed.
pub async fn rotate_secrets(
    store: &Store,
    context: &RequestContext,
    old: &SecretKey,
    new: &SecretKey,
) -> ServiceResult<usize> {
    let sealed = store.all_sealed_secrets().await?;
    let mut resealed = Vec::new();
    for secret in sealed {
        if secret.key_id == new.id() {
            continue;
        }
        if secret.key_id != old.id() {
            return Err(ServiceError::precondition(format!(
                "secret '{}' was sealed with key {}, which is neither the old key {} nor the new key {}",
                secret.name,
                secret.key_id,
                old.id(),
                new.id()
            )));
        }
        let scope_id = scope_id_of(store, &secret).await?;
        let identity = identity(secret.scope.kind(), scope_id, &secret.name);
        let value = old.open(&identity, &secret.nonce, &secret.ciphertext)?;
        let (nonce, ciphertext) = new.seal(&identity, &value)?;
        resealed.push(SealedSecret { key_id: new.id().to_string(), nonce, ciphertext, ..secret });
    }
    store.reseal_secrets(context, &resealed, new.id()).await?;
    Ok(resealed.len())
}

async fn scope_id_of(store: &Store, secret: &SealedSecret) -> ServiceResult<i64> {
    Ok(match &secret.scope {
        SecretScope::Project(name) => store.get_project(name).await?.id,
        SecretScope::User(name) => store.get_user(name).await?.id,
    })
}
